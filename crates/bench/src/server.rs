//! Starting and stopping the engram under test, and reading its resource use. The bench
//! runs the real release binary as a child process, so startup time and RSS are what an
//! operator would see, not an in-process approximation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A running engram child plus what is needed to start it again on the same store.
pub struct Engram {
    bin: PathBuf,
    data_dir: PathBuf,
    database_url: Option<String>,
    log: PathBuf,
    child: Option<Child>,
    pub base: String,
    /// `ENGRAM_EMBEDDINGS` for the next start.
    pub embeddings: String,
}

fn free_port() -> Result<u16> {
    // The port is released before engram binds it; on a loopback-only bench host the
    // window for another process to grab it is negligible.
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Engram {
    /// Spawns `engram serve` and waits for `/health`; returns it with the time that took.
    pub async fn start(
        http: &reqwest::Client,
        bin: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<(Engram, Duration)> {
        // Background embedding would compete with the measured requests for the CPU;
        // `ENGRAM_BENCH_EMBEDDINGS=local` measures with it on.
        let embeddings = std::env::var("ENGRAM_BENCH_EMBEDDINGS").unwrap_or_else(|_| "off".into());
        Engram::start_with(http, bin, data_dir, database_url, &embeddings).await
    }

    /// `start` with this `ENGRAM_EMBEDDINGS`.
    pub async fn start_with(
        http: &reqwest::Client,
        bin: &Path,
        data_dir: &Path,
        database_url: Option<&str>,
        embeddings: &str,
    ) -> Result<(Engram, Duration)> {
        if !bin.is_file() {
            bail!(
                "engram binary not found at {} (build it with `cargo build --release -p engram-server` or pass --engram-bin)",
                bin.display()
            );
        }
        let log = data_dir.join("engram.log");
        let mut e = Engram {
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            database_url: database_url.map(str::to_string),
            log,
            child: None,
            base: String::new(),
            embeddings: embeddings.to_string(),
        };
        let took = e.spawn(http).await?;
        Ok((e, took))
    }

    async fn spawn(&mut self, http: &reqwest::Client) -> Result<Duration> {
        let port = free_port()?;
        self.base = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--bind")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env_remove("DB_CONNECTION_URI")
            .env("ENGRAM_EMBEDDINGS", &self.embeddings)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(url) = &self.database_url {
            cmd.env("DB_CONNECTION_URI", url);
        }
        let started = Instant::now();
        let child = self.child.insert(
            cmd.spawn()
                .with_context(|| format!("spawn {}", self.bin.display()))?,
        );
        let health = format!("{}/health", self.base);
        loop {
            if let Ok(r) = http.get(&health).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "engram exited with {status} before /health answered; log: {}",
                    self.log.display()
                );
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("engram did not answer /health within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Stops it gracefully and starts it again on the same store (startup with data).
    pub async fn restart(&mut self, http: &reqwest::Client) -> Result<Duration> {
        self.stop()?;
        self.spawn(http).await
    }

    /// Where its SQLite store lives.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PostgreSQL database it uses, if any.
    pub fn database_url(&self) -> Option<&str> {
        self.database_url.as_deref()
    }

    /// `(VmRSS, VmHWM)` in MB, from `/proc/<pid>/status`.
    pub fn rss_mb(&self) -> Option<(f64, f64)> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        };
        Some((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
    }

    /// SIGTERM (engram's graceful stop), then SIGKILL if it hangs for 10 s.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        // `kill` the command rather than a signal crate: the workspace forbids unsafe code.
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!("engram did not stop within 10 s of SIGTERM; killing it");
        child.kill()?;
        child.wait()?;
        Ok(())
    }
}

impl Drop for Engram {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Fresh PostgreSQL databases on the server named by an admin URL, dropped by `drop_all`.
pub struct PgDatabases {
    admin_url: String,
    created: Vec<String>,
}

impl PgDatabases {
    pub fn new(admin_url: &str) -> PgDatabases {
        PgDatabases {
            admin_url: admin_url.to_string(),
            created: vec![],
        }
    }

    /// Creates `engram_bench_<random><suffix>` and returns its URL.
    pub async fn create(&mut self, suffix: &str) -> Result<String> {
        // Lowercase letters and digits only: the name is interpolated into DDL unquoted.
        let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789".chars().collect();
        let name = format!("engram_bench_{}{suffix}", nanoid::nanoid!(10, &alphabet));
        let mut admin = self.admin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        self.created.push(name.clone());
        with_database(&self.admin_url, &name)
    }

    async fn admin(&self) -> Result<sqlx::PgConnection> {
        <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin_url)
            .await
            .context("connect to --database-url")
    }

    pub async fn drop_all(&mut self) -> Result<()> {
        let mut admin = self.admin().await?;
        for name in self.created.drain(..) {
            // FORCE ends connections a crashed child may have left behind.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .with_context(|| format!("DROP DATABASE {name}"))?;
        }
        Ok(())
    }
}

/// Updates the planner statistics of a freshly filled database, as autovacuum would a
/// minute or so later: without them PostgreSQL plans the measured reads for empty tables.
pub async fn analyze(url: &str) -> Result<()> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url).await?;
    sqlx::query("ANALYZE").execute(&mut c).await?;
    Ok(())
}

/// The same server URL pointing at another database (query string kept).
fn with_database(url: &str, db: &str) -> Result<String> {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    if !base.starts_with("postgres") {
        bail!("--database-url must be postgresql://..., got {url:?}");
    }
    Ok(match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    })
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn swaps_the_database() {
        assert_eq!(
            with_database("postgresql://u@h:5/postgres", "x").unwrap(),
            "postgresql://u@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://u@h:5", "x").unwrap(),
            "postgresql://u@h:5/x"
        );
        assert_eq!(
            with_database("postgresql://u@h/p?sslmode=disable", "x").unwrap(),
            "postgresql://u@h/x?sslmode=disable"
        );
    }
}
