use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use engram_core::filter::Resource;
use engram_core::model::{Message, NewMessage, Page};
use engram_core::validate::{self, BATCH_MAX, MESSAGE_MAX_CHARS};
use engram_core::{Error, FieldError, ids, time, tokens};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::{Body, Fields, Params, path_name};
use crate::routes::lists::list_query;

type SessionPath = Path<(String, String)>;
type MessagePath = Path<(String, String, String)>;

fn at(i: usize, field: &str) -> Vec<Value> {
    vec![json!("body"), json!("messages"), json!(i), json!(field)]
}

/// Parses one `MessageCreate`, collecting its errors.
fn parse_message(i: usize, value: &Value, errors: &mut Vec<FieldError>) -> Option<NewMessage> {
    let Value::Object(map) = value else {
        errors.push(FieldError::new(
            "model_attributes_type",
            vec![json!("body"), json!("messages"), json!(i)],
            "Input should be a valid dictionary or object to extract fields from",
            value.clone(),
        ));
        return None;
    };
    let before = errors.len();
    let content = match map.get("content") {
        None => {
            errors.push(validate::missing(at(i, "content"), value));
            None
        }
        Some(Value::String(s)) if s.chars().count() > MESSAGE_MAX_CHARS => {
            errors.push(
                FieldError::new(
                    "string_too_long",
                    at(i, "content"),
                    format!("String should have at most {MESSAGE_MAX_CHARS} characters"),
                    json!(s),
                )
                .with_ctx(json!({"max_length": MESSAGE_MAX_CHARS})),
            );
            None
        }
        Some(Value::String(s)) => Some(s.replace('\0', "")),
        Some(other) => {
            errors.push(validate::string_type(at(i, "content"), other));
            None
        }
    };
    let sent = ["peer_id", "peer_name"]
        .into_iter()
        .find_map(|k| map.get(k).map(|v| (k, v)));
    let peer = match sent {
        None => {
            errors.push(validate::missing(at(i, "peer_id"), value));
            None
        }
        Some((_, Value::String(s))) => Some(s.clone()),
        Some((key, other)) => {
            errors.push(validate::string_type(at(i, key), other));
            None
        }
    };
    let metadata = match map.get("metadata") {
        None | Some(Value::Null) => Some(Default::default()),
        Some(v) => validate::metadata(v, at(i, "metadata"))
            .map_err(|e| errors.push(e))
            .ok(),
    };
    if let Some(c) = map.get("configuration").filter(|c| !c.is_null())
        && let Err(mut e) = engram_core::configuration::parse(c, at(i, "configuration"), true)
    {
        errors.append(&mut e);
    }
    let created_at = match map.get("created_at") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match time::parse(s) {
            Some(t) => Some(t),
            None => {
                errors.push(FieldError::new(
                    "datetime_from_date_parsing",
                    at(i, "created_at"),
                    "Input should be a valid datetime or date",
                    json!(s),
                ));
                None
            }
        },
        Some(other) => {
            errors.push(FieldError::new(
                "datetime_type",
                at(i, "created_at"),
                "Input should be a valid datetime",
                other.clone(),
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    let content = content?;
    Some(NewMessage {
        public_id: ids::new_public_id(),
        token_count: tokens::count(&content),
        content,
        peer: peer?,
        metadata: metadata?,
        created_at,
    })
}

/// Appends 1–100 messages in order, creating the session and authors as needed.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages", tag = "messages",
    request_body = Object, responses((status = 201, body = Vec<Message>)))]
async fn create(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    body: Body,
) -> ApiResult<(StatusCode, Json<Vec<Message>>)> {
    path_name(&workspace_id, "workspace_id")?;
    path_name(&session_id, "session_id")?;
    let f = Fields::of(&body.0, true)?;
    f.finish()?;
    let root = body.0.as_ref().unwrap_or(&Value::Null);
    let list_at = vec![json!("body"), json!("messages")];
    let items = match root.get("messages") {
        None => return Err(validate::missing(list_at, root).into()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(validate::list_type(list_at, other).into()),
    };
    if items.is_empty() || items.len() > BATCH_MAX {
        let (kind, msg, bound) = if items.is_empty() {
            (
                "too_short",
                "List should have at least 1 item after validation, not 0".to_string(),
                json!({"min_length": 1}),
            )
        } else {
            (
                "too_long",
                format!(
                    "List should have at most {BATCH_MAX} items after validation, not {}",
                    items.len()
                ),
                json!({"max_length": BATCH_MAX}),
            )
        };
        let mut ctx = json!({"field_type": "List", "actual_length": items.len()});
        ctx.as_object_mut()
            .expect("object")
            .extend(bound.as_object().expect("object").clone());
        return Err(FieldError::new(kind, list_at, msg, json!(items))
            .with_ctx(ctx)
            .into());
    }
    let mut errors = vec![];
    let batch: Vec<NewMessage> = items
        .iter()
        .enumerate()
        .filter_map(|(i, m)| parse_message(i, m, &mut errors))
        .collect();
    if !errors.is_empty() {
        return Err(errors.into());
    }
    validate::new_peer_names(batch.iter().map(|m| m.peer.as_str()))?;
    let messages = app
        .store
        .create_messages(&workspace_id, &session_id, batch)
        .await?;
    Ok((StatusCode::CREATED, Json(messages)))
}

/// The legacy trailing-slash path some older clients still call.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages/", tag = "messages",
    request_body = Object, responses((status = 201, body = Vec<Message>)))]
async fn create_legacy(
    state: State<AppState>,
    path: SessionPath,
    body: Body,
) -> ApiResult<(StatusCode, Json<Vec<Message>>)> {
    create(state, path, body).await
}

/// Messages of a session in order; an unknown session gives an empty page.
#[utoipa::path(post, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages/list", tag = "messages",
    request_body = Object, responses((status = 200, body = Page<Message>)))]
async fn list(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): SessionPath,
    params: Params,
    body: Body,
) -> ApiResult<Json<Page<Message>>> {
    let (query, _) = list_query(Resource::Message, &body, &params)?;
    Ok(Json(
        app.store
            .list_messages(&workspace_id, &session_id, query)
            .await?,
    ))
}

#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages/{message_id}", tag = "messages",
    responses((status = 200, body = Message), (status = 404, description = "No such message")))]
async fn get(
    State(app): State<AppState>,
    Path((workspace_id, session_id, message_id)): MessagePath,
) -> ApiResult<Json<Message>> {
    app.store
        .get_message(&workspace_id, &session_id, &message_id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("Message with ID {message_id} not found")).into())
}

/// Replaces the metadata (`null` keeps it, `{}` clears it); content is immutable.
#[utoipa::path(put, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/messages/{message_id}", tag = "messages",
    request_body = Object, responses((status = 200, body = Message),
        (status = 404, description = "No such message")))]
async fn update(
    State(app): State<AppState>,
    Path((workspace_id, session_id, message_id)): MessagePath,
    body: Body,
) -> ApiResult<Json<Message>> {
    let mut f = Fields::of(&body.0, true)?;
    let metadata = f.metadata("metadata");
    f.finish()?;
    let not_found = || Error::NotFound("Message not found".into());
    let message = match metadata {
        Some(m) => {
            app.store
                .update_message_metadata(&workspace_id, &session_id, &message_id, m)
                .await?
        }
        None => {
            app.store
                .get_message(&workspace_id, &session_id, &message_id)
                .await?
        }
    };
    Ok(Json(message.ok_or_else(not_found)?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(create_legacy))
        .routes(routes!(list))
        .routes(routes!(get, update))
}
