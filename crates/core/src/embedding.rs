//! Turning text into vectors for semantic search. Providers (the built-in local model,
//! an OpenAI-compatible endpoint) live outside the core; the store and the embedding
//! jobs see only this interface.

use async_trait::async_trait;

use crate::Result;

#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Names the model; recorded per database with the dimension and checked at
    /// startup, so vectors of two different models are never mixed.
    fn model(&self) -> &str;
    /// Length of every vector this provider returns.
    fn dimension(&self) -> usize;
    /// Splits a text into pieces that each fit the model's input, in order; a short
    /// text is one piece. Every piece gets its own vector.
    fn chunks(&self, text: &str) -> Vec<String>;
    /// One L2-normalised vector per text, in the same order. Called by queue workers
    /// with a batch of chunks, never inside a request.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// Embeds a search query (one piece, truncated to the model's input if longer).
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>>;
}
