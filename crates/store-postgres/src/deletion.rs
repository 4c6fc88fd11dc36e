//! Session deletion: the tombstone written by the request, and the purge steps run by
//! the queue worker. Steps are idempotent, so a retried or resumed purge is safe.

use engram_core::Error;
use engram_core::jobs::Task;
use engram_core::purge::Scope;
use engram_core::queue::{DeletionCounts, PurgeSession, Receipt, deletion_counts};
use engram_core::time::{Micros, now_micros};
use sqlx::{PgConnection, Row};

use crate::{R, purge_steps, queue, sessions};

/// Tombstones the live session (locked, so it serializes with writes to it), writes its
/// receipt and queues its purge, then wakes workers once the transaction commits.
pub async fn delete_session(c: &mut PgConnection, workspace: &str, name: &str) -> R<()> {
    let live = sessions::require(c, workspace, name).await?;
    let now = now_micros();
    sqlx::query("UPDATE sessions SET deleted_at = $3 WHERE workspace_id = $1 AND id = $2")
        .bind(live.ws_id)
        .bind(live.id)
        .bind(now)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO deletion_receipts (workspace_id, workspace_name, session_id, session_name, requested_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(live.ws_id)
    .bind(workspace)
    .bind(live.id)
    .bind(name)
    .bind(now)
    .execute(&mut *c)
    .await?;
    let purge = PurgeSession {
        workspace_id: live.ws_id,
        session_id: live.id,
    };
    queue::enqueue(c, &Task::PurgeSession(purge)).await
}

/// One purge call: renews the job's lease, refuses a live session, then runs
/// `engram_core::purge::SESSION` (`purge_steps`); `false` while work remains.
pub async fn purge_step(
    c: &mut PgConnection,
    (job, attempt): (i64, i64),
    purge: PurgeSession,
    batch: i64,
    lease_until: Micros,
) -> R<bool> {
    queue::renew(c, job, attempt, lease_until).await?;
    let PurgeSession {
        workspace_id,
        session_id,
    } = purge;
    let deleted_at: Option<Option<i64>> =
        sqlx::query_scalar("SELECT deleted_at FROM sessions WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(session_id)
            .fetch_optional(&mut *c)
            .await?;
    if let Some(None) = deleted_at {
        return Err(Error::Internal(format!("refusing to purge live session {session_id}")).into());
    }
    let scope = Scope::Session {
        workspace_id,
        session_id,
    };
    purge_steps::run(c, scope, batch).await
}

/// Purge receipts of a workspace, oldest request first.
pub async fn receipts(c: &mut PgConnection, workspace: &str) -> R<Vec<Receipt>> {
    let rows = sqlx::query(
        "SELECT r.workspace_name, r.session_name, r.messages_deleted, r.members_deleted, \
         r.requested_at, r.finished_at FROM deletion_receipts r \
         WHERE r.workspace_id = (SELECT w.id FROM workspaces w WHERE w.name = $1 AND w.deleted_at IS NULL) \
         ORDER BY r.requested_at, r.id",
    )
    .bind(workspace)
    .fetch_all(c)
    .await?;
    rows.iter().map(receipt_row).collect()
}

pub(crate) fn receipt_row(r: &sqlx::postgres::PgRow) -> R<Receipt> {
    Ok(Receipt {
        workspace_id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        messages_deleted: r.try_get(2)?,
        members_deleted: r.try_get(3)?,
        requested_at: r.try_get(4)?,
        finished_at: r.try_get(5)?,
    })
}

pub async fn counts(c: &mut PgConnection, workspace: &str) -> R<DeletionCounts> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT j.state, COUNT(*) FROM jobs j JOIN workspaces w ON w.id = j.workspace_id \
         WHERE w.name = $1 AND w.deleted_at IS NULL AND j.kind = 'purge_session' GROUP BY j.state",
    )
    .bind(workspace)
    .fetch_all(c)
    .await?;
    Ok(deletion_counts(rows))
}
