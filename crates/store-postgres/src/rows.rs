//! Row decoding shared by the per-resource modules. Column lists match the SQLite
//! engine's, so both engines select and decode the same fields in the same order.

use engram_core::model::{Json, Message, Peer, Session, Workspace};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// A JSONB object column; anything else (never written by this crate) reads as empty.
pub fn json(r: &PgRow, i: usize) -> sqlx::Result<Json> {
    Ok(match r.try_get::<Value, _>(i)? {
        Value::Object(map) => map,
        _ => Json::new(),
    })
}

pub fn to_value(map: &Json) -> Value {
    Value::Object(map.clone())
}

pub const WORKSPACE_COLS: &str = "w.name, w.metadata, w.configuration, w.created_at";

/// Decodes `WORKSPACE_COLS` starting at column `at`.
pub fn workspace(r: &PgRow, at: usize) -> sqlx::Result<Workspace> {
    Ok(Workspace {
        id: r.try_get(at)?,
        metadata: json(r, at + 1)?,
        configuration: json(r, at + 2)?,
        created_at: r.try_get(at + 3)?,
    })
}

pub const PEER_COLS: &str = "p.name, p.metadata, p.configuration, p.created_at";

pub fn peer(r: &PgRow, at: usize, workspace: &str) -> sqlx::Result<Peer> {
    Ok(Peer {
        id: r.try_get(at)?,
        workspace_id: workspace.to_string(),
        metadata: json(r, at + 1)?,
        configuration: json(r, at + 2)?,
        created_at: r.try_get(at + 3)?,
    })
}

pub const SESSION_COLS: &str = "s.name, s.metadata, s.configuration, s.created_at";

/// Only live sessions are ever decoded, hence `is_active: true`.
pub fn session(r: &PgRow, at: usize, workspace: &str) -> sqlx::Result<Session> {
    Ok(Session {
        id: r.try_get(at)?,
        is_active: true,
        workspace_id: workspace.to_string(),
        metadata: json(r, at + 1)?,
        configuration: json(r, at + 2)?,
        created_at: r.try_get(at + 3)?,
    })
}

pub const MESSAGE_COLS: &str =
    "m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count";

pub fn message(r: &PgRow, at: usize, workspace: &str) -> sqlx::Result<Message> {
    Ok(Message {
        id: r.try_get(at)?,
        content: r.try_get(at + 1)?,
        peer_id: r.try_get(at + 2)?,
        session_id: r.try_get(at + 3)?,
        metadata: json(r, at + 4)?,
        created_at: r.try_get(at + 5)?,
        workspace_id: workspace.to_string(),
        token_count: r.try_get(at + 6)?,
    })
}
