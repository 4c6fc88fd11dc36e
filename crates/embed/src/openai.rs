//! The remote provider: any OpenAI-compatible `POST {base_url}/embeddings` endpoint
//! (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM, ...).

mod config;

pub use config::OpenAiConfig;

use async_trait::async_trait;
use engram_core::{Embedder, Error, Result};
use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

use crate::{chunk, normalize};

/// Longest part of an error body quoted in an error message.
const ERROR_BODY_LIMIT: usize = 500;

/// Embeds through an OpenAI-compatible endpoint, batching inputs by
/// [`OpenAiConfig::max_batch_size`] and [`OpenAiConfig::max_tokens_per_request`].
/// Token counts use `cl100k_base`, the encoding of OpenAI's embedding models (and
/// Honcho's fallback for others).
pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    url: String,
    client: reqwest::Client,
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    embedding: Vec<f32>,
    index: Option<usize>,
}

fn bpe() -> &'static CoreBPE {
    tiktoken_rs::cl100k_base_singleton()
}

impl OpenAiEmbedder {
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::Internal(format!("cannot build the embedding client: {e}")))?;
        let url = format!("{}/embeddings", config.base_url.trim_end_matches('/'));
        Ok(Self {
            config,
            url,
            client,
        })
    }

    /// The first piece of `text` that fits the input limit.
    fn truncate(&self, text: &str) -> String {
        self.chunks(text).swap_remove(0)
    }

    /// Groups `inputs` (with their token counts) into requests within both limits.
    fn batches<'a>(&self, inputs: &'a [(String, usize)]) -> Vec<&'a [(String, usize)]> {
        let mut batches = Vec::new();
        let (mut start, mut tokens) = (0, 0);
        for (i, (_, n)) in inputs.iter().enumerate() {
            let full = i - start == self.config.max_batch_size
                || tokens + n > self.config.max_tokens_per_request;
            if i > start && full {
                batches.push(&inputs[start..i]);
                (start, tokens) = (i, 0);
            }
            tokens += n;
        }
        if start < inputs.len() {
            batches.push(&inputs[start..]);
        }
        batches
    }

    async fn request(&self, input: &[String]) -> Result<Vec<Vec<f32>>> {
        let body = Request {
            model: &self.config.model,
            input,
            encoding_format: "float",
            dimensions: self
                .config
                .send_dimensions
                .then_some(self.config.dimensions),
        };
        let mut req = self.client.post(&self.url).json(&body);
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let response = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let excerpt: String = text.chars().take(ERROR_BODY_LIMIT).collect();
            return Err(self.error(format!(
                "embedding endpoint {} answered HTTP {}: {}",
                self.url,
                status.as_u16(),
                excerpt.trim()
            )));
        }
        let parsed: Response = serde_json::from_slice(&bytes).map_err(|e| {
            self.error(format!(
                "embedding endpoint {} sent a response that is not an embeddings list: {e}",
                self.url
            ))
        })?;
        self.vectors(parsed, input.len())
    }

    /// Puts the response's vectors in input order and checks their number and length.
    fn vectors(&self, response: Response, expected: usize) -> Result<Vec<Vec<f32>>> {
        if response.data.len() != expected {
            return Err(self.error(format!(
                "embedding endpoint {} returned {} vectors for {expected} inputs",
                self.url,
                response.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (position, item) in response.data.into_iter().enumerate() {
            let index = item.index.unwrap_or(position);
            if item.embedding.len() != self.config.dimensions {
                return Err(self.error(format!(
                    "embedding dimension mismatch for {}: expected {}, got {}",
                    self.config.model,
                    self.config.dimensions,
                    item.embedding.len()
                )));
            }
            match out.get_mut(index) {
                Some(slot @ None) => *slot = Some(item.embedding),
                _ => {
                    return Err(self.error(format!(
                        "embedding endpoint {} returned a bad or repeated index {index}",
                        self.url
                    )));
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|v| {
                let mut v = v.unwrap_or_default();
                normalize(&mut v);
                v
            })
            .collect())
    }

    fn transport_error(&self, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            self.error(format!(
                "embedding request to {} timed out after {:?}",
                self.url, self.config.timeout
            ))
        } else {
            self.error(format!("embedding request to {} failed: {e}", self.url))
        }
    }

    /// An internal error whose message never carries the API key, even when the
    /// endpoint echoes it back.
    fn error(&self, message: String) -> Error {
        match &self.config.api_key {
            Some(key) if !key.is_empty() => Error::Internal(message.replace(key, "[redacted]")),
            _ => Error::Internal(message),
        }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model(&self) -> &str {
        &self.config.model
    }

    fn dimension(&self) -> usize {
        self.config.dimensions
    }

    fn chunks(&self, text: &str) -> Vec<String> {
        let bpe = bpe();
        let tokens = bpe.encode_ordinary(text);
        if tokens.len() <= self.config.max_input_tokens {
            return vec![text.to_owned()];
        }
        // Byte spans of the tokens: they tile the text exactly.
        let mut offsets = Vec::with_capacity(tokens.len());
        let mut end = 0;
        for token in &tokens {
            let start = end;
            end += bpe.decode_bytes(&[*token]).map_or(0, |b| b.len());
            offsets.push((start, end));
        }
        // Every token boundary is an acceptable cut: cl100k tokens carry their leading
        // space, so boundaries fall between words or inside very long ones.
        let words = vec![None; tokens.len()];
        chunk::split(text, &offsets, &words, self.config.max_input_tokens)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let inputs: Vec<(String, usize)> = texts
            .iter()
            .map(|t| {
                let t = self.truncate(t);
                let n = bpe().encode_ordinary(&t).len();
                (t, n)
            })
            .collect();
        let mut out = Vec::with_capacity(texts.len());
        for batch in self.batches(&inputs) {
            let input: Vec<String> = batch.iter().map(|(t, _)| t.clone()).collect();
            out.extend(self.request(&input).await?);
        }
        Ok(out)
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut vectors = self.embed(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| self.error("no vector for the query".to_owned()))
    }
}
