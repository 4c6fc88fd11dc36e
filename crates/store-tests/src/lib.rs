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

/// A PostgreSQL database made for one test and dropped after it.
pub struct TempDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TempDatabase {
    pub async fn create(admin_url: &str) -> TempDatabase {
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
        }
    }

    pub async fn drop_database(self) {
        let mut admin = PgConnection::connect(&self.admin_url)
            .await
            .expect("connect TEST_DATABASE_URL");
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .expect("drop test database");
        let _ = admin.close().await;
    }
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
