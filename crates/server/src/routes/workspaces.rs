use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engram_core::auth::{self, Claims};
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewWorkspace, Page, Workspace};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, Params, path_name};
use crate::routes::Accepted;
use crate::routes::lists::list_query;

/// Get or create a workspace: 201 when created, 200 (unchanged) when it existed.
#[utoipa::path(post, path = "/v3/workspaces", tag = "workspaces",
    request_body = Object, responses((status = 201, body = Workspace), (status = 200, body = Workspace)))]
async fn get_or_create(
    State(app): State<AppState>,
    Extension(claims): Extension<Claims>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Workspace>)> {
    let mut f = Fields::of(&body.0, true)?;
    let name = f.name();
    let metadata = f.metadata("metadata");
    let configuration = f.configuration("configuration");
    f.finish()?;
    let name = name.unwrap_or_default();
    auth::may_create_workspace(&claims, &name)?;
    let new = NewWorkspace {
        name,
        metadata,
        configuration,
    };
    let (ws, created) = app.store.get_or_create_workspace(new).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(ws),
    ))
}

/// All workspaces, oldest first.
#[utoipa::path(post, path = "/v3/workspaces/list", tag = "workspaces",
    request_body = Object, responses((status = 200, body = Page<Workspace>)))]
async fn list(
    State(app): State<AppState>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Page<Workspace>>> {
    let (query, _) = list_query(Resource::Workspace, &body, &params)?;
    Ok(Json(app.store.list_workspaces(query).await?))
}

/// Update (creating if missing): metadata replaced, configuration merged.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}", tag = "workspaces",
    request_body = Object, responses((status = 200, body = Workspace)))]
async fn update(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    body: Body,
) -> ApiResult<Json<Workspace>> {
    path_name(&workspace_id, "workspace_id")?;
    let mut f = Fields::of(&body.0, true)?;
    let changes = Changes {
        metadata: f.metadata("metadata"),
        configuration: f.configuration("configuration"),
    };
    f.finish()?;
    Ok(Json(
        app.store.update_workspace(&workspace_id, changes).await?,
    ))
}

/// Deletes a workspace with no live session: 202 at once, the name is free at once,
/// and a queued purge removes everything in it. 409 while sessions remain.
#[utoipa::path(delete, path = "/v3/workspaces/{workspace_id}", tag = "workspaces",
    responses((status = 202, body = Accepted), (status = 404, description = "No such workspace"),
              (status = 409, description = "Live sessions remain in the workspace")))]
async fn delete(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    app.store.delete_workspace(&workspace_id).await?;
    let message = "Workspace deletion accepted";
    Ok((StatusCode::ACCEPTED, Json(Accepted { message })))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_or_create))
        .routes(routes!(list))
        .routes(routes!(update, delete))
}
