//! The OpenAPI document (generated from the route annotations) and its docs page.

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::Html;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

use crate::AppState;

mod contract;
mod links;
mod requests;

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

/// The generated document completed by `contract::complete`.
fn document(doc: &Document) -> serde_json::Value {
    let mut value = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    contract::complete(&mut value);
    value
}

/// The routes [`router`] serves, `(method, path)`: the document and its page, which the
/// document itself does not list.
pub const ROUTES: [(&str, &str); 2] = [("GET", "/openapi.json"), ("GET", "/docs")];

/// The document is serialized once: the router is cloned for every connection, and a
/// handler owning the document would deep-copy it each time (23 MB live under a
/// 16-client load, found with heaptrack).
pub fn router(doc: Document) -> Router<AppState> {
    let json = Bytes::from(document(&doc).to_string());
    let [("GET", document_path), ("GET", docs_path)] = ROUTES else {
        unreachable!("both routes are GET")
    };
    Router::new()
        .route(
            document_path,
            get(move || {
                let json = json.clone();
                async move { ([(CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route(docs_path, get(|| async { Html(DOCS_PAGE) }))
}
