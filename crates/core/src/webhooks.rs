//! Webhooks: the endpoints a workspace registers, the events sent to them, and the
//! delivery jobs that carry one event to one endpoint (reference §3.7, §14).

use async_trait::async_trait;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::model::{Page, PageRequest};
use crate::time::Micros;
use crate::{Error, Result};

/// Endpoints per workspace (the reference's `WEBHOOK_MAX_WORKSPACE_LIMIT`).
pub const MAX_ENDPOINTS: i64 = 10;
/// Longest accepted endpoint URL.
pub const MAX_URL_LEN: usize = 2048;

pub const TEST_EVENT: &str = "test.event";
pub const SESSION_DELETED: &str = "session.deleted";
pub const WORKSPACE_DELETED: &str = "workspace.deleted";

fn iso<S: Serializer>(micros: &Micros, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::format(*micros))
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    #[serde(serialize_with = "iso")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Micros,
}

pub fn limit_reached() -> Error {
    Error::Conflict(format!(
        "Maximum number of webhook endpoints ({MAX_ENDPOINTS}) reached for this workspace."
    ))
}

/// One event, serialized once when it is queued so every retry sends (and signs)
/// the same bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    pub data: Value,
    pub at: Micros,
}

impl Event {
    pub fn test(workspace: &str, at: Micros) -> Event {
        Event {
            kind: TEST_EVENT,
            data: json!({ "workspace_id": workspace }),
            at,
        }
    }

    /// A completed session purge: what was removed and when, never any content.
    pub fn session_deleted(receipt: &crate::queue::Receipt, at: Micros) -> Event {
        Event {
            kind: SESSION_DELETED,
            data: json!({
                "workspace_id": receipt.workspace_id,
                "session_id": receipt.session_id,
                "messages_deleted": receipt.messages_deleted,
                "members_deleted": receipt.members_deleted,
                "requested_at": crate::time::format(receipt.requested_at),
                "finished_at": receipt.finished_at.map(crate::time::format),
            }),
            at,
        }
    }

    pub fn workspace_deleted(workspace: &str, requested_at: Micros, at: Micros) -> Event {
        Event {
            kind: WORKSPACE_DELETED,
            data: json!({
                "workspace_id": workspace,
                "requested_at": crate::time::format(requested_at),
                "finished_at": crate::time::format(at),
            }),
            at,
        }
    }

    /// The wire body: `{"data", "timestamp", "type"}` compact with sorted keys, as
    /// the reference serializes it; the timestamp has whole seconds.
    pub fn body(&self) -> String {
        let seconds = self.at.div_euclid(1_000_000) * 1_000_000;
        let formatted = crate::time::format(seconds);
        let timestamp = match formatted.split_once('.') {
            Some((head, _)) => format!("{head}Z"),
            None => formatted,
        };
        let body = json!({ "type": self.kind, "data": self.data, "timestamp": timestamp });
        sorted(body).to_string()
    }
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted(v)))
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// A delivery job's payload: the endpoint as it was when the event was queued (it
/// may be deleted, with its whole workspace, before delivery) and the exact body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Delivery {
    pub endpoint_id: String,
    pub url: String,
    pub event: String,
    pub body: String,
}

impl Delivery {
    pub fn new(endpoint_id: &str, url: &str, event: &Event) -> Delivery {
        Delivery {
            endpoint_id: endpoint_id.to_string(),
            url: url.to_string(),
            event: event.kind.to_string(),
            body: event.body(),
        }
    }

    /// The delivery's work unit, made unique by `nonce` (see `jobs::Task::unit_key`).
    pub fn unit_key(&self, nonce: &str) -> String {
        format!("webhook:{}:{nonce}", self.endpoint_id)
    }
}

#[async_trait]
pub trait WebhookStore {
    /// Registers `url` for a live workspace; an already registered URL is returned
    /// with `false`. NotFound for a missing workspace, Conflict at the limit.
    async fn create_webhook(&self, workspace: &str, url: &str) -> Result<(WebhookEndpoint, bool)>;
    /// Endpoints of a workspace, oldest first.
    async fn list_webhooks(
        &self,
        workspace: &str,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>>;
    /// Hard delete; NotFound when the workspace has no such endpoint.
    async fn delete_webhook(&self, workspace: &str, id: &str) -> Result<()>;
    /// Queues one delivery of `event` per endpoint of the live workspace; returns
    /// how many were queued (none for an unknown workspace).
    async fn publish_event(&self, workspace: &str, event: &Event) -> Result<usize>;
}

pub fn webhook_not_found(workspace: &str, id: &str) -> Error {
    Error::NotFound(format!(
        "Webhook endpoint {id} not found for workspace {workspace}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_compact_sorted_with_whole_seconds() {
        let e = Event {
            kind: TEST_EVENT,
            data: json!({"z": 1, "a": {"y": 2, "b": 3}}),
            at: 1_700_000_000_654_321,
        };
        assert_eq!(
            e.body(),
            r#"{"data":{"a":{"b":3,"y":2},"z":1},"timestamp":"2023-11-14T22:13:20Z","type":"test.event"}"#
        );
    }
}
