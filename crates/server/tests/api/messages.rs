use reqwest::StatusCode;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(create_list_get_update, |app: TestApp| async move {
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": [
                {"peer_id": "alice", "content": "hello there", "metadata": {"topic": "greeting", "n": 1}},
                {"peer_id": "bob", "content": "hi", "metadata": null, "created_at": "2023-01-01T12:00:00Z"}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let items = r.body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["content"], "hello there");
    assert_eq!(items[0]["session_id"], "s");
    assert_eq!(items[0]["workspace_id"], "w");
    assert_eq!(items[0]["token_count"], 2);
    assert_eq!(items[0]["id"].as_str().unwrap().len(), 21);
    assert_eq!(items[1]["metadata"], json!({}));
    assert_eq!(items[1]["created_at"], "2023-01-01T12:00:00Z");
    let id = items[0]["id"].as_str().unwrap().to_string();
    let members = app.get("/v3/workspaces/w/sessions/s/peers").await;
    assert_eq!(members.body["total"], 2, "authors join the session");
    let got = app
        .get(&format!("/v3/workspaces/w/sessions/s/messages/{id}"))
        .await;
    assert_eq!(got.body, items[0]);
    let upd = app
        .put(
            &format!("/v3/workspaces/w/sessions/s/messages/{id}"),
            json!({"metadata": {"edited": true}}),
        )
        .await;
    assert_eq!(upd.body["metadata"], json!({"edited": true}));
    assert_eq!(upd.body["content"], "hello there");
    let keep = app
        .put(
            &format!("/v3/workspaces/w/sessions/s/messages/{id}"),
            json!({"metadata": null}),
        )
        .await;
    assert_eq!(keep.body["metadata"], json!({"edited": true}));
    let missing = app.get("/v3/workspaces/w/sessions/s/messages/nope").await;
    assert_eq!(
        missing.body,
        json!({"detail": "Message with ID nope not found"})
    );
    let missing = app
        .put(
            "/v3/workspaces/w/sessions/s/messages/nope",
            json!({"metadata": {}}),
        )
        .await;
    assert_eq!(missing.body, json!({"detail": "Message not found"}));
    let legacy = app
        .post(
            "/v3/workspaces/w/sessions/s/messages/",
            json!({"messages": [{"peer_id": "a", "content": "x"}]}),
        )
        .await;
    assert_eq!(legacy.status, StatusCode::CREATED);
});

both_engines!(
    list_filters_reverse_and_unknown_session,
    |app: TestApp| async move {
        for i in 0..5 {
            let peer = if i % 2 == 0 { "alice" } else { "bob" };
            app.post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": [{"peer_id": peer, "content": format!("m{i}"), "metadata": {"i": i, "tag": if i < 2 {"early"} else {"late"}}}]}),
        )
        .await;
        }
        let all = app
            .post("/v3/workspaces/w/sessions/s/messages/list", json!({}))
            .await;
        let contents: Vec<&str> = all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents, ["m0", "m1", "m2", "m3", "m4"]);
        let rev = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list?reverse=true&size=2",
                json!({}),
            )
            .await;
        assert_eq!(rev.body["items"][0]["content"], "m4");
        assert_eq!(rev.body["pages"], 3);
        let by_peer = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list",
                json!({"filters": {"peer_id": "bob"}}),
            )
            .await;
        assert_eq!(by_peer.body["total"], 2);
        let by_meta = app
        .post("/v3/workspaces/w/sessions/s/messages/list", json!({"filters": {"OR": [{"metadata": {"tag": "early"}}, {"metadata": {"i": {"gte": 4}}}]}}))
        .await;
        assert_eq!(by_meta.body["total"], 3);
        let not = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list",
                json!({"filters": {"NOT": [{"peer_id": "alice"}]}}),
            )
            .await;
        assert_eq!(not.body["total"], 2);
        let tokens = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list",
                json!({"filters": {"token_count": {"gte": 1}}}),
            )
            .await;
        assert_eq!(tokens.body["total"], 5);
        let empty_in = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list",
                json!({"filters": {"peer_id": {"in": []}}}),
            )
            .await;
        assert_eq!(empty_in.body["total"], 0);
        let unknown = app
            .post("/v3/workspaces/w/sessions/nobody/messages/list", json!({}))
            .await;
        assert_eq!(unknown.status, StatusCode::OK);
        assert_eq!(unknown.body["total"], 0);
    }
);

both_engines!(batch_limits_and_field_errors, |app: TestApp| async move {
    let empty = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": []}),
        )
        .await;
    assert_eq!(empty.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(empty.body["detail"][0]["type"], "too_short");
    let hundred: Vec<_> = (0..100)
        .map(|i| json!({"peer_id": "p", "content": format!("{i}")}))
        .collect();
    let ok = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": hundred}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    let too_many: Vec<_> = (0..101)
        .map(|i| json!({"peer_id": "p", "content": format!("{i}")}))
        .collect();
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": too_many}),
        )
        .await;
    assert_eq!(r.body["detail"][0]["type"], "too_long");
    assert_eq!(
        r.body["detail"][0]["msg"],
        "List should have at most 100 items after validation, not 101"
    );
    let long = "x".repeat(25_001);
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": [{"peer_id": "p", "content": long}]}),
        )
        .await;
    assert_eq!(r.body["detail"][0]["type"], "string_too_long");
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "messages", 0, "content"])
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": [{"content": "x"}, {"peer_id": "p"}]}),
        )
        .await;
    assert_eq!(r.body["detail"][0]["type"], "missing");
    assert_eq!(
        r.body["detail"][0]["loc"],
        json!(["body", "messages", 0, "peer_id"])
    );
    assert_eq!(
        r.body["detail"][1]["loc"],
        json!(["body", "messages", 1, "content"])
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages",
            json!({"messages": [{"peer_id": "bad name", "content": "x"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"detail": "Peer name(s) ['bad name'] must match pattern ^[a-zA-Z0-9_-]+$"})
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions",
            json!({"id": "s2", "peers": {"x.y": {}}}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"detail": "Peer name(s) ['x.y'] must match pattern ^[a-zA-Z0-9_-]+$"})
    );
    let count = app
        .post("/v3/workspaces/w/sessions/s/messages/list", json!({}))
        .await;
    assert_eq!(count.body["total"], 100, "rejected batches wrote nothing");
});

both_engines!(
    unfiltered_pages_match_the_general_path,
    |app: TestApp| async move {
        for b in 0..3 {
            let batch: Vec<_> = (0..40)
                .map(|i| json!({"peer_id": "p", "content": format!("{b}-{i}")}))
                .collect();
            app.post(
                "/v3/workspaces/w/sessions/s/messages",
                json!({"messages": batch}),
            )
            .await;
        }
        app.call(
            reqwest::Method::POST,
            "/v3/workspaces/w/sessions/s/clone",
            None,
        )
        .await;
        for reverse in [false, true] {
            for page in 1..=4 {
                let path = format!(
                    "/v3/workspaces/w/sessions/s/messages/list?page={page}&size=33&reverse={reverse}"
                );
                let fast = app.post(&path, json!({})).await;
                let general = app
                    .post(&path, json!({"filters": {"token_count": {"gte": 0}}}))
                    .await;
                assert_eq!(fast.body, general.body, "page {page} reverse {reverse}");
                assert_eq!(fast.body["total"], 120);
            }
        }
        let last = app
            .post(
                "/v3/workspaces/w/sessions/s/messages/list?page=4&size=33",
                json!({}),
            )
            .await;
        assert_eq!(last.body["items"].as_array().unwrap().len(), 21);
        assert_eq!(last.body["items"][20]["content"], "2-39");
    }
);
