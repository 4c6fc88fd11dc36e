//! One startup path: `engram serve` and the tests build the same [`App`] (listener,
//! router, queue workers), and `engram worker` starts the same [`Workers`].

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{AppState, build_router, serve};
use crate::config::{self, ServeArgs};
use crate::semantic;
use crate::settings::Settings;
use crate::worker;

/// How an [`App`] listens and whether it runs queue workers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body: usize,
    /// Rows per purge transaction of this process's workers; `None`: no workers
    /// (`serve --no-workers`), the queue is left to `engram worker` processes.
    pub purge_batch: Option<i64>,
}

/// The queue workers of one process, until [`Workers::stop`].
pub struct Workers {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Workers {
    /// Starts workers that run `state`'s jobs with its embedder, webhook settings and
    /// metrics, woken by its `wake`.
    pub fn start(state: &AppState, purge_batch: i64) -> Workers {
        let (stop, stop_rx) = watch::channel(false);
        let worker = worker::Worker {
            store: state.store.clone(),
            purge_batch,
            embedder: state.embedder.clone(),
            webhooks: state.webhooks.clone(),
            metrics: state.metrics.clone(),
        };
        let task = tokio::spawn(worker::run(worker, stop_rx));
        Workers { stop, task }
    }

    /// A receiver that turns true when the workers are told to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops claiming, then waits until the job in hand is finished or handed back.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// A bound listener, its router and this process's workers: everything `serve` runs.
pub struct App {
    listener: TcpListener,
    router: Router,
    workers: Option<Workers>,
}

impl App {
    /// Binds `options.bind` and starts the workers. The state decides everything else
    /// (store, embedder, auth, webhooks, CORS, PocketPaw).
    pub async fn build(state: AppState, options: ServeOptions) -> anyhow::Result<App> {
        let listener = TcpListener::bind(options.bind)
            .await
            .map_err(|e| anyhow::anyhow!("ENGRAM_BIND: cannot listen on {}: {e}", options.bind))?;
        let workers = options
            .purge_batch
            .map(|batch| Workers::start(&state, batch));
        Ok(App {
            listener,
            router: build_router(state, options.max_body),
            workers,
        })
    }

    /// The address the listener is bound to (the port the system chose for `:0`).
    pub fn address(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, lets requests in flight finish, then stops
    /// the workers.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let served = serve(self.listener, self.router, shutdown).await;
        if let Some(workers) = self.workers {
            workers.stop().await;
        }
        served
    }
}

/// The state `engram serve` runs with: the store its settings name, migrated; the
/// embedding provider bound to it; auth, webhooks, CORS and PocketPaw settings.
pub async fn serve_state(args: &ServeArgs, settings: &Settings) -> anyhow::Result<AppState> {
    let auth = args.auth.config()?;
    let cors_origins = config::cors_origins(args.cors_origins.as_deref())?;
    let store = args.store.open().await?;
    let embedder = semantic::start(&store, &args.embeddings, settings).await?;
    let mut state = AppState {
        auth,
        webhooks: args.webhooks.config(),
        cors_origins,
        ..AppState::new(store)
    }
    .with_pocketpaw(args.pocketpaw.clone());
    if let Some(e) = embedder {
        state = state.with_embedder(e);
    }
    Ok(state)
}

impl ServeOptions {
    pub fn from_args(args: &ServeArgs) -> ServeOptions {
        ServeOptions {
            bind: args.bind,
            max_body: args.max_body_bytes,
            purge_batch: (!args.no_workers).then_some(args.worker.purge_batch),
        }
    }
}
