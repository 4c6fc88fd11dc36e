//! Queue status shows the background work a client waits for before searching: here
//! embedding, held back by an embedder that waits for the test to open its gate.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use engram_core::Embedder;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::helpers::TestApp;

/// Embeds every text as the same unit vector, once the gate is open.
struct Gated(watch::Receiver<bool>);

#[async_trait]
impl Embedder for Gated {
    fn model(&self) -> &str {
        "test-gated"
    }
    fn dimension(&self) -> usize {
        4
    }
    fn chunks(&self, text: &str) -> Vec<String> {
        vec![text.to_string()]
    }
    async fn embed(&self, texts: &[String]) -> engram_core::Result<Vec<Vec<f32>>> {
        let mut gate = self.0.clone();
        gate.wait_for(|open| *open)
            .await
            .map_err(engram_core::Error::internal)?;
        Ok(texts.iter().map(|_| vec![1.0, 0.0, 0.0, 0.0]).collect())
    }
    async fn embed_query(&self, _text: &str) -> engram_core::Result<Vec<f32>> {
        Ok(vec![1.0, 0.0, 0.0, 0.0])
    }
}

fn gated() -> (watch::Sender<bool>, Arc<dyn Embedder>) {
    let (open, gate) = watch::channel(false);
    (open, Arc::new(Gated(gate)))
}

const STATUS: &str = "/v3/workspaces/w/queue/status";

fn counts(v: &Value) -> [i64; 4] {
    [
        "total_work_units",
        "completed_work_units",
        "in_progress_work_units",
        "pending_work_units",
    ]
    .map(|k| {
        v[k].as_i64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    })
}

async fn status(app: &TestApp, query: &str) -> Value {
    let r = app.get(&format!("{STATUS}{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Polls the status until `done` holds, or fails with the last status seen.
async fn status_until(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        last = status(app, "").await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("queue status never reached the expected state: {last}");
}

async fn pending_embeddings_show_until_done(app: TestApp, open: watch::Sender<bool>) {
    // Session a's first write is claimed and held in the embedder; its second waits
    // behind it in the same work unit; session b's write waits for the worker.
    app.add_messages("w", "a", &[("alice", "one"), ("bob", "two")])
        .await;
    app.add_messages("w", "a", &[("alice", "three")]).await;
    app.add_messages("w", "b", &[("bob", "four")]).await;
    let held = status_until(&app, |s| s["in_progress_work_units"].as_i64() > Some(0)).await;
    assert_eq!(counts(&held), [3, 0, 2, 1], "{held}");
    assert_eq!(counts(&held["sessions"]["a"]), [2, 0, 2, 0], "{held}");
    assert_eq!(counts(&held["sessions"]["b"]), [1, 0, 0, 1], "{held}");
    assert_eq!(held["sessions"]["a"]["session_id"], "a");
    assert_eq!(held["sessions"].as_object().unwrap().len(), 2, "{held}");
    assert_eq!(
        held["deletions"],
        json!({"pending": 0, "in_progress": 0, "completed": 0, "failed": 0})
    );

    // One session's status, as `Session.queue_status` asks for it.
    let one = status(&app, "?session_id=b").await;
    assert_eq!(counts(&one), [1, 0, 0, 1], "{one}");
    assert_eq!(one["sessions"], Value::Null);
    // Empty values are no filter; unknown ids and observers match nothing.
    let empty = status(&app, "?session_id=&observer_id=&sender_id=").await;
    assert_eq!(counts(&empty), [3, 0, 2, 1], "{empty}");
    for query in ["?session_id=nope", "?observer_id=alice", "?sender_id=bob"] {
        let none = status(&app, query).await;
        assert_eq!(counts(&none), [0, 0, 0, 0], "{query}: {none}");
    }
    let other = app.get("/v3/workspaces/nope/queue/status").await;
    assert_eq!(counts(&other.body), [0, 0, 0, 0], "{}", other.body);
    assert_eq!(other.body["sessions"], Value::Null);

    open.send(true).unwrap();
    let done = status_until(&app, |s| {
        s["pending_work_units"] == 0 && s["in_progress_work_units"] == 0
    })
    .await;
    assert_eq!(counts(&done), [3, 3, 0, 0], "{done}");
    assert_eq!(counts(&done["sessions"]["a"]), [2, 2, 0, 0], "{done}");
    assert_eq!(counts(&done["sessions"]["b"]), [1, 1, 0, 0], "{done}");
    assert_eq!(done["failed_work_units"], 0);
    // Drained means searchable by meaning: every message has its vector.
    let found = app
        .post(
            "/v3/workspaces/w/sessions/a/search",
            json!({"query": "zzz-no-keyword-match", "limit": 10}),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(
        found.body.as_array().map(Vec::len),
        Some(3),
        "{}",
        found.body
    );

    // A deleted session's work disappears with it, at once.
    let r = app
        .call(Method::DELETE, "/v3/workspaces/w/sessions/a", None)
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let after = status(&app, "").await;
    assert_eq!(counts(&after), [1, 1, 0, 0], "{after}");
    assert_eq!(
        after["sessions"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["b"]
    );
}

#[tokio::test]
async fn sqlite_pending_embeddings_show_until_done() {
    let (open, embedder) = gated();
    let app = TestApp::sqlite_with(Some(embedder)).await;
    pending_embeddings_show_until_done(app, open).await;
}

#[tokio::test]
async fn postgres_pending_embeddings_show_until_done() {
    let (open, embedder) = gated();
    if let Some(app) = TestApp::postgres_with(Some(embedder)).await {
        pending_embeddings_show_until_done(app, open).await;
    }
}
