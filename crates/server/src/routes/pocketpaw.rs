//! PocketPaw's session API, under `/api/v1/sessions...` and the legacy dashboard paths,
//! over the sessions of the PocketPaw workspace. Wire shapes, defaults and status codes
//! follow PocketPaw's; a session's id is its safe key, and raw keys name the same one.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router};
use engram_core::model::{ListQuery, PageRequest};
use engram_core::pocketpaw::{SearchHit, SessionRow, safe_key};
use engram_core::validate::loc;
use engram_core::{Error, FieldError};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::input::{Body, Fields, Params};
use crate::routes::pocketpaw_auth;
use crate::routes::pocketpaw_export::{Format, render};

/// v1 bounds as `(default, max)`; the legacy routes keep the default and drop the cap.
const LIST: (i64, i64) = (50, 500);
const MEMORY_LIST_DEFAULT: i64 = 20;
const SEARCH: (i64, i64) = (20, 200);
const HISTORY: (i64, i64) = (50, 500);
const TITLE_MAX: usize = 200;

/// One PocketPaw route: its method, its path template and its handler for that method.
pub type Route = (
    &'static str,
    &'static str,
    fn(MethodFilter) -> MethodRouter<AppState>,
);

/// Every PocketPaw route. The router is built from this table alone, so it is also the
/// list the access-table test checks against `scopes::ROUTES` (these routes are served
/// beside the API description, which the route matrix walks).
pub const ROUTES: &[Route] = &[
    ("GET", "/api/v1/sessions", |m| on(m, list_v1)),
    ("GET", "/api/sessions", |m| on(m, list_legacy)),
    ("GET", "/api/memory/sessions", |m| on(m, list_memory)),
    ("GET", "/api/v1/sessions/search", |m| on(m, search_v1)),
    ("GET", "/api/sessions/search", |m| on(m, search_legacy)),
    ("GET", "/api/v1/sessions/{id}/history", |m| {
        on(m, history_v1)
    }),
    ("GET", "/api/memory/session", |m| on(m, history_legacy)),
    // PocketPaw's docs describe rename as PUT while its code serves POST; both work here.
    ("POST", "/api/v1/sessions/{id}/title", |m| on(m, title_v1)),
    ("PUT", "/api/v1/sessions/{id}/title", |m| on(m, title_v1)),
    ("POST", "/api/sessions/{id}/title", |m| on(m, title_legacy)),
    ("PUT", "/api/sessions/{id}/title", |m| on(m, title_legacy)),
    ("DELETE", "/api/v1/sessions/{id}", |m| on(m, remove)),
    ("DELETE", "/api/sessions/{id}", |m| on(m, remove)),
    ("GET", "/api/v1/sessions/{id}/export", |m| on(m, export_v1)),
    ("GET", "/api/memory/session/export", |m| {
        on(m, export_legacy)
    }),
];

pub fn router(state: &AppState) -> Router<AppState> {
    ROUTES
        .iter()
        .fold(Router::new(), |router, (method, path, handler)| {
            let filter = Method::from_bytes(method.as_bytes())
                .ok()
                .and_then(|m| MethodFilter::try_from(m).ok())
                .unwrap_or_else(|| panic!("pocketpaw::ROUTES: bad method {method}"));
            // Routes of one path merge their methods.
            router.route(path, handler(filter))
        })
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pocketpaw_auth::authorize,
        ))
}

fn not_found() -> ApiError {
    ApiError(Error::NotFound("Session not found".into()))
}

/// A `limit` query parameter: at least 1, at most `max` on v1 routes.
fn limit(params: &Params, default: i64, max: Option<i64>) -> ApiResult<i64> {
    Ok(params.int("limit", default, Some(1), max)?)
}

fn list_item(row: &SessionRow, legacy: bool) -> Value {
    let mut item = Map::new();
    item.insert("id".into(), json!(row.name));
    item.insert("title".into(), json!(row.title()));
    item.insert("channel".into(), json!(row.channel()));
    item.insert(
        "last_activity".into(),
        json!(engram_core::time::format(row.last_activity)),
    );
    item.insert("message_count".into(), json!(row.message_count));
    if legacy {
        item.insert(
            "created".into(),
            json!(engram_core::time::format(row.created_at)),
        );
        item.insert("preview".into(), json!(row.preview));
        if let Some(t) = row.user_title() {
            item.insert("user_title".into(), json!(t));
        }
    }
    Value::Object(item)
}

async fn sessions(app: &AppState, limit: i64, legacy: bool) -> ApiResult<(Vec<Value>, i64)> {
    let (rows, total) = app.store.pp_list(&app.pocketpaw.workspace, limit).await?;
    Ok((rows.iter().map(|r| list_item(r, legacy)).collect(), total))
}

async fn list_v1(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let (items, total) = sessions(&app, limit(&params, LIST.0, Some(LIST.1))?, false).await?;
    Ok(Json(json!({"sessions": items, "total": total})))
}

async fn list_legacy(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let (items, total) = sessions(&app, limit(&params, LIST.0, None)?, true).await?;
    Ok(Json(json!({"sessions": items, "total": total})))
}

async fn list_memory(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let (items, _) = sessions(&app, limit(&params, MEMORY_LIST_DEFAULT, None)?, true).await?;
    Ok(Json(Value::Array(items)))
}

fn hit_item(hit: &SearchHit) -> Value {
    json!({
        "id": hit.session.name,
        "title": hit.session.title(),
        "channel": hit.session.channel(),
        "match": hit.matched,
        "match_role": hit.role,
        "last_activity": engram_core::time::format(hit.session.last_activity),
    })
}

async fn search(app: &AppState, params: &Params, max: Option<i64>) -> ApiResult<Json<Value>> {
    let limit = limit(params, SEARCH.0, max)?;
    let q = params.string("q").unwrap_or_default();
    if q.trim().is_empty() {
        return Ok(Json(json!({"sessions": []})));
    }
    let hits = app
        .store
        .pp_search(&app.pocketpaw.workspace, &q.to_lowercase(), limit)
        .await?;
    let items: Vec<Value> = hits.iter().map(hit_item).collect();
    Ok(Json(json!({"sessions": items})))
}

async fn search_v1(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    search(&app, &params, Some(SEARCH.1)).await
}

async fn search_legacy(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    search(&app, &params, None).await
}

/// The last `limit` messages, oldest first; `[]` for an unknown session.
async fn history(app: &AppState, id: &str, limit: i64) -> ApiResult<Json<Value>> {
    let query = ListQuery {
        filter: None,
        page: PageRequest {
            page: 1,
            size: limit,
        },
        reverse: true,
    };
    let page = app
        .store
        .list_messages(&app.pocketpaw.workspace, &safe_key(id), query)
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .rev()
        .map(|m| {
            json!({
                "role": m.peer_id,
                "content": m.content,
                "timestamp": engram_core::time::format(m.created_at),
            })
        })
        .collect();
    Ok(Json(Value::Array(items)))
}

async fn history_v1(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    let limit = limit(&params, HISTORY.0, Some(HISTORY.1))?;
    history(&app, &id, limit).await
}

async fn history_legacy(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let limit = limit(&params, HISTORY.0, None)?;
    match params.string("id") {
        Some(id) if !id.is_empty() => history(&app, &id, limit).await,
        _ => Ok(Json(json!([]))),
    }
}

async fn rename(app: &AppState, id: &str, title: &str) -> ApiResult<Json<Value>> {
    // The title lives in the session's metadata, which never holds NUL (PostgreSQL's
    // jsonb refuses it), so it loses NUL bytes as all metadata does.
    let title = title.replace('\0', "");
    if !app
        .store
        .pp_set_title(&app.pocketpaw.workspace, &safe_key(id), &title)
        .await?
    {
        return Err(not_found());
    }
    Ok(Json(json!({"status": "ok"})))
}

/// v1 rename: `{"title": 1..200 characters}`, kept as given (not trimmed).
async fn title_v1(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    // Only an object body gets this far; `null` is a wrong type, not a missing title.
    Fields::of(&body.0, true)?;
    let empty = Map::new();
    let map = body.0.as_ref().and_then(Value::as_object).unwrap_or(&empty);
    let at = loc(&["body", "title"]);
    let title = match map.get("title") {
        Some(Value::String(t)) => t,
        Some(other) => return Err(engram_core::validate::string_type(at, other).into()),
        None => {
            let input = Value::Object(map.clone());
            return Err(engram_core::validate::missing(at, &input).into());
        }
    };
    let chars = title.chars().count();
    if chars < 1 {
        return Err(FieldError::new(
            "string_too_short",
            at,
            "String should have at least 1 character",
            json!(title),
        )
        .with_ctx(json!({"min_length": 1}))
        .into());
    }
    if chars > TITLE_MAX {
        return Err(FieldError::new(
            "string_too_long",
            at,
            format!("String should have at most {TITLE_MAX} characters"),
            json!(title),
        )
        .with_ctx(json!({"max_length": TITLE_MAX}))
        .into());
    }
    rename(&app, &id, title).await
}

/// Legacy rename: the title is trimmed and must not be empty; no maximum.
async fn title_legacy(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let title = match &body.0 {
        Some(Value::Object(map)) => map.get("title").and_then(Value::as_str).map(str::trim),
        _ => None,
    };
    match title {
        Some(t) if !t.is_empty() => rename(&app, &id, t).await,
        _ => Err(ApiError(Error::BadRequest("Title is required".into()))),
    }
}

/// Tombstones the session and queues its purge, like every engram deletion.
async fn remove(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    match app
        .store
        .delete_session(&app.pocketpaw.workspace, &safe_key(&id))
        .await
    {
        Ok(()) => Ok(Json(json!({"status": "ok"}))),
        Err(Error::NotFound(_)) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn export(app: &AppState, id: &str, format: Format) -> ApiResult<Response> {
    let messages = app
        .store
        .session_messages(&app.pocketpaw.workspace, &safe_key(id))
        .await?
        .unwrap_or_default();
    if messages.is_empty() {
        return Err(ApiError(Error::NotFound(format!(
            "Session not found: {id}"
        ))));
    }
    Ok(render(id, format, &messages))
}

async fn export_v1(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Response> {
    let format = Format::parse(params.string("format").as_deref())?;
    export(&app, &id, format).await
}

async fn export_legacy(State(app): State<AppState>, params: Params) -> ApiResult<Response> {
    let Some(id) = params.string("id").filter(|id| !id.is_empty()) else {
        return Err(ApiError(Error::BadRequest(
            "Missing required parameter: id".into(),
        )));
    };
    let format = Format::parse(params.string("format").as_deref())?;
    export(&app, &id, format).await
}
