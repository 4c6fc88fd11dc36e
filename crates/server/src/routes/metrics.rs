//! `GET /metrics`: the Prometheus scrape of this process (see `crate::metrics`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::metrics::CONTENT_TYPE;

/// Queue depth by job kind and state, this process's job and HTTP counters and
/// latencies, in the Prometheus text format. Admin-only when authentication is on.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4",
               content_type = "text/plain", body = String)))]
async fn metrics(State(app): State<AppState>) -> ApiResult<impl IntoResponse> {
    let depth = app.store.queue_depth().await?;
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        app.metrics.render(&depth),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}
