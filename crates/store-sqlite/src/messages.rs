//! Message rows.

use engram_core::Result;
use engram_core::filter_sql::columns;
use engram_core::model::{
    Json, ListQuery, Message, NewMessage, Page, SessionPeerConfig, seq_window,
};
use engram_core::time::{join_times, now_micros};
use engram_core::validate::context_chunks;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dialect::list_page;
use crate::rows::{self, MESSAGE_COLS, json_text};
use crate::{db_err, embeddings, peers, sessions};

pub fn create(
    conn: &Connection,
    workspace: &str,
    session: &str,
    batch: Vec<NewMessage>,
) -> Result<Vec<Message>> {
    let (live, _) = sessions::ensure(conn, workspace, session)?;
    let default_config = SessionPeerConfig::default().to_json();
    let mut authors: Vec<&str> = batch.iter().map(|m| m.peer.as_str()).collect();
    authors.sort_unstable();
    authors.dedup();
    let now = now_micros();
    let joined = join_times(authors.len());
    for (author, at) in authors.into_iter().zip(joined) {
        let peer_id = peers::ensure(conn, live.ws_id, author)?;
        peers::join(conn, live.ws_id, live.id, peer_id, &default_config, at)?;
    }
    // The session row's counter hands out gap-free sequence numbers; it is
    // updated in the same transaction, so a failed request leaves no gap.
    let last: i64 = conn
        .prepare_cached(
            "UPDATE sessions SET last_seq = last_seq + ?1 WHERE id = ?2 RETURNING last_seq",
        )
        .map_err(db_err)?
        .query_row(params![batch.len() as i64, live.id], |r| r.get(0))
        .map_err(db_err)?;
    let first_seq = last - batch.len() as i64 + 1;
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, metadata, token_count, seq_in_session, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(db_err)?;
    let mut out = Vec::with_capacity(batch.len());
    let mut ids = Vec::with_capacity(batch.len());
    for (i, m) in batch.into_iter().enumerate() {
        let created_at = m.created_at.unwrap_or(now);
        insert
            .execute(params![
                live.ws_id,
                live.id,
                m.public_id,
                session,
                m.peer,
                m.content,
                json_text(&m.metadata),
                m.token_count,
                first_seq + i as i64,
                created_at
            ])
            .map_err(db_err)?;
        ids.push(conn.last_insert_rowid());
        out.push(Message {
            id: m.public_id,
            content: m.content,
            peer_id: m.peer,
            session_id: session.to_string(),
            metadata: m.metadata,
            created_at,
            workspace_id: workspace.to_string(),
            token_count: m.token_count,
        });
    }
    embeddings::enqueue_for_write(conn, live.ws_id, live.id, ids)?;
    Ok(out)
}

pub fn list(
    conn: &Connection,
    workspace: &str,
    session: &str,
    query: &ListQuery,
) -> Result<Page<Message>> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    if query.filter.is_none() {
        return unfiltered_page(conn, workspace, &live, query);
    }
    list_page(
        conn,
        columns::messages,
        workspace,
        MESSAGE_COLS,
        "messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2",
        vec![SqlValue::Integer(live.ws_id), SqlValue::Integer(live.id)],
        &["m.seq_in_session"],
        query,
        rows::message(workspace),
    )
}

fn unfiltered_page(
    conn: &Connection,
    workspace: &str,
    live: &sessions::Live,
    query: &ListQuery,
) -> Result<Page<Message>> {
    let total: i64 = conn
        .prepare_cached("SELECT last_seq FROM sessions WHERE id = ?1")
        .map_err(db_err)?
        .query_row([live.id], |r| r.get(0))
        .map_err(db_err)?;
    let (low, high) = seq_window(total, query.page, query.reverse);
    let sql = if query.reverse {
        format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2 \
             AND m.seq_in_session BETWEEN ?3 AND ?4 ORDER BY m.seq_in_session DESC"
        )
    } else {
        format!(
            "SELECT {MESSAGE_COLS} FROM messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2 \
             AND m.seq_in_session BETWEEN ?3 AND ?4 ORDER BY m.seq_in_session"
        )
    };
    let items = conn
        .prepare_cached(&sql)
        .map_err(db_err)?
        .query_map(
            params![live.ws_id, live.id, low, high],
            rows::message(workspace),
        )
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page::new(items, total, query.page))
}

pub fn get(
    conn: &Connection,
    workspace: &str,
    session: &str,
    public_id: &str,
) -> Result<Option<Message>> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(None);
    };
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLS} FROM messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2 AND m.public_id = ?3"
    ))
    .map_err(db_err)?
    .query_row(params![live.ws_id, live.id, public_id], rows::message(workspace))
    .optional()
    .map_err(db_err)
}

pub fn update_metadata(
    conn: &Connection,
    workspace: &str,
    session: &str,
    public_id: &str,
    metadata: Json,
) -> Result<Option<Message>> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(None);
    };
    let changed = conn
        .prepare_cached("UPDATE messages SET metadata = ?1 WHERE workspace_id = ?2 AND session_id = ?3 AND public_id = ?4")
        .map_err(db_err)?
        .execute(params![json_text(&metadata), live.ws_id, live.id, public_id])
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(None);
    }
    get(conn, workspace, session, public_id)
}

/// Walks back from the newest message in chunks until the budget is spent.
pub fn recent(
    conn: &Connection,
    workspace: &str,
    session: &str,
    budget: i64,
) -> Result<Vec<Message>> {
    let Some(live) = sessions::find(conn, workspace, session)? else {
        return Ok(vec![]);
    };
    if budget <= 0 {
        return Ok(vec![]);
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {MESSAGE_COLS}, m.seq_in_session FROM messages m WHERE m.workspace_id = ?1 AND m.session_id = ?2 \
             AND m.seq_in_session < ?3 ORDER BY m.seq_in_session DESC LIMIT ?4"
        ))
        .map_err(db_err)?;
    let to_message = rows::message(workspace);
    let mut out = Vec::new();
    let mut spent = 0i64;
    let mut before = i64::MAX;
    'outer: for chunk in context_chunks() {
        let mut rows = stmt
            .query(params![live.ws_id, live.id, before, chunk])
            .map_err(db_err)?;
        let mut read = 0;
        while let Some(r) = rows.next().map_err(db_err)? {
            read += 1;
            let message = to_message(r).map_err(db_err)?;
            if spent + message.token_count > budget {
                break 'outer;
            }
            spent += message.token_count;
            before = r.get(7).map_err(db_err)?;
            out.push(message);
        }
        if read < chunk {
            break;
        }
    }
    out.reverse();
    Ok(out)
}
