//! The same scenario on both engines must produce the same observable results. Values
//! that are fresh by design (timestamps, generated ids) are masked before comparing.

use std::sync::Arc;

use engram_core::filter::Resource;
use engram_core::model::{Changes, NewPeer, NewSession, NewWorkspace, SessionPeerConfig};
use engram_core::store::MembershipMode;
use engram_core::{Result, Store};
use engram_store_tests::EnginePair;
use serde::Serialize;
use serde_json::{Value, json};

use crate::common::*;
use crate::obj;

struct Transcript {
    entries: Vec<(String, Value)>,
    masks: Vec<(String, String)>,
}

impl Transcript {
    fn record<T: Serialize + std::fmt::Debug>(&mut self, label: &str, outcome: Result<T>) {
        let value = match outcome {
            Ok(v) => serde_json::to_value(v).expect("serializable"),
            Err(e) => json!({"error": format!("{e:?}")}),
        };
        self.entries.push((label.to_string(), value));
    }

    /// Replaces a generated value (a clone's name, a message id) by a stable label.
    fn mask(&mut self, generated: &str, label: &str) {
        self.masks.push((generated.to_string(), label.to_string()));
    }

    fn finish(self) -> Vec<(String, Value)> {
        let masks = self.masks;
        self.entries
            .into_iter()
            .map(|(label, value)| {
                let mut text = serde_json::to_string(&strip_times(value)).expect("json");
                for (from, to) in &masks {
                    text = text.replace(from.as_str(), to);
                }
                (label, serde_json::from_str(&text).expect("json"))
            })
            .collect()
    }
}

fn strip_times(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "created_at")
                .map(|(k, v)| (k, strip_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_times).collect()),
        other => other,
    }
}

async fn scenario(store: Arc<dyn Store>) -> Vec<(String, Value)> {
    let mut t = Transcript {
        entries: vec![],
        masks: vec![],
    };
    let ws = NewWorkspace {
        name: "w".into(),
        metadata: Some(obj!("z": 1, "a": [1, 2.5, "x"])),
        configuration: None,
    };
    t.record("workspace", store.get_or_create_workspace(ws).await);
    t.record(
        "workspace update",
        store
            .update_workspace(
                "w",
                Changes {
                    metadata: None,
                    configuration: Some(obj!("k": true)),
                },
            )
            .await,
    );
    for (i, name) in ["ann", "ben", "cy", "dee"].iter().enumerate() {
        let metadata = obj!("rank": i, "group": if i % 2 == 0 { "even" } else { "odd" }, "nested": {"depth": i});
        let new = NewPeer {
            name: (*name).into(),
            changes: Changes {
                metadata: Some(metadata),
                configuration: None,
            },
        };
        t.record(
            &format!("peer {name}"),
            store.get_or_create_peer("w", new).await,
        );
    }
    for filters in [
        json!({"metadata": {"group": "odd"}}),
        json!({"metadata": {"rank": {"gte": 1, "lt": 3}}}),
        json!({"NOT": [{"metadata": {"nested": {"depth": 2}}}]}),
        json!({"OR": [{"id": {"icontains": "N"}}, {"metadata": {"rank": 3}}]}),
    ] {
        t.record(
            &format!("peers {filters}"),
            store
                .list_peers("w", query(Resource::Peer, filters.clone(), 1, 2, true))
                .await,
        );
    }
    let new = NewSession {
        name: "s".into(),
        changes: Changes {
            metadata: Some(obj!("topic": "x")),
            configuration: Some(obj!("c": 1)),
        },
        peers: vec![(
            "ann".into(),
            SessionPeerConfig {
                observe_me: Some(true),
                observe_others: None,
            },
        )],
    };
    t.record("session", store.get_or_create_session("w", new).await);
    let batch = vec![
        msg_with("ben", "hello there", 2, obj!("n": 1)),
        msg("ann", "hi", 1),
        msg("eve", "hey", 1),
    ];
    let created = store.create_messages("w", "s", batch).await;
    if let Ok(created) = &created {
        for (i, m) in created.iter().enumerate() {
            t.mask(&m.id, &format!("<message {i}>"));
        }
    }
    let cutoff = created.as_ref().ok().map(|c| c[1].id.clone());
    t.record("messages", created);
    t.record(
        "members",
        store.list_session_peers("w", "s", page(1, 10)).await,
    );
    t.record(
        "add",
        store
            .set_session_peers(
                "w",
                "s",
                vec![("dee".into(), SessionPeerConfig::default())],
                MembershipMode::Add,
            )
            .await,
    );
    t.record(
        "remove",
        store
            .remove_session_peers("w", "s", vec!["ben".into()])
            .await,
    );
    t.record(
        "members after",
        store.list_session_peers("w", "s", page(1, 10)).await,
    );
    t.record(
        "config ben",
        store.get_session_peer_config("w", "s", "ben").await,
    );
    t.record(
        "config ghost",
        store.get_session_peer_config("w", "s", "ghost").await,
    );
    t.record(
        "replace missing",
        store
            .set_session_peers("w", "zz", vec![], MembershipMode::Replace)
            .await,
    );
    t.record(
        "peer sessions",
        store
            .list_peer_sessions("w", "ben", all(Resource::Session, Value::Null))
            .await,
    );
    t.record(
        "messages by ann",
        store
            .list_messages("w", "s", all(Resource::Message, json!({"peer_id": "ann"})))
            .await,
    );
    t.record("recent", store.recent_messages("w", "s", 2).await);
    let clone = store.clone_session("w", "s", cutoff.as_deref()).await;
    if let Ok(c) = &clone {
        t.mask(&c.id, "<clone>");
        // Cloned messages get fresh ids; compare what they carry over.
        let copied = store
            .list_messages("w", &c.id, all(Resource::Message, Value::Null))
            .await
            .map(|page| {
                page.items
                    .into_iter()
                    .map(|m| {
                        json!([
                            m.content,
                            m.peer_id,
                            m.session_id,
                            m.metadata,
                            m.token_count
                        ])
                    })
                    .collect::<Vec<_>>()
            });
        t.record("clone messages", copied);
    }
    t.record("clone", clone);
    t.record(
        "sessions",
        store
            .list_sessions("w", all(Resource::Session, Value::Null))
            .await,
    );
    t.record(
        "card",
        store
            .set_peer_card("w", "ann", "ben", vec!["b".into()])
            .await,
    );
    t.record("card get", store.get_peer_card("w", "ann", "ben").await);
    t.record(
        "card missing",
        store.get_peer_card("w", "nobody", "ben").await,
    );
    t.record(
        "workspaces",
        store
            .list_workspaces(all(Resource::Workspace, Value::Null))
            .await,
    );
    t.finish()
}

/// Runs one scenario on SQLite and on PostgreSQL and compares every step.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn engines_agree() {
    let Some(pair) = EnginePair::open().await else {
        return;
    };
    let from_sqlite = scenario(pair.sqlite.clone()).await;
    let from_postgres = tokio::spawn(scenario(pair.postgres.clone())).await;
    pair.close().await;
    let from_postgres = from_postgres.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    assert_eq!(from_sqlite.len(), from_postgres.len());
    for ((label, a), (_, b)) in from_sqlite.iter().zip(&from_postgres) {
        assert_eq!(
            a, b,
            "step {label:?} differs between SQLite (left) and PostgreSQL (right)"
        );
    }
}
