//! Peer rows and peer cards.

use engram_core::filter_sql::columns;
use engram_core::model::{Json, ListQuery, NewPeer, Page, Peer};
use engram_core::time::now_micros;
use engram_core::{Error, Result};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::dialect::list_page;
use crate::rows::{self, PEER_COLS, json_text};
use crate::{db_err, workspaces};

pub fn find(
    conn: &Connection,
    ws_id: i64,
    workspace: &str,
    name: &str,
) -> Result<Option<(i64, Peer)>> {
    conn.prepare_cached(&format!(
        "SELECT p.id, {PEER_COLS} FROM peers p WHERE p.workspace_id = ?1 AND p.name = ?2"
    ))
    .map_err(db_err)?
    .query_row(params![ws_id, name], |r| {
        let id: i64 = r.get(0)?;
        let peer = Peer {
            id: r.get(1)?,
            workspace_id: workspace.to_string(),
            metadata: rows::json(&r.get::<_, String>(2)?),
            configuration: rows::json(&r.get::<_, String>(3)?),
            created_at: r.get(4)?,
        };
        Ok((id, peer))
    })
    .optional()
    .map_err(db_err)
}

pub fn id_of(conn: &Connection, ws_id: i64, name: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM peers WHERE workspace_id = ?1 AND name = ?2")
        .map_err(db_err)?
        .query_row(params![ws_id, name], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

/// The peer's internal id, creating an empty peer if needed.
pub fn ensure(conn: &Connection, ws_id: i64, name: &str) -> Result<i64> {
    if let Some(id) = id_of(conn, ws_id, name)? {
        return Ok(id);
    }
    conn.prepare_cached(
        "INSERT INTO peers (workspace_id, name, metadata, configuration, created_at) VALUES (?1, ?2, '{}', '{}', ?3) RETURNING id",
    )
    .map_err(db_err)?
    .query_row(params![ws_id, name, now_micros()], |r| r.get(0))
    .map_err(db_err)
}

pub fn get_or_create(conn: &Connection, workspace: &str, new: NewPeer) -> Result<(Peer, bool)> {
    let ws_id = workspaces::ensure(conn, workspace)?;
    let existed = id_of(conn, ws_id, &new.name)?.is_some();
    let id = ensure(conn, ws_id, &new.name)?;
    if let Some(metadata) = &new.changes.metadata {
        conn.prepare_cached("UPDATE peers SET metadata = ?1 WHERE id = ?2")
            .map_err(db_err)?
            .execute(params![json_text(metadata), id])
            .map_err(db_err)?;
    }
    if let Some(configuration) = &new.changes.configuration {
        conn.prepare_cached("UPDATE peers SET configuration = ?1 WHERE id = ?2")
            .map_err(db_err)?
            .execute(params![json_text(configuration), id])
            .map_err(db_err)?;
    }
    let (_, peer) =
        find(conn, ws_id, workspace, &new.name)?.ok_or_else(|| Error::internal("peer vanished"))?;
    Ok((peer, !existed))
}

pub fn list(conn: &Connection, workspace: &str, query: &ListQuery) -> Result<Page<Peer>> {
    let Some(ws_id) = workspaces::id_of(conn, workspace)? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    list_page(
        conn,
        columns::peers,
        workspace,
        PEER_COLS,
        "peers p WHERE p.workspace_id = ?1",
        vec![SqlValue::Integer(ws_id)],
        &["p.created_at", "p.id"],
        query,
        rows::peer(workspace),
    )
}

fn card_key(observer: &str, observed: &str) -> String {
    if observer == observed {
        "peer_card".into()
    } else {
        format!("{observed}_peer_card")
    }
}

pub fn get_card(
    conn: &Connection,
    workspace: &str,
    observer: &str,
    observed: &str,
) -> Result<Option<Vec<String>>> {
    let internal: Option<String> = match workspaces::id_of(conn, workspace)? {
        Some(ws_id) => conn
            .prepare_cached(
                "SELECT internal_metadata FROM peers WHERE workspace_id = ?1 AND name = ?2",
            )
            .map_err(db_err)?
            .query_row(params![ws_id, observer], |r| r.get(0))
            .optional()
            .map_err(db_err)?,
        None => None,
    };
    let internal = internal.ok_or_else(|| Error::peer_not_found(workspace, observer))?;
    let map: Json = rows::json(&internal);
    Ok(map
        .get(&card_key(observer, observed))
        .and_then(|v| serde_json::from_value(v.clone()).ok()))
}

pub fn set_card(
    conn: &Connection,
    workspace: &str,
    observer: &str,
    observed: &str,
    card: Vec<String>,
) -> Result<()> {
    let ws_id = workspaces::ensure(conn, workspace)?;
    let id = ensure(conn, ws_id, observer)?;
    let internal: String = conn
        .query_row(
            "SELECT internal_metadata FROM peers WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let mut map = rows::json(&internal);
    map.insert(card_key(observer, observed), Value::from(card));
    conn.execute(
        "UPDATE peers SET internal_metadata = ?1 WHERE id = ?2",
        params![json_text(&map), id],
    )
    .map_err(db_err)?;
    Ok(())
}

/// Inserts a membership or rejoins a member who left; active members keep their config.
/// Callers give each member of one request a later `joined_at` than the previous one,
/// so member lists follow request order.
pub fn join(
    conn: &Connection,
    ws_id: i64,
    session_id: i64,
    peer_id: i64,
    config: &Value,
    joined_at: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO session_peers (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, NULL) \
         ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
           configuration = CASE WHEN left_at IS NULL THEN configuration ELSE excluded.configuration END, \
           joined_at = CASE WHEN left_at IS NULL THEN joined_at ELSE excluded.joined_at END, \
           left_at = NULL",
    )
    .map_err(db_err)?
    .execute(params![ws_id, session_id, peer_id, config.to_string(), joined_at])
    .map_err(db_err)?;
    Ok(())
}
