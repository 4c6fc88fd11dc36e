use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engram_core::Error;
use engram_core::auth::{self, Claims};
use engram_core::filter::Resource;
use engram_core::model::{Changes, NewPeer, Page, Peer, Session};
use engram_core::validate::{self, loc};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, Params, path_name};
use crate::routes::lists::list_query;

type PeerPath = Path<(String, String)>;

/// Get or create a peer; an existing peer gets the given metadata/configuration.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/peers", tag = "peers",
    request_body = Object, responses((status = 201, body = Peer), (status = 200, body = Peer)))]
async fn get_or_create(
    State(app): State<AppState>,
    Extension(claims): Extension<Claims>,
    Path(workspace_id): Path<String>,
    body: Body,
) -> ApiResult<(StatusCode, Json<Peer>)> {
    path_name(&workspace_id, "workspace_id")?;
    let mut f = Fields::of(&body.0, true)?;
    let name = f.name();
    let changes = Changes {
        metadata: f.metadata("metadata"),
        configuration: f.object("configuration"),
    };
    f.finish()?;
    let name = name.unwrap_or_default();
    auth::may_create_in(&claims, &workspace_id, claims.peer.as_ref(), &name)?;
    let new = NewPeer { name, changes };
    let (peer, created) = app.store.get_or_create_peer(&workspace_id, new).await?;
    Ok((
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(peer),
    ))
}

/// Peers of a workspace, oldest first.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/peers/list", tag = "peers",
    request_body = Object, responses((status = 200, body = Page<Peer>)))]
async fn list(
    State(app): State<AppState>,
    Path(workspace_id): Path<String>,
    params: Params,
    body: Body,
) -> ApiResult<Json<Page<Peer>>> {
    let (query, kind) = list_query(Resource::Peer, &body, &params)?;
    match kind {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k == "all" => {}
        // engram has no scope peers yet, so "only scopes" is an empty page.
        Some(Value::String(k)) if k == "scope" => {
            return Ok(Json(Page::new(vec![], 0, query.page)));
        }
        Some(other) => {
            return Err(engram_core::FieldError::new(
                "literal_error",
                loc(&["body", "kind"]),
                "Input should be 'scope' or 'all'",
                other,
            )
            .with_ctx(json!({"expected": "'scope' or 'all'"}))
            .into());
        }
    }
    Ok(Json(app.store.list_peers(&workspace_id, query).await?))
}

/// Update a peer (creating it if missing): metadata and configuration replaced.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/peers/{peer_id}", tag = "peers",
    request_body = Object, responses((status = 200, body = Peer)))]
async fn update(
    State(app): State<AppState>,
    Path((workspace_id, peer_id)): PeerPath,
    body: Body,
) -> ApiResult<Json<Peer>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&peer_id, "peer_id")?;
    let mut f = Fields::of(&body.0, true)?;
    let changes = Changes {
        metadata: f.metadata("metadata"),
        configuration: f.object("configuration"),
    };
    f.finish()?;
    let (peer, _) = app
        .store
        .get_or_create_peer(
            &workspace_id,
            NewPeer {
                name: peer_id,
                changes,
            },
        )
        .await?;
    Ok(Json(peer))
}

/// Sessions the peer is or was a member of.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/peers/{peer_id}/sessions", tag = "peers",
    request_body = Object, responses((status = 200, body = Page<Session>)))]
async fn sessions(
    State(app): State<AppState>,
    Path((workspace_id, peer_id)): PeerPath,
    params: Params,
    body: Body,
) -> ApiResult<Json<Page<Session>>> {
    let (query, _) = list_query(Resource::Session, &body, &params)?;
    Ok(Json(
        app.store
            .list_peer_sessions(&workspace_id, &peer_id, query)
            .await?,
    ))
}

/// A peer card: its lines, or null when none was written.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct PeerCard {
    peer_card: Option<Vec<String>>,
}

/// The card the peer keeps about itself, or about `target`.
#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/peers/{peer_id}/card", tag = "peers",
    params(("target" = Option<String>, Query)),
    responses((status = 200, body = PeerCard),
        (status = 404, description = "No such peer")))]
async fn get_card(
    State(app): State<AppState>,
    Path((workspace_id, peer_id)): PeerPath,
    params: Params,
) -> ApiResult<Json<PeerCard>> {
    let target = params.string("target").unwrap_or_else(|| peer_id.clone());
    let peer_card = app
        .store
        .get_peer_card(&workspace_id, &peer_id, &target)
        .await?;
    Ok(Json(PeerCard { peer_card }))
}

/// Stores a card as given (creating the peer if needed) and echoes it.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/peers/{peer_id}/card", tag = "peers",
    params(("target" = Option<String>, Query)),
    request_body = Object, responses((status = 200, body = PeerCard)))]
async fn set_card(
    State(app): State<AppState>,
    Path((workspace_id, peer_id)): PeerPath,
    params: Params,
    body: Body,
) -> ApiResult<Json<PeerCard>> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&peer_id, "peer_id")?;
    let f = Fields::of(&body.0, true)?;
    let card = parse_card(
        body.0.as_ref().and_then(|b| b.get("peer_card")),
        body.0.as_ref().unwrap_or(&Value::Null),
    )?;
    f.finish()?;
    let target = params.string("target").unwrap_or_else(|| peer_id.clone());
    app.store
        .set_peer_card(&workspace_id, &peer_id, &target, card.clone())
        .await?;
    Ok(Json(PeerCard {
        peer_card: Some(card),
    }))
}

fn parse_card(value: Option<&Value>, body: &Value) -> Result<Vec<String>, Error> {
    let at = loc(&["body", "peer_card"]);
    match value {
        None => Err(Error::Validation(vec![validate::missing(at, body)])),
        Some(Value::Array(items)) => {
            let mut errors = vec![];
            let mut lines = vec![];
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => lines.push(s.replace('\0', "")),
                    other => {
                        let mut l = at.clone();
                        l.push(json!(i));
                        errors.push(validate::string_type(l, other));
                    }
                }
            }
            if errors.is_empty() {
                Ok(lines)
            } else {
                Err(Error::Validation(errors))
            }
        }
        Some(other) => Err(Error::Validation(vec![validate::list_type(at, other)])),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_or_create))
        .routes(routes!(list))
        .routes(routes!(update))
        .routes(routes!(sessions))
        .routes(routes!(get_card, set_card))
}
