//! Workspace deletion: a tombstone when no live session remains, then a purge of every
//! row the workspace owns, in bounded batches.

use engram_core::queue::{
    PRIORITY_DELETION, PURGE_WORKSPACE, PurgeWorkspace, active_sessions_remain,
    purge_workspace_unit_key,
};
use engram_core::time::{Micros, now_micros};
use engram_core::webhooks::Event;
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::fts_purge::{self, Scope, StepOutcome};
use crate::{db_err, embeddings, queue, webhooks, workspaces};

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
    let payload = serde_json::to_value(purge).map_err(Error::internal)?;
    queue::enqueue(
        conn,
        Some(id),
        PURGE_WORKSPACE,
        &purge_workspace_unit_key(purge),
        PRIORITY_DELETION,
        &payload,
    )
}

pub fn purge_step(
    conn: &Connection,
    (job, attempt): (i64, i64),
    purge: PurgeWorkspace,
    batch: i64,
    lease_until: Micros,
) -> Result<bool> {
    queue::renew(conn, job, attempt, lease_until)?;
    let ws = purge.workspace_id;
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached("SELECT name, deleted_at FROM workspaces WHERE id = ?1")
        .map_err(db_err)?
        .query_row([ws], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db_err)?;
    let (name, requested_at) = match row {
        None => return Ok(true),
        Some((_, None)) => {
            return Err(Error::Internal(format!(
                "refusing to purge live workspace {ws}"
            )));
        }
        Some((name, Some(at))) => (name, at),
    };
    if embeddings::purge_batch(conn, ws, None, batch)? > 0 {
        return Ok(false);
    }
    let unit = purge_workspace_unit_key(purge);
    let scope = Scope::Workspace { workspace_id: ws };
    if !matches!(
        fts_purge::step(conn, &unit, scope, batch)?,
        StepOutcome::Done
    ) {
        return Ok(false);
    }
    // The endpoints hear of the deletion before they are removed with the rest.
    webhooks::queue_event(
        conn,
        ws,
        &Event::workspace_deleted(&name, requested_at, now_micros()),
    )?;
    for sql in [
        "DELETE FROM webhook_endpoints WHERE workspace_id = ?1",
        "DELETE FROM session_peers WHERE workspace_id = ?1",
        "DELETE FROM sessions WHERE workspace_id = ?1",
        "DELETE FROM peers WHERE workspace_id = ?1",
        "DELETE FROM jobs WHERE workspace_id = ?1 AND (state IN ('done', 'failed') OR (kind = 'embed_messages' AND state = 'pending'))",
        "DELETE FROM workspaces WHERE id = ?1 AND deleted_at IS NOT NULL",
    ] {
        conn.prepare_cached(sql)
            .map_err(db_err)?
            .execute([ws])
            .map_err(db_err)?;
    }
    Ok(true)
}
