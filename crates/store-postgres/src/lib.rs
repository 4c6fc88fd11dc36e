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
            Fail::Db(e) if unavailable(&e) => {
                tracing::warn!(error = %e, "postgres unavailable");
                Error::Busy("The database is unavailable; retry shortly".into())
            }
            Fail::Db(e) => Error::Internal(format!("postgres: {e}")),
            Fail::App(e) => e,
        }
    }
}

/// The connection broke or the server is going away or not yet accepting connections
/// (class 08 connection exceptions, `admin_shutdown`, `crash_shutdown`,
/// `cannot_connect_now`, `too_many_connections`): an outage the client may retry, and a
/// failure of the database rather than of the request or the job.
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
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
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            Fail::Db(sqlx::Error::Io(refused)).into_error(),
            Error::Busy(_)
        ));
    }
}
