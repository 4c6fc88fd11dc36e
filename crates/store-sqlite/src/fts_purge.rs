//! Removing purged messages from the FTS5 index without leaving their words behind.
//!
//! The index runs with `secure-delete`, which removes a deleted message's terms from every
//! index segment at once instead of leaving them behind delete markers until a merge (a
//! plain delete followed by a full merge was tried: in some segment layouts FTS5 keeps
//! the delete markers, words included). Its cost per message grows with the number of
//! segments, so a purge that is a large share of the store first merges the index down to
//! one segment, in bounded steps; a full merge costs in proportion to the whole index, so
//! smaller purges skip it. Deletes then go in small batches so no step holds the single
//! writer for long; each batch's terms are read first, so the page keys they leave
//! stale can be replaced in the same step (see `fts_keys`).

use engram_core::Result;
use engram_core::purge::Scope;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::{db_err, fts_keys};

/// A purge merges the index first when it has more messages than this...
const MERGE_FIRST_ABOVE: i64 = 500;
/// ...and at least this share (1/n) of all stored messages. Measured on 2 cores: a merge
/// rewrites about 100,000 messages' index per second, secure-delete removes about 700
/// messages per second from a many-segment index and 7,000 from a merged one, so the
/// merge pays for itself from about 1/127 of the store.
const MERGE_FIRST_SHARE: i64 = 100;
/// Messages per step, so one step holds the writer for tens of milliseconds.
const STEP: i64 = 100;
/// Index pages one merge step writes (about 2 MB with 4 kB pages).
const MERGE_PAGES: i64 = 500;

/// The purge's messages, with the row limit as the last bind.
fn selection(scope: Scope, limit: i64) -> (&'static str, Vec<i64>) {
    match scope {
        Scope::Session {
            workspace_id,
            session_id,
        } => (
            "SELECT id FROM messages WHERE workspace_id = ?1 AND session_id = ?2 LIMIT ?3",
            vec![workspace_id, session_id, limit],
        ),
        Scope::Workspace { workspace_id } => (
            "SELECT id FROM messages WHERE workspace_id = ?1 LIMIT ?2",
            vec![workspace_id, limit],
        ),
    }
}

/// One step of a purge's message removal: a bounded merge of the index or a batch of
/// deletes. `unit_key` names the purge, which decides once whether to merge and merges at
/// most once however often it is resumed.
pub fn step(conn: &Connection, unit_key: &str, scope: Scope, batch: i64) -> Result<StepOutcome> {
    let merging = match merging(conn, unit_key)? {
        Some(merging) => merging,
        None => {
            let merging = merge_pays(conn, scope)?;
            conn.prepare_cached("INSERT INTO fts_purge_plans (unit_key, merging) VALUES (?1, ?2)")
                .map_err(db_err)?
                .execute(params![unit_key, merging])
                .map_err(db_err)?;
            merging
        }
    };
    if merging {
        let before = conn.total_changes();
        conn.prepare_cached("INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', ?1)")
            .map_err(db_err)?
            .execute([-MERGE_PAGES])
            .map_err(db_err)?;
        // FTS5's documented completion test: a merge with nothing to do changes < 2 rows.
        if conn.total_changes() - before >= 2 {
            return Ok(StepOutcome::Merged);
        }
        conn.prepare_cached("UPDATE fts_purge_plans SET merging = 0 WHERE unit_key = ?1")
            .map_err(db_err)?
            .execute([unit_key])
            .map_err(db_err)?;
    }
    let (select, binds) = selection(scope, batch.min(STEP));
    let ids = conn
        .prepare_cached(&format!("SELECT json_group_array(id) FROM ({select})"))
        .map_err(db_err)?
        .query_row(params_from_iter(binds), |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    let terms = fts_keys::terms_of(conn, &ids)?;
    let removed = conn
        .prepare_cached("DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?1))")
        .map_err(db_err)?
        .execute([&ids])
        .map_err(db_err)?;
    if removed > 0 {
        fts_keys::repair(conn, Some(&terms))?;
        return Ok(StepOutcome::Deleted(removed as i64));
    }
    conn.prepare_cached("DELETE FROM fts_purge_plans WHERE unit_key = ?1")
        .map_err(db_err)?
        .execute([unit_key])
        .map_err(db_err)?;
    Ok(StepOutcome::Done)
}

pub enum StepOutcome {
    Merged,
    Deleted(i64),
    Done,
}

/// The purge's plan: None before it decided, then whether a merge is still under way.
fn merging(conn: &Connection, unit_key: &str) -> Result<Option<bool>> {
    conn.prepare_cached("SELECT merging FROM fts_purge_plans WHERE unit_key = ?1")
        .map_err(db_err)?
        .query_row([unit_key], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

/// Counted once per purge, when it decides.
fn merge_pays(conn: &Connection, scope: Scope) -> Result<bool> {
    let (select, binds) = selection(scope, -1);
    let mine: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM ({select})"))
        .map_err(db_err)?
        .query_row(params_from_iter(binds), |r| r.get(0))
        .map_err(db_err)?;
    if mine <= MERGE_FIRST_ABOVE {
        return Ok(false);
    }
    let all: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM messages")
        .map_err(db_err)?
        .query_row([], |r| r.get(0))
        .map_err(db_err)?;
    Ok(mine * MERGE_FIRST_SHARE >= all)
}
