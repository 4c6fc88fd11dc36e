//! Message rows.

use engram_core::filter_sql::Bind;
use engram_core::filter_sql::columns;
use engram_core::model::{
    Json, ListQuery, Message, NewMessage, Page, SessionPeerConfig, seq_window,
};
use engram_core::time::{join_times, now_micros};
use engram_core::validate::context_chunks;
use engram_core::{Error, Result};
use sqlx::{PgConnection, Row};

use crate::dialect::{Listing, list_page};
use crate::rows::{self, MESSAGE_COLS, to_value};
use crate::{R, embeddings, peers, sessions};

pub async fn create(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    batch: &[NewMessage],
) -> R<Vec<Message>> {
    let (live, _) = sessions::ensure(c, workspace, session).await?;
    // The counter on the (already locked) session row hands out gap-free sequence
    // numbers; it moves in this transaction, so a failed request leaves no gap and
    // concurrent writers to the same session take their turns.
    let n = batch.len() as i64;
    let last: i64 = sqlx::query_scalar(
        "UPDATE sessions SET last_seq = last_seq + $3 WHERE workspace_id = $1 AND id = $2 RETURNING last_seq",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(n)
    .fetch_one(&mut *c)
    .await?;
    let first_seq = last - n + 1;
    let mut authors: Vec<&str> = batch.iter().map(|m| m.peer.as_str()).collect();
    // Sorted, so concurrent requests creating the same new peers lock them in one order.
    authors.sort_unstable();
    authors.dedup();
    let default_config = SessionPeerConfig::default().to_json();
    for (author, at) in authors.iter().zip(join_times(authors.len())) {
        let peer_id = peers::ensure(c, live.ws_id, author).await?;
        peers::join(c, live.ws_id, live.id, peer_id, default_config.clone(), at).await?;
    }
    let now = now_micros();
    let created_at: Vec<i64> = batch.iter().map(|m| m.created_at.unwrap_or(now)).collect();
    let seqs: Vec<i64> = (first_seq..=last).collect();
    let ids: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO messages (workspace_id, session_id, session_name, public_id, peer_name, content, metadata, token_count, seq_in_session, created_at) \
         SELECT $1, $2, $3, u.public_id, u.peer_name, u.content, u.metadata::jsonb, u.token_count, u.seq, u.created_at \
         FROM UNNEST($4::text[], $5::text[], $6::text[], $7::text[], $8::int8[], $9::int8[], $10::int8[]) \
           AS u (public_id, peer_name, content, metadata, token_count, seq, created_at) \
         RETURNING id",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(session)
    .bind(batch.iter().map(|m| m.public_id.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.peer.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.content.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| to_value(&m.metadata).to_string()).collect::<Vec<_>>())
    .bind(batch.iter().map(|m| m.token_count).collect::<Vec<_>>())
    .bind(seqs)
    .bind(&created_at)
    .fetch_all(&mut *c)
    .await?;
    embeddings::enqueue_for_write(c, live.ws_id, live.id, ids).await?;
    Ok(batch
        .iter()
        .zip(created_at)
        .map(|(m, created_at)| Message {
            id: m.public_id.clone(),
            content: m.content.clone(),
            peer_id: m.peer.clone(),
            session_id: session.to_string(),
            metadata: m.metadata.clone(),
            created_at,
            workspace_id: workspace.to_string(),
            token_count: m.token_count,
        })
        .collect())
}

pub async fn list(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    query: &ListQuery,
) -> R<Page<Message>> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    if query.filter.is_none() {
        return unfiltered_page(c, workspace, &live, query).await;
    }
    let listing = Listing {
        columns: columns::messages,
        workspace,
        select: MESSAGE_COLS,
        from_where: "messages m WHERE m.workspace_id = $1 AND m.session_id = $2",
        binds: vec![Bind::Int(live.ws_id), Bind::Int(live.id)],
        order: &["m.seq_in_session"],
    };
    list_page(c, listing, query, |r| rows::message(r, 0, workspace)).await
}

/// See `engram_core::model::seq_window`: a page is a range lookup on the sequence.
async fn unfiltered_page(
    c: &mut PgConnection,
    workspace: &str,
    live: &sessions::Live,
    query: &ListQuery,
) -> R<Page<Message>> {
    let total: i64 =
        sqlx::query_scalar("SELECT last_seq FROM sessions WHERE workspace_id = $1 AND id = $2")
            .bind(live.ws_id)
            .bind(live.id)
            .fetch_one(&mut *c)
            .await?;
    let (low, high) = seq_window(total, query.page, query.reverse);
    let sql = if query.reverse {
        "SELECT m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count \
         FROM messages m WHERE m.workspace_id = $1 AND m.session_id = $2 \
         AND m.seq_in_session BETWEEN $3 AND $4 ORDER BY m.seq_in_session DESC"
    } else {
        "SELECT m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count \
         FROM messages m WHERE m.workspace_id = $1 AND m.session_id = $2 \
         AND m.seq_in_session BETWEEN $3 AND $4 ORDER BY m.seq_in_session"
    };
    let rows = sqlx::query(sql)
        .bind(live.ws_id)
        .bind(live.id)
        .bind(low)
        .bind(high)
        .fetch_all(&mut *c)
        .await?;
    let items = rows
        .iter()
        .map(|r| rows::message(r, 0, workspace))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::new(items, total, query.page))
}

pub async fn get(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    public_id: &str,
) -> R<Option<Message>> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(None);
    };
    let row = sqlx::query(
        "SELECT m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count \
         FROM messages m WHERE m.workspace_id = $1 AND m.session_id = $2 AND m.public_id = $3",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(public_id)
    .fetch_optional(c)
    .await?;
    Ok(row.map(|r| rows::message(&r, 0, workspace)).transpose()?)
}

pub async fn update_metadata(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    public_id: &str,
    metadata: &Json,
) -> R<Option<Message>> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(None);
    };
    let row = sqlx::query(
        "UPDATE messages m SET metadata = $4 WHERE m.workspace_id = $1 AND m.session_id = $2 AND m.public_id = $3 \
         RETURNING m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(public_id)
    .bind(to_value(metadata))
    .fetch_optional(c)
    .await?;
    Ok(row.map(|r| rows::message(&r, 0, workspace)).transpose()?)
}

/// Walks back from the newest message in chunks until the budget is spent.
pub async fn recent(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    budget: i64,
) -> R<Vec<Message>> {
    let Some(live) = sessions::find(c, workspace, session).await? else {
        return Ok(vec![]);
    };
    if budget <= 0 {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    let mut spent = 0i64;
    let mut before = i64::MAX;
    'outer: for limit in context_chunks() {
        let chunk = sqlx::query(
            "SELECT m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count, \
             m.seq_in_session FROM messages m WHERE m.workspace_id = $1 AND m.session_id = $2 \
             AND m.seq_in_session < $3 ORDER BY m.seq_in_session DESC LIMIT $4",
        )
        .bind(live.ws_id)
        .bind(live.id)
        .bind(before)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?;
        let exhausted = (chunk.len() as i64) < limit;
        for r in chunk {
            let message = rows::message(&r, 0, workspace)?;
            if spent + message.token_count > budget {
                break 'outer;
            }
            spent += message.token_count;
            before = r.try_get(7)?;
            out.push(message);
        }
        if exhausted {
            break;
        }
    }
    out.reverse();
    Ok(out)
}

/// Rejects what the store cannot represent, before any statement runs.
pub fn check_batch(batch: &[NewMessage]) -> Result<()> {
    if batch.is_empty() {
        return Err(Error::internal("empty message batch"));
    }
    Ok(())
}
