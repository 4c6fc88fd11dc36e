//! Workspace rows.

use engram_core::Error;
use engram_core::filter_sql::Bind;
use engram_core::filter_sql::columns;
use engram_core::model::{Changes, ListQuery, NewWorkspace, Page, Workspace};
use engram_core::time::now_micros;
use serde_json::Value;
use sqlx::{PgConnection, Row};

use crate::R;
use crate::dialect::{Listing, list_page};
use crate::rows::{self, WORKSPACE_COLS, to_value};

pub async fn find(c: &mut PgConnection, name: &str) -> R<Option<(i64, Workspace)>> {
    let row = sqlx::query(
        "SELECT w.id, w.name, w.metadata, w.configuration, w.created_at FROM workspaces w WHERE w.name = $1 AND w.deleted_at IS NULL",
    )
    .bind(name)
    .fetch_optional(c)
    .await?;
    Ok(match row {
        Some(r) => Some((r.try_get(0)?, rows::workspace(&r, 1)?)),
        None => None,
    })
}

pub async fn id_of(c: &mut PgConnection, name: &str) -> R<Option<i64>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM workspaces WHERE name = $1 AND deleted_at IS NULL")
            .bind(name)
            .fetch_optional(c)
            .await?,
    )
}

/// Inserts the workspace unless it exists; `Some(id)` when this call created it. A
/// concurrent creator makes the insert wait for its commit and then do nothing.
async fn insert(
    c: &mut PgConnection,
    name: &str,
    metadata: Value,
    configuration: Value,
) -> R<Option<i64>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO workspaces (name, metadata, configuration, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) WHERE deleted_at IS NULL DO NOTHING RETURNING id",
    )
    .bind(name)
    .bind(metadata)
    .bind(configuration)
    .bind(now_micros())
    .fetch_optional(c)
    .await?)
}

/// The workspace's internal id, creating an empty workspace if needed.
pub async fn ensure(c: &mut PgConnection, name: &str) -> R<i64> {
    if let Some(id) = id_of(c, name).await? {
        return Ok(id);
    }
    if let Some(id) = insert(
        c,
        name,
        Value::Object(Default::default()),
        Value::Object(Default::default()),
    )
    .await?
    {
        return Ok(id);
    }
    // Another transaction created it between our read and insert; its row is committed now.
    id_of(c, name)
        .await?
        .ok_or_else(|| Error::internal("workspace vanished").into())
}

pub async fn get_or_create(c: &mut PgConnection, new: &NewWorkspace) -> R<(Workspace, bool)> {
    if let Some((_, ws)) = find(c, &new.name).await? {
        return Ok((ws, false));
    }
    let metadata = to_value(&new.metadata.clone().unwrap_or_default());
    let configuration = to_value(&new.configuration.clone().unwrap_or_default());
    let created = insert(c, &new.name, metadata, configuration)
        .await?
        .is_some();
    let (_, ws) = find(c, &new.name)
        .await?
        .ok_or_else(|| Error::internal("workspace vanished"))?;
    Ok((ws, created))
}

/// Metadata replaced, configuration merged by top-level key (`||`), in one statement so
/// concurrent updates never lose each other's configuration keys.
pub async fn update(c: &mut PgConnection, name: &str, changes: &Changes) -> R<Workspace> {
    let id = ensure(c, name).await?;
    let row = sqlx::query(
        "UPDATE workspaces w SET metadata = COALESCE($2, w.metadata), configuration = w.configuration || $3 \
         WHERE w.id = $1 RETURNING w.name, w.metadata, w.configuration, w.created_at",
    )
    .bind(id)
    .bind(changes.metadata.as_ref().map(to_value))
    .bind(to_value(&changes.configuration.clone().unwrap_or_default()))
    .fetch_one(c)
    .await?;
    Ok(rows::workspace(&row, 0)?)
}

pub async fn list(c: &mut PgConnection, query: &ListQuery) -> R<Page<Workspace>> {
    let listing = Listing {
        columns: columns::workspaces,
        workspace: "",
        select: WORKSPACE_COLS,
        from_where: "workspaces w WHERE w.deleted_at IS NULL",
        binds: Vec::<Bind>::new(),
        order: &["w.created_at", "w.id"],
    };
    list_page(c, listing, query, |r| rows::workspace(r, 0)).await
}
