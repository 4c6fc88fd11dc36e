//! Application state, the router, and the serve loop with graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use engram_core::Store;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::config::PocketPawSettings;
use crate::{input, openapi, routes};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Wakes this process's queue workers when a request queued a job.
    pub wake: Arc<tokio::sync::Notify>,
    pub pocketpaw: Arc<PocketPawSettings>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>) -> AppState {
        AppState {
            store,
            wake: Arc::new(tokio::sync::Notify::new()),
            pocketpaw: Arc::new(PocketPawSettings {
                token: None,
                workspace: engram_core::pocketpaw::DEFAULT_WORKSPACE.to_string(),
            }),
        }
    }

    pub fn with_pocketpaw(mut self, settings: PocketPawSettings) -> AppState {
        self.pocketpaw = Arc::new(settings);
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
        .merge(routes::health::router())
        .split_for_parts();
    router
        .merge(openapi::router(api))
        .merge(routes::pocketpaw::router(&state))
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
