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
use sqlx::{PgConnection, Row};

use crate::store::PgStore;
use crate::{R, queue, workspaces};

fn endpoint(workspace: &str, r: &sqlx::postgres::PgRow) -> R<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: r.try_get(0)?,
        workspace_id: workspace.to_string(),
        url: r.try_get(1)?,
        created_at: r.try_get(2)?,
    })
}

async fn create(c: &mut PgConnection, workspace: &str, url: &str) -> R<(WebhookEndpoint, bool)> {
    let ws = workspaces::id_of(c, workspace)
        .await?
        .ok_or_else(|| Error::workspace_not_found(workspace))?;
    // Serializes registrations of one workspace so the limit holds under concurrency.
    sqlx::query("SELECT 1 FROM workspaces WHERE id = $1 FOR UPDATE")
        .bind(ws)
        .execute(&mut *c)
        .await?;
    let existing = sqlx::query(
        "SELECT public_id, url, created_at FROM webhook_endpoints WHERE workspace_id = $1 AND url = $2",
    )
    .bind(ws)
    .bind(url)
    .fetch_optional(&mut *c)
    .await?;
    if let Some(row) = existing {
        return Ok((endpoint(workspace, &row)?, false));
    }
    let count: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(&mut *c)
            .await?;
    if count >= MAX_ENDPOINTS {
        return Err(limit_reached().into());
    }
    let created = WebhookEndpoint {
        id: new_public_id(),
        workspace_id: workspace.to_string(),
        url: url.to_string(),
        created_at: now_micros(),
    };
    sqlx::query(
        "INSERT INTO webhook_endpoints (workspace_id, public_id, url, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(ws)
    .bind(&created.id)
    .bind(&created.url)
    .bind(created.created_at)
    .execute(&mut *c)
    .await?;
    Ok((created, true))
}

async fn list(
    c: &mut PgConnection,
    workspace: &str,
    page: PageRequest,
) -> R<Page<WebhookEndpoint>> {
    let Some(ws) = workspaces::id_of(c, workspace).await? else {
        return Ok(Page::new(vec![], 0, page));
    };
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(&mut *c)
            .await?;
    let rows = sqlx::query(
        "SELECT public_id, url, created_at FROM webhook_endpoints WHERE workspace_id = $1 \
         ORDER BY created_at, id LIMIT $2 OFFSET $3",
    )
    .bind(ws)
    .bind(page.size)
    .bind(page.offset())
    .fetch_all(&mut *c)
    .await?;
    let items = rows
        .iter()
        .map(|r| endpoint(workspace, r))
        .collect::<R<Vec<_>>>()?;
    Ok(Page::new(items, total, page))
}

async fn delete(c: &mut PgConnection, workspace: &str, id: &str) -> R<()> {
    let removed = match workspaces::id_of(c, workspace).await? {
        Some(ws) => {
            sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND public_id = $2")
                .bind(ws)
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected()
        }
        None => 0,
    };
    if removed == 0 {
        return Err(webhook_not_found(workspace, id).into());
    }
    Ok(())
}

async fn publish(c: &mut PgConnection, workspace: &str, event: &Event) -> R<usize> {
    match workspaces::id_of(c, workspace).await? {
        Some(ws) => queue_event(c, ws, event).await,
        None => Ok(0),
    }
}

/// Queues one delivery of `event` per endpoint of the workspace with internal id
/// `ws`, inside the caller's transaction.
pub async fn queue_event(c: &mut PgConnection, ws: i64, event: &Event) -> R<usize> {
    let targets: Vec<(String, String)> = sqlx::query_as(
        "SELECT public_id, url FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY id",
    )
    .bind(ws)
    .fetch_all(&mut *c)
    .await?;
    for (id, url) in &targets {
        let delivery = Delivery::new(id, url, event);
        queue::enqueue(c, &Task::WebhookDelivery(delivery)).await?;
    }
    Ok(targets.len())
}

async fn is_active_member(
    c: &mut PgConnection,
    workspace: &str,
    session: &str,
    peer: &str,
) -> R<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM workspaces w \
         JOIN sessions s ON s.workspace_id = w.id AND s.name = $2 AND s.deleted_at IS NULL \
         JOIN peers p ON p.workspace_id = w.id AND p.name = $3 \
         JOIN session_peers sp ON sp.workspace_id = w.id AND sp.session_id = s.id AND sp.peer_id = p.id \
         WHERE w.name = $1 AND w.deleted_at IS NULL AND sp.left_at IS NULL)",
    )
    .bind(workspace)
    .bind(session)
    .bind(peer)
    .fetch_one(c)
    .await?)
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, workspace: &str, url: &str) -> Result<(WebhookEndpoint, bool)> {
        writing!(self, |c| create(c, workspace, url).await)
    }

    async fn list_webhooks(
        &self,
        workspace: &str,
        page: PageRequest,
    ) -> Result<Page<WebhookEndpoint>> {
        reading!(self, |c| list(c, workspace, page).await)
    }

    async fn delete_webhook(&self, workspace: &str, id: &str) -> Result<()> {
        writing!(self, |c| delete(c, workspace, id).await)
    }

    async fn publish_event(&self, workspace: &str, event: &Event) -> Result<usize> {
        writing!(self, |c| publish(c, workspace, event).await)
    }
}

#[async_trait]
impl MembershipStore for PgStore {
    async fn is_active_member(&self, workspace: &str, session: &str, peer: &str) -> Result<bool> {
        reading!(self, |c| is_active_member(c, workspace, session, peer)
            .await)
    }
}
