//! `seq_in_session` stays gap-free and unique when many writers append to one session,
//! including two independent PostgreSQL pools (as two engram processes would be).

use std::sync::Arc;

use engram_core::Store;
use engram_core::model::NewMessage;

const WRITERS: usize = 8;
const BATCHES: usize = 10;
const PER_BATCH: usize = 5;

fn batch(writer: usize, b: usize) -> Vec<NewMessage> {
    (0..PER_BATCH)
        .map(|i| NewMessage {
            public_id: engram_core::ids::new_public_id(),
            content: format!("w{writer} b{b} m{i}"),
            peer: format!("p{writer}"),
            metadata: Default::default(),
            token_count: 3,
            created_at: None,
        })
        .collect()
}

async fn hammer(stores: Vec<Arc<dyn Store>>) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = Arc::clone(&stores[w % stores.len()]);
        tasks.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                store
                    .create_messages("w", "s", batch(w, b))
                    .await
                    .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
}

fn assert_gap_free(mut seqs: Vec<i64>) {
    let total = WRITERS * BATCHES * PER_BATCH;
    assert_eq!(seqs.len(), total);
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn sqlite_sequence_is_gap_free_under_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engram.db");
    let store: Arc<dyn Store> = Arc::new(engram_store_sqlite::SqliteStore::open(&path).unwrap());
    hammer(vec![store]).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn.prepare("SELECT seq_in_session FROM messages").unwrap();
    let seqs = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap();
    assert_gap_free(seqs);
}

#[tokio::test]
async fn postgres_sequence_is_gap_free_across_two_pools() {
    let Some(db) = engram_store_tests::TempDatabase::fresh().await else {
        return;
    };
    let url = db.url.clone();
    let a: Arc<dyn Store> = Arc::new(engram_store_postgres::PgStore::connect(&url).await.unwrap());
    let b: Arc<dyn Store> = Arc::new(engram_store_postgres::PgStore::connect(&url).await.unwrap());
    hammer(vec![a, b]).await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq_in_session FROM messages")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_gap_free(seqs);
}
