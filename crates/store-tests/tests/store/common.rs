//! Builders and accessors shared by the checks.

use engram_core::filter::{self, Resource};
use engram_core::model::{
    Json, ListQuery, Message, NewMessage, NewPeer, NewSession, PageRequest, Peer, Session,
    Workspace,
};
use engram_core::{Error, ids};
use serde_json::Value;

/// A JSON object literal as a `Json` map.
#[macro_export]
macro_rules! obj {
    ($($t:tt)*) => {
        match serde_json::json!({ $($t)* }) {
            serde_json::Value::Object(map) => map,
            _ => unreachable!(),
        }
    };
}

pub fn page(number: i64, size: i64) -> PageRequest {
    PageRequest { page: number, size }
}

/// A listing with the given filter body (`null` for none).
pub fn query(
    resource: Resource,
    filters: Value,
    page_number: i64,
    size: i64,
    reverse: bool,
) -> ListQuery {
    let filter = filter::parse(resource, &filters).expect("valid filter");
    ListQuery {
        filter,
        page: page(page_number, size),
        reverse,
    }
}

/// First page of 100, ascending.
pub fn all(resource: Resource, filters: Value) -> ListQuery {
    query(resource, filters, 1, 100, false)
}

pub fn peer(name: &str) -> NewPeer {
    NewPeer {
        name: name.into(),
        ..Default::default()
    }
}

pub fn session(name: &str) -> NewSession {
    NewSession {
        name: name.into(),
        ..Default::default()
    }
}

pub fn msg(peer: &str, content: &str, tokens: i64) -> NewMessage {
    NewMessage {
        public_id: ids::new_public_id(),
        content: content.into(),
        peer: peer.into(),
        metadata: Json::new(),
        token_count: tokens,
        created_at: None,
    }
}

pub fn msg_with(peer: &str, content: &str, tokens: i64, metadata: Json) -> NewMessage {
    NewMessage {
        metadata,
        ..msg(peer, content, tokens)
    }
}

pub fn peer_names(items: &[Peer]) -> Vec<&str> {
    items.iter().map(|p| p.id.as_str()).collect()
}

pub fn session_names(items: &[Session]) -> Vec<&str> {
    items.iter().map(|s| s.id.as_str()).collect()
}

pub fn workspace_names(items: &[Workspace]) -> Vec<&str> {
    items.iter().map(|w| w.id.as_str()).collect()
}

pub fn contents(items: &[Message]) -> Vec<&str> {
    items.iter().map(|m| m.content.as_str()).collect()
}

/// The error of a call that must fail.
pub fn failure<T: std::fmt::Debug>(r: engram_core::Result<T>) -> Error {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e,
    }
}

pub fn assert_not_found<T: std::fmt::Debug>(r: engram_core::Result<T>, message: &str) {
    match failure(r) {
        Error::NotFound(m) => assert_eq!(m, message),
        other => panic!("expected NotFound({message:?}), got {other:?}"),
    }
}
