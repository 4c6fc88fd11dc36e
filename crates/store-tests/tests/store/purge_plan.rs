//! Nothing a session or a workspace owns outlives its purge unnoticed: each engine's live
//! schema is read (embeddings turned on first, so SQLite's vec0 table exists), and every
//! table with a `session_id` column must be written by a step of `purge::SESSION`, every
//! table with a `workspace_id` column by a step of `purge::WORKSPACE` or be one of
//! `purge::KEPT`. A new derived table fails here until it joins the plan.

use std::collections::BTreeSet;

use engram_core::purge::{self, PurgeStep};
use engram_core::search::SearchStore;
use engram_store_postgres::PgStore;
use engram_store_sqlite::SqliteStore;
use engram_store_tests::{TempDatabase, admin_url};
use sqlx::{Connection, PgConnection};

fn planned(plan: &[PurgeStep]) -> BTreeSet<&'static str> {
    plan.iter()
        .flat_map(|step| step.tables())
        .copied()
        .collect()
}

/// `columns`: every (table, column) of the engine's schema whose column is a key.
fn assert_planned(engine: &str, columns: &[(String, String)]) {
    let session = planned(purge::SESSION);
    let workspace = planned(purge::WORKSPACE);
    // The schema was really read: the tables every purge starts from are there.
    for (table, column) in [("messages", "session_id"), ("peers", "workspace_id")] {
        assert!(
            columns.iter().any(|(t, c)| t == table && c == column),
            "{engine}: no {table}.{column} in {columns:?}"
        );
    }
    assert!(workspace.contains("workspaces"), "the workspace row itself");
    let mut missing = Vec::new();
    for (table, column) in columns {
        let covered = match column.as_str() {
            "session_id" => session.contains(table.as_str()),
            "workspace_id" => {
                workspace.contains(table.as_str()) || purge::KEPT.contains(&table.as_str())
            }
            _ => true,
        };
        if !covered {
            missing.push(format!("{table}.{column}"));
        }
    }
    assert!(
        missing.is_empty(),
        "{engine}: tables keyed by session or workspace in no purge step: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_purge_plan_covers_every_keyed_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("engram.db");
    let store = SqliteStore::open(&path).expect("open sqlite");
    store.enable_embeddings("test-model", 3).await.unwrap();
    // Opened after the store, which registers sqlite-vec for every connection.
    let conn = rusqlite::Connection::open(&path).expect("open the file");
    // Shadow tables (FTS5's and vec0's own storage) go with their virtual table.
    let mut stmt = conn
        .prepare(
            "SELECT t.name, c.name FROM pragma_table_list AS t, pragma_table_info(t.name) AS c \
             WHERE t.schema = 'main' AND t.type IN ('table', 'virtual') \
             AND t.name NOT LIKE 'sqlite_%' AND c.name IN ('session_id', 'workspace_id') \
             ORDER BY 1, 2",
        )
        .unwrap();
    let columns: Vec<(String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        columns
            .iter()
            .any(|(t, c)| t == "message_vectors" && c == "session_id"),
        "the vec0 table was read: {columns:?}"
    );
    assert_planned("sqlite", &columns);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_purge_plan_covers_every_keyed_table() {
    let Some(admin) = admin_url() else { return };
    let db = TempDatabase::create(&admin).await;
    let store = PgStore::connect(&db.url).await.expect("open postgres");
    store.enable_embeddings("test-model", 3).await.unwrap();
    store.close().await;
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_name IN ('session_id', 'workspace_id') \
         ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .expect("read the schema");
    let _ = conn.close().await;
    db.drop_database().await;
    assert_planned("postgres", &columns);
}
