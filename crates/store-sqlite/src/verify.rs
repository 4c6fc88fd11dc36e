//! `engram verify` on SQLite: the shared checks as written in `core::verify`, and this
//! engine's answer to the checks only it can write.

use engram_core::Result;
use engram_core::verify::{self, EngineCheck, Query};
use rusqlite::Connection;

use crate::db_err;

fn engine_sql(check: EngineCheck) -> &'static str {
    match check {
        EngineCheck::OrphanVectors => {
            "SELECT COUNT(*) FROM message_embeddings e WHERE NOT EXISTS \
             (SELECT 1 FROM messages m WHERE m.id = e.message_id)"
        }
        EngineCheck::OrphanFullText => {
            "SELECT COUNT(*) FROM messages_fts_docsize d WHERE NOT EXISTS \
             (SELECT 1 FROM messages m WHERE m.id = d.id)"
        }
    }
}

/// One count per `core::verify::checks()` entry, in order.
pub fn verify(conn: &Connection) -> Result<Vec<i64>> {
    verify::checks()
        .iter()
        .map(|check| {
            let sql = match &check.query {
                Query::Shared(sql) => sql.as_str(),
                Query::Engine(e) => engine_sql(*e),
            };
            conn.query_row(sql, [], |r| r.get(0)).map_err(db_err)
        })
        .collect()
}
