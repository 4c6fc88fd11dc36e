use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engram_core::auth::{self, Claims};
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewSession, Page, Peer, Session, SessionPeerConfig};
use engram_core::store::MembershipMode;
use engram_core::validate::{self, loc};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, Params, path_name, peer_config, peer_names};
use crate::routes::Accepted;
use crate::routes::lists::list_query;

type SessionPath = Path<(String, String)>;
type MemberPath = Path<(String, String, String)>;

/// Get or create a session: metadata replaced, configuration merged, listed peers joined.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions", tag = "sessions",
    request_body = Object, responses((status = 201, body = Session), (status = 200, body = Session),
        (status = 400, description = "More observers than a session allows")))]
async fn get_or_create(
    State(app): State<AppState>,
    Extension(claims): Extension<Claims>,
    Path(workspace_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Session>)> {
    path_name(&workspace_id, "workspace_id")?;
    let mut f = Fields::of(&body.0, true)?;
    let name = f.name();
    let changes = Changes {
        metadata: f.metadata("metadata"),
        configuration: f.configuration("configuration"),
    };
    let members_key = f
        .aliased(&["peers", "peer_names"])
        .map_or("peers", |(k, _)| k);
    let peers = f.peer_map(members_key).unwrap_or_default();
    f.finish()?;
    peer_names(&peers)?;
    let name = name.unwrap_or_default();
    auth::may_create_in(&claims, &workspace_id, claims.session.as_ref(), &name)?;
    let new = NewSession {
        name,
        changes,
        peers,
    };
    let (session, created) = app.store.get_or_create_session(&workspace_id, new).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(session),
    ))
}

/// Live sessions of a workspace, oldest first.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/list", tag = "sessions",
    request_body = Object, responses((status = 200, body = Page<Session>)))]
async fn list(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Page<Session>>> {
    let (query, _) = list_query(Resource::Session, &body, &params)?;
    Ok(Json(app.store.list_sessions(&workspace_id, query).await?))
}

/// Update a session (creating it if missing): metadata replaced, configuration merged.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}", tag = "sessions",
    request_body = Object, responses((status = 200, body = Session)))]
async fn update(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    body: Body,
) -> ApiResult<Json<Session>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&session_id, "session_id")?;
    let mut f = Fields::of(&body.0, true)?;
    let changes = Changes {
        metadata: f.metadata("metadata"),
        configuration: f.configuration("configuration"),
    };
    f.finish()?;
    let new = NewSession {
        name: session_id,
        changes,
        peers: vec![],
    };
    Ok(Json(
        app.store.get_or_create_session(&workspace_id, new).await?.0,
    ))
}

/// Deletes a session: 202 at once; from then on nothing of it is visible and its
/// name is free, while a queued purge removes every row in the background.
#[utoipa::path(delete, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}", tag = "sessions",
    responses((status = 202, body = Accepted), (status = 404, description = "No such live session")))]
async fn delete(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    app.store.delete_session(&workspace_id, &session_id).await?;
    let message = "Session deleted successfully";
    Ok((StatusCode::ACCEPTED, Json(Accepted { message })))
}

/// Copies the session (up to and including `message_id` when given) under a new id.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/clone", tag = "sessions",
    params(("message_id" = Option<String>, Query)), responses((status = 201, body = Session),
        (status = 404, description = "No such live session, or no such message in it")))]
async fn clone(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    params: Params,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let cutoff = params.string("message_id");
    let session = app
        .store
        .clone_session(&workspace_id, &session_id, cutoff.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(session)))
}

fn member_map(body: &Body) -> ApiResult<Vec<(String, SessionPeerConfig)>> {
    let mut f = Fields::of(&body.0, true)?;
    let members = f.peer_map("").unwrap_or_default();
    f.finish()?;
    peer_names(&members)?;
    Ok(members)
}

/// Adds members (creating the session and peers as needed).
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers", tag = "sessions",
    request_body = Object, responses((status = 200, body = Session),
        (status = 400, description = "More observers than a session allows")))]
async fn add_peers(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    body: Body,
) -> ApiResult<Json<Session>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&session_id, "session_id")?;
    let members = member_map(&body)?;
    Ok(Json(
        app.store
            .set_session_peers(&workspace_id, &session_id, members, MembershipMode::Add)
            .await?,
    ))
}

/// Replaces the member set: members not listed leave.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers", tag = "sessions",
    request_body = Object, responses((status = 200, body = Session),
        (status = 400, description = "More observers than a session allows"),
        (status = 404, description = "No such live session")))]
async fn set_peers(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    body: Body,
) -> ApiResult<Json<Session>> {
    let members = member_map(&body)?;
    Ok(Json(
        app.store
            .set_session_peers(&workspace_id, &session_id, members, MembershipMode::Replace)
            .await?,
    ))
}

/// The listed peers leave the session.
#[utoipa::path(delete, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers", tag = "sessions",
    request_body = Vec<String>, responses((status = 200, body = Session),
        (status = 404, description = "No such live session")))]
async fn remove_peers(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    body: Body,
) -> ApiResult<Json<Session>> {
    let names = match &body.0 {
        Some(Value::Array(items)) => {
            let mut names = vec![];
            let mut errors = vec![];
            for (i, item) in items.iter().enumerate() {
                match item {
                    // Peer names never hold NUL (creation validates them), so such a name
                    // is no member; PostgreSQL would refuse it as a query parameter.
                    Value::String(s) if s.contains('\0') => {}
                    Value::String(s) => names.push(s.clone()),
                    other => {
                        errors.push(validate::string_type(vec![json!("body"), json!(i)], other))
                    }
                }
            }
            if !errors.is_empty() {
                return Err(errors.into());
            }
            names
        }
        None => return Err(validate::missing(loc(&["body"]), &Value::Null).into()),
        Some(other) => return Err(validate::list_type(loc(&["body"]), other).into()),
    };
    Ok(Json(
        app.store
            .remove_session_peers(&workspace_id, &session_id, names)
            .await?,
    ))
}

/// Active members, in the order they joined.
#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers", tag = "sessions",
    responses((status = 200, body = Page<Peer>)))]
async fn list_peers(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    params: Params,
) -> ApiResult<Json<Page<Peer>>> {
    let (page, _) = params.paging()?;
    Ok(Json(
        app.store
            .list_session_peers(&workspace_id, &session_id, page)
            .await?,
    ))
}

/// A member's configuration in this session.
#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers/{peer_id}/config", tag = "sessions",
    responses((status = 200, body = SessionPeerConfig),
        (status = 404, description = "No such live session, peer or membership")))]
async fn get_config(
    State(app): State<AppState>,
    Extension(claims): Extension<Claims>,
    Path((workspace_id, session_id, peer_id)): MemberPath,
) -> ApiResult<Json<SessionPeerConfig>> {
    if claims.peer.as_ref().is_some_and(|p| *p != peer_id) {
        return Err(auth::denied(auth::NOT_PERMITTED).into());
    }
    Ok(Json(
        app.store
            .get_session_peer_config(&workspace_id, &session_id, &peer_id)
            .await?,
    ))
}

/// Merges the given (non-null) fields into the member's configuration.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/peers/{peer_id}/config", tag = "sessions",
    request_body = SessionPeerConfig, responses((status = 204),
        (status = 400, description = "More observers than a session allows"),
        (status = 404, description = "No such live session or peer")))]
async fn set_config(
    State(app): State<AppState>,
    Path((workspace_id, session_id, peer_id)): MemberPath,
    body: Body,
) -> ApiResult<StatusCode> {
    let value = body.0.clone().ok_or_else(|| {
        crate::error::ApiError::from(validate::missing(loc(&["body"]), &Value::Null))
    })?;
    let config = peer_config(&value, loc(&["body"]))?;
    app.store
        .set_session_peer_config(&workspace_id, &session_id, &peer_id, config)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_or_create))
        .routes(routes!(list))
        .routes(routes!(update, delete))
        .routes(routes!(clone))
        .routes(routes!(add_peers, set_peers, remove_peers, list_peers))
        .routes(routes!(get_config, set_config))
        .routes(routes!(super::context::context))
}
