//! Workspaces and peers: get-or-create, updates, peer cards.

use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewPeer, NewWorkspace};
use serde_json::Value;

use crate::common::*;
use crate::obj;

pub async fn check_workspace_get_or_create(store: Arc<dyn Store>) {
    let new = NewWorkspace {
        name: "w1".into(),
        metadata: Some(obj!("a": 1)),
        configuration: Some(obj!("x": 1)),
    };
    let (w, created) = store.get_or_create_workspace(new).await.unwrap();
    assert!(created);
    assert_eq!(
        (w.id.as_str(), &w.metadata, &w.configuration),
        ("w1", &obj!("a": 1), &obj!("x": 1))
    );

    // An existing workspace is returned unchanged, whatever the request carries.
    let again = NewWorkspace {
        name: "w1".into(),
        metadata: Some(obj!("b": 2)),
        configuration: Some(obj!("y": 2)),
    };
    let (w2, created) = store.get_or_create_workspace(again).await.unwrap();
    assert!(!created);
    assert_eq!(w2, w);

    // Update: metadata replaced, configuration merged by top-level key.
    let changes = Changes {
        metadata: Some(obj!("c": 3)),
        configuration: Some(obj!("y": 2, "x": {"deep": true})),
    };
    let u = store.update_workspace("w1", changes).await.unwrap();
    assert_eq!(u.metadata, obj!("c": 3));
    assert_eq!(u.configuration, obj!("x": {"deep": true}, "y": 2));
    assert_eq!(u.created_at, w.created_at);
    let unchanged = store
        .update_workspace("w1", Changes::default())
        .await
        .unwrap();
    assert_eq!(unchanged, u);
    let cleared = store
        .update_workspace(
            "w1",
            Changes {
                metadata: Some(obj!()),
                configuration: Some(obj!()),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (cleared.metadata, cleared.configuration),
        (obj!(), obj!("x": {"deep": true}, "y": 2))
    );

    // Updating a missing workspace creates it.
    let made = store
        .update_workspace(
            "w2",
            Changes {
                metadata: Some(obj!("k": "v")),
                configuration: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (made.id.as_str(), made.metadata, made.configuration),
        ("w2", obj!("k": "v"), obj!())
    );
    let list = store
        .list_workspaces(all(Resource::Workspace, Value::Null))
        .await
        .unwrap();
    assert_eq!(workspace_names(&list.items), ["w1", "w2"]);
    assert_eq!((list.total, list.pages), (2, 1));
}

pub async fn check_peer_get_or_create(store: Arc<dyn Store>) {
    let new = NewPeer {
        name: "alice".into(),
        changes: Changes {
            metadata: Some(obj!("a": 1)),
            configuration: Some(obj!("c": 1, "d": 1)),
        },
    };
    let (p, created) = store.get_or_create_peer("w", new).await.unwrap();
    assert!(created);
    assert_eq!((p.id.as_str(), p.workspace_id.as_str()), ("alice", "w"));
    assert_eq!(
        (&p.metadata, &p.configuration),
        (&obj!("a": 1), &obj!("c": 1, "d": 1))
    );
    // The workspace was created on the way, empty.
    let (w, created) = store
        .get_or_create_workspace(NewWorkspace {
            name: "w".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!created);
    assert_eq!((w.metadata, w.configuration), (obj!(), obj!()));

    let (same, created) = store.get_or_create_peer("w", peer("alice")).await.unwrap();
    assert!(!created);
    assert_eq!(same, p);

    // An existing peer gets metadata and configuration each replaced when provided.
    let meta_only = NewPeer {
        name: "alice".into(),
        changes: Changes {
            metadata: Some(obj!("b": 2)),
            configuration: None,
        },
    };
    let (p2, created) = store.get_or_create_peer("w", meta_only).await.unwrap();
    assert!(!created);
    assert_eq!(
        (&p2.metadata, &p2.configuration),
        (&obj!("b": 2), &obj!("c": 1, "d": 1))
    );
    let config_only = NewPeer {
        name: "alice".into(),
        changes: Changes {
            metadata: None,
            configuration: Some(obj!("e": 5)),
        },
    };
    let (p3, _) = store.get_or_create_peer("w", config_only).await.unwrap();
    assert_eq!(
        (&p3.metadata, &p3.configuration),
        (&obj!("b": 2), &obj!("e": 5))
    );
    assert_eq!(p3.created_at, p.created_at);

    // Same name in another workspace is another peer.
    let (other, created) = store.get_or_create_peer("w2", peer("alice")).await.unwrap();
    assert!(created);
    assert_eq!(
        (other.workspace_id.as_str(), other.metadata),
        ("w2", obj!())
    );
}

pub async fn check_peer_cards(store: Arc<dyn Store>) {
    assert_not_found(
        store.get_peer_card("w", "ghost", "ghost").await,
        "Peer ghost not found in workspace w",
    );
    store.get_or_create_peer("w", peer("bob")).await.unwrap();
    assert_not_found(
        store.get_peer_card("w", "ghost", "bob").await,
        "Peer ghost not found in workspace w",
    );
    assert_eq!(store.get_peer_card("w", "bob", "bob").await.unwrap(), None);

    // Setting a card creates the observer.
    store
        .set_peer_card("w", "alice", "alice", vec!["likes tea".into()])
        .await
        .unwrap();
    store
        .set_peer_card(
            "w",
            "alice",
            "bob",
            vec!["is tall".into(), "plays chess".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_peer_card("w", "alice", "alice").await.unwrap(),
        Some(vec!["likes tea".to_string()])
    );
    assert_eq!(
        store.get_peer_card("w", "alice", "bob").await.unwrap(),
        Some(vec!["is tall".to_string(), "plays chess".to_string()])
    );
    assert_eq!(
        store.get_peer_card("w", "alice", "carol").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_peer_card("w", "bob", "alice").await.unwrap(),
        None
    );

    store
        .set_peer_card("w", "alice", "alice", vec!["new".into()])
        .await
        .unwrap();
    assert_eq!(
        store.get_peer_card("w", "alice", "alice").await.unwrap(),
        Some(vec!["new".to_string()])
    );
    assert_eq!(
        store
            .get_peer_card("w", "alice", "bob")
            .await
            .unwrap()
            .map(|c| c.len()),
        Some(2)
    );
    store
        .set_peer_card("w", "alice", "alice", vec![])
        .await
        .unwrap();
    assert_eq!(
        store.get_peer_card("w", "alice", "alice").await.unwrap(),
        Some(vec![])
    );

    // Cards live outside the peer's visible metadata and configuration.
    let (alice, created) = store.get_or_create_peer("w", peer("alice")).await.unwrap();
    assert!(!created);
    assert_eq!((alice.metadata, alice.configuration), (obj!(), obj!()));

    // A card in a missing workspace creates workspace and observer.
    store
        .set_peer_card("w2", "zed", "zed", vec!["z".into()])
        .await
        .unwrap();
    let (_, created) = store.get_or_create_peer("w2", peer("zed")).await.unwrap();
    assert!(!created);
}
