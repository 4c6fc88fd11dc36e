//! Application state, the router, and the serve loop with graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use engram_core::{Embedder, Store};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::{input, openapi, routes};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Wakes this process's queue workers when a request queued a job.
    pub wake: Arc<tokio::sync::Notify>,
    /// Embeds search queries; `None` when semantic search is off.
    pub embedder: Option<Arc<dyn Embedder>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> AppState {
        AppState {
            store,
            wake: Arc::new(tokio::sync::Notify::new()),
            embedder: None,
        }
    }

    /// Turns semantic search on; the database must already use this embedder's model
    /// (`engram_core::search::SearchStore::enable_embeddings`).
    pub fn with_embedder(mut self, embedder: Arc<dyn Embedder>) -> AppState {
        self.embedder = Some(embedder);
        self
    }
}

/// The whole HTTP surface; `max_body` bounds every request body in bytes.
pub fn build_router(state: AppState, max_body: usize) -> Router {
    let (router, api) = OpenApiRouter::with_openapi(openapi::ApiDoc::base())
        .merge(routes::workspaces::router())
        .merge(routes::peers::router())
        .merge(routes::sessions::router())
        .merge(routes::messages::router())
        .merge(routes::queue::router())
        .merge(routes::search::router())
        .merge(routes::health::router())
        .split_for_parts();
    router
        .merge(openapi::router(api))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(input::reject_nul_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and drains open requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
