//! Webhook endpoints and deliveries, received by a real HTTP server on 127.0.0.1
//! that verifies signatures and fails on cue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use engram_server::AppState;
use engram_server::webhooks::{WebhookConfig, sign};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

const WEBHOOK_SECRET: &str = "whsec-test";

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Answers only after the sender's timeout has passed.
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    /// `(signature header, raw body)` of every request, in arrival order.
    hits: Arc<Mutex<Vec<(String, String)>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let signature = headers
        .get("x-honcho-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    r.hits.lock().unwrap().push((signature, body));
    let answer = r.script.lock().unwrap().pop_front();
    match answer {
        Some(Answer::Status(code)) => AxumStatus::from_u16(code).unwrap(),
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            AxumStatus::OK
        }
        None => AxumStatus::OK,
    }
}

impl Receiver {
    async fn start(script: &[Answer]) -> (Receiver, String) {
        let r = Receiver::default();
        r.script.lock().unwrap().extend(script.iter().copied());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (r, url)
    }

    /// Waits until `n` requests arrived and returns them all.
    async fn wait_for(&self, n: usize) -> Vec<(String, String)> {
        for _ in 0..300 {
            let hits = self.hits.lock().unwrap().clone();
            if hits.len() >= n {
                return hits;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {n} deliveries, got {:?}",
            self.hits.lock().unwrap()
        );
    }

    /// Waits for a delivery of event `kind` and returns its body.
    async fn event(&self, kind: &str) -> Value {
        for _ in 0..300 {
            let found = self.hits.lock().unwrap().iter().find_map(|(_, body)| {
                let v: Value = serde_json::from_str(body).unwrap();
                (v["type"] == kind).then_some(v)
            });
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {kind} delivery; got {:?}", self.hits.lock().unwrap());
    }
}

fn delivering(state: AppState) -> AppState {
    AppState {
        webhooks: WebhookConfig {
            secret: Some(WEBHOOK_SECRET.parse().unwrap()),
            allow_private: true,
            timeout: Duration::from_millis(300),
        },
        ..state
    }
}

async fn reconfigure(app: &TestApp) -> Option<TestApp> {
    if app.db_url.is_some() {
        TestApp::postgres_configured(delivering).await
    } else {
        Some(TestApp::sqlite_configured(delivering).await)
    }
}

both_engines!(
    endpoints_are_registered_listed_and_deleted,
    |app: TestApp| async move {
        let hooks = "/v3/workspaces/w/webhooks";
        let r = app
            .post(hooks, json!({"url": "https://93.184.216.34/a"}))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "workspace must exist");
        app.post("/v3/workspaces", json!({"id": "w"})).await;
        let first = app
            .post(hooks, json!({"url": "https://93.184.216.34/a"}))
            .await;
        assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
        assert_eq!(first.body["workspace_id"], "w");
        assert_eq!(first.body["url"], "https://93.184.216.34/a");
        assert!(first.body["created_at"].as_str().unwrap().ends_with('Z'));
        let again = app
            .post(hooks, json!({"url": "https://93.184.216.34/a"}))
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["id"], first.body["id"]);
        for i in 1..10 {
            let r = app
                .post(hooks, json!({"url": format!("https://93.184.216.34/{i}")}))
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        let r = app
            .post(hooks, json!({"url": "https://93.184.216.34/11"}))
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(
            r.body,
            json!({"detail": "Maximum number of webhook endpoints (10) reached for this workspace."})
        );
        let listed = app.get(&format!("{hooks}?size=4")).await;
        assert_eq!(listed.body["total"], 10);
        assert_eq!(listed.body["items"].as_array().unwrap().len(), 4);
        assert_eq!(listed.body["items"][0]["id"], first.body["id"]);

        let id = first.body["id"].as_str().unwrap();
        let gone = app
            .call(Method::DELETE, &format!("{hooks}/{id}"), None)
            .await;
        assert_eq!(gone.status, StatusCode::NO_CONTENT);
        let again = app
            .call(Method::DELETE, &format!("{hooks}/{id}"), None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(
            again.body["detail"],
            format!("Webhook endpoint {id} not found for workspace w")
        );

        for (url, msg) in [
            ("not a url", "Value error, Invalid URL format"),
            (
                "ftp://93.184.216.34/x",
                "Value error, Only HTTP and HTTPS URLs are allowed",
            ),
            (
                "http://127.0.0.1:9/x",
                "Value error, Private/internal IP addresses are not allowed",
            ),
            (
                "http://[::1]:9/x",
                "Value error, Private/internal IP addresses are not allowed",
            ),
            (
                "http://localhost:9/x",
                "Value error, Private/internal IP addresses are not allowed",
            ),
            (
                "http://169.254.169.254/x",
                "Value error, Private/internal IP addresses are not allowed",
            ),
        ] {
            let r = app.post(hooks, json!({"url": url})).await;
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{url}");
            assert_eq!(r.body["detail"][0]["msg"], msg, "{url}");
            assert_eq!(r.body["detail"][0]["loc"], json!(["body", "url"]));
        }
        let r = app.post(hooks, json!({})).await;
        assert_eq!(r.body["detail"][0]["type"], "missing");
        let listed = app.get(hooks).await;
        assert_eq!(listed.body["total"], 9, "refused URLs were not stored");
        app.post("/v3/workspaces", json!({"id": "v"})).await;
        let r = app
            .post(
                "/v3/workspaces/v/webhooks",
                json!({"url": "https://93.184.216.34/1"}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "the same URL in another workspace"
        );
    }
);

both_engines!(
    deliveries_are_signed_and_retried_after_errors_and_timeouts,
    |plain: TestApp| async move {
        let Some(app) = reconfigure(&plain).await else {
            return;
        };
        let (receiver, url) = Receiver::start(&[Answer::Status(500), Answer::Hang]).await;
        app.post("/v3/workspaces", json!({"id": "w"})).await;
        let r = app
            .post("/v3/workspaces/w/webhooks", json!({"url": url}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = app.get("/v3/workspaces/w/webhooks/test").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body, Value::Null);
        // A 500, then a timeout, then success: three identical, signed attempts.
        let hits = receiver.wait_for(3).await;
        let (signature, body) = &hits[0];
        let secret = WEBHOOK_SECRET.parse().unwrap();
        assert_eq!(*signature, sign(&secret, body.as_bytes()));
        assert!(hits.iter().all(|h| h == &hits[0]), "{hits:?}");
        let event: Value = serde_json::from_str(body).unwrap();
        assert_eq!(event["type"], "test.event");
        assert_eq!(event["data"], json!({"workspace_id": "w"}));
        assert!(body.starts_with(r#"{"data":{"workspace_id":"w"},"timestamp":""#));
        for _ in 0..50 {
            let done = app.store.list_jobs(Some("done"), 50).await.unwrap();
            if done.iter().any(|j| j.kind == "webhook_delivery") {
                let job = done.iter().find(|j| j.kind == "webhook_delivery").unwrap();
                assert_eq!(job.attempts, 3);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the delivery job never completed");
    }
);

both_engines!(
    purges_announce_session_and_workspace_deletion,
    |plain: TestApp| async move {
        let Some(app) = reconfigure(&plain).await else {
            return;
        };
        let (receiver, url) = Receiver::start(&[]).await;
        app.post("/v3/workspaces", json!({"id": "w"})).await;
        app.post("/v3/workspaces/w/webhooks", json!({"url": url}))
            .await;
        app.add_messages("w", "s1", &[("alice", "secret one"), ("bob", "secret two")])
            .await;
        let r = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/s1", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let event = receiver.event("session.deleted").await;
        let data = &event["data"];
        assert_eq!(data["workspace_id"], "w");
        assert_eq!(data["session_id"], "s1");
        assert_eq!(data["messages_deleted"], 2);
        assert_eq!(data["members_deleted"], 2);
        assert!(data["finished_at"].as_str().unwrap().ends_with('Z'));
        let r = app.call(Method::DELETE, "/v3/workspaces/w", None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        let event = receiver.event("workspace.deleted").await;
        assert_eq!(event["data"]["workspace_id"], "w");
        let all: Vec<String> = receiver
            .wait_for(2)
            .await
            .into_iter()
            .map(|h| h.1)
            .collect();
        assert!(
            all.iter().all(|b| !b.contains("secret one")),
            "no content in events"
        );
        let r = app.get("/v3/workspaces/w/webhooks").await;
        assert_eq!(r.body["total"], 0, "endpoints went with the workspace");
    }
);

/// Lowers the attempt budget of queued deliveries, so dead-lettering shows in seconds.
async fn set_delivery_attempts(app: &TestApp, n: i64) {
    let sql = format!("UPDATE jobs SET max_attempts = {n} WHERE kind = 'webhook_delivery'");
    if let Some(dir) = app.data_dir() {
        let conn = rusqlite::Connection::open(dir.join("engram.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(&sql).unwrap();
    } else {
        let url = app.db_url.as_deref().expect("postgres url");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(url)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}

both_engines!(
    a_delivery_that_keeps_failing_is_dead_lettered,
    |plain: TestApp| async move {
        let Some(app) = reconfigure(&plain).await else {
            return;
        };
        let (receiver, url) = Receiver::start(&[Answer::Status(503); 5]).await;
        app.post("/v3/workspaces", json!({"id": "w"})).await;
        app.post("/v3/workspaces/w/webhooks", json!({"url": url}))
            .await;
        app.get("/v3/workspaces/w/webhooks/test").await;
        receiver.wait_for(1).await;
        set_delivery_attempts(&app, 2).await;
        for _ in 0..100 {
            let failed = app.store.list_jobs(Some("failed"), 10).await.unwrap();
            if let Some(job) = failed.iter().find(|j| j.kind == "webhook_delivery") {
                assert_eq!(job.attempts, 2);
                let error = job.last_error.as_deref().unwrap_or_default();
                assert!(error.contains("503"), "{error}");
                assert_eq!(receiver.hits.lock().unwrap().len(), 2);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the delivery was never dead-lettered");
    }
);

both_engines!(
    a_hanging_endpoint_does_not_hold_back_purges,
    |plain: TestApp| async move {
        let slow = |state: AppState| {
            let mut state = delivering(state);
            state.webhooks.timeout = Duration::from_secs(10);
            state
        };
        let app = if plain.db_url.is_some() {
            TestApp::postgres_configured(slow).await.expect("postgres")
        } else {
            TestApp::sqlite_configured(slow).await
        };
        let (receiver, url) = Receiver::start(&[Answer::Hang]).await;
        app.post("/v3/workspaces", json!({"id": "w"})).await;
        app.post("/v3/workspaces/w/webhooks", json!({"url": url}))
            .await;
        app.get("/v3/workspaces/w/webhooks/test").await;
        receiver.wait_for(1).await;
        app.add_messages("w", "s1", &[("alice", "hi")]).await;
        app.call(Method::DELETE, "/v3/workspaces/w/sessions/s1", None)
            .await;
        for _ in 0..100 {
            let receipts = app.store.deletion_receipts("w").await.unwrap();
            if receipts.first().is_some_and(|r| r.finished_at.is_some()) {
                let running = app.store.list_jobs(Some("running"), 10).await.unwrap();
                assert!(
                    running.iter().any(|j| j.kind == "webhook_delivery"),
                    "the purge finished while the delivery was still waiting: {running:?}"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the purge waited for the endpoint");
    }
);
