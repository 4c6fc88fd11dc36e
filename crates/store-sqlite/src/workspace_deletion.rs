//! Workspace deletion: a tombstone when no live session remains, then a purge of every
//! row the workspace owns, in bounded batches.

use engram_core::jobs::Task;
use engram_core::purge::Scope;
use engram_core::queue::{PurgeWorkspace, active_sessions_remain};
use engram_core::time::{Micros, now_micros};
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{db_err, purge_steps, queue, workspaces};

pub fn delete_workspace(conn: &Connection, workspace: &str) -> Result<()> {
    let id =
        workspaces::id_of(conn, workspace)?.ok_or_else(|| Error::workspace_not_found(workspace))?;
    let live: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM sessions WHERE workspace_id = ?1 AND deleted_at IS NULL",
        )
        .map_err(db_err)?
        .query_row([id], |r| r.get(0))
        .map_err(db_err)?;
    if live > 0 {
        return Err(active_sessions_remain(workspace));
    }
    conn.prepare_cached("UPDATE workspaces SET deleted_at = ?2 WHERE id = ?1")
        .map_err(db_err)?
        .execute(params![id, now_micros()])
        .map_err(db_err)?;
    let purge = PurgeWorkspace { workspace_id: id };
    queue::enqueue(conn, &Task::PurgeWorkspace(purge))
}

/// One purge call: renews the lease; a missing workspace row means done, a live one is
/// refused; then runs `engram_core::purge::WORKSPACE` (`purge_steps`).
pub fn purge_step(
    conn: &Connection,
    (job, attempt): (i64, i64),
    purge: PurgeWorkspace,
    batch: i64,
    lease_until: Micros,
) -> Result<bool> {
    queue::renew(conn, job, attempt, lease_until)?;
    let ws = purge.workspace_id;
    let deleted_at: Option<Option<i64>> = conn
        .prepare_cached("SELECT deleted_at FROM workspaces WHERE id = ?1")
        .map_err(db_err)?
        .query_row([ws], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    match deleted_at {
        None => Ok(true),
        Some(None) => Err(Error::Internal(format!(
            "refusing to purge live workspace {ws}"
        ))),
        Some(Some(_)) => purge_steps::run(conn, Scope::Workspace { workspace_id: ws }, batch),
    }
}
