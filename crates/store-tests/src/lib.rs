//! Fresh, isolated stores for the shared store test suite: a SQLite file in a temporary
//! directory, or a new PostgreSQL database on the server named by `TEST_DATABASE_URL`.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use engram_core::Store;
use engram_store_postgres::PgStore;
use engram_store_sqlite::SqliteStore;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Runs `check` against a fresh SQLite store.
pub async fn on_sqlite<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("engram.db")).expect("open sqlite");
    check(Arc::new(store)).await;
}

/// The PostgreSQL superuser URL tests create their databases with, if configured.
pub fn admin_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide TEST_DATABASE_URL"
            );
            // Written past the test harness's capture so a skipped engine is never silent.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: TEST_DATABASE_URL unset, PostgreSQL half not run"
            );
            None
        }
    }
}

/// `url` with its database name replaced, keeping any query string.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A PostgreSQL database made for one test, the one way every suite makes one. It is
/// dropped when this value goes out of scope (or earlier, by [`TempDatabase::drop_database`]),
/// also when the test panics, and with `FORCE`, so connections a server, a worker or a
/// child process still holds do not keep it alive.
pub struct TempDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
    dropped: bool,
}

impl TempDatabase {
    /// A new database on the server of `TEST_DATABASE_URL`; `None` (loudly, see
    /// [`admin_url`]) when none is configured.
    pub async fn fresh() -> Option<TempDatabase> {
        Some(TempDatabase::create(&admin_url()?).await)
    }

    pub async fn create(admin_url: &str) -> TempDatabase {
        // Lowercase letters and digits only: the name is interpolated into DDL unquoted.
        let name = format!("engram_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(admin_url)
            .await
            .expect("connect TEST_DATABASE_URL");
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        TempDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
            dropped: false,
        }
    }

    /// Drops the database now, on this task's runtime.
    pub async fn drop_database(mut self) {
        drop_named(&self.admin_url, &self.name)
            .await
            .expect("drop test database");
        self.dropped = true;
    }
}

impl Drop for TempDatabase {
    /// Drops the database on a short-lived thread with a runtime of its own, so it works
    /// from synchronous code and from inside any tokio runtime (a current-thread test's
    /// included), and waits for it.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin, name) = (self.admin_url.clone(), self.name.clone());
        let outcome = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(sqlx::Error::Io)?
                .block_on(drop_named(&admin, &name))
        })
        .join();
        let failure = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "the dropping thread panicked".to_string(),
        };
        let message = format!("test database {} was not dropped: {failure}", self.name);
        if std::thread::panicking() {
            let _ = writeln!(std::io::stderr(), "{message}");
        } else {
            panic!("{message}");
        }
    }
}

async fn drop_named(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut admin = PgConnection::connect(admin_url).await?;
    // FORCE ends the connections a pool, a server or a child process still holds.
    sqlx::query(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    let _ = admin.close().await;
    Ok(())
}

/// A fresh SQLite file and a fresh PostgreSQL database side by side, for the tests that
/// compare the two engines.
pub struct EnginePair {
    pub sqlite: Arc<dyn Store>,
    pub postgres: Arc<PgStore>,
    _dir: tempfile::TempDir,
    db: TempDatabase,
}

impl EnginePair {
    /// `None` (loudly) without `TEST_DATABASE_URL`.
    pub async fn open() -> Option<EnginePair> {
        let admin = admin_url()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let sqlite =
            Arc::new(SqliteStore::open(&dir.path().join("engram.db")).expect("open sqlite"));
        let db = TempDatabase::create(&admin).await;
        let postgres = Arc::new(PgStore::connect(&db.url).await.expect("open postgres"));
        Some(EnginePair {
            sqlite,
            postgres,
            _dir: dir,
            db,
        })
    }

    /// Closes the PostgreSQL pool and drops its database (the SQLite file goes with the pair).
    pub async fn close(self) {
        self.postgres.close().await;
        self.db.drop_database().await;
    }
}

/// Runs `check` against a fresh PostgreSQL database; skipped (loudly) without
/// `TEST_DATABASE_URL`. The database is dropped afterwards, also when the check fails.
pub async fn on_postgres<F, Fut>(check: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin) = admin_url() else { return };
    let db = TempDatabase::create(&admin).await;
    let store = Arc::new(PgStore::connect(&db.url).await.expect("open postgres"));
    let outcome = tokio::spawn(check(store.clone())).await;
    store.close().await;
    db.drop_database().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgresql://u@h:5/postgres", "x"),
            "postgresql://u@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://u@h:5/postgres?sslmode=disable", "x"),
            "postgresql://u@h:5/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://u@h:5", "x"),
            "postgresql://u@h:5/x"
        );
    }
}
