//! Helpers for operand values: JSON type names and Python-style renderings used in
//! the reference's error messages, document shape measures, and LIKE patterns.

use serde_json::Value;

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Python's `str()` of a JSON value, for error messages the reference formats that way.
pub(super) fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => py_str(other),
    }
}

pub(super) fn document_size(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(document_size).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(document_size).sum::<usize>(),
        _ => 1,
    }
}

pub(super) fn document_depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(document_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(document_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The text a JSON scalar has under PostgreSQL's `->>`.
pub fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_pattern(needle: &str) -> String {
    let mut out = String::with_capacity(needle.len() + 2);
    out.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}
