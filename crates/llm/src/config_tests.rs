use std::cell::RefCell;

use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<ModelSettings, LlmError> {
    ModelSettings::from_lookup(DERIVER, |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
}

fn setting_of(e: LlmError) -> String {
    match e {
        LlmError::NotConfigured { setting } | LlmError::InvalidSetting { setting, .. } => setting,
        other => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn no_model_names_the_setting() {
    let e = settings(&[("LLM_OPENAI_API_KEY", "sk")]).unwrap_err();
    assert!(matches!(e, LlmError::NotConfigured { .. }), "{e:?}");
    assert_eq!(setting_of(e), "DERIVER_MODEL_CONFIG__MODEL");
}

#[test]
fn openai_defaults_match_honcho() {
    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "gpt-5.4-mini"),
        ("LLM_OPENAI_API_KEY", "sk-global"),
    ])
    .unwrap();
    assert_eq!(s.transport, Transport::OpenAi);
    assert_eq!(s.model, "gpt-5.4-mini");
    assert_eq!(s.base_url, "https://api.openai.com/v1/");
    assert_eq!(s.api_key.as_deref(), Some("sk-global"));
    assert_eq!(s.max_output_tokens, 2500);
    assert_eq!(s.temperature, None);
    assert_eq!(s.timeout, Duration::from_secs(600));
}

#[test]
fn a_model_prefix_picks_the_transport_and_its_globals() {
    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "anthropic/claude-haiku-4-5"),
        ("LLM_ANTHROPIC_API_KEY", "sk-ant"),
        ("LLM_OPENAI_API_KEY", "sk-openai"),
    ])
    .unwrap();
    assert_eq!(s.transport, Transport::Anthropic);
    assert_eq!(s.model, "claude-haiku-4-5");
    assert_eq!(s.api_key.as_deref(), Some("sk-ant"));
    assert_eq!(s.base_url, "https://api.anthropic.com/v1/");

    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "gemini/gemini-2.5-flash"),
        ("LLM_GEMINI_API_KEY", "g"),
        ("LLM_GEMINI_BASE_URL", "http://127.0.0.1:9"),
    ])
    .unwrap();
    assert_eq!(s.transport, Transport::Gemini);
    assert_eq!(s.base_url, "http://127.0.0.1:9/v1beta/");

    // An explicit TRANSPORT keeps the model name whole (OpenRouter's `vendor/model`).
    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__TRANSPORT", "openai"),
        ("DERIVER_MODEL_CONFIG__MODEL", "anthropic/claude-haiku-4-5"),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__BASE_URL",
            "https://openrouter.ai/api/v1",
        ),
        ("DERIVER_MODEL_CONFIG__OVERRIDES__API_KEY", "or"),
    ])
    .unwrap();
    assert_eq!(s.transport, Transport::OpenAi);
    assert_eq!(s.model, "anthropic/claude-haiku-4-5");
    assert_eq!(s.base_url, "https://openrouter.ai/api/v1/");
}

#[test]
fn overrides_win_in_honchos_order() {
    let key = |vars: &[(&str, &str)]| {
        let mut all = vec![("DERIVER_MODEL_CONFIG__MODEL", "m")];
        all.extend_from_slice(vars);
        settings(&all).unwrap().api_key
    };
    let direct = ("DERIVER_MODEL_CONFIG__OVERRIDES__API_KEY", "sk-direct");
    let named = ("DERIVER_MODEL_CONFIG__OVERRIDES__API_KEY_ENV", "MY_KEY");
    let named_value = ("MY_KEY", "sk-named");
    let global = ("LLM_OPENAI_API_KEY", "sk-global");
    assert_eq!(
        key(&[direct, named, named_value, global]).as_deref(),
        Some("sk-direct")
    );
    assert_eq!(
        key(&[named, named_value, global]).as_deref(),
        Some("sk-named")
    );
    assert_eq!(key(&[global]).as_deref(), Some("sk-global"));

    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "m"),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__BASE_URL",
            "http://127.0.0.1:11434/v1/",
        ),
        ("LLM_OPENAI_BASE_URL", "http://elsewhere/v1"),
        ("DERIVER_MODEL_CONFIG__MAX_OUTPUT_TOKENS", "300"),
        ("LLM_DEFAULT_MAX_TOKENS", "900"),
        ("DERIVER_MODEL_CONFIG__TEMPERATURE", "0.2"),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS",
            r#"{"timeout": 2.5}"#,
        ),
    ])
    .unwrap();
    assert_eq!(s.base_url, "http://127.0.0.1:11434/v1/");
    assert_eq!(s.api_key, None, "a local server needs no key");
    assert_eq!(s.max_output_tokens, 300);
    assert_eq!(s.temperature, Some(0.2));
    assert_eq!(s.timeout, Duration::from_millis(2500));
    assert_eq!(
        s.timeout_setting,
        "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS"
    );

    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "m"),
        ("LLM_OPENAI_API_KEY", "k"),
        ("LLM_DEFAULT_MAX_TOKENS", "900"),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS__TIMEOUT",
            "7",
        ),
    ])
    .unwrap();
    assert_eq!(s.max_output_tokens, 900);
    assert_eq!(s.timeout, Duration::from_secs(7));
}

#[test]
fn a_provider_endpoint_without_a_key_names_the_key_setting() {
    for (model, global) in [
        ("gpt-5.4-mini", "LLM_OPENAI_API_KEY"),
        ("anthropic/claude-haiku-4-5", "LLM_ANTHROPIC_API_KEY"),
        ("gemini/gemini-2.5-flash", "LLM_GEMINI_API_KEY"),
    ] {
        let setting = setting_of(settings(&[("DERIVER_MODEL_CONFIG__MODEL", model)]).unwrap_err());
        assert!(setting.starts_with(global), "{setting}");
        assert!(
            setting.contains("DERIVER_MODEL_CONFIG__OVERRIDES__API_KEY"),
            "{setting}"
        );
    }
}

#[test]
fn bad_values_name_their_setting() {
    let with = |extra: (&'static str, &'static str)| {
        setting_of(
            settings(&[
                ("DERIVER_MODEL_CONFIG__MODEL", "m"),
                ("LLM_OPENAI_API_KEY", "k"),
                extra,
            ])
            .unwrap_err(),
        )
    };
    for (name, value) in [
        ("DERIVER_MODEL_CONFIG__TRANSPORT", "bedrock"),
        ("DERIVER_MODEL_CONFIG__MAX_OUTPUT_TOKENS", "0"),
        ("LLM_DEFAULT_MAX_TOKENS", "many"),
        ("DERIVER_MODEL_CONFIG__TEMPERATURE", "3"),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__BASE_URL",
            "localhost:11434",
        ),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS__TIMEOUT",
            "-1",
        ),
        (
            "DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS",
            r#"{"extra_body": {}}"#,
        ),
        ("DERIVER_MODEL_CONFIG__OVERRIDES__PROVIDER_PARAMS", "30"),
    ] {
        assert_eq!(with((name, value)), name, "{name}={value}");
    }
}

#[test]
fn every_setting_read_is_listed() {
    let names = setting_names();
    for feature in FEATURES {
        let read = RefCell::new(Vec::new());
        let _ = ModelSettings::from_lookup(feature, |name| {
            read.borrow_mut().push(name.to_owned());
            // Values that make every branch run: a model, a named key variable.
            match name {
                n if n.ends_with("__MODEL") => Some("m".to_owned()),
                n if n.ends_with("__API_KEY_ENV") => Some("NAMED".to_owned()),
                _ => None,
            }
        });
        for name in read.into_inner() {
            assert!(
                name == "NAMED" || names.contains(&name),
                "{name} is not in setting_names()"
            );
        }
    }
}

#[test]
fn debug_output_hides_the_key() {
    let s = settings(&[
        ("DERIVER_MODEL_CONFIG__MODEL", "m"),
        ("LLM_OPENAI_API_KEY", "sk-secret"),
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("sk-secret"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}
