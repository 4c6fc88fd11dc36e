//! Cloning a session: metadata, configuration, memberships and messages up to a cut-off
//! are copied into a new session with a fresh id, in one statement per table.

use engram_core::model::Session;
use engram_core::time::now_micros;
use engram_core::{Error, ids};
use sqlx::PgConnection;

use crate::rows::to_value;
use crate::sessions::{find, require};
use crate::{R, embeddings};

pub async fn clone(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    cutoff: Option<&str>,
) -> R<Session> {
    let source = require(c, workspace, session).await?;
    let last_seq: i64 = match cutoff {
        None => sqlx::query_scalar("SELECT last_seq FROM sessions WHERE workspace_id = $1 AND id = $2")
            .bind(source.ws_id)
            .bind(source.id)
            .fetch_one(&mut *c)
            .await?,
        Some(public_id) => sqlx::query_scalar(
            "SELECT seq_in_session FROM messages WHERE workspace_id = $1 AND session_id = $2 AND public_id = $3",
        )
        .bind(source.ws_id)
        .bind(source.id)
        .bind(public_id)
        .fetch_optional(&mut *c)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Message {public_id} not found in session {session}")))?,
    };
    let name = ids::new_public_id();
    let now = now_micros();
    let new_id: i64 = sqlx::query_scalar(
        "INSERT INTO sessions (workspace_id, name, metadata, configuration, created_at, last_seq) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(source.ws_id)
    .bind(&name)
    .bind(to_value(&source.session.metadata))
    .bind(to_value(&source.session.configuration))
    .bind(now)
    .bind(last_seq)
    .fetch_one(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         SELECT workspace_id, $2, peer_id, configuration, $3, NULL FROM session_peers WHERE workspace_id = $1 AND session_id = $4",
    )
    .bind(source.ws_id)
    .bind(new_id)
    .bind(now)
    .bind(source.id)
    .execute(&mut *c)
    .await?;
    let seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq_in_session FROM messages WHERE workspace_id = $1 AND session_id = $2 AND seq_in_session <= $3 \
         ORDER BY seq_in_session",
    )
    .bind(source.ws_id)
    .bind(source.id)
    .bind(last_seq)
    .fetch_all(&mut *c)
    .await?;
    let public_ids: Vec<String> = seqs.iter().map(|_| ids::new_public_id()).collect();
    let copied: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, metadata, token_count, seq_in_session, created_at) \
         SELECT m.workspace_id, $3, n.public_id, $4, m.peer_name, m.content, m.metadata, m.token_count, m.seq_in_session, $5 \
         FROM UNNEST($6::int8[], $7::text[]) AS n (seq, public_id) \
         JOIN messages m ON m.workspace_id = $1 AND m.session_id = $2 AND m.seq_in_session = n.seq \
         ORDER BY m.seq_in_session \
         RETURNING id",
    )
    .bind(source.ws_id)
    .bind(source.id)
    .bind(new_id)
    .bind(&name)
    .bind(now)
    .bind(&seqs)
    .bind(&public_ids)
    .fetch_all(&mut *c)
    .await?;
    // The copies are new messages: they get their own vectors, one job per 100.
    for chunk in copied.chunks(100) {
        embeddings::enqueue_for_write(c, source.ws_id, new_id, chunk.to_vec()).await?;
    }
    let cloned = find(c, workspace, &name)
        .await?
        .ok_or_else(|| Error::internal("cloned session vanished"))?;
    Ok(cloned.session)
}
