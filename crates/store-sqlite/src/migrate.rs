//! Embedded migrations, applied in order and recorded in `PRAGMA user_version`.

use engram_core::{Error, Result};
use rusqlite::Connection;

use crate::{db_err, monotonic_ids};

/// A migration is SQL, or code where the change depends on the schema it finds.
enum Migration {
    Sql(&'static str),
    Code(fn(&Connection) -> Result<()>),
}

use Migration::{Code, Sql};

const MIGRATIONS: &[Migration] = &[
    Sql(include_str!("../migrations/0001_core.sql")),
    Sql(include_str!("../migrations/0002_queue.sql")),
    Sql(include_str!("../migrations/0003_webhooks.sql")),
    Sql(include_str!("../migrations/0004_search.sql")),
    Sql(include_str!("../migrations/0005_fts_merge.sql")),
    Sql(include_str!("../migrations/0006_queue_status.sql")),
    Code(monotonic_ids::migrate),
];

pub fn run(conn: &Connection) -> Result<()> {
    apply(conn, MIGRATIONS.len())
}

/// Applies the migrations up to `last` (a version number) that are not applied yet.
/// Foreign keys are off meanwhile, as SQLite's table-rebuild procedure requires, and
/// checked before each migration commits.
pub(crate) fn apply(conn: &Connection, last: usize) -> Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(db_err)? as usize;
    if current >= last {
        return Ok(());
    }
    conn.execute_batch("PRAGMA foreign_keys = OFF")
        .map_err(db_err)?;
    let applied = MIGRATIONS[..last]
        .iter()
        .enumerate()
        .skip(current)
        .try_for_each(|(i, migration)| {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
            let version = i + 1;
            let done = step(conn, migration, version);
            if done.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            done
        });
    conn.execute_batch("PRAGMA foreign_keys = ON")
        .map_err(db_err)?;
    applied
}

fn step(conn: &Connection, migration: &Migration, version: usize) -> Result<()> {
    match migration {
        Sql(sql) => conn.execute_batch(sql).map_err(db_err)?,
        Code(run) => run(conn)?,
    }
    let dangling = conn
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| s.exists([]))
        .map_err(db_err)?;
    if dangling {
        return Err(Error::Internal(format!(
            "migration {version} would leave rows referring to missing rows"
        )));
    }
    conn.execute_batch(&format!("PRAGMA user_version = {version}; COMMIT"))
        .map_err(db_err)
}
