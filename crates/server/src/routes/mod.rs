//! One module per Honcho router. Handlers extract, validate, call the store and
//! map the result; rules that must hold on both engines live in `engram-core`.

pub mod context;
pub mod health;
pub mod keys;
pub mod lists;
pub mod messages;
pub mod metrics;
pub mod peers;
pub mod pocketpaw;
pub mod pocketpaw_auth;
mod pocketpaw_export;
pub mod queue;
pub mod search;
pub mod sessions;
pub mod webhooks;
pub mod workspaces;

/// The body of a 202: the deletion is accepted; its purge runs in the background.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Accepted {
    pub message: &'static str,
}
