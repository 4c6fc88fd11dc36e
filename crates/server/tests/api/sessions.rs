use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    session_get_or_create_update_and_list,
    |app: TestApp| async move {
        let r = app
        .post("/v3/workspaces/w/sessions", json!({"id": "s", "metadata": {"a": 1}, "configuration": {"summary": {"enabled": false}}, "peers": {"alice": {"observe_others": true}}}))
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["is_active"], true);
        assert_eq!(
            r.body["configuration"],
            json!({"summary": {"enabled": false}})
        );
        let again = app
            .post(
                "/v3/workspaces/w/sessions",
                json!({"id": "s", "configuration": {"dream": {"enabled": true}}}),
            )
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body["metadata"], json!({"a": 1}));
        assert_eq!(
            again.body["configuration"],
            json!({"summary": {"enabled": false}, "dream": {"enabled": true}})
        );
        let upd = app
            .put("/v3/workspaces/w/sessions/s", json!({"metadata": {}}))
            .await;
        assert_eq!(upd.body["metadata"], json!({}));
        let cfg = app
            .get("/v3/workspaces/w/sessions/s/peers/alice/config")
            .await;
        assert_eq!(
            cfg.body,
            json!({"observe_me": null, "observe_others": true})
        );
        app.post("/v3/workspaces/w/sessions", json!({"id": "t"}))
            .await;
        let list = app
            .post(
                "/v3/workspaces/w/sessions/list",
                json!({"filters": {"id": "t"}}),
            )
            .await;
        assert_eq!(list.body["total"], 1);
        let active = app
            .post(
                "/v3/workspaces/w/sessions/list",
                json!({"filters": {"is_active": true}}),
            )
            .await;
        assert_eq!(active.body["total"], 2);
    }
);

both_engines!(
    observer_limit_is_400_and_writes_nothing,
    |app: TestApp| async move {
        let peers: serde_json::Map<String, serde_json::Value> = (0..11)
            .map(|i| (format!("p{i}"), json!({"observe_others": true})))
            .collect();
        let r = app
            .post(
                "/v3/workspaces/w/sessions",
                json!({"id": "big", "peers": peers}),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("11 observers") && detail.contains("Maximum allowed is 10 observers"),
            "{detail}"
        );
        let list = app.post("/v3/workspaces/w/sessions/list", json!({})).await;
        assert_eq!(list.body["total"], 0);
        let plain: serde_json::Map<String, serde_json::Value> =
            (0..11).map(|i| (format!("p{i}"), json!({}))).collect();
        let ok = app
            .post(
                "/v3/workspaces/w/sessions",
                json!({"id": "big", "peers": plain}),
            )
            .await;
        assert_eq!(ok.status, StatusCode::CREATED);
    }
);

both_engines!(
    membership_add_set_remove_and_config,
    |app: TestApp| async move {
        let add = app
            .post(
                "/v3/workspaces/w/sessions/s/peers",
                json!({"alice": {}, "bob": {"observe_me": false}}),
            )
            .await;
        assert_eq!(add.status, StatusCode::OK);
        assert_eq!(add.body["id"], "s");
        let members = app.get("/v3/workspaces/w/sessions/s/peers").await;
        assert_eq!(members.body["total"], 2);
        let set = app
            .put("/v3/workspaces/w/sessions/s/peers", json!({"carol": {}}))
            .await;
        assert_eq!(set.status, StatusCode::OK);
        let members = app.get("/v3/workspaces/w/sessions/s/peers").await;
        let ids: Vec<&str> = members.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["carol"]);
        let left = app
            .get("/v3/workspaces/w/sessions/s/peers/bob/config")
            .await;
        assert_eq!(
            left.status,
            StatusCode::OK,
            "left members keep their membership row"
        );
        let put = app
            .call(
                Method::PUT,
                "/v3/workspaces/w/sessions/s/peers/carol/config",
                Some(json!({"observe_others": true})),
            )
            .await;
        assert_eq!(put.status, StatusCode::NO_CONTENT);
        let cfg = app
            .get("/v3/workspaces/w/sessions/s/peers/carol/config")
            .await;
        assert_eq!(
            cfg.body,
            json!({"observe_me": null, "observe_others": true})
        );
        let rm = app
            .call(
                Method::DELETE,
                "/v3/workspaces/w/sessions/s/peers",
                Some(json!(["carol"])),
            )
            .await;
        assert_eq!(rm.status, StatusCode::OK);
        assert_eq!(
            app.get("/v3/workspaces/w/sessions/s/peers").await.body["total"],
            0
        );
        let missing = app
            .put("/v3/workspaces/w/sessions/nope/peers", json!({"a": {}}))
            .await;
        assert_eq!(
            missing.body,
            json!({"detail": "Session nope not found in workspace w"})
        );
        let nobody = app
            .get("/v3/workspaces/w/sessions/s/peers/zed/config")
            .await;
        assert_eq!(
            nobody.body,
            json!({"detail": "Peer zed not found in workspace w"})
        );
        app.post("/v3/workspaces/w/peers", json!({"id": "dave"}))
            .await;
        let no_row = app
            .get("/v3/workspaces/w/sessions/s/peers/dave/config")
            .await;
        assert_eq!(
            no_row.body,
            json!({"detail": "Session peer dave not found in session s in workspace w"})
        );
        let unknown = app.get("/v3/workspaces/w/sessions/ghost/peers").await;
        assert_eq!(unknown.body["total"], 0);
    }
);

both_engines!(
    clone_copies_messages_up_to_cutoff,
    |app: TestApp| async move {
        app.post(
            "/v3/workspaces/w/sessions",
            json!({"id": "src", "metadata": {"m": 1}}),
        )
        .await;
        let ids = app
            .add_messages("w", "src", &[("a", "one"), ("b", "two"), ("a", "three")])
            .await;
        let full = app
            .call(Method::POST, "/v3/workspaces/w/sessions/src/clone", None)
            .await;
        assert_eq!(full.status, StatusCode::CREATED);
        assert_ne!(full.body["id"], "src");
        assert_eq!(full.body["metadata"], json!({"m": 1}));
        let new_id = full.body["id"].as_str().unwrap().to_string();
        let msgs = app
            .post(
                &format!("/v3/workspaces/w/sessions/{new_id}/messages/list"),
                json!({}),
            )
            .await;
        let contents: Vec<&str> = msgs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect();
        assert_eq!(contents, ["one", "two", "three"]);
        let cut = app
            .call(
                Method::POST,
                &format!("/v3/workspaces/w/sessions/src/clone?message_id={}", ids[1]),
                None,
            )
            .await;
        let cut_id = cut.body["id"].as_str().unwrap().to_string();
        let msgs = app
            .post(
                &format!("/v3/workspaces/w/sessions/{cut_id}/messages/list"),
                json!({}),
            )
            .await;
        assert_eq!(msgs.body["total"], 2);
        let more = app.add_messages("w", &cut_id, &[("a", "four")]).await;
        assert_eq!(more.len(), 1);
        assert_eq!(
            app.post(
                &format!("/v3/workspaces/w/sessions/{cut_id}/messages/list"),
                json!({})
            )
            .await
            .body["items"][2]["content"],
            "four"
        );
        let missing = app
            .call(Method::POST, "/v3/workspaces/w/sessions/none/clone", None)
            .await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let bad_cut = app
            .call(
                Method::POST,
                "/v3/workspaces/w/sessions/src/clone?message_id=nope",
                None,
            )
            .await;
        assert_eq!(bad_cut.status, StatusCode::NOT_FOUND);
    }
);

both_engines!(context_fits_the_token_budget, |app: TestApp| async move {
    app.add_messages(
        "w",
        "s",
        &[
            ("a", "hello world"),
            ("b", "hello world"),
            ("a", "hello world"),
        ],
    )
    .await;
    let all = app.get("/v3/workspaces/w/sessions/s/context").await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["id"], "s");
    assert_eq!(all.body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(all.body["summary"], json!(null));
    assert_eq!(all.body["peer_card"], json!(null));
    let two = app
        .get("/v3/workspaces/w/sessions/s/context?tokens=5")
        .await;
    let msgs = two.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "each message is 2 tokens");
    assert_eq!(msgs[1]["peer_id"], "a", "newest last");
    let none = app
        .get("/v3/workspaces/w/sessions/s/context?tokens=1")
        .await;
    assert_eq!(none.body["messages"], json!([]));
    let too_many = app
        .get("/v3/workspaces/w/sessions/s/context?tokens=100001")
        .await;
    assert_eq!(too_many.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad = app
        .get("/v3/workspaces/w/sessions/s/context?peer_perspective=a")
        .await;
    assert_eq!(
        bad.body,
        json!({"detail": "peer_target must be provided if peer_perspective is provided"})
    );
    app.put(
        "/v3/workspaces/w/peers/a/card",
        json!({"peer_card": ["card line"]}),
    )
    .await;
    let target = app
        .get("/v3/workspaces/w/sessions/s/context?peer_target=a")
        .await;
    assert_eq!(target.body["peer_card"], json!(["card line"]));
    assert_eq!(target.body["peer_representation"], "");
    let unknown = app.get("/v3/workspaces/w/sessions/ghost/context").await;
    assert_eq!(unknown.body["messages"], json!([]));

    // Long sessions are read back in growing rounds; the cut is exact across them.
    let contents: Vec<String> = (0..300).map(|i| format!("line {i}")).collect();
    for chunk in contents.chunks(100) {
        let items: Vec<(&str, &str)> = chunk.iter().map(|c| ("a", c.as_str())).collect();
        app.add_messages("w", "long", &items).await;
    }
    let cut = app
        .get("/v3/workspaces/w/sessions/long/context?tokens=601")
        .await;
    let msgs = cut.body["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 200, "\"line NNN\" is 3 tokens");
    assert_eq!(msgs[0]["content"], "line 100");
    assert_eq!(msgs[199]["content"], "line 299");
    let whole = app.get("/v3/workspaces/w/sessions/long/context").await;
    assert_eq!(whole.body["messages"].as_array().unwrap().len(), 300);
});

both_engines!(
    configuration_is_checked_and_normalised,
    |app: TestApp| async move {
        let r = app
        .post("/v3/workspaces/w/sessions", json!({"id": "s", "configuration": {"summary": {"messages_per_short_summary": 30, "messages_per_long_summary": 20}}}))
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body["detail"][0]["msg"],
            "Value error, messages_per_short_summary must be less than messages_per_long_summary"
        );
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", "configuration", "summary"])
        );
        let r = app.put("/v3/workspaces/w", json!({"configuration": {"reasoning": {"enabled": "no", "extra": 1}, "custom": true}})).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body["configuration"],
            json!({"custom": true, "reasoning": {"enabled": false}})
        );
        let r = app.post("/v3/workspaces/w/sessions/s/messages", json!({"messages": [{"peer_id": "p", "content": "x", "configuration": {"reasoning": []}}]})).await;
        assert_eq!(r.body["detail"][0]["type"], "model_type");
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", "messages", 0, "configuration", "reasoning"])
        );
    }
);
