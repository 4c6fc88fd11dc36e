//! Workspace deletion: a tombstone when no live session remains, then a purge of every
//! row the workspace owns, in bounded batches.

use engram_core::Error;
use engram_core::jobs::Task;
use engram_core::purge::Scope;
use engram_core::queue::{PurgeWorkspace, active_sessions_remain};
use engram_core::time::{Micros, now_micros};
use sqlx::PgConnection;

use crate::{R, purge_steps, queue};

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
    queue::enqueue(c, &Task::PurgeWorkspace(purge)).await
}

/// One purge call: renews the lease; a missing workspace row means done, a live one is
/// refused; then runs `engram_core::purge::WORKSPACE` (`purge_steps`).
pub async fn purge_step(
    c: &mut PgConnection,
    (job, attempt): (i64, i64),
    purge: PurgeWorkspace,
    batch: i64,
    lease_until: Micros,
) -> R<bool> {
    queue::renew(c, job, attempt, lease_until).await?;
    let ws = purge.workspace_id;
    let deleted_at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM workspaces WHERE id = $1")
            .bind(ws)
            .fetch_optional(&mut *c)
            .await?;
    match deleted_at {
        None => Ok(true),
        Some(None) => Err(Error::Internal(format!("refusing to purge live workspace {ws}")).into()),
        Some(Some(_)) => purge_steps::run(c, Scope::Workspace { workspace_id: ws }, batch).await,
    }
}
