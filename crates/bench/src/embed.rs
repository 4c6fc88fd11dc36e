//! Embedding throughput of the built-in model, in process: the work the embedding queue
//! jobs do (batches of chat messages), and the one a search request waits for (a query).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use engram_embed::{Embedder, MiniLm, default_model_dir};

use crate::ingest::content;
use crate::report::{Row, Samples};

/// `messages` ingest-style chat messages (~200 bytes each) embedded in batches of
/// `batch`, then `queries` single queries; one row each.
pub async fn run(messages: u64, batch: usize, queries: u64) -> Result<Vec<Row>> {
    if messages == 0 || batch == 0 || queries == 0 {
        bail!("--embed-messages, --embed-batch and --embed-queries must be at least 1");
    }
    let dir = default_model_dir().context("no model directory: set ENGRAM_MODEL_DIR")?;
    if !dir.join("model.safetensors").is_file() {
        bail!(
            "no all-MiniLM-L6-v2 in {}: run scripts/fetch-model.sh first",
            dir.display()
        );
    }
    let model = MiniLm::load(&dir)?;
    let texts: Vec<String> = (0..messages).map(content).collect();
    // Untimed: the first pass pays for lazily allocated buffers.
    model.embed(&texts[..batch.min(texts.len())]).await?;

    let mut samples = Samples::default();
    let started = Instant::now();
    for group in texts.chunks(batch) {
        let t = Instant::now();
        match model.embed(group).await {
            Ok(_) => samples.latencies.push(t.elapsed()),
            Err(e) => samples.error(e.to_string()),
        }
    }
    let batches = samples.row(
        &format!("embed (batches of {batch})"),
        1,
        messages,
        "msg/s",
        started.elapsed(),
    );

    let mut samples = Samples::default();
    let started = Instant::now();
    for i in 0..queries {
        let t = Instant::now();
        match model.embed_query(&texts[i as usize % texts.len()]).await {
            Ok(_) => samples.latencies.push(t.elapsed()),
            Err(e) => samples.error(e.to_string()),
        }
    }
    let query = samples.row("embed query", 1, queries, "req/s", started.elapsed());
    Ok(vec![batches, query])
}
