//! The `engram` binary: parses the command line and runs the chosen subcommand.

use clap::Parser;
use engram_server::config::{Cli, Command};
use engram_server::{AppState, build_router, serve};
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
            let store = args.store.open().await?;
            let listener = TcpListener::bind(args.bind)
                .await
                .map_err(|e| anyhow::anyhow!("ENGRAM_BIND: cannot listen on {}: {e}", args.bind))?;
            tracing::info!(address = %listener.local_addr()?, "engram listening");
            let router = build_router(AppState { store }, args.max_body_bytes);
            serve(listener, router, shutdown_signal()).await?;
            tracing::info!("engram stopped");
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
