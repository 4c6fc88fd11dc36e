//! Workspace rows.

use engram_core::filter_sql::columns;
use engram_core::model::{
    Changes, Json, ListQuery, NewWorkspace, Page, Workspace, merge_top_level,
};
use engram_core::time::now_micros;
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::db_err;
use crate::dialect::list_page;
use crate::rows::{self, WORKSPACE_COLS, json_text};

pub fn find(conn: &Connection, name: &str) -> Result<Option<(i64, Workspace)>> {
    conn.prepare_cached(&format!(
        "SELECT w.id, {WORKSPACE_COLS} FROM workspaces w WHERE w.name = ?1 AND w.deleted_at IS NULL"
    ))
    .map_err(db_err)?
    .query_row([name], |r| {
        let id: i64 = r.get(0)?;
        let ws = Workspace {
            id: r.get(1)?,
            metadata: rows::json(&r.get::<_, String>(2)?),
            configuration: rows::json(&r.get::<_, String>(3)?),
            created_at: r.get(4)?,
        };
        Ok((id, ws))
    })
    .optional()
    .map_err(db_err)
}

pub fn id_of(conn: &Connection, name: &str) -> Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM workspaces WHERE name = ?1 AND deleted_at IS NULL")
        .map_err(db_err)?
        .query_row([name], |r| r.get(0))
        .optional()
        .map_err(db_err)
}

/// Returns the workspace's internal id, creating an empty workspace if needed.
pub fn ensure(conn: &Connection, name: &str) -> Result<i64> {
    if let Some(id) = id_of(conn, name)? {
        return Ok(id);
    }
    insert(conn, name, &Json::new(), &Json::new())
}

fn insert(conn: &Connection, name: &str, metadata: &Json, configuration: &Json) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO workspaces (name, metadata, configuration, created_at) VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )
    .map_err(db_err)?
    .query_row(params![name, json_text(metadata), json_text(configuration), now_micros()], |r| r.get(0))
    .map_err(db_err)
}

pub fn get_or_create(conn: &Connection, new: NewWorkspace) -> Result<(Workspace, bool)> {
    if let Some((_, ws)) = find(conn, &new.name)? {
        return Ok((ws, false));
    }
    let metadata = new.metadata.unwrap_or_default();
    let configuration = new.configuration.unwrap_or_default();
    insert(conn, &new.name, &metadata, &configuration)?;
    let (_, ws) = find(conn, &new.name)?.ok_or_else(|| Error::internal("workspace vanished"))?;
    Ok((ws, true))
}

pub fn update(conn: &Connection, name: &str, changes: Changes) -> Result<Workspace> {
    let (id, mut ws) = match find(conn, name)? {
        Some(found) => found,
        None => {
            ensure(conn, name)?;
            find(conn, name)?.ok_or_else(|| Error::internal("workspace vanished"))?
        }
    };
    if let Some(metadata) = changes.metadata {
        ws.metadata = metadata;
    }
    if let Some(configuration) = changes.configuration {
        merge_top_level(&mut ws.configuration, configuration);
    }
    conn.prepare_cached("UPDATE workspaces SET metadata = ?1, configuration = ?2 WHERE id = ?3")
        .map_err(db_err)?
        .execute(params![
            json_text(&ws.metadata),
            json_text(&ws.configuration),
            id
        ])
        .map_err(db_err)?;
    Ok(ws)
}

pub fn list(conn: &Connection, query: &ListQuery) -> Result<Page<Workspace>> {
    list_page(
        conn,
        columns::workspaces,
        "",
        WORKSPACE_COLS,
        "workspaces w WHERE w.deleted_at IS NULL",
        vec![],
        &["w.created_at", "w.id"],
        query,
        rows::workspace,
    )
}
