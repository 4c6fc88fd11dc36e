//! Model settings under Honcho's names (reference-reasoning §1.3), read through a lookup
//! function so the environment and the settings file both work.
//!
//! A feature (the deriver, summaries, ...) has a prefix such as `DERIVER_MODEL_CONFIG`;
//! its settings are `<prefix>__<FIELD>`, with `LLM_*` globals behind them:
//!
//! | Field | Setting | Fallback / default |
//! |---|---|---|
//! | `transport` | `<prefix>__TRANSPORT` (`openai`, `anthropic`, `gemini`) | the `openai/`, `anthropic/`, `gemini/` prefix of `MODEL`, else `openai` |
//! | `model` | `<prefix>__MODEL` | none: [`LlmError::NotConfigured`] naming it |
//! | `api_key` | `<prefix>__OVERRIDES__API_KEY` | the variable named by `<prefix>__OVERRIDES__API_KEY_ENV`, then `LLM_<TRANSPORT>_API_KEY` |
//! | `base_url` | `<prefix>__OVERRIDES__BASE_URL` | `LLM_<TRANSPORT>_BASE_URL`, then the provider's own |
//! | `max_output_tokens` | `<prefix>__MAX_OUTPUT_TOKENS` | `LLM_DEFAULT_MAX_TOKENS`, then 2500 |
//! | `temperature` | `<prefix>__TEMPERATURE` | the provider's default |
//! | `timeout` | `<prefix>__OVERRIDES__PROVIDER_PARAMS__TIMEOUT` (seconds), or `timeout` in the JSON of `<prefix>__OVERRIDES__PROVIDER_PARAMS` | 600 s, as Honcho's SDK clients |
//!
//! Unlike Honcho, an unset `MODEL` is not `gpt-5.4-mini`: a deployment that never chose
//! a model must not start paying for one, so derivation waits and says which setting to set.

use std::time::Duration;

use serde_json::Value;

use crate::error::LlmError;

pub const DERIVER: &str = "DERIVER_MODEL_CONFIG";
pub const SUMMARY: &str = "SUMMARY_MODEL_CONFIG";
pub const DREAM_DEDUCTION: &str = "DREAM_DEDUCTION_MODEL_CONFIG";
pub const DREAM_INDUCTION: &str = "DREAM_INDUCTION_MODEL_CONFIG";

/// Every feature prefix Honcho has, the dialectic's per-level ones included.
pub const FEATURES: &[&str] = &[
    DERIVER,
    SUMMARY,
    DREAM_DEDUCTION,
    DREAM_INDUCTION,
    "DIALECTIC_LEVELS__minimal__MODEL_CONFIG",
    "DIALECTIC_LEVELS__low__MODEL_CONFIG",
    "DIALECTIC_LEVELS__medium__MODEL_CONFIG",
    "DIALECTIC_LEVELS__high__MODEL_CONFIG",
    "DIALECTIC_LEVELS__max__MODEL_CONFIG",
];

/// The per-feature settings read, after `<prefix>__`.
pub const FEATURE_FIELDS: &[&str] = &[
    "TRANSPORT",
    "MODEL",
    "OVERRIDES__API_KEY",
    "OVERRIDES__API_KEY_ENV",
    "OVERRIDES__BASE_URL",
    "OVERRIDES__PROVIDER_PARAMS",
    "OVERRIDES__PROVIDER_PARAMS__TIMEOUT",
    "MAX_OUTPUT_TOKENS",
    "TEMPERATURE",
];

/// The global settings read.
pub const GLOBAL_SETTINGS: &[&str] = &[
    "LLM_OPENAI_API_KEY",
    "LLM_ANTHROPIC_API_KEY",
    "LLM_GEMINI_API_KEY",
    "LLM_OPENAI_BASE_URL",
    "LLM_ANTHROPIC_BASE_URL",
    "LLM_GEMINI_BASE_URL",
    "LLM_DEFAULT_MAX_TOKENS",
];

/// Every setting name this module reads for any feature, so a settings file can tell
/// them from typos.
pub fn setting_names() -> Vec<String> {
    let per_feature = FEATURES
        .iter()
        .flat_map(|p| FEATURE_FIELDS.iter().map(move |f| format!("{p}__{f}")));
    GLOBAL_SETTINGS
        .iter()
        .map(|s| (*s).to_owned())
        .chain(per_feature)
        .collect()
}

/// Honcho's three wire formats; every OpenAI-compatible server is `OpenAi` with its own
/// base URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::OpenAi, Self::Anthropic, Self::Gemini]
            .into_iter()
            .find(|t| t.name() == s)
    }

    fn global(self, what: &str) -> String {
        format!("LLM_{}_{what}", self.name().to_uppercase())
    }

    /// The provider's API root and the version path its SDK appends. Honcho passes
    /// `LLM_ANTHROPIC_BASE_URL` / `LLM_GEMINI_BASE_URL` to SDKs that add `/v1` and
    /// `/v1beta` themselves, while OpenAI's base URL already carries `/v1`.
    fn default_base_and_version(self) -> (&'static str, &'static str) {
        match self {
            Self::OpenAi => ("https://api.openai.com/v1", ""),
            Self::Anthropic => ("https://api.anthropic.com", "v1"),
            Self::Gemini => ("https://generativelanguage.googleapis.com", "v1beta"),
        }
    }
}

/// Everything needed to call one feature's model.
#[derive(Clone, PartialEq)]
pub struct ModelSettings {
    pub transport: Transport,
    pub model: String,
    pub api_key: Option<String>,
    /// The API root, ending in `/` (`.../v1/`); request paths are appended to it.
    pub base_url: String,
    pub max_output_tokens: u32,
    pub temperature: Option<f64>,
    /// Limit on each attempt of a call.
    pub timeout: Duration,
    /// The setting that sets `timeout`, named when a call runs out of time.
    pub timeout_setting: String,
}

// Hand-written so the API key never reaches a log line.
impl std::fmt::Debug for ModelSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSettings")
            .field("transport", &self.transport)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("max_output_tokens", &self.max_output_tokens)
            .field("temperature", &self.temperature)
            .field("timeout", &self.timeout)
            .finish()
    }
}

const DEFAULT_MAX_TOKENS: u32 = 2500;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl ModelSettings {
    /// Reads the process environment for `feature` (e.g. [`DERIVER`]).
    pub fn from_env(feature: &str) -> Result<Self, LlmError> {
        Self::from_lookup(feature, |name| std::env::var(name).ok())
    }

    /// Reads `feature`'s settings through `var`. Empty values count as unset; a bad
    /// value is an error naming its setting.
    pub fn from_lookup(
        feature: &str,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, LlmError> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let key = |field: &str| format!("{feature}__{field}");

        let model_key = key("MODEL");
        let model = get(&model_key).ok_or_else(|| LlmError::NotConfigured {
            setting: model_key.clone(),
        })?;
        let (transport, model) = match get(&key("TRANSPORT")) {
            Some(t) => match Transport::parse(&t) {
                Some(transport) => (transport, model),
                None => {
                    return Err(invalid(
                        &key("TRANSPORT"),
                        format!("{t:?} is not one of \"openai\", \"anthropic\", \"gemini\""),
                    ));
                }
            },
            None => match model
                .split_once('/')
                .and_then(|(t, m)| Some((Transport::parse(t)?, m)))
            {
                Some((transport, rest)) => (transport, rest.to_owned()),
                None => (Transport::OpenAi, model),
            },
        };

        let override_url = key("OVERRIDES__BASE_URL");
        let global_url = transport.global("BASE_URL");
        let (default_base, version) = transport.default_base_and_version();
        let base_url = match get(&override_url).map(|u| (override_url.clone(), u)) {
            Some(found) => Some(found),
            None => get(&global_url).map(|u| (global_url.clone(), u)),
        };
        let custom_url = base_url.is_some();
        let base_url = match base_url {
            Some((setting, url)) => api_root(&setting, &url, version)?,
            None => api_root(&global_url, default_base, version)?,
        };

        let api_key = get(&key("OVERRIDES__API_KEY"))
            .or_else(|| get(&key("OVERRIDES__API_KEY_ENV")).and_then(|n| get(&n)))
            .or_else(|| get(&transport.global("API_KEY")));
        // Local OpenAI-compatible servers (Ollama, llama.cpp, vLLM) need no key; the
        // providers' own endpoints always do, so a missing one is named now rather than
        // as a 401 on the first call.
        if api_key.is_none() && (transport != Transport::OpenAi || !custom_url) {
            return Err(LlmError::NotConfigured {
                setting: format!(
                    "{} (or {})",
                    transport.global("API_KEY"),
                    key("OVERRIDES__API_KEY")
                ),
            });
        }

        let max_output_tokens = match get(&key("MAX_OUTPUT_TOKENS")) {
            Some(n) => positive(&key("MAX_OUTPUT_TOKENS"), &n)?,
            None => match get("LLM_DEFAULT_MAX_TOKENS") {
                Some(n) => positive("LLM_DEFAULT_MAX_TOKENS", &n)?,
                None => DEFAULT_MAX_TOKENS,
            },
        };
        let temperature = get(&key("TEMPERATURE"))
            .map(|t| match t.parse::<f64>() {
                Ok(v) if (0.0..=2.0).contains(&v) => Ok(v),
                _ => Err(invalid(
                    &key("TEMPERATURE"),
                    format!("{t:?} is not a number from 0 to 2"),
                )),
            })
            .transpose()?;
        let (timeout, timeout_setting) = timeout(feature, &get)?;

        Ok(Self {
            transport,
            model,
            api_key,
            base_url,
            max_output_tokens,
            temperature,
            timeout,
            timeout_setting,
        })
    }
}

/// The timeout from `PROVIDER_PARAMS__TIMEOUT`, else from the `PROVIDER_PARAMS` JSON
/// object. That object's other keys (extra body fields, headers) are refused rather than
/// ignored, so a Honcho deployment relying on them learns that engram does not send them.
fn timeout(
    feature: &str,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<(Duration, String), LlmError> {
    let direct = format!("{feature}__OVERRIDES__PROVIDER_PARAMS__TIMEOUT");
    let params = format!("{feature}__OVERRIDES__PROVIDER_PARAMS");
    let from_params = match get(&params) {
        None => None,
        Some(json) => {
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&json) else {
                return Err(invalid(&params, "is not a JSON object".to_owned()));
            };
            if let Some(other) = map.keys().find(|k| *k != "timeout") {
                return Err(invalid(
                    &params,
                    format!("{other:?} is not supported; engram reads only \"timeout\""),
                ));
            }
            map.get("timeout").map(|t| match t {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        }
    };
    let (setting, value) = match get(&direct) {
        Some(v) => (direct, v),
        None => match from_params {
            Some(v) => (params, v),
            None => return Ok((DEFAULT_TIMEOUT, direct)),
        },
    };
    let secs = value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            invalid(
                &setting,
                "timeout must be a positive number of seconds".to_owned(),
            )
        })?;
    Ok((secs, setting))
}

/// `url` with the provider's version path appended (unless already there) and a
/// trailing `/`, since request paths are joined onto it.
fn api_root(setting: &str, url: &str, version: &str) -> Result<String, LlmError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(setting, format!("{url:?} is not an http(s) URL")));
    }
    let url = url.trim_end_matches('/');
    if version.is_empty() || url.ends_with(&format!("/{version}")) {
        Ok(format!("{url}/"))
    } else {
        Ok(format!("{url}/{version}/"))
    }
}

fn positive(setting: &str, value: &str) -> Result<u32, LlmError> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            setting,
            format!("{value:?} is not a positive integer"),
        )),
    }
}

fn invalid(setting: &str, reason: String) -> LlmError {
    LlmError::InvalidSetting {
        setting: setting.to_owned(),
        reason,
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
