//! Row decoding shared by the per-resource modules.

use engram_core::model::{Json, Message, Peer, Session, Workspace};
use rusqlite::Row;

pub fn json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_default()
}

pub fn json_text(map: &Json) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

pub const WORKSPACE_COLS: &str = "w.name, w.metadata, w.configuration, w.created_at";

pub fn workspace(r: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace {
        id: r.get(0)?,
        metadata: json(&r.get::<_, String>(1)?),
        configuration: json(&r.get::<_, String>(2)?),
        created_at: r.get(3)?,
    })
}

pub const PEER_COLS: &str = "p.name, p.metadata, p.configuration, p.created_at";

pub fn peer(workspace: &str) -> impl Fn(&Row<'_>) -> rusqlite::Result<Peer> + '_ {
    move |r| {
        Ok(Peer {
            id: r.get(0)?,
            workspace_id: workspace.to_string(),
            metadata: json(&r.get::<_, String>(1)?),
            configuration: json(&r.get::<_, String>(2)?),
            created_at: r.get(3)?,
        })
    }
}

pub const SESSION_COLS: &str = "s.name, s.metadata, s.configuration, s.created_at";

pub fn session(workspace: &str) -> impl Fn(&Row<'_>) -> rusqlite::Result<Session> + '_ {
    move |r| {
        Ok(Session {
            id: r.get(0)?,
            is_active: true,
            workspace_id: workspace.to_string(),
            metadata: json(&r.get::<_, String>(1)?),
            configuration: json(&r.get::<_, String>(2)?),
            created_at: r.get(3)?,
        })
    }
}

pub const MESSAGE_COLS: &str =
    "m.public_id, m.content, m.peer_name, m.session_name, m.metadata, m.created_at, m.token_count";

pub fn message(workspace: &str) -> impl Fn(&Row<'_>) -> rusqlite::Result<Message> + '_ {
    move |r| {
        Ok(Message {
            id: r.get(0)?,
            content: r.get(1)?,
            peer_id: r.get(2)?,
            session_id: r.get(3)?,
            metadata: json(&r.get::<_, String>(4)?),
            created_at: r.get(5)?,
            workspace_id: workspace.to_string(),
            token_count: r.get(6)?,
        })
    }
}
