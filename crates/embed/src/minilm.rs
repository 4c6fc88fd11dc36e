//! The built-in provider: a sentence-transformers BERT (all-MiniLM-L6-v2) run on the CPU
//! with candle, reproducing the sentence-transformers recipe: BERT forward pass, mean
//! pooling over the attention mask, L2 normalisation.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use engram_core::{Embedder, Error, Result};
use tokenizers::{Tokenizer, TruncationParams};

use crate::{chunk, normalize};

/// The files a model directory must hold; `sentence_bert_config.json` is optional.
pub const MODEL_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// The model name recorded with the vectors. It does not depend on where the files
/// are, so moving the directory does not look like a change of model.
pub const MODEL_NAME: &str = "all-MiniLM-L6-v2";

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, used when the directory
/// has no `sentence_bert_config.json`. The tokenizer.json shipped with the model says 128,
/// which is not what sentence-transformers uses.
const DEFAULT_MAX_SEQ_LENGTH: usize = 256;

/// Texts per forward pass. Texts are sorted by length first, so each pass pads little.
const FORWARD_BATCH: usize = 32;

/// A BERT sentence-embedding model loaded from a directory.
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

struct Inner {
    bert: BertModel,
    /// Truncates to `max_seq_length`, for embedding.
    tokenizer: Tokenizer,
    /// Never truncates, for cutting long texts into pieces.
    splitter: Tokenizer,
    dimension: usize,
    /// Word pieces per input, including `[CLS]` and `[SEP]`.
    max_seq_length: usize,
    pad_id: u32,
}

impl MiniLm {
    /// Loads `model.safetensors`, `tokenizer.json` and `config.json` (plus
    /// `sentence_bert_config.json` for the maximum sequence length, when present) from
    /// `dir`, which must hold all-MiniLM-L6-v2 (reported as [`MODEL_NAME`]).
    pub fn load(dir: &Path) -> Result<Self> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            Error::Internal(format!(
                "cannot load the embedding model from {}: {what}: {e}",
                dir.display()
            ))
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| fail("config.json", &e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| fail("config.json", &e))?;
        let max_seq_length = read_max_seq_length(dir)
            .map_err(|e| fail("sentence_bert_config.json", &e))?
            .unwrap_or(DEFAULT_MAX_SEQ_LENGTH)
            .min(config.max_position_embeddings);
        if max_seq_length < 3 {
            return Err(fail(
                "max_seq_length",
                &"must leave room for one word piece",
            ));
        }

        let mut splitter = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| fail("tokenizer.json", &e))?;
        // Padding is done per batch below.
        splitter.with_padding(None);
        splitter
            .with_truncation(None)
            .map_err(|e| fail("tokenizer.json", &e))?;
        // Truncation keeps every input within the model's window, as
        // sentence-transformers does.
        let mut tokenizer = splitter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| fail("tokenizer.json", &e))?;

        let weights = dir.join("model.safetensors");
        // candle's mmap loader is `unsafe` (the file must not change while mapped) and
        // the workspace forbids unsafe code, so the weights are read into memory (90 MB
        // for MiniLM, freed once the tensors are built).
        let bytes = std::fs::read(&weights).map_err(|e| fail("model.safetensors", &e))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu)
            .map_err(|e| fail("model.safetensors", &e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| fail("model.safetensors", &e))?;

        Ok(Self {
            inner: Arc::new(Inner {
                bert,
                tokenizer,
                splitter,
                dimension: config.hidden_size,
                max_seq_length,
                pad_id: config.pad_token_id as u32,
            }),
        })
    }

    /// Word pieces per input, including the two special tokens.
    pub fn max_seq_length(&self) -> usize {
        self.inner.max_seq_length
    }
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dimension", &self.inner.dimension)
            .field("max_seq_length", &self.inner.max_seq_length)
            .finish()
    }
}

fn read_max_seq_length(dir: &Path) -> std::result::Result<Option<usize>, String> {
    let path = dir.join("sentence_bert_config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    match value.get("max_seq_length") {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("max_seq_length is not a positive integer: {v}")),
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("embedding model: {e}"))
}

impl Inner {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(internal)?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); texts.len()];
        for group in order.chunks(FORWARD_BATCH) {
            let ids: Vec<&[u32]> = group.iter().map(|&i| encodings[i].get_ids()).collect();
            for (&i, vector) in group.iter().zip(self.forward(&ids)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// One forward pass over a batch padded to its longest input.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for seq in batch {
            ids.extend_from_slice(seq);
            ids.extend(std::iter::repeat_n(self.pad_id, width - seq.len()));
            mask.extend(std::iter::repeat_n(1u32, seq.len()));
            mask.extend(std::iter::repeat_n(0u32, width - seq.len()));
        }
        let device = &self.bert.device;
        let shape = (batch.len(), width);
        let ids = Tensor::from_vec(ids, shape, device).map_err(internal)?;
        let mask = Tensor::from_vec(mask, shape, device).map_err(internal)?;
        let type_ids = ids.zeros_like().map_err(internal)?;
        let hidden = self
            .bert
            .forward(&ids, &type_ids, Some(&mask))
            .map_err(internal)?;
        let pooled = mean_pool(&hidden, &mask).map_err(internal)?;
        let mut vectors: Vec<Vec<f32>> = pooled.to_vec2().map_err(internal)?;
        for v in &mut vectors {
            normalize(v);
        }
        Ok(vectors)
    }

    fn chunks(&self, text: &str) -> Vec<String> {
        // Without special tokens: the pieces must cover the whole text, and each leaves
        // room for `[CLS]` and `[SEP]`.
        match self.splitter.encode(text, false) {
            Ok(enc) => chunk::split(
                text,
                enc.get_offsets(),
                enc.get_word_ids(),
                self.max_seq_length - 2,
            ),
            // A text the tokenizer rejects is embedded (and fails) whole, so the
            // worker reports the error instead of losing the text silently.
            Err(_) => vec![text.to_owned()],
        }
    }
}

/// Mean of the token vectors the attention mask keeps: `hidden` is (batch, seq, dim),
/// `mask` (batch, seq).
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    // sentence-transformers clamps the count at 1e-9; every input has at least the two
    // special tokens, so the count is never zero here.
    let counts = mask.sum(1)?;
    summed.broadcast_div(&counts)
}

#[async_trait]
impl Embedder for MiniLm {
    fn model(&self) -> &str {
        MODEL_NAME
    }

    fn dimension(&self) -> usize {
        self.inner.dimension
    }

    fn chunks(&self, text: &str) -> Vec<String> {
        self.inner.chunks(text)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        // The forward pass is CPU-bound for tens of milliseconds per batch: keep it off
        // the async worker threads.
        let inner = self.inner.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || inner.embed(&texts))
            .await
            .map_err(internal)?
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>> {
        let mut vectors = self.embed(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| internal("no vector for the query"))
    }
}
