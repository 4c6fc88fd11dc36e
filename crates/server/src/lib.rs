//! The HTTP server: routes speaking the Honcho v3 wire format over any `Store`.

pub mod app;
pub mod auth;
pub mod config;
pub mod embedding_jobs;
pub mod error;
pub mod input;
pub mod metrics;
pub mod openapi;
pub mod progress;
pub mod routes;
pub mod scopes;
pub mod semantic;
pub mod settings;
pub mod startup;
pub mod transfer;
pub mod webhooks;
pub mod worker;

pub use app::{AppState, build_router, metrics_router, serve};
