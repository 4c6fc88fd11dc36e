//! Cloning a session, with and without a cut-off.

use std::collections::HashSet;
use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewSession, SessionPeerConfig};
use serde_json::Value;

use crate::common::*;
use crate::obj;

pub async fn check_clone_session(store: Arc<dyn Store>) {
    let new = NewSession {
        name: "s".into(),
        changes: Changes {
            metadata: Some(obj!("a": 1)),
            configuration: Some(obj!("x": 1)),
        },
        peers: vec![(
            "alice".into(),
            SessionPeerConfig {
                observe_me: Some(false),
                observe_others: None,
            },
        )],
    };
    store.get_or_create_session("w", new).await.unwrap();
    let batch: Vec<_> = (1..=5)
        .map(|i| {
            msg_with(
                if i % 2 == 1 { "alice" } else { "bob" },
                &format!("m{i}"),
                i,
                obj!("i": i),
            )
        })
        .collect();
    let source = store.create_messages("w", "s", batch).await.unwrap();
    store
        .remove_session_peers("w", "s", vec!["bob".into()])
        .await
        .unwrap();

    let full = store.clone_session("w", "s", None).await.unwrap();
    assert_ne!(full.id, "s");
    assert_eq!(full.id.len(), 21);
    assert!(full.is_active);
    assert_eq!(
        (
            &full.metadata,
            &full.configuration,
            full.workspace_id.as_str()
        ),
        (&obj!("a": 1), &obj!("x": 1), "w")
    );
    let copied = store
        .list_messages("w", &full.id, all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(copied.total, 5);
    for (c, s) in copied.items.iter().zip(&source) {
        assert_eq!(
            (&c.content, &c.peer_id, &c.metadata, c.token_count),
            (&s.content, &s.peer_id, &s.metadata, s.token_count)
        );
        assert_eq!(c.session_id, full.id);
        assert_ne!(c.id, s.id);
    }
    let ids: HashSet<&str> = copied
        .items
        .iter()
        .map(|m| m.id.as_str())
        .chain(source.iter().map(|m| m.id.as_str()))
        .collect();
    assert_eq!(ids.len(), 10);
    // Memberships are copied, members who had left included, as active members.
    let members = store
        .list_session_peers("w", &full.id, page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["alice", "bob"]);
    let alice = store
        .get_session_peer_config("w", &full.id, "alice")
        .await
        .unwrap();
    assert_eq!(
        alice,
        SessionPeerConfig {
            observe_me: Some(false),
            observe_others: None
        }
    );

    let cut = store
        .clone_session("w", "s", Some(&source[2].id))
        .await
        .unwrap();
    assert_ne!(cut.id, full.id);
    let copied = store
        .list_messages("w", &cut.id, all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&copied.items), ["m1", "m2", "m3"]);
    // The clone's sequence continues after the cut-off.
    store
        .create_messages("w", &cut.id, vec![msg("carol", "next", 1)])
        .await
        .unwrap();
    let copied = store
        .list_messages("w", &cut.id, all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&copied.items), ["m1", "m2", "m3", "next"]);
    let recent = store.recent_messages("w", &cut.id, 4).await.unwrap();
    assert_eq!(contents(&recent), ["m3", "next"]);

    let other = store
        .create_messages("w", "t", vec![msg("alice", "t1", 1)])
        .await
        .unwrap();
    assert_not_found(
        store.clone_session("w", "s", Some("nope")).await,
        "Message nope not found in session s",
    );
    assert_not_found(
        store.clone_session("w", "s", Some(&other[0].id)).await,
        &format!("Message {} not found in session s", other[0].id),
    );
    assert_not_found(
        store.clone_session("w", "ghost", None).await,
        "Session ghost not found in workspace w",
    );

    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    let expected = ["s", full.id.as_str(), cut.id.as_str(), "t"];
    assert_eq!(session_names(&sessions.items), expected);
    let source_after = store
        .list_messages("w", "s", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(source_after.items, source);

    // An empty session clones to an empty session.
    store
        .get_or_create_session("w", session("empty"))
        .await
        .unwrap();
    let empty = store.clone_session("w", "empty", None).await.unwrap();
    let copied = store
        .list_messages("w", &empty.id, all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(copied.total, 0);
    store
        .create_messages("w", &empty.id, vec![msg("a", "first", 1)])
        .await
        .unwrap();
    assert_eq!(
        store
            .recent_messages("w", &empty.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
