//! The real all-MiniLM-L6-v2 (fetched by `scripts/fetch-model.sh`) against vectors the
//! sentence-transformers recipe computed independently (`fixtures/minilm_reference.py`).
//! Without the model the test skips with a notice, except under CI, where it fails.

use engram_embed::{Embedder, MiniLm, default_model_dir};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    max_seq_length: usize,
    sentences: Vec<Reference>,
}

#[derive(Deserialize)]
struct Reference {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn model() -> Option<MiniLm> {
    let dir = default_model_dir().expect("HOME or ENGRAM_MODEL_DIR is set");
    if !dir.join("model.safetensors").is_file() {
        let notice = format!(
            "no all-MiniLM-L6-v2 in {}: run scripts/fetch-model.sh (or set ENGRAM_MODEL_DIR)",
            dir.display()
        );
        if std::env::var_os("CI").is_some() {
            panic!("{notice}; the real-model test must run under CI");
        }
        eprintln!("SKIPPED real-model test: {notice}");
        return None;
    }
    Some(MiniLm::load(&dir).expect("the fetched model loads"))
}

fn fixture() -> Fixture {
    let text = include_str!("fixtures/minilm_reference.json");
    serde_json::from_str(text).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test]
async fn matches_the_sentence_transformers_recipe() {
    let Some(model) = model() else { return };
    let fixture = fixture();
    assert_eq!(model.dimension(), 384);
    assert_eq!(model.max_seq_length(), fixture.max_seq_length);

    // One batch of very different lengths, so padding is exercised too.
    let texts: Vec<String> = fixture.sentences.iter().map(|s| s.text.clone()).collect();
    let got = model.embed(&texts).await.unwrap();
    for (reference, vector) in fixture.sentences.iter().zip(&got) {
        assert_eq!(vector.len(), 384);
        let cos = cosine(vector, &reference.embedding);
        let max_diff = vector
            .iter()
            .zip(&reference.embedding)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let shown: String = reference.text.chars().take(40).collect();
        eprintln!("{shown:?}: cosine {cos:.7}, max abs diff {max_diff:.2e}");
        assert!(
            cos >= 0.9999 && max_diff <= 1e-4,
            "{:?}: cosine {cos}, max abs diff {max_diff}",
            reference.text
        );
    }
    let query = model.embed_query(&texts[0]).await.unwrap();
    assert!(cosine(&query, &fixture.sentences[0].embedding) >= 0.9999);

    // The long reference text was truncated to the model's window; chunking instead
    // keeps all of it, in pieces that each fit.
    let long = fixture.sentences.iter().find(|s| s.tokens == 256).unwrap();
    let chunks = model.chunks(&long.text);
    assert!(chunks.len() > 1);
    assert_eq!(chunks.concat(), long.text);
    let first = model.embed_query(&chunks[0]).await.unwrap();
    assert!(cosine(&first, &long.embedding) > 0.99);
}

#[tokio::test]
async fn feline_finds_the_cat() {
    let Some(model) = model() else { return };
    let texts: Vec<String> = [
        "feline",
        "A cat sleeps on the sofa",
        "The quarterly revenue report is due on Friday.",
        "How do I reset my password?",
        "We drove to the mountains for the weekend.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = model.embed(&texts).await.unwrap();
    let cat = cosine(&v[0], &v[1]);
    for (text, other) in texts.iter().zip(&v).skip(2) {
        let unrelated = cosine(&v[0], other);
        eprintln!("cos(feline, cat) {cat:.3}, cos(feline, {text:?}) {unrelated:.3}");
        assert!(
            cat > unrelated + 0.15,
            "cos(feline, cat) = {cat}, cos(feline, {text:?}) = {unrelated}"
        );
    }
}
