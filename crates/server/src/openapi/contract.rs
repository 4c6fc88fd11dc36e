//! Completes the generated document with what every operation shares, so the annotations
//! state only what is particular to a route: the path parameters of its template, the
//! error statuses the layers and extractors in front of every handler can answer with
//! (and their bodies), the paging parameters of paginated routes, and the links that let
//! a client (or a fuzzer) chain a create to the operations on what it created.

use engram_core::auth::Access;
use serde_json::{Map, Value, json};

use crate::scopes;

pub const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Routes that never reach the database, so never answer 503.
const NO_STORE: [&str; 4] = ["/health", "/openapi.json", "/docs", "/v3/keys"];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

/// The templated names of a path, in order: `/a/{x}/b/{y}` gives `x`, `y`.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn error_schemas() -> Value {
    json!({
        "ErrorDetail": {
            "type": "object",
            "description": "An application error, as the reference reports it.",
            "required": ["detail"],
            "properties": { "detail": { "type": "string" } }
        },
        "ValidationError": {
            "type": "object",
            "description": "One violation, in pydantic's shape.",
            "required": ["type", "loc", "msg", "input"],
            "properties": {
                "type": { "type": "string" },
                "loc": { "type": "array", "items": { "type": ["string", "integer"] } },
                "msg": { "type": "string" },
                "input": {},
                "ctx": { "type": "object" }
            }
        },
        "UnprocessableDetail": {
            "type": "object",
            "description": "422: every violation of the request's shape (a list), or one \
                semantic rule broken (a string: filters, scopes, NUL bytes in the path).",
            "required": ["detail"],
            "properties": {
                "detail": {
                    "oneOf": [
                        { "type": "string" },
                        { "type": "array", "items": schema_ref("ValidationError") }
                    ]
                }
            }
        }
    })
}

/// Fills in the document: see the module comment.
pub fn complete(doc: &mut Value) {
    let schemas = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .expect("the document has component schemas");
    for (name, schema) in error_schemas().as_object().into_iter().flatten() {
        schemas.insert(name.clone(), schema.clone());
    }
    for (name, schema) in super::requests::schemas() {
        schemas.insert(name.to_string(), schema);
    }
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            if let Some(op) = item.get_mut(method).and_then(Value::as_object_mut) {
                declare_path_params(path, op);
                if let Some(body) = super::requests::body(method, path) {
                    op.insert("requestBody".into(), body);
                }
                declare_paging(op);
                document_errors(method, path, op);
            }
        }
    }
    super::links::add(paths);
}

fn parameters(op: &mut Map<String, Value>) -> &mut Vec<Value> {
    op.entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters is a list")
}

fn declared(params: &[Value], name: &str, place: &str) -> bool {
    params.iter().any(|p| p["name"] == name && p["in"] == place)
}

fn declare_path_params(path: &str, op: &mut Map<String, Value>) {
    let params = parameters(op);
    for name in path_params(path) {
        if !declared(params, name, "path") {
            params.push(json!({
                "name": name, "in": "path", "required": true,
                "schema": { "type": "string" }
            }));
        }
    }
}

/// Paginated routes read `page`, `size` and `reverse` from the query (`Params::paging`).
fn declare_paging(op: &mut Map<String, Value>) {
    let paginated = op
        .get("responses")
        .and_then(|r| r.pointer("/200/content/application~1json/schema/$ref"))
        .and_then(Value::as_str)
        .is_some_and(|r| r.starts_with("#/components/schemas/Page"));
    if !paginated {
        return;
    }
    let params = parameters(op);
    for (name, schema) in [
        (
            "page",
            json!({"type": "integer", "minimum": 1, "default": 1}),
        ),
        (
            "size",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 50}),
        ),
        ("reverse", json!({"type": "boolean", "default": false})),
    ] {
        if !declared(params, name, "query") {
            params.push(json!({"name": name, "in": "query", "required": false, "schema": schema}));
        }
    }
}

/// The statuses every handler can meet before or besides its own logic.
fn shared_errors(method: &str, path: &str, has_body: bool) -> Vec<(&'static str, &'static str)> {
    let mut statuses = vec![(
        "422",
        "The request's path, query or body is invalid (NUL bytes are refused everywhere)",
    )];
    let public = scopes::declared(method, path) == Some(Access::Public);
    if !public {
        statuses.push((
            "401",
            "Authentication is on and the key may not call this route",
        ));
    }
    if has_body {
        statuses.push((
            "413",
            "The request body is larger than the configured limit",
        ));
    }
    // Lists and searches are POSTs that only read.
    let reads = method == "get"
        || (method == "post"
            && ["/list", "/search", "/{peer_id}/sessions"]
                .iter()
                .any(|l| path.ends_with(l)));
    if !reads && !NO_STORE.contains(&path) {
        statuses.push((
            "507",
            "SQLite could not make the write durable: the disk is full (`Retry-After` says when to retry)",
        ));
    }
    if !NO_STORE.contains(&path) {
        statuses.push((
            "503",
            "The database is momentarily busy or unreachable, or its files cannot be \
             written; the `Retry-After` header says when to retry",
        ));
    }
    statuses
}

fn document_errors(method: &str, path: &str, op: &mut Map<String, Value>) {
    let has_body = op.contains_key("requestBody");
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in shared_errors(method, path, has_body) {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let error = status.starts_with('4') || status.starts_with('5');
        if !error || response.get("content").is_some() {
            continue;
        }
        let schema = if status == "422" {
            "UnprocessableDetail"
        } else {
            "ErrorDetail"
        };
        response["content"] = json_content(schema_ref(schema));
        if status == "503" || status == "507" {
            response["headers"] = json!({
                "Retry-After": { "description": "Seconds to wait", "schema": { "type": "integer" } }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templated_names_in_order() {
        assert_eq!(
            path_params("/v3/workspaces/{workspace_id}/sessions/{session_id}/peers"),
            ["workspace_id", "session_id"]
        );
        assert!(path_params("/health").is_empty());
    }
}
