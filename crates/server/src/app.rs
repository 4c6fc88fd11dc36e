//! Application state, the router, and the serve loop with graceful shutdown.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use engram_core::{Embedder, Store};
use tokio::net::TcpListener;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{self, AuthConfig};
use crate::config::PocketPawSettings;
use crate::metrics::{self, Metrics};
use crate::webhooks::WebhookConfig;
use crate::{error, input, openapi, routes};

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Embeds search queries; `None` when semantic search is off.
    pub embedder: Option<Arc<dyn Embedder>>,
    pub auth: AuthConfig,
    pub webhooks: WebhookConfig,
    /// Origins allowed to call the API from a browser; none means no CORS headers.
    pub cors_origins: Vec<HeaderValue>,
    pub pocketpaw: Arc<PocketPawSettings>,
    /// This process's counters, shared with its queue workers.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    /// Authentication off, webhooks unsigned (so not sent), no CORS: the defaults.
    pub fn new(store: Arc<dyn Store>) -> AppState {
        AppState {
            store,
            embedder: None,
            auth: AuthConfig::off(),
            webhooks: WebhookConfig::default(),
            cors_origins: vec![],
            pocketpaw: Arc::new(PocketPawSettings {
                token: None,
                workspace: engram_core::pocketpaw::DEFAULT_WORKSPACE.to_string(),
            }),
            metrics: Arc::default(),
        }
    }

    pub fn with_pocketpaw(mut self, settings: PocketPawSettings) -> AppState {
        self.pocketpaw = Arc::new(settings);
        self
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
        .merge(routes::metrics::router())
        .merge(routes::keys::router())
        .merge(routes::webhooks::router())
        .split_for_parts();
    let cors = cors(&state.cors_origins);
    router
        .merge(openapi::router(api))
        .merge(routes::pocketpaw::router(&state))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(input::reject_nul_bytes))
        .layer(axum::middleware::from_fn(error::json_bodies))
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(cors)
        .with_state(state)
}

/// Every route [`build_router`] serves beside the API description (which lists the
/// others): the document and its page, and PocketPaw's routes, as `(method, path)`. The
/// route matrix test checks these and the described routes against `scopes::ROUTES`;
/// a router merged into `build_router` after the split adds its routes here.
pub fn routes_beside_the_api_description() -> Vec<(&'static str, &'static str)> {
    let pocketpaw = routes::pocketpaw::ROUTES.iter().map(|(m, p, _)| (*m, *p));
    openapi::ROUTES.into_iter().chain(pocketpaw).collect()
}

/// `GET /metrics` alone, behind the same authentication, for `engram worker`.
pub fn metrics_router(state: AppState) -> Router {
    Router::from(routes::metrics::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::layer,
        ))
        .with_state(state)
}

/// CORS for the configured origins (`*` allows any); without origins, no CORS
/// layer at all, so browsers keep the same-origin rule.
fn cors(origins: &[HeaderValue]) -> tower::util::Either<CorsLayer, tower::layer::util::Identity> {
    let layer = (!origins.is_empty()).then(|| {
        let base = CorsLayer::new()
            .allow_methods(AllowMethods::mirror_request())
            .allow_headers(AllowHeaders::mirror_request())
            .max_age(std::time::Duration::from_secs(600));
        if origins.iter().any(|o| o.as_bytes() == b"*") {
            base.allow_origin(AllowOrigin::any())
        } else {
            base.allow_origin(AllowOrigin::list(origins.iter().cloned()))
                .allow_credentials(true)
        }
    });
    tower::util::option_layer(layer)
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
