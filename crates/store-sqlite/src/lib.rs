//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`.
//!
//! All writes go through one writer thread that commits concurrent requests together
//! (group commit), so every acknowledged write is on disk without paying one fsync per
//! request. Reads use a small pool of read-only connections.

mod deletion;
mod dialect;
mod embeddings;
mod fts_keys;
mod fts_purge;
mod messages;
mod migrate;
mod monotonic_ids;
mod peers;
mod pocketpaw;
mod pool;
mod purge_steps;
mod queue;
mod queue_status;
mod rows;
mod search;
mod sessions;
mod store;
mod verify;
mod webhooks;
mod workspace_deletion;
mod workspaces;
mod writer;

pub use store::SqliteStore;

use engram_core::Error;

/// The one translation of SQLite errors: storage conditions the operator can clear (a
/// full disk, read-only or failing files) become `Error::Storage`, the rest are internal.
pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    use rusqlite::ErrorCode::{CannotOpen, DiskFull, ReadOnly, SystemIoFailure};
    match e.sqlite_error_code() {
        Some(DiskFull) => Error::Storage {
            full: true,
            detail: "Insufficient storage: the database's disk is full, so nothing was saved"
                .into(),
        },
        Some(ReadOnly | SystemIoFailure | CannotOpen) => Error::Storage {
            full: false,
            detail: format!(
                "Storage unavailable: the database files cannot be written ({e}), so nothing was saved"
            ),
        },
        _ => Error::Internal(format!("sqlite: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    /// A real SQLITE_READONLY (a write through a read-only handle) is a storage
    /// condition, not an internal error.
    #[test]
    fn read_only_writes_are_storage_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (v)")
            .unwrap();
        let ro = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let e = db_err(ro.execute_batch("INSERT INTO t VALUES (1)").unwrap_err());
        assert!(
            matches!(&e, Error::Storage { full: false, detail } if detail.contains("readonly")),
            "{e:?}"
        );
        let e = db_err(ro.execute_batch("SELECT * FROM missing").unwrap_err());
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }
}
