//! Command line and environment settings. Honcho's variable names are kept where
//! they exist (`DB_CONNECTION_URI`), engram's own use the `ENGRAM_` prefix.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::http::HeaderValue;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use engram_core::Store;

use crate::auth::{AuthConfig, Secret};
use crate::webhooks::{DEFAULT_TIMEOUT_MS, WebhookConfig};

/// `ENGRAM_MAX_BODY_BYTES` when unset: 16 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "engram",
    version,
    about = "engram: a Honcho v3 compatible memory server for AI agents"
)]
pub struct Cli {
    /// A TOML file whose keys are the environment variables named in `--help`
    /// (`ENGRAM_BIND = "0.0.0.0:8000"`); flags and the environment win over it. Unset,
    /// `./engram.toml` is read when it exists.
    #[arg(long, env = crate::settings::CONFIG_ENV, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API and the queue workers (SQLite under --data-dir by default,
    /// PostgreSQL when DB_CONNECTION_URI is set).
    Serve(ServeArgs),
    /// Run only the queue workers (background purges), no HTTP; pair with `serve --no-workers`.
    Worker(WorkerArgs),
    /// Check the store for rows that should not exist (orphans of deleted sessions,
    /// purges that never ran or were dead-lettered); exits 1 if any are found.
    Verify(StoreArgs),
    /// Inspect the job queue: list jobs, or put a dead-lettered job back in line.
    Queue(QueueArgs),
    /// Apply the database migrations and exit (they also run at every start).
    Migrate(StoreArgs),
    /// Import sessions: a PocketPaw memory directory, or JSON Lines from `engram export`.
    Import(crate::transfer::ImportArgs),
    /// Write a workspace, or one session of it, as JSON Lines that `engram import jsonl` reads back.
    Export(crate::transfer::ExportArgs),
    /// Print an API key signed with AUTH_JWT_SECRET (for bootstrapping: mint the
    /// first admin key here, the rest through `POST /v3/keys`).
    Token(TokenArgs),
}

#[derive(Args, Debug, Clone)]
pub struct AuthArgs {
    /// Require a bearer key on every route except health and the API description.
    #[arg(long = "auth", env = "AUTH_USE_AUTH", value_parser = BoolishValueParser::new())]
    pub use_auth: bool,
    /// HS256 secret that signs keys (at least 32 bytes); required with AUTH_USE_AUTH.
    #[arg(long = "jwt-secret", env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
}

impl AuthArgs {
    pub fn config(&self) -> anyhow::Result<AuthConfig> {
        AuthConfig::new(self.use_auth, self.jwt_secret.clone())
    }
}

#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Signs webhook bodies (`X-Honcho-Signature`); without it nothing is delivered.
    #[arg(
        long = "webhook-secret",
        env = "WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,
    /// Allow webhook endpoints on private, loopback and link-local addresses.
    #[arg(long, env = "ENGRAM_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new())]
    pub webhook_allow_private: bool,
    /// How long one delivery may take, in milliseconds (below the 15 s job lease).
    #[arg(long, env = "ENGRAM_WEBHOOK_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=14_000))]
    pub webhook_timeout_ms: u64,
}

impl WebhookArgs {
    pub fn config(&self) -> WebhookConfig {
        WebhookConfig {
            secret: self
                .webhook_secret
                .clone()
                .filter(|s| !s.bytes().is_empty()),
            allow_private: self.webhook_allow_private,
            timeout: std::time::Duration::from_millis(self.webhook_timeout_ms),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// An admin key (all routes).
    #[arg(long)]
    pub admin: bool,
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub peer: Option<String>,
    #[arg(long)]
    pub session: Option<String>,
    /// Expiry, ISO-8601 (`2030-01-01T00:00:00Z`).
    #[arg(long)]
    pub expires_at: Option<String>,
    #[arg(long = "jwt-secret", env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
}

#[derive(Args, Debug, Clone)]
pub struct StoreArgs {
    /// Directory for the embedded SQLite database (`engram.db`); created if missing.
    #[arg(
        long,
        env = "ENGRAM_DATA_DIR",
        default_value = "./engram-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (`postgresql://user:pass@host:port/db`); selects PostgreSQL instead of SQLite.
    /// pgvector must be installable: the migrations run `CREATE EXTENSION IF NOT EXISTS vector`.
    #[arg(long = "database-url", env = "DB_CONNECTION_URI", global = true)]
    pub database_url: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ENGRAM_BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,
    /// Largest accepted request body, in bytes (larger requests get 413).
    #[arg(long, env = "ENGRAM_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Serve the API only; queue work is left to `engram worker` processes.
    #[arg(long, env = "ENGRAM_NO_WORKERS")]
    pub no_workers: bool,
    /// Origins allowed by CORS, comma-separated or as Honcho's JSON list (`*` for any);
    /// unset, no CORS headers.
    #[arg(long, env = "CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub pocketpaw: PocketPawSettings,
    #[command(flatten)]
    pub embeddings: crate::semantic::EmbeddingArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// The PocketPaw session API (`/api/v1/sessions...`, `/api/sessions...`).
#[derive(Args, Debug, Clone)]
pub struct PocketPawSettings {
    /// PocketPaw's master token: clients must send it as `Authorization: Bearer` or
    /// `?token=`. Unset, the PocketPaw routes are open, like the Honcho routes without auth.
    #[arg(
        long = "pocketpaw-token",
        env = "ENGRAM_POCKETPAW_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Workspace holding the PocketPaw sessions (the Honcho API sees them there too).
    #[arg(long = "pocketpaw-workspace", env = "ENGRAM_POCKETPAW_WORKSPACE",
          default_value = engram_core::pocketpaw::DEFAULT_WORKSPACE)]
    pub workspace: String,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerSettings {
    /// Rows removed per purge transaction: smaller batches hold the writer for less time.
    #[arg(long, env = "ENGRAM_PURGE_BATCH", default_value_t = engram_core::queue::PURGE_BATCH,
          value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub purge_batch: i64,
}

#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Serve `GET /metrics` (this worker's job counters and the queue depth) on this
    /// address; unset, the worker opens no port.
    #[arg(long, env = "ENGRAM_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// Guards `/metrics` as `serve` does: with auth on, an admin key is required.
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub embeddings: crate::semantic::EmbeddingArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Args, Debug, Clone)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Subcommand, Debug, Clone)]
pub enum QueueAction {
    /// List jobs, oldest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = ["pending", "running", "done", "failed"])]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Re-run a dead-lettered (failed) job with a fresh attempt budget.
    Retry { id: i64 },
    /// The purge receipts of a workspace: which sessions were deleted, how many rows each
    /// purge removed, when it was asked for and when it finished. No content.
    Receipts {
        #[arg(long)]
        workspace: String,
    },
}

impl StoreArgs {
    /// Opens (and migrates) the configured engine.
    pub async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match self
            .database_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            Some(url) => {
                let url = normalize_pg_url(url)?;
                let store = engram_store_postgres::PgStore::connect(&url)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("DB_CONNECTION_URI: cannot open PostgreSQL: {e}")
                    })?;
                Ok(Arc::new(store))
            }
            None => {
                std::fs::create_dir_all(&self.data_dir).map_err(|e| {
                    anyhow::anyhow!(
                        "ENGRAM_DATA_DIR: cannot create {}: {e}",
                        self.data_dir.display()
                    )
                })?;
                let path = self.data_dir.join("engram.db");
                let store = engram_store_sqlite::SqliteStore::open(&path).map_err(|e| {
                    anyhow::anyhow!("ENGRAM_DATA_DIR: cannot open {}: {e}", path.display())
                })?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// Parses `CORS_ORIGINS`: `a,b` or, as Honcho's settings read it, `["a", "b"]`.
pub fn cors_origins(raw: Option<&str>) -> anyhow::Result<Vec<HeaderValue>> {
    let raw = raw.unwrap_or_default().trim();
    let list: Vec<String> = if raw.starts_with('[') {
        serde_json::from_str(raw)
            .map_err(|e| anyhow::anyhow!("CORS_ORIGINS: not a JSON list of strings: {e}"))?
    } else {
        raw.split(',').map(str::to_string).collect()
    };
    list.iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .map(|o| {
            HeaderValue::from_str(o)
                .ok()
                .filter(|_| o == "*" || o.contains("://"))
                .ok_or_else(|| anyhow::anyhow!("CORS_ORIGINS: invalid origin {o:?}"))
        })
        .collect()
}

/// Accepts Honcho's SQLAlchemy-style URLs (`postgresql+psycopg://`) as well as plain ones.
fn normalize_pg_url(url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        anyhow::anyhow!("DB_CONNECTION_URI: expected postgresql://..., got {url:?}")
    })?;
    match scheme.split('+').next() {
        Some("postgresql" | "postgres") => Ok(format!("postgresql://{rest}")),
        _ => anyhow::bail!(
            "DB_CONNECTION_URI: unsupported scheme {scheme:?}; expected postgresql://"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{cors_origins, normalize_pg_url};

    #[test]
    fn cors_origins_as_list_or_json() {
        let both = ["https://a.example", "http://b.example:3000"];
        for raw in [
            "https://a.example, http://b.example:3000",
            r#"["https://a.example", "http://b.example:3000"]"#,
        ] {
            assert_eq!(cors_origins(Some(raw)).unwrap(), both);
        }
        assert!(cors_origins(None).unwrap().is_empty());
        assert_eq!(cors_origins(Some("*")).unwrap(), ["*"]);
        assert!(cors_origins(Some("[1]")).is_err());
        assert!(cors_origins(Some("not-an-origin")).is_err());
    }

    #[test]
    fn accepts_honcho_urls() {
        assert_eq!(
            normalize_pg_url("postgresql+psycopg://u@h/d").unwrap(),
            "postgresql://u@h/d"
        );
        assert_eq!(
            normalize_pg_url("postgres://u@h/d").unwrap(),
            "postgresql://u@h/d"
        );
        assert!(normalize_pg_url("mysql://u@h/d").is_err());
        assert!(normalize_pg_url("nonsense").is_err());
    }
}
