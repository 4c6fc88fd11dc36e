//! The scaled-out engine: PostgreSQL shared by any number of engram processes.
//!
//! Every `Store` method is one transaction. Races between processes are settled by the
//! database itself: get-or-create inserts with `ON CONFLICT DO NOTHING` and re-reads,
//! per-session writes serialize on the session row's lock, and a transaction that loses
//! a race (serialization failure, deadlock, unique violation) is retried a few times.

#[macro_use]
mod macros;

mod clone;
mod deletion;
mod dialect;
mod embeddings;
mod messages;
mod peers;
mod pocketpaw;
mod queue;
mod rows;
mod search;
mod sessions;
mod store;
mod webhooks;
mod workspace_deletion;
mod workspaces;

pub use store::PgStore;

use engram_core::Error;

/// A failure inside a transaction: either a database error, which may be worth a retry,
/// or a domain error, which is final.
#[derive(Debug)]
pub(crate) enum Fail {
    Db(sqlx::Error),
    App(Error),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Db(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::App(e)
    }
}

impl Fail {
    /// Lost races that a fresh attempt resolves: serialization failure, deadlock, and a
    /// unique violation from a concurrent insert of the same key.
    pub(crate) fn is_retryable(&self) -> bool {
        let Fail::Db(sqlx::Error::Database(e)) = self else {
            return false;
        };
        matches!(e.code().as_deref(), Some("40001" | "40P01" | "23505"))
    }

    pub(crate) fn into_error(self) -> Error {
        match self {
            // Every pooled connection stayed busy past the acquire timeout: overload, which
            // the client may retry, not a fault.
            Fail::Db(sqlx::Error::PoolTimedOut) => {
                Error::Busy("The database is busy; retry shortly".into())
            }
            Fail::Db(e) => Error::Internal(format!("postgres: {e}")),
            Fail::App(e) => e,
        }
    }
}

pub(crate) type R<T> = std::result::Result<T, Fail>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_pool_is_busy_not_internal() {
        assert!(matches!(
            Fail::Db(sqlx::Error::PoolTimedOut).into_error(),
            Error::Busy(_)
        ));
        assert!(matches!(
            Fail::Db(sqlx::Error::RowNotFound).into_error(),
            Error::Internal(_)
        ));
    }
}
