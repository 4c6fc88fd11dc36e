//! The request bodies, as the handlers read them field by field (`crate::input`): the
//! handlers take raw JSON to report every violation the reference's way, so there is no
//! Rust type to derive these from. Unknown keys are ignored, as the reference ignores them.

use engram_core::search::MAX_LIMIT;
use engram_core::validate::{BATCH_MAX, MESSAGE_MAX_CHARS, NAME_PATTERN};
use serde_json::{Value, json};

const W: &str = "/v3/workspaces/{workspace_id}";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(schema: Value) -> Value {
    json!({ "oneOf": [schema, { "type": "null" }] })
}

fn object(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties
    })
}

/// The request schemas, added to the document's components.
pub fn schemas() -> Vec<(&'static str, Value)> {
    let resource = |what: &str, extra: Value| {
        let mut props = json!({
            "id": r("Name"),
            "metadata": nullable(r("Metadata")),
            "configuration": nullable(json!({"type": "object"}))
        });
        props
            .as_object_mut()
            .expect("object")
            .extend(extra.as_object().cloned().unwrap_or_default());
        object(
            &format!(
                "Get or create {what}. `name` is accepted in place of `id`, as the reference \
                 accepts a field under its own name."
            ),
            &["id"],
            props,
        )
    };
    vec![
        (
            "Name",
            json!({"type": "string", "minLength": 1, "maxLength": 512, "pattern": NAME_PATTERN}),
        ),
        (
            "Metadata",
            json!({
                "type": "object",
                "maxProperties": 100,
                "description": "At most 100 top-level keys, nested at most 5 deep; NUL bytes are stripped."
            }),
        ),
        ("WorkspaceCreate", resource("a workspace", json!({}))),
        ("PeerCreate", resource("a peer", json!({}))),
        (
            "SessionCreate",
            resource(
                "a session; `peers` (or `peer_names`) are joined as members",
                json!({"peers": nullable(r("SessionPeers"))}),
            ),
        ),
        (
            "SessionPeers",
            json!({"type": "object", "additionalProperties": r("SessionPeerConfig"),
                   "description": "Peer names and their configuration in the session."}),
        ),
        (
            "ResourceUpdate",
            object(
                "Metadata replaced, configuration merged (replaced for peers); null or absent leaves either unchanged.",
                &[],
                json!({
                    "metadata": nullable(r("Metadata")),
                    "configuration": nullable(json!({"type": "object"}))
                }),
            ),
        ),
        (
            "ListFilters",
            object(
                "An optional filter in the reference's filter language.",
                &[],
                json!({"filters": nullable(json!({"type": "object"}))}),
            ),
        ),
        (
            "MessageCreate",
            object(
                "One message.",
                &["content", "peer_id"],
                json!({
                    "content": {"type": "string", "maxLength": MESSAGE_MAX_CHARS},
                    "peer_id": r("Name"),
                    "metadata": nullable(r("Metadata")),
                    "created_at": nullable(json!({"type": "string", "format": "date-time"}))
                }),
            ),
        ),
        (
            "MessageBatch",
            object(
                "Messages to append, in order.",
                &["messages"],
                json!({"messages": {"type": "array", "minItems": 1, "maxItems": BATCH_MAX,
                                    "items": r("MessageCreate")}}),
            ),
        ),
        (
            "MessageUpdate",
            object(
                "New metadata (null leaves it unchanged, `{}` clears it).",
                &[],
                json!({"metadata": nullable(r("Metadata"))}),
            ),
        ),
        (
            "SearchOptions",
            object(
                "A search; `scope` only on the workspace route.",
                &["query"],
                json!({
                    "query": {"type": "string"},
                    "filters": nullable(json!({"type": "object"})),
                    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 10},
                    "scope": nullable(json!({"type": "string"}))
                }),
            ),
        ),
        (
            "PeerCardSet",
            object(
                "The card's lines.",
                &["peer_card"],
                json!({"peer_card": {"type": "array", "items": {"type": "string"}}}),
            ),
        ),
        (
            "WebhookCreate",
            object(
                "The endpoint to deliver events to.",
                &["url"],
                json!({"url": {"type": "string"}}),
            ),
        ),
    ]
}

/// The body of an operation, when it reads one that the annotation cannot name.
pub fn body(method: &str, path: &str) -> Option<Value> {
    let relative = path.strip_prefix(W).unwrap_or(path);
    let (schema, required) = match (method, relative) {
        ("post", "/v3/workspaces") => ("WorkspaceCreate", true),
        ("post", "/v3/workspaces/list" | "/peers/list" | "/sessions/list") => {
            ("ListFilters", false)
        }
        ("post", "/peers/{peer_id}/sessions" | "/sessions/{session_id}/messages/list") => {
            ("ListFilters", false)
        }
        ("put", "" | "/peers/{peer_id}" | "/sessions/{session_id}") => ("ResourceUpdate", true),
        ("post", "/peers") => ("PeerCreate", true),
        ("post", "/sessions") => ("SessionCreate", true),
        ("post", "/sessions/{session_id}/messages" | "/sessions/{session_id}/messages/") => {
            ("MessageBatch", true)
        }
        ("put", "/sessions/{session_id}/messages/{message_id}") => ("MessageUpdate", true),
        ("post", "/search" | "/peers/{peer_id}/search" | "/sessions/{session_id}/search") => {
            ("SearchOptions", true)
        }
        ("put", "/peers/{peer_id}/card") => ("PeerCardSet", true),
        ("post" | "put", "/sessions/{session_id}/peers") => ("SessionPeers", true),
        ("post", "/webhooks") => ("WebhookCreate", true),
        _ => return None,
    };
    Some(json!({
        "required": required,
        "content": { "application/json": { "schema": r(schema) } }
    }))
}
