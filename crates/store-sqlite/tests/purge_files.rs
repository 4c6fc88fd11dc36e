//! After a purge completes, no byte of the deleted text is left in any file of the data
//! directory (database, write-ahead log, shared memory), whatever the session's size and
//! whatever share of the store it was, and the full-text index is still consistent.
//! Sessions of at least 1/100 of the store take the purge's merge-first path, smaller
//! ones delete from the index as it is (see `fts_purge`).

use std::path::Path;
use std::time::Instant;

use engram_core::model::NewMessage;
use engram_core::queue::{PURGE_BATCH, PurgeSession};
use engram_core::store::{DeletionStore, MessageStore, QueueStore, SessionStore};
use engram_core::time::now_micros;
use engram_store_sqlite::SqliteStore;

/// The deleted session's marker. Only its words start with `q`, and FTS5 stores a term
/// after the first of a page as a suffix of the term before it, so a surviving term of
/// the session is found whole: either first on its page, or after a `q` term that is.
const DELETED: &str = "quokka";
const KEPT: &str = "kestrel";

fn content(marker: &str, i: usize) -> String {
    format!("{marker} said {marker}{} about the weather {i}", i % 97)
}

/// Writes `count` messages, `per_write` at a time (the API takes 100 per request; fewer,
/// larger writes make fewer index segments and a cheaper setup).
async fn write(store: &SqliteStore, session: &str, count: usize, per_write: usize, marker: &str) {
    let mut written = 0;
    while written < count {
        let batch = (written..count.min(written + per_write))
            .map(|i| NewMessage {
                public_id: engram_core::ids::new_public_id(),
                content: content(marker, i),
                peer: "p".into(),
                metadata: Default::default(),
                token_count: 1,
                created_at: None,
            })
            .collect::<Vec<_>>();
        written += batch.len();
        store
            .create_messages("w", session, batch)
            .await
            .expect("write");
    }
}

/// Deletes `session` and runs its purge to completion, as the worker does.
async fn purge(store: &SqliteStore, session: &str) {
    store.delete_session("w", session).await.expect("delete");
    let lease = now_micros() + 3_600_000_000;
    let job = store.claim_job(lease).await.unwrap().expect("purge job");
    let purge: PurgeSession = serde_json::from_value(job.payload.clone()).unwrap();
    while !store
        .purge_session_step(&job, purge, PURGE_BATCH, lease)
        .await
        .expect("purge step")
    {}
    store.complete_job(&job).await.expect("complete");
}

/// The files of `dir` that hold `word`, byte for byte.
fn holding(dir: &Path, word: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|path| {
            let bytes = std::fs::read(path).unwrap_or_default();
            bytes.windows(word.len()).any(|w| w == word.as_bytes())
        })
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// A store of `others` messages around a session of `doomed`, written `per_write` at a
/// time; once the session's purge completes its words are in no file, not even as
/// the shortened page keys of the full-text index.
async fn check(doomed: usize, others: usize, per_write: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("engram.db")).expect("open");
    let started = Instant::now();
    write(&store, "before", others / 2, per_write, KEPT).await;
    write(&store, "doomed", doomed, per_write, DELETED).await;
    write(&store, "after", others - others / 2, per_write, KEPT).await;
    assert!(!holding(dir.path(), DELETED).is_empty());
    let written = started.elapsed();
    purge(&store, "doomed").await;
    let purged = started.elapsed() - written;

    let leftover = holding(dir.path(), DELETED);
    assert!(
        leftover.is_empty(),
        "{doomed} of {} messages purged, the deleted word is still in {leftover:?}",
        doomed + others
    );
    if others > 0 {
        assert!(!holding(dir.path(), KEPT).is_empty(), "the rest remains");
    }
    let conn = rusqlite::Connection::open(dir.path().join("engram.db")).unwrap();
    conn.execute_batch("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
        .expect("the full-text index is consistent");
    let count = |sql: &str| -> i64 {
        conn.query_row(sql, [format!("0{DELETED}")], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM messages_fts_idx \
             WHERE length(term) > 1 AND instr(CAST(?1 AS BLOB), term) = 1"
        ),
        0,
        "no page key is a piece of a deleted word"
    );
    conn.execute_batch(
        "CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, messages_fts, 'row')",
    )
    .unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM temp.vocab WHERE term >= substr(?1, 2, 1) AND term < 'r'"),
        0,
        "the index knows no deleted word"
    );
    let remaining: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(remaining as usize, others);
    assert_eq!(store.verify().await.unwrap().iter().sum::<i64>(), 0);
    eprintln!(
        "{doomed} of {} messages: written in {written:?}, purged in {purged:?}",
        doomed + others
    );
}

#[tokio::test]
async fn one_message_alone() {
    check(1, 0, 100).await;
}

#[tokio::test]
async fn one_message_in_ten_thousand() {
    check(1, 10_000, 100).await;
}

#[tokio::test]
async fn a_hundred_in_ten_thousand() {
    check(100, 10_000, 100).await;
}

#[tokio::test]
async fn ten_thousand_alone() {
    check(10_000, 0, 100).await;
}

#[tokio::test]
async fn ten_thousand_in_ten_thousand_and_a_half() {
    check(10_000, 500, 100).await;
}

/// Over 500 messages but under 1/100 of the store: deleted without merging first.
#[tokio::test]
async fn six_hundred_in_sixty_thousand() {
    check(600, 61_000, 5_000).await;
}

#[tokio::test]
async fn a_hundred_thousand_in_a_hundred_and_five_thousand() {
    check(100_000, 5_000, 5_000).await;
}
