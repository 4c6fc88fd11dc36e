//! `engram import pocketpaw` on a generated PocketPaw memory directory (with a corrupt
//! session file and, once, a corrupt index), then the API over the imported sessions.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{Engine, Server, TOKEN};
use crate::on_both;

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
