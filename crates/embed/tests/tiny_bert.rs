//! The built-in provider's embedding code on a tiny random BERT (2 layers, hidden 32)
//! and a tiny word-piece tokenizer, written to a temporary directory in the real file
//! formats and loaded through the public API. Fast, and needs no downloaded files.

use std::path::Path;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use engram_embed::{Embedder, MODEL_NAME, MiniLm, load_from_dir};
use serde_json::json;

const WORDS: [&str; 18] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "ran", "on",
    "mat", "far", "away", "play", "##ing", ".",
];
/// Word pieces per input including `[CLS]` and `[SEP]`, so six per piece of text.
const MAX_SEQ: usize = 8;

fn config_json() -> serde_json::Value {
    json!({
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": 32,
        "initializer_range": 0.02,
        "intermediate_size": 64,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "model_type": "bert",
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "type_vocab_size": 2,
        "vocab_size": WORDS.len(),
    })
}

/// A BERT tokenizer.json like the real one, including its fixed padding and truncation
/// at 128 (here 4 and 16), which the loader must override.
fn tokenizer() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = WORDS
        .iter()
        .enumerate()
        .map(|(i, w)| (w.to_string(), json!(i)))
        .collect();
    let special = |id: usize| {
        json!({"id": id, "special": true, "content": WORDS[id], "single_word": false,
               "lstrip": false, "rstrip": false, "normalized": false})
    };
    json!({
        "version": "1.0",
        "truncation": {"max_length": 4, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": 16}, "direction": "Right", "pad_to_multiple_of": null,
                    "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
        "added_tokens": (0..5).map(special).collect::<Vec<_>>(),
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab}
    })
}

/// Writes a random tiny model into `dir` and returns its weights for independent checks.
fn write_tiny_model(dir: &Path) -> VarMap {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let config: Config = serde_json::from_value(config_json()).unwrap();
    BertModel::load(vb, &config).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config_json().to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer().to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        json!({"max_seq_length": MAX_SEQ, "do_lower_case": false}).to_string(),
    )
    .unwrap();
    varmap
}

fn tiny() -> (tempfile::TempDir, MiniLm, VarMap) {
    let dir = tempfile::tempdir().unwrap();
    let varmap = write_tiny_model(dir.path());
    let model = MiniLm::load(dir.path()).unwrap();
    (dir, model, varmap)
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_close(a: &[f32], b: &[f32]) {
    let d = max_abs_diff(a, b);
    assert!(d <= 1e-5, "vectors differ by {d}");
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn loads_with_the_models_dimension_and_name() {
    let (_dir, model, _) = tiny();
    assert_eq!(model.dimension(), 32);
    assert_eq!(model.model(), MODEL_NAME);
    assert_eq!(model.max_seq_length(), MAX_SEQ);
}

#[tokio::test]
async fn vectors_are_mean_pooled_and_unit_length() {
    let (_dir, model, varmap) = tiny();
    let got = model
        .embed(&strings(&["The cat sat on the mat."]))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].len(), 32);
    assert!((norm(&got[0]) - 1.0).abs() < 1e-5);

    // Independently: the same weights, token ids written out by hand, the mean of the
    // token vectors, scaled to unit length.
    let config: Config = serde_json::from_value(config_json()).unwrap();
    let bert = BertModel::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
        &config,
    )
    .unwrap();
    // The sentence is 7 word pieces; with [CLS] and [SEP] that is one more than the
    // model's 8, so the tokenizer keeps [CLS], the first 6 pieces and [SEP].
    let ids: [u32; MAX_SEQ] = [2, 5, 7, 9, 11, 5, 12, 3];
    let ids = Tensor::new(&ids, &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap();
    let hidden = bert
        .forward(&ids, &ids.zeros_like().unwrap(), None)
        .unwrap();
    let mut want: Vec<f32> = hidden
        .mean(1)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let n = norm(&want);
    want.iter_mut().for_each(|x| *x /= n);
    assert_close(&got[0], &want);
}

#[tokio::test]
async fn padding_and_batch_order_do_not_change_vectors() {
    let (_dir, model, _) = tiny();
    let texts = strings(&["the cat", "a dog ran far away", "cat", "the mat", "playing"]);
    let alone: Vec<Vec<f32>> = {
        let mut out = Vec::new();
        for t in &texts {
            out.push(
                model
                    .embed(std::slice::from_ref(t))
                    .await
                    .unwrap()
                    .remove(0),
            );
        }
        out
    };
    let batch = model.embed(&texts).await.unwrap();
    assert_eq!(batch.len(), texts.len());
    for (a, b) in alone.iter().zip(&batch) {
        assert_close(a, b);
    }
    // Different texts give different vectors, so the order check above means something.
    assert!(max_abs_diff(&alone[0], &alone[1]) > 1e-3);

    // More texts than one forward pass takes, in an order the length sort changes.
    let many: Vec<String> = (0..70).map(|i| texts[i % texts.len()].clone()).collect();
    let vectors = model.embed(&many).await.unwrap();
    for (i, v) in vectors.iter().enumerate() {
        assert_close(v, &alone[i % texts.len()]);
    }
    assert!(model.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn long_texts_are_chunked_between_words() {
    let (_dir, model, _) = tiny();
    assert_eq!(model.chunks("the cat sat."), vec!["the cat sat."]);
    assert_eq!(model.chunks(""), vec![""]);

    // 13 word pieces; "playing" is two of them, the 6th and 7th, and stays whole.
    let text = "the cat sat on the playing mat far away. a dog";
    let chunks = model.chunks(text);
    assert_eq!(chunks.concat(), text);
    assert_eq!(
        chunks,
        vec!["the cat sat on the ", "playing mat far away. ", "a dog"]
    );
    // Every piece fits: embedding it alone equals embedding it untruncated, i.e. the
    // same text with nothing after it.
    for c in &chunks {
        let v = model
            .embed(std::slice::from_ref(c))
            .await
            .unwrap()
            .remove(0);
        let q = model.embed_query(c).await.unwrap();
        assert_close(&v, &q);
    }
}

#[tokio::test]
async fn queries_and_oversized_inputs_are_truncated() {
    let (_dir, model, _) = tiny();
    let long = "the cat sat on the mat far away";
    let first_six = "the cat sat on the mat";
    let query = model.embed_query(long).await.unwrap();
    let head = model.embed_query(first_six).await.unwrap();
    assert_close(&query, &head);
    let embedded = model.embed(&strings(&[long])).await.unwrap().remove(0);
    assert_close(&embedded, &head);
    // One more word inside the window does change the vector.
    let five = model.embed_query("the cat sat on the").await.unwrap();
    assert!(max_abs_diff(&five, &head) > 1e-4);
}

#[tokio::test]
async fn unknown_words_embed_as_unknown() {
    let (_dir, model, _) = tiny();
    let v = model
        .embed(&strings(&["zebra quokka", "🦀 ünïcode"]))
        .await
        .unwrap();
    assert!(
        v.iter()
            .all(|v| v.len() == 32 && (norm(v) - 1.0).abs() < 1e-5)
    );
}

/// Log output captured from one call.
fn logs_of<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[test]
fn absent_files_turn_semantic_search_off() {
    let dir = tempfile::tempdir().unwrap();
    let (loaded, logs) = logs_of(|| load_from_dir(dir.path()).unwrap());
    assert!(loaded.is_none());
    assert_eq!(logs.lines().count(), 1, "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    assert!(logs.contains("semantic search is off"), "{logs}");
    assert!(logs.contains("scripts/fetch-model.sh"), "{logs}");
    assert!(logs.contains("ENGRAM_MODEL_DIR"), "{logs}");
    assert!(
        load_from_dir(&dir.path().join("nowhere"))
            .unwrap()
            .is_none()
    );
    write_tiny_model(dir.path());
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let (loaded, logs) = logs_of(|| load_from_dir(dir.path()).unwrap());
    assert!(loaded.is_none());
    assert!(logs.contains("missing tokenizer.json"), "{logs}");
}

#[test]
fn present_but_broken_files_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path());
    let embedder = load_from_dir(dir.path())
        .unwrap()
        .expect("a complete directory loads");
    assert_eq!(embedder.dimension(), 32);

    std::fs::write(dir.path().join("config.json"), "{not json").unwrap();
    let err = load_from_dir(dir.path())
        .err()
        .expect("broken config is an error");
    let message = err.to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );

    write_tiny_model(dir.path());
    std::fs::write(dir.path().join("model.safetensors"), b"truncated").unwrap();
    let message = load_from_dir(dir.path()).err().unwrap().to_string();
    assert!(message.contains("model.safetensors"), "{message}");
}
