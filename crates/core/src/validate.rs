//! Input rules shared by every route, with the reference's error types and messages.

use serde_json::{Value, json};

use crate::error::FieldError;
use crate::model::Json;

pub const NAME_MAX: usize = 512;
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9_-]+$";
pub const METADATA_MAX_KEYS: usize = 100;
pub const METADATA_MAX_DEPTH: usize = 5;
pub const MESSAGE_MAX_CHARS: usize = 25_000;
pub const BATCH_MAX: usize = 100;
pub const SESSION_OBSERVERS_LIMIT: usize = 10;
pub const CONTEXT_MAX_TOKENS: i64 = 100_000;

/// Rows the context walk reads per round, newest first: small budgets are met by the first
/// round without reading rows they will not use, large ones double their way up.
pub fn context_chunks() -> impl Iterator<Item = i64> {
    std::iter::successors(Some(64), |&n| Some((n * 2).min(4096)))
}

pub fn loc(parts: &[&str]) -> Vec<Value> {
    parts
        .iter()
        .map(|p| Value::String((*p).to_string()))
        .collect()
}

/// Checks a user-chosen resource name (workspace, peer, session) on creation.
pub fn name(value: &str, at: Vec<Value>) -> Result<(), FieldError> {
    let chars = value.chars().count();
    if chars < 1 {
        return Err(FieldError::new(
            "string_too_short",
            at,
            "String should have at least 1 character",
            json!(value),
        )
        .with_ctx(json!({"min_length": 1})));
    }
    if chars > NAME_MAX {
        return Err(FieldError::new(
            "string_too_long",
            at,
            format!("String should have at most {NAME_MAX} characters"),
            json!(value),
        )
        .with_ctx(json!({"max_length": NAME_MAX})));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(FieldError::new(
            "string_pattern_mismatch",
            at,
            format!("String should match pattern '{NAME_PATTERN}'"),
            json!(value),
        )
        .with_ctx(json!({"pattern": NAME_PATTERN})));
    }
    Ok(())
}

/// Validates a metadata object (key count, depth) and strips NUL bytes from
/// every key and string value, as the reference does before storing.
pub fn metadata(value: &Value, at: Vec<Value>) -> Result<Json, FieldError> {
    let Value::Object(map) = value else {
        return Err(dict_type(at, value));
    };
    if let Some(msg) = limits(map, 1) {
        return Err(FieldError::new(
            "value_error",
            at,
            format!("Value error, {msg}"),
            value.clone(),
        )
        .with_ctx(json!({"error": msg})));
    }
    match canonical(value.clone()) {
        Value::Object(m) => Ok(m),
        _ => unreachable!("stripping NUL bytes keeps an object an object"),
    }
}

fn limits(map: &Json, depth: usize) -> Option<String> {
    if depth > METADATA_MAX_DEPTH {
        return Some(format!(
            "Metadata nesting exceeds maximum depth of {METADATA_MAX_DEPTH}"
        ));
    }
    if depth == 1 && map.len() > METADATA_MAX_KEYS {
        return Some(format!(
            "Metadata exceeds maximum of {METADATA_MAX_KEYS} top-level keys"
        ));
    }
    map.values().find_map(|v| match v {
        Value::Object(inner) => limits(inner, depth + 1),
        _ => None,
    })
}

/// Checks peer names that a write would create implicitly (message authors, session
/// member maps, peer paths), with the reference's messages.
pub fn new_peer_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), crate::Error> {
    let names: Vec<&str> = names.into_iter().collect();
    if names.iter().any(|n| n.contains('\0')) {
        return Err(crate::Error::Unprocessable(
            "Peer name(s) must not contain NUL (0x00) bytes".into(),
        ));
    }
    let listed = |pick: &dyn Fn(&str) -> bool| -> Option<String> {
        let mut bad: Vec<&str> = names.iter().copied().filter(|n| pick(n)).collect();
        bad.sort_unstable();
        bad.dedup();
        (!bad.is_empty()).then(|| {
            format!(
                "[{}]",
                bad.iter()
                    .map(|n| format!("'{n}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    };
    if let Some(list) = listed(&|n| n.chars().count() > NAME_MAX) {
        return Err(crate::Error::Unprocessable(format!(
            "Peer name(s) {list} must be at most {NAME_MAX} characters"
        )));
    }
    if let Some(list) = listed(&|n| {
        n.is_empty()
            || !n
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }) {
        return Err(crate::Error::Unprocessable(format!(
            "Peer name(s) {list} must match pattern {NAME_PATTERN}"
        )));
    }
    Ok(())
}

/// NUL bytes stripped and object keys in PostgreSQL `jsonb` order (shorter keys first,
/// then bytewise), so stored JSON reads back identically on both engines.
pub fn canonical(value: Value) -> Value {
    match strip_nul(value) {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> =
                map.into_iter().map(|(k, v)| (k, canonical(v))).collect();
            entries.sort_by(|(a, _), (b, _)| {
                a.len()
                    .cmp(&b.len())
                    .then_with(|| a.as_bytes().cmp(b.as_bytes()))
            });
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

pub fn strip_nul(value: Value) -> Value {
    match value {
        Value::String(s) if s.contains('\0') => Value::String(s.replace('\0', "")),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', ""), strip_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

pub fn dict_type(at: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new(
        "dict_type",
        at,
        "Input should be a valid dictionary",
        input.clone(),
    )
}

pub fn string_type(at: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new(
        "string_type",
        at,
        "Input should be a valid string",
        input.clone(),
    )
}

pub fn bool_type(at: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new(
        "bool_type",
        at,
        "Input should be a valid boolean",
        input.clone(),
    )
}

pub fn list_type(at: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new(
        "list_type",
        at,
        "Input should be a valid list",
        input.clone(),
    )
}

pub fn missing(at: Vec<Value>, input: &Value) -> FieldError {
    FieldError::new("missing", at, "Field required", input.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("ok_Name-1", loc(&["body", "id"])).is_ok());
        assert_eq!(name("", vec![]).unwrap_err().kind, "string_too_short");
        assert_eq!(
            name(&"a".repeat(513), vec![]).unwrap_err().kind,
            "string_too_long"
        );
        assert!(name(&"a".repeat(512), vec![]).is_ok());
        assert_eq!(
            name("a.b", vec![]).unwrap_err().kind,
            "string_pattern_mismatch"
        );
    }

    #[test]
    fn implicit_peer_names() {
        assert!(new_peer_names(["a", "b_c-1"]).is_ok());
        let e = new_peer_names(["x.y", "bad name", "x.y"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Peer name(s) ['bad name', 'x.y'] must match pattern ^[a-zA-Z0-9_-]+$"
        );
        assert!(new_peer_names([""]).is_err());
    }

    #[test]
    fn metadata_limits_and_nul() {
        let deep = json!({"a": {"b": {"c": {"d": {"e": 1}}}}});
        assert!(metadata(&deep, vec![]).is_ok());
        let too_deep = json!({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}});
        let e = metadata(&too_deep, vec![]).unwrap_err();
        assert_eq!(
            e.msg,
            "Value error, Metadata nesting exceeds maximum depth of 5"
        );
        let many: Json = (0..101).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(metadata(&Value::Object(many), vec![]).is_err());
        let ordered = metadata(&json!({"zz": 1, "b": {"yy": 1, "a": 2}, "a": 3}), vec![]).unwrap();
        assert_eq!(
            serde_json::to_string(&ordered).unwrap(),
            r#"{"a":3,"b":{"a":2,"yy":1},"zz":1}"#
        );
        let cleaned = metadata(&json!({"a\u{0}": ["x\u{0}y"]}), vec![]).unwrap();
        assert_eq!(Value::Object(cleaned), json!({"a": ["xy"]}));
        assert_eq!(metadata(&json!([1]), vec![]).unwrap_err().kind, "dict_type");
    }
}
