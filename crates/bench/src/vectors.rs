//! Vectors for hybrid-search reads. The built-in model embeds about 90 messages a second
//! on 2 cores, so embedding 100,000 stored messages would take 20 minutes and a million
//! over three hours. Instead, with engram stopped, every stored message is given the
//! vector of one of a few hundred real sentence embeddings (plus a little noise, so no
//! two are equal), written through the store's own embedding path: the same rows,
//! indexes and provenance checks the background jobs produce.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use engram_core::jobs::JobKind;
use engram_core::queue::LEASE_MICROS;
use engram_core::search::{EmbedSelection, NewEmbedding};
use engram_core::time::now_micros;
use engram_core::{Embedder, Store};

/// Distinct sentences embedded for real; messages reuse their vectors.
const SENTENCES: usize = 256;

/// Gives every stored message a vector; returns how many were written.
pub async fn seed(
    data_dir: &Path,
    database_url: Option<&str>,
    embedder: &Arc<dyn Embedder>,
) -> Result<u64> {
    let store: Arc<dyn Store> = match database_url {
        Some(url) => Arc::new(engram_store_postgres::PgStore::connect(url).await?),
        None => Arc::new(engram_store_sqlite::SqliteStore::open(
            &data_dir.join("engram.db"),
        )?),
    };
    let pool = sentence_vectors(embedder.as_ref()).await?;
    store
        .enable_embeddings(embedder.model(), embedder.dimension())
        .await?;
    // Turning embeddings on queued a backfill; this run does its work and completes it,
    // so the restarted engram finds nothing left to embed.
    let job = store
        .claim_job(now_micros() + LEASE_MICROS)
        .await?
        .context("no backfill job was queued")?;
    if job.kind != JobKind::EmbedBackfill.name() {
        bail!("expected the backfill job first, claimed {}", job.kind);
    }
    let mut after = 0;
    let mut written = 0u64;
    loop {
        let sources = store
            .messages_to_embed(EmbedSelection::After(after))
            .await?;
        let Some(last) = sources.last() else { break };
        after = last.message_id;
        let rows = sources
            .iter()
            .map(|s| NewEmbedding {
                message_id: s.message_id,
                workspace_id: s.workspace_id,
                session_id: s.session_id,
                chunk: 0,
                vector: jitter(&pool[s.message_id as usize % pool.len()], s.message_id),
            })
            .collect();
        written += store
            .store_embeddings(&job, rows, now_micros() + LEASE_MICROS)
            .await? as u64;
        if written % 100_000 < 64 {
            eprintln!("vectors: {written} written");
        }
    }
    store.complete_job(&job).await?;
    Ok(written)
}

async fn sentence_vectors(embedder: &dyn Embedder) -> Result<Vec<Vec<f32>>> {
    const SUBJECTS: [&str; 8] = [
        "the museum",
        "my sister",
        "the train",
        "our budget",
        "the garden",
        "a new job",
        "the doctor",
        "the weekend trip",
    ];
    const VERBS: [&str; 8] = [
        "opens early",
        "was cancelled",
        "needs a plan",
        "made me laugh",
        "costs too much",
        "starts on monday",
        "went really well",
        "keeps changing",
    ];
    const TAILS: [&str; 4] = [
        "so I am thinking about it",
        "and the kids were excited",
        "which surprised everyone",
        "but nobody told me why",
    ];
    let texts: Vec<String> = (0..SENTENCES)
        .map(|i| {
            format!(
                "{} {} {}",
                SUBJECTS[i % 8],
                VERBS[(i / 8) % 8],
                TAILS[(i / 64) % 4]
            )
        })
        .collect();
    let mut out = Vec::with_capacity(texts.len());
    for batch in texts.chunks(32) {
        out.extend(embedder.embed(batch).await?);
    }
    Ok(out)
}

/// A unit vector near `base`, different for every message.
fn jitter(base: &[f32], seed: i64) -> Vec<f32> {
    let mut state = (seed as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v: Vec<f32> = base
        .iter()
        .map(|x| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            x + ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}
