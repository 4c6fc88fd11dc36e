//! Messages: batches, ordering, get/update, and the recent-messages walk.

use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{NewMessage, SessionPeerConfig};
use engram_core::time;
use serde_json::Value;

use crate::common::*;
use crate::obj;

pub async fn check_messages_create_and_list(store: Arc<dyn Store>) {
    let first = vec![
        msg_with("alice", "hello", 1, obj!("k": "v")),
        msg("bob", "hi", 2),
    ];
    let created = store
        .create_messages("w", "s", first.clone())
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    for (m, input) in created.iter().zip(&first) {
        assert_eq!(
            (&m.id, &m.content, &m.peer_id, &m.metadata, m.token_count),
            (
                &input.public_id,
                &input.content,
                &input.peer,
                &input.metadata,
                input.token_count
            )
        );
        assert_eq!((m.session_id.as_str(), m.workspace_id.as_str()), ("s", "w"));
    }
    // Workspace, session and authors were created; authors joined the session.
    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&sessions.items), ["s"]);
    let members = store
        .list_session_peers("w", "s", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["alice", "bob"]);
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "bob")
            .await
            .unwrap(),
        SessionPeerConfig::default()
    );

    let second = vec![
        msg("carol", "c1", 3),
        msg("alice", "a2", 1),
        msg("carol", "c2", 4),
    ];
    let created2 = store.create_messages("w", "s", second).await.unwrap();
    let listed = store
        .list_messages("w", "s", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&listed.items), ["hello", "hi", "c1", "a2", "c2"]);
    assert_eq!((listed.total, listed.pages), (5, 1));
    // What a create returns is exactly what a list reads back.
    let expected: Vec<_> = created.iter().chain(&created2).cloned().collect();
    assert_eq!(listed.items, expected);
    let members = store
        .list_session_peers("w", "s", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["alice", "bob", "carol"]);

    let reversed = store
        .list_messages(
            "w",
            "s",
            query(Resource::Message, Value::Null, 1, 100, true),
        )
        .await
        .unwrap();
    assert_eq!(contents(&reversed.items), ["c2", "a2", "c1", "hi", "hello"]);
    let second_page = store
        .list_messages("w", "s", query(Resource::Message, Value::Null, 2, 2, false))
        .await
        .unwrap();
    assert_eq!(contents(&second_page.items), ["c1", "a2"]);
    assert_eq!((second_page.total, second_page.pages), (5, 3));

    // A client timestamp is kept, but order stays the order of arrival.
    let old = time::parse("2020-01-01T00:00:00Z").unwrap();
    let dated = NewMessage {
        created_at: Some(old),
        ..msg("bob", "late", 1)
    };
    let out = store.create_messages("w", "s", vec![dated]).await.unwrap();
    assert_eq!(out[0].created_at, old);
    let listed = store
        .list_messages("w", "s", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&listed.items).last(), Some(&"late"));
    assert_eq!(listed.items.last().unwrap().created_at, old);
    assert_eq!(listed.total, 6);

    let unknown = store
        .list_messages("w", "nope", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(
        (unknown.items.len(), unknown.total, unknown.pages),
        (0, 0, 0)
    );
    let unknown = store
        .list_messages("v", "s", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(unknown.total, 0);
}

pub async fn check_message_get_and_update(store: Arc<dyn Store>) {
    let created = store
        .create_messages("w", "s", vec![msg_with("alice", "one", 1, obj!("a": 1))])
        .await
        .unwrap();
    store
        .create_messages("w", "t", vec![msg("alice", "two", 1)])
        .await
        .unwrap();
    let id = created[0].id.clone();
    assert_eq!(
        store.get_message("w", "s", &id).await.unwrap(),
        Some(created[0].clone())
    );
    assert_eq!(store.get_message("w", "t", &id).await.unwrap(), None);
    assert_eq!(store.get_message("w", "s", "nope").await.unwrap(), None);
    assert_eq!(store.get_message("v", "s", &id).await.unwrap(), None);

    let updated = store
        .update_message_metadata("w", "s", &id, obj!("b": [1, 2], "c": {"d": null}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.metadata, obj!("b": [1, 2], "c": {"d": null}));
    assert_eq!(
        (&updated.content, updated.created_at, updated.token_count),
        (&created[0].content, created[0].created_at, 1)
    );
    assert_eq!(
        store.get_message("w", "s", &id).await.unwrap(),
        Some(updated)
    );
    let cleared = store
        .update_message_metadata("w", "s", &id, obj!())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cleared.metadata, obj!());

    assert_eq!(
        store
            .update_message_metadata("w", "s", "nope", obj!("x": 1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .update_message_metadata("w", "t", &id, obj!("x": 1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .update_message_metadata("w", "nope", &id, obj!("x": 1))
            .await
            .unwrap(),
        None
    );
}

pub async fn check_recent_messages_budget(store: Arc<dyn Store>) {
    let batch = vec![
        msg("a", "m1", 3),
        msg("b", "m2", 5),
        msg("a", "m3", 2),
        msg("b", "m4", 4),
    ];
    store.create_messages("w", "s", batch).await.unwrap();
    let recent = |budget: i64| {
        let store = store.clone();
        async move {
            let out = store.recent_messages("w", "s", budget).await.unwrap();
            out.into_iter().map(|m| m.content).collect::<Vec<_>>()
        }
    };
    assert_eq!(recent(6).await, ["m3", "m4"]); // exactly at budget: included
    assert_eq!(recent(5).await, ["m4"]);
    assert_eq!(recent(4).await, ["m4"]);
    assert!(recent(3).await.is_empty()); // newest alone exceeds the budget
    assert_eq!(recent(11).await, ["m2", "m3", "m4"]);
    assert_eq!(recent(13).await, ["m2", "m3", "m4"]);
    assert_eq!(recent(14).await, ["m1", "m2", "m3", "m4"]);
    assert_eq!(recent(1000).await, ["m1", "m2", "m3", "m4"]);
    assert!(recent(0).await.is_empty());
    assert!(recent(-1).await.is_empty());
    // The walk stops at the first message that does not fit, even if older ones would.
    store
        .create_messages("w", "s", vec![msg("a", "m5", 0), msg("a", "m6", 9)])
        .await
        .unwrap();
    assert_eq!(recent(9).await, ["m5", "m6"]);
    assert_eq!(recent(13).await, ["m4", "m5", "m6"]);
    assert!(
        store
            .recent_messages("w", "nope", 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .recent_messages("v", "s", 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Longer than one internal chunk of the walk (256 rows).
pub async fn check_recent_messages_long_session(store: Arc<dyn Store>) {
    for b in 0..6 {
        let batch: Vec<_> = (0..100)
            .map(|i| msg("p", &format!("{:03}", b * 100 + i), 1))
            .collect();
        store.create_messages("w", "s", batch).await.unwrap();
    }
    let out = store.recent_messages("w", "s", 300).await.unwrap();
    let expected: Vec<String> = (300..600).map(|i| format!("{i:03}")).collect();
    assert_eq!(
        out.iter().map(|m| m.content.clone()).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        store.recent_messages("w", "s", 10_000).await.unwrap().len(),
        600
    );
    assert_eq!(
        store.recent_messages("w", "s", 513).await.unwrap()[0].content,
        "087"
    );
    let listed = store
        .list_messages(
            "w",
            "s",
            query(Resource::Message, Value::Null, 6, 100, false),
        )
        .await
        .unwrap();
    assert_eq!(
        (listed.items[0].content.as_str(), listed.total, listed.pages),
        ("500", 600, 6)
    );
}
