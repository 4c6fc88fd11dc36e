//! The `engram` binary: parses the command line and runs the chosen subcommand.

use clap::Parser;
use engram_server::config::{Cli, Command, QueueAction};
use engram_server::{AppState, build_router, serve, worker};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ENGRAM_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("engram: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate(store) => {
            store.open().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Serve(args) => {
            let state = AppState::new(args.store.open().await?).with_pocketpaw(args.pocketpaw);
            let listener = TcpListener::bind(args.bind)
                .await
                .map_err(|e| anyhow::anyhow!("ENGRAM_BIND: cannot listen on {}: {e}", args.bind))?;
            tracing::info!(address = %listener.local_addr()?, "engram listening");
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let workers = (!args.no_workers).then(|| {
                tokio::spawn(worker::run(
                    state.store.clone(),
                    state.wake.clone(),
                    stop_rx,
                    args.worker.purge_batch,
                ))
            });
            let router = build_router(state, args.max_body_bytes);
            serve(listener, router, shutdown_signal()).await?;
            let _ = stop_tx.send(true);
            if let Some(w) = workers {
                let _ = w.await;
            }
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
            }
            Ok(())
        }
        Command::Verify(store) => {
            let counts = store.open().await?.verify().await?;
            let mut problems = 0;
            for (check, count) in engram_core::queue::VERIFY_CHECKS.iter().zip(&counts) {
                println!("{count:>10}  {check}");
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
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let wake = std::sync::Arc::new(tokio::sync::Notify::new());
            let worker = tokio::spawn(worker::run(store, wake, stop_rx, args.worker.purge_batch));
            tracing::info!("engram worker running");
            shutdown_signal().await;
            let _ = stop_tx.send(true);
            let _ = worker.await;
            tracing::info!("engram worker stopped");
            Ok(())
        }
    }
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
