//! The one table from domain errors to HTTP statuses and reference-shaped bodies.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use engram_core::{Error, FieldError};
use serde_json::{Map, Value, json};

pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        ApiError(Error::Validation(errors))
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        ApiError(Error::Validation(vec![error]))
    }
}

fn field_error_json(e: &FieldError) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), json!(e.kind));
    m.insert("loc".into(), Value::Array(e.loc.clone()));
    m.insert("msg".into(), json!(e.msg));
    m.insert("input".into(), e.input.clone());
    if let Some(ctx) = &e.ctx {
        m.insert("ctx".into(), ctx.clone());
    }
    Value::Object(m)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, detail) = match self.0 {
            Error::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Value::Array(errors.iter().map(field_error_json).collect()),
            ),
            Error::Unprocessable(m) => (StatusCode::UNPROCESSABLE_ENTITY, json!(m)),
            Error::NotFound(m) => (StatusCode::NOT_FOUND, json!(m)),
            Error::Conflict(m) => (StatusCode::CONFLICT, json!(m)),
            Error::BadRequest(m) => (StatusCode::BAD_REQUEST, json!(m)),
            Error::PayloadTooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, json!(m)),
            Error::Unauthorized(m) => (StatusCode::UNAUTHORIZED, json!(m)),
            Error::Disabled => (StatusCode::METHOD_NOT_ALLOWED, json!("Feature is disabled")),
            Error::Busy(m) => {
                tracing::warn!(error = %m, "request shed");
                let body = Json(json!({ "detail": m }));
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "1")],
                    body,
                )
                    .into_response();
            }
            // Disk full is 507, which names the cause (a client retry alone cannot fix
            // it); unwritable storage is 503. Both say when to try again, since either
            // clears without a restart once the operator frees space or remounts.
            Error::Storage { full, detail } => {
                tracing::error!(error = %detail, "write not saved: storage");
                let status = if full {
                    StatusCode::INSUFFICIENT_STORAGE
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                let body = Json(json!({ "detail": detail }));
                return (status, [(axum::http::header::RETRY_AFTER, "5")], body).into_response();
            }
            Error::Internal(m) => {
                tracing::error!(error = %m, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!("An unexpected error occurred"),
                )
            }
        };
        (status, Json(json!({ "detail": detail }))).into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Gives every error response the reference's `{"detail": ...}` JSON body. axum answers
/// an unknown route, a method the route lacks and its own extractor rejections with an
/// empty or plain-text body; its text (or the status's reason) becomes the detail.
pub async fn json_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let detail = match text.trim() {
        "" => status.canonical_reason().unwrap_or("Error"),
        t => t,
    };
    let body = json!({ "detail": detail }).to_string();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn storage_faults_are_507_or_503_with_retry_after() {
        for (full, status) in [
            (true, StatusCode::INSUFFICIENT_STORAGE),
            (false, StatusCode::SERVICE_UNAVAILABLE),
        ] {
            let detail = "Insufficient storage: the database's disk is full, so nothing was saved";
            let r = ApiError(Error::Storage {
                full,
                detail: detail.into(),
            })
            .into_response();
            assert_eq!(r.status(), status);
            assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "5");
            let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&body).unwrap(),
                json!({ "detail": detail })
            );
        }
    }

    #[tokio::test]
    async fn overload_is_503_with_retry_after() {
        let r = ApiError(Error::Busy("The database is busy; retry shortly".into())).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"detail": "The database is busy; retry shortly"})
        );
    }
}
