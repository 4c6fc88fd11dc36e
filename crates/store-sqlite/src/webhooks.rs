//! Webhook endpoints, event publishing (one delivery job per endpoint, in the
//! caller's transaction) and the membership check behind member-read keys.

use async_trait::async_trait;
use engram_core::auth::MembershipStore;
use engram_core::ids::new_public_id;
use engram_core::jobs::Task;
use engram_core::model::{Page, PageRequest};
use engram_core::time::now_micros;
use engram_core::webhooks::{
    Delivery, Event, MAX_ENDPOINTS, WebhookEndpoint, WebhookStore, limit_reached, webhook_not_found,
};
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::SqliteStore;
use crate::{db_err, queue, workspaces};

fn endpoint(workspace: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: r.get(0)?,
        workspace_id: workspace.to_string(),
        url: r.get(1)?,
        created_at: r.get(2)?,
    })
}

pub fn create(conn: &Connection, workspace: &str, url: &str) -> Result<(WebhookEndpoint, bool)> {
    let ws =
        workspaces::id_of(conn, workspace)?.ok_or_else(|| Error::workspace_not_found(workspace))?;
    let existing = conn
        .prepare_cached(
            "SELECT public_id, url, created_at FROM webhook_endpoints WHERE workspace_id = ?1 AND url = ?2",
        )
        .map_err(db_err)?
        .query_row(params![ws, url], |r| endpoint(workspace, r))
        .optional()
        .map_err(db_err)?;
    if let Some(e) = existing {
        return Ok((e, false));
    }
    let count: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace_id = ?1")
        .map_err(db_err)?
        .query_row([ws], |r| r.get(0))
        .map_err(db_err)?;
    if count >= MAX_ENDPOINTS {
        return Err(limit_reached());
    }
    let created = WebhookEndpoint {
        id: new_public_id(),
        workspace_id: workspace.to_string(),
        url: url.to_string(),
        created_at: now_micros(),
    };
    conn.prepare_cached(
        "INSERT INTO webhook_endpoints (workspace_id, public_id, url, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(db_err)?
    .execute(params![ws, created.id, created.url, created.created_at])
    .map_err(db_err)?;
    Ok((created, true))
}

pub fn list(
    conn: &Connection,
    workspace: &str,
    page: PageRequest,
) -> Result<Page<WebhookEndpoint>> {
    let Some(ws) = workspaces::id_of(conn, workspace)? else {
        return Ok(Page::new(vec![], 0, page));
    };
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace_id = ?1")
        .map_err(db_err)?
        .query_row([ws], |r| r.get(0))
        .map_err(db_err)?;
    let items = conn
        .prepare_cached(
            "SELECT public_id, url, created_at FROM webhook_endpoints WHERE workspace_id = ?1 \
             ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
        )
        .map_err(db_err)?
        .query_map(params![ws, page.size, page.offset()], |r| {
            endpoint(workspace, r)
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    Ok(Page::new(items, total, page))
}

pub fn delete(conn: &Connection, workspace: &str, id: &str) -> Result<()> {
    let removed = match workspaces::id_of(conn, workspace)? {
        Some(ws) => conn
            .prepare_cached(
                "DELETE FROM webhook_endpoints WHERE workspace_id = ?1 AND public_id = ?2",
            )
            .map_err(db_err)?
            .execute(params![ws, id])
            .map_err(db_err)?,
        None => 0,
    };
    if removed == 0 {
        return Err(webhook_not_found(workspace, id));
    }
    Ok(())
}

pub fn publish(conn: &Connection, workspace: &str, event: &Event) -> Result<usize> {
    match workspaces::id_of(conn, workspace)? {
        Some(ws) => queue_event(conn, ws, event),
        None => Ok(0),
    }
}

/// Queues one delivery of `event` per endpoint of the workspace with internal id
/// `ws`, inside the caller's transaction.
pub fn queue_event(conn: &Connection, ws: i64, event: &Event) -> Result<usize> {
    let targets = conn
        .prepare_cached(
            "SELECT public_id, url FROM webhook_endpoints WHERE workspace_id = ?1 ORDER BY id",
        )
        .map_err(db_err)?
        .query_map([ws], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_err)?;
    for (id, url) in &targets {
        let delivery = Delivery::new(id, url, event);
        queue::enqueue(conn, &Task::WebhookDelivery(delivery))?;
    }
    Ok(targets.len())
}

pub fn is_active_member(
    conn: &Connection,
    workspace: &str,
    session: &str,
    peer: &str,
) -> Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM workspaces w \
         JOIN sessions s ON s.workspace_id = w.id AND s.name = ?2 AND s.deleted_at IS NULL \
         JOIN peers p ON p.workspace_id = w.id AND p.name = ?3 \
         JOIN session_peers sp ON sp.workspace_id = w.id AND sp.session_id = s.id AND sp.peer_id = p.id \
         WHERE w.name = ?1 AND w.deleted_at IS NULL AND sp.left_at IS NULL)",
    )
    .map_err(db_err)?
    .query_row(params![workspace, session, peer], |r| r.get(0))
    .map_err(db_err)
}

fn owned(s: &str) -> String {
    s.to_string()
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, workspace: &str, url: &str) -> Result<(WebhookEndpoint, bool)> {
        let (ws, url) = (owned(workspace), owned(url));
        self.writer.write(move |c| create(c, &ws, &url)).await
    }

    async fn list_webhooks(
        &self,
        workspace: &str,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>> {
        let ws = owned(workspace);
        self.readers.read(move |c| list(c, &ws, page)).await
    }

    async fn delete_webhook(&self, workspace: &str, id: &str) -> Result<()> {
        let (ws, id) = (owned(workspace), owned(id));
        self.writer.write(move |c| delete(c, &ws, &id)).await
    }

    async fn publish_event(&self, workspace: &str, event: &Event) -> Result<usize> {
        let (ws, event) = (owned(workspace), event.clone());
        self.writer.write(move |c| publish(c, &ws, &event)).await
    }
}

#[async_trait]
impl MembershipStore for SqliteStore {
    async fn is_active_member(&self, workspace: &str, session: &str, peer: &str) -> Result<bool> {
        let (ws, s, p) = (owned(workspace), owned(session), owned(peer));
        self.readers
            .read(move |c| is_active_member(c, &ws, &s, &p))
            .await
    }
}
