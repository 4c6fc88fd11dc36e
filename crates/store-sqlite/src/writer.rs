//! The single writer. Requests queue up while a commit is in flight; the next
//! batch runs them each in its own savepoint inside one transaction and commits
//! once, so a failing request rolls back alone and the rest share one fsync. A batch
//! that queued jobs wakes this process's workers once it is committed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, mpsc};

use engram_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::{Notify, oneshot};

use crate::db_err;

const MAX_BATCH: usize = 256;

/// One queued write: run in the batch's transaction, then answered with the outcome.
trait Request: Send {
    /// Runs the write; on failure, returns a copy of its error (the original is kept
    /// for the caller).
    fn run(&mut self, conn: &Connection) -> Result<(), Error>;
    /// Answers the caller: the write's own result if the batch committed, else `failed`.
    fn finish(self: Box<Self>, failed: Option<&Error>);
}

struct Pending<T, F> {
    f: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Request for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> Result<(), Error> {
        let f = self.f.take().expect("a request runs once");
        let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
            .unwrap_or_else(|_| Err(Error::Internal("write panicked".into())));
        let copy = result.as_ref().map(|_| ()).map_err(share);
        self.result = Some(result);
        copy
    }

    fn finish(self: Box<Self>, failed: Option<&Error>) {
        let outcome = match (failed, self.result) {
            (Some(e), _) => Err(share(e)),
            (None, Some(result)) => result,
            (None, None) => Err(Error::Internal("write never ran".into())),
        };
        let _ = self.reply.send(outcome);
    }
}

/// A copy of `e` for every request of a failed batch: storage conditions keep their
/// kind (so each caller gets the same 5xx), anything else becomes internal.
fn share(e: &Error) -> Error {
    match e {
        Error::Storage { full, detail } => Error::Storage {
            full: *full,
            detail: detail.clone(),
        },
        other => Error::Internal(other.to_string()),
    }
}

enum Job {
    Write(Box<dyn Request>),
    /// Copies the write-ahead log into the database file and truncates it, so
    /// content removed by a purge no longer survives in old log frames.
    Checkpoint(oneshot::Sender<Result<()>>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// `jobs_ready` is notified after each commit that queued a job.
    pub fn spawn(conn: Connection, jobs_ready: Arc<Notify>) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("engram-sqlite-writer".into())
            .spawn(move || run(conn, rx, &jobs_ready))
            .expect("spawn writer thread");
        Writer { tx }
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let request = Pending {
            f: Some(f),
            result: None,
            reply,
        };
        self.tx
            .send(Job::Write(Box::new(request)))
            .map_err(|_| Error::Internal("sqlite writer stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("sqlite writer dropped a request".into()))?
    }

    pub async fn checkpoint(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Checkpoint(tx))
            .map_err(|_| Error::Internal("sqlite writer stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("sqlite writer dropped a request".into()))?
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, jobs_ready: &Notify) {
    let mut next = rx.recv().ok();
    while let Some(job) = next.take() {
        match job {
            Job::Checkpoint(reply) => {
                let done = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(db_err)
                    .and_then(|busy| match busy {
                        0 => Ok(()),
                        _ => Err(Error::Internal(
                            "wal checkpoint was blocked by readers".into(),
                        )),
                    });
                let _ = reply.send(done);
            }
            Job::Write(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(Job::Write(w)) => batch.push(w),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let committed = commit_batch(&conn, batch);
                if crate::queue::take_queued() && committed {
                    jobs_ready.notify_one();
                }
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
}

/// Runs `batch` in one transaction, each request in its own savepoint, and commits
/// once. A request that fails rolls back alone; a failure of the transaction itself
/// (BEGIN, a savepoint, a statement that made SQLite roll everything back, as a full
/// disk or an I/O error may, or COMMIT) fails every request of the batch, none
/// acknowledged, and leaves the connection outside any transaction for the next batch.
/// Returns whether the batch committed.
fn commit_batch(conn: &Connection, mut batch: Vec<Box<dyn Request>>) -> bool {
    let failed = run_batch(conn, &mut batch).err();
    if let Some(e) = &failed {
        tracing::error!(error = %e, requests = batch.len(), "sqlite batch not committed");
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    for request in batch {
        request.finish(failed.as_ref());
    }
    failed.is_none()
}

fn run_batch(conn: &Connection, batch: &mut [Box<dyn Request>]) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
    for request in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT request").map_err(db_err)?;
        let outcome = request.run(conn);
        if conn.is_autocommit() {
            return Err(outcome.err().unwrap_or_else(|| {
                Error::Internal("the transaction ended inside a request".into())
            }));
        }
        let close = if outcome.is_ok() {
            "RELEASE request"
        } else {
            "ROLLBACK TO request; RELEASE request"
        };
        conn.execute_batch(close).map_err(db_err)?;
    }
    conn.execute_batch("COMMIT").map_err(db_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(conn: &Connection, v: &str) -> Result<()> {
        conn.execute("INSERT INTO t VALUES (?1)", [v])
            .map(|_| ())
            .map_err(db_err)
    }

    /// A request during which SQLite abandons the whole transaction (as it may on a full
    /// disk or an I/O error) fails its whole batch: nothing of it is acknowledged or
    /// kept, later requests of the batch do not run outside a transaction, and the
    /// writer goes on working.
    #[tokio::test]
    async fn a_lost_transaction_fails_the_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v TEXT)")
            .unwrap();
        let writer = Writer::spawn(conn, Arc::new(Notify::new()));
        // Holds the writer busy so the next three requests queue up as one batch.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let gate = tokio::spawn({
            let w = writer.clone();
            async move {
                w.write(move |_| {
                    held.recv().unwrap();
                    Ok(())
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let a = tokio::spawn({
            let w = writer.clone();
            async move { w.write(|c| insert(c, "a")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let lost = tokio::spawn({
            let w = writer.clone();
            async move {
                w.write(|c| {
                    c.execute_batch("ROLLBACK").map_err(db_err)?;
                    Err::<(), _>(Error::Storage {
                        full: true,
                        detail: "disk full".into(),
                    })
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let c = tokio::spawn({
            let w = writer.clone();
            async move { w.write(|c| insert(c, "c")).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        gate.await.unwrap().unwrap();
        for outcome in [a.await.unwrap(), lost.await.unwrap(), c.await.unwrap()] {
            assert!(
                matches!(outcome, Err(Error::Storage { full: true, .. })),
                "{outcome:?}"
            );
        }
        writer.write(|c| insert(c, "after")).await.unwrap();
        let check = Connection::open(&path).unwrap();
        let rows: Vec<String> = check
            .prepare("SELECT v FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, ["after"]);
    }
}
