//! Choosing this process's embedding provider at startup and binding the database to
//! its model, so semantic search and the embedding jobs use one model throughout.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use engram_core::{Embedder, Store};

use crate::settings::Settings;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// The built-in all-MiniLM-L6-v2 on the CPU (weights from `scripts/fetch-model.sh`).
    Local,
    /// An OpenAI-compatible `/embeddings` endpoint (Honcho's `EMBEDDING_*` settings).
    Openai,
    /// No semantic search: keyword search only.
    Off,
}

#[derive(Args, Debug, Clone)]
pub struct EmbeddingArgs {
    /// Where message and query embeddings come from.
    #[arg(
        long = "embeddings",
        env = "ENGRAM_EMBEDDINGS",
        value_enum,
        default_value = "local"
    )]
    pub provider: Provider,
}

/// Loads the provider and turns embeddings on in the database (or checks it already
/// uses the same model). `None`: semantic search is off, which was logged.
pub async fn start(
    store: &Arc<dyn Store>,
    args: &EmbeddingArgs,
    settings: &Settings,
) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    let embedder: Option<Arc<dyn Embedder>> = match args.provider {
        Provider::Off => {
            tracing::info!("semantic search is off (ENGRAM_EMBEDDINGS=off)");
            None
        }
        Provider::Local => engram_embed::load_with(|name| settings.get(name).map(PathBuf::from))
            .map_err(|e| anyhow::anyhow!("ENGRAM_MODEL_DIR: {e}"))?,
        Provider::Openai => {
            let config = engram_embed::OpenAiConfig::from_lookup(|name| settings.get(name))
                .map_err(|e| anyhow::anyhow!("embedding settings: {e}"))?;
            Some(Arc::new(
                engram_embed::OpenAiEmbedder::new(config)
                    .map_err(|e| anyhow::anyhow!("embedding settings: {e}"))?,
            ))
        }
    };
    if let Some(e) = &embedder {
        store
            .enable_embeddings(e.model(), e.dimension())
            .await
            .map_err(|err| anyhow::anyhow!("ENGRAM_EMBEDDINGS: {err}"))?;
        tracing::info!(
            model = e.model(),
            dimension = e.dimension(),
            "semantic search is on"
        );
    }
    Ok(embedder)
}
