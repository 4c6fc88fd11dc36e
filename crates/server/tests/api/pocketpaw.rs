//! The PocketPaw session API against the real `engram` binary, on both engines: every
//! route and status code of the reference's checklist, the master token, deletion
//! and deletion through the purge pipeline.

use std::time::Duration;

use engram_server::routes::pocketpaw_auth::sign;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::binary::{Engine, Server, TOKEN};
use crate::on_both;

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
    // PocketPaw's session tokens, keyed by the master token: header, query or cookie.
    let future = (chrono::Utc::now().timestamp() + 3600).to_string();
    let session = format!("{future}:{}", sign(&future, TOKEN));
    let expired = format!("1000:{}", sign("1000", TOKEN));
    let forged = format!("{future}:{}", sign(&future, "another-master"));
    assert_eq!(
        s.send(Method::GET, "/api/v1/sessions", None, Some(&session))
            .await
            .status,
        StatusCode::OK
    );
    for bad in [&expired, &forged] {
        let r = s
            .send(Method::GET, "/api/v1/sessions", None, Some(bad))
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let by_query = s
        .send(
            Method::GET,
            &format!("/api/sessions?token={session}"),
            None,
            None,
        )
        .await;
    assert_eq!(by_query.status, StatusCode::OK);
    let cookie = |value: &str| {
        s.client
            .get(format!("{}/api/v1/sessions", s.base))
            .header("cookie", format!("theme=dark; pocketpaw_session={value}"))
            .send()
    };
    assert_eq!(cookie(&session).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        cookie(&expired).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // The cookie holds session tokens only, never the master token itself.
    assert_eq!(
        cookie(TOKEN).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
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
    assert_eq!(
        absent.body,
        json!({"detail": [{"type": "missing", "loc": ["body", "title"], "msg": "Field required", "input": {}}]})
    );
    let null = s
        .call(
            Method::POST,
            "/api/v1/sessions/websocket_a/title",
            title(Value::Null),
        )
        .await;
    assert_eq!(null.body["detail"][0]["type"], "string_type");
    let not_json = s
        .raw_post("/api/v1/sessions/websocket_a/title", "{oops")
        .await;
    assert_eq!(not_json.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(not_json.body["detail"][0]["type"], "json_invalid");
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
    let by_put = s
        .call(
            Method::PUT,
            "/api/v1/sessions/telegram_1/title",
            title(json!("Tg")),
        )
        .await;
    assert_eq!(by_put.body, json!({"status": "ok"}));
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
            // Nothing of the deleted session is left anywhere in the store.
            let verify = engine.command(&["verify"]).output().expect("verify");
            let report = String::from_utf8_lossy(&verify.stdout);
            assert!(verify.status.success(), "{report}");
            assert!(report.contains("store is clean"), "{report}");
            // The receipt names the session and counts its rows, and holds no content.
            let receipts = engine
                .command(&["queue", "receipts", "--workspace", "pocketpaw"])
                .output()
                .expect("queue receipts");
            let listed = String::from_utf8_lossy(&receipts.stdout);
            assert!(receipts.status.success(), "{listed}");
            let row = listed.lines().nth(1).expect("one receipt");
            let fields: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(fields[..3], ["websocket_a", "2", "2"], "{listed}");
            assert!(!listed.contains("pending"), "{listed}");
            assert!(!listed.contains("Hello"), "{listed}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the purge of the deleted session did not complete");
});

const SECRET: &str = "a-jwt-secret-for-the-pocketpaw-auth-test";

/// `engram token ARGS` signed with `SECRET`.
fn mint(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_engram"))
        .arg("token")
        .args(args)
        .env("AUTH_JWT_SECRET", SECRET)
        .output()
        .expect("engram token");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

on_both!(
    engram_keys_open_pocketpaw_routes_when_auth_is_on,
    |engine: Engine| async move {
        let env = [("AUTH_USE_AUTH", "true"), ("AUTH_JWT_SECRET", SECRET)];
        let s = Server::start_with(&engine, Some(TOKEN), &env).await;
        let admin = mint(&["--admin"]);
        let own = mint(&["--workspace", "pocketpaw"]);
        let other = mint(&["--workspace", "elsewhere"]);
        let peer = mint(&["--workspace", "pocketpaw", "--peer", "user"]);
        for (who, bearer, allowed) in [
            ("admin key", Some(admin.as_str()), true),
            ("pocketpaw workspace key", Some(own.as_str()), true),
            ("master token", Some(TOKEN), true),
            ("other workspace key", Some(other.as_str()), false),
            ("peer key", Some(peer.as_str()), false),
            ("no token", None, false),
        ] {
            let r = s.send(Method::GET, "/api/v1/sessions", None, bearer).await;
            if allowed {
                assert_eq!(r.status, StatusCode::OK, "{who}: {}", r.text);
            } else {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{who}");
                assert_eq!(r.body, json!({"detail": "Unauthorized"}), "{who}");
            }
        }
        // The Honcho routes still want engram keys, not the PocketPaw master token.
        let honcho = s
            .send(
                Method::POST,
                "/v3/workspaces/pocketpaw/sessions/list",
                Some(json!({})),
                Some(TOKEN),
            )
            .await;
        assert_eq!(honcho.status, StatusCode::UNAUTHORIZED);
    }
);
