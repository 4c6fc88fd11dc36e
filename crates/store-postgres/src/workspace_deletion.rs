//! Workspace deletion: a tombstone when no live session remains, then a purge of every
//! row the workspace owns, in bounded batches.

use engram_core::Error;
use engram_core::queue::{
    PRIORITY_DELETION, PURGE_WORKSPACE, PurgeWorkspace, active_sessions_remain,
    purge_workspace_unit_key,
};
use engram_core::time::{Micros, now_micros};
use engram_core::webhooks::Event;
use sqlx::PgConnection;

use crate::{R, embeddings, queue, webhooks};

/// Locks the workspace row first: `FOR UPDATE` conflicts with the key-share lock a
/// concurrent session insert takes through its foreign key, so no session can appear
/// between the check and the tombstone.
pub async fn delete_workspace(c: &mut PgConnection, workspace: &str) -> R<()> {
    let id: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM workspaces WHERE name = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(workspace)
    .fetch_optional(&mut *c)
    .await?;
    let id = id.ok_or_else(|| Error::workspace_not_found(workspace))?;
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE workspace_id = $1 AND deleted_at IS NULL",
    )
    .bind(id)
    .fetch_one(&mut *c)
    .await?;
    if live > 0 {
        return Err(active_sessions_remain(workspace).into());
    }
    sqlx::query("UPDATE workspaces SET deleted_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now_micros())
        .execute(&mut *c)
        .await?;
    let purge = PurgeWorkspace { workspace_id: id };
    let payload = serde_json::to_value(purge).map_err(Error::internal)?;
    queue::enqueue(
        c,
        Some(id),
        PURGE_WORKSPACE,
        &purge_workspace_unit_key(purge),
        PRIORITY_DELETION,
        &payload,
    )
    .await?;
    queue::notify(c).await
}

pub async fn purge_step(
    c: &mut PgConnection,
    (job, attempt): (i64, i64),
    purge: PurgeWorkspace,
    batch: i64,
    lease_until: Micros,
) -> R<bool> {
    queue::renew(c, job, attempt, lease_until).await?;
    let ws = purge.workspace_id;
    let row: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT name, deleted_at FROM workspaces WHERE id = $1")
            .bind(ws)
            .fetch_optional(&mut *c)
            .await?;
    let (name, requested_at) = match row {
        None => return Ok(true),
        Some((_, None)) => {
            return Err(Error::Internal(format!("refusing to purge live workspace {ws}")).into());
        }
        Some((name, Some(at))) => (name, at),
    };
    if embeddings::purge_batch(c, ws, None, batch).await? > 0 {
        return Ok(false);
    }
    let removed = sqlx::query(
        "DELETE FROM messages WHERE (workspace_id, id) IN \
         (SELECT workspace_id, id FROM messages WHERE workspace_id = $1 LIMIT $2)",
    )
    .bind(ws)
    .bind(batch)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if removed > 0 {
        return Ok(false);
    }
    // The endpoints hear of the deletion before they are removed with the rest.
    webhooks::queue_event(
        c,
        ws,
        &Event::workspace_deleted(&name, requested_at, now_micros()),
    )
    .await?;
    for sql in [
        "DELETE FROM webhook_endpoints WHERE workspace_id = $1",
        "DELETE FROM session_peers WHERE workspace_id = $1",
        "DELETE FROM sessions WHERE workspace_id = $1",
        "DELETE FROM peers WHERE workspace_id = $1",
        "DELETE FROM jobs WHERE workspace_id = $1 AND (state IN ('done', 'failed') OR (kind = 'embed_messages' AND state = 'pending'))",
        "DELETE FROM workspaces WHERE id = $1 AND deleted_at IS NOT NULL",
    ] {
        sqlx::query(sql).bind(ws).execute(&mut *c).await?;
    }
    Ok(true)
}
