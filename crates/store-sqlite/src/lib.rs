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
mod queue;
mod queue_status;
mod rows;
mod search;
mod sessions;
mod store;
mod webhooks;
mod workspace_deletion;
mod workspaces;
mod writer;

pub use store::SqliteStore;

use engram_core::Error;

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("sqlite: {e}"))
}
