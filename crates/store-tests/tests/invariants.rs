//! Cheap checks of invariants ARCHITECTURE.md states, read from the source and from the
//! live schema of freshly migrated stores, so a change that breaks one fails here rather
//! than in review:
//!
//! - only the modules of an allow-list write the `messages` table;
//! - every table carries `workspace_id`, and every primary and unique key leads with it,
//!   except the tables and keys listed below, each with its reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use engram_core::search::SearchStore;
use engram_store_postgres::PgStore;
use engram_store_sqlite::SqliteStore;
use engram_store_tests::TempDatabase;

// ------------------------------------------------------------------ messages writers ----

/// Every file that writes `messages` with literal SQL, and how. Update ARCHITECTURE.md
/// (Invariants: who inserts and deletes messages) whenever this list changes.
const MESSAGE_WRITERS: &[(&str, &[Write])] = &[
    // Adding messages, and changing a message's metadata.
    (
        "store-sqlite/src/messages.rs",
        &[Write::Insert, Write::Update],
    ),
    (
        "store-postgres/src/messages.rs",
        &[Write::Insert, Write::Update],
    ),
    // The session clone copies messages into the new session.
    ("store-sqlite/src/sessions.rs", &[Write::Insert]),
    ("store-postgres/src/clone.rs", &[Write::Insert]),
    // The purge steps: SQLite's go through `fts_purge` (bounded FTS5 work per batch).
    ("store-sqlite/src/fts_purge.rs", &[Write::Delete]),
    ("store-postgres/src/purge_steps.rs", &[Write::Delete]),
    // The bench's floor writes and deletes rows directly, in a database of its own.
    ("bench/src/floor.rs", &[Write::Insert, Write::Delete]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Write {
    Insert,
    Update,
    Delete,
}

/// The statement heads that write a table, lower case with single spaces.
const HEADS: &[(&str, Write)] = &[
    ("insert into ", Write::Insert),
    ("insert or ignore into ", Write::Insert),
    ("insert or replace into ", Write::Insert),
    ("insert or abort into ", Write::Insert),
    ("replace into ", Write::Insert),
    ("update ", Write::Update),
    ("update or ignore ", Write::Update),
    ("update or replace ", Write::Update),
    ("update only ", Write::Update),
    ("delete from ", Write::Delete),
    ("delete from only ", Write::Delete),
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

/// Every `.rs` file under each crate's `src` and every `.sql` file under its
/// `migrations`, relative to `crates/`. Test code (the integration tests under `tests/`,
/// `#[cfg(test)]` modules) may set rows up directly and is not scanned.
fn sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "sql") {
                out.push(path);
            }
        }
    }
    let root = crates_dir();
    let mut files = vec![];
    for krate in std::fs::read_dir(&root).expect("read crates/") {
        let krate = krate.expect("dir entry").path();
        walk(&krate.join("src"), &mut files);
        walk(&krate.join("migrations"), &mut files);
    }
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            let rel = path.strip_prefix(&root).expect("under crates/");
            (
                rel.to_string_lossy().replace('\\', "/"),
                without_tests(&text),
            )
        })
        .collect()
}

/// `text` without its `#[cfg(test)] mod ... { ... }` blocks (braces counted naively,
/// which is enough for rustfmt-formatted code).
fn without_tests(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some(open) = after.find('{') else {
            return out;
        };
        let head = &after[..open];
        if !head.contains("mod ") || head.contains(';') {
            // Not a module body (a test-only item or `mod x;`): keep scanning past it.
            out.push_str("#[cfg(test)]");
            rest = &after["#[cfg(test)]".len()..];
            continue;
        }
        let mut depth = 0usize;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// The writes of table `messages` in `text`: case-insensitive, any whitespace (and a
/// Rust string's `\` line continuation) between the words; `messages_fts` and
/// `message_embeddings` are other tables.
fn message_writes(text: &str) -> BTreeSet<Write> {
    let normal = text
        .to_lowercase()
        .replace("\\\n", " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut found = BTreeSet::new();
    for (head, kind) in HEADS {
        let needle = format!("{head}messages");
        for (at, _) in normal.match_indices(&needle) {
            let before = normal[..at].chars().next_back();
            let after = normal[at + needle.len()..].chars().next();
            if !before.is_some_and(word) && !after.is_some_and(word) {
                found.insert(*kind);
            }
        }
    }
    found
}

#[test]
fn only_the_allowed_modules_write_messages() {
    let found: BTreeMap<String, BTreeSet<Write>> = sources()
        .into_iter()
        .map(|(path, text)| (path, message_writes(&text)))
        .filter(|(_, writes)| !writes.is_empty())
        .collect();
    let allowed: BTreeMap<String, BTreeSet<Write>> = MESSAGE_WRITERS
        .iter()
        .map(|(path, writes)| (path.to_string(), writes.iter().copied().collect()))
        .collect();
    assert!(
        found.len() >= 5,
        "the scan found almost no writers ({found:?}): is it reading the sources?"
    );
    assert_eq!(
        found, allowed,
        "the files writing `messages` changed (left: found in the sources, right: \
         MESSAGE_WRITERS). Writing messages outside these modules breaks the purge and \
         seq_in_session rules; if the change is intended, update MESSAGE_WRITERS and the \
         Invariants section of ARCHITECTURE.md"
    );
}

#[test]
fn the_message_write_scan_sees_what_it_should() {
    let writes = |s: &str| message_writes(s).into_iter().collect::<Vec<_>>();
    assert_eq!(
        writes("\"INSERT INTO messages (a) \\\n  VALUES (1)\""),
        [Write::Insert]
    );
    assert_eq!(
        writes("delete   FROM\n messages WHERE id = 1"),
        [Write::Delete]
    );
    assert_eq!(
        writes("UPDATE messages m SET metadata = $1"),
        [Write::Update]
    );
    assert!(writes("INSERT INTO messages_fts (messages_fts) VALUES ('x')").is_empty());
    assert!(writes("DELETE FROM message_embeddings WHERE id = 1").is_empty());
    assert!(writes("SELECT * FROM messages").is_empty());
    assert!(writes("update sessions set last_seq = 1; -- messages").is_empty());
    let module = "fn a() {}\n#[cfg(test)]\nmod tests {\n fn b() { let _ = \"DELETE FROM messages\"; }\n}\nfn c() {}\n";
    assert_eq!(without_tests(module), "fn a() {}\n\nfn c() {}\n");
}

// ------------------------------------------------------------------ workspace keys ------

/// Tables without a `workspace_id` column, on purpose.
const GLOBAL_TABLES: &[(&str, &str)] = &[
    // The workspace itself: its own `id` is what every other table's workspace_id names.
    ("workspaces", "the workspace row itself"),
    // One row for the whole database: the model every stored vector was made with.
    ("embedding_model", "single row"),
    // SQLite: keyed by a purge job's unit key, which itself names the workspace/session.
    ("fts_purge_plans", "keyed by the purge job's unit key"),
    // SQLite: the FTS5 external-content index of `messages`; its rows are message ids.
    ("messages_fts", "FTS5 index over messages rows"),
    // PostgreSQL: sqlx's migration bookkeeping.
    ("_sqlx_migrations", "migration bookkeeping"),
];

/// Primary and unique keys that do not lead with `workspace_id`, on purpose:
/// `(table, key columns)`, on whichever engine has them.
const GLOBAL_KEYS: &[(&str, &[&str])] = &[
    // The workspace's own id, and its name, unique among live workspaces.
    ("workspaces", &["id"]),
    ("workspaces", &["name"]),
    // PostgreSQL: a job may belong to no workspace (workspace_id is nullable); its id is
    // the queue's global order.
    ("jobs", &["id"]),
    // The single row (`CHECK (id = 1)`).
    ("embedding_model", &["id"]),
    // SQLite: one plan per purge job unit.
    ("fts_purge_plans", &["unit_key"]),
    // SQLite: message ids are the messages table's rowids, unique in the whole file, so
    // (message_id, chunk) is unique across workspaces (PostgreSQL leads it with
    // workspace_id).
    ("message_embeddings", &["message_id", "chunk"]),
    // PostgreSQL: sqlx's migration bookkeeping.
    ("_sqlx_migrations", &["version"]),
];

/// A table's columns and its primary and unique keys, as the live schema has them.
#[derive(Debug, Default)]
struct Table {
    columns: Vec<String>,
    keys: Vec<Vec<String>>,
}

/// Tables lacking `workspace_id`, and keys not leading with it, minus the exceptions.
fn violations(engine: &str, schema: &BTreeMap<String, Table>) -> Vec<String> {
    let mut out = vec![];
    for (name, table) in schema {
        let global = GLOBAL_TABLES.iter().any(|(t, _)| t == name);
        if !global && !table.columns.iter().any(|c| c == "workspace_id") {
            out.push(format!("{engine}: table {name} has no workspace_id column"));
        }
        for key in &table.keys {
            let listed = GLOBAL_KEYS
                .iter()
                .any(|(t, cols)| t == name && cols.iter().eq(key.iter()));
            if key.first().map(String::as_str) != Some("workspace_id") && !listed {
                out.push(format!(
                    "{engine}: table {name} has key ({}) not led by workspace_id",
                    key.join(", ")
                ));
            }
        }
    }
    out
}

fn assert_workspace_keys(engine: &str, schema: &BTreeMap<String, Table>) {
    for expected in ["messages", "sessions", "jobs", "message_embeddings"] {
        assert!(
            schema.contains_key(expected),
            "{engine}: the schema read misses table {expected}: {schema:#?}"
        );
    }
    let bad = violations(engine, schema);
    assert!(
        bad.is_empty(),
        "every table carries workspace_id and every primary/unique key leads with it \
         (ARCHITECTURE.md, Invariants), unless listed in GLOBAL_TABLES / GLOBAL_KEYS of \
         this file with its reason: {bad:#?}"
    );
}

/// The live schema of a SQLite store: FTS5 and vec0 shadow tables and SQLite's own
/// tables left out. An `INTEGER PRIMARY KEY` is the table's rowid (one AUTOINCREMENT
/// sequence per table, never reused) and is not a key here; every other primary key and
/// unique constraint or index is.
fn sqlite_schema(path: &Path) -> BTreeMap<String, Table> {
    let conn = rusqlite::Connection::open(path).expect("open the store's file");
    let tables: Vec<(String, String)> = conn
        .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let virtual_tables: Vec<&str> = tables
        .iter()
        .filter(|(_, sql)| sql.to_uppercase().starts_with("CREATE VIRTUAL TABLE"))
        .map(|(name, _)| name.as_str())
        .collect();
    let shadow = |name: &str| {
        virtual_tables
            .iter()
            .any(|v| name.strip_prefix(v).is_some_and(|r| r.starts_with('_')))
    };
    let mut schema = BTreeMap::new();
    for (name, _) in tables.iter().filter(|(name, _)| !shadow(name)) {
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .unwrap()
            .query_map([name], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1")
            .unwrap()
            .query_map([name], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let keys = indexes
            .iter()
            .map(|index| {
                conn.prepare(
                    "SELECT coalesce(name, '<expr>') FROM pragma_index_info(?1) ORDER BY seqno",
                )
                .unwrap()
                .query_map([index], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
            })
            .collect();
        schema.insert(name.clone(), Table { columns, keys });
    }
    schema
}

/// The live schema of a PostgreSQL store's current schema: base tables, their columns,
/// and every primary key and unique index (expression columns as `<expr>`).
async fn postgres_schema(url: &str) -> BTreeMap<String, Table> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text \
         FROM information_schema.columns c JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read columns");
    let keys: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT t.relname::text, \
                array_agg(coalesce(a.attname::text, '<expr>') ORDER BY k.ord) \
         FROM pg_index ix \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
         LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE n.nspname = current_schema() AND (ix.indisunique OR ix.indisprimary) \
           AND k.ord <= ix.indnkeyatts \
         GROUP BY ix.indexrelid, t.relname",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read keys");
    let _ = conn.close().await;
    let mut schema: BTreeMap<String, Table> = BTreeMap::new();
    for (table, column) in columns {
        schema.entry(table).or_default().columns.push(column);
    }
    for (table, key) in keys {
        schema.entry(table).or_default().keys.push(key);
    }
    schema
}

#[tokio::test]
async fn sqlite_tables_and_keys_lead_with_the_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("engram.db");
    let store = SqliteStore::open(&path).expect("open sqlite");
    // Embeddings on: the vec0 table exists only then.
    store
        .enable_embeddings("m", 4)
        .await
        .expect("embeddings on");
    let schema = sqlite_schema(&path);
    assert!(
        schema.contains_key("message_vectors"),
        "the vec0 table is missing: {schema:#?}"
    );
    assert_workspace_keys("SQLite", &schema);
}

#[tokio::test]
async fn postgres_tables_and_keys_lead_with_the_workspace() {
    let Some(db) = TempDatabase::fresh().await else {
        return;
    };
    let store = PgStore::connect(&db.url).await.expect("open postgres");
    store
        .enable_embeddings("m", 4)
        .await
        .expect("embeddings on");
    store.close().await;
    assert_workspace_keys("PostgreSQL", &postgres_schema(&db.url).await);
}

#[test]
fn a_table_or_key_without_the_workspace_is_reported() {
    let table = |columns: &[&str], keys: &[&[&str]]| Table {
        columns: columns.iter().map(|c| c.to_string()).collect(),
        keys: keys
            .iter()
            .map(|k| k.iter().map(|c| c.to_string()).collect())
            .collect(),
    };
    let schema = BTreeMap::from([
        ("notes".to_string(), table(&["id", "body"], &[])),
        (
            "cards".to_string(),
            table(
                &["workspace_id", "peer_id"],
                &[&["peer_id", "workspace_id"]],
            ),
        ),
        (
            "summaries".to_string(),
            table(&["workspace_id", "id"], &[&["workspace_id", "id"]]),
        ),
        ("embedding_model".to_string(), table(&["id"], &[&["id"]])),
    ]);
    assert_eq!(
        violations("X", &schema),
        [
            "X: table cards has key (peer_id, workspace_id) not led by workspace_id",
            "X: table notes has no workspace_id column",
        ]
    );
}
