//! Domain types, validation rules, the filter language and the `Store` trait.
//!
//! This crate never imports sqlx, rusqlite, axum or any other I/O crate: it holds
//! the rules that must hold identically whichever engine stores the data.

pub mod auth;
pub mod configuration;
pub mod embedding;
pub mod error;
pub mod filter;
pub mod filter_sql;
pub mod ids;
pub mod jobs;
pub mod model;
pub mod pocketpaw;
pub mod purge;
pub mod queue;
pub mod queue_status;
pub mod search;
pub mod store;
pub mod time;
pub mod tokens;
pub mod validate;
pub mod verify;
pub mod webhooks;

pub use embedding::Embedder;
pub use error::{Error, FieldError, Result};
pub use store::Store;
