//! Message vectors on PostgreSQL: the model record, the HNSW index, the rows embedding
//! jobs read and write, and their removal by the purges.

use engram_core::Error;
use engram_core::jobs::{EmbedBackfill, Task};
use engram_core::queue::Job;
use engram_core::search::{
    BACKFILL_BATCH, EmbedMessages, EmbedSelection, EmbedSource, NewEmbedding,
};
use engram_core::time::{Micros, now_micros};
use sqlx::{PgConnection, Row};

use crate::{R, queue};

pub async fn model(c: &mut PgConnection) -> R<Option<(String, usize)>> {
    let row: Option<(String, i32)> =
        sqlx::query_as("SELECT model, dimension FROM embedding_model WHERE id = 1")
            .fetch_optional(c)
            .await?;
    Ok(row.map(|(m, d)| (m, d as usize)))
}

fn mismatch(stored: &(String, usize), model: &str, dimension: usize) -> Error {
    Error::Conflict(format!(
        "this database's vectors come from embedding model {} ({} dimensions) but the configured model is {model} ({dimension} dimensions); configure the same model or use a new database",
        stored.0, stored.1
    ))
}

/// pgvector's text form of a vector.
pub fn literal(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(f32::to_string).collect();
    format!("[{}]", parts.join(","))
}

pub async fn enable(c: &mut PgConnection, model_name: &str, dimension: usize) -> R<()> {
    // Serializes concurrent first starts of several processes.
    sqlx::query("LOCK TABLE embedding_model IN EXCLUSIVE MODE")
        .execute(&mut *c)
        .await?;
    if let Some(stored) = model(c).await? {
        if stored.0 != model_name || stored.1 != dimension {
            return Err(mismatch(&stored, model_name, dimension).into());
        }
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO embedding_model (id, model, dimension, created_at) VALUES (1, $1, $2, $3)",
    )
    .bind(model_name)
    .bind(dimension as i32)
    .bind(now_micros())
    .execute(&mut *c)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE INDEX IF NOT EXISTS message_embeddings_hnsw ON message_embeddings \
         USING hnsw ((embedding::vector({dimension})) vector_cosine_ops)"
    )))
    .execute(&mut *c)
    .await?;
    let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM messages)")
        .fetch_one(&mut *c)
        .await?;
    if any {
        queue::enqueue(c, &Task::EmbedBackfill(EmbedBackfill {})).await?;
    }
    Ok(())
}

/// Queues the embedding of freshly written messages, inside the write's transaction,
/// when this database has embeddings turned on.
pub async fn enqueue_for_write(
    c: &mut PgConnection,
    workspace_id: i64,
    session_id: i64,
    message_ids: Vec<i64>,
) -> R<()> {
    if message_ids.is_empty() || model(c).await?.is_none() {
        return Ok(());
    }
    let job = EmbedMessages {
        workspace_id,
        session_id,
        message_ids,
    };
    queue::enqueue(c, &Task::EmbedMessages(job)).await
}

const SOURCE: &str = "SELECT m.id, m.workspace_id, m.session_id, m.content FROM messages m \
     JOIN sessions s ON s.workspace_id = m.workspace_id AND s.id = m.session_id \
     WHERE s.deleted_at IS NULL AND btrim(m.content) <> '' \
     AND NOT EXISTS (SELECT 1 FROM message_embeddings e \
                     WHERE e.workspace_id = m.workspace_id AND e.message_id = m.id)";

pub async fn to_embed(c: &mut PgConnection, which: &EmbedSelection) -> R<Vec<EmbedSource>> {
    let rows = match which {
        EmbedSelection::Listed(ids) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SOURCE} AND m.id = ANY($1) ORDER BY m.id"
            )))
            .bind(ids)
            .fetch_all(&mut *c)
            .await?
        }
        EmbedSelection::After(after) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{SOURCE} AND m.id > $1 ORDER BY m.id LIMIT {BACKFILL_BATCH}"
            )))
            .bind(after)
            .fetch_all(&mut *c)
            .await?
        }
    };
    rows.iter()
        .map(|r| {
            Ok(EmbedSource {
                message_id: r.try_get(0)?,
                workspace_id: r.try_get(1)?,
                session_id: r.try_get(2)?,
                content: r.try_get(3)?,
            })
        })
        .collect::<sqlx::Result<_>>()
        .map_err(Into::into)
}

/// Writes the rows whose session is still live, in one statement; the session rows
/// are locked first so a concurrent delete either precedes this (and the rows are
/// dropped) or waits for it (and its purge removes them).
pub async fn store(
    c: &mut PgConnection,
    job: &Job,
    rows: Vec<NewEmbedding>,
    lease_until: Micros,
) -> R<usize> {
    queue::renew(c, job.id, job.attempts, lease_until).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sessions: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.workspace_id, r.session_id))
        .collect();
    sessions.sort_unstable();
    sessions.dedup();
    for (ws, s) in &sessions {
        sqlx::query("SELECT 1 FROM sessions WHERE workspace_id = $1 AND id = $2 FOR SHARE")
            .bind(ws)
            .bind(s)
            .execute(&mut *c)
            .await?;
    }
    let written = sqlx::query(
        "INSERT INTO message_embeddings (workspace_id, session_id, message_id, chunk, embedding) \
         SELECT u.ws, u.sess, u.msg, u.chunk, u.vec::vector \
         FROM UNNEST($1::int8[], $2::int8[], $3::int8[], $4::int4[], $5::text[]) AS u (ws, sess, msg, chunk, vec) \
         WHERE EXISTS (SELECT 1 FROM messages m JOIN sessions s ON s.workspace_id = m.workspace_id AND s.id = m.session_id \
                       WHERE m.workspace_id = u.ws AND m.id = u.msg AND m.session_id = u.sess AND s.deleted_at IS NULL) \
         ON CONFLICT (workspace_id, message_id, chunk) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.workspace_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.session_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.message_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.chunk as i32).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| literal(&r.vector)).collect::<Vec<_>>())
    .execute(&mut *c)
    .await?;
    Ok(written.rows_affected() as usize)
}

/// Removes up to `batch` vectors of one session, or of a whole workspace when
/// `session_id` is `None`; returns how many went.
pub async fn purge_batch(
    c: &mut PgConnection,
    workspace_id: i64,
    session_id: Option<i64>,
    batch: i64,
) -> R<u64> {
    let done = match session_id {
        Some(session) => sqlx::query(
            "DELETE FROM message_embeddings WHERE (workspace_id, id) IN \
             (SELECT workspace_id, id FROM message_embeddings WHERE workspace_id = $1 AND session_id = $2 LIMIT $3)",
        )
        .bind(workspace_id)
        .bind(session)
        .bind(batch),
        None => sqlx::query(
            "DELETE FROM message_embeddings WHERE (workspace_id, id) IN \
             (SELECT workspace_id, id FROM message_embeddings WHERE workspace_id = $1 LIMIT $2)",
        )
        .bind(workspace_id)
        .bind(batch),
    }
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}
