//! Queue status on PostgreSQL: the workspace's jobs grouped by session and state (see
//! `engram_core::queue_status` for what counts).

use engram_core::queue_status::{COMPLETED_WINDOW, StatusFilter, StatusRow, WorkStatus, fold};
use engram_core::time::now_micros;
use sqlx::{PgConnection, Row};

use crate::R;

pub async fn work_status(
    c: &mut PgConnection,
    workspace: &str,
    filter: &StatusFilter,
) -> R<WorkStatus> {
    // A payload's `session_id` is compared only when it is a number, so a future kind
    // naming its session some other way is counted without a session, never an error.
    let sql = format!(
        "SELECT s.name, j.state, \
           j.state = 'pending' AND EXISTS (SELECT 1 FROM jobs r WHERE r.unit_key = j.unit_key AND r.state = 'running'), \
           COUNT(*) \
         FROM jobs j \
         LEFT JOIN sessions s ON s.workspace_id = j.workspace_id AND s.deleted_at IS NULL \
           AND s.id = CASE WHEN jsonb_typeof(j.payload -> 'session_id') = 'number' \
                           THEN (j.payload ->> 'session_id')::numeric::bigint END \
         WHERE j.workspace_id = (SELECT id FROM workspaces WHERE name = $1 AND deleted_at IS NULL) \
           AND j.kind IN ({}) \
           AND (j.state IN ('pending', 'running') OR j.finished_at >= $2) \
           AND (jsonb_typeof(j.payload -> 'session_id') IS DISTINCT FROM 'number' OR s.id IS NOT NULL) \
           AND ($3::text IS NULL OR s.name = $3) \
           AND (($4::text IS NULL AND $5::text IS NULL) \
                OR j.payload ->> 'observer' = $4 OR j.payload ->> 'observed' = $5) \
         GROUP BY 1, 2, 3",
        engram_core::jobs::sql_names(engram_core::jobs::JobKind::is_client_work)
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(workspace)
        .bind(now_micros() - COMPLETED_WINDOW)
        .bind(&filter.session)
        .bind(&filter.observer)
        .bind(&filter.sender)
        .fetch_all(c)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(StatusRow {
            session: r.try_get(0)?,
            state: r.try_get(1)?,
            unit_running: r.try_get(2)?,
            jobs: r.try_get(3)?,
        });
    }
    Ok(fold(&out, filter))
}
