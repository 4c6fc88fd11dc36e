//! The PocketPaw view of a workspace's sessions, and imports with original times.
//! The queries mirror the SQLite engine's so both rank and cut text identically.

use async_trait::async_trait;
use engram_core::Result;
use engram_core::model::Message;
use engram_core::pocketpaw::{
    ImportOutcome, ImportedSession, MATCH_CHARS, PREVIEW_CHARS, PocketPawStore, SearchHit,
    SessionRow,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::rows::{self, MESSAGE_COLS, to_value};
use crate::store::PgStore;
use crate::{Fail, R, messages, sessions, workspaces};

const READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
/// The whitespace `btrim` strips when deciding whether a user message is blank.
const BLANK: &str = "chr(32) || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)";

fn ranked(extra: &str) -> String {
    format!(
        "SELECT s.id, s.name, s.metadata, s.created_at, s.last_seq, \
           COALESCE((SELECT m.created_at FROM messages m WHERE m.workspace_id = s.workspace_id \
             AND m.session_id = s.id AND m.seq_in_session = s.last_seq), s.created_at) AS last_activity{extra} \
         FROM sessions s WHERE s.workspace_id = $1 AND s.deleted_at IS NULL"
    )
}

fn summarised(inner: &str, extra: &str) -> String {
    format!(
        "SELECT t.name, t.metadata, t.created_at, t.last_activity, t.last_seq, \
           COALESCE((SELECT substr(m.content, 1, {PREVIEW_CHARS}) FROM messages m WHERE m.workspace_id = $1 \
             AND m.session_id = t.id AND m.seq_in_session = t.last_seq), ''), \
           CASE WHEN jsonb_typeof(t.metadata -> 'title') = 'string' THEN NULL ELSE \
             (SELECT substr(btrim(m.content, {BLANK}), 1, 400) FROM messages m WHERE m.workspace_id = $1 \
              AND m.session_id = t.id AND m.peer_name = 'user' AND btrim(m.content, {BLANK}) <> '' \
              ORDER BY m.seq_in_session LIMIT 1) END{extra} \
         FROM ({inner}) t ORDER BY t.last_activity DESC, t.id DESC"
    )
}

fn session_row(r: &PgRow) -> sqlx::Result<SessionRow> {
    Ok(SessionRow {
        name: r.try_get(0)?,
        metadata: rows::json(r, 1)?,
        created_at: r.try_get(2)?,
        last_activity: r.try_get(3)?,
        message_count: r.try_get(4)?,
        preview: r.try_get(5)?,
        first_user_text: r.try_get(6)?,
    })
}

async fn list(c: &mut PgConnection, workspace: &str, limit: i64) -> R<(Vec<SessionRow>, i64)> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok((vec![], 0));
    };
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sessions WHERE workspace_id = $1 AND deleted_at IS NULL",
    )
    .bind(ws_id)
    .fetch_one(&mut *c)
    .await?;
    let inner = format!(
        "{} ORDER BY last_activity DESC, s.id DESC LIMIT $2",
        ranked("")
    );
    let found = sqlx::query(AssertSqlSafe(summarised(&inner, "")))
        .bind(ws_id)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
    let items = found.iter().map(session_row).collect::<Result<_, _>>()?;
    Ok((items, total))
}

/// Whether the server has the built-in `pg_c_utf8` collation (PostgreSQL 17 and later),
/// whose `lower` folds every Unicode letter as PocketPaw's search (Python's `str.lower`)
/// does, whatever the database's own locale; older servers fold by that locale.
async fn unicode_lower(c: &mut PgConnection) -> R<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'pg_c_utf8')",
    )
    .fetch_one(&mut *c)
    .await?)
}

async fn search(
    c: &mut PgConnection,
    workspace: &str,
    needle: &str,
    limit: i64,
) -> R<Vec<SearchHit>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(vec![]);
    };
    let lower = if unicode_lower(c).await? {
        "lower(m.content COLLATE pg_c_utf8)"
    } else {
        "lower(m.content)"
    };
    let hit = format!(
        ", (SELECT m.seq_in_session FROM messages m WHERE m.workspace_id = s.workspace_id \
           AND m.session_id = s.id AND strpos({lower}, $3) > 0 \
           ORDER BY m.seq_in_session LIMIT 1) AS hit"
    );
    let inner = format!(
        "SELECT * FROM ({}) r WHERE hit IS NOT NULL ORDER BY last_activity DESC, id DESC LIMIT $2",
        ranked(&hit)
    );
    let extra = format!(
        ", (SELECT substr(h.content, 1, {MATCH_CHARS}) FROM messages h WHERE h.workspace_id = $1 \
             AND h.session_id = t.id AND h.seq_in_session = t.hit), \
           (SELECT h.peer_name FROM messages h WHERE h.workspace_id = $1 \
             AND h.session_id = t.id AND h.seq_in_session = t.hit)"
    );
    let found = sqlx::query(AssertSqlSafe(summarised(&inner, &extra)))
        .bind(ws_id)
        .bind(limit)
        .bind(needle)
        .fetch_all(&mut *c)
        .await?;
    Ok(found
        .iter()
        .map(|r| {
            Ok(SearchHit {
                session: session_row(r)?,
                matched: r.try_get(7)?,
                role: r.try_get(8)?,
            })
        })
        .collect::<sqlx::Result<_>>()?)
}

async fn set_title(c: &mut PgConnection, workspace: &str, session: &str, title: &str) -> R<bool> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(false);
    };
    sqlx::query(
        "UPDATE sessions SET metadata = metadata || jsonb_build_object('title', $3::text, 'user_title', $3::text) \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(title)
    .execute(&mut *c)
    .await?;
    Ok(true)
}

async fn all_messages(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
) -> R<Option<Vec<Message>>> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(None);
    };
    let found = sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLS} FROM messages m WHERE m.workspace_id = $1 AND m.session_id = $2 \
         ORDER BY m.seq_in_session"
    )))
    .bind(live.ws_id)
    .bind(live.id)
    .fetch_all(&mut *c)
    .await?;
    let items = found
        .iter()
        .map(|r| rows::message(r, 0, workspace))
        .collect::<Result<_, _>>()?;
    Ok(Some(items))
}

async fn import(
    c: &mut PgConnection,
    workspace: &str,
    session: &ImportedSession,
) -> R<ImportOutcome> {
    let (held, created) = match sessions::find(c, workspace, &session.name).await? {
        Some(live) => {
            let held: i64 = sqlx::query_scalar(
                "SELECT last_seq FROM sessions WHERE workspace_id = $1 AND id = $2 FOR UPDATE",
            )
            .bind(live.ws_id)
            .bind(live.id)
            .fetch_one(&mut *c)
            .await?;
            (held as usize, false)
        }
        None => {
            let ws_id = workspaces::ensure(c, workspace).await?;
            sqlx::query(
                "INSERT INTO sessions (workspace_id, name, metadata, configuration, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ws_id)
            .bind(&session.name)
            .bind(to_value(&session.metadata))
            .bind(to_value(&session.configuration))
            .bind(session.created_at)
            .execute(&mut *c)
            .await?;
            (0, true)
        }
    };
    let fresh = session.messages.get(held..).unwrap_or_default();
    if !fresh.is_empty() {
        messages::create(c, workspace, &session.name, fresh).await?;
    }
    Ok(ImportOutcome {
        created,
        added: fresh.len(),
    })
}

/// Runs one store operation in its own transaction.
macro_rules! tx {
    ($begin:expr, |$c:ident| $body:expr) => {{
        let outcome: R<_> = async {
            let mut tx = $begin.await?;
            let $c: &mut PgConnection = &mut tx;
            let out = $body?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        outcome.map_err(Fail::into_error)
    }};
}

#[async_trait]
impl PocketPawStore for PgStore {
    async fn pp_list(&self, workspace: &str, limit: i64) -> Result<(Vec<SessionRow>, i64)> {
        tx!(self.pool.begin_with(READ), |c| list(c, workspace, limit)
            .await)
    }

    async fn pp_search(&self, workspace: &str, needle: &str, limit: i64) -> Result<Vec<SearchHit>> {
        tx!(self.pool.begin_with(READ), |c| search(
            c, workspace, needle, limit
        )
        .await)
    }

    async fn pp_set_title(&self, workspace: &str, session: &str, title: &str) -> Result<bool> {
        tx!(self.pool.begin(), |c| set_title(
            c, workspace, session, title
        )
        .await)
    }

    async fn session_messages(
        &self,
        workspace: &str,
        session: &str,
    ) -> Result<Option<Vec<Message>>> {
        tx!(self.pool.begin_with(READ), |c| all_messages(
            c, workspace, session
        )
        .await)
    }

    async fn import_session(
        &self,
        workspace: &str,
        session: ImportedSession,
    ) -> Result<ImportOutcome> {
        tx!(self.pool.begin(), |c| import(c, workspace, &session).await)
    }
}
