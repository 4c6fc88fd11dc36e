//! Embedded migrations, applied in order and recorded in `PRAGMA user_version`.

use engram_core::Result;
use rusqlite::Connection;

use crate::db_err;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_core.sql"),
    include_str!("../migrations/0002_queue.sql"),
    include_str!("../migrations/0003_webhooks.sql"),
    include_str!("../migrations/0004_search.sql"),
    include_str!("../migrations/0005_fts_merge.sql"),
    include_str!("../migrations/0006_queue_status.sql"),
];

pub fn run(conn: &Connection) -> Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(db_err)? as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i + 1;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {version}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            db_err(e)
        })?;
    }
    Ok(())
}
