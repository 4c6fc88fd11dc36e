//! The filter language, rendered by each engine's dialect, must select the same rows.

use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewPeer, NewSession};
use engram_core::time;
use serde_json::{Value, json};

use crate::common::*;
use crate::obj;

async fn peers_matching(store: &Arc<dyn Store>, filters: Value) -> Vec<String> {
    let page = store
        .list_peers("w", all(Resource::Peer, filters.clone()))
        .await
        .unwrap();
    assert_eq!(page.total as usize, page.items.len(), "total for {filters}");
    page.items.into_iter().map(|p| p.id).collect()
}

pub async fn check_peer_filters(store: Arc<dyn Store>) {
    let rows = [
        (
            "p1",
            json!({"team": "red", "score": 10, "date": "2024-01-15", "tags": ["a", "b"], "profile": {"age": 30, "city": "Paris"}, "vip": true}),
        ),
        (
            "p2",
            json!({"team": "blue", "score": 2.5, "date": "2024-03-01", "tags": ["b"], "profile": {"age": 40, "city": "Rome"}, "vip": false}),
        ),
        (
            "p3",
            json!({"team": "red", "score": "7", "date": "2023-12-31"}),
        ),
        ("p4", json!({})),
        (
            "p5",
            json!({"team": "Green_Team", "score": 100, "note": "100% sure"}),
        ),
    ];
    let mut created = Vec::new();
    for (name, metadata) in rows {
        let Value::Object(metadata) = metadata else {
            unreachable!()
        };
        let new = NewPeer {
            name: name.into(),
            changes: Changes {
                metadata: Some(metadata),
                configuration: None,
            },
        };
        created.push(store.get_or_create_peer("w", new).await.unwrap().0);
    }
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["p1", "p2", "p3", "p4", "p5"]),
        (json!({"id": "p2"}), vec!["p2"]),
        (json!({"id": "*"}), vec!["p1", "p2", "p3", "p4", "p5"]),
        (json!({"id": ["p1", "p3", "zz"]}), vec!["p1", "p3"]),
        (json!({"id": {"in": ["p5", "p4"]}}), vec!["p4", "p5"]),
        (json!({"id": {"in": []}}), vec![]),
        (json!({"id": {"ne": "p1"}}), vec!["p2", "p3", "p4", "p5"]),
        (json!({"id": {"gt": "p3"}}), vec!["p4", "p5"]),
        (json!({"id": {"lte": "p2"}}), vec!["p1", "p2"]),
        (
            json!({"id": {"contains": "P"}}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        (json!({"id": {"icontains": "3"}}), vec!["p3"]),
        (json!({"id": {"contains": "%"}}), vec![]),
        (json!({"id": {"contains": "_"}}), vec![]),
        (
            json!({"workspace_id": "w"}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        (json!({"workspace_id": "other"}), vec![]),
        (json!({"metadata": {"team": "red"}}), vec!["p1", "p3"]),
        (
            json!({"metadata": {"team": "red", "score": 10}}),
            vec!["p1"],
        ),
        (
            json!({"metadata": {"profile": {"city": "Paris"}}}),
            vec!["p1"],
        ),
        (json!({"metadata": {"profile": {"age": 40.0}}}), vec!["p2"]),
        (json!({"metadata": {"tags": ["b"]}}), vec!["p1", "p2"]),
        (json!({"metadata": {"tags": ["a", "b"]}}), vec!["p1"]),
        (json!({"metadata": {"vip": true}}), vec!["p1"]),
        (json!({"metadata": {"vip": false}}), vec!["p2"]),
        (
            json!({"metadata": {"contains": {"tags": ["a"]}}}),
            vec!["p1"],
        ),
        (
            json!({"metadata": {"team": "*"}}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        // Numeric comparisons see JSON numbers only: p3's "7" is a string.
        (json!({"metadata": {"score": {"gt": 5}}}), vec!["p1", "p5"]),
        (
            json!({"metadata": {"score": {"gte": 10, "lt": 100}}}),
            vec!["p1"],
        ),
        (json!({"metadata": {"score": {"lt": "5"}}}), vec!["p2"]),
        (json!({"metadata": {"score": {"ne": 10}}}), vec!["p2", "p5"]),
        // Non-numeric strings compare as text (ISO dates sort correctly).
        (
            json!({"metadata": {"date": {"gte": "2024-01-01"}}}),
            vec!["p1", "p2"],
        ),
        (
            json!({"metadata": {"date": {"lt": "2024-01-01"}}}),
            vec!["p3"],
        ),
        (
            json!({"metadata": {"team": {"ne": "red"}}}),
            vec!["p2", "p5"],
        ),
        (json!({"metadata": {"vip": {"ne": true}}}), vec!["p2"]),
        (
            json!({"metadata": {"team": {"in": ["blue", "Green_Team"]}}}),
            vec!["p2", "p5"],
        ),
        (
            json!({"metadata": {"score": {"in": [10, "7"]}}}),
            vec!["p1", "p3"],
        ),
        (json!({"metadata": {"team": {"in": []}}}), vec![]),
        (
            json!({"metadata": {"team": {"icontains": "TEAM"}}}),
            vec!["p5"],
        ),
        (
            json!({"metadata": {"team": {"contains": "_t"}}}),
            vec!["p5"],
        ),
        (
            json!({"metadata": {"team": {"contains": "n_t"}}}),
            vec!["p5"],
        ),
        (
            json!({"metadata": {"note": {"contains": "0%"}}}),
            vec!["p5"],
        ),
        (json!({"metadata": {"team": {"contains": "e%"}}}), vec![]),
        // NOT keeps rows where the condition is unknown (key missing).
        (
            json!({"NOT": [{"metadata": {"team": "red"}}]}),
            vec!["p2", "p4", "p5"],
        ),
        (
            json!({"NOT": [{"metadata": {"team": {"ne": "red"}}}]}),
            vec!["p1", "p3", "p4"],
        ),
        (
            json!({"NOT": [{"metadata": {"score": {"gt": 5}}}]}),
            vec!["p2", "p3", "p4"],
        ),
        (
            json!({"NOT": [{"id": "p1"}, {"id": "p2"}]}),
            vec!["p3", "p4", "p5"],
        ),
        (
            json!({"OR": [{"id": "p1"}, {"metadata": {"team": "blue"}}]}),
            vec!["p1", "p2"],
        ),
        (
            json!({"AND": [{"metadata": {"team": "red"}}, {"metadata": {"score": {"gte": 10}}}]}),
            vec!["p1"],
        ),
        (
            json!({"OR": [{"AND": [{"id": "p1"}, {"metadata": {"vip": true}}]}, {"NOT": [{"id": {"in": ["p1", "p2", "p3"]}}]}]}),
            vec!["p1", "p4", "p5"],
        ),
        (
            json!({"OR": [{"id": "*"}]}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        (json!({"metadata": null}), vec![]),
        (
            json!({"metadata": {"ne": null}}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        (
            json!({"created_at": {"gte": time::format(created[2].created_at)}}),
            vec!["p3", "p4", "p5"],
        ),
        (
            json!({"created_at": {"lt": time::format(created[1].created_at)}}),
            vec!["p1"],
        ),
        (
            json!({"created_at": {"gt": "2000-01-01"}}),
            vec!["p1", "p2", "p3", "p4", "p5"],
        ),
        (
            json!({"created_at": {"lt": "2000-01-01T00:00:00+02:00"}}),
            vec![],
        ),
    ];
    for (filters, expected) in cases {
        assert_eq!(
            peers_matching(&store, filters.clone()).await,
            expected,
            "filter {filters}"
        );
    }

    // Filters, reverse and pagination compose.
    let page = store
        .list_peers(
            "w",
            query(Resource::Peer, json!({"NOT": [{"id": "p3"}]}), 2, 2, true),
        )
        .await
        .unwrap();
    assert_eq!(peer_names(&page.items), ["p2", "p1"]);
    assert_eq!((page.total, page.pages), (4, 2));
}

pub async fn check_session_filters(store: Arc<dyn Store>) {
    for (name, metadata) in [("s1", obj!("n": 1)), ("s2", obj!("n": 2)), ("s3", obj!())] {
        let new = NewSession {
            name: name.into(),
            changes: Changes {
                metadata: Some(metadata),
                configuration: None,
            },
            peers: vec![],
        };
        store.get_or_create_session("w", new).await.unwrap();
    }
    let names = |filters: Value| {
        let store = store.clone();
        async move {
            let page = store
                .list_sessions("w", all(Resource::Session, filters))
                .await
                .unwrap();
            page.items.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(names(json!({"is_active": true})).await, ["s1", "s2", "s3"]);
    assert!(names(json!({"is_active": false})).await.is_empty());
    assert_eq!(
        names(json!({"is_active": {"ne": false}})).await,
        ["s1", "s2", "s3"]
    );
    assert_eq!(
        names(json!({"workspace_id": "w", "metadata": {"n": {"gte": 2}}})).await,
        ["s2"]
    );
    assert_eq!(
        names(json!({"workspace_id": {"in": ["x", "w"]}, "id": {"ne": "s2"}})).await,
        ["s1", "s3"]
    );
    assert_eq!(
        names(json!({"OR": [{"metadata": {"n": 1}}, {"id": "s3"}]})).await,
        ["s1", "s3"]
    );
}

pub async fn check_message_filters(store: Arc<dyn Store>) {
    let batch = vec![
        msg_with("alice", "a1", 1, obj!("kind": "q", "n": 1)),
        msg_with("bob", "b1", 5, obj!("kind": "a", "n": 2)),
        msg_with("alice", "a2", 10, obj!("kind": "q", "n": 3)),
        msg_with("carol", "c1", 3, obj!()),
    ];
    let created = store.create_messages("w", "s", batch).await.unwrap();
    store
        .create_messages("w", "other", vec![msg("alice", "elsewhere", 1)])
        .await
        .unwrap();
    let matching = |filters: Value| {
        let store = store.clone();
        async move {
            let page = store
                .list_messages("w", "s", all(Resource::Message, filters))
                .await
                .unwrap();
            assert_eq!(page.total as usize, page.items.len());
            page.items
                .into_iter()
                .map(|m| m.content)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(matching(json!({"peer_id": "alice"})).await, ["a1", "a2"]);
    assert_eq!(
        matching(json!({"peer_id": ["bob", "carol"]})).await,
        ["b1", "c1"]
    );
    assert_eq!(
        matching(json!({"session_id": "s"})).await,
        ["a1", "b1", "a2", "c1"]
    );
    assert!(matching(json!({"session_id": "other"})).await.is_empty());
    assert_eq!(matching(json!({"workspace_id": "w"})).await.len(), 4);
    assert_eq!(
        matching(json!({"token_count": {"gte": 5}})).await,
        ["b1", "a2"]
    );
    assert_eq!(matching(json!({"token_count": 3})).await, ["c1"]);
    assert_eq!(matching(json!({"token_count": "3"})).await, ["c1"]);
    assert_eq!(
        matching(json!({"token_count": {"lt": 4.5, "gt": 1}})).await,
        ["c1"]
    );
    assert_eq!(
        matching(json!({"token_count": {"in": [1, 10]}})).await,
        ["a1", "a2"]
    );
    assert_eq!(
        matching(json!({"metadata": {"kind": "q"}})).await,
        ["a1", "a2"]
    );
    assert_eq!(
        matching(json!({"metadata": {"n": {"lte": 2}}})).await,
        ["a1", "b1"]
    );
    assert_eq!(
        matching(json!({"NOT": [{"metadata": {"kind": "q"}}]})).await,
        ["b1", "c1"]
    );
    assert_eq!(
        matching(json!({"peer_id": {"icontains": "AL"}, "token_count": {"gt": 1}})).await,
        ["a2"]
    );
    let at = time::format(created[0].created_at);
    assert_eq!(matching(json!({"created_at": {"gte": at}})).await.len(), 4);
    assert!(matching(json!({"created_at": {"gt": at}})).await.is_empty());
    let reversed = store
        .list_messages(
            "w",
            "s",
            query(
                Resource::Message,
                json!({"peer_id": {"ne": "carol"}}),
                1,
                2,
                true,
            ),
        )
        .await
        .unwrap();
    assert_eq!(contents(&reversed.items), ["a2", "b1"]);
    assert_eq!((reversed.total, reversed.pages), (3, 2));
}

/// Workspace names are rendered as quoted literals; quotes in them must not break SQL.
pub async fn check_filter_on_unknown_workspace(store: Arc<dyn Store>) {
    store.get_or_create_peer("it's", peer("p")).await.unwrap();
    let page = store
        .list_peers("it's", all(Resource::Peer, json!({"workspace_id": "it's"})))
        .await
        .unwrap();
    assert_eq!(peer_names(&page.items), ["p"]);
    let page = store
        .list_peers(
            "it's",
            all(Resource::Peer, json!({"workspace_id": {"contains": "'S"}})),
        )
        .await
        .unwrap();
    assert_eq!(peer_names(&page.items), ["p"]);
    let page = store
        .list_peers(
            "missing",
            all(Resource::Peer, json!({"workspace_id": "missing"})),
        )
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total, page.pages), (0, 0, 0));
}

/// Integers past 2^53: containment compares them exactly (as `numeric` does), ordering
/// compares them as doubles (as `::float8` does), so both engines agree on each.
pub async fn check_big_integers(store: Arc<dyn Store>) {
    let big = |n: i64| NewSession {
        name: format!("s{n}"),
        changes: Changes {
            metadata: Some(serde_json::Map::from_iter([("n".to_string(), json!(n))])),
            configuration: None,
        },
        peers: vec![],
    };
    for n in [9_007_199_254_740_992, 9_007_199_254_740_993] {
        store.get_or_create_session("w", big(n)).await.unwrap();
    }
    let names = |filters: Value| {
        let store = store.clone();
        async move {
            let query = all(Resource::Session, filters);
            let page = store.list_sessions("w", query).await.unwrap();
            page.items.into_iter().map(|s| s.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(json!({"metadata": {"n": 9_007_199_254_740_993i64}})).await,
        ["s9007199254740993"]
    );
    assert_eq!(
        names(json!({"metadata": {"n": {"gt": 9_007_199_254_740_992i64}}})).await,
        Vec::<String>::new()
    );
}
