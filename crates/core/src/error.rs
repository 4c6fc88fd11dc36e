//! The one error type every layer returns; the server maps it to HTTP in one table.

use serde_json::Value;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One entry of a request-validation error, shaped like pydantic's so that
/// clients written against the reference parse it unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: &'static str,
    pub loc: Vec<Value>,
    pub msg: String,
    pub input: Value,
    pub ctx: Option<Value>,
}

impl FieldError {
    pub fn new(kind: &'static str, loc: Vec<Value>, msg: impl Into<String>, input: Value) -> Self {
        Self {
            kind,
            loc,
            msg: msg.into(),
            input,
            ctx: None,
        }
    }

    pub fn with_ctx(mut self, ctx: Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Request-shape violations: 422 with a list of `FieldError`s.
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// Semantic validation (filters, scope misuse): 422 with a string detail.
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// Every authentication and authorization failure (the reference never uses 403).
    #[error("{0}")]
    Unauthorized(String),
    /// A feature switched off by configuration (405 "Feature is disabled").
    #[error("Feature is disabled")]
    Disabled,
    /// Momentary overload (no database connection freed up in time): 503, worth a retry.
    #[error("{0}")]
    Busy(String),
    /// A write that could not be made durable because of the storage, not the request:
    /// the disk is full (`full`, 507) or the files cannot be written (read-only, I/O
    /// error: 503). Nothing of the write was kept; it succeeds once the condition clears.
    #[error("{detail}")]
    Storage { full: bool, detail: String },
    /// Anything the client cannot fix; the detail never reaches the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    pub fn session_not_found(workspace: &str, session: &str) -> Self {
        Error::NotFound(format!(
            "Session {session} not found in workspace {workspace}"
        ))
    }

    pub fn peer_not_found(workspace: &str, peer: &str) -> Self {
        Error::NotFound(format!("Peer {peer} not found in workspace {workspace}"))
    }

    pub fn workspace_not_found(workspace: &str) -> Self {
        Error::NotFound(format!("Workspace {workspace} not found"))
    }

    pub fn observer_limit(session: &str, count: usize) -> Self {
        Error::BadRequest(format!(
            "Cannot create session {session} with {count} observers. Maximum allowed is {} observers per session. Observers are peers with 'observe_others' set to true.",
            crate::validate::SESSION_OBSERVERS_LIMIT
        ))
    }
}
