use reqwest::StatusCode;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    get_or_create_is_201_then_200_unchanged,
    |app: TestApp| async move {
        let r = app
            .post(
                "/v3/workspaces",
                json!({"id": "w1", "metadata": {"a": 1}, "configuration": {"x": 1}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["id"], "w1");
        assert_eq!(r.body["metadata"], json!({"a": 1}));
        assert_eq!(r.body["configuration"], json!({"x": 1}));
        assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));
        let again = app
            .post(
                "/v3/workspaces",
                json!({"name": "w1", "metadata": {"b": 2}}),
            )
            .await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(
            again.body["metadata"],
            json!({"a": 1}),
            "an existing workspace is returned unchanged"
        );
    }
);

both_engines!(
    update_replaces_metadata_merges_configuration_and_creates,
    |app: TestApp| async move {
        app.post(
            "/v3/workspaces",
            json!({"id": "w2", "metadata": {"a": 1}, "configuration": {"x": 1, "y": 2}}),
        )
        .await;
        let r = app
            .put(
                "/v3/workspaces/w2",
                json!({"metadata": {"b": 2}, "configuration": {"y": 3}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["metadata"], json!({"b": 2}));
        assert_eq!(r.body["configuration"], json!({"x": 1, "y": 3}));
        let unchanged = app.put("/v3/workspaces/w2", json!({})).await;
        assert_eq!(unchanged.body["metadata"], json!({"b": 2}));
        let created = app
            .put("/v3/workspaces/fresh", json!({"metadata": {"k": "v"}}))
            .await;
        assert_eq!(created.status, StatusCode::OK);
        assert_eq!(created.body["metadata"], json!({"k": "v"}));
        let listed = app
            .post("/v3/workspaces/list", json!({"filters": {"id": "fresh"}}))
            .await;
        assert_eq!(listed.body["total"], 1);
    }
);

both_engines!(
    list_paginates_orders_and_filters,
    |app: TestApp| async move {
        for i in 0..7 {
            app.post(
                "/v3/workspaces",
                json!({"id": format!("ws{i}"), "metadata": {"n": i}}),
            )
            .await;
        }
        let page = app
            .post("/v3/workspaces/list?page=2&size=3", json!({}))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.body["total"], 7);
        assert_eq!(page.body["pages"], 3);
        assert_eq!(page.body["page"], 2);
        assert_eq!(page.body["size"], 3);
        let ids: Vec<&str> = page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ws3", "ws4", "ws5"]);
        let reversed = app
            .post(
                "/v3/workspaces/list?reverse=true&size=2",
                json!({"filters": null}),
            )
            .await;
        assert_eq!(reversed.body["items"][0]["id"], "ws6");
        let filtered = app
            .post(
                "/v3/workspaces/list",
                json!({"filters": {"metadata": {"n": {"gte": 5}}}}),
            )
            .await;
        assert_eq!(filtered.body["total"], 2);
        let beyond = app.post("/v3/workspaces/list?page=9", json!({})).await;
        assert_eq!(beyond.body["items"], json!([]));
        assert_eq!(beyond.body["total"], 7);
        let none = app
            .call(reqwest::Method::POST, "/v3/workspaces/list", None)
            .await;
        assert_eq!(none.status, StatusCode::OK);
    }
);
