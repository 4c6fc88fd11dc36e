//! Queue status on SQLite: the workspace's jobs grouped by session and state (see
//! `engram_core::queue_status` for what counts).

use engram_core::Result;
use engram_core::queue_status::{COMPLETED_WINDOW, StatusFilter, StatusRow, WorkStatus, fold};
use engram_core::time::now_micros;
use rusqlite::{Connection, params};

use crate::db_err;

/// A payload's `session_id` counts only when it is an integer, so a future kind naming
/// its session some other way is counted without a session, never matched by accident.
pub fn work_status(
    conn: &Connection,
    workspace: &str,
    filter: &StatusFilter,
) -> Result<WorkStatus> {
    let sql = format!(
        "SELECT s.name, j.state, \
           j.state = 'pending' AND EXISTS (SELECT 1 FROM jobs r WHERE r.unit_key = j.unit_key AND r.state = 'running'), \
           COUNT(*) \
         FROM jobs j \
         LEFT JOIN sessions s ON s.workspace_id = j.workspace_id \
           AND json_type(j.payload, '$.session_id') = 'integer' \
           AND s.id = json_extract(j.payload, '$.session_id') AND s.deleted_at IS NULL \
         WHERE j.workspace_id = (SELECT id FROM workspaces WHERE name = ?1 AND deleted_at IS NULL) \
           AND j.kind IN ({}) \
           AND (j.state IN ('pending', 'running') OR j.finished_at >= ?2) \
           AND (json_type(j.payload, '$.session_id') IS NOT 'integer' OR s.id IS NOT NULL) \
           AND (?3 IS NULL OR s.name = ?3) \
           AND ((?4 IS NULL AND ?5 IS NULL) \
                OR json_extract(j.payload, '$.observer') = ?4 \
                OR json_extract(j.payload, '$.observed') = ?5) \
         GROUP BY 1, 2, 3",
        engram_core::jobs::sql_names(engram_core::jobs::JobKind::is_client_work)
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt
        .query_map(
            params![
                workspace,
                now_micros() - COMPLETED_WINDOW,
                filter.session,
                filter.observer,
                filter.sender
            ],
            |r| {
                Ok(StatusRow {
                    session: r.get(0)?,
                    state: r.get(1)?,
                    unit_running: r.get(2)?,
                    jobs: r.get(3)?,
                })
            },
        )
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(fold(&rows, filter))
}
