//! Peer rows, peer cards and membership upserts.

use engram_core::filter_sql::Bind;
use engram_core::filter_sql::columns;
use engram_core::model::{Json, ListQuery, NewPeer, Page, Peer};
use engram_core::time::now_micros;
use engram_core::{Error, Result};
use serde_json::Value;
use sqlx::{PgConnection, Row};

use crate::dialect::{Listing, list_page};
use crate::rows::{self, PEER_COLS, to_value};
use crate::{R, workspaces};

pub async fn find(
    c: &mut PgConnection,
    ws_id: i64,
    workspace: &str,
    name: &str,
) -> R<Option<Peer>> {
    let row = sqlx::query("SELECT p.name, p.metadata, p.configuration, p.created_at FROM peers p WHERE p.workspace_id = $1 AND p.name = $2")
        .bind(ws_id)
        .bind(name)
        .fetch_optional(c)
        .await?;
    Ok(match row {
        Some(r) => Some(rows::peer(&r, 0, workspace)?),
        None => None,
    })
}

pub async fn id_of(c: &mut PgConnection, ws_id: i64, name: &str) -> R<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM peers WHERE workspace_id = $1 AND name = $2")
            .bind(ws_id)
            .bind(name)
            .fetch_optional(c)
            .await?,
    )
}

/// `Some(id)` when this call inserted the peer; a concurrent creator makes it wait and
/// then do nothing.
async fn insert(
    c: &mut PgConnection,
    ws_id: i64,
    name: &str,
    metadata: Value,
    configuration: Value,
) -> R<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO peers (workspace_id, name, metadata, configuration, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (workspace_id, name) DO NOTHING RETURNING id",
    )
    .bind(ws_id)
    .bind(name)
    .bind(metadata)
    .bind(configuration)
    .bind(now_micros())
    .fetch_optional(c)
    .await?)
}

fn empty() -> Value {
    Value::Object(Json::new())
}

/// The peer's internal id, creating an empty peer if needed.
pub async fn ensure(c: &mut PgConnection, ws_id: i64, name: &str) -> R<i64> {
    if let Some(id) = id_of(c, ws_id, name).await? {
        return Ok(id);
    }
    if let Some(id) = insert(c, ws_id, name, empty(), empty()).await? {
        return Ok(id);
    }
    id_of(c, ws_id, name)
        .await?
        .ok_or_else(|| Error::internal("peer vanished").into())
}

pub async fn get_or_create(
    c: &mut PgConnection,
    workspace: &str,
    new: &NewPeer,
) -> R<(Peer, bool)> {
    let ws_id = workspaces::ensure(c, workspace).await?;
    let metadata = new.changes.metadata.as_ref().map(to_value);
    let configuration = new.changes.configuration.as_ref().map(to_value);
    let created = id_of(c, ws_id, &new.name).await?.is_none()
        && insert(
            c,
            ws_id,
            &new.name,
            metadata.clone().unwrap_or_else(empty),
            configuration.clone().unwrap_or_else(empty),
        )
        .await?
        .is_some();
    if !created && (metadata.is_some() || configuration.is_some()) {
        sqlx::query(
            "UPDATE peers SET metadata = COALESCE($3, metadata), configuration = COALESCE($4, configuration) \
             WHERE workspace_id = $1 AND name = $2",
        )
        .bind(ws_id)
        .bind(&new.name)
        .bind(metadata)
        .bind(configuration)
        .execute(&mut *c)
        .await?;
    }
    let peer = find(c, ws_id, workspace, &new.name)
        .await?
        .ok_or_else(|| Error::internal("peer vanished"))?;
    Ok((peer, created))
}

pub async fn list(c: &mut PgConnection, workspace: &str, query: &ListQuery) -> R<Page<Peer>> {
    let Some(ws_id) = workspaces::id_of(c, workspace).await? else {
        return Ok(Page::new(vec![], 0, query.page));
    };
    let listing = Listing {
        columns: columns::peers,
        workspace,
        select: PEER_COLS,
        from_where: "peers p WHERE p.workspace_id = $1",
        binds: vec![Bind::Int(ws_id)],
        order: &["p.created_at", "p.id"],
    };
    list_page(c, listing, query, |r| rows::peer(r, 0, workspace)).await
}

fn card_key(observer: &str, observed: &str) -> String {
    if observer == observed {
        "peer_card".into()
    } else {
        format!("{observed}_peer_card")
    }
}

pub async fn get_card(
    c: &mut PgConnection,
    workspace: &str,
    observer: &str,
    observed: &str,
) -> R<Option<Vec<String>>> {
    let found: Option<Option<Value>> = match workspaces::id_of(c, workspace).await? {
        Some(ws_id) => sqlx::query(
            "SELECT internal_metadata -> $3 FROM peers WHERE workspace_id = $1 AND name = $2",
        )
        .bind(ws_id)
        .bind(observer)
        .bind(card_key(observer, observed))
        .fetch_optional(c)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?,
        None => None,
    };
    let card = found.ok_or_else(|| Error::peer_not_found(workspace, observer))?;
    Ok(card.and_then(|v| serde_json::from_value(v).ok()))
}

/// Writes one key of `internal_metadata` with `||`, so concurrent card writes for
/// different targets never overwrite each other.
pub async fn set_card(
    c: &mut PgConnection,
    workspace: &str,
    observer: &str,
    observed: &str,
    card: &[String],
) -> R<()> {
    let ws_id = workspaces::ensure(c, workspace).await?;
    let id = ensure(c, ws_id, observer).await?;
    sqlx::query(
        "UPDATE peers SET internal_metadata = internal_metadata || jsonb_build_object($3::text, $4::jsonb) \
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(ws_id)
    .bind(id)
    .bind(card_key(observer, observed))
    .bind(Value::from(card.to_vec()))
    .execute(c)
    .await?;
    Ok(())
}

/// Inserts a membership or rejoins a member who left; active members keep their config
/// and are not rewritten at all.
pub async fn join(
    c: &mut PgConnection,
    ws_id: i64,
    session_id: i64,
    peer_id: i64,
    config: Value,
    at: i64,
) -> R<()> {
    sqlx::query(
        "INSERT INTO session_peers AS sp (workspace_id, session_id, peer_id, configuration, joined_at, left_at) \
         VALUES ($1, $2, $3, $4, $5, NULL) \
         ON CONFLICT (workspace_id, session_id, peer_id) DO UPDATE SET \
           configuration = EXCLUDED.configuration, joined_at = EXCLUDED.joined_at, left_at = NULL \
         WHERE sp.left_at IS NOT NULL",
    )
    .bind(ws_id)
    .bind(session_id)
    .bind(peer_id)
    .bind(config)
    .bind(at)
    .execute(c)
    .await?;
    Ok(())
}

pub fn require_found<T>(found: Option<T>, workspace: &str, peer: &str) -> Result<T> {
    found.ok_or_else(|| Error::peer_not_found(workspace, peer))
}
