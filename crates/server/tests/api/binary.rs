//! The real `engram` binary on either engine: started with its own store, driven over
//! HTTP and through its subcommands.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The PocketPaw master token the servers of these tests are started with.
pub const TOKEN: &str = "master-token-123";

/// Where the binary keeps its data: a SQLite directory or a PostgreSQL database (its URL
/// and, when this test made it, the database itself, dropped with the engine).
pub enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(
        String,
        #[expect(dead_code, reason = "held only to drop the database with the engine")]
        Option<engram_store_tests::TempDatabase>,
    ),
}

impl Engine {
    pub fn sqlite() -> Engine {
        Engine::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// A fresh PostgreSQL database, dropped with the engine; `None` (loudly) when no
    /// PostgreSQL is configured for tests.
    pub async fn postgres() -> Option<Engine> {
        let db = engram_store_tests::TempDatabase::fresh().await?;
        Some(Engine::Postgres(db.url.clone(), Some(db)))
    }

    /// The PostgreSQL database URL (`None` on SQLite).
    pub fn database_url(&self) -> Option<&str> {
        match self {
            Engine::Sqlite(_) => None,
            Engine::Postgres(url, _) => Some(url),
        }
    }

    /// `engram <args>` on this engine, with no PocketPaw settings from the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engram"));
        cmd.args(args);
        for var in [
            "DB_CONNECTION_URI",
            "ENGRAM_DATA_DIR",
            "ENGRAM_POCKETPAW_TOKEN",
            "ENGRAM_POCKETPAW_WORKSPACE",
            "ENGRAM_BIND",
        ] {
            cmd.env_remove(var);
        }
        match self {
            Engine::Sqlite(dir) => cmd.arg("--data-dir").arg(dir.path()),
            Engine::Postgres(url, _) => cmd.arg("--database-url").arg(url),
        };
        cmd.env("ENGRAM_LOG", "warn");
        cmd
    }

    /// Runs `engram import pocketpaw DIR [extra]` and returns its standard output.
    pub fn import(&self, dir: &Path, extra: &[&str]) -> String {
        let mut args = vec!["import", "pocketpaw", dir.to_str().expect("utf-8 path")];
        args.extend_from_slice(extra);
        let out = self.command(&args).output().expect("run engram import");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "import failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// A running `engram serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    pub client: Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Server {
    /// Starts `engram serve` on a port the server picks itself (no race for a free
    /// port between parallel tests) and waits until `/health` answers.
    pub async fn start(engine: &Engine, token: Option<&str>) -> Server {
        Server::start_with(engine, token, &[]).await
    }

    /// As `start`, with more environment (e.g. the `AUTH_*` settings).
    pub async fn start_with(engine: &Engine, token: Option<&str>, env: &[(&str, &str)]) -> Server {
        let mut cmd = engine.command(&["serve", "--bind", "127.0.0.1:0"]);
        cmd.env("ENGRAM_LOG", "info").env("NO_COLOR", "1");
        cmd.envs(env.iter().copied());
        if let Some(t) = token {
            cmd.env("ENGRAM_POCKETPAW_TOKEN", t);
        }
        let server = Server::spawn(cmd, "engram listening").await;
        for _ in 0..200 {
            if let Ok(r) = server
                .client
                .get(format!("{}/health", server.base))
                .send()
                .await
                && r.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("engram did not answer on {}", server.base);
    }

    /// Spawns `cmd` (which must log at `info`) and returns once its log has a line with
    /// `marker` and the `127.0.0.1:port` it listens on, which `base` names.
    pub async fn spawn(mut cmd: Command, marker: &'static str) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn engram");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the listening address from the start-up log, then keeps draining the
        // pipe so the process never blocks on a full one.
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains(marker)
                    && let Some(at) = line.find("127.0.0.1:")
                {
                    let port: String = line[at + 10..]
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    let _ = tx.send(port);
                }
            }
        });
        let port = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("join")
            .expect("engram did not report its address");
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        }
    }

    /// A request carrying the master token as a Bearer header.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, path, body, Some(TOKEN)).await
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    /// A POST with the master token and a body sent as is.
    pub async fn raw_post(&self, path: &str, body: &'static str) -> Reply {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    /// Adds `(role, content, time)` messages through the Honcho API.
    pub async fn add(&self, session: &str, items: &[(&str, &str, &str)]) {
        let messages: Vec<Value> = items
            .iter()
            .map(|(p, c, t)| json!({"peer_id": p, "content": c, "created_at": t}))
            .collect();
        let r = self
            .call(
                Method::POST,
                &format!("/v3/workspaces/pocketpaw/sessions/{session}/messages"),
                Some(json!({ "messages": messages })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
}

/// Runs `async fn(Engine)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)($crate::binary::Engine::sqlite()).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(engine) = $crate::binary::Engine::postgres().await {
                    ($body)(engine).await;
                }
            }
        }
    };
}
