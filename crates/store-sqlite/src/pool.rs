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

    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self.permits.acquire().await.map_err(Error::internal)?;
        let pool = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let conn = pool
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
            pool.conns.lock().expect("pool lock").push(conn);
            out
        })
        .await
        .map_err(Error::internal)?;
        drop(permit);
        result
    }
}
