//! The PocketPaw store operations: imports that keep original times and never add a
//! message twice, and the list and search queries behind the PocketPaw API.

use std::sync::Arc;

use engram_core::Store;
use engram_core::model::{Json, NewMessage};
use engram_core::pocketpaw::{ImportOutcome, ImportedSession};
use engram_core::time::parse;

use crate::common::{contents, msg};
use crate::obj;

fn at(time: &str) -> i64 {
    parse(time).expect("timestamp")
}

fn timed(peer: &str, content: &str, time: &str) -> NewMessage {
    NewMessage {
        created_at: Some(at(time)),
        ..msg(peer, content, 1)
    }
}

fn imported(name: &str, metadata: Json, messages: Vec<NewMessage>) -> ImportedSession {
    ImportedSession {
        name: name.into(),
        metadata,
        configuration: Json::new(),
        created_at: at("2026-01-01T00:00:00Z"),
        messages,
    }
}

pub async fn check_pocketpaw_import(store: Arc<dyn Store>) {
    let messages = vec![
        timed("user", "first", "2026-01-01T00:00:01Z"),
        timed("assistant", "second", "2026-01-01T00:00:02.5Z"),
    ];
    let session = imported("s1", obj!("title": "T"), messages.clone());
    let first = store.import_session("pp", session.clone()).await.unwrap();
    assert_eq!(
        first,
        ImportOutcome {
            created: true,
            added: 2
        }
    );
    // The same input again adds nothing, even with fresh message ids.
    let mut again = session.clone();
    again.messages = messages
        .iter()
        .map(|m| NewMessage {
            public_id: engram_core::ids::new_public_id(),
            ..m.clone()
        })
        .collect();
    assert_eq!(
        store.import_session("pp", again.clone()).await.unwrap(),
        ImportOutcome {
            created: false,
            added: 0
        }
    );
    again
        .messages
        .push(timed("user", "third", "2026-01-02T00:00:00Z"));
    assert_eq!(
        store.import_session("pp", again).await.unwrap(),
        ImportOutcome {
            created: false,
            added: 1
        }
    );
    let all = store.session_messages("pp", "s1").await.unwrap().unwrap();
    assert_eq!(contents(&all), ["first", "second", "third"]);
    assert_eq!(all[1].created_at, at("2026-01-01T00:00:02.5Z"));
    assert_eq!(all[0].id, messages[0].public_id);
    assert!(
        store
            .session_messages("pp", "nope")
            .await
            .unwrap()
            .is_none()
    );
    let (rows, total) = store.pp_list("pp", 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(rows[0].created_at, at("2026-01-01T00:00:00Z"));
    assert_eq!(rows[0].last_activity, at("2026-01-02T00:00:00Z"));
    assert_eq!(
        (rows[0].message_count, rows[0].preview.as_str()),
        (3, "third")
    );
    assert_eq!(rows[0].title(), "T");
}

pub async fn check_pocketpaw_list_and_search(store: Arc<dyn Store>) {
    assert_eq!(store.pp_list("pp", 10).await.unwrap(), (vec![], 0));
    let long = "é".repeat(300);
    for (name, metadata, messages) in [
        (
            "old",
            obj!("channel": "telegram"),
            vec![
                timed("assistant", "Welcome", "2026-01-01T00:00:00Z"),
                timed("user", "   ", "2026-01-01T00:00:01Z"),
                timed("user", "  Needle in a Haystack ", "2026-01-01T00:00:02Z"),
                timed("user", "another needle", "2026-01-01T00:00:03Z"),
            ],
        ),
        (
            "new",
            obj!("title": "Custom"),
            vec![timed(
                "assistant",
                &format!("NEEDLE {long}"),
                "2026-01-03T00:00:00Z",
            )],
        ),
        (
            "doomed",
            Json::new(),
            vec![timed("user", "needle", "2026-01-04T00:00:00Z")],
        ),
    ] {
        store
            .import_session("pp", imported(name, metadata, messages))
            .await
            .unwrap();
    }
    store.delete_session("pp", "doomed").await.unwrap();
    let (rows, total) = store.pp_list("pp", 10).await.unwrap();
    assert_eq!(total, 2);
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["new", "old"]);
    assert_eq!(rows[1].title(), "Needle in a Haystack");
    assert_eq!(rows[1].channel(), "telegram");
    assert_eq!(rows[0].channel(), "unknown");
    assert_eq!(rows[0].preview.chars().count(), 120);
    let (first, total) = store.pp_list("pp", 1).await.unwrap();
    assert_eq!((first.len(), total), (1, 2));

    let hits = store.pp_search("pp", "needle", 10).await.unwrap();
    let found: Vec<(&str, &str, &str)> = hits
        .iter()
        .map(|h| (h.session.name.as_str(), h.matched.as_str(), h.role.as_str()))
        .collect();
    assert_eq!(found[1], ("old", "  Needle in a Haystack ", "user"));
    assert_eq!((found[0].0, found[0].2), ("new", "assistant"));
    assert_eq!(hits[0].matched.chars().count(), 200);
    assert_eq!(hits[0].session.title(), "Custom");
    assert_eq!(store.pp_search("pp", "needle", 1).await.unwrap().len(), 1);
    assert!(
        store
            .pp_search("pp", "absent", 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Case folding covers every letter, as Python's `str.lower` does.
    let umlauts = vec![timed("user", "Ärger im BÜRO", "2025-12-01T00:00:00Z")];
    store
        .import_session("pp", imported("umlauts", Json::new(), umlauts))
        .await
        .unwrap();
    for needle in ["ärger", "büro", "im bü"] {
        let hits = store.pp_search("pp", needle, 10).await.unwrap();
        let names: Vec<&str> = hits.iter().map(|h| h.session.name.as_str()).collect();
        assert_eq!(names, ["umlauts"], "{needle}");
    }
    store.delete_session("pp", "umlauts").await.unwrap();
    assert!(
        store
            .pp_search("elsewhere", "needle", 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(store.pp_set_title("pp", "old", "Renamed").await.unwrap());
    assert!(!store.pp_set_title("pp", "doomed", "x").await.unwrap());
    let (rows, _) = store.pp_list("pp", 10).await.unwrap();
    assert_eq!(rows[1].title(), "Renamed");
    assert_eq!(rows[1].user_title().as_deref(), Some("Renamed"));
    assert_eq!(
        rows[1].channel(),
        "telegram",
        "rename keeps the other metadata"
    );
}
