//! Language models behind one trait, [`ChatModel`], for the deriver and the other
//! features that reason over memory.
//!
//! - [`config`]: a feature's model settings under Honcho's names (`DERIVER_MODEL_CONFIG__*`,
//!   `LLM_*`), read through a lookup function so the environment and the settings file
//!   both work.
//! - [`GenaiModel`]: the implementation for any OpenAI-compatible chat endpoint,
//!   Anthropic and Gemini, on the `genai` crate: per-attempt timeout, retries
//!   ([`RetryPolicy`]), token usage from the provider's own counts.
//! - [`OutputSchema`]: structured output is checked here against its JSON schema,
//!   whatever the provider promised; a reply that fails is an [`LlmError`] with a bounded
//!   excerpt of the raw output.

mod client;
pub mod config;
mod error;
mod model;
mod retry;
mod schema;

pub use client::GenaiModel;
pub use config::{ModelSettings, Transport};
pub use error::{EXCERPT_CHARS, LlmError, excerpt};
pub use model::{
    ChatModel, ChatReply, ChatRequest, JsonReply, Message, Role, ToolCall, ToolSpec, Usage,
};
pub use retry::RetryPolicy;
pub use schema::OutputSchema;
