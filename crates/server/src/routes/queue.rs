//! `GET /v3/workspaces/{w}/queue/status`: the reference's counters over the workspace's
//! background work (`engram_core::queue_status` says what counts), plus engram's
//! deletion counts.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use engram_core::queue::DeletionCounts;
use engram_core::queue_status::{SessionWork, StatusFilter, WorkUnits};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::Params;

#[derive(Serialize, ToSchema)]
pub struct QueueStatus {
    #[serde(flatten)]
    units: WorkUnits,
    /// Per session, keyed by the session's id; null when asked for one session or
    /// when no counted work belongs to a session.
    sessions: Option<BTreeMap<String, SessionWork>>,
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
    params: Params,
) -> ApiResult<Json<QueueStatus>> {
    // The reference treats an empty value as no filter.
    let given = |key: &str| params.string(key).filter(|v| !v.is_empty());
    let filter = StatusFilter {
        observer: given("observer_id"),
        sender: given("sender_id"),
        session: given("session_id"),
    };
    let work = app.store.work_status(&workspace_id, &filter).await?;
    let deletions = app.store.deletion_counts(&workspace_id).await?;
    Ok(Json(QueueStatus {
        units: work.totals,
        sessions: work.sessions,
        deletions,
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}
