use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    names_are_checked_with_pydantic_errors,
    |app: TestApp| async move {
        let r = app.post("/v3/workspaces", json!({"id": ""})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body,
            json!({"detail": [{"type": "string_too_short", "loc": ["body", "id"], "msg": "String should have at least 1 character", "input": "", "ctx": {"min_length": 1}}]})
        );
        let long = "a".repeat(513);
        let r = app.post("/v3/workspaces", json!({"id": long})).await;
        assert_eq!(r.body["detail"][0]["type"], "string_too_long");
        assert_eq!(
            r.body["detail"][0]["msg"],
            "String should have at most 512 characters"
        );
        let r = app.post("/v3/workspaces", json!({"id": "bad name"})).await;
        assert_eq!(r.body["detail"][0]["type"], "string_pattern_mismatch");
        let r = app.post("/v3/workspaces", json!({"metadata": {}})).await;
        assert_eq!(
            r.body,
            json!({"detail": [{"type": "missing", "loc": ["body", "id"], "msg": "Field required", "input": {"metadata": {}}}]})
        );
        let r = app
            .post(
                "/v3/workspaces/w/peers",
                json!({"id": "p", "metadata": [1]}),
            )
            .await;
        assert_eq!(r.body["detail"][0]["type"], "dict_type");
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", "metadata"]));
        let r = app.put("/v3/workspaces/bad.name", json!({})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let listed = app.post("/v3/workspaces/list", json!({})).await;
        assert_eq!(
            listed.body["total"], 0,
            "nothing was written by rejected requests"
        );
    }
);

both_engines!(metadata_limits_and_nul_bytes, |app: TestApp| async move {
    let deep = json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
    let r = app
        .post("/v3/workspaces", json!({"id": "w", "metadata": deep}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["type"], "value_error");
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Value error, Metadata nesting exceeds maximum depth of 5"
    );
    let many: serde_json::Map<String, serde_json::Value> =
        (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
    let r = app
        .post("/v3/workspaces", json!({"id": "w", "metadata": many}))
        .await;
    assert_eq!(
        r.body["detail"][0]["msg"],
        "Value error, Metadata exceeds maximum of 100 top-level keys"
    );
    let r = app
        .post(
            "/v3/workspaces",
            json!({"id": "w", "metadata": {"k\u{0}": "a\u{0}b"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["metadata"], json!({"k": "ab"}));
});

both_engines!(malformed_json_and_bad_paging, |app: TestApp| async move {
    let r = app.raw(Method::POST, "/v3/workspaces", "{\"id\": ").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["type"], "json_invalid");
    assert_eq!(r.body["detail"][0]["msg"], "JSON decode error");
    let r = app
        .post("/v3/workspaces/list?page=0&size=101", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["detail"][0]["type"], "greater_than_equal");
    assert_eq!(r.body["detail"][0]["loc"], json!(["query", "page"]));
    assert_eq!(r.body["detail"][1]["type"], "less_than_equal");
    let r = app
        .post("/v3/workspaces/list?reverse=maybe", json!({}))
        .await;
    assert_eq!(r.body["detail"][0]["type"], "bool_parsing");
    let r = app
        .post("/v3/workspaces/list", json!({"filters": "x"}))
        .await;
    assert_eq!(r.body["detail"][0]["type"], "dict_type");
    assert_eq!(r.body["detail"][0]["loc"], json!(["body", "filters"]));
});

both_engines!(filter_errors_are_422_strings, |app: TestApp| async move {
    let r = app
        .post(
            "/v3/workspaces/w/sessions/list",
            json!({"filters": {"id": {"regex": "x"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("Invalid filter for column 'id': unsupported operator(s) ['regex']")
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions/list",
            json!({"filters": {"id": {"gt": "a", "like": "b"}}}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"detail": "Unsupported comparison operator: like"})
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions/s/messages/list",
            json!({"filters": {"id": "x"}}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"detail": "Column 'id' is not allowed to be filtered on or does not exist on Message"})
    );
});

both_engines!(oversized_bodies_get_413, |app: TestApp| async move {
    let big = "x".repeat(engram_server::config::DEFAULT_MAX_BODY_BYTES + 1);
    let r = app
        .post(
            "/v3/workspaces",
            json!({"id": "w", "metadata": {"big": big}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body["detail"].is_string());
});

both_engines!(health_openapi_and_docs, |app: TestApp| async move {
    let r = app.get("/health").await;
    assert_eq!(r.body, json!({"status": "ok"}));
    let doc = app.get("/openapi.json").await;
    let paths = doc.body["paths"].as_object().unwrap();
    for p in [
        "/v3/workspaces",
        "/v3/workspaces/list",
        "/v3/workspaces/{workspace_id}",
        "/v3/workspaces/{workspace_id}/peers/{peer_id}/card",
        "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers/{peer_id}/config",
        "/v3/workspaces/{workspace_id}/sessions/{session_id}/context",
        "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages/{message_id}",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    let docs = app.call(Method::GET, "/docs", None).await;
    assert_eq!(docs.status, StatusCode::OK);
});

both_engines!(nul_bytes_never_reach_the_store, |app: TestApp| async move {
    let r = app.get("/v3/workspaces/w/peers/a%00b/card").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.body,
        json!({"detail": "Path and query parameters must not contain NUL (0x00) bytes"})
    );
    let r = app
        .post(
            "/v3/workspaces/w/sessions/list",
            json!({"filters": {"id": "a\u{0}b", "metadata": {"k\u{0}": "v\u{0}"}}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["total"], 0);
    let r = app
        .put(
            "/v3/workspaces/w/peers/p/card",
            json!({"peer_card": ["a\u{0}b"]}),
        )
        .await;
    assert_eq!(r.body, json!({"peer_card": ["ab"]}));
    let r = app
        .post(
            "/v3/workspaces/w/peers",
            json!({"id": "p", "configuration": {"x\u{0}": "y\u{0}"}}),
        )
        .await;
    assert_eq!(r.body["configuration"], json!({"x": "y"}));
});
