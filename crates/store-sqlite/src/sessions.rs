//! Session rows and memberships.

use engram_core::filter_sql::columns;
use engram_core::model::{
    ListQuery, NewSession, Page, PageRequest, Peer, Session, SessionPeerConfig, merge_top_level,
};
use engram_core::store::MembershipMode;
use engram_core::time::{join_times, now_micros};
use engram_core::validate::SESSION_OBSERVERS_LIMIT;
use engram_core::{Error, Result, ids};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};

use crate::dialect::list_page;
use crate::rows::{self, PEER_COLS, SESSION_COLS, json_text};
use crate::{db_err, embeddings, peers, workspaces};

pub struct Live {
    pub ws_id: i64,
    pub id: i64,
    pub session: Session,
}

/// The live (not deleted) session with this name.
pub fn find(conn: &Connection, workspace: &str, name: &str) -> Result<Option<Live>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(None);
    };
    conn.prepare_cached(&format!(
        "SELECT s.id, {SESSION_COLS} FROM sessions s WHERE s.workspace_id = ?1 AND s.name = ?2 AND s.deleted_at IS NULL"
    ))
    .map_err(db_err)?
    .query_row(params![ws_id, name], |r| {
        Ok(Live {
            ws_id,
            id: r.get(0)?,
            session: Session {
                id: r.get(1)?,
                is_active: true,
                workspace_id: workspace.to_string(),
                metadata: rows::json(&r.get::<_, String>(2)?),
                configuration: rows::json(&r.get::<_, String>(3)?),
                created_at: r.get(4)?,
            },
        })
    })
    .optional()
    .map_err(db_err)
}

pub fn require(conn: &Connection, workspace: &str, name: &str) -> Result<Live> {
    find(conn, workspace, name)?.ok_or_else(|| Error::session_not_found(workspace, name))
}

/// The live session, created (with its workspace) when missing.
pub fn ensure(conn: &Connection, workspace: &str, name: &str) -> Result<(Live, bool)> {
    if let Some(live) = find(conn, workspace, name)? {
        return Ok((live, false));
    }
    let ws_id = workspaces::ensure(conn, workspace)?;
    conn.prepare_cached(
        "INSERT INTO sessions (workspace_id, name, metadata, configuration, created_at) VALUES (?1, ?2, '{}', '{}', ?3)",
    )
    .map_err(db_err)?
    .execute(params![ws_id, name, now_micros()])
    .map_err(db_err)?;
    Ok((require(conn, workspace, name)?, true))
}

fn save(conn: &Connection, live: &Live) -> Result<()> {
    conn.prepare_cached("UPDATE sessions SET metadata = ?1, configuration = ?2 WHERE id = ?3")
        .map_err(db_err)?
        .execute(params![
            json_text(&live.session.metadata),
            json_text(&live.session.configuration),
            live.id
        ])
        .map_err(db_err)?;
    Ok(())
}

pub fn get_or_create(
    conn: &Connection,
    workspace: &str,
    new: NewSession,
) -> Result<(Session, bool)> {
    let (mut live, created) = ensure(conn, workspace, &new.name)?;
    let changed = new.changes.metadata.is_some() || new.changes.configuration.is_some();
    if let Some(metadata) = new.changes.metadata {
        live.session.metadata = metadata;
    }
    if let Some(configuration) = new.changes.configuration {
        merge_top_level(&mut live.session.configuration, configuration);
    }
    if changed {
        save(conn, &live)?;
    }
    upsert_members(conn, &live, &new.peers)?;
    Ok((live.session, created))
}

fn upsert_members(
    conn: &Connection,
    live: &Live,
    members: &[(String, SessionPeerConfig)],
) -> Result<()> {
    if members.is_empty() {
        return Ok(());
    }
    for ((name, config), at) in members.iter().zip(join_times(members.len())) {
        let peer_id = peers::ensure(conn, live.ws_id, name)?;
        peers::join(conn, live.ws_id, live.id, peer_id, &config.to_json(), at)?;
    }
    check_observers(conn, live)
}

/// Fails the whole change when more than the allowed number of active members observe others.
fn check_observers(conn: &Connection, live: &Live) -> Result<()> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM session_peers WHERE workspace_id = ?1 AND session_id = ?2 AND left_at IS NULL \
             AND json_extract(configuration, '$.observe_others') = 1",
        )
        .map_err(db_err)?
        .query_row(params![live.ws_id, live.id], |r| r.get(0))
        .map_err(db_err)?;
    if count as usize > SESSION_OBSERVERS_LIMIT {
        return Err(Error::observer_limit(&live.session.id, count as usize));
    }
    Ok(())
}

pub fn list(conn: &Connection, workspace: &str, query: &ListQuery) -> Result<Page<Session>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    list_page(
        conn,
        columns::sessions,
        workspace,
        SESSION_COLS,
        "sessions s WHERE s.workspace_id = ?1 AND s.deleted_at IS NULL",
        vec![SqlValue::Integer(ws_id)],
        &["s.created_at", "s.id"],
        query,
        rows::session(workspace),
    )
}

pub fn list_for_peer(
    conn: &Connection,
    workspace: &str,
    peer: &str,
    query: &ListQuery,
) -> Result<Page<Session>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    let Some(peer_id) = peers::id_of(conn, ws_id, peer)? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    list_page(
        conn,
        columns::sessions,
        workspace,
        SESSION_COLS,
        "sessions s WHERE s.workspace_id = ?1 AND s.deleted_at IS NULL AND EXISTS (SELECT 1 FROM session_peers sp \
         WHERE sp.workspace_id = ?1 AND sp.session_id = s.id AND sp.peer_id = ?2)",
        vec![SqlValue::Integer(ws_id), SqlValue::Integer(peer_id)],
        &["s.created_at", "s.id"],
        query,
        rows::session(workspace),
    )
}

pub fn set_members(
    conn: &Connection,
    workspace: &str,
    session: &str,
    members: Vec<(String, SessionPeerConfig)>,
    mode: MembershipMode,
) -> Result<Session> {
    let live = match mode {
        MembershipMode::Add => ensure(conn, workspace, session)?.0,
        MembershipMode::Replace => require(conn, workspace, session)?,
    };
    if mode == MembershipMode::Replace {
        conn.prepare_cached(
            "UPDATE session_peers SET left_at = ?3 WHERE workspace_id = ?1 AND session_id = ?2 AND left_at IS NULL",
        )
        .map_err(db_err)?
        .execute(params![live.ws_id, live.id, now_micros()])
        .map_err(db_err)?;
        // Re-listed members rejoin with the configuration given now.
        for ((name, config), at) in members.iter().zip(join_times(members.len())) {
            let peer_id = peers::ensure(conn, live.ws_id, name)?;
            conn.prepare_cached(
                "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
                 configuration = excluded.configuration, joined_at = excluded.joined_at, left_at = NULL",
            )
            .map_err(db_err)?
            .execute(params![
                live.ws_id,
                live.id,
                peer_id,
                config.to_json().to_string(),
                at
            ])
            .map_err(db_err)?;
        }
        check_observers(conn, &live)?;
    } else {
        upsert_members(conn, &live, &members)?;
    }
    Ok(live.session)
}

pub fn remove_members(
    conn: &Connection,
    workspace: &str,
    session: &str,
    names: Vec<String>,
) -> Result<Session> {
    let live = require(conn, workspace, session)?;
    let now = now_micros();
    for name in names {
        if let Some(peer_id) = peers::id_of(conn, live.ws_id, &name)? {
            conn.prepare_cached(
                "UPDATE session_peers SET left_at = ?4 WHERE workspace_id = ?1 AND session_id = ?2 AND peer_id = ?3 AND left_at IS NULL",
            )
            .map_err(db_err)?
            .execute(params![live.ws_id, live.id, peer_id, now])
            .map_err(db_err)?;
        }
    }
    Ok(live.session)
}

pub fn list_members(
    conn: &Connection,
    workspace: &str,
    session: &str,
    page: PageRequest,
) -> Result<Page<Peer>> {
    let Some(live) = find(conn, workspace, session)? else {
        return Ok(Page::new(vec![], 0, page));
    };
    let query = ListQuery {
        filter: None,
        page,
        reverse: false,
    };
    list_page(
        conn,
        columns::peers,
        workspace,
        PEER_COLS,
        "peers p JOIN session_peers sp ON sp.workspace_id = p.workspace_id AND sp.peer_id = p.id \
         WHERE sp.workspace_id = ?1 AND sp.session_id = ?2 AND sp.left_at IS NULL",
        vec![SqlValue::Integer(live.ws_id), SqlValue::Integer(live.id)],
        &["sp.joined_at", "p.id"],
        &query,
        rows::peer(workspace),
    )
}

fn membership(conn: &Connection, live: &Live, peer_id: i64) -> Result<Option<SessionPeerConfig>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT configuration FROM session_peers WHERE workspace_id = ?1 AND session_id = ?2 AND peer_id = ?3")
        .map_err(db_err)?
        .query_row(params![live.ws_id, live.id, peer_id], |r| r.get(0))
        .optional()
        .map_err(db_err)?;
    Ok(text.map(|t| SessionPeerConfig::from_json(&serde_json::from_str(&t).unwrap_or_default())))
}

pub fn get_member_config(
    conn: &Connection,
    workspace: &str,
    session: &str,
    peer: &str,
) -> Result<SessionPeerConfig> {
    let live = require(conn, workspace, session)?;
    let peer_id = peers::id_of(conn, live.ws_id, peer)?
        .ok_or_else(|| Error::peer_not_found(workspace, peer))?;
    membership(conn, &live, peer_id)?.ok_or_else(|| {
        Error::NotFound(format!(
            "Session peer {peer} not found in session {session} in workspace {workspace}"
        ))
    })
}

pub fn set_member_config(
    conn: &Connection,
    workspace: &str,
    session: &str,
    peer: &str,
    config: SessionPeerConfig,
) -> Result<()> {
    let live = require(conn, workspace, session)?;
    let peer_id = peers::id_of(conn, live.ws_id, peer)?
        .ok_or_else(|| Error::peer_not_found(workspace, peer))?;
    let merged = membership(conn, &live, peer_id)?
        .unwrap_or_default()
        .merged(config);
    conn.prepare_cached(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL) ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
         configuration = excluded.configuration",
    )
    .map_err(db_err)?
    .execute(params![live.ws_id, live.id, peer_id, merged.to_json().to_string(), now_micros()])
    .map_err(db_err)?;
    check_observers(conn, &live)
}

pub fn clone(
    conn: &Connection,
    workspace: &str,
    session: &str,
    cutoff: Option<&str>,
) -> Result<Session> {
    let source = require(conn, workspace, session)?;
    let last_seq: i64 = match cutoff {
        None => conn
            .query_row("SELECT last_seq FROM sessions WHERE id = ?1", [source.id], |r| r.get(0))
            .map_err(db_err)?,
        Some(public_id) => conn
            .prepare_cached("SELECT seq_in_session FROM messages WHERE workspace_id = ?1 AND session_id = ?2 AND public_id = ?3")
            .map_err(db_err)?
            .query_row(params![source.ws_id, source.id, public_id], |r| r.get(0))
            .optional()
            .map_err(db_err)?
            .ok_or_else(|| Error::NotFound(format!("Message {public_id} not found in session {session}")))?,
    };
    let name = ids::new_public_id();
    let now = now_micros();
    let new_id: i64 = conn
        .query_row(
            "INSERT INTO sessions (workspace_id, name, metadata, configuration, created_at, last_seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
            params![
                source.ws_id,
                name,
                json_text(&source.session.metadata),
                json_text(&source.session.configuration),
                now,
                last_seq
            ],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    conn.execute(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         SELECT workspace_id, ?2, peer_id, configuration, ?3, NULL FROM session_peers WHERE workspace_id = ?1 AND session_id = ?4",
        params![source.ws_id, new_id, now, source.id],
    )
    .map_err(db_err)?;
    let mut select = conn
        .prepare("SELECT seq_in_session FROM messages WHERE workspace_id = ?1 AND session_id = ?2 AND seq_in_session <= ?3 ORDER BY seq_in_session")
        .map_err(db_err)?;
    let seqs = select
        .query_map(params![source.ws_id, source.id, last_seq], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<i64>>>()
        .map_err(db_err)?;
    let mut copy = conn
        .prepare_cached(
            "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, metadata, token_count, seq_in_session, created_at) \
             SELECT workspace_id, ?3, ?4, ?5, peer_name, content, metadata, token_count, seq_in_session, ?6 \
             FROM messages WHERE workspace_id = ?1 AND session_id = ?2 AND seq_in_session = ?7",
        )
        .map_err(db_err)?;
    let mut copied = Vec::with_capacity(seqs.len());
    for seq in seqs {
        copy.execute(params![
            source.ws_id,
            source.id,
            new_id,
            ids::new_public_id(),
            name,
            now,
            seq
        ])
        .map_err(db_err)?;
        copied.push(conn.last_insert_rowid());
    }
    // The copies are new messages: they get their own vectors, one job per 100.
    for chunk in copied.chunks(100) {
        embeddings::enqueue_for_write(conn, source.ws_id, new_id, chunk.to_vec())?;
    }
    Ok(require(conn, workspace, &name)?.session)
}
