//! The API contract: the OpenAPI document describes every operation (its path
//! parameters, the error statuses and bodies it can answer with), every error is JSON in
//! the reference's shape, and validation errors name the key the client sent.

use std::collections::HashSet;

use engram_core::auth::Access;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn templated(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// Resolves a `$ref` to a component schema.
fn schema_name(response: &Value) -> Option<&str> {
    response
        .pointer("/content/application~1json/schema/$ref")?
        .as_str()?
        .strip_prefix("#/components/schemas/")
}

both_engines!(
    openapi_describes_every_operation,
    |app: TestApp| async move {
        let doc = app.get("/openapi.json").await.body;
        let ops = operations(&doc);
        assert!(ops.len() > 30, "only {} operations", ops.len());
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let mut problems = vec![];
        let mut ids = HashSet::new();
        for (method, path, op) in &ops {
            let name = format!("{} {path}", method.to_uppercase());
            let id = op["operationId"].as_str().unwrap_or_default();
            if !ids.insert(id.to_string()) {
                problems.push(format!("{name}: operationId {id} is not unique"));
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in templated(path) {
                let declared = params
                    .iter()
                    .any(|d| d["name"] == p && d["in"] == "path" && d["required"] == true);
                if !declared {
                    problems.push(format!("{name}: path parameter {p} not declared"));
                }
            }
            let responses = op["responses"].as_object().expect("responses");
            let mut required = vec!["422"];
            let access = engram_server::scopes::declared(method, path);
            if access != Some(Access::Public) {
                required.push("401");
            }
            if op.get("requestBody").is_some() {
                required.push("413");
            }
            if path.starts_with("/v3/workspaces/") || path == "/v3/workspaces" {
                required.push("503");
                let reads = ["/list", "/search", "/{peer_id}/sessions"]
                    .iter()
                    .any(|l| path.ends_with(l));
                if method != "get" && !(method == "post" && reads) {
                    required.push("507");
                }
            }
            for status in required {
                if !responses.contains_key(status) {
                    problems.push(format!("{name}: {status} not documented"));
                }
            }
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let want = if status == "422" {
                    "UnprocessableDetail"
                } else {
                    "ErrorDetail"
                };
                match schema_name(response) {
                    Some(s) if s == want && schemas.contains_key(s) => {}
                    other => problems.push(format!("{name}: {status} body is {other:?}")),
                }
            }
            let reads_body = !(path == "/v3/keys" || path.ends_with("/clone"));
            if matches!(method.as_str(), "post" | "put") && reads_body {
                let body = op.pointer("/requestBody/content/application~1json/schema");
                if body.is_none_or(|b| b == &json!({"type": "object"})) {
                    problems.push(format!("{name}: request body is not described"));
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
);

both_engines!(
    create_and_delete_are_linked_both_ways,
    |app: TestApp| async move {
        let doc = app.get("/openapi.json").await.body;
        let create = &doc["paths"]["/v3/workspaces/{workspace_id}/sessions"]["post"];
        let delete = &doc["paths"]["/v3/workspaces/{workspace_id}/sessions/{session_id}"]["delete"];
        let delete_id = delete["operationId"].as_str().expect("delete id");
        let link = &create["responses"]["201"]["links"][delete_id];
        assert_eq!(link["parameters"]["path.session_id"], "$response.body#/id");
        assert_eq!(
            link["parameters"]["path.workspace_id"],
            "$request.path.workspace_id"
        );
        let create_id = create["operationId"].as_str().expect("create id");
        let back = &delete["responses"]["202"]["links"][create_id];
        assert_eq!(
            back["requestBody"],
            json!({"id": "$request.path.session_id"})
        );
    }
);

both_engines!(
    unknown_routes_and_methods_answer_json,
    |app: TestApp| async move {
        // Owned whole: the server stops when the app is dropped.
        let app = app;
        let client = reqwest::Client::new();
        let cases = [
            (
                Method::GET,
                "/no/such/route",
                StatusCode::NOT_FOUND,
                "Not Found",
            ),
            (
                Method::POST,
                "/v3/nothing",
                StatusCode::NOT_FOUND,
                "Not Found",
            ),
            (
                Method::DELETE,
                "/v3/workspaces/list",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            ),
            (
                Method::PATCH,
                "/health",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
            ),
        ];
        for (method, path, status, detail) in cases {
            let r = client
                .request(method.clone(), format!("{}{path}", app.base))
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), status, "{method} {path}");
            assert_eq!(
                r.headers()["content-type"],
                "application/json",
                "{method} {path}"
            );
            let body: Value = r.json().await.expect("a JSON body");
            assert_eq!(body, json!({ "detail": detail }), "{method} {path}");
        }
        // A path segment that is not UTF-8 once decoded: axum's own rejection.
        let r = client
            .get(format!("{}/v3/workspaces/w/sessions/%FF/peers", app.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.expect("a JSON body");
        assert!(body["detail"].is_string(), "{body}");
    }
);

both_engines!(
    validation_errors_name_the_key_sent,
    |app: TestApp| async move {
        let r = app.post("/v3/workspaces", json!({"name": ""})).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body,
            json!({"detail": [{"type": "string_too_short", "loc": ["body", "name"],
                "msg": "String should have at least 1 character", "input": "",
                "ctx": {"min_length": 1}}]})
        );
        let r = app
            .post("/v3/workspaces/w/peers", json!({"name": "bad name"}))
            .await;
        assert_eq!(r.body["detail"][0]["type"], "string_pattern_mismatch");
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", "name"]));
        let r = app
            .post("/v3/workspaces/w/sessions", json!({"name": 7}))
            .await;
        assert_eq!(
            r.body,
            json!({"detail": [{"type": "string_type", "loc": ["body", "name"],
                "msg": "Input should be a valid string", "input": 7}]})
        );
        // The alias wins when both are sent, as pydantic reads it.
        let r = app
            .post("/v3/workspaces/w/sessions", json!({"id": "", "name": "ok"}))
            .await;
        assert_eq!(r.body["detail"][0]["loc"], json!(["body", "id"]));
        let r = app
            .post(
                "/v3/workspaces/w/sessions",
                json!({"id": "s", "peer_names": {"alice": 5}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", "peer_names", "alice"])
        );
        let r = app
            .post(
                "/v3/workspaces/w/sessions/s/messages",
                json!({"messages": [{"content": "hi", "peer_name": 5}]}),
            )
            .await;
        assert_eq!(
            r.body["detail"][0]["loc"],
            json!(["body", "messages", 0, "peer_name"])
        );
        let listed = app.post("/v3/workspaces/list", json!({})).await;
        assert_eq!(listed.body["total"], 0, "rejected requests wrote nothing");
    }
);

// Found by schemathesis on PostgreSQL: jsonb prints f64::MAX as 309 decimal digits,
// which serde_json's fast float parser overflowed on every later read (500).
both_engines!(extreme_numbers_round_trip, |app: TestApp| async move {
    let numbers = json!({"max": f64::MAX, "min": f64::MIN, "tiny": 5e-324, "big": 1e300});
    let r = app
        .post(
            "/v3/workspaces/w/peers",
            json!({"id": "p", "metadata": numbers, "configuration": numbers}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["metadata"], numbers);
    let listed = app.post("/v3/workspaces/w/peers/list", json!({})).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["metadata"], numbers);
    assert_eq!(listed.body["items"][0]["configuration"], numbers);
});
