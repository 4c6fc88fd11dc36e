//! Message vectors on SQLite: the model record, the vec0 index, the rows embedding
//! jobs read and write, and their removal by the purges.

use std::sync::Once;

use engram_core::jobs::{EmbedBackfill, Task};
use engram_core::queue::Job;
use engram_core::search::{
    BACKFILL_BATCH, EmbedMessages, EmbedSelection, EmbedSource, NewEmbedding,
};
use engram_core::time::{Micros, now_micros};
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};

use crate::search::vector_blob;
use crate::{db_err, queue};

/// Makes sqlite-vec available to every connection this process opens.
/// The one `unsafe` block of the project (see ARCHITECTURE.md).
#[allow(unsafe_code)]
pub fn register_vec() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_vec_init` has the signature SQLite expects of an extension
        // entry point; registering it before any connection opens is how the crate is
        // meant to be used with a statically linked SQLite.
        unsafe {
            type Init = unsafe extern "C" fn(
                *mut rusqlite::ffi::sqlite3,
                *mut *mut std::os::raw::c_char,
                *const rusqlite::ffi::sqlite3_api_routines,
            ) -> std::os::raw::c_int;
            let init: Init = std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ());
            rusqlite::ffi::sqlite3_auto_extension(Some(init));
        }
    });
}

pub fn model(conn: &Connection) -> Result<Option<(String, usize)>> {
    conn.prepare_cached("SELECT model, dimension FROM embedding_model WHERE id = 1")
        .map_err(db_err)?
        .query_row([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as usize)))
        .optional()
        .map_err(db_err)
}

pub fn mismatch(stored: &(String, usize), model: &str, dimension: usize) -> Error {
    Error::Conflict(format!(
        "this database's vectors come from embedding model {} ({} dimensions) but the configured model is {model} ({dimension} dimensions); configure the same model or use a new database",
        stored.0, stored.1
    ))
}

pub fn enable(conn: &Connection, model_name: &str, dimension: usize) -> Result<()> {
    if let Some(stored) = model(conn)? {
        if stored.0 != model_name || stored.1 != dimension {
            return Err(mismatch(&stored, model_name, dimension));
        }
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO embedding_model (id, model, dimension, created_at) VALUES (1, ?1, ?2, ?3)",
    )
    .map_err(db_err)?
    .execute(params![model_name, dimension as i64, now_micros()])
    .map_err(db_err)?;
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE message_vectors USING vec0(\
         workspace_id integer partition key, session_id integer, \
         embedding float[{dimension}] distance_metric=cosine)"
    ))
    .map_err(db_err)?;
    let any: bool = conn
        .query_row("SELECT EXISTS (SELECT 1 FROM messages)", [], |r| r.get(0))
        .map_err(db_err)?;
    if any {
        queue::enqueue(conn, &Task::EmbedBackfill(EmbedBackfill {}))?;
    }
    Ok(())
}

/// Queues the embedding of freshly written messages, inside the write's transaction,
/// when this database has embeddings turned on.
pub fn enqueue_for_write(
    conn: &Connection,
    workspace_id: i64,
    session_id: i64,
    message_ids: Vec<i64>,
) -> Result<()> {
    if message_ids.is_empty() || model(conn)?.is_none() {
        return Ok(());
    }
    let job = EmbedMessages {
        workspace_id,
        session_id,
        message_ids,
    };
    queue::enqueue(conn, &Task::EmbedMessages(job))
}

const SOURCE: &str = "SELECT m.id, m.workspace_id, m.session_id, m.content FROM messages m \
     JOIN sessions s ON s.id = m.session_id \
     WHERE s.deleted_at IS NULL AND trim(m.content) <> '' \
     AND NOT EXISTS (SELECT 1 FROM message_embeddings e WHERE e.message_id = m.id)";

pub fn to_embed(conn: &Connection, which: &EmbedSelection) -> Result<Vec<EmbedSource>> {
    let map = |r: &rusqlite::Row<'_>| {
        Ok(EmbedSource {
            message_id: r.get(0)?,
            workspace_id: r.get(1)?,
            session_id: r.get(2)?,
            content: r.get(3)?,
        })
    };
    let rows = match which {
        EmbedSelection::Listed(ids) => {
            if ids.is_empty() {
                return Ok(vec![]);
            }
            let list: Vec<String> = ids.iter().map(i64::to_string).collect();
            conn.prepare(&format!(
                "{SOURCE} AND m.id IN ({}) ORDER BY m.id",
                list.join(",")
            ))
            .map_err(db_err)?
            .query_map([], map)
            .map_err(db_err)?
            .collect::<rusqlite::Result<Vec<_>>>()
        }
        EmbedSelection::After(after) => conn
            .prepare_cached(&format!(
                "{SOURCE} AND m.id > ?1 ORDER BY m.id LIMIT {BACKFILL_BATCH}"
            ))
            .map_err(db_err)?
            .query_map([after], map)
            .map_err(db_err)?
            .collect::<rusqlite::Result<Vec<_>>>(),
    };
    rows.map_err(db_err)
}

pub fn store(
    conn: &Connection,
    job: &Job,
    rows: Vec<NewEmbedding>,
    lease_until: Micros,
) -> Result<usize> {
    queue::renew(conn, job.id, job.attempts, lease_until)?;
    let mut live = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM messages m JOIN sessions s ON s.id = m.session_id \
             WHERE m.id = ?1 AND m.session_id = ?2 AND s.deleted_at IS NULL)",
        )
        .map_err(db_err)?;
    let mut insert_row = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO message_embeddings (workspace_id, session_id, message_id, chunk) \
             VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    let mut insert_vector = conn
        .prepare_cached(
            "INSERT INTO message_vectors (rowid, workspace_id, session_id, embedding) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db_err)?;
    let mut written = 0;
    let mut checked: Option<(i64, bool)> = None;
    for row in rows {
        let is_live = match checked {
            Some((id, ok)) if id == row.message_id => ok,
            _ => {
                let ok: bool = live
                    .query_row(params![row.message_id, row.session_id], |r| r.get(0))
                    .map_err(db_err)?;
                checked = Some((row.message_id, ok));
                ok
            }
        };
        if !is_live {
            continue;
        }
        let inserted = insert_row
            .execute(params![
                row.workspace_id,
                row.session_id,
                row.message_id,
                row.chunk
            ])
            .map_err(db_err)?;
        if inserted == 0 {
            continue;
        }
        insert_vector
            .execute(params![
                conn.last_insert_rowid(),
                row.workspace_id,
                row.session_id,
                vector_blob(&row.vector)
            ])
            .map_err(db_err)?;
        written += 1;
    }
    Ok(written)
}

/// Removes up to `batch` vectors of one session, or of a whole workspace when
/// `session_id` is `None`; returns how many went.
pub fn purge_batch(
    conn: &Connection,
    workspace_id: i64,
    session_id: Option<i64>,
    batch: i64,
) -> Result<usize> {
    let ids: Vec<i64> = match session_id {
        Some(s) => conn
            .prepare_cached(
                "SELECT id FROM message_embeddings WHERE workspace_id = ?1 AND session_id = ?2 LIMIT ?3",
            )
            .map_err(db_err)?
            .query_map(params![workspace_id, s, batch], |r| r.get(0))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>(),
        None => conn
            .prepare_cached("SELECT id FROM message_embeddings WHERE workspace_id = ?1 LIMIT ?2")
            .map_err(db_err)?
            .query_map(params![workspace_id, batch], |r| r.get(0))
            .map_err(db_err)?
            .collect::<rusqlite::Result<_>>(),
    }
    .map_err(db_err)?;
    if ids.is_empty() {
        return Ok(0);
    }
    // vec0 zeroes a deleted vector's bytes in its chunk, so nothing stays readable.
    // It finds rows by rowid equality only, hence one statement per row.
    let mut vector = conn
        .prepare_cached("DELETE FROM message_vectors WHERE rowid = ?1")
        .map_err(db_err)?;
    let mut row = conn
        .prepare_cached("DELETE FROM message_embeddings WHERE id = ?1")
        .map_err(db_err)?;
    for id in &ids {
        vector.execute([id]).map_err(db_err)?;
        row.execute([id]).map_err(db_err)?;
    }
    Ok(ids.len())
}
