//! The OpenAPI document (generated from the route annotations) and its docs page.

use axum::Json;
use axum::Router;
use axum::response::Html;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(info(title = "engram", description = "Honcho v3 compatible memory server"))]
pub struct ApiDoc;

impl ApiDoc {
    pub fn base() -> Document {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc
    }
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html><head><title>engram API</title><meta charset="utf-8"/></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"></script>
<noscript>The machine-readable API description is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>"#;

pub fn router(doc: Document) -> Router<AppState> {
    Router::new()
        .route(
            "/openapi.json",
            get(move || async move { Json(doc.clone()) }),
        )
        .route("/docs", get(|| async { Html(DOCS_PAGE) }))
}
