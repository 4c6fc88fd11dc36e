//! Checking structured output against the JSON schema it was asked to follow.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{LlmError, excerpt};

/// A JSON schema for a model's answer, compiled once. `name` identifies it to providers
/// (OpenAI accepts only letters, digits, `_` and `-`) and in errors.
#[derive(Clone)]
pub struct OutputSchema {
    name: String,
    schema: Value,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for OutputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSchema")
            .field("name", &self.name)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl OutputSchema {
    pub fn new(name: impl Into<String>, schema: Value) -> Result<Self, LlmError> {
        let name = name.into();
        let validator =
            jsonschema::validator_for(&schema).map_err(|e| LlmError::InvalidSchema {
                schema: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            name,
            schema,
            validator: Arc::new(validator),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Parses `raw` and checks it against the schema. One repair only: a reply wrapped
    /// in a Markdown code fence (which models add even in JSON mode) is unwrapped.
    /// Anything else that does not parse or validate is an error with a bounded excerpt.
    pub fn check(&self, raw: &str) -> Result<Value, LlmError> {
        let value: Value =
            serde_json::from_str(unfence(raw)).map_err(|e| LlmError::InvalidJson {
                reason: e.to_string(),
                excerpt: excerpt(raw),
            })?;
        let errors: Vec<String> = self
            .validator
            .iter_errors(&value)
            .take(3)
            .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
            .collect();
        if errors.is_empty() {
            Ok(value)
        } else {
            Err(LlmError::SchemaViolation {
                schema: self.name.clone(),
                reason: excerpt(&errors.join("; ")),
                excerpt: excerpt(raw),
            })
        }
    }
}

fn unfence(raw: &str) -> &str {
    let trimmed = raw.trim();
    let Some(body) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    let Some(body) = body.strip_suffix("```") else {
        return trimmed;
    };
    // The fence's info string (`json`) runs to the first line break.
    body.split_once('\n').map_or(body, |(_, rest)| rest).trim()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn facts() -> OutputSchema {
        OutputSchema::new(
            "facts",
            json!({
                "type": "object",
                "properties": {"explicit": {"type": "array", "items": {"type": "string"}}},
                "required": ["explicit"]
            }),
        )
        .unwrap()
    }

    #[test]
    fn accepts_valid_output_and_a_fenced_one() {
        let s = facts();
        assert_eq!(
            s.check(r#"{"explicit": ["a"]}"#).unwrap(),
            json!({"explicit": ["a"]})
        );
        assert_eq!(
            s.check("```json\n{\"explicit\": []}\n```").unwrap(),
            json!({"explicit": []})
        );
    }

    #[test]
    fn rejects_invalid_json_with_a_bounded_excerpt() {
        let raw = format!("Sure! Here are the facts: {}", "x".repeat(2000));
        let e = facts().check(&raw).unwrap_err();
        assert!(matches!(e, LlmError::InvalidJson { .. }), "{e:?}");
        let kept = e.excerpt().unwrap();
        assert!(kept.starts_with("Sure! Here are the facts"));
        assert!(kept.chars().count() <= crate::error::EXCERPT_CHARS + 1);
    }

    #[test]
    fn rejects_output_violating_the_schema() {
        let e = facts().check(r#"{"explicit": [1]}"#).unwrap_err();
        let LlmError::SchemaViolation { schema, reason, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(schema, "facts");
        assert!(reason.contains("/explicit/0"), "{reason}");
        assert!(facts().check(r#"{"other": []}"#).is_err());
    }

    #[test]
    fn an_invalid_schema_is_refused_up_front() {
        let e = OutputSchema::new("bad", json!({"type": 5})).unwrap_err();
        assert!(matches!(e, LlmError::InvalidSchema { .. }), "{e:?}");
    }
}
