//! SQLite's SQL for each step of a purge; the steps, their order and their keys are
//! `engram_core::purge`'s. `run` walks the plan inside the caller's transaction.

use engram_core::jobs;
use engram_core::purge::{PurgeStep, Ran, Scope, Tally};
use engram_core::queue::{
    PurgeSession, PurgeWorkspace, Receipt, purge_unit_key, purge_workspace_unit_key,
};
use engram_core::time::now_micros;
use engram_core::webhooks::Event;
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::fts_purge::{self, StepOutcome};
use crate::{db_err, deletion, embeddings, webhooks};

/// Runs the scope's plan in order; `false` when a batched step did work (call again).
pub fn run(conn: &Connection, scope: Scope, batch: i64) -> Result<bool> {
    let mut tally = Tally::default();
    for &step in scope.plan() {
        let ran = run_step(conn, step, scope, batch, &tally)?;
        if step.ends_call(ran) {
            return Ok(false);
        }
        tally.record(step, ran);
    }
    Ok(true)
}

/// One step. Exhaustive on purpose: a new step does not compile until it has SQL here.
fn run_step(
    conn: &Connection,
    step: PurgeStep,
    scope: Scope,
    batch: i64,
    tally: &Tally,
) -> Result<Ran> {
    let ws = scope.workspace_id();
    let rows = match step {
        PurgeStep::MessageVectors => {
            embeddings::purge_batch(conn, ws, scope.session_id(), batch)? as u64
        }
        PurgeStep::Messages => return messages(conn, scope, batch),
        PurgeStep::Jobs => match scope {
            // Derivation jobs still waiting for this session have nothing left to read.
            Scope::Session {
                workspace_id,
                session_id,
            } => {
                let mut removed = 0;
                for key in jobs::session_unit_keys(workspace_id, session_id) {
                    removed += execute(
                        conn,
                        "DELETE FROM jobs WHERE unit_key = ?1 AND state = 'pending'",
                        [key],
                    )?;
                }
                removed
            }
            Scope::Workspace { workspace_id } => execute(
                conn,
                &format!(
                    "DELETE FROM jobs WHERE workspace_id = ?1 AND (state IN ('done', 'failed') \
                     OR (kind IN ({}) AND state = 'pending'))",
                    jobs::sql_names(jobs::JobKind::is_derivation)
                ),
                [workspace_id],
            )?,
        },
        PurgeStep::Memberships => match scope {
            Scope::Session {
                workspace_id,
                session_id,
            } => execute(
                conn,
                "DELETE FROM session_peers WHERE workspace_id = ?1 AND session_id = ?2",
                params![workspace_id, session_id],
            )?,
            Scope::Workspace { workspace_id } => execute(
                conn,
                "DELETE FROM session_peers WHERE workspace_id = ?1",
                [workspace_id],
            )?,
        },
        PurgeStep::Sessions => match scope {
            Scope::Session {
                workspace_id,
                session_id,
            } => execute(
                conn,
                "DELETE FROM sessions WHERE id = ?1 AND workspace_id = ?2 AND deleted_at IS NOT NULL",
                params![session_id, workspace_id],
            )?,
            Scope::Workspace { workspace_id } => execute(
                conn,
                "DELETE FROM sessions WHERE workspace_id = ?1",
                [workspace_id],
            )?,
        },
        PurgeStep::Receipt => {
            let (workspace_id, session_id) = scope.session(step)?;
            execute(
                conn,
                "UPDATE deletion_receipts SET members_deleted = members_deleted + ?3, finished_at = COALESCE(finished_at, ?4) \
                 WHERE workspace_id = ?1 AND session_id = ?2",
                params![
                    workspace_id,
                    session_id,
                    tally.removed(PurgeStep::Memberships) as i64,
                    now_micros()
                ],
            )?
        }
        PurgeStep::Announce => announce(conn, scope, tally)? as u64,
        PurgeStep::WebhookEndpoints => execute(
            conn,
            "DELETE FROM webhook_endpoints WHERE workspace_id = ?1",
            [scope.workspace(step)?],
        )?,
        PurgeStep::Peers => execute(
            conn,
            "DELETE FROM peers WHERE workspace_id = ?1",
            [scope.workspace(step)?],
        )?,
        PurgeStep::WorkspaceRow => execute(
            conn,
            "DELETE FROM workspaces WHERE id = ?1 AND deleted_at IS NOT NULL",
            [scope.workspace(step)?],
        )?,
    };
    Ok(Ran::Rows(rows))
}

fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
    let rows = conn
        .prepare_cached(sql)
        .map_err(db_err)?
        .execute(params)
        .map_err(db_err)?;
    Ok(rows as u64)
}

/// A merge step or a batch of deletes (see `fts_purge`); a session's receipt counts
/// each batch.
fn messages(conn: &Connection, scope: Scope, batch: i64) -> Result<Ran> {
    let unit = match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => purge_unit_key(PurgeSession {
            workspace_id,
            session_id,
        }),
        Scope::Workspace { workspace_id } => {
            purge_workspace_unit_key(PurgeWorkspace { workspace_id })
        }
    };
    match fts_purge::step(conn, &unit, scope, batch)? {
        StepOutcome::Merged => Ok(Ran::Worked),
        StepOutcome::Deleted(removed) => {
            if let Scope::Session {
                workspace_id,
                session_id,
            } = scope
            {
                execute(
                    conn,
                    "UPDATE deletion_receipts SET messages_deleted = messages_deleted + ?3 WHERE workspace_id = ?1 AND session_id = ?2",
                    params![workspace_id, session_id, removed],
                )?;
            }
            Ok(Ran::Rows(removed as u64))
        }
        StepOutcome::Done => Ok(Ran::Rows(0)),
    }
}

/// Queues the deletion event; returns the deliveries queued.
fn announce(conn: &Connection, scope: Scope, tally: &Tally) -> Result<usize> {
    match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => {
            // Only the call that removed the row announces it, so a re-run sends nothing twice.
            if tally.removed(PurgeStep::Sessions) == 0 {
                return Ok(0);
            }
            let Some(receipt) = receipt(conn, workspace_id, session_id)? else {
                return Ok(0);
            };
            // The receipt was finished by this call: its finish is the event's time.
            let at = receipt.finished_at.unwrap_or_else(now_micros);
            webhooks::queue_event(conn, workspace_id, &Event::session_deleted(&receipt, at))
        }
        Scope::Workspace { workspace_id } => {
            let tombstone: Option<(String, Option<i64>)> = conn
                .prepare_cached("SELECT name, deleted_at FROM workspaces WHERE id = ?1")
                .map_err(db_err)?
                .query_row([workspace_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db_err)?;
            let Some((name, Some(requested_at))) = tombstone else {
                return Err(Error::Internal(format!(
                    "workspace {workspace_id} has no tombstone to announce"
                )));
            };
            // The endpoints hear of the deletion before they are removed with the rest.
            webhooks::queue_event(
                conn,
                workspace_id,
                &Event::workspace_deleted(&name, requested_at, now_micros()),
            )
        }
    }
}

fn receipt(conn: &Connection, workspace_id: i64, session_id: i64) -> Result<Option<Receipt>> {
    conn.prepare_cached(
        "SELECT workspace_name, session_name, messages_deleted, members_deleted, requested_at, finished_at \
         FROM deletion_receipts WHERE workspace_id = ?1 AND session_id = ?2",
    )
    .map_err(db_err)?
    .query_row(params![workspace_id, session_id], deletion::receipt_row)
    .optional()
    .map_err(db_err)
}
