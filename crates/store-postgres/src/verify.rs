//! `engram verify` on PostgreSQL: the shared checks as written in `core::verify`, and
//! this engine's answer to the checks only it can write.

use engram_core::verify::{self, EngineCheck, Query};
use sqlx::PgConnection;

use crate::R;

fn engine_sql(check: EngineCheck) -> &'static str {
    match check {
        EngineCheck::OrphanVectors => {
            "SELECT COUNT(*) FROM message_embeddings e WHERE NOT EXISTS \
             (SELECT 1 FROM messages m WHERE m.workspace_id = e.workspace_id AND m.id = e.message_id)"
        }
        // The full-text index is a generated column of the message row: it cannot outlive it.
        EngineCheck::OrphanFullText => "SELECT 0::int8",
    }
}

/// One count per `core::verify::checks()` entry, in order.
pub async fn verify(c: &mut PgConnection) -> R<Vec<i64>> {
    let checks = verify::checks();
    let mut counts = Vec::with_capacity(checks.len());
    for check in &checks {
        let sql = match &check.query {
            Query::Shared(sql) => sql.clone(),
            Query::Engine(e) => engine_sql(*e).to_string(),
        };
        counts.push(
            sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *c)
                .await?,
        );
    }
    Ok(counts)
}
