//! Settings of the OpenAI-compatible provider, under Honcho's environment names.

use std::time::Duration;

use engram_core::{Error, Result};

/// How to reach an OpenAI-compatible embeddings endpoint. Every field is public so a
/// clap (or any other) configuration can fill it; [`OpenAiConfig::from_env`] reads
/// Honcho's variables:
///
/// | Field | Variable | Default |
/// |---|---|---|
/// | `base_url` | `EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL` | `https://api.openai.com/v1` |
/// | `api_key` | `EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY`, else the variable named by `EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY_ENV`, else `LLM_OPENAI_API_KEY`, else `OPENAI_API_KEY` | none (no `Authorization` header) |
/// | `model` | `EMBEDDING_MODEL_CONFIG__MODEL` (an `openai/` prefix is dropped) | `text-embedding-3-small` |
/// | `dimensions` | `EMBEDDING_VECTOR_DIMENSIONS` | 1536 |
/// | `send_dimensions` | true when `EMBEDDING_VECTOR_DIMENSIONS` is set (Honcho's `auto`) | false |
/// | `max_input_tokens` | `EMBEDDING_MAX_INPUT_TOKENS` | 8192 |
/// | `max_tokens_per_request` | `EMBEDDING_MAX_TOKENS_PER_REQUEST` | 300 000 |
/// | `max_batch_size` | `EMBEDDING_MODEL_CONFIG__MAX_BATCH_SIZE` | 2048 |
/// | `timeout` | `EMBEDDING_MODEL_CONFIG__TIMEOUT` (seconds) | 600 s |
///
/// `EMBEDDING_MODEL_CONFIG__TRANSPORT` may only be `openai`. As in the OpenAI SDK the
/// base URL includes the version (`.../v1`); requests go to `{base_url}/embeddings`.
#[derive(Clone)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    /// Length of every vector; a response of another length is an error.
    pub dimensions: usize,
    /// Whether requests carry `dimensions` (models that cannot shorten their vectors,
    /// and many compatible servers, reject the field).
    pub send_dimensions: bool,
    /// Tokens (`cl100k_base`) per input: longer messages are chunked, queries truncated.
    pub max_input_tokens: usize,
    /// Tokens per request, summed over its inputs.
    pub max_tokens_per_request: usize,
    /// Inputs per request.
    pub max_batch_size: usize,
    pub timeout: Duration,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            api_key: None,
            model: "text-embedding-3-small".to_owned(),
            dimensions: 1536,
            send_dimensions: false,
            max_input_tokens: 8192,
            max_tokens_per_request: 300_000,
            max_batch_size: 2048,
            timeout: Duration::from_secs(600),
        }
    }
}

// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .field("dimensions", &self.dimensions)
            .field("send_dimensions", &self.send_dimensions)
            .field("max_input_tokens", &self.max_input_tokens)
            .field("max_tokens_per_request", &self.max_tokens_per_request)
            .field("max_batch_size", &self.max_batch_size)
            .field("timeout", &self.timeout)
            .finish()
    }
}

const PREFIX: &str = "EMBEDDING_MODEL_CONFIG__";

impl OpenAiConfig {
    /// Every variable [`OpenAiConfig::from_lookup`] reads, so a settings file can tell
    /// these names from typos.
    pub const SETTING_NAMES: &'static [&'static str] = &[
        "EMBEDDING_MODEL_CONFIG__TRANSPORT",
        "EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL",
        "EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY",
        "EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY_ENV",
        "EMBEDDING_MODEL_CONFIG__MODEL",
        "EMBEDDING_MODEL_CONFIG__MAX_BATCH_SIZE",
        "EMBEDDING_MODEL_CONFIG__TIMEOUT",
        "EMBEDDING_VECTOR_DIMENSIONS",
        "EMBEDDING_MAX_INPUT_TOKENS",
        "EMBEDDING_MAX_TOKENS_PER_REQUEST",
        "LLM_OPENAI_API_KEY",
        "OPENAI_API_KEY",
    ];

    /// Reads the process environment (see the table above).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `var`, which returns a variable's value. Empty values
    /// count as unset. Malformed numbers are an error naming the variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();

        if let Some(transport) = get(&format!("{PREFIX}TRANSPORT"))
            && transport.trim() != "openai"
        {
            return Err(invalid(
                &format!("{PREFIX}TRANSPORT"),
                &format!("{transport:?} is not supported; engram speaks only \"openai\""),
            ));
        }
        if let Some(url) = get(&format!("{PREFIX}OVERRIDES__BASE_URL")) {
            config.base_url = url.trim().trim_end_matches('/').to_owned();
        }
        config.api_key = get(&format!("{PREFIX}OVERRIDES__API_KEY"))
            .or_else(|| get(&format!("{PREFIX}OVERRIDES__API_KEY_ENV")).and_then(|n| get(&n)))
            .or_else(|| get("LLM_OPENAI_API_KEY"))
            .or_else(|| get("OPENAI_API_KEY"));
        if let Some(model) = get(&format!("{PREFIX}MODEL")) {
            let model = model.trim();
            config.model = model.strip_prefix("openai/").unwrap_or(model).to_owned();
        }
        if let Some(d) = get("EMBEDDING_VECTOR_DIMENSIONS") {
            config.dimensions = positive("EMBEDDING_VECTOR_DIMENSIONS", &d)?;
            config.send_dimensions = true;
        }
        if let Some(n) = get("EMBEDDING_MAX_INPUT_TOKENS") {
            config.max_input_tokens = positive("EMBEDDING_MAX_INPUT_TOKENS", &n)?;
        }
        if let Some(n) = get("EMBEDDING_MAX_TOKENS_PER_REQUEST") {
            config.max_tokens_per_request = positive("EMBEDDING_MAX_TOKENS_PER_REQUEST", &n)?;
        }
        if let Some(n) = get(&format!("{PREFIX}MAX_BATCH_SIZE")) {
            config.max_batch_size = positive(&format!("{PREFIX}MAX_BATCH_SIZE"), &n)?;
        }
        if let Some(t) = get(&format!("{PREFIX}TIMEOUT")) {
            let name = format!("{PREFIX}TIMEOUT");
            let secs: f64 = t
                .trim()
                .parse()
                .map_err(|_| invalid(&name, &format!("{t:?} is not a number of seconds")))?;
            config.timeout = Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| invalid(&name, &format!("{t:?} must be more than 0 seconds")))?;
        }
        Ok(config)
    }
}

fn positive(name: &str, value: &str) -> Result<usize> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            name,
            &format!("{value:?} is not a positive integer"),
        )),
    }
}

fn invalid(name: &str, why: &str) -> Error {
    Error::Internal(format!("invalid embedding setting {name}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<OpenAiConfig> {
        OpenAiConfig::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn message(e: Error) -> String {
        match e {
            Error::Internal(m) => m,
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn defaults_match_honcho() {
        let c = config(&[]).unwrap();
        assert_eq!(c.base_url, "https://api.openai.com/v1");
        assert_eq!(c.model, "text-embedding-3-small");
        assert_eq!(c.api_key, None);
        assert_eq!(c.dimensions, 1536);
        assert!(!c.send_dimensions);
        assert_eq!(c.max_input_tokens, 8192);
        assert_eq!(c.max_tokens_per_request, 300_000);
        assert_eq!(c.max_batch_size, 2048);
        assert_eq!(c.timeout, Duration::from_secs(600));
    }

    #[test]
    fn reads_honchos_variables() {
        let c = config(&[
            ("EMBEDDING_MODEL_CONFIG__TRANSPORT", "openai"),
            (
                "EMBEDDING_MODEL_CONFIG__OVERRIDES__BASE_URL",
                "http://127.0.0.1:9/v1/",
            ),
            ("EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY_ENV", "MY_KEY"),
            ("MY_KEY", "sk-from-named-variable"),
            ("LLM_OPENAI_API_KEY", "sk-llm"),
            ("EMBEDDING_MODEL_CONFIG__MODEL", "openai/nomic-embed-text"),
            ("EMBEDDING_VECTOR_DIMENSIONS", "768"),
            ("EMBEDDING_MAX_INPUT_TOKENS", "512"),
            ("EMBEDDING_MAX_TOKENS_PER_REQUEST", "4096"),
            ("EMBEDDING_MODEL_CONFIG__MAX_BATCH_SIZE", "10"),
            ("EMBEDDING_MODEL_CONFIG__TIMEOUT", "2.5"),
        ])
        .unwrap();
        assert_eq!(c.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(c.api_key.as_deref(), Some("sk-from-named-variable"));
        assert_eq!(c.model, "nomic-embed-text");
        assert_eq!(c.dimensions, 768);
        assert!(c.send_dimensions);
        assert_eq!(c.max_input_tokens, 512);
        assert_eq!(c.max_tokens_per_request, 4096);
        assert_eq!(c.max_batch_size, 10);
        assert_eq!(c.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn api_key_falls_back_in_honchos_order() {
        let key = |vars: &[(&str, &str)]| config(vars).unwrap().api_key;
        let direct = ("EMBEDDING_MODEL_CONFIG__OVERRIDES__API_KEY", "sk-direct");
        let llm = ("LLM_OPENAI_API_KEY", "sk-llm");
        let sdk = ("OPENAI_API_KEY", "sk-sdk");
        assert_eq!(key(&[direct, llm, sdk]).as_deref(), Some("sk-direct"));
        assert_eq!(key(&[llm, sdk]).as_deref(), Some("sk-llm"));
        assert_eq!(key(&[sdk]).as_deref(), Some("sk-sdk"));
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        let m = message(config(&[("EMBEDDING_VECTOR_DIMENSIONS", "0")]).unwrap_err());
        assert_eq!(
            m,
            "invalid embedding setting EMBEDDING_VECTOR_DIMENSIONS: \"0\" is not a positive integer"
        );
        let m = message(config(&[("EMBEDDING_MODEL_CONFIG__TIMEOUT", "soon")]).unwrap_err());
        assert!(m.contains("EMBEDDING_MODEL_CONFIG__TIMEOUT"), "{m}");
        let m = message(config(&[("EMBEDDING_MODEL_CONFIG__TIMEOUT", "-1")]).unwrap_err());
        assert!(m.contains("more than 0 seconds"), "{m}");
        let m = message(config(&[("EMBEDDING_MODEL_CONFIG__TRANSPORT", "gemini")]).unwrap_err());
        assert!(m.contains("only \"openai\""), "{m}");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let c = config(&[("OPENAI_API_KEY", "sk-secret")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sk-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
