//! Message search in a workspace, by a peer, or in a session: keyword and semantic
//! candidates fused by reciprocal rank. Unlike the reference, nothing from a deleted
//! session is ever returned, even before its purge has run.

use axum::Json;
use axum::extract::{Path, State};
use engram_core::Error;
use engram_core::filter::{self, Resource};
use engram_core::model::Message;
use engram_core::search::{MAX_LIMIT, MAX_QUERY_TOKENS, SearchRequest, SearchScope};
use engram_core::validate;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, path_name};

/// What the body asked for, before the route adds its scope.
struct Options {
    query: String,
    filters: Option<Value>,
    limit: usize,
    scope: Option<String>,
}

fn options(body: &Body, workspace_route: bool) -> ApiResult<Options> {
    let mut f = Fields::of(&body.0, true)?;
    let query = f.required_string("query");
    let filters = f.filters();
    let limit = f.int("limit", 10, 1, MAX_LIMIT as i64);
    let scope = if workspace_route {
        f.optional_string("scope")
    } else {
        None
    };
    f.finish()?;
    let query = query.unwrap_or_default();
    // A token is at least one byte, so only long queries need counting.
    if query.len() > MAX_QUERY_TOKENS
        && engram_core::tokens::count(&query) > MAX_QUERY_TOKENS as i64
    {
        return Err(Error::Unprocessable(format!(
            "Query exceeds maximum token limit of {MAX_QUERY_TOKENS}."
        ))
        .into());
    }
    Ok(Options {
        query,
        filters,
        limit: limit.unwrap_or(10) as usize,
        scope,
    })
}

/// Parses the caller's filter after dropping the keys the route decides (the
/// reference overwrites them, so a caller can never widen the search).
fn caller_filter(filters: Option<Value>, forced: &[&str]) -> ApiResult<Option<filter::Filter>> {
    let Some(Value::Object(mut map)) = filters else {
        return Ok(None);
    };
    for key in forced {
        map.remove(*key);
    }
    let cleaned = validate::strip_nul(Value::Object(map));
    Ok(filter::parse(Resource::Message, &cleaned)?)
}

async fn search(
    app: &AppState,
    workspace: &str,
    scope: SearchScope,
    options: Options,
    forced: &[&str],
) -> ApiResult<Json<Vec<Message>>> {
    let filter = caller_filter(options.filters, forced)?;
    let vector = match &app.embedder {
        Some(embedder) if !options.query.trim().is_empty() => {
            match embedder.embed_query(&options.query).await {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::warn!(error = %e, "embedding a search query failed; keyword results only");
                    None
                }
            }
        }
        _ => None,
    };
    let request = SearchRequest {
        scope,
        query: options.query,
        filter,
        limit: options.limit,
        vector,
    };
    Ok(Json(app.store.search_messages(workspace, request).await?))
}

/// Search a workspace's messages.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/search", tag = "workspaces",
    request_body = Object, responses((status = 200, body = Vec<Message>)))]
async fn workspace(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    body: Body,
) -> ApiResult<Json<Vec<Message>>> {
    path_name(&workspace_id, "workspace_id")?;
    let options = options(&body, true)?;
    if options.scope.is_some() {
        if options
            .filters
            .as_ref()
            .is_some_and(|f| f.get("session_id").is_some())
        {
            return Err(Error::Unprocessable(
                "`scope` and a 'session_id' filter are mutually exclusive".into(),
            )
            .into());
        }
        // engram has no scopes, so a named scope has no member sessions: nothing matches.
        return Ok(Json(vec![]));
    }
    search(
        &app,
        &workspace_id,
        SearchScope::Workspace,
        options,
        &["workspace_id"],
    )
    .await
}

/// Search the messages a peer wrote.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/peers/{peer_id}/search", tag = "peers",
    request_body = Object, responses((status = 200, body = Vec<Message>)))]
async fn peer(
    State(app): State<AppState>,
    Path((workspace_id, peer_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Vec<Message>>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&peer_id, "peer_id")?;
    let options = options(&body, false)?;
    search(
        &app,
        &workspace_id,
        SearchScope::Peer(peer_id),
        options,
        &["workspace_id", "peer_id"],
    )
    .await
}

/// Search a session's messages; an unknown or deleted session gives `[]`.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/search", tag = "sessions",
    request_body = Object, responses((status = 200, body = Vec<Message>)))]
async fn session(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Vec<Message>>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&session_id, "session_id")?;
    let options = options(&body, false)?;
    search(
        &app,
        &workspace_id,
        SearchScope::Session(session_id),
        options,
        &["workspace_id", "session_id"],
    )
    .await
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(workspace))
        .routes(routes!(peer))
        .routes(routes!(session))
}
