//! Workspace, session and message `configuration` objects. Known sections are checked
//! and normalised as the reference's models do (lax booleans and integers, bounds,
//! unknown keys inside a section dropped, nulls removed); unknown top-level keys are
//! kept, since the reference allows extra keys there.

use serde_json::{Map, Value, json};

use crate::error::FieldError;
use crate::model::Json;

pub const CUSTOM_INSTRUCTIONS_MAX_TOKENS: i64 = 2000;

#[derive(Clone, Copy)]
enum Field {
    Bool,
    Text,
    IntAtLeast(i64),
}

fn section(name: &str) -> Option<(&'static str, &'static [(&'static str, Field)])> {
    Some(match name {
        "reasoning" => (
            "ReasoningConfiguration",
            &[
                ("enabled", Field::Bool),
                ("custom_instructions", Field::Text),
            ],
        ),
        "peer_card" => (
            "PeerCardConfiguration",
            &[("use", Field::Bool), ("create", Field::Bool)],
        ),
        "summary" => (
            "SummaryConfiguration",
            &[
                ("enabled", Field::Bool),
                ("messages_per_short_summary", Field::IntAtLeast(10)),
                ("messages_per_long_summary", Field::IntAtLeast(20)),
            ],
        ),
        "dream" => ("DreamConfiguration", &[("enabled", Field::Bool)]),
        _ => return None,
    })
}

fn at(base: &[Value], parts: &[&str]) -> Vec<Value> {
    let mut l = base.to_vec();
    l.extend(parts.iter().map(|p| json!(p)));
    l
}

fn lax_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn lax_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn field(
    kind: Field,
    value: &Value,
    loc: Vec<Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    match kind {
        Field::Bool => lax_bool(value).map(Value::Bool).or_else(|| {
            errors.push(FieldError::new(
                "bool_parsing",
                loc,
                "Input should be a valid boolean, unable to interpret input",
                value.clone(),
            ));
            None
        }),
        Field::Text => match value {
            Value::String(s) if crate::tokens::count(s) > CUSTOM_INSTRUCTIONS_MAX_TOKENS => {
                let msg = format!(
                    "custom_instructions exceeds DERIVER.MAX_CUSTOM_INSTRUCTIONS_TOKENS ({CUSTOM_INSTRUCTIONS_MAX_TOKENS} tokens)"
                );
                errors.push(
                    FieldError::new(
                        "value_error",
                        loc,
                        format!("Value error, {msg}"),
                        value.clone(),
                    )
                    .with_ctx(json!({"error": msg})),
                );
                None
            }
            Value::String(s) => Some(Value::String(s.replace('\0', ""))),
            other => {
                errors.push(crate::validate::string_type(loc, other));
                None
            }
        },
        Field::IntAtLeast(min) => match lax_int(value) {
            Some(n) if n >= min => Some(json!(n)),
            Some(_) => {
                errors.push(
                    FieldError::new(
                        "greater_than_equal",
                        loc,
                        format!("Input should be greater than or equal to {min}"),
                        value.clone(),
                    )
                    .with_ctx(json!({"ge": min})),
                );
                None
            }
            None => {
                errors.push(FieldError::new(
                    "int_parsing",
                    loc,
                    "Input should be a valid integer, unable to parse string as an integer",
                    value.clone(),
                ));
                None
            }
        },
    }
}

/// Checks one configuration object found at `loc`. `message` restricts the known
/// sections to `reasoning` and drops everything else, as `MessageConfiguration` does.
pub fn parse(value: &Value, loc: Vec<Value>, message: bool) -> Result<Json, Vec<FieldError>> {
    let Value::Object(map) = value else {
        return Err(vec![crate::validate::dict_type(loc, value)]);
    };
    let mut errors = Vec::new();
    let mut out = Map::new();
    for (key, v) in map {
        let known = section(key).filter(|_| !message || key == "reasoning");
        match (known, v) {
            (_, Value::Null) => {}
            (None, _) if message => {}
            (None, other) => {
                out.insert(key.clone(), crate::validate::strip_nul(other.clone()));
            }
            (Some((_, fields)), Value::Object(inner)) => {
                let mut normalised = Map::new();
                for (name, kind) in fields {
                    match inner.get(*name) {
                        None | Some(Value::Null) => {}
                        Some(fv) => {
                            if let Some(ok) = field(*kind, fv, at(&loc, &[key, name]), &mut errors)
                            {
                                normalised.insert((*name).to_string(), ok);
                            }
                        }
                    }
                }
                let short = normalised
                    .get("messages_per_short_summary")
                    .and_then(Value::as_i64);
                let long = normalised
                    .get("messages_per_long_summary")
                    .and_then(Value::as_i64);
                if let (Some(s), Some(l)) = (short, long)
                    && s >= l
                {
                    let msg =
                        "messages_per_short_summary must be less than messages_per_long_summary";
                    errors.push(
                        FieldError::new(
                            "value_error",
                            at(&loc, &[key]),
                            format!("Value error, {msg}"),
                            v.clone(),
                        )
                        .with_ctx(json!({"error": msg})),
                    );
                }
                out.insert(key.clone(), Value::Object(normalised));
            }
            (Some((class, _)), other) => errors.push(
                FieldError::new(
                    "model_type",
                    at(&loc, &[key]),
                    format!("Input should be a valid dictionary or instance of {class}"),
                    other.clone(),
                )
                .with_ctx(json!({"class_name": class})),
            ),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    match crate::validate::canonical(Value::Object(out)) {
        Value::Object(m) => Ok(m),
        _ => unreachable!("canonical keeps an object an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_known_sections_and_keeps_extra_keys() {
        let v = json!({"summary": {"enabled": "true", "messages_per_short_summary": 15, "junk": 1}, "custom": {"x": null}, "dream": null});
        let out = parse(&v, vec![], false).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({"custom": {"x": null}, "summary": {"enabled": true, "messages_per_short_summary": 15}})
        );
    }

    #[test]
    fn rejects_bad_values_like_the_reference() {
        let e = parse(
            &json!({"summary": {"messages_per_short_summary": 5}}),
            vec![json!("body")],
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].kind, "greater_than_equal");
        assert_eq!(
            e[0].loc,
            vec![
                json!("body"),
                json!("summary"),
                json!("messages_per_short_summary")
            ]
        );
        let e = parse(&json!({"summary": {"messages_per_short_summary": 30, "messages_per_long_summary": 20}}), vec![], false).unwrap_err();
        assert_eq!(
            e[0].msg,
            "Value error, messages_per_short_summary must be less than messages_per_long_summary"
        );
        let e = parse(&json!({"reasoning": 3}), vec![], false).unwrap_err();
        assert_eq!(e[0].kind, "model_type");
        assert_eq!(
            parse(&json!([]), vec![], false).unwrap_err()[0].kind,
            "dict_type"
        );
    }

    #[test]
    fn message_configuration_keeps_only_reasoning() {
        let out = parse(
            &json!({"reasoning": {"enabled": false}, "summary": {"enabled": true}, "x": 1}),
            vec![],
            true,
        )
        .unwrap();
        assert_eq!(Value::Object(out), json!({"reasoning": {"enabled": false}}));
    }
}
