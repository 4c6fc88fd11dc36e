//! A fixed set of read-only connections handed out to blocking tasks.

use std::sync::{Arc, Mutex};

use engram_core::{Error, Result};
use rusqlite::Connection;
use tokio::sync::Semaphore;

pub struct ReadPool {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl ReadPool {
    pub fn new(conns: Vec<Connection>) -> Arc<ReadPool> {
        let n = conns.len();
        Arc::new(ReadPool {
            conns: Mutex::new(conns),
            permits: Semaphore::new(n),
        })
    }

    /// Runs `f` on a blocking thread: for reads whose cost grows with the data
    /// (searches, filtered lists, exports).
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self.permits.acquire().await.map_err(Error::internal)?;
        let pool = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || pool.with_connection(f))
            .await
            .map_err(Error::internal)?;
        drop(permit);
        result
    }

    /// Runs `f` on the calling task's thread: for index range reads of bounded size (a
    /// page, a context window), which take tens of microseconds, less than handing them
    /// to a blocking thread and back costs in thread wake-ups.
    pub async fn read_bounded<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        self.with_connection(f)
    }

    fn with_connection<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T>,
    {
        let conn = self
            .conns
            .lock()
            .expect("pool lock")
            .pop()
            .expect("a permit implies a free connection");
        // A read transaction gives multi-statement reads (count + page) one snapshot.
        // A panicking read must not take its connection out of the pool.
        let out = conn
            .execute_batch("BEGIN")
            .map_err(crate::db_err)
            .and_then(|()| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&conn)))
                    .unwrap_or_else(|_| Err(Error::Internal("read panicked".into())))
            });
        let _ = conn.execute_batch("COMMIT");
        self.conns.lock().expect("pool lock").push(conn);
        out
    }
}
