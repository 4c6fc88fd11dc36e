//! The filter language gives identical results on both engines: the same data and the
//! same filters, run through the HTTP API of a SQLite-backed and a PostgreSQL-backed
//! server, must list the same messages in the same order.

use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn seed(app: &TestApp) {
    let rows = [
        (
            "alice",
            "Hello World",
            json!({"n": 1, "tag": "a", "flag": true, "when": "2024-01-15", "nested": {"k": "v", "list": [1, 2]}}),
        ),
        (
            "bob",
            "hello there 100%",
            json!({"n": 2.5, "tag": "b", "flag": false, "when": "2024-03-01"}),
        ),
        (
            "alice",
            "under_score",
            json!({"n": "3", "tags": ["x", "y"], "when": "2023-12-31"}),
        ),
        ("carol", "nothing special", json!({})),
        (
            "bob",
            "MiXeD CaSe",
            json!({"n": -4, "tag": null, "nested": {"k": "w"}}),
        ),
        ("carol", "", json!({"n": 10, "tag": "a", "tags": ["y"]})),
        (
            "dave",
            "odd keys",
            json!({"a.b": "dot", "x[0]": 7, "q\"k": "quote", "b\\s": true, "": "empty"}),
        ),
    ];
    for (peer, content, metadata) in rows {
        let r = app
            .post(
                "/v3/workspaces/w/sessions/s/messages",
                json!({"messages": [{"peer_id": peer, "content": content, "metadata": metadata}]}),
            )
            .await;
        assert_eq!(r.status, reqwest::StatusCode::CREATED, "{}", r.body);
    }
}

fn filters() -> Vec<Value> {
    vec![
        json!({}),
        json!({"peer_id": "alice"}),
        json!({"peer_id": ["alice", "carol"]}),
        json!({"peer_id": {"in": []}}),
        json!({"peer_id": {"ne": "bob"}}),
        json!({"peer_id": {"gt": "alice", "lte": "bob"}}),
        json!({"peer_id": {"contains": "LI"}}),
        json!({"peer_id": {"icontains": "ar"}}),
        json!({"session_id": "s"}),
        json!({"workspace_id": "w"}),
        json!({"workspace_id": "other"}),
        json!({"token_count": {"gte": 2}}),
        json!({"token_count": "0"}),
        json!({"created_at": {"gte": "2000-01-01"}}),
        json!({"created_at": {"lt": "2000-01-01T00:00:00Z"}}),
        json!({"metadata": {"tag": "a"}}),
        json!({"metadata": {"tag": null}}),
        json!({"metadata": {"flag": true}}),
        json!({"metadata": {"flag": false}}),
        json!({"metadata": {"n": 1}}),
        json!({"metadata": {"n": 2.5}}),
        json!({"metadata": {"n": {"gt": 1}}}),
        json!({"metadata": {"n": {"lte": 2.5}}}),
        json!({"metadata": {"n": {"ne": 1}}}),
        json!({"metadata": {"n": {"gte": "2"}}}),
        json!({"metadata": {"when": {"gte": "2024-01-01"}}}),
        json!({"metadata": {"when": {"lt": "2024-02-01"}}}),
        json!({"metadata": {"tag": {"in": ["a", "b"]}}}),
        json!({"metadata": {"flag": {"in": [true]}}}),
        json!({"metadata": {"tag": {"contains": "A"}}}),
        json!({"metadata": {"tag": {"ne": "a"}}}),
        json!({"metadata": {"flag": {"ne": true}}}),
        json!({"metadata": {"nested": {"k": "v"}}}),
        json!({"metadata": {"nested": {"list": [2]}}}),
        json!({"metadata": {"tags": ["y"]}}),
        json!({"metadata": {"tags": ["x", "y"]}}),
        json!({"metadata": {"contains": {"tag": "b"}}}),
        json!({"metadata": {"ne": null}}),
        json!({"metadata": {"tag": "*", "n": "*"}}),
        json!({"metadata": {"a.b": "dot"}}),
        json!({"metadata": {"x[0]": 7}}),
        json!({"metadata": {"x[0]": {"gt": 6}}}),
        json!({"metadata": {"q\"k": "quote"}}),
        json!({"metadata": {"q\"k": {"in": ["quote"]}}}),
        json!({"metadata": {"b\\s": true}}),
        json!({"metadata": {"": "empty"}}),
        json!({"metadata": {"a.b": {"contains": "O"}}}),
        json!({"OR": [{"peer_id": "bob"}, {"metadata": {"tag": "a"}}]}),
        json!({"AND": [{"peer_id": "alice"}, {"metadata": {"n": {"gte": 1}}}]}),
        json!({"NOT": [{"metadata": {"tag": "a"}}]}),
        json!({"NOT": [{"peer_id": "alice"}, {"peer_id": "bob"}]}),
        json!({"NOT": [{"metadata": {"n": {"gt": 0}}}]}),
        json!({"OR": [{"AND": [{"peer_id": "carol"}, {"NOT": [{"metadata": {"tag": "a"}}]}]}, {"metadata": {"flag": false}}]}),
    ]
}

async fn contents(app: &TestApp, filter: &Value, reverse: bool) -> Vec<String> {
    let path = format!("/v3/workspaces/w/sessions/s/messages/list?reverse={reverse}");
    let r = app.post(&path, json!({ "filters": filter })).await;
    assert_eq!(
        r.status,
        reqwest::StatusCode::OK,
        "filter {filter}: {}",
        r.body
    );
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn both_engines_agree_on_every_filter() {
    let sqlite = TestApp::sqlite().await;
    let Some(postgres) = TestApp::postgres().await else {
        return;
    };
    seed(&sqlite).await;
    seed(&postgres).await;
    for filter in filters() {
        for reverse in [false, true] {
            let a = contents(&sqlite, &filter, reverse).await;
            let b = contents(&postgres, &filter, reverse).await;
            assert_eq!(a, b, "engines disagree on {filter} (reverse={reverse})");
        }
    }
    // Spot-check the semantics themselves, not only agreement.
    for odd in [
        json!({"metadata": {"a.b": "dot"}}),
        json!({"metadata": {"x[0]": {"gt": 6}}}),
        json!({"metadata": {"q\"k": "quote"}}),
        json!({"metadata": {"b\\s": true}}),
    ] {
        assert_eq!(contents(&sqlite, &odd, false).await, ["odd keys"], "{odd}");
    }
    assert_eq!(
        contents(&sqlite, &json!({"metadata": {"tag": "a"}}), false).await,
        ["Hello World", ""]
    );
    assert_eq!(
        contents(
            &sqlite,
            &json!({"NOT": [{"metadata": {"tag": "a"}}]}),
            false
        )
        .await
        .len(),
        5
    );
    assert_eq!(
        contents(&sqlite, &json!({"metadata": {"n": {"gt": 1}}}), false).await,
        ["hello there 100%", ""]
    );
    assert_eq!(
        contents(
            &sqlite,
            &json!({"metadata": {"when": {"lt": "2024-02-01"}}}),
            false
        )
        .await,
        ["Hello World", "under_score"]
    );
    assert_eq!(
        contents(&sqlite, &json!({"peer_id": {"icontains": "ar"}}), false).await,
        ["nothing special", ""]
    );
}
