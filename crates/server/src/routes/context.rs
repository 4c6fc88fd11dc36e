//! `GET .../sessions/{s}/context`: recent messages within a token budget, plus the
//! target peer's card when one is asked for. Summaries and representations come
//! from background derivation, which does not exist yet, so those parts are empty.

use axum::Json;
use axum::extract::{Path, State};
use engram_core::Error;
use engram_core::model::Message;
use engram_core::validate::CONTEXT_MAX_TOKENS;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiResult;
use crate::input::Params;

#[derive(Serialize, ToSchema)]
pub struct SessionContext {
    id: String,
    messages: Vec<Message>,
    #[schema(value_type = Option<Object>)]
    summary: Option<serde_json::Value>,
    peer_representation: Option<String>,
    peer_card: Option<Vec<String>>,
}

#[utoipa::path(get, path = "/v3/workspaces/{workspace_id}/sessions/{session_id}/context", tag = "sessions",
    params(("tokens" = Option<i64>, Query), ("summary" = Option<bool>, Query), ("peer_target" = Option<String>, Query),
           ("peer_perspective" = Option<String>, Query), ("limit_to_session" = Option<bool>, Query)),
    responses((status = 200, body = SessionContext)))]
pub async fn context(
    State(app): State<AppState>,
    Path((workspace_id, session_id)): Path<(String, String)>,
    params: Params,
) -> ApiResult<Json<SessionContext>> {
    // Every query parameter is checked, and all violations reported, in the order the
    // reference declares them.
    let tokens = params.int("tokens", CONTEXT_MAX_TOKENS, None, Some(CONTEXT_MAX_TOKENS));
    let summary = params.bool("summary", true);
    let limit_to_session = params.bool("limit_to_session", false);
    let top_k = params.int("search_top_k", 1, Some(1), Some(100));
    let most_frequent = params.bool("include_most_frequent", false);
    let max_conclusions = params.int("max_conclusions", 1, Some(1), Some(100));
    let errors: Vec<_> = [
        tokens.as_ref().err().cloned(),
        summary.err(),
        limit_to_session.as_ref().err().cloned(),
        top_k.err(),
        most_frequent.err(),
        max_conclusions.err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (Ok(tokens), Ok(limit_to_session)) = (tokens, limit_to_session) else {
        return Err(errors.into());
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let target = params.string("peer_target");
    let perspective = params.string("peer_perspective");
    if perspective.is_some() && target.is_none() {
        return Err(Error::Unprocessable(
            "peer_target must be provided if peer_perspective is provided".into(),
        )
        .into());
    }
    let (peer_representation, peer_card, budget) = match &target {
        None => (None, None, tokens),
        Some(target) => {
            let observer = perspective.as_deref().unwrap_or(target);
            let card = if limit_to_session {
                None
            } else {
                match app
                    .store
                    .get_peer_card(&workspace_id, observer, target)
                    .await
                {
                    Ok(card) => card,
                    Err(Error::NotFound(_)) => None,
                    Err(e) => return Err(e.into()),
                }
            };
            let card_tokens = card
                .as_ref()
                .map(|c| engram_core::tokens::count(&c.join("\n")))
                .unwrap_or(0);
            (Some(String::new()), card, tokens - card_tokens)
        }
    };
    let messages = app
        .store
        .recent_messages(&workspace_id, &session_id, budget)
        .await?;
    Ok(Json(SessionContext {
        id: session_id,
        messages,
        summary: None,
        peer_representation,
        peer_card,
    }))
}
