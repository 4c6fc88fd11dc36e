//! Session deletion: the tombstone written by the request, and the purge steps run by
//! the queue worker. Steps are idempotent, so a retried or resumed purge is safe.

use engram_core::jobs::Task;
use engram_core::purge::Scope;
use engram_core::queue::{DeletionCounts, PurgeSession, Receipt, deletion_counts};
use engram_core::time::{Micros, now_micros};
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{db_err, purge_steps, queue, sessions};

pub fn delete_session(conn: &Connection, workspace: &str, name: &str) -> Result<()> {
    let live = sessions::require(conn, workspace, name)?;
    let now = now_micros();
    conn.prepare_cached("UPDATE sessions SET deleted_at = ?2 WHERE id = ?1")
        .map_err(db_err)?
        .execute(params![live.id, now])
        .map_err(db_err)?;
    conn.prepare_cached(
        "INSERT INTO deletion_receipts (workspace_id, workspace_name, session_id, session_name, requested_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .map_err(db_err)?
    .execute(params![live.ws_id, workspace, live.id, name, now])
    .map_err(db_err)?;
    let purge = PurgeSession {
        workspace_id: live.ws_id,
        session_id: live.id,
    };
    queue::enqueue(conn, &Task::PurgeSession(purge))
}

/// One purge call: renews the lease, refuses a live session, then runs
/// `engram_core::purge::SESSION` (`purge_steps`); `false` while work remains.
pub fn purge_step(
    conn: &Connection,
    (job, attempt): (i64, i64),
    purge: PurgeSession,
    batch: i64,
    lease_until: Micros,
) -> Result<bool> {
    queue::renew(conn, job, attempt, lease_until)?;
    let PurgeSession {
        workspace_id,
        session_id,
    } = purge;
    let deleted_at: Option<Option<i64>> = conn
        .prepare_cached("SELECT deleted_at FROM sessions WHERE id = ?1 AND workspace_id = ?2")
        .map_err(db_err)?
        .query_row(params![session_id, workspace_id], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    if let Some(None) = deleted_at {
        return Err(Error::Internal(format!(
            "refusing to purge live session {session_id}"
        )));
    }
    let scope = Scope::Session {
        workspace_id,
        session_id,
    };
    purge_steps::run(conn, scope, batch)
}

pub(crate) fn receipt_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Receipt> {
    Ok(Receipt {
        workspace_id: r.get(0)?,
        session_id: r.get(1)?,
        messages_deleted: r.get(2)?,
        members_deleted: r.get(3)?,
        requested_at: r.get(4)?,
        finished_at: r.get(5)?,
    })
}

pub fn receipts(conn: &Connection, workspace: &str) -> Result<Vec<Receipt>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT workspace_name, session_name, messages_deleted, members_deleted, requested_at, finished_at \
             FROM deletion_receipts WHERE workspace_id = \
             (SELECT id FROM workspaces WHERE name = ?1 AND deleted_at IS NULL) ORDER BY requested_at, id",
        )
        .map_err(db_err)?;
    stmt.query_map([workspace], receipt_row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)
}

pub fn counts(conn: &Connection, workspace: &str) -> Result<DeletionCounts> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT j.state, COUNT(*) FROM jobs j JOIN workspaces w ON w.id = j.workspace_id \
             WHERE w.name = ?1 AND w.deleted_at IS NULL AND j.kind = 'purge_session' GROUP BY j.state",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map([workspace], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(deletion_counts(rows))
}
