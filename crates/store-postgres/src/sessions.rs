//! Session rows and memberships.
//!
//! Every change to a session's memberships first locks the session row, so changes to
//! one session run one at a time across processes and the observer limit cannot be
//! overrun by two concurrent requests that each saw room for one more.

use engram_core::Error;
use engram_core::filter_sql::Bind;
use engram_core::filter_sql::columns;
use engram_core::model::{
    ListQuery, NewSession, Page, PageRequest, Peer, Session, SessionPeerConfig,
};
use engram_core::store::MembershipMode;
use engram_core::time::{join_times, now_micros};
use engram_core::validate::SESSION_OBSERVERS_LIMIT;
use sqlx::{PgConnection, Row};

use crate::dialect::{Listing, list_page};
use crate::rows::{self, PEER_COLS, SESSION_COLS, to_value};
use crate::{R, peers, workspaces};

pub struct Live {
    pub ws_id: i64,
    pub id: i64,
    pub session: Session,
}

const FIND: &str = "SELECT s.id, s.name, s.metadata, s.configuration, s.created_at FROM sessions s \
                    WHERE s.workspace_id = $1 AND s.name = $2 AND s.deleted_at IS NULL";
const FIND_LOCKED: &str = "SELECT s.id, s.name, s.metadata, s.configuration, s.created_at FROM sessions s \
                           WHERE s.workspace_id = $1 AND s.name = $2 AND s.deleted_at IS NULL FOR UPDATE";

async fn fetch(
    c: &mut PgConnection,
    sql: &'static str,
    ws_id: i64,
    workspace: &str,
    name: &str,
) -> R<Option<Live>> {
    let row = sqlx::query(sql)
        .bind(ws_id)
        .bind(name)
        .fetch_optional(c)
        .await?;
    Ok(match row {
        Some(r) => Some(Live {
            ws_id,
            id: r.try_get(0)?,
            session: rows::session(&r, 1, workspace)?,
        }),
        None => None,
    })
}

/// The live (not deleted) session with this name.
pub async fn find(c: &mut PgConnection, workspace: &str, name: &str) -> R<Option<Live>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(None);
    };
    fetch(c, FIND, ws_id, workspace, name).await
}

/// The live session, locked until the transaction ends.
pub async fn require(c: &mut PgConnection, workspace: &str, name: &str) -> R<Live> {
    let found = match workspaces::id_of(c, workspace).await? {
        Some(ws_id) => fetch(c, FIND_LOCKED, ws_id, workspace, name).await?,
        None => None,
    };
    Ok(found.ok_or_else(|| Error::session_not_found(workspace, name))?)
}

/// The live session, locked, created (with its workspace) when missing.
pub async fn ensure(c: &mut PgConnection, workspace: &str, name: &str) -> R<(Live, bool)> {
    let ws_id = workspaces::ensure(c, workspace).await?;
    if let Some(live) = fetch(c, FIND_LOCKED, ws_id, workspace, name).await? {
        return Ok((live, false));
    }
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sessions (workspace_id, name, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (workspace_id, name) WHERE deleted_at IS NULL DO NOTHING RETURNING id",
    )
    .bind(ws_id)
    .bind(name)
    .bind(now_micros())
    .fetch_optional(&mut *c)
    .await?;
    let live = fetch(c, FIND_LOCKED, ws_id, workspace, name).await?;
    Ok((
        live.ok_or_else(|| Error::internal("session vanished"))?,
        inserted.is_some(),
    ))
}

pub async fn get_or_create(
    c: &mut PgConnection,
    workspace: &str,
    new: &NewSession,
) -> R<(Session, bool)> {
    let (mut live, created) = ensure(c, workspace, &new.name).await?;
    if new.changes.metadata.is_some() || new.changes.configuration.is_some() {
        let row = sqlx::query(
            "UPDATE sessions s SET metadata = COALESCE($3, s.metadata), configuration = s.configuration || $4 \
             WHERE s.workspace_id = $1 AND s.id = $2 RETURNING s.name, s.metadata, s.configuration, s.created_at",
        )
        .bind(live.ws_id)
        .bind(live.id)
        .bind(new.changes.metadata.as_ref().map(to_value))
        .bind(to_value(&new.changes.configuration.clone().unwrap_or_default()))
        .fetch_one(&mut *c)
        .await?;
        live.session = rows::session(&row, 0, workspace)?;
    }
    upsert_members(c, &live, &new.peers).await?;
    Ok((live.session, created))
}

async fn upsert_members(
    c: &mut PgConnection,
    live: &Live,
    members: &[(String, SessionPeerConfig)],
) -> R<()> {
    if members.is_empty() {
        return Ok(());
    }
    for ((name, config), at) in members.iter().zip(join_times(members.len())) {
        let peer_id = peers::ensure(c, live.ws_id, name).await?;
        peers::join(c, live.ws_id, live.id, peer_id, config.to_json(), at).await?;
    }
    check_observers(c, live).await
}

/// Fails the whole change when more than the allowed number of active members observe others.
async fn check_observers(c: &mut PgConnection, live: &Live) -> R<()> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM session_peers WHERE workspace_id = $1 AND session_id = $2 AND left_at IS NULL \
         AND configuration -> 'observe_others' = 'true'::jsonb",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .fetch_one(c)
    .await?;
    if count as usize > SESSION_OBSERVERS_LIMIT {
        return Err(Error::observer_limit(&live.session.id, count as usize).into());
    }
    Ok(())
}

pub async fn list(c: &mut PgConnection, workspace: &str, query: &ListQuery) -> R<Page<Session>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    let listing = Listing {
        columns: columns::sessions,
        workspace,
        select: SESSION_COLS,
        from_where: "sessions s WHERE s.workspace_id = $1 AND s.deleted_at IS NULL",
        binds: vec![Bind::Int(ws_id)],
        order: &["s.created_at", "s.id"],
    };
    list_page(c, listing, query, |r| rows::session(r, 0, workspace)).await
}

pub async fn list_for_peer(
    c: &mut PgConnection,
    workspace: &str,
    peer: &str,
    query: &ListQuery,
) -> R<Page<Session>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    let Some(peer_id) = peers::id_of(c, ws_id, peer).await? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    let listing = Listing {
        columns: columns::sessions,
        workspace,
        select: SESSION_COLS,
        from_where: "sessions s WHERE s.workspace_id = $1 AND s.deleted_at IS NULL AND EXISTS (SELECT 1 FROM session_peers sp \
                     WHERE sp.workspace_id = $1 AND sp.session_id = s.id AND sp.peer_id = $2)",
        binds: vec![Bind::Int(ws_id), Bind::Int(peer_id)],
        order: &["s.created_at", "s.id"],
    };
    list_page(c, listing, query, |r| rows::session(r, 0, workspace)).await
}

pub async fn set_members(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    members: &[(String, SessionPeerConfig)],
    mode: MembershipMode,
) -> R<Session> {
    let live = match mode {
        MembershipMode::Add => ensure(c, workspace, session).await?.0,
        MembershipMode::Replace => require(c, workspace, session).await?,
    };
    if mode == MembershipMode::Add {
        upsert_members(c, &live, members).await?;
        return Ok(live.session);
    }
    sqlx::query(
        "UPDATE session_peers SET left_at = $3 WHERE workspace_id = $1 AND session_id = $2 AND left_at IS NULL",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(now_micros())
    .execute(&mut *c)
    .await?;
    // Re-listed members rejoin with the configuration given now.
    for ((name, config), at) in members.iter().zip(join_times(members.len())) {
        let peer_id = peers::ensure(c, live.ws_id, name).await?;
        sqlx::query(
            "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
             VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
             configuration = EXCLUDED.configuration, joined_at = EXCLUDED.joined_at, left_at = NULL",
        )
        .bind(live.ws_id)
        .bind(live.id)
        .bind(peer_id)
        .bind(config.to_json())
        .bind(at)
        .execute(&mut *c)
        .await?;
    }
    check_observers(c, &live).await?;
    Ok(live.session)
}

pub async fn remove_members(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    names: &[String],
) -> R<Session> {
    let live = require(c, workspace, session).await?;
    sqlx::query(
        "UPDATE session_peers sp SET left_at = $4 FROM peers p \
         WHERE p.workspace_id = $1 AND p.name = ANY($3) AND sp.workspace_id = $1 AND sp.session_id = $2 \
         AND sp.peer_id = p.id AND sp.left_at IS NULL",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(names)
    .bind(now_micros())
    .execute(c)
    .await?;
    Ok(live.session)
}

pub async fn list_members(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    page: PageRequest,
) -> R<Page<Peer>> {
    let Some(live) = find(c, workspace, session).await? else {
        return Ok(Page::new(vec![], 0, page));
    };
    let query = ListQuery {
        filter: None,
        page,
        reverse: false,
    };
    let listing = Listing {
        columns: columns::peers,
        workspace,
        select: PEER_COLS,
        from_where: "peers p JOIN session_peers sp ON sp.workspace_id = p.workspace_id AND sp.peer_id = p.id \
                     WHERE sp.workspace_id = $1 AND sp.session_id = $2 AND sp.left_at IS NULL",
        binds: vec![Bind::Int(live.ws_id), Bind::Int(live.id)],
        order: &["sp.joined_at", "p.id"],
    };
    list_page(c, listing, &query, |r| rows::peer(r, 0, workspace)).await
}

async fn membership(
    c: &mut PgConnection,
    live: &Live,
    peer_id: i64,
) -> R<Option<SessionPeerConfig>> {
    let config: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT configuration FROM session_peers WHERE workspace_id = $1 AND session_id = $2 AND peer_id = $3",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(peer_id)
    .fetch_optional(c)
    .await?;
    Ok(config.map(|v| SessionPeerConfig::from_json(&v)))
}

pub async fn get_member_config(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    peer: &str,
) -> R<SessionPeerConfig> {
    let live = find(c, workspace, session)
        .await?
        .ok_or_else(|| Error::session_not_found(workspace, session))?;
    let peer_id = peers::require_found(peers::id_of(c, live.ws_id, peer).await?, workspace, peer)?;
    let config = membership(c, &live, peer_id).await?.ok_or_else(|| {
        Error::NotFound(format!(
            "Session peer {peer} not found in session {session} in workspace {workspace}"
        ))
    })?;
    Ok(config)
}

pub async fn set_member_config(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    peer: &str,
    config: SessionPeerConfig,
) -> R<()> {
    let live = require(c, workspace, session).await?;
    let peer_id = peers::require_found(peers::id_of(c, live.ws_id, peer).await?, workspace, peer)?;
    let merged = membership(c, &live, peer_id)
        .await?
        .unwrap_or_default()
        .merged(config);
    sqlx::query(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
         configuration = EXCLUDED.configuration",
    )
    .bind(live.ws_id)
    .bind(live.id)
    .bind(peer_id)
    .bind(merged.to_json())
    .bind(now_micros())
    .execute(&mut *c)
    .await?;
    check_observers(c, &live).await
}
