//! Sessions: get-or-create, listing order and pagination, a peer's sessions.

use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewSession, NewWorkspace, SessionPeerConfig};
use serde_json::{Value, json};

use crate::common::*;
use crate::obj;

pub async fn check_session_get_or_create(store: Arc<dyn Store>) {
    let new = NewSession {
        name: "s1".into(),
        changes: Changes {
            metadata: Some(obj!("a": 1)),
            configuration: Some(obj!("x": 1)),
        },
        peers: vec![("alice".into(), SessionPeerConfig::default())],
    };
    let (s, created) = store.get_or_create_session("w", new).await.unwrap();
    assert!(created);
    assert!(s.is_active);
    assert_eq!((s.id.as_str(), s.workspace_id.as_str()), ("s1", "w"));
    assert_eq!(
        (&s.metadata, &s.configuration),
        (&obj!("a": 1), &obj!("x": 1))
    );

    let (same, created) = store
        .get_or_create_session("w", session("s1"))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(same, s);

    // Existing session: metadata replaced, configuration merged, listed peers upserted.
    let update = NewSession {
        name: "s1".into(),
        changes: Changes {
            metadata: Some(obj!("b": 2)),
            configuration: Some(obj!("y": 2)),
        },
        peers: vec![(
            "bob".into(),
            SessionPeerConfig {
                observe_me: Some(false),
                observe_others: None,
            },
        )],
    };
    let (s2, created) = store.get_or_create_session("w", update).await.unwrap();
    assert!(!created);
    assert_eq!(
        (&s2.metadata, &s2.configuration),
        (&obj!("b": 2), &obj!("x": 1, "y": 2))
    );
    assert_eq!(s2.created_at, s.created_at);
    let members = store
        .list_session_peers("w", "s1", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["alice", "bob"]);
    let bob = store
        .get_session_peer_config("w", "s1", "bob")
        .await
        .unwrap();
    assert_eq!(
        bob,
        SessionPeerConfig {
            observe_me: Some(false),
            observe_others: None
        }
    );

    let list = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&list.items), ["s1"]);
    assert_eq!(list.items[0], s2);
}

pub async fn check_list_ordering_and_pagination(store: Arc<dyn Store>) {
    for i in 0..5 {
        store
            .get_or_create_peer("w", peer(&format!("p{i}")))
            .await
            .unwrap();
        store
            .get_or_create_session("w", session(&format!("s{i}")))
            .await
            .unwrap();
    }
    let peers = store
        .list_peers("w", all(Resource::Peer, Value::Null))
        .await
        .unwrap();
    assert_eq!(peer_names(&peers.items), ["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(
        (peers.total, peers.page, peers.size, peers.pages),
        (5, 1, 100, 1)
    );

    let first = store
        .list_peers("w", query(Resource::Peer, Value::Null, 1, 2, false))
        .await
        .unwrap();
    assert_eq!(peer_names(&first.items), ["p0", "p1"]);
    assert_eq!(
        (first.total, first.page, first.size, first.pages),
        (5, 1, 2, 3)
    );
    let last = store
        .list_peers("w", query(Resource::Peer, Value::Null, 3, 2, false))
        .await
        .unwrap();
    assert_eq!(peer_names(&last.items), ["p4"]);
    let past = store
        .list_peers("w", query(Resource::Peer, Value::Null, 4, 2, false))
        .await
        .unwrap();
    assert!(past.items.is_empty());
    assert_eq!((past.total, past.page, past.pages), (5, 4, 3));
    let reversed = store
        .list_peers("w", query(Resource::Peer, Value::Null, 1, 2, true))
        .await
        .unwrap();
    assert_eq!(peer_names(&reversed.items), ["p4", "p3"]);
    let reversed2 = store
        .list_peers("w", query(Resource::Peer, Value::Null, 3, 2, true))
        .await
        .unwrap();
    assert_eq!(peer_names(&reversed2.items), ["p0"]);

    let sessions = store
        .list_sessions("w", query(Resource::Session, Value::Null, 2, 2, false))
        .await
        .unwrap();
    assert_eq!(session_names(&sessions.items), ["s2", "s3"]);
    assert_eq!((sessions.total, sessions.pages), (5, 3));
    let sessions = store
        .list_sessions("w", query(Resource::Session, Value::Null, 1, 3, true))
        .await
        .unwrap();
    assert_eq!(session_names(&sessions.items), ["s4", "s3", "s2"]);

    for name in ["b", "a", "c"] {
        store
            .get_or_create_workspace(NewWorkspace {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let ws = store
        .list_workspaces(all(Resource::Workspace, Value::Null))
        .await
        .unwrap();
    assert_eq!(workspace_names(&ws.items), ["w", "b", "a", "c"]);
    let ws = store
        .list_workspaces(query(Resource::Workspace, Value::Null, 1, 3, true))
        .await
        .unwrap();
    assert_eq!(workspace_names(&ws.items), ["c", "a", "b"]);
    assert_eq!((ws.total, ws.pages), (4, 2));

    let none = store
        .list_peers("nope", all(Resource::Peer, Value::Null))
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!((none.total, none.pages), (0, 0));
    let none = store
        .list_sessions("nope", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!((none.total, none.pages), (0, 0));
}

pub async fn check_peer_sessions(store: Arc<dyn Store>) {
    let with = |name: &str, peers: &[&str]| NewSession {
        name: name.into(),
        peers: peers
            .iter()
            .map(|p| (p.to_string(), SessionPeerConfig::default()))
            .collect(),
        ..Default::default()
    };
    store
        .get_or_create_session("w", with("s1", &["alice"]))
        .await
        .unwrap();
    store
        .get_or_create_session("w", with("s2", &["alice", "bob"]))
        .await
        .unwrap();
    store
        .create_messages("w", "s3", vec![msg("alice", "hi", 1)])
        .await
        .unwrap();
    store
        .get_or_create_session("w", with("s4", &["bob"]))
        .await
        .unwrap();
    // A member who left keeps the membership row, so the session stays listed.
    store
        .remove_session_peers("w", "s2", vec!["alice".into()])
        .await
        .unwrap();

    let alice = store
        .list_peer_sessions("w", "alice", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&alice.items), ["s1", "s2", "s3"]);
    assert_eq!((alice.total, alice.pages), (3, 1));
    let bob = store
        .list_peer_sessions("w", "bob", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&bob.items), ["s2", "s4"]);

    let filtered = store
        .list_peer_sessions(
            "w",
            "alice",
            all(Resource::Session, json!({"id": {"in": ["s1", "s3", "s4"]}})),
        )
        .await
        .unwrap();
    assert_eq!(session_names(&filtered.items), ["s1", "s3"]);
    let reversed = store
        .list_peer_sessions(
            "w",
            "alice",
            query(Resource::Session, Value::Null, 1, 2, true),
        )
        .await
        .unwrap();
    assert_eq!(session_names(&reversed.items), ["s3", "s2"]);
    assert_eq!((reversed.total, reversed.pages), (3, 2));

    let ghost = store
        .list_peer_sessions("w", "ghost", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!((ghost.items.len(), ghost.total, ghost.pages), (0, 0, 0));
    let nowhere = store
        .list_peer_sessions("nope", "alice", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!((nowhere.items.len(), nowhere.total), (0, 0));
}
