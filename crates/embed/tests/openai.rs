//! The OpenAI-compatible provider against a real HTTP server on 127.0.0.1 that checks
//! each request and answers as scripted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use engram_core::Error;
use engram_embed::{Embedder, OpenAiConfig, OpenAiEmbedder};
use serde_json::{Value, json};

const KEY: &str = "sk-test-3f9a1c";

/// One request as the fake endpoint saw it: the JSON body and the Authorization header.
type Request = (Value, Option<String>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

impl Seen {
    fn bodies(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(b, _)| b.clone())
            .collect()
    }
    fn inputs(&self) -> Vec<Vec<String>> {
        self.bodies()
            .iter()
            .map(|b| serde_json::from_value(b["input"].clone()).unwrap())
            .collect()
    }
}

type Answer = fn(&Value) -> Response;

/// Starts the fake endpoint at `/v1/embeddings`; returns its base URL (with `/v1`).
async fn serve(answer: Answer) -> (String, Seen) {
    let seen = Seen::default();
    let handler = move |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
        let auth = headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.0.lock().unwrap().push((body.clone(), auth));
        answer(&body)
    };
    let app = axum::Router::new()
        .route("/v1/embeddings", post(handler))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

/// A vector of length 3 per input, not normalised, derived from the input's length, in
/// reverse order with explicit indexes (the provider must put them back in order).
fn vectors(body: &Value) -> Response {
    let inputs = body["input"].as_array().unwrap();
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let n = t.as_str().unwrap().len() as f32;
            json!({"object": "embedding", "index": i, "embedding": [n, 2.0 * n, 2.0 * n]})
        })
        .collect();
    data.reverse();
    Json(json!({
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": 1, "total_tokens": 1}
    }))
    .into_response()
}

fn config(base_url: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: base_url.to_owned(),
        api_key: Some(KEY.to_owned()),
        model: "text-embedding-3-small".to_owned(),
        dimensions: 3,
        ..OpenAiConfig::default()
    }
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

fn message(e: Error) -> String {
    match e {
        Error::Internal(m) => m,
        other => panic!("expected an internal error, got {other:?}"),
    }
}

async fn error_for(answer: Answer, config_fn: fn(&str) -> OpenAiConfig) -> String {
    let (url, _) = serve(answer).await;
    let embedder = OpenAiEmbedder::new(config_fn(&url)).unwrap();
    let err = embedder.embed(&strings(&["hello"])).await.unwrap_err();
    let m = message(err);
    assert!(!m.contains(KEY), "the API key leaked: {m}");
    m
}

#[tokio::test]
async fn sends_model_inputs_and_key_and_returns_normalised_vectors_in_order() {
    let (url, seen) = serve(vectors).await;
    let embedder = OpenAiEmbedder::new(config(&url)).unwrap();
    assert_eq!(embedder.dimension(), 3);
    assert_eq!(embedder.model(), "text-embedding-3-small");

    let got = embedder.embed(&strings(&["a", "bbb"])).await.unwrap();
    assert_eq!(got, vec![vec![1.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]; 2]);

    let requests = seen.0.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let (body, auth) = &requests[0];
    assert_eq!(
        body,
        &json!({"model": "text-embedding-3-small", "input": ["a", "bbb"], "encoding_format": "float"})
    );
    assert_eq!(auth.as_deref(), Some(format!("Bearer {KEY}").as_str()));

    let query = embedder.embed_query("hello").await.unwrap();
    assert_eq!(query.len(), 3);
}

/// Distinguishes inputs by answering with one-hot vectors keyed on the input's length.
fn one_hot(body: &Value) -> Response {
    let data: Vec<Value> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = vec![0.0f32; 3];
            v[t.as_str().unwrap().len() % 3] = 5.0;
            json!({"index": i, "embedding": v})
        })
        .collect();
    Json(json!({"data": data})).into_response()
}

#[tokio::test]
async fn batches_by_count_and_tokens_keeping_order() {
    let (url, seen) = serve(one_hot).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        max_batch_size: 2,
        ..config(&url)
    })
    .unwrap();
    let texts = strings(&["a", "bb", "ccc", "dddd", "eeeee"]);
    let got = embedder.embed(&texts).await.unwrap();
    let hot: Vec<usize> = got
        .iter()
        .map(|v| v.iter().position(|x| *x == 1.0).unwrap())
        .collect();
    assert_eq!(hot, vec![1, 2, 0, 1, 2]);
    assert_eq!(
        seen.inputs(),
        vec![
            strings(&["a", "bb"]),
            strings(&["ccc", "dddd"]),
            strings(&["eeeee"])
        ]
    );

    // "hello world" is 2 cl100k tokens: three of them exceed 5 tokens per request.
    let (url, seen) = serve(one_hot).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        max_tokens_per_request: 5,
        ..config(&url)
    })
    .unwrap();
    let texts = strings(&["hello world"; 5]);
    assert_eq!(embedder.embed(&texts).await.unwrap().len(), 5);
    let sizes: Vec<usize> = seen.inputs().iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
}

#[tokio::test]
async fn chunks_long_texts_and_truncates_oversized_inputs() {
    let (url, seen) = serve(vectors).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        max_input_tokens: 4,
        ..config(&url)
    })
    .unwrap();
    let text = "one two three four five six seven eight nine ten";
    let chunks = embedder.chunks(text);
    assert_eq!(chunks.concat(), text);
    assert_eq!(
        chunks,
        vec!["one two three four", " five six seven eight", " nine ten"]
    );
    assert_eq!(embedder.chunks("short"), vec!["short"]);

    embedder.embed_query(text).await.unwrap();
    embedder.embed(&strings(&[text])).await.unwrap();
    assert_eq!(
        seen.inputs(),
        vec![
            strings(&["one two three four"]),
            strings(&["one two three four"])
        ]
    );
}

#[tokio::test]
async fn sends_dimensions_only_when_configured_and_no_key_when_none() {
    let (url, seen) = serve(vectors).await;
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        send_dimensions: true,
        api_key: None,
        ..config(&url)
    })
    .unwrap();
    embedder.embed(&strings(&["x"])).await.unwrap();
    let requests = seen.0.lock().unwrap().clone();
    assert_eq!(requests[0].0["dimensions"], json!(3));
    assert_eq!(requests[0].1, None);
}

#[tokio::test]
async fn http_errors_are_clear_and_never_show_the_key() {
    fn server_error(_: &Value) -> Response {
        let body = json!({"error": {"message": format!("upstream failed for key {KEY}")}});
        (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
    }
    let m = error_for(server_error, config).await;
    assert!(m.contains("answered HTTP 500"), "{m}");
    assert!(m.contains("upstream failed for key [redacted]"), "{m}");

    fn unauthorized(_: &Value) -> Response {
        (StatusCode::UNAUTHORIZED, "Incorrect API key provided").into_response()
    }
    let m = error_for(unauthorized, config).await;
    assert!(m.contains("HTTP 401: Incorrect API key provided"), "{m}");
}

#[tokio::test]
async fn malformed_answers_are_clear_errors() {
    fn not_json(_: &Value) -> Response {
        (StatusCode::OK, "<html>gateway</html>").into_response()
    }
    let m = error_for(not_json, config).await;
    assert!(m.contains("not an embeddings list"), "{m}");

    fn wrong_dimension(_: &Value) -> Response {
        Json(json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]})).into_response()
    }
    let m = error_for(wrong_dimension, config).await;
    assert_eq!(
        m,
        "embedding dimension mismatch for text-embedding-3-small: expected 3, got 2"
    );

    fn too_few(_: &Value) -> Response {
        Json(json!({"data": []})).into_response()
    }
    let m = error_for(too_few, config).await;
    assert!(m.contains("returned 0 vectors for 1 inputs"), "{m}");

    fn bad_index(_: &Value) -> Response {
        Json(json!({"data": [{"index": 7, "embedding": [1.0, 0.0, 0.0]}]})).into_response()
    }
    let m = error_for(bad_index, config).await;
    assert!(m.contains("bad or repeated index 7"), "{m}");
}

#[tokio::test]
async fn slow_and_unreachable_endpoints_fail_in_time() {
    // The server answers, but only after the client's timeout.
    let slow_app = axum::Router::new().route(
        "/v1/embeddings",
        post(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow_app).await.unwrap() });
    let embedder = OpenAiEmbedder::new(OpenAiConfig {
        timeout: Duration::from_millis(200),
        ..config(&slow)
    })
    .unwrap();
    let started = std::time::Instant::now();
    let m = message(embedder.embed(&strings(&["x"])).await.unwrap_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(m.contains("timed out after 200ms"), "{m}");

    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let embedder = OpenAiEmbedder::new(config(&format!("http://{closed}/v1"))).unwrap();
    let m = message(embedder.embed(&strings(&["x"])).await.unwrap_err());
    assert!(
        m.starts_with(&format!(
            "embedding request to http://{closed}/v1/embeddings failed"
        )),
        "{m}"
    );
    assert!(!m.contains(KEY));
}
