//! Message search on PostgreSQL: `tsvector` for words, ILIKE for substrings, pgvector
//! (HNSW) for vectors, fused in Rust exactly as on SQLite.

use async_trait::async_trait;
use engram_core::filter::like_pattern;
use engram_core::filter_sql::columns;
use engram_core::filter_sql::{Bind, render};
use engram_core::model::Message;
use engram_core::queue::Job;
use engram_core::search::{
    EmbedSelection, EmbedSource, KeywordMatch, NewEmbedding, RANK_WINDOW, SUBSTRING_WINDOW,
    SearchRequest, SearchScope, SearchStore, dedupe, fuse, keyword_match, substring_words,
};
use engram_core::time::Micros;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::dialect::{Pg, arguments};
use crate::rows::{self, MESSAGE_COLS};
use crate::{PgStore, R, embeddings, sessions, workspaces};

/// Bounds how many index entries one vector query may visit.
const MAX_EF_SEARCH: usize = 1000;

const LIVE: &str = "JOIN sessions s ON s.workspace_id = m.workspace_id AND s.id = m.session_id";

/// The conditions every candidate query shares: live workspace, live session, scope
/// and the caller's filter, with their bind values (numbered from $1).
struct Conditions {
    ws_id: i64,
    sql: String,
    binds: Vec<Bind>,
}

async fn conditions(
    c: &mut PgConnection,
    workspace: &str,
    request: &SearchRequest,
) -> R<Option<Conditions>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(None);
    };
    let mut binds = vec![Bind::Int(ws_id)];
    let mut sql = "m.workspace_id = $1 AND s.deleted_at IS NULL".to_string();
    match &request.scope {
        SearchScope::Workspace => {}
        SearchScope::Peer(peer) => {
            binds.push(Bind::Text(peer.clone()));
            sql.push_str(" AND m.peer_name = $2");
        }
        SearchScope::Session(name) => {
            let Some(live) = sessions::find(c, workspace, name).await? else {
                return Ok(None);
            };
            binds.push(Bind::Int(live.id));
            sql.push_str(" AND m.session_id = $2");
        }
    }
    let mut dialect = Pg::new(columns::messages, workspace, binds);
    if let Some(filter) = &request.filter {
        let cond = render(filter, &mut dialect);
        sql.push_str(&format!(" AND {cond}"));
    }
    Ok(Some(Conditions {
        ws_id,
        sql,
        binds: dialect.binds,
    }))
}

async fn ids(c: &mut PgConnection, sql: String, binds: &[Bind]) -> R<Vec<i64>> {
    let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(binds)?)
        .fetch_all(c)
        .await?;
    rows.iter()
        .map(|r: &PgRow| r.try_get(0))
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

async fn keyword(c: &mut PgConnection, cond: &Conditions, request: &SearchRequest) -> R<Vec<i64>> {
    let n = request.candidates();
    let mut found = Vec::new();
    if let KeywordMatch::Words(_) = keyword_match(&request.query) {
        found = ranked_words(c, cond, &request.query, n).await?;
    }
    if found.len() < n {
        let more = substring(c, cond, &request.query, &found, n - found.len()).await?;
        found.extend(more);
    }
    Ok(found)
}

/// The best `n` word matches; past `RANK_WINDOW` matches in the workspace only the
/// newest are ranked, unless too few of those pass the scope and filter.
async fn ranked_words(
    c: &mut PgConnection,
    cond: &Conditions,
    query: &str,
    n: usize,
) -> R<Vec<i64>> {
    let mut binds = cond.binds.clone();
    binds.push(Bind::Text(query.to_string()));
    let p = binds.len();
    let q = format!("plainto_tsquery('english', ${p})");
    let window: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT id FROM messages WHERE workspace_id = $1 AND content_tsv @@ plainto_tsquery('english', $2) \
         ORDER BY id DESC LIMIT 1 OFFSET {}",
        RANK_WINDOW - 1
    )))
    .bind(cond.ws_id)
    .bind(query)
    .fetch_optional(&mut *c)
    .await?;
    let mut found = Vec::new();
    for floor in [window, None] {
        found = ids(
            c,
            format!(
                "SELECT m.id FROM messages m {LIVE} \
                 WHERE m.content_tsv @@ {q} AND m.id >= {} AND {} \
                 ORDER BY ts_rank(m.content_tsv, {q}) DESC, m.created_at DESC LIMIT {n}",
                floor.unwrap_or(0),
                cond.sql
            ),
            &binds,
        )
        .await?;
        if found.len() >= n || floor.is_none() {
            break;
        }
    }
    Ok(found)
}

/// Whether PostgreSQL's parser splits text like `query` into plain words: it keeps
/// emails, host names, URLs, paths and numbers like `3.14` as single tokens, so the
/// words between such separators are not in the index on their own.
fn parsed_as_words(query: &str) -> bool {
    query
        .chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || ",;!?()\"'-".contains(c))
}

/// Newest messages containing `query` as a case-insensitive substring, excluding
/// `found`. Whole words of the query narrow the candidates through the index; with
/// none, only the newest `SUBSTRING_WINDOW` messages of the workspace are looked at.
async fn substring(
    c: &mut PgConnection,
    cond: &Conditions,
    query: &str,
    found: &[i64],
    k: usize,
) -> R<Vec<i64>> {
    let mut binds = cond.binds.clone();
    binds.push(Bind::Text(like_pattern(query)));
    let p = binds.len();
    let exclude = if found.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = found.iter().map(i64::to_string).collect();
        format!(" AND m.id NOT IN ({})", list.join(","))
    };
    let narrow = match substring_words(query).filter(|_| parsed_as_words(query)) {
        Some(words) => {
            binds.push(Bind::Text(words.join(" ")));
            // Stop words alone make an empty query, which narrows nothing.
            let q = format!("plainto_tsquery('english', ${})", p + 1);
            format!(" AND (numnode({q}) = 0 OR m.content_tsv @@ {q})")
        }
        None => format!(
            " AND m.created_at >= COALESCE((SELECT created_at FROM messages WHERE workspace_id = $1 \
             ORDER BY created_at DESC LIMIT 1 OFFSET {}), 0)",
            SUBSTRING_WINDOW - 1
        ),
    };
    ids(
        c,
        format!(
            "SELECT m.id FROM messages m {LIVE} WHERE {} AND m.content ILIKE ${p} ESCAPE '\\'{exclude}{narrow} \
             ORDER BY m.created_at DESC, m.id DESC LIMIT {k}",
            cond.sql
        ),
        &binds,
    )
    .await
}

async fn semantic(
    c: &mut PgConnection,
    cond: &Conditions,
    request: &SearchRequest,
    vector: &[f32],
) -> R<Vec<i64>> {
    let n = request.candidates();
    let dim = vector.len();
    // Chunks, other sessions and the caller's filter thin the neighbours out after
    // the index answers; iterative scans keep reading the index until enough pass.
    let ef = (n * 4).clamp(40, MAX_EF_SEARCH);
    sqlx::query(AssertSqlSafe(format!("SET LOCAL hnsw.ef_search = {ef}")))
        .execute(&mut *c)
        .await?;
    sqlx::query("SET LOCAL hnsw.iterative_scan = strict_order")
        .execute(&mut *c)
        .await?;
    let mut binds = cond.binds.clone();
    binds.push(Bind::Text(embeddings::literal(vector)));
    let p = binds.len();
    let rows = ids(
        c,
        format!(
            "SELECT e.message_id FROM message_embeddings e \
             JOIN messages m ON m.workspace_id = e.workspace_id AND m.id = e.message_id {LIVE} \
             WHERE e.workspace_id = $1 AND {} \
             ORDER BY e.embedding::vector({dim}) <=> ${p}::vector({dim}) LIMIT {}",
            cond.sql,
            n * 4
        ),
        &binds,
    )
    .await?;
    let mut unique = dedupe(rows);
    unique.truncate(n);
    Ok(unique)
}

/// Loads messages by internal id, in the given order.
async fn load(c: &mut PgConnection, workspace: &str, ws_id: i64, order: &[i64]) -> R<Vec<Message>> {
    if order.is_empty() {
        return Ok(vec![]);
    }
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLS}, m.id FROM messages m {LIVE} \
         WHERE m.workspace_id = $1 AND m.id = ANY($2) AND s.deleted_at IS NULL"
    )))
    .bind(ws_id)
    .bind(order)
    .fetch_all(&mut *c)
    .await?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for r in &rows {
        found.insert(r.try_get::<i64, _>(7)?, rows::message(r, 0, workspace)?);
    }
    Ok(order.iter().filter_map(|id| found.remove(id)).collect())
}

async fn run(c: &mut PgConnection, workspace: &str, request: &SearchRequest) -> R<Vec<Message>> {
    let Some(cond) = conditions(c, workspace, request).await? else {
        return Ok(vec![]);
    };
    let mut lists = Vec::with_capacity(2);
    if let Some(vector) = &request.vector {
        lists.push(semantic(c, &cond, request, vector).await?);
    }
    lists.push(keyword(c, &cond, request).await?);
    // One list fuses into its own order, so keyword-only search needs no branch.
    let ranked = fuse(&lists, request.limit);
    load(c, workspace, cond.ws_id, &ranked).await
}

#[async_trait]
impl SearchStore for PgStore {
    async fn search_messages(
        &self,
        workspace: &str,
        request: SearchRequest,
    ) -> engram_core::Result<Vec<Message>> {
        reading!(self, |c| run(c, workspace, &request).await)
    }

    async fn embedding_model(&self) -> engram_core::Result<Option<(String, usize)>> {
        reading!(self, |c| embeddings::model(c).await)
    }

    async fn enable_embeddings(&self, model: &str, dimension: usize) -> engram_core::Result<()> {
        writing!(self, |c| embeddings::enable(c, model, dimension).await)
    }

    async fn messages_to_embed(
        &self,
        which: EmbedSelection,
    ) -> engram_core::Result<Vec<EmbedSource>> {
        reading!(self, |c| embeddings::to_embed(c, &which).await)
    }

    async fn store_embeddings(
        &self,
        job: &Job,
        rows: Vec<NewEmbedding>,
        lease_until: Micros,
    ) -> engram_core::Result<usize> {
        writing!(self, |c| embeddings::store(
            c,
            job,
            rows.clone(),
            lease_until
        )
        .await)
    }
}
