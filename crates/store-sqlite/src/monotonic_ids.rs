//! Internal ids are never reused. A plain `INTEGER PRIMARY KEY` hands out max(id) + 1,
//! so once the newest session (or workspace, message, job...) is purged its id goes to
//! the next row, which then collides with what still names the old one: its deletion
//! receipt, its jobs, a worker's stale claim. `AUTOINCREMENT` makes each table's ids
//! strictly increasing for the life of the database.
//!
//! SQLite cannot add it in place, so each table is rebuilt by the documented procedure
//! (https://www.sqlite.org/lang_altertable.html#otheralter): new table, rows copied with
//! their ids, old table dropped, new one renamed, then its indexes and triggers
//! recreated from their saved definitions, so indexes added by any earlier migration
//! come back as they were. Ids are kept, so the full-text index (keyed by message id)
//! and the vec0 vectors (keyed by embedding id) stay attached to their rows. The caller
//! runs this inside the migration's transaction with foreign keys off and checks them
//! before committing.

use engram_core::{Error, Result};
use rusqlite::{Connection, params};

use crate::{db_err, fts_keys};

/// Every table whose rows have an internal id. (`embedding_model` holds one row, id 1.)
pub const TABLES: [&str; 8] = [
    "workspaces",
    "peers",
    "sessions",
    "messages",
    "jobs",
    "deletion_receipts",
    "webhook_endpoints",
    "message_embeddings",
];

const ROWID_ALIAS: &str = "INTEGER PRIMARY KEY";

pub fn migrate(conn: &Connection) -> Result<()> {
    for table in TABLES {
        rebuild(conn, table)?;
    }
    conn.execute_batch(include_str!("../migrations/0007_monotonic_ids.sql"))
        .map_err(db_err)?;
    // vec0 keeps its rowids (the embedding ids) in a shadow table of its own, present
    // once embeddings were turned on.
    let vectors: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'message_vectors_rowids')",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    if vectors {
        conn.execute_batch(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'message_embeddings', 0 \
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'message_embeddings'); \
             UPDATE sqlite_sequence SET seq = max(seq, \
             coalesce((SELECT max(rowid) FROM message_vectors_rowids), 0)) \
             WHERE name = 'message_embeddings';",
        )
        .map_err(db_err)?;
    }
    // Purges before this version left deleted words in the full-text index's page keys.
    fts_keys::repair(conn, None)?;
    Ok(())
}

fn rebuild(conn: &Connection, table: &str) -> Result<()> {
    let definition: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let (head, columns) = definition
        .split_once('(')
        .ok_or_else(|| unexpected(table, "has no column list"))?;
    if head.trim() != format!("CREATE TABLE {table}")
        || columns.matches(ROWID_ALIAS).count() != 1
        || columns.contains("AUTOINCREMENT")
    {
        return Err(unexpected(table, "is not a plain rowid table"));
    }
    let rebuilt = format!("{table}_rebuilt");
    let columns = columns.replacen(ROWID_ALIAS, &format!("{ROWID_ALIAS} AUTOINCREMENT"), 1);
    // Automatic indexes (UNIQUE constraints) have no SQL: the new table makes its own.
    let dependents: Vec<String> = conn
        .prepare(
            "SELECT sql FROM sqlite_schema WHERE tbl_name = ?1 AND type IN ('index', 'trigger') \
             AND sql IS NOT NULL ORDER BY type, name",
        )
        .and_then(|mut s| {
            s.query_map(params![table], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(db_err)?;
    conn.execute_batch(&format!(
        "CREATE TABLE {rebuilt} ({columns}; \
         INSERT INTO {rebuilt} SELECT * FROM {table}; \
         DROP TABLE {table}; \
         ALTER TABLE {rebuilt} RENAME TO {table};"
    ))
    .map_err(db_err)?;
    for sql in dependents {
        conn.execute_batch(&sql).map_err(db_err)?;
    }
    Ok(())
}

fn unexpected(table: &str, what: &str) -> Error {
    Error::Internal(format!(
        "cannot make the ids of {table} monotonic: its definition {what}"
    ))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::{embeddings, fts_keys, migrate};

    /// The schema version before this migration.
    const BEFORE: usize = 6;

    fn open() -> (tempfile::TempDir, Connection) {
        embeddings::register_vec();
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("engram.db")).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        (dir, conn)
    }

    fn one(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    fn schema_objects(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare(
            "SELECT type, name FROM sqlite_schema WHERE type IN ('index', 'trigger') ORDER BY name",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    /// Page keys that are no longer a prefix of their page's first term.
    fn stale_keys(conn: &Connection) -> usize {
        let keys: Vec<(i64, Vec<u8>, i64)> = conn
            .prepare("SELECT segid, term, pgno >> 1 FROM messages_fts_idx WHERE length(term) > 0")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        keys.into_iter()
            .filter(|(segid, key, pgno)| {
                let page: Vec<u8> = conn
                    .query_row(
                        "SELECT block FROM messages_fts_data WHERE id = ?1",
                        [fts_keys::leaf_rowid(*segid, *pgno)],
                        |r| r.get(0),
                    )
                    .unwrap();
                !fts_keys::first_term(&page).unwrap().starts_with(key)
            })
            .count()
    }

    /// Every table with an id column hands out ids by AUTOINCREMENT, bar the one-row
    /// `embedding_model`; FTS5 and vec0 shadow tables belong to their modules.
    #[test]
    fn every_id_table_is_monotonic() {
        let (_dir, conn) = open();
        migrate::run(&conn).unwrap();
        embeddings::enable(&conn, "model", 2).unwrap();
        let tables: Vec<(String, String)> = conn
            .prepare(
                "SELECT l.name, s.sql FROM pragma_table_list AS l JOIN sqlite_schema AS s \
                 ON s.name = l.name WHERE l.schema = 'main' AND l.type = 'table' \
                 AND l.wr = 0 AND l.name NOT LIKE 'sqlite_%' \
                 AND l.name NOT LIKE 'message_vectors_%' \
                 AND (SELECT COUNT(*) FROM pragma_table_info(l.name) WHERE pk > 0) = 1 \
                 AND EXISTS (SELECT 1 FROM pragma_table_info(l.name) \
                 WHERE pk = 1 AND type = 'INTEGER')",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let mut monotonic: Vec<&str> = tables
            .iter()
            .filter(|(_, sql)| sql.contains("AUTOINCREMENT"))
            .map(|(name, _)| name.as_str())
            .collect();
        let others: Vec<&str> = tables
            .iter()
            .filter(|(_, sql)| !sql.contains("AUTOINCREMENT"))
            .map(|(name, _)| name.as_str())
            .collect();
        monotonic.sort();
        let mut expected = super::TABLES.to_vec();
        expected.sort();
        assert_eq!(monotonic, expected);
        assert_eq!(others, ["embedding_model"]);
    }

    /// A database made before this migration, whose newest workspace, session, messages
    /// and embedding were purged while receipts and jobs still name them, hands out none
    /// of those ids again once upgraded; its indexes, triggers, full-text index and
    /// vectors carry on, and the deleted words left in the index's page keys are gone.
    #[test]
    fn upgrade_skips_ids_still_named_and_cleans_page_keys() {
        let (_dir, conn) = open();
        migrate::apply(&conn, BEFORE).unwrap();
        embeddings::enable(&conn, "model", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO workspaces (id, name, created_at) VALUES (1, 'w', 0), (2, 'gone', 0);
             INSERT INTO sessions (id, workspace_id, name, created_at) VALUES (1, 1, 'kept', 0), (2, 1, 's', 0);
             INSERT INTO messages (id, workspace_id, session_id, public_id, session_name, peer_name, content, token_count, seq_in_session, created_at)
               VALUES (1, 1, 1, 'm1', 'kept', 'p', 'hello world', 1, 1, 0),
                      (5001, 1, 2, 'm2', 's', 'p', 'purged words', 1, 1, 0),
                      (5002, 1, 2, 'm3', 's', 'p', 'purged too', 1, 2, 0);
             INSERT INTO message_embeddings (id, workspace_id, session_id, message_id, chunk) VALUES (1, 1, 1, 1, 0);
             INSERT INTO message_vectors (rowid, workspace_id, session_id, embedding) VALUES (1, 1, 1, '[1, 0]');
             INSERT INTO deletion_receipts (workspace_id, workspace_name, session_id, session_name, requested_at) VALUES (1, 'w', 2, 's', 0);
             INSERT INTO jobs (workspace_id, kind, unit_key, priority, payload, max_attempts, run_at, created_at)
               VALUES (1, 'embed_messages', 'embed:1:2', 1, '{\"workspace_id\":1,\"session_id\":2,\"message_ids\":[5001,5002]}', 10, 0, 0),
                      (2, 'purge_workspace', 'purge-workspace:2', 0, '{\"workspace_id\":2}', 10, 0, 0);
             DELETE FROM messages WHERE session_id = 2;
             DELETE FROM sessions WHERE id = 2;
             DELETE FROM workspaces WHERE id = 2;",
        )
        .unwrap();
        // Enough pages that deleting every other message's own word removes the first
        // term of pages that keep other terms: the stale keys FTS5 leaves behind.
        conn.execute_batch("BEGIN").unwrap();
        for i in 0..3000 {
            conn.execute(
                "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, token_count, seq_in_session, created_at) \
                 VALUES (1, 1, ?1, 'kept', 'p', ?2, 1, ?3, 0)",
                rusqlite::params![format!("f{i}"), format!("filler q{i:05}x"), i + 2],
            )
            .unwrap();
        }
        conn.execute_batch(
            "COMMIT; DELETE FROM messages WHERE public_id LIKE 'f%' AND seq_in_session % 2 = 0",
        )
        .unwrap();
        assert!(stale_keys(&conn) > 0, "the old purge left stale keys");
        let before = schema_objects(&conn);

        migrate::run(&conn).unwrap();
        assert_eq!(stale_keys(&conn), 0);
        assert_eq!(
            schema_objects(&conn),
            before,
            "indexes and triggers are back"
        );
        conn.execute_batch(
            "INSERT INTO workspaces (name, created_at) VALUES ('new', 0);
             INSERT INTO sessions (workspace_id, name, created_at) VALUES (1, 's', 0);
             INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, token_count, seq_in_session, created_at)
               VALUES (1, 1, 'm4', 'kept', 'p', 'fresh words', 1, 9999, 0);
             INSERT INTO message_embeddings (workspace_id, session_id, message_id, chunk) VALUES (1, 1, last_insert_rowid(), 0);
             INSERT INTO message_vectors (rowid, workspace_id, session_id, embedding) VALUES (last_insert_rowid(), 1, 1, '[0, 1]');
             INSERT INTO deletion_receipts (workspace_id, workspace_name, session_id, session_name, requested_at)
               VALUES (1, 'w', (SELECT max(id) FROM sessions), 's', 1);",
        )
        .unwrap();
        assert_eq!(
            one(&conn, "SELECT id FROM workspaces WHERE name = 'new'"),
            3
        );
        assert_eq!(one(&conn, "SELECT max(id) FROM sessions"), 3);
        assert_eq!(
            one(&conn, "SELECT id FROM messages WHERE public_id = 'm4'"),
            5003,
            "above the purged messages a job still names"
        );
        assert_eq!(one(&conn, "SELECT max(id) FROM message_embeddings"), 2);
        assert_eq!(one(&conn, "SELECT COUNT(*) FROM message_vectors"), 2);
        for word in ["hello", "fresh"] {
            let hits = one(
                &conn,
                &format!("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH '{word}'"),
            );
            assert_eq!(hits, 1, "{word} is found");
        }
        conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            .unwrap();
    }
}
