use reqwest::StatusCode;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    peer_get_or_create_update_and_list,
    |app: TestApp| async move {
        let r = app
            .post(
                "/v3/workspaces/w/peers",
                json!({"id": "alice", "metadata": {"role": "user"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["workspace_id"], "w");
        assert_eq!(r.body["configuration"], json!({}));
        let again = app
            .post(
                "/v3/workspaces/w/peers",
                json!({"id": "alice", "configuration": {"observe_me": false}}),
            )
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["metadata"], json!({"role": "user"}));
        assert_eq!(again.body["configuration"], json!({"observe_me": false}));
        let upd = app
            .put(
                "/v3/workspaces/w/peers/alice",
                json!({"configuration": {"x": 1}}),
            )
            .await;
        assert_eq!(
            upd.body["configuration"],
            json!({"x": 1}),
            "peer configuration is replaced wholesale"
        );
        app.put(
            "/v3/workspaces/w/peers/bob",
            json!({"metadata": {"role": "agent"}}),
        )
        .await;
        let list = app
            .post(
                "/v3/workspaces/w/peers/list",
                json!({"filters": {"metadata": {"role": "agent"}}}),
            )
            .await;
        assert_eq!(list.body["total"], 1);
        assert_eq!(list.body["items"][0]["id"], "bob");
        let all = app
            .post("/v3/workspaces/w/peers/list", json!({"kind": "all"}))
            .await;
        assert_eq!(all.body["total"], 2);
        let scopes = app
            .post("/v3/workspaces/w/peers/list", json!({"kind": "scope"}))
            .await;
        assert_eq!(scopes.body["total"], 0);
        let bad = app
            .post("/v3/workspaces/w/peers/list", json!({"kind": "x"}))
            .await;
        assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
);

both_engines!(peer_cards, |app: TestApp| async move {
    let missing = app.get("/v3/workspaces/w/peers/nobody/card").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!({"detail": "Peer nobody not found in workspace w"})
    );
    let set = app
        .put(
            "/v3/workspaces/w/peers/alice/card",
            json!({"peer_card": ["likes tea", "lives in Oslo"]}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(
        set.body,
        json!({"peer_card": ["likes tea", "lives in Oslo"]})
    );
    assert_eq!(
        app.get("/v3/workspaces/w/peers/alice/card").await.body["peer_card"][1],
        "lives in Oslo"
    );
    assert_eq!(
        app.get("/v3/workspaces/w/peers/alice/card?target=bob")
            .await
            .body,
        json!({"peer_card": null})
    );
    app.put(
        "/v3/workspaces/w/peers/alice/card?target=bob",
        json!({"peer_card": ["bob is tall"]}),
    )
    .await;
    assert_eq!(
        app.get("/v3/workspaces/w/peers/alice/card?target=bob")
            .await
            .body["peer_card"],
        json!(["bob is tall"])
    );
    assert_eq!(
        app.get("/v3/workspaces/w/peers/alice/card").await.body["peer_card"][0],
        "likes tea"
    );
    let bad = app
        .put(
            "/v3/workspaces/w/peers/alice/card",
            json!({"peer_card": "x"}),
        )
        .await;
    assert_eq!(bad.body["detail"][0]["type"], "list_type");
});

both_engines!(peer_sessions_lists_memberships, |app: TestApp| async move {
    app.post(
        "/v3/workspaces/w/sessions",
        json!({"id": "s1", "peers": {"alice": {}}}),
    )
    .await;
    app.post(
        "/v3/workspaces/w/sessions",
        json!({"id": "s2", "peers": {"bob": {}}}),
    )
    .await;
    app.add_messages("w", "s3", &[("alice", "hi")]).await;
    let r = app
        .post("/v3/workspaces/w/peers/alice/sessions", json!({}))
        .await;
    let ids: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s1", "s3"]);
    let none = app
        .post("/v3/workspaces/w/peers/ghost/sessions", json!({}))
        .await;
    assert_eq!(none.body["total"], 0);
});
