//! `engram export` then `engram import jsonl`: a workspace written on SQLite and read
//! back into PostgreSQL answers every API read the same way.

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{Engine, Server};

/// Workspace data through the Honcho API plus a PocketPaw rename.
async fn seed(s: &Server) {
    let put = |path: &'static str, body: Value| async move {
        let r = s.call(Method::POST, path, Some(body)).await;
        assert!(r.status.is_success(), "{path}: {}", r.text);
    };
    put(
        "/v3/workspaces",
        json!({"id": "pocketpaw", "metadata": {"team": "x"}, "configuration": {}}),
    )
    .await;
    put(
        "/v3/workspaces/pocketpaw/peers",
        json!({"id": "user", "metadata": {"name": "Ada"}}),
    )
    .await;
    put(
        "/v3/workspaces/pocketpaw/sessions",
        json!({"id": "websocket_a", "metadata": {"channel": "websocket"},
               "peers": {"user": {"observe_others": true}, "assistant": {}}}),
    )
    .await;
    s.add(
        "websocket_a",
        &[
            ("user", "Hello there", "2026-02-20T10:00:00.250Z"),
            ("assistant", "Hi", "2026-02-20T10:00:05Z"),
        ],
    )
    .await;
    s.add(
        "telegram_1",
        &[("user", "other chat", "2026-02-21T09:00:00Z")],
    )
    .await;
    let r = s
        .call(
            Method::POST,
            "/api/v1/sessions/telegram_1/title",
            Some(json!({"title": "Renamed"})),
        )
        .await;
    assert_eq!(r.body, json!({"status": "ok"}));
}

/// Every read whose answer must survive the round trip; peers' own creation times are
/// not carried, so they are left out of the comparison.
async fn snapshot(s: &Server) -> Vec<Value> {
    let mut out = vec![];
    for path in [
        "/api/v1/sessions",
        "/api/sessions",
        "/api/v1/sessions/websocket_a/history",
        "/api/v1/sessions/telegram_1/history",
        "/api/v1/sessions/search?q=h",
    ] {
        out.push(s.get(path).await.body);
    }
    for (path, body) in [
        ("/v3/workspaces/list", json!({})),
        ("/v3/workspaces/pocketpaw/sessions/list", json!({})),
        (
            "/v3/workspaces/pocketpaw/sessions/websocket_a/messages/list",
            json!({}),
        ),
        (
            "/v3/workspaces/pocketpaw/sessions/telegram_1/messages/list",
            json!({}),
        ),
        ("/v3/workspaces/pocketpaw/peers/list", json!({})),
    ] {
        let mut v = s.call(Method::POST, path, Some(body)).await.body;
        for item in v["items"].as_array_mut().expect("items") {
            if path.ends_with("/peers/list") || path == "/v3/workspaces/list" {
                item.as_object_mut().expect("object").remove("created_at");
            }
        }
        out.push(v);
    }
    for peer in ["user", "assistant"] {
        let path = format!("/v3/workspaces/pocketpaw/sessions/websocket_a/peers/{peer}/config");
        out.push(s.get(&path).await.body);
    }
    out
}

#[tokio::test]
async fn export_from_sqlite_imports_identically_into_postgres() {
    let Some(pg) = Engine::postgres().await else {
        return;
    };
    let sqlite = Engine::sqlite();
    let source = Server::start(&sqlite, None).await;
    seed(&source).await;
    let before = snapshot(&source).await;
    drop(source);

    let dump = tempfile::tempdir().expect("tempdir");
    let file = dump.path().join("pocketpaw.jsonl");
    let out = sqlite
        .command(&[
            "export",
            "--workspace",
            "pocketpaw",
            "--output",
            file.to_str().unwrap(),
        ])
        .output()
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("dump");
    assert_eq!(text.lines().count(), 1 + 2 + 2 + 3, "{text}");
    assert!(text.starts_with("{\"kind\":\"workspace\",\"id\":\"pocketpaw\""));

    let import = |engine: &Engine| {
        let out = engine
            .command(&["import", "jsonl", file.to_str().unwrap()])
            .output()
            .expect("import");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        import(&pg).trim(),
        "2 session(s) created, 3 message(s) imported"
    );
    assert_eq!(
        import(&pg).trim(),
        "0 session(s) created, 0 message(s) imported"
    );

    let target = Server::start(&pg, None).await;
    assert_eq!(snapshot(&target).await, before);

    // One session alone, with only its members.
    let one = pg
        .command(&[
            "export",
            "--workspace",
            "pocketpaw",
            "--session",
            "telegram_1",
        ])
        .output()
        .expect("export one");
    assert!(one.status.success());
    let kinds: Vec<String> = String::from_utf8_lossy(&one.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["workspace", "peer", "session", "message"]);
}
