//! The one error type of the crate. Each variant says what to do about it: a setting to
//! fix, a provider answer to read, or model output that was not what was asked for.

use std::time::Duration;

/// How much of a model's raw output an error keeps. Model output is untrusted input of
/// any length; an error travels into logs, dead-letter rows and API bodies, so it carries
/// only this many characters of it.
pub const EXCERPT_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No model is configured for a feature: the caller should wait, or answer an error
    /// naming `setting`.
    #[error("no language model configured: set {setting}")]
    NotConfigured { setting: String },

    /// A setting has a value that cannot work.
    #[error("invalid language model setting {setting}: {reason}")]
    InvalidSetting { setting: String, reason: String },

    /// The provider answered with an HTTP error (after any retries). `body` is bounded
    /// like an output excerpt.
    #[error("{provider} answered HTTP {status} after {attempts} attempt(s): {body}")]
    Http {
        provider: &'static str,
        status: u16,
        attempts: u32,
        body: String,
    },

    /// The provider asked to wait longer than the retry policy allows; the caller (the
    /// job queue) should try again no sooner than `retry_after`.
    #[error("{provider} is rate limiting: retry after {retry_after:?}")]
    RateLimited {
        provider: &'static str,
        retry_after: Duration,
    },

    /// No answer within the configured timeout. Not retried here: a call that ran out of
    /// time once usually does again, and the job queue retries later.
    #[error("{provider} did not answer within {after:?} (setting {setting})")]
    Timeout {
        provider: &'static str,
        after: Duration,
        setting: String,
    },

    /// The request did not reach the provider, or its answer could not be read.
    #[error("{provider} call failed after {attempts} attempt(s): {message}")]
    Transport {
        provider: &'static str,
        attempts: u32,
        message: String,
    },

    /// The reply is not JSON, though a JSON reply was asked for.
    #[error("model output is not JSON ({reason}); output starts: {excerpt:?}")]
    InvalidJson { reason: String, excerpt: String },

    /// The reply is JSON but does not satisfy the schema it was asked to follow.
    #[error("model output does not match schema {schema}: {reason}; output starts: {excerpt:?}")]
    SchemaViolation {
        schema: String,
        reason: String,
        excerpt: String,
    },

    /// The schema given to `chat_json` is itself not a valid JSON schema (a programming
    /// error, caught before any call).
    #[error("invalid output schema {schema}: {reason}")]
    InvalidSchema { schema: String, reason: String },
}

impl LlmError {
    /// The raw model output kept by a structured-output failure, if this is one.
    pub fn excerpt(&self) -> Option<&str> {
        match self {
            Self::InvalidJson { excerpt, .. } | Self::SchemaViolation { excerpt, .. } => {
                Some(excerpt)
            }
            _ => None,
        }
    }
}

/// The first [`EXCERPT_CHARS`] characters of `text` (whole characters, never a split
/// UTF-8 sequence), with `…` when something was cut.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_bounded_in_characters() {
        assert_eq!(excerpt("short"), "short");
        let long = "é".repeat(EXCERPT_CHARS + 10);
        let cut = excerpt(&long);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(&"a".repeat(EXCERPT_CHARS)).len(), EXCERPT_CHARS);
    }
}
