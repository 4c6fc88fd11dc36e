//! The embedding jobs: read the messages a job names (or a backfill's next batch),
//! split them into chunks the model accepts, embed in batches, and hand the vectors
//! to the store, which drops any whose session was deleted meanwhile.

use std::sync::Arc;

use engram_core::queue::{Job, LEASE_MICROS};
use engram_core::search::{EmbedMessages, EmbedSelection, EmbedSource, NewEmbedding};
use engram_core::time::now_micros;
use engram_core::{Embedder, Error, Result, Store};
use tokio::sync::watch;

/// Chunks embedded per model call: large enough to amortise the call, small enough
/// to keep a worker's memory flat.
const EMBED_BATCH: usize = 32;

fn no_model() -> Error {
    Error::Internal(
        "this worker has no embedding model loaded (see README: semantic search)".into(),
    )
}

/// Embeds the messages one write queued.
pub async fn embed_messages(
    store: &Arc<dyn Store>,
    embedder: Option<&Arc<dyn Embedder>>,
    job: &Job,
    task: EmbedMessages,
) -> Result<()> {
    let embedder = embedder.ok_or_else(no_model)?;
    let sources = store
        .messages_to_embed(EmbedSelection::Listed(task.message_ids))
        .await?;
    embed_and_store(store, embedder.as_ref(), job, sources).await
}

/// Embeds every stored message that has no vectors yet, a batch per step, until none
/// is left or the worker stops (`Ok(false)`: hand the job back).
pub async fn backfill(
    store: &Arc<dyn Store>,
    embedder: Option<&Arc<dyn Embedder>>,
    job: &Job,
    stop: &watch::Receiver<bool>,
) -> Result<bool> {
    let embedder = embedder.ok_or_else(no_model)?;
    let mut after = 0;
    loop {
        if *stop.borrow() {
            return Ok(false);
        }
        let sources = store
            .messages_to_embed(EmbedSelection::After(after))
            .await?;
        let Some(last) = sources.last() else {
            return Ok(true);
        };
        after = last.message_id;
        embed_and_store(store, embedder.as_ref(), job, sources).await?;
    }
}

/// Embeds messages in groups of about `EMBED_BATCH` chunks and stores each group in
/// its own transaction: a message's chunks are stored together, and every store
/// renews the job's lease, so a long job never looks abandoned.
async fn embed_and_store(
    store: &Arc<dyn Store>,
    embedder: &dyn Embedder,
    job: &Job,
    sources: Vec<EmbedSource>,
) -> Result<()> {
    let mut group: Vec<(&EmbedSource, Vec<String>)> = Vec::new();
    let mut pending = 0;
    for source in &sources {
        let chunks = embedder.chunks(&source.content);
        pending += chunks.len();
        group.push((source, chunks));
        if pending >= EMBED_BATCH {
            store_group(store, embedder, job, std::mem::take(&mut group)).await?;
            pending = 0;
        }
    }
    if !group.is_empty() {
        store_group(store, embedder, job, group).await?;
    }
    Ok(())
}

async fn store_group(
    store: &Arc<dyn Store>,
    embedder: &dyn Embedder,
    job: &Job,
    group: Vec<(&EmbedSource, Vec<String>)>,
) -> Result<()> {
    let mut owners = Vec::new();
    let mut texts = Vec::new();
    for (source, chunks) in group {
        for (chunk, text) in chunks.into_iter().enumerate() {
            owners.push((source, chunk as i64));
            texts.push(text);
        }
    }
    let mut rows = Vec::with_capacity(texts.len());
    for (batch, batch_owners) in texts.chunks(EMBED_BATCH).zip(owners.chunks(EMBED_BATCH)) {
        let vectors = embedder.embed(batch).await?;
        if vectors.len() != batch.len() {
            return Err(Error::Internal(format!(
                "the embedding model returned {} vectors for {} texts",
                vectors.len(),
                batch.len()
            )));
        }
        for ((source, chunk), vector) in batch_owners.iter().zip(vectors) {
            rows.push(NewEmbedding {
                message_id: source.message_id,
                workspace_id: source.workspace_id,
                session_id: source.session_id,
                chunk: *chunk,
                vector,
            });
        }
    }
    store
        .store_embeddings(job, rows, now_micros() + LEASE_MICROS)
        .await?;
    Ok(())
}
