//! `GET /v3/workspaces/{w}/queue/status`: the reference's counters (derivation work,
//! of which engram has none yet, so they read zero) plus engram's deletion counts.

use axum::Json;
use axum::extract::{Path, State};
use engram_core::queue::DeletionCounts;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;

#[derive(Serialize, ToSchema)]
pub struct QueueStatus {
    total_work_units: i64,
    completed_work_units: i64,
    in_progress_work_units: i64,
    pending_work_units: i64,
    #[schema(value_type = Option<Object>)]
    sessions: Option<serde_json::Value>,
    /// Session purges of this workspace by state (an engram addition).
    deletions: DeletionCounts,
}

#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/queue/status", tag = "workspaces",
    params(("observer_id" = Option<String>, Query), ("sender_id" = Option<String>, Query),
           ("session_id" = Option<String>, Query)),
    responses((status = 200, body = QueueStatus)))]
async fn status(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
) -> ApiResult<Json<QueueStatus>> {
    let deletions = app.store.deletion_counts(&workspace_id).await?;
    Ok(Json(QueueStatus {
        total_work_units: 0,
        completed_work_units: 0,
        in_progress_work_units: 0,
        pending_work_units: 0,
        sessions: None,
        deletions,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}
