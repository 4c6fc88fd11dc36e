//! `TestApp`: the real router on 127.0.0.1:0 over a fresh store, and a macro that
//! runs a test body once per engine.

use std::sync::Arc;

use engram_core::{Embedder, Store};
use engram_server::AppState;
use engram_server::config::DEFAULT_MAX_BODY_BYTES;
use engram_server::startup::{App, ServeOptions};
use engram_store_tests::TempDatabase;
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    client: Client,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database URL, when this app runs on PostgreSQL.
    pub db_url: Option<String>,
    pub store: Arc<dyn Store>,
    /// Dropping it stops the server, then its workers.
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// The PostgreSQL database, dropped (with `FORCE`) after the fields above: the server
    /// is told to stop first, and connections it still holds do not keep the database.
    _db: Option<TempDatabase>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl TestApp {
    pub async fn sqlite() -> TestApp {
        TestApp::sqlite_with(None).await
    }

    /// `None` when no PostgreSQL is configured for tests (the run says so loudly).
    pub async fn postgres() -> Option<TestApp> {
        TestApp::postgres_with(None).await
    }

    /// With `embedder`, semantic search is on and the workers embed messages.
    pub async fn sqlite_with(embedder: Option<Arc<dyn Embedder>>) -> TestApp {
        TestApp::sqlite_setup(embedder, |s| s).await
    }

    pub async fn postgres_with(embedder: Option<Arc<dyn Embedder>>) -> Option<TestApp> {
        TestApp::postgres_setup(embedder, |s| s).await
    }

    /// On SQLite, with settings (auth, webhooks, CORS) changed by `configure`.
    pub async fn sqlite_configured(configure: impl FnOnce(AppState) -> AppState) -> TestApp {
        TestApp::sqlite_setup(None, configure).await
    }

    /// On PostgreSQL, with settings changed by `configure`.
    pub async fn postgres_configured(
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Option<TestApp> {
        TestApp::postgres_setup(None, configure).await
    }

    async fn sqlite_setup(
        embedder: Option<Arc<dyn Embedder>>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = engram_store_sqlite::SqliteStore::open(&dir.path().join("engram.db"))
            .expect("open sqlite");
        TestApp::start(Arc::new(store), Some(dir), embedder, configure).await
    }

    async fn postgres_setup(
        embedder: Option<Arc<dyn Embedder>>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> Option<TestApp> {
        let db = TempDatabase::fresh().await?;
        let store = engram_store_postgres::PgStore::connect(&db.url)
            .await
            .expect("open postgres");
        let mut app = TestApp::start(Arc::new(store), None, embedder, configure).await;
        app.db_url = Some(db.url.clone());
        app._db = Some(db);
        Some(app)
    }

    async fn start(
        store: Arc<dyn Store>,
        dir: Option<tempfile::TempDir>,
        embedder: Option<Arc<dyn Embedder>>,
        configure: impl FnOnce(AppState) -> AppState,
    ) -> TestApp {
        let mut state = AppState::new(store.clone());
        if let Some(e) = &embedder {
            store
                .enable_embeddings(e.model(), e.dimension())
                .await
                .expect("enable embeddings");
            state = state.with_embedder(e.clone());
        }
        let options = ServeOptions {
            bind: "127.0.0.1:0".parse().expect("loopback address"),
            max_body: DEFAULT_MAX_BODY_BYTES,
            purge_batch: Some(engram_core::queue::PURGE_BATCH),
        };
        let app = App::build(configure(state), options)
            .await
            .expect("build the app");
        let base = format!("http://{}", app.address().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async {
            let _ = rx.await;
        }));
        let client = Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("client");
        TestApp {
            base,
            client,
            store,
            _dir: dir,
            db_url: None,
            _shutdown: tx,
            _db: None,
        }
    }

    /// The SQLite data directory, when this app runs on SQLite.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self._dir.as_ref().map(|d| d.path())
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(None, method, path, body).await
    }

    /// A request with `Authorization: Bearer <token>` when a token is given.
    pub async fn call_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply { status, body }
    }

    pub async fn raw(&self, method: Method, path: &str, body: &'static str) -> Reply {
        let resp = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let body = resp.json().await.unwrap_or(Value::Null);
        Reply { status, body }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    /// Adds messages `(peer, content)` to a session and returns their ids.
    pub async fn add_messages(
        &self,
        ws: &str,
        session: &str,
        items: &[(&str, &str)],
    ) -> Vec<String> {
        let messages: Vec<Value> = items
            .iter()
            .map(|(p, c)| serde_json::json!({"peer_id": p, "content": c}))
            .collect();
        let r = self
            .post(
                &format!("/v3/workspaces/{ws}/sessions/{session}/messages"),
                serde_json::json!({"messages": messages}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
            .as_array()
            .expect("array")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_string())
            .collect()
    }
}

/// Declares `async fn $name(app: TestApp)` once and runs it on SQLite and PostgreSQL.
#[macro_export]
macro_rules! both_engines {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::sqlite().await;
                ($body)(app).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::postgres().await {
                    ($body)(app).await;
                }
            }
        }
    };
}
