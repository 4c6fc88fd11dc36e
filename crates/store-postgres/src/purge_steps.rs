//! PostgreSQL's SQL for each step of a purge; the steps, their order and their keys are
//! `engram_core::purge`'s. `run` walks the plan inside the caller's transaction.

use engram_core::Error;
use engram_core::jobs;
use engram_core::purge::{PurgeStep, Ran, Scope, Tally};
use engram_core::time::now_micros;
use engram_core::webhooks::Event;
use sqlx::PgConnection;

use crate::{R, deletion, embeddings, webhooks};

/// Runs the scope's plan in order; `false` when a batched step did work (call again).
pub async fn run(c: &mut PgConnection, scope: Scope, batch: i64) -> R<bool> {
    let mut tally = Tally::default();
    for &step in scope.plan() {
        let ran = run_step(c, step, scope, batch, &tally).await?;
        if step.ends_call(ran) {
            return Ok(false);
        }
        tally.record(step, ran);
    }
    Ok(true)
}

/// One step. Exhaustive on purpose: a new step does not compile until it has SQL here.
async fn run_step(
    c: &mut PgConnection,
    step: PurgeStep,
    scope: Scope,
    batch: i64,
    tally: &Tally,
) -> R<Ran> {
    let ws = scope.workspace_id();
    let rows = match step {
        PurgeStep::MessageVectors => {
            embeddings::purge_batch(c, ws, scope.session_id(), batch).await?
        }
        PurgeStep::Messages => messages(c, scope, batch).await?,
        PurgeStep::Jobs => match scope {
            // Derivation jobs still waiting for this session have nothing left to read.
            Scope::Session {
                workspace_id,
                session_id,
            } => sqlx::query("DELETE FROM jobs WHERE unit_key = ANY($1) AND state = 'pending'")
                .bind(jobs::session_unit_keys(workspace_id, session_id))
                .execute(&mut *c)
                .await?
                .rows_affected(),
            Scope::Workspace { workspace_id } => sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM jobs WHERE workspace_id = $1 AND (state IN ('done', 'failed') \
                     OR (kind IN ({}) AND state = 'pending'))",
                jobs::sql_names(jobs::JobKind::is_derivation)
            )))
            .bind(workspace_id)
            .execute(&mut *c)
            .await?
            .rows_affected(),
        },
        PurgeStep::Memberships => {
            delete_scoped(
                c,
                scope,
                "DELETE FROM session_peers WHERE workspace_id = $1 AND session_id = $2",
                "DELETE FROM session_peers WHERE workspace_id = $1",
            )
            .await?
        }
        PurgeStep::Sessions => delete_scoped(
            c,
            scope,
            "DELETE FROM sessions WHERE workspace_id = $1 AND id = $2 AND deleted_at IS NOT NULL",
            "DELETE FROM sessions WHERE workspace_id = $1",
        )
        .await?,
        PurgeStep::Receipt => {
            let (workspace_id, session_id) = scope.session(step)?;
            sqlx::query(
                "UPDATE deletion_receipts SET members_deleted = members_deleted + $3, \
                 finished_at = COALESCE(finished_at, $4) WHERE workspace_id = $1 AND session_id = $2",
            )
            .bind(workspace_id)
            .bind(session_id)
            .bind(tally.removed(PurgeStep::Memberships) as i64)
            .bind(now_micros())
            .execute(&mut *c)
            .await?
            .rows_affected()
        }
        PurgeStep::Announce => announce(c, scope, tally).await? as u64,
        PurgeStep::WebhookEndpoints => {
            let sql = "DELETE FROM webhook_endpoints WHERE workspace_id = $1";
            delete_in(c, scope.workspace(step)?, sql).await?
        }
        PurgeStep::Peers => {
            let sql = "DELETE FROM peers WHERE workspace_id = $1";
            delete_in(c, scope.workspace(step)?, sql).await?
        }
        PurgeStep::WorkspaceRow => {
            let sql = "DELETE FROM workspaces WHERE id = $1 AND deleted_at IS NOT NULL";
            delete_in(c, scope.workspace(step)?, sql).await?
        }
    };
    Ok(Ran::Rows(rows))
}

/// Runs the scope's statement: `session` binds the workspace and session ids as $1 and
/// $2, `workspace` the workspace id as $1. Two statements rather than one with an
/// optional session keep each query plan on its index.
async fn delete_scoped(
    c: &mut PgConnection,
    scope: Scope,
    session: &'static str,
    workspace: &'static str,
) -> R<u64> {
    let query = match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => sqlx::query(session).bind(workspace_id).bind(session_id),
        Scope::Workspace { workspace_id } => sqlx::query(workspace).bind(workspace_id),
    };
    Ok(query.execute(&mut *c).await?.rows_affected())
}

/// Runs a workspace purge's statement, binding the workspace id as $1.
async fn delete_in(c: &mut PgConnection, workspace_id: i64, sql: &'static str) -> R<u64> {
    let done = sqlx::query(sql).bind(workspace_id).execute(&mut *c).await?;
    Ok(done.rows_affected())
}

/// Up to `batch` messages (their full-text entries are a column of the row); a
/// session's receipt counts each batch.
async fn messages(c: &mut PgConnection, scope: Scope, batch: i64) -> R<u64> {
    let removed = match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => sqlx::query(
            "DELETE FROM messages WHERE (workspace_id, id) IN \
             (SELECT workspace_id, id FROM messages WHERE workspace_id = $1 AND session_id = $2 LIMIT $3)",
        )
        .bind(workspace_id)
        .bind(session_id)
        .bind(batch),
        Scope::Workspace { workspace_id } => sqlx::query(
            "DELETE FROM messages WHERE (workspace_id, id) IN \
             (SELECT workspace_id, id FROM messages WHERE workspace_id = $1 LIMIT $2)",
        )
        .bind(workspace_id)
        .bind(batch),
    }
    .execute(&mut *c)
    .await?
    .rows_affected();
    if let (
        true,
        Scope::Session {
            workspace_id,
            session_id,
        },
    ) = (removed > 0, scope)
    {
        sqlx::query(
            "UPDATE deletion_receipts SET messages_deleted = messages_deleted + $3 \
             WHERE workspace_id = $1 AND session_id = $2",
        )
        .bind(workspace_id)
        .bind(session_id)
        .bind(removed as i64)
        .execute(&mut *c)
        .await?;
    }
    Ok(removed)
}

/// Queues the deletion event; returns the deliveries queued.
async fn announce(c: &mut PgConnection, scope: Scope, tally: &Tally) -> R<usize> {
    match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => {
            // Only the call that removed the row announces it, so a re-run sends nothing twice.
            if tally.removed(PurgeStep::Sessions) == 0 {
                return Ok(0);
            }
            let row = sqlx::query(
                "SELECT workspace_name, session_name, messages_deleted, members_deleted, requested_at, finished_at \
                 FROM deletion_receipts WHERE workspace_id = $1 AND session_id = $2",
            )
            .bind(workspace_id)
            .bind(session_id)
            .fetch_optional(&mut *c)
            .await?;
            let Some(row) = row else { return Ok(0) };
            let receipt = deletion::receipt_row(&row)?;
            // The receipt was finished by this call: its finish is the event's time.
            let at = receipt.finished_at.unwrap_or_else(now_micros);
            webhooks::queue_event(c, workspace_id, &Event::session_deleted(&receipt, at)).await
        }
        Scope::Workspace { workspace_id } => {
            let tombstone: Option<(String, Option<i64>)> =
                sqlx::query_as("SELECT name, deleted_at FROM workspaces WHERE id = $1")
                    .bind(workspace_id)
                    .fetch_optional(&mut *c)
                    .await?;
            let Some((name, Some(requested_at))) = tombstone else {
                return Err(Error::Internal(format!(
                    "workspace {workspace_id} has no tombstone to announce"
                ))
                .into());
            };
            // The endpoints hear of the deletion before they are removed with the rest.
            webhooks::queue_event(
                c,
                workspace_id,
                &Event::workspace_deleted(&name, requested_at, now_micros()),
            )
            .await
        }
    }
}
