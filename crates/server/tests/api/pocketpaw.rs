//! The PocketPaw session API against the real `engram` binary, on both engines: every
//! route and status code of the reference's checklist, the master token, deletion
//! through the purge pipeline, and `engram import pocketpaw`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "master-token-123";

/// Where the binary keeps its data: a SQLite directory or a fresh PostgreSQL database.
pub enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Engine {
    pub fn sqlite() -> Engine {
        Engine::Sqlite(tempfile::tempdir().expect("tempdir"))
    }

    /// `None` when no PostgreSQL is configured for tests.
    pub async fn postgres() -> Option<Engine> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide TEST_DATABASE_URL"
            );
            eprintln!("SKIPPED: TEST_DATABASE_URL unset, PostgreSQL half not run");
            return None;
        };
        let name = format!("engram_pp_{}", uuid::Uuid::new_v4().simple());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .expect("connect admin");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create database");
        let (base, _) = admin_url.rsplit_once('/').expect("database part");
        Some(Engine::Postgres(format!("{base}/{name}")))
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
            Engine::Postgres(url) => cmd.arg("--database-url").arg(url),
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
    base: String,
    client: Client,
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
    pub async fn start(engine: &Engine, token: Option<&str>) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let bind = format!("127.0.0.1:{port}");
        let mut cmd = engine.command(&["serve", "--bind", &bind]);
        if let Some(t) = token {
            cmd.env("ENGRAM_POCKETPAW_TOKEN", t);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn engram");
        let server = Server {
            child,
            base: format!("http://{bind}"),
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
        };
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
        panic!("engram did not start on {bind}");
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
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(Engine::sqlite()).await;
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(engine) = Engine::postgres().await {
                    ($body)(engine).await;
                }
            }
        }
    };
}

fn ids(list: &Value) -> Vec<String> {
    list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

fn limit_error(kind: &str, msg: &str, input: &str, ctx: Value) -> Value {
    json!({"detail": [{"type": kind, "loc": ["query", "limit"], "msg": msg, "input": input, "ctx": ctx}]})
}

/// Two sessions written through the Honcho API: `websocket_a` (older) and `telegram_1`.
async fn seed(s: &Server) {
    s.add(
        "websocket_a",
        &[
            ("user", "  Hello world  ", "2026-02-20T10:00:00Z"),
            ("assistant", "Hi! How can I help?", "2026-02-20T10:00:05Z"),
        ],
    )
    .await;
    s.add(
        "telegram_1",
        &[
            ("user", "second chat", "2026-02-21T09:00:00Z"),
            ("assistant", &"x".repeat(300), "2026-02-21T09:00:01Z"),
        ],
    )
    .await;
}

on_both!(token_guards_every_route, |engine: Engine| async move {
    let s = Server::start(&engine, Some(TOKEN)).await;
    let unauthorized = json!({"detail": "Unauthorized"});
    for (method, path) in [
        (Method::GET, "/api/v1/sessions"),
        (Method::GET, "/api/sessions"),
        (Method::GET, "/api/memory/sessions"),
        (Method::GET, "/api/v1/sessions/search?q=a"),
        (Method::GET, "/api/v1/sessions/x/history"),
        (Method::GET, "/api/memory/session?id=x"),
        (Method::POST, "/api/v1/sessions/x/title"),
        (Method::DELETE, "/api/v1/sessions/x"),
        (Method::DELETE, "/api/sessions/x"),
        (Method::GET, "/api/v1/sessions/x/export"),
        (Method::GET, "/api/memory/session/export?id=x"),
    ] {
        let none = s.send(method.clone(), path, None, None).await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(none.body, unauthorized);
        let wrong = s.send(method, path, None, Some("master-token-124")).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let bearer = s.get("/api/v1/sessions").await;
    assert_eq!(bearer.status, StatusCode::OK);
    assert_eq!(bearer.body, json!({"sessions": [], "total": 0}));
    let query = s
        .send(
            Method::GET,
            &format!("/api/v1/sessions?token={TOKEN}"),
            None,
            None,
        )
        .await;
    assert_eq!(query.status, StatusCode::OK);
    // As in PocketPaw, a query token is checked on its own; a good header does not rescue it.
    let bad_query = s
        .send(
            Method::GET,
            "/api/v1/sessions?token=nope",
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!(bad_query.status, StatusCode::UNAUTHORIZED);
    // The Honcho API is not behind the PocketPaw token.
    let honcho = s.send(Method::GET, "/health", None, None).await;
    assert_eq!(honcho.status, StatusCode::OK);
    drop(s);

    let open = Server::start(&engine, None).await;
    let r = open.send(Method::GET, "/api/sessions", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "no token configured: open");
});

on_both!(list_search_and_history, |engine: Engine| async move {
    let s = Server::start(&engine, Some(TOKEN)).await;
    seed(&s).await;

    let list = s.get("/api/v1/sessions").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body,
        json!({"sessions": [
            {"id": "telegram_1", "title": "second chat", "channel": "unknown",
             "last_activity": "2026-02-21T09:00:01Z", "message_count": 2},
            {"id": "websocket_a", "title": "Hello world", "channel": "unknown",
             "last_activity": "2026-02-20T10:00:05Z", "message_count": 2},
        ], "total": 2})
    );
    let one = s.get("/api/v1/sessions?limit=1").await;
    assert_eq!(ids(&one.body), ["telegram_1"]);
    assert_eq!(one.body["total"], 2);
    let ge = json!({"ge": 1});
    assert_eq!(
        s.get("/api/v1/sessions?limit=0").await.body,
        limit_error(
            "greater_than_equal",
            "Input should be greater than or equal to 1",
            "0",
            ge.clone()
        )
    );
    let too_many = s.get("/api/v1/sessions?limit=501").await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        too_many.body,
        limit_error(
            "less_than_equal",
            "Input should be less than or equal to 500",
            "501",
            json!({"le": 500})
        )
    );
    let legacy = s.get("/api/sessions?limit=1000").await;
    assert_eq!(legacy.status, StatusCode::OK);
    assert_eq!(legacy.body["total"], 2);
    let first = &legacy.body["sessions"][0];
    assert_eq!(first["preview"], "x".repeat(120));
    assert_eq!(first["created"].as_str().map(|c| c.len() > 10), Some(true));
    assert!(first.get("user_title").is_none());
    let bare = s.get("/api/memory/sessions").await;
    assert_eq!(bare.body.as_array().map(Vec::len), Some(2));

    // Search: case-insensitive substring, one hit per session, newest activity first.
    assert_eq!(
        s.get("/api/v1/sessions/search?q=").await.body,
        json!({"sessions": []})
    );
    assert_eq!(
        s.get("/api/v1/sessions/search?q=%20%20").await.body,
        json!({"sessions": []})
    );
    let hello = s.get("/api/v1/sessions/search?q=HELLO").await;
    assert_eq!(
        hello.body,
        json!({"sessions": [{"id": "websocket_a", "title": "Hello world", "channel": "unknown",
            "match": "  Hello world  ", "match_role": "user", "last_activity": "2026-02-20T10:00:05Z"}]})
    );
    let h = s.get("/api/sessions/search?q=h").await;
    assert_eq!(ids(&h.body), ["telegram_1", "websocket_a"]);
    assert_eq!(h.body["sessions"][0]["match"], "second chat");
    let cut = s.get("/api/v1/sessions/search?q=xxx").await;
    assert_eq!(cut.body["sessions"][0]["match"], "x".repeat(200));
    assert_eq!(cut.body["sessions"][0]["match_role"], "assistant");
    let limited = s.get("/api/v1/sessions/search?q=h&limit=1").await;
    assert_eq!(ids(&limited.body), ["telegram_1"]);
    let bad = s.get("/api/v1/sessions/search?q=h&limit=201").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        s.get("/api/sessions/search?q=h&limit=500").await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.get("/api/v1/sessions/search?q=nothing-like-this")
            .await
            .body,
        json!({"sessions": []})
    );

    // History: the last `limit` messages, oldest first; raw keys name the same session.
    let history = s.get("/api/v1/sessions/websocket_a/history").await;
    assert_eq!(
        history.body,
        json!([
            {"role": "user", "content": "  Hello world  ", "timestamp": "2026-02-20T10:00:00Z"},
            {"role": "assistant", "content": "Hi! How can I help?", "timestamp": "2026-02-20T10:00:05Z"},
        ])
    );
    let raw = s.get("/api/v1/sessions/websocket:a/history?limit=1").await;
    assert_eq!(raw.body[0]["content"], "Hi! How can I help?");
    assert_eq!(raw.body.as_array().map(Vec::len), Some(1));
    assert_eq!(s.get("/api/v1/sessions/nope/history").await.body, json!([]));
    assert_eq!(
        s.get("/api/v1/sessions/websocket_a/history?limit=501")
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let legacy = s.get("/api/memory/session?id=websocket:a&limit=1").await;
    assert_eq!(legacy.body, json!([raw.body[0]]));
    assert_eq!(s.get("/api/memory/session").await.body, json!([]));
});

on_both!(rename_export_and_delete, |engine: Engine| async move {
    let s = Server::start(&engine, Some(TOKEN)).await;
    seed(&s).await;

    // Rename (v1): kept as given; validation errors in pydantic's shape.
    let title = |t: Value| Some(json!({ "title": t }));
    let ok = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            title(json!(" Mine ")),
        )
        .await;
    assert_eq!(
        (ok.status, ok.body),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let missing = s
        .call(
            Method::POST,
            "/api/v1/sessions/nope/title",
            title(json!("t")),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({"detail": "Session not found"}));
    let empty = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            title(json!("")),
        )
        .await;
    assert_eq!(
        empty.body,
        json!({"detail": [{"type": "string_too_short", "loc": ["body", "title"],
            "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}}]})
    );
    let long = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            title(json!("t".repeat(201))),
        )
        .await;
    assert_eq!(long.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(long.body["detail"][0]["type"], "string_too_long");
    let absent = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            Some(json!({})),
        )
        .await;
    assert_eq!(absent.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(absent.body["detail"][0]["type"], "missing");
    let listed = s.get("/api/sessions").await;
    let renamed = &listed.body["sessions"][1];
    assert_eq!(
        (&renamed["title"], &renamed["user_title"]),
        (&json!(" Mine "), &json!(" Mine "))
    );
    // Legacy rename trims and answers 400 for an empty title.
    let legacy = s
        .call(
            Method::POST,
            "/api/sessions/telegram:1/title",
            title(json!("  Tg  ")),
        )
        .await;
    assert_eq!(legacy.status, StatusCode::OK);
    assert_eq!(
        s.get("/api/v1/sessions").await.body["sessions"][0]["title"],
        "Tg"
    );
    let blank = s
        .call(
            Method::POST,
            "/api/sessions/telegram_1/title",
            title(json!("   ")),
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    assert_eq!(blank.body, json!({"detail": "Title is required"}));
    // The Honcho API sees the same session and its PocketPaw metadata.
    let honcho = s
        .call(
            Method::POST,
            "/v3/workspaces/pocketpaw/sessions/list",
            Some(json!({"filters": {"metadata": {"title": "Tg"}}})),
        )
        .await;
    assert_eq!(honcho.body["items"][0]["id"], "telegram_1");

    // Export.
    let file = s.get("/api/v1/sessions/websocket_a/export").await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.headers["content-type"], "application/json");
    assert_eq!(
        file.headers["content-disposition"],
        "attachment; filename=\"pocketpaw-session-websocket_a.json\""
    );
    assert!(file.text.contains("\n  \"export_version\": \"1.0\""));
    assert_eq!(file.body["session_id"], "websocket_a");
    assert_eq!(file.body["message_count"], 2);
    let first = &file.body["messages"][0];
    assert_eq!(
        (
            &first["role"],
            &first["content"],
            &first["timestamp"],
            &first["metadata"]
        ),
        (
            &json!("user"),
            &json!("  Hello world  "),
            &json!("2026-02-20T10:00:00Z"),
            &json!({})
        )
    );
    assert!(first["id"].is_string());
    let md = s
        .get("/api/memory/session/export?id=websocket_a&format=md")
        .await;
    assert_eq!(md.status, StatusCode::OK);
    assert!(
        md.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert!(
        md.text
            .starts_with("# Conversation Export\n\n**Session:** `websocket_a` | **Messages:** 2 |")
    );
    assert!(
        md.text
            .contains("\n**User** (10:00):\n  Hello world  \n\n---\n")
    );
    assert!(
        md.text
            .contains("\n**Assistant** (10:00):\nHi! How can I help?\n\n---\n")
    );
    let bad = s
        .get("/api/v1/sessions/websocket_a/export?format=xml")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body, json!({"detail": "Format must be 'json' or 'md'"}));
    let unknown = s.get("/api/v1/sessions/nope/export").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body, json!({"detail": "Session not found: nope"}));
    let no_id = s.get("/api/memory/session/export").await;
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_id.body,
        json!({"detail": "Missing required parameter: id"})
    );

    // Delete: gone everywhere at once, the id reusable, then purged by the worker.
    let gone = s
        .call(Method::DELETE, "/api/v1/sessions/websocket:a", None)
        .await;
    assert_eq!(
        (gone.status, gone.body),
        (StatusCode::OK, json!({"status": "ok"}))
    );
    let again = s
        .call(Method::DELETE, "/api/sessions/websocket_a", None)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.body, json!({"detail": "Session not found"}));
    assert_eq!(ids(&s.get("/api/v1/sessions").await.body), ["telegram_1"]);
    assert_eq!(s.get("/api/v1/sessions").await.body["total"], 1);
    assert_eq!(
        s.get("/api/v1/sessions/search?q=hello").await.body,
        json!({"sessions": []})
    );
    assert_eq!(
        s.get("/api/v1/sessions/websocket_a/history").await.body,
        json!([])
    );
    assert_eq!(
        s.get("/api/v1/sessions/websocket_a/export").await.status,
        StatusCode::NOT_FOUND
    );
    let renamed_gone = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            title(json!("t")),
        )
        .await;
    assert_eq!(renamed_gone.status, StatusCode::NOT_FOUND);
    s.add(
        "websocket_a",
        &[("user", "fresh start", "2026-03-01T00:00:00Z")],
    )
    .await;
    let reborn = s.get("/api/v1/sessions").await;
    assert_eq!(
        reborn.body["sessions"][0],
        json!({"id": "websocket_a", "title": "fresh start", "channel": "unknown",
               "last_activity": "2026-03-01T00:00:00Z", "message_count": 1})
    );
    for _ in 0..200 {
        let status = s.get("/v3/workspaces/pocketpaw/queue/status").await;
        if status.body["deletions"]["completed"] == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the purge of the deleted session did not complete");
});

/// A PocketPaw memory directory: three sessions in the index, a renamed one, a
/// corrupt session file, an empty one, and files PocketPaw itself skips.
fn pocketpaw_dir(corrupt_index: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tempdir");
    let sessions: PathBuf = root.path().join("sessions");
    std::fs::create_dir_all(&sessions).expect("mkdir");
    let write = |name: &str, value: Value| {
        std::fs::write(
            sessions.join(name),
            serde_json::to_string_pretty(&value).expect("json"),
        )
        .expect("write")
    };
    let msg = |role: &str, content: &str, ts: &str| {
        json!({"id": uuid::Uuid::new_v4().to_string(), "role": role, "content": content,
               "timestamp": ts, "metadata": {}})
    };
    write(
        "websocket_3f2c.json",
        json!([
            msg(
                "user",
                "Plan my trip to Lisbon",
                "2026-02-20T10:00:00.123456"
            ),
            msg("assistant", "Sure, when?", "2026-02-20T10:00:04"),
        ]),
    );
    write(
        "telegram_42_topic_7.json",
        json!([
            msg("user", "  \n ", "2026-02-18T08:00:00"),
            msg("user", "Weekly report", "2026-02-18T08:00:01"),
            msg("assistant", "Here it is", "2026-02-18T08:00:09"),
        ]),
    );
    write(
        "google_chat_spaces_x.json",
        json!([msg("assistant", "Reminder: standup", "2026-02-22T07:30:00")]),
    );
    std::fs::write(
        sessions.join("broken_one.json"),
        "[{\"role\": \"user\", \"cont",
    )
    .unwrap();
    write("empty_one.json", json!([]));
    write(
        "websocket_3f2c_compaction.json",
        json!({"watermark": 2, "summary": "s"}),
    );
    write(
        "_aliases.json",
        json!({"telegram:42": "telegram:42:topic:7"}),
    );
    if corrupt_index {
        std::fs::write(sessions.join("_index.json"), "{ not json").unwrap();
    } else {
        write(
            "_index.json",
            json!({
                "websocket_3f2c": {"title": "Plan my trip to Lisbon", "channel": "websocket",
                    "created": "2026-02-20T10:00:00.123456", "last_activity": "2026-02-20T10:00:04",
                    "message_count": 2, "preview": "Sure, when?"},
                "telegram_42_topic_7": {"title": "Reports", "user_title": "Reports",
                    "channel": "telegram", "created": "2026-02-18T08:00:00",
                    "last_activity": "2026-02-18T08:00:09", "message_count": 3, "preview": "Here it is"},
                "google_chat_spaces_x": {"title": "New Chat", "channel": "google_chat",
                    "created": "2026-02-22T07:30:00", "last_activity": "2026-02-22T07:30:00",
                    "message_count": 1, "preview": "Reminder: standup"}
            }),
        );
    }
    root
}

on_both!(import_pocketpaw_directory, |engine: Engine| async move {
    let dir = pocketpaw_dir(false);
    let first = engine.import(dir.path(), &[]);
    assert!(
        first.contains("skipped broken_one.json: invalid JSON"),
        "{first}"
    );
    assert!(
        first.contains("3 session(s) imported, 6 message(s); 0 already present; 1 file(s) skipped"),
        "{first}"
    );
    let again = engine.import(dir.path(), &[]);
    assert!(
        again.contains("0 session(s) imported, 0 message(s); 3 already present"),
        "{again}"
    );
    // Corrupt index: same sessions, titles and channels derived as PocketPaw rebuilds them.
    let rebuilt = pocketpaw_dir(true);
    let out = engine.import(rebuilt.path(), &["--pocketpaw-workspace", "rebuilt"]);
    assert!(
        out.contains("skipped _index.json: not a JSON object"),
        "{out}"
    );
    assert!(out.contains("skipped broken_one.json"), "{out}");
    assert!(out.contains("3 session(s) imported"), "{out}");

    let s = Server::start(&engine, Some(TOKEN)).await;
    let list = s.get("/api/v1/sessions").await;
    assert_eq!(
        list.body,
        json!({"sessions": [
            {"id": "google_chat_spaces_x", "title": "New Chat", "channel": "google_chat",
             "last_activity": "2026-02-22T07:30:00Z", "message_count": 1},
            {"id": "websocket_3f2c", "title": "Plan my trip to Lisbon", "channel": "websocket",
             "last_activity": "2026-02-20T10:00:04Z", "message_count": 2},
            {"id": "telegram_42_topic_7", "title": "Reports", "channel": "telegram",
             "last_activity": "2026-02-18T08:00:09Z", "message_count": 3},
        ], "total": 3})
    );
    let legacy = s.get("/api/sessions").await;
    assert_eq!(legacy.body["sessions"][2]["user_title"], "Reports");
    assert_eq!(
        legacy.body["sessions"][2]["created"],
        "2026-02-18T08:00:00Z"
    );
    assert_eq!(
        s.get("/api/v1/sessions/websocket:3f2c/history").await.body,
        json!([
            {"role": "user", "content": "Plan my trip to Lisbon", "timestamp": "2026-02-20T10:00:00.123456Z"},
            {"role": "assistant", "content": "Sure, when?", "timestamp": "2026-02-20T10:00:04Z"},
        ])
    );
    let found = s.get("/api/v1/sessions/search?q=report").await;
    assert_eq!(found.body["sessions"][0]["match"], "Weekly report");
    let rebuilt = s
        .call(
            Method::POST,
            "/v3/workspaces/rebuilt/sessions/list",
            Some(json!({})),
        )
        .await;
    let mut seen: Vec<(String, Value, Value)> = rebuilt.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|x| {
            let m = &x["metadata"];
            (
                x["id"].as_str().unwrap().to_string(),
                m["title"].clone(),
                m["channel"].clone(),
            )
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        [
            (
                "google_chat_spaces_x".to_string(),
                json!("New Chat"),
                json!("google")
            ),
            (
                "telegram_42_topic_7".to_string(),
                json!("Weekly report"),
                json!("telegram")
            ),
            (
                "websocket_3f2c".to_string(),
                json!("Plan my trip to Lisbon"),
                json!("websocket")
            ),
        ]
    );
    drop(s);

    // A session that grew in PocketPaw since the last import receives only its new messages.
    let file = dir.path().join("sessions/websocket_3f2c.json");
    let mut items: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    items
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "n", "role": "user", "content": "May",
        "timestamp": "2026-02-23T12:00:00", "metadata": {}}));
    std::fs::write(&file, items.to_string()).unwrap();
    let grown = engine.import(dir.path(), &[]);
    assert!(
        grown.contains("imported websocket_3f2c: 1 message(s) (appended)"),
        "{grown}"
    );
    assert!(
        grown.contains("1 session(s) imported, 1 message(s); 2 already present"),
        "{grown}"
    );
    let s = Server::start(&engine, None).await;
    let list = s.get("/api/v1/sessions").await;
    assert_eq!(list.body["sessions"][0]["id"], "websocket_3f2c");
    assert_eq!(list.body["sessions"][0]["message_count"], 3);
});
