//! The single writer. Requests queue up while a commit is in flight; the next
//! batch runs them each in its own savepoint inside one transaction and commits
//! once, so a failing request rolls back alone and the rest share one fsync.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

use engram_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db_err;

const MAX_BATCH: usize = 256;

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type Write = Box<dyn FnOnce(&Connection) -> (bool, Completion) + Send>;

enum Job {
    Write(Write),
    /// Copies the write-ahead log into the database file and truncates it, so
    /// content removed by a purge no longer survives in old log frames.
    Checkpoint(oneshot::Sender<Result<()>>),
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    pub fn spawn(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("engram-sqlite-writer".into())
            .spawn(move || run(conn, rx))
            .expect("spawn writer thread");
        Writer { tx }
    }

    /// Runs `f` in the next group commit and answers once that commit is durable.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Write = Box::new(move |conn| {
            let result = catch_unwind(AssertUnwindSafe(|| f(conn)))
                .unwrap_or_else(|_| Err(Error::Internal("write panicked".into())));
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, done)
        });
        self.tx
            .send(Job::Write(job))
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

fn run(conn: Connection, rx: mpsc::Receiver<Job>) {
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
                commit_batch(&conn, batch);
            }
        }
        if next.is_none() {
            next = rx.recv().ok();
        }
    }
}

fn commit_batch(conn: &Connection, batch: Vec<Write>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs drops their reply channels: each caller gets an error.
        tracing::error!(error = %e, "sqlite writer could not begin a transaction");
        return;
    }
    let mut completions = Vec::with_capacity(batch.len());
    for job in batch {
        let savepoint = conn.execute_batch("SAVEPOINT request");
        let (ok, done) = job(conn);
        let release = if ok {
            conn.execute_batch("RELEASE request")
        } else {
            conn.execute_batch("ROLLBACK TO request; RELEASE request")
        };
        completions.push((done, savepoint.and(release).map_err(db_err)));
    }
    let commit = conn.execute_batch("COMMIT").map_err(db_err);
    if commit.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for (done, step) in completions {
        let outcome = match (&commit, step) {
            (Err(e), _) => Err(e.clone_internal()),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        };
        done(outcome);
    }
}

trait CloneInternal {
    fn clone_internal(&self) -> Error;
}

impl CloneInternal for Error {
    fn clone_internal(&self) -> Error {
        Error::Internal(self.to_string())
    }
}
