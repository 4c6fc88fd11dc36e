//! `POST /v3/keys`: admin mints workspace-, peer- or session-scoped keys. Keys are
//! stateless (no row, no revocation), as in the reference.

use axum::Json;
use axum::extract::State;
use engram_core::{Error, FieldError};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{KeyClaims, encode, whole_seconds};
use crate::error::ApiResult;
use crate::input::Params;

/// Mints a key scoped to a workspace, peer or session, optionally expiring.
#[utoipa::path(post, path = "/v3/keys", tag = "keys",
    params(("workspace_id" = Option<String>, Query), ("peer_id" = Option<String>, Query),
           ("session_id" = Option<String>, Query), ("expires_at" = Option<String>, Query, format = DateTime)),
    responses((status = 200, description = "`{\"key\": \"<jwt>\"}`"), (status = 405), (status = 422)))]
async fn create_key(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let Some(secret) = app.auth.secret() else {
        return Err(Error::Disabled.into());
    };
    let scope = |key: &str| params.string(key).filter(|v| !v.is_empty());
    let expires = match params.string("expires_at") {
        None => None,
        Some(raw) => Some(engram_core::time::parse(&raw).ok_or_else(|| {
            FieldError::new(
                "datetime_from_date_parsing",
                engram_core::validate::loc(&["query", "expires_at"]),
                "Input should be a valid datetime or date, invalid character in year",
                json!(raw),
            )
            .with_ctx(json!({"error": "invalid character in year"}))
        })?),
    };
    let (w, p, s) = (scope("workspace_id"), scope("peer_id"), scope("session_id"));
    if w.is_none() && p.is_none() && s.is_none() {
        return Err(Error::Unprocessable(
            "At least one of workspace_id, peer_id, or session_id must be provided".into(),
        )
        .into());
    }
    if w.is_none() {
        return Err(Error::Unprocessable(
            "workspace_id is required when scoping a key to a peer or session".into(),
        )
        .into());
    }
    let claims = KeyClaims {
        exp: expires.map(whole_seconds),
        w,
        p,
        s,
        ..KeyClaims::now()
    };
    Ok(Json(json!({ "key": encode(secret, &claims) })))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_key))
}
