use axum::Json;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// Liveness: answers as soon as the server accepts requests.
#[utoipa::path(get, path = "/health", responses((status = 200, description = "Server is up")))]
async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}
