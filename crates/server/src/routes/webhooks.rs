//! Webhook endpoints of a workspace (reference §3.7). Events reach them through the
//! queue: one signed delivery job per endpoint, retried with backoff.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engram_core::model::Page;
use engram_core::time::now_micros;
use engram_core::validate::{self, loc};
use engram_core::webhooks::{Event, WebhookEndpoint};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, Params};

/// Registers a URL: 201 when new, 200 with the existing endpoint when already there.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/webhooks", tag = "webhooks",
    request_body = Object, responses((status = 201, body = WebhookEndpoint),
        (status = 200, body = WebhookEndpoint), (status = 404), (status = 409), (status = 422)))]
async fn create(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<WebhookEndpoint>)> {
    let mut f = Fields::of(&body.0, true)?;
    let url = f.optional_string("url");
    if url.is_none() && f.errors.is_empty() {
        let whole = body.0.clone().unwrap_or_default();
        f.errors
            .push(validate::missing(loc(&["body", "url"]), &whole));
    }
    f.finish()?;
    let url = url.unwrap_or_default();
    crate::webhooks::check_url(&url, app.webhooks.allow_private).await?;
    let (endpoint, created) = app.store.create_webhook(&workspace_id, &url).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(endpoint)))
}

/// The workspace's endpoints, oldest first.
#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/webhooks", tag = "webhooks",
    responses((status = 200, body = Page<WebhookEndpoint>)))]
async fn list(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    params: Params,
) -> ApiResult<Json<Page<WebhookEndpoint>>> {
    let (page, _) = params.paging()?;
    Ok(Json(app.store.list_webhooks(&workspace_id, page).await?))
}

/// Removes an endpoint for good; deliveries already queued still go out.
#[utoipa::path(delete, path = "/v3/workspaces/{workspace_id}/webhooks/{endpoint_id}", tag = "webhooks",
    responses((status = 204), (status = 404)))]
async fn delete(
    State(app): State<AppState>,
    Path((workspace_id, endpoint_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    app.store
        .delete_webhook(&workspace_id, &endpoint_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a `test.event` to every endpoint of the workspace; answers `null`.
#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/webhooks/test", tag = "webhooks",
    responses((status = 200, description = "`null`")))]
async fn test_event(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
) -> ApiResult<Json<()>> {
    let event = Event::test(&workspace_id, now_micros());
    app.store.publish_event(&workspace_id, &event).await?;
    Ok(Json(()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(delete))
        .routes(routes!(test_event))
}
