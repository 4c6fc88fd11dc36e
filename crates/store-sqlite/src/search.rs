//! Message search on SQLite: FTS5 for words, LIKE for substrings, sqlite-vec for
//! vectors (partitioned by workspace so a query scans one workspace), fused in Rust.

use async_trait::async_trait;
use engram_core::filter::like_pattern;
use engram_core::filter_sql::columns;
use engram_core::filter_sql::render;
use engram_core::model::Message;
use engram_core::queue::Job;
use engram_core::search::{
    EmbedSelection, EmbedSource, KeywordMatch, NewEmbedding, RANK_WINDOW, SUBSTRING_WINDOW,
    SearchRequest, SearchScope, SearchStore, dedupe, fuse, keyword_match, substring_words,
};
use engram_core::time::Micros;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::dialect::Sqlite;
use crate::rows::{self, MESSAGE_COLS};
use crate::{SqliteStore, db_err, embeddings, sessions, workspaces};

/// vec0 answers at most this many neighbours per query.
const MAX_K: usize = 4096;

/// The conditions every candidate query shares: live workspace, live session, scope
/// and the caller's filter, with their bind values (numbered from 1).
struct Conditions {
    sql: String,
    binds: Vec<SqlValue>,
}

fn conditions(
    conn: &Connection,
    workspace: &str,
    request: &SearchRequest,
) -> engram_core::Result<Option<Conditions>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(None);
    };
    let mut binds = vec![SqlValue::Integer(ws_id)];
    let mut sql = "m.workspace_id = ?1 AND s.deleted_at IS NULL".to_string();
    match &request.scope {
        SearchScope::Workspace => {}
        SearchScope::Peer(peer) => {
            binds.push(SqlValue::Text(peer.clone()));
            sql.push_str(" AND m.peer_name = ?2");
        }
        SearchScope::Session(name) => {
            let Some(live) = sessions::find(conn, workspace, name)? else {
                return Ok(None);
            };
            binds.push(SqlValue::Integer(live.id));
            sql.push_str(" AND m.session_id = ?2");
        }
    }
    let mut dialect = Sqlite::new(columns::messages, workspace, binds);
    if let Some(filter) = &request.filter {
        let cond = render(filter, &mut dialect);
        sql.push_str(&format!(" AND {cond}"));
    }
    Ok(Some(Conditions {
        sql,
        binds: dialect.binds,
    }))
}

fn ids(conn: &Connection, sql: &str, binds: &[SqlValue]) -> engram_core::Result<Vec<i64>> {
    conn.prepare_cached(sql)
        .map_err(db_err)?
        .query_map(params_from_iter(binds.iter()), |r| r.get(0))
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<i64>>>()
        .map_err(db_err)
}

const LIVE: &str = "JOIN sessions s ON s.id = m.session_id";
const FROM: &str = "messages m JOIN sessions s ON s.id = m.session_id";

fn keyword(
    conn: &Connection,
    c: &Conditions,
    request: &SearchRequest,
) -> engram_core::Result<Vec<i64>> {
    let n = request.candidates();
    let mut found = Vec::new();
    if let KeywordMatch::Words(expr) = keyword_match(&request.query) {
        found = ranked_words(conn, c, expr, n)?;
    }
    if found.len() < n {
        let more = substring(conn, c, &request.query, &found, n - found.len())?;
        found.extend(more);
    }
    Ok(found)
}

/// The best `n` word matches. The index ranks its own top rows first (without joining
/// every match), widening until enough of them pass the scope and filter; past
/// `RANK_WINDOW` matches only the newest are ranked, unless too few of those pass.
fn ranked_words(
    conn: &Connection,
    c: &Conditions,
    expr: String,
    n: usize,
) -> engram_core::Result<Vec<i64>> {
    let window: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?1 \
             ORDER BY rowid DESC LIMIT 1 OFFSET {}",
            RANK_WINDOW - 1
        ))
        .map_err(db_err)?
        .query_row([&expr], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    let mut binds = c.binds.clone();
    binds.push(SqlValue::Text(expr));
    let p = binds.len();
    let mut found = Vec::new();
    for floor in [window, None] {
        let floor = floor.unwrap_or(0);
        let mut top = (n * 10).max(200);
        loop {
            found = ids(
                conn,
                &format!(
                    "WITH top AS (SELECT rowid AS id, rank FROM messages_fts \
                     WHERE messages_fts MATCH ?{p} AND rowid >= {floor} ORDER BY rank LIMIT {top}) \
                     SELECT m.id FROM top JOIN messages m ON m.id = top.id {LIVE} \
                     WHERE {} ORDER BY top.rank, m.created_at DESC LIMIT {n}",
                    c.sql
                ),
                &binds,
            )?;
            if found.len() >= n {
                return Ok(found);
            }
            let matches: i64 = conn
                .prepare_cached(&format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM messages_fts \
                     WHERE messages_fts MATCH ?1 AND rowid >= {floor} LIMIT {top})"
                ))
                .map_err(db_err)?
                .query_row([&binds[p - 1]], |r| r.get(0))
                .map_err(db_err)?;
            if (matches as usize) < top {
                break;
            }
            top *= 8;
        }
        if floor == 0 {
            break;
        }
    }
    Ok(found)
}

/// Newest messages containing `query` as a case-insensitive substring, excluding
/// `found`. Whole words of the query narrow the candidates through the index; with
/// none, only the newest `SUBSTRING_WINDOW` messages of the workspace are looked at.
fn substring(
    conn: &Connection,
    c: &Conditions,
    query: &str,
    found: &[i64],
    k: usize,
) -> engram_core::Result<Vec<i64>> {
    let mut binds = c.binds.clone();
    binds.push(SqlValue::Text(like_pattern(query)));
    let p = binds.len();
    let exclude = if found.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = found.iter().map(i64::to_string).collect();
        format!(" AND m.id NOT IN ({})", list.join(","))
    };
    let sql = match substring_words(query) {
        Some(words) => {
            let expr: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
            binds.push(SqlValue::Text(expr.join(" ")));
            format!(
                "SELECT m.id FROM messages_fts f JOIN messages m ON m.id = f.rowid {LIVE} \
                 WHERE messages_fts MATCH ?{} AND {} AND m.content LIKE ?{p} ESCAPE '\\'{exclude} \
                 ORDER BY m.created_at DESC, m.id DESC LIMIT {k}",
                p + 1,
                c.sql
            )
        }
        None => format!(
            "SELECT m.id FROM {FROM} WHERE {} AND m.content LIKE ?{p} ESCAPE '\\'{exclude} \
             AND m.created_at >= COALESCE((SELECT created_at FROM messages WHERE workspace_id = ?1 \
             ORDER BY created_at DESC LIMIT 1 OFFSET {}), 0) \
             ORDER BY m.created_at DESC, m.id DESC LIMIT {k}",
            c.sql,
            SUBSTRING_WINDOW - 1
        ),
    };
    ids(conn, &sql, &binds)
}

fn has_vectors(conn: &Connection) -> engram_core::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'message_vectors')",
    )
    .map_err(db_err)?
    .query_row([], |r| r.get(0))
    .map_err(db_err)
}

pub(crate) fn vector_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn semantic(
    conn: &Connection,
    c: &Conditions,
    request: &SearchRequest,
    vector: &[f32],
) -> engram_core::Result<Vec<i64>> {
    if !has_vectors(conn)? {
        return Ok(vec![]);
    }
    let n = request.candidates();
    // Chunks, other sessions and the caller's filter thin the neighbours out after
    // the index answers, so it is asked for more than are needed.
    let k = (n * 20).clamp(64, MAX_K);
    let mut binds = c.binds.clone();
    binds.push(SqlValue::Blob(vector_blob(vector)));
    let p = binds.len();
    let session = match request.scope {
        SearchScope::Session(_) => " AND session_id = ?2",
        _ => "",
    };
    let rows = ids(
        conn,
        &format!(
            "WITH knn AS (SELECT rowid, distance FROM message_vectors \
             WHERE embedding MATCH ?{p} AND k = {k} AND workspace_id = ?1{session}) \
             SELECT e.message_id FROM knn JOIN message_embeddings e ON e.id = knn.rowid \
             JOIN messages m ON m.id = e.message_id {LIVE} WHERE {} ORDER BY knn.distance",
            c.sql
        ),
        &binds,
    )?;
    let mut unique = dedupe(rows);
    unique.truncate(n);
    Ok(unique)
}

/// Loads messages by internal id, in the given order, skipping any whose session was
/// deleted since the candidates were ranked.
fn load(conn: &Connection, workspace: &str, order: &[i64]) -> engram_core::Result<Vec<Message>> {
    if order.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = order.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT {MESSAGE_COLS}, m.id FROM {FROM} WHERE m.id IN ({}) AND s.deleted_at IS NULL",
        list.join(",")
    );
    let to_message = rows::message(workspace);
    let mut found: std::collections::HashMap<i64, Message> = conn
        .prepare(&sql)
        .map_err(db_err)?
        .query_map([], |r| Ok((r.get::<_, i64>(7)?, to_message(r)?)))
        .map_err(db_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(db_err)?;
    Ok(order.iter().filter_map(|id| found.remove(id)).collect())
}

pub fn run(
    conn: &Connection,
    workspace: &str,
    request: &SearchRequest,
) -> engram_core::Result<Vec<Message>> {
    let Some(c) = conditions(conn, workspace, request)? else {
        return Ok(vec![]);
    };
    let mut lists = Vec::with_capacity(2);
    if let Some(vector) = &request.vector {
        lists.push(semantic(conn, &c, request, vector)?);
    }
    lists.push(keyword(conn, &c, request)?);
    // One list fuses into its own order, so keyword-only search needs no branch.
    let ranked = fuse(&lists, request.limit);
    load(conn, workspace, &ranked)
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search_messages(
        &self,
        workspace: &str,
        request: SearchRequest,
    ) -> engram_core::Result<Vec<Message>> {
        let ws = workspace.to_string();
        self.readers.read(move |c| run(c, &ws, &request)).await
    }

    async fn embedding_model(&self) -> engram_core::Result<Option<(String, usize)>> {
        self.readers.read(embeddings::model).await
    }

    async fn enable_embeddings(&self, model: &str, dimension: usize) -> engram_core::Result<()> {
        let model = model.to_string();
        self.writer
            .write(move |c| embeddings::enable(c, &model, dimension))
            .await
    }

    async fn messages_to_embed(
        &self,
        which: EmbedSelection,
    ) -> engram_core::Result<Vec<EmbedSource>> {
        self.readers
            .read(move |c| embeddings::to_embed(c, &which))
            .await
    }

    async fn store_embeddings(
        &self,
        job: &Job,
        rows: Vec<NewEmbedding>,
        lease_until: Micros,
    ) -> engram_core::Result<usize> {
        let job = job.clone();
        self.writer
            .write(move |c| embeddings::store(c, &job, rows, lease_until))
            .await
    }
}
