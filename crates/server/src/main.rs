//! The `engram` binary: parses the command line and runs the chosen subcommand.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};
use engram_server::auth::{self, AuthConfig};
use engram_server::config::{Cli, Command, QueueAction, TokenArgs};
use engram_server::settings::Settings;
use engram_server::startup::{self, App, ServeOptions, Workers};
use engram_server::{AppState, metrics_router, semantic, serve};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

mod malloc;

fn main() {
    malloc::tune();
    let args: Vec<OsString> = std::env::args_os().collect();
    let settings = Settings::load(&args, &Cli::command()).unwrap_or_else(|e| {
        eprintln!("engram: {e:#}");
        std::process::exit(1);
    });
    let log = settings.get("ENGRAM_LOG");
    tracing_subscriber::fmt()
        .with_env_filter(
            log.and_then(|f| EnvFilter::try_new(f).ok())
                .unwrap_or_else(|| EnvFilter::new("info")),
        )
        .init();
    let matches = settings.apply(Cli::command()).get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(file) = settings.file() {
        tracing::info!(file = %file.display(), "settings file read");
    }
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli, settings)));
    if let Err(e) = outcome {
        eprintln!("engram: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(store) => {
            store.open().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token(args) => {
            println!("{}", token(&args)?);
            Ok(())
        }
        Command::Serve(args) => {
            let state = startup::serve_state(&args, &settings).await?;
            if !state.auth.enabled() {
                tracing::warn!(
                    "authentication is off (AUTH_USE_AUTH): every request acts as admin"
                );
            }
            let app = App::build(state, ServeOptions::from_args(&args)).await?;
            tracing::info!(address = %app.address()?, "engram listening");
            app.run_until_stopped(shutdown_signal()).await?;
            tracing::info!("engram stopped");
            Ok(())
        }
        Command::Queue(args) => {
            let store = args.store.open().await?;
            match args.action {
                QueueAction::List { state, limit } => {
                    println!(
                        "{:>8}  {:<16} {:<8} {:>8}  {:<28} last error",
                        "id", "kind", "state", "attempts", "next run"
                    );
                    for job in store.list_jobs(state.as_deref(), limit).await? {
                        println!(
                            "{:>8}  {:<16} {:<8} {:>4}/{:<3}  {:<28} {}",
                            job.id,
                            job.kind,
                            job.state,
                            job.attempts,
                            job.max_attempts,
                            engram_core::time::format(job.run_at),
                            job.last_error.unwrap_or_default()
                        );
                    }
                }
                QueueAction::Retry { id } => {
                    if !store.retry_job(id).await? {
                        anyhow::bail!("no dead-lettered job with id {id}");
                    }
                    println!("job {id} queued again");
                }
                QueueAction::Receipts { workspace } => {
                    println!(
                        "{:<28} {:>10} {:>8}  {:<28} finished",
                        "session", "messages", "members", "requested"
                    );
                    for r in store.deletion_receipts(&workspace).await? {
                        println!(
                            "{:<28} {:>10} {:>8}  {:<28} {}",
                            r.session_id,
                            r.messages_deleted,
                            r.members_deleted,
                            engram_core::time::format(r.requested_at),
                            r.finished_at
                                .map_or("purge pending".into(), engram_core::time::format)
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Verify(store) => {
            let store = store.open().await?;
            let spinner = engram_server::progress::spinner("verifying the store");
            let counts = store.verify().await;
            spinner.finish_and_clear();
            let counts = counts?;
            let mut problems = 0;
            for (check, count) in engram_core::verify::checks().iter().zip(&counts) {
                println!("{count:>10}  {}", check.name);
                problems += count;
            }
            if problems > 0 {
                anyhow::bail!("verify found {problems} row(s) that should not exist");
            }
            println!("store is clean");
            Ok(())
        }
        Command::Import(args) => args.run().await,
        Command::Export(args) => args.run().await,
        Command::Worker(args) => {
            let store = args.store.open().await?;
            let mut state = AppState {
                auth: args.auth.config()?,
                webhooks: args.webhooks.config(),
                ..AppState::new(store)
            };
            if let Some(e) = semantic::start(&state.store, &args.embeddings, &settings).await? {
                state = state.with_embedder(e);
            }
            let workers = Workers::start(&state, args.worker.purge_batch);
            let scrape = match args.metrics_bind {
                Some(bind) => Some(serve_metrics(bind, state, workers.stopping()).await?),
                None => None,
            };
            tracing::info!("engram worker running");
            shutdown_signal().await;
            workers.stop().await;
            if let Some(s) = scrape {
                let _ = s.await;
            }
            tracing::info!("engram worker stopped");
            Ok(())
        }
    }
}

/// Serves a worker's `/metrics` on `bind` until `stop` turns true.
async fn serve_metrics(
    bind: std::net::SocketAddr,
    state: AppState,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("ENGRAM_METRICS_BIND: cannot listen on {bind}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "engram metrics listening");
    let shutdown = async move {
        let _ = stop.wait_for(|stopping| *stopping).await;
    };
    Ok(tokio::spawn(serve(
        listener,
        metrics_router(state),
        shutdown,
    )))
}

/// Signs a key with the configured secret, as `POST /v3/keys` would.
fn token(args: &TokenArgs) -> anyhow::Result<String> {
    let secret = AuthConfig::new(true, args.jwt_secret.clone())?;
    let secret = secret.secret().expect("auth config with a secret");
    let blank = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (w, p, s) = (
        blank(&args.workspace),
        blank(&args.peer),
        blank(&args.session),
    );
    if !args.admin && w.is_none() && p.is_none() && s.is_none() {
        anyhow::bail!("give --admin or at least one of --workspace, --peer, --session");
    }
    if (p.is_some() || s.is_some()) && w.is_none() {
        anyhow::bail!("--workspace is required when scoping a key to a peer or session");
    }
    let exp = match &args.expires_at {
        None => None,
        Some(raw) => Some(auth::whole_seconds(
            engram_core::time::parse(raw).ok_or_else(|| {
                anyhow::anyhow!("--expires-at: not an ISO-8601 date-time: {raw:?}")
            })?,
        )),
    };
    let claims = auth::KeyClaims {
        exp,
        ad: args.admin.then_some(true),
        w,
        p,
        s,
        ..auth::KeyClaims::now()
    };
    Ok(auth::encode(secret, &claims))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
