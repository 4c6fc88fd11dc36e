//! Session memberships: add, replace, remove, list, per-member configuration and the
//! observer limit.

use std::sync::Arc;

use engram_core::filter::Resource;
use engram_core::model::{NewSession, SessionPeerConfig};
use engram_core::store::MembershipMode;
use engram_core::{Error, Store};
use serde_json::Value;

use crate::common::*;

fn cfg(observe_me: Option<bool>, observe_others: Option<bool>) -> SessionPeerConfig {
    SessionPeerConfig {
        observe_me,
        observe_others,
    }
}

fn members(names: &[&str], config: SessionPeerConfig) -> Vec<(String, SessionPeerConfig)> {
    names.iter().map(|n| (n.to_string(), config)).collect()
}

async fn member_names(store: &Arc<dyn Store>, session: &str) -> Vec<String> {
    let page = store
        .list_session_peers("w", session, page(1, 100))
        .await
        .unwrap();
    assert_eq!(page.total as usize, page.items.len());
    page.items.into_iter().map(|p| p.id).collect()
}

pub async fn check_session_members(store: Arc<dyn Store>) {
    // Adding to a missing session creates it.
    let given = vec![
        ("alice".to_string(), cfg(Some(true), None)),
        ("bob".to_string(), cfg(None, None)),
    ];
    let s = store
        .set_session_peers("w", "s", given, MembershipMode::Add)
        .await
        .unwrap();
    assert_eq!((s.id.as_str(), s.is_active), ("s", true));
    assert_eq!(member_names(&store, "s").await, ["alice", "bob"]);

    // Active members keep their configuration when added again.
    let again = vec![
        ("bob".to_string(), cfg(None, Some(true))),
        ("carol".to_string(), cfg(None, None)),
    ];
    store
        .set_session_peers("w", "s", again, MembershipMode::Add)
        .await
        .unwrap();
    assert_eq!(member_names(&store, "s").await, ["alice", "bob", "carol"]);
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "bob")
            .await
            .unwrap(),
        cfg(None, None)
    );

    // Replace: everyone not listed leaves; listed members (re)join with the given config.
    let replace = vec![
        ("carol".to_string(), cfg(Some(false), None)),
        ("dave".to_string(), cfg(None, None)),
    ];
    store
        .set_session_peers("w", "s", replace, MembershipMode::Replace)
        .await
        .unwrap();
    assert_eq!(member_names(&store, "s").await, ["carol", "dave"]);
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "carol")
            .await
            .unwrap(),
        cfg(Some(false), None)
    );
    // A member who left still has a readable configuration.
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "alice")
            .await
            .unwrap(),
        cfg(Some(true), None)
    );

    let s = store
        .remove_session_peers("w", "s", vec!["carol".into(), "ghost".into()])
        .await
        .unwrap();
    assert_eq!(s.id, "s");
    assert_eq!(member_names(&store, "s").await, ["dave"]);

    // Rejoining after leaving takes the configuration given now.
    store
        .set_session_peers(
            "w",
            "s",
            members(&["alice"], cfg(None, Some(false))),
            MembershipMode::Add,
        )
        .await
        .unwrap();
    assert_eq!(member_names(&store, "s").await, ["dave", "alice"]);
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "alice")
            .await
            .unwrap(),
        cfg(None, Some(false))
    );

    let paged = store
        .list_session_peers("w", "s", page(2, 1))
        .await
        .unwrap();
    assert_eq!(peer_names(&paged.items), ["alice"]);
    assert_eq!((paged.total, paged.pages), (2, 2));

    // Memberships do not create sessions beyond the one named.
    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&sessions.items), ["s"]);

    assert_not_found(
        store
            .set_session_peers(
                "w",
                "nope",
                members(&["x"], cfg(None, None)),
                MembershipMode::Replace,
            )
            .await,
        "Session nope not found in workspace w",
    );
    assert_not_found(
        store
            .remove_session_peers("w", "nope", vec!["dave".into()])
            .await,
        "Session nope not found in workspace w",
    );
    assert_not_found(
        store.remove_session_peers("v", "s", vec![]).await,
        "Session s not found in workspace v",
    );
    let empty = store
        .list_session_peers("w", "nope", page(1, 10))
        .await
        .unwrap();
    assert_eq!((empty.items.len(), empty.total, empty.pages), (0, 0, 0));
    // The failed replace created neither the session nor the peer.
    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(sessions.total, 1);
    let peers = store
        .list_peers("w", all(Resource::Peer, Value::Null))
        .await
        .unwrap();
    assert_eq!(peer_names(&peers.items), ["alice", "bob", "carol", "dave"]);
}

pub async fn check_member_config(store: Arc<dyn Store>) {
    store
        .set_session_peers(
            "w",
            "s",
            members(&["dave"], cfg(None, None)),
            MembershipMode::Add,
        )
        .await
        .unwrap();
    store
        .set_session_peer_config("w", "s", "dave", cfg(None, Some(true)))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "dave")
            .await
            .unwrap(),
        cfg(None, Some(true))
    );
    // Non-null fields merge into the stored config.
    store
        .set_session_peer_config("w", "s", "dave", cfg(Some(false), None))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "dave")
            .await
            .unwrap(),
        cfg(Some(false), Some(true))
    );

    // Setting the config of an existing non-member peer creates the membership.
    store.get_or_create_peer("w", peer("eve")).await.unwrap();
    store
        .set_session_peer_config("w", "s", "eve", cfg(Some(true), None))
        .await
        .unwrap();
    assert_eq!(member_names(&store, "s").await, ["dave", "eve"]);

    store.get_or_create_peer("w", peer("frank")).await.unwrap();
    assert_not_found(
        store.get_session_peer_config("w", "s", "frank").await,
        "Session peer frank not found in session s in workspace w",
    );
    assert_not_found(
        store.get_session_peer_config("w", "s", "ghost").await,
        "Peer ghost not found in workspace w",
    );
    assert_not_found(
        store
            .set_session_peer_config("w", "s", "ghost", cfg(None, None))
            .await,
        "Peer ghost not found in workspace w",
    );
    assert_not_found(
        store.get_session_peer_config("w", "nope", "dave").await,
        "Session nope not found in workspace w",
    );
    assert_not_found(
        store
            .set_session_peer_config("w", "nope", "dave", cfg(None, None))
            .await,
        "Session nope not found in workspace w",
    );
    // A left member's config can still be set; they stay out of the session.
    store
        .remove_session_peers("w", "s", vec!["eve".into()])
        .await
        .unwrap();
    store
        .set_session_peer_config("w", "s", "eve", cfg(None, Some(true)))
        .await
        .unwrap();
    assert_eq!(
        store
            .get_session_peer_config("w", "s", "eve")
            .await
            .unwrap(),
        cfg(Some(true), Some(true))
    );
    assert_eq!(member_names(&store, "s").await, ["dave"]);
}

fn assert_observer_limit<T: std::fmt::Debug>(
    r: engram_core::Result<T>,
    session: &str,
    count: usize,
) {
    match failure(r) {
        Error::BadRequest(m) => {
            assert!(m.contains(&format!("{count} observers")), "{m}");
            assert!(
                m.starts_with(&format!(
                    "Cannot create session {session} with {count} observers."
                )),
                "{m}"
            );
        }
        other => panic!("expected the observer limit, got {other:?}"),
    }
}

pub async fn check_observer_limit(store: Arc<dyn Store>) {
    let observer = cfg(None, Some(true));
    let names: Vec<String> = (0..11).map(|i| format!("o{i:02}")).collect();
    let eleven: Vec<(String, SessionPeerConfig)> =
        names.iter().map(|n| (n.clone(), observer)).collect();
    let new = NewSession {
        name: "big".into(),
        peers: eleven.clone(),
        ..Default::default()
    };
    assert_observer_limit(store.get_or_create_session("w", new).await, "big", 11);
    // The failed create left nothing behind: no session, no peers, no workspace.
    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(sessions.total, 0);
    let peers = store
        .list_peers("w", all(Resource::Peer, Value::Null))
        .await
        .unwrap();
    assert_eq!(peers.total, 0);
    let workspaces = store
        .list_workspaces(all(Resource::Workspace, Value::Null))
        .await
        .unwrap();
    assert_eq!(workspaces.total, 0);

    let ten = NewSession {
        name: "big".into(),
        peers: eleven[..10].to_vec(),
        ..Default::default()
    };
    let (_, created) = store.get_or_create_session("w", ten).await.unwrap();
    assert!(created);
    assert_eq!(member_names(&store, "big").await.len(), 10);

    let one_more = vec![("o10".to_string(), observer)];
    assert_observer_limit(
        store
            .set_session_peers("w", "big", one_more, MembershipMode::Add)
            .await,
        "big",
        11,
    );
    assert_eq!(member_names(&store, "big").await.len(), 10);
    let silent = vec![("o10".to_string(), cfg(None, Some(false)))];
    store
        .set_session_peers("w", "big", silent, MembershipMode::Add)
        .await
        .unwrap();
    assert_eq!(member_names(&store, "big").await.len(), 11);

    assert_observer_limit(
        store
            .set_session_peer_config("w", "big", "o10", observer)
            .await,
        "big",
        11,
    );
    assert_eq!(
        store
            .get_session_peer_config("w", "big", "o10")
            .await
            .unwrap(),
        cfg(None, Some(false))
    );
    // Changing a config without adding an observer is fine at the limit.
    store
        .set_session_peer_config("w", "big", "o00", cfg(Some(true), None))
        .await
        .unwrap();

    assert_observer_limit(
        store
            .set_session_peers("w", "big", eleven.clone(), MembershipMode::Replace)
            .await,
        "big",
        11,
    );
    assert_eq!(member_names(&store, "big").await, names);
    assert_eq!(
        store
            .get_session_peer_config("w", "big", "o00")
            .await
            .unwrap(),
        cfg(Some(true), Some(true))
    );

    // Leaving frees a place.
    store
        .remove_session_peers("w", "big", vec!["o00".into()])
        .await
        .unwrap();
    store
        .set_session_peer_config("w", "big", "o10", observer)
        .await
        .unwrap();
}
