//! The PocketPaw view of a workspace's sessions, and imports with original times.

use async_trait::async_trait;
use engram_core::Result;
use engram_core::model::{Message, NewMessage};
use engram_core::pocketpaw::{
    ImportOutcome, ImportedSession, MATCH_CHARS, PREVIEW_CHARS, PocketPawStore, SearchHit,
    SessionRow,
};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::rows::{self, MESSAGE_COLS, json_text};
use crate::store::SqliteStore;
use crate::{db_err, messages, sessions, workspaces};

/// Registers `engram_lower`: Unicode lower-casing as PocketPaw's search does it (Python's
/// `str.lower`), where SQLite's `lower` folds ASCII letters only.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_scalar_function(
        "engram_lower",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| Ok(ctx.get_raw(0).as_str_or_null()?.map(str::to_lowercase)),
    )
}

/// The whitespace `trim` strips when deciding whether a user message is blank.
const BLANK: &str = "' ' || char(9, 10, 11, 12, 13)";

/// Live sessions with their last activity; `{extra}` adds columns, `{filter}` rows.
fn ranked(extra: &str, filter: &str) -> String {
    format!(
        "SELECT s.id, s.name, s.metadata, s.created_at, s.last_seq, \
           COALESCE((SELECT m.created_at FROM messages m WHERE m.workspace_id = s.workspace_id \
             AND m.session_id = s.id AND m.seq_in_session = s.last_seq), s.created_at) AS last_activity{extra} \
         FROM sessions s WHERE s.workspace_id = ?1 AND s.deleted_at IS NULL{filter}"
    )
}

/// Preview and fallback title, computed only for the rows a page returns.
fn summarised(inner: &str, extra: &str) -> String {
    format!(
        "SELECT t.name, t.metadata, t.created_at, t.last_activity, t.last_seq, \
           COALESCE((SELECT substr(m.content, 1, {PREVIEW_CHARS}) FROM messages m WHERE m.workspace_id = ?1 \
             AND m.session_id = t.id AND m.seq_in_session = t.last_seq), ''), \
           CASE WHEN json_type(t.metadata, '$.title') = 'text' THEN NULL ELSE \
             (SELECT substr(trim(m.content, {BLANK}), 1, 400) FROM messages m WHERE m.workspace_id = ?1 \
              AND m.session_id = t.id AND m.peer_name = 'user' AND trim(m.content, {BLANK}) <> '' \
              ORDER BY m.seq_in_session LIMIT 1) END{extra} \
         FROM ({inner}) t ORDER BY t.last_activity DESC, t.id DESC"
    )
}

fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        name: r.get(0)?,
        metadata: rows::json(&r.get::<_, String>(1)?),
        created_at: r.get(2)?,
        last_activity: r.get(3)?,
        message_count: r.get(4)?,
        preview: r.get(5)?,
        first_user_text: r.get(6)?,
    })
}

fn list(conn: &Connection, workspace: &str, limit: i64) -> Result<(Vec<SessionRow>, i64)> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok((vec![], 0));
    };
    let total: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM sessions WHERE workspace_id = ?1 AND deleted_at IS NULL",
        )
        .map_err(db_err)?
        .query_row([ws_id], |r| r.get(0))
        .map_err(db_err)?;
    let inner = format!(
        "{} ORDER BY last_activity DESC, s.id DESC LIMIT ?2",
        ranked("", "")
    );
    let items = conn
        .prepare_cached(&summarised(&inner, ""))
        .map_err(db_err)?
        .query_map(params![ws_id, limit], session_row)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok((items, total))
}

fn search(conn: &Connection, workspace: &str, needle: &str, limit: i64) -> Result<Vec<SearchHit>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(vec![]);
    };
    // The first matching message of each session, found by one correlated lookup per
    // session that stops at its first hit; sessions without one drop out before paging.
    let hit = ", (SELECT m.seq_in_session FROM messages m WHERE m.workspace_id = s.workspace_id \
               AND m.session_id = s.id AND instr(engram_lower(m.content), ?3) > 0 \
               ORDER BY m.seq_in_session LIMIT 1) AS hit";
    let inner = format!(
        "SELECT * FROM ({}) WHERE hit IS NOT NULL ORDER BY last_activity DESC, id DESC LIMIT ?2",
        ranked(hit, "")
    );
    let extra = format!(
        ", (SELECT substr(h.content, 1, {MATCH_CHARS}) FROM messages h WHERE h.workspace_id = ?1 \
             AND h.session_id = t.id AND h.seq_in_session = t.hit), \
           (SELECT h.peer_name FROM messages h WHERE h.workspace_id = ?1 \
             AND h.session_id = t.id AND h.seq_in_session = t.hit)"
    );
    conn.prepare_cached(&summarised(&inner, &extra))
        .map_err(db_err)?
        .query_map(params![ws_id, limit, needle], |r| {
            Ok(SearchHit {
                session: session_row(r)?,
                matched: r.get(7)?,
                role: r.get(8)?,
            })
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)
}

fn set_title(conn: &Connection, workspace: &str, session: &str, title: &str) -> Result<bool> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(false);
    };
    conn.prepare_cached(
        "UPDATE sessions SET metadata = json_set(metadata, '$.title', ?2, '$.user_title', ?2) WHERE id = ?1",
    )
    .map_err(db_err)?
    .execute(params![live.id, title])
    .map_err(db_err)?;
    Ok(true)
}

fn all_messages(conn: &Connection, workspace: &str, session: &str) -> Result<Option<Vec<Message>>> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(None);
    };
    let items = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2 \
             ORDER BY m.seq_in_session"
        ))
        .map_err(db_err)?
        .query_map(params![live.ws_id, live.id], rows::message(workspace))
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Some(items))
}

fn import(conn: &Connection, workspace: &str, session: ImportedSession) -> Result<ImportOutcome> {
    let existing = sessions::find(conn, workspace, &session.name)?;
    let (held, created) = match existing {
        Some(live) => {
            let held: i64 = conn
                .prepare_cached("SELECT last_seq FROM sessions WHERE id = ?1")
                .map_err(db_err)?
                .query_row([live.id], |r| r.get(0))
                .optional()
                .map_err(db_err)?
                .unwrap_or_default();
            (held as usize, false)
        }
        None => {
            let ws_id = workspaces::ensure(conn, workspace)?;
            conn.prepare_cached(
                "INSERT INTO sessions (workspace_id, name, metadata, configuration, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(db_err)?
            .execute(params![
                ws_id,
                session.name,
                json_text(&session.metadata),
                json_text(&session.configuration),
                session.created_at
            ])
            .map_err(db_err)?;
            (0, true)
        }
    };
    let fresh: Vec<NewMessage> = session.messages.into_iter().skip(held).collect();
    let added = fresh.len();
    if added > 0 {
        messages::create(conn, workspace, &session.name, fresh)?;
    }
    Ok(ImportOutcome { created, added })
}

fn owned(s: &str) -> String {
    s.to_string()
}

#[async_trait]
impl PocketPawStore for SqliteStore {
    async fn pp_list(&self, workspace: &str, limit: i64) -> Result<(Vec<SessionRow>, i64)> {
        let ws = owned(workspace);
        self.readers.read(move |c| list(c, &ws, limit)).await
    }

    async fn pp_search(&self, workspace: &str, needle: &str, limit: i64) -> Result<Vec<SearchHit>> {
        let (ws, needle) = (owned(workspace), owned(needle));
        self.readers
            .read(move |c| search(c, &ws, &needle, limit))
            .await
    }

    async fn pp_set_title(&self, workspace: &str, session: &str, title: &str) -> Result<bool> {
        let (ws, s, title) = (owned(workspace), owned(session), owned(title));
        self.writer
            .write(move |c| set_title(c, &ws, &s, &title))
            .await
    }

    async fn session_messages(
        &self,
        workspace: &str,
        session: &str,
    ) -> Result<Option<Vec<Message>>> {
        let (ws, s) = (owned(workspace), owned(session));
        self.readers.read(move |c| all_messages(c, &ws, &s)).await
    }

    async fn import_session(
        &self,
        workspace: &str,
        session: ImportedSession,
    ) -> Result<ImportOutcome> {
        let ws = owned(workspace);
        self.writer.write(move |c| import(c, &ws, session)).await
    }
}
