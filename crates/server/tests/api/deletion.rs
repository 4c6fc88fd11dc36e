//! Session deletion end to end: 202 at once, invisible at once, name free at once,
//! purged completely in the background with a receipt, nothing else touched.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

async fn wait_for_receipt(app: &TestApp, workspace: &str) -> engram_core::queue::Receipt {
    for _ in 0..200 {
        let receipts = app
            .store
            .deletion_receipts(workspace)
            .await
            .expect("receipts");
        if let Some(r) = receipts.into_iter().find(|r| r.finished_at.is_some()) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("purge did not finish within 10 s");
}

both_engines!(
    delete_hides_at_once_frees_the_name_and_purges,
    |app: TestApp| async move {
        let unknown = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/nope", None)
            .await;
        assert_eq!(unknown.status, StatusCode::NOT_FOUND);
        assert_eq!(
            unknown.body,
            json!({"detail": "Session nope not found in workspace w"})
        );

        app.post(
            "/v3/workspaces/w/sessions",
            json!({"id": "doomed", "peers": {"alice": {}, "bob": {}}}),
        )
        .await;
        let contents: Vec<String> = (0..1234).map(|i| format!("secret-marker {i}")).collect();
        for chunk in contents.chunks(100) {
            let items: Vec<(&str, &str)> = chunk.iter().map(|c| ("alice", c.as_str())).collect();
            app.add_messages("w", "doomed", &items).await;
        }
        let ids = app
            .add_messages("w", "doomed", &[("bob", "last words")])
            .await;
        let kept = app
            .add_messages("w", "kept", &[("alice", "still here")])
            .await;

        let r = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/doomed", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.body, json!({"message": "Session deleted successfully"}));

        // Invisible at once, whatever the purge is doing.
        let again = app
            .call(Method::DELETE, "/v3/workspaces/w/sessions/doomed", None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        let listed = app.post("/v3/workspaces/w/sessions/list", json!({})).await;
        let names: Vec<&str> = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["kept"]);
        let of_peer = app
            .post("/v3/workspaces/w/peers/bob/sessions", json!({}))
            .await;
        assert_eq!(of_peer.body["total"], 0);
        let msgs = app
            .post("/v3/workspaces/w/sessions/doomed/messages/list", json!({}))
            .await;
        assert_eq!(msgs.body["total"], 0);
        let one = app
            .get(&format!(
                "/v3/workspaces/w/sessions/doomed/messages/{}",
                ids[0]
            ))
            .await;
        assert_eq!(one.status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.get("/v3/workspaces/w/sessions/doomed/context")
                .await
                .body["messages"],
            json!([])
        );
        assert_eq!(
            app.get("/v3/workspaces/w/sessions/doomed/peers").await.body["total"],
            0
        );

        // The name is free at once: a new, empty session.
        let fresh = app
            .post("/v3/workspaces/w/sessions", json!({"id": "doomed"}))
            .await;
        assert_eq!(fresh.status, StatusCode::CREATED);
        let new_ids = app
            .add_messages("w", "doomed", &[("carol", "a new life")])
            .await;

        let receipt = wait_for_receipt(&app, "w").await;
        assert_eq!(receipt.session_id, "doomed");
        assert_eq!(receipt.messages_deleted, 1235);
        assert_eq!(receipt.members_deleted, 2);
        assert!(receipt.finished_at.unwrap() >= receipt.requested_at);

        // The purge touched nothing else.
        let after = app
            .post("/v3/workspaces/w/sessions/doomed/messages/list", json!({}))
            .await;
        let after_ids: Vec<&str> = after.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(after_ids, [new_ids[0].as_str()]);
        let other = app
            .post("/v3/workspaces/w/sessions/kept/messages/list", json!({}))
            .await;
        assert_eq!(other.body["items"][0]["id"], kept[0].as_str());
        assert_eq!(
            app.get("/v3/workspaces/w/sessions/doomed/peers").await.body["total"],
            1
        );
        let peers = app.post("/v3/workspaces/w/peers/list", json!({})).await;
        assert_eq!(
            peers.body["total"], 3,
            "peers outlive the sessions they were in"
        );
        wait_until_verified(&app).await;
        let mut status = app.get("/v3/workspaces/w/queue/status").await;
        for _ in 0..100 {
            if status.body["deletions"]["completed"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            status = app.get("/v3/workspaces/w/queue/status").await;
        }
        assert_eq!(status.status, StatusCode::OK);
        assert_eq!(status.body["pending_work_units"], 0);
        assert_eq!(status.body["sessions"], json!(null));
        assert_eq!(
            status.body["deletions"],
            json!({"pending": 0, "in_progress": 0, "completed": 1, "failed": 0})
        );
    }
);

/// `verify` reports nothing once the purge job has completed.
async fn wait_until_verified(app: &TestApp) {
    for _ in 0..100 {
        if app
            .store
            .verify()
            .await
            .expect("verify")
            .iter()
            .all(|c| *c == 0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "verify still reports problems: {:?}",
        app.store.verify().await
    );
}

/// Bytes of every file of the SQLite store (database, write-ahead log, shared memory).
fn store_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read data dir") {
        all.extend(std::fs::read(entry.expect("entry").path()).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn sqlite_purge_leaves_no_trace_in_the_files() {
    let app = TestApp::sqlite().await;
    let dir = app.data_dir().expect("sqlite").to_path_buf();
    // The large session (most of the store, over 500 messages) merges the
    // full-text index before its deletes; the small one deletes at once.
    let sessions = [
        ("small", 50, "zebra-quokka-7731"),
        ("large", 10_000, "walrus-ibex-5512"),
    ];
    // Each deleted message also has one of 97 words of its own, and the neighbours'
    // words sort right after them, so some index pages start with a deleted word and
    // keep a neighbour's: the pages whose keys secure-delete leaves behind.
    let write = |session: &'static str, range: std::ops::Range<usize>, text: &'static str| {
        let app = &app;
        async move {
            for start in range.clone().step_by(100) {
                let body: Vec<_> = (start..(start + 100).min(range.end))
                    .map(|i| json!({"peer_id": "p", "content": text.replace('N', &i.to_string())}))
                    .collect();
                let path = format!("/v3/workspaces/w/sessions/{session}/messages");
                let r = app.post(&path, json!({"messages": body})).await;
                assert_eq!(r.status, StatusCode::CREATED);
            }
        }
    };
    write("neighbours", 0..300, "kept N").await;
    write("small", 0..50, "zebra-quokka-7731 #N quokkaN").await;
    write("large", 0..10_000, "walrus-ibex-5512 #N ibexN").await;
    write("neighbours", 300..600, "kept N").await;
    app.add_messages("w", "stays", &[("p", "harmless")]).await;
    for (session, _, marker) in sessions {
        assert!(
            contains(&store_bytes(&dir), marker.as_bytes()),
            "the marker must be on disk before the delete"
        );
        let path = format!("/v3/workspaces/w/sessions/{session}");
        let r = app.call(Method::DELETE, &path, None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
    }
    for _ in 0..600 {
        let receipts = app.store.deletion_receipts("w").await.unwrap();
        if receipts.iter().filter(|r| r.finished_at.is_some()).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (session, count, marker) in sessions {
        let receipts = app.store.deletion_receipts("w").await.unwrap();
        let receipt = receipts.iter().find(|r| r.session_id == session).unwrap();
        assert!(receipt.finished_at.is_some(), "{session} was not purged");
        assert_eq!(receipt.messages_deleted, count);
        let mut clean = false;
        for _ in 0..100 {
            if !contains(&store_bytes(&dir), marker.as_bytes()) {
                clean = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            clean,
            "deleted text of {session} still readable in the SQLite files"
        );
        // The full-text index held the words on their own; they are gone too.
        let word = marker.split('-').nth(1).unwrap();
        assert!(
            !contains(&store_bytes(&dir), word.as_bytes()),
            "the deleted word {word} is still in the full-text index"
        );
    }
    assert!(
        contains(&store_bytes(&dir), b"harmless"),
        "other data is still there"
    );
    let found = app
        .post("/v3/workspaces/w/search", json!({"query": "harmless"}))
        .await;
    assert_eq!(
        found.body.as_array().map(Vec::len),
        Some(1),
        "index still answers"
    );
    wait_until_verified(&app).await;

    // verify does find what should not be there.
    let conn = rusqlite::Connection::open(dir.join("engram.db")).unwrap();
    conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        .expect("the full-text index is consistent after both kinds of purge");
    for (_, _, marker) in sessions {
        // Page keys are prefixes of terms (stored with FTS5's leading `0`), too short
        // for the byte scan above to see.
        let word = format!("0{}", marker.split('-').nth(1).unwrap());
        let pieces: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM messages_fts_idx \
                 WHERE length(term) > 1 AND instr(CAST(?1 AS BLOB), term) = 1",
                [&word],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(pieces, 0, "a page key is a piece of the deleted {word}");
    }
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at) \
         VALUES (1, 999, 1, '{}', 0)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO message_embeddings (workspace_id, session_id, message_id, chunk) VALUES (1, 999, 999, 0)",
        [],
    )
    .unwrap();
    assert_eq!(
        app.store.verify().await.unwrap(),
        vec![0, 1, 0, 0, 0, 0, 1, 0]
    );
}

both_engines!(
    workspace_delete_cascades_and_frees_the_name,
    |app: TestApp| async move {
        let missing = app.call(Method::DELETE, "/v3/workspaces/ghost", None).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.body, json!({"detail": "Workspace ghost not found"}));

        app.post(
            "/v3/workspaces",
            json!({"id": "gone", "metadata": {"old": true}}),
        )
        .await;
        app.add_messages(
            "gone",
            "s1",
            &[("alice", "pelican-marker-42"), ("bob", "two")],
        )
        .await;
        app.put(
            "/v3/workspaces/gone/peers/alice/card",
            json!({"peer_card": ["x"]}),
        )
        .await;
        app.add_messages("other", "s1", &[("alice", "elsewhere")])
            .await;
        let busy = app.call(Method::DELETE, "/v3/workspaces/gone", None).await;
        assert_eq!(busy.status, StatusCode::CONFLICT);
        assert_eq!(
            busy.body,
            json!({"detail": "Cannot delete workspace 'gone': active session(s) remain. Delete all sessions first."})
        );

        let r = app
            .call(Method::DELETE, "/v3/workspaces/gone/sessions/s1", None)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = app.call(Method::DELETE, "/v3/workspaces/gone", None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        assert_eq!(r.body, json!({"message": "Workspace deletion accepted"}));

        // Gone at once, and the name is free at once.
        let listed = app.post("/v3/workspaces/list", json!({})).await;
        let names: Vec<&str> = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["other"]);
        assert_eq!(
            app.post("/v3/workspaces/gone/peers/list", json!({}))
                .await
                .body["total"],
            0
        );
        let again = app.call(Method::DELETE, "/v3/workspaces/gone", None).await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        let fresh = app.post("/v3/workspaces", json!({"id": "gone"})).await;
        assert_eq!(fresh.status, StatusCode::CREATED);
        assert_eq!(fresh.body["metadata"], json!({}));

        wait_until_verified(&app).await;
        for _ in 0..100 {
            if app.get("/v3/workspaces/gone/peers/alice/card").await.status == StatusCode::NOT_FOUND
                && app.store.verify().await.unwrap().iter().all(|c| *c == 0)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            app.get("/v3/workspaces/gone/peers/alice/card").await.status,
            StatusCode::NOT_FOUND
        );
        if let Some(dir) = app.data_dir() {
            let mut clean = false;
            for _ in 0..100 {
                if !contains(&store_bytes(dir), b"pelican-marker-42") {
                    clean = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                clean,
                "the deleted workspace's text is still in the SQLite files"
            );
        }
        let other = app
            .post("/v3/workspaces/other/sessions/s1/messages/list", json!({}))
            .await;
        assert_eq!(other.body["items"][0]["content"], "elsewhere");
    }
);

both_engines!(
    a_reused_session_name_deletes_again_and_again,
    |app: TestApp| async move {
        app.add_messages("w", "other", &[("p", "stays")]).await;
        for round in 1..=3 {
            let created = app
                .post("/v3/workspaces/w/sessions", json!({"id": "s"}))
                .await;
            assert_eq!(created.status, StatusCode::CREATED, "round {round}");
            app.add_messages("w", "s", &[("p", "words")]).await;
            let deleted = app
                .call(Method::DELETE, "/v3/workspaces/w/sessions/s", None)
                .await;
            assert_eq!(
                (deleted.status, &deleted.body),
                (
                    StatusCode::ACCEPTED,
                    &json!({"message": "Session deleted successfully"})
                ),
                "round {round}"
            );
            let listed = app.post("/v3/workspaces/w/sessions/list", json!({})).await;
            assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
            assert_eq!(listed.body["items"][0]["id"], "other");
            let messages = app
                .post("/v3/workspaces/w/sessions/s/messages/list", json!({}))
                .await;
            assert_eq!(messages.body["total"], 0);
            // The next round starts once this purge has finished, when a reused
            // internal id would collide with its receipt.
            for _ in 0..200 {
                let receipts = app.store.deletion_receipts("w").await.unwrap();
                if receipts.iter().filter(|r| r.finished_at.is_some()).count() == round {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let receipts = app.store.deletion_receipts("w").await.unwrap();
            assert_eq!(receipts.len(), round, "one receipt per deletion");
            assert!(
                receipts
                    .iter()
                    .all(|r| r.session_id == "s" && r.finished_at.is_some())
            );
        }
        wait_until_verified(&app).await;
        let other = app
            .post("/v3/workspaces/w/sessions/other/messages/list", json!({}))
            .await;
        assert_eq!(other.body["items"][0]["content"], "stays");
    }
);
