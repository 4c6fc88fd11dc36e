//! Many writers at once: sequence numbers stay unique and gap-free, get-or-create
//! creates exactly once.

use std::collections::HashSet;
use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{NewSession, NewWorkspace, SessionPeerConfig};
use serde_json::Value;

use crate::common::*;

const TASKS: usize = 8;
const BATCHES: usize = 20;
const PER_BATCH: usize = 3;

pub async fn check_concurrent_message_creation(store: Arc<dyn Store>) {
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let batch = (0..PER_BATCH)
                    .map(|i| msg(&format!("p{t}"), &format!("t{t}-b{b:02}-{i}"), 1))
                    .collect();
                let out = store.create_messages("w", "s", batch).await.unwrap();
                assert_eq!(out.len(), PER_BATCH);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }

    let total = TASKS * BATCHES * PER_BATCH;
    let mut listed = Vec::new();
    for number in 1..=total.div_ceil(100) as i64 {
        let page = store
            .list_messages(
                "w",
                "s",
                query(Resource::Message, Value::Null, number, 100, false),
            )
            .await
            .unwrap();
        assert_eq!(page.total as usize, total);
        listed.extend(page.items);
    }
    assert_eq!(listed.len(), total);
    let ids: HashSet<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids.len(), total, "message ids are unique");
    let texts: HashSet<&str> = listed.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts.len(), total, "no message is listed twice");

    // Each batch is contiguous, and each writer's batches appear in the order it sent them.
    for chunk in listed.chunks(PER_BATCH) {
        let prefix = &chunk[0].content[..chunk[0].content.len() - 2];
        let got: Vec<&str> = chunk.iter().map(|m| m.content.as_str()).collect();
        let want: Vec<String> = (0..PER_BATCH).map(|i| format!("{prefix}-{i}")).collect();
        assert_eq!(got, want);
    }
    for t in 0..TASKS {
        let mine: Vec<&str> = listed
            .iter()
            .filter(|m| m.peer_id == format!("p{t}"))
            .map(|m| m.content.as_str())
            .collect();
        let want: Vec<String> = (0..BATCHES)
            .flat_map(|b| (0..PER_BATCH).map(move |i| format!("t{t}-b{b:02}-{i}")))
            .collect();
        assert_eq!(mine, want);
    }

    // The newest-first walk agrees with the list order.
    let recent = store.recent_messages("w", "s", total as i64).await.unwrap();
    assert_eq!(recent, listed);
    let reversed = store
        .list_messages(
            "w",
            "s",
            query(Resource::Message, Value::Null, 1, 100, true),
        )
        .await
        .unwrap();
    let tail: Vec<_> = listed.iter().rev().take(100).cloned().collect();
    assert_eq!(reversed.items, tail);

    let members = store
        .list_session_peers("w", "s", page(1, 50))
        .await
        .unwrap();
    assert_eq!(members.total as usize, TASKS);
}

pub async fn check_concurrent_get_or_create(store: Arc<dyn Store>) {
    const N: usize = 16;
    let mut handles = Vec::new();
    for i in 0..N {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let (_, ws) = store
                .get_or_create_workspace(NewWorkspace {
                    name: "shared".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            let (_, peer_created) = store.get_or_create_peer("w", peer("same")).await.unwrap();
            let new = NewSession {
                name: "s".into(),
                peers: vec![(format!("m{i:02}"), SessionPeerConfig::default())],
                ..Default::default()
            };
            let (_, session_created) = store.get_or_create_session("w", new).await.unwrap();
            // Message writes that create the session and the author on the way.
            store
                .create_messages("w", "fresh", vec![msg("newbie", &format!("x{i}"), 1)])
                .await
                .unwrap();
            (ws, peer_created, session_created)
        }));
    }
    let mut created = (0, 0, 0);
    for h in handles {
        let (ws, peer, session) = h.await.unwrap();
        created.0 += usize::from(ws);
        created.1 += usize::from(peer);
        created.2 += usize::from(session);
    }
    assert_eq!(created, (1, 1, 1), "each resource is created exactly once");

    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(
        session_names(&sessions.items)
            .into_iter()
            .collect::<HashSet<_>>(),
        HashSet::from(["s", "fresh"])
    );
    let members = store
        .list_session_peers("w", "s", page(1, 50))
        .await
        .unwrap();
    assert_eq!(members.total as usize, N);
    let peers = store
        .list_peers("w", all(Resource::Peer, Value::Null))
        .await
        .unwrap();
    assert_eq!(peers.total as usize, N + 2);
    let fresh = store
        .list_messages("w", "fresh", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(fresh.total as usize, N);
    let authors = store
        .list_session_peers("w", "fresh", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&authors.items), ["newbie"]);
}
