//! Request parsing with the reference's validation errors. Bodies are read as JSON
//! values and checked field by field, so every violation is reported the way
//! pydantic reports it (type, loc, msg, input) and nothing is half-applied.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use engram_core::model::{Json, PageRequest, SessionPeerConfig};
use engram_core::validate::{self, loc};
use engram_core::{Error, FieldError};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The raw JSON body; `None` when the request had no body at all.
pub struct Body(pub Option<Value>);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::PayloadTooLarge("Request body too large".into()))
            } else {
                ApiError(Error::BadRequest("Could not read the request body".into()))
            }
        })?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Body(None));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Ok(Body(Some(v))),
            Err(e) => {
                let position = byte_offset(&bytes, e.line(), e.column());
                Err(FieldError::new(
                    "json_invalid",
                    vec![json!("body"), json!(position)],
                    "JSON decode error",
                    json!({}),
                )
                .with_ctx(json!({"error": e.to_string()}))
                .into())
            }
        }
    }
}

fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in bytes.split(|b| *b == b'\n').enumerate() {
        if i + 1 == line {
            return offset + column.saturating_sub(1);
        }
        offset += l.len() + 1;
    }
    offset
}

/// Field-by-field reader over a JSON object body that collects every error.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Fields<'a> {
    /// A body that must be present (`required`) or may be absent (treated as `{}`).
    pub fn of(body: &'a Option<Value>, required: bool) -> Result<Fields<'a>, ApiError> {
        match body {
            Some(Value::Object(map)) => Ok(Fields {
                map,
                errors: vec![],
            }),
            None | Some(Value::Null) if !required => Ok(Fields {
                map: &EMPTY,
                errors: vec![],
            }),
            None | Some(Value::Null) => Err(validate::missing(loc(&["body"]), &Value::Null).into()),
            Some(other) => Err(FieldError::new(
                "model_attributes_type",
                loc(&["body"]),
                "Input should be a valid dictionary or object to extract fields from",
                other.clone(),
            )
            .into()),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn body(&self) -> Value {
        Value::Object(self.map.clone())
    }

    /// The first of `keys` the body has: a field under its alias or its own name, as
    /// pydantic's `populate_by_name` reads it (the alias wins when both are sent).
    pub fn aliased(&self, keys: &[&'static str]) -> Option<(&'static str, &'a Value)> {
        keys.iter().find_map(|k| self.get(k).map(|v| (*k, v)))
    }

    /// A required resource name under `id` (or its field name `name`); errors name the
    /// key the client sent.
    pub fn name(&mut self) -> Option<String> {
        match self.aliased(&["id", "name"]) {
            None => {
                self.errors
                    .push(validate::missing(loc(&["body", "id"]), &self.body()));
                None
            }
            Some((key, Value::String(s))) => match validate::name(s, loc(&["body", key])) {
                Ok(()) => Some(s.clone()),
                Err(e) => {
                    self.errors.push(e);
                    None
                }
            },
            Some((key, other)) => {
                self.errors
                    .push(validate::string_type(loc(&["body", key]), other));
                None
            }
        }
    }

    /// Optional metadata: absent or null means "unchanged".
    pub fn metadata(&mut self, key: &str) -> Option<Json> {
        match self.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match validate::metadata(v, loc(&["body", key])) {
                Ok(m) => Some(m),
                Err(e) => {
                    self.errors.push(e);
                    None
                }
            },
        }
    }

    /// Optional free-form object: absent or null means "unchanged".
    pub fn object(&mut self, key: &str) -> Option<Json> {
        match self.get(key) {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => match validate::canonical(v.clone()) {
                Value::Object(m) => Some(m),
                _ => None,
            },
            Some(other) => {
                self.errors
                    .push(validate::dict_type(loc(&["body", key]), other));
                None
            }
        }
    }

    /// A workspace or session `configuration`, checked and normalised.
    pub fn configuration(&mut self, key: &str) -> Option<Json> {
        match self.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match engram_core::configuration::parse(v, loc(&["body", key]), false) {
                Ok(m) => Some(m),
                Err(mut e) => {
                    self.errors.append(&mut e);
                    None
                }
            },
        }
    }

    /// The `filters` object of list bodies.
    pub fn filters(&mut self) -> Option<Value> {
        match self.get("filters") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) => Some(v.clone()),
            Some(other) => {
                self.errors
                    .push(validate::dict_type(loc(&["body", "filters"]), other));
                None
            }
        }
    }

    pub fn optional_string(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.errors
                    .push(validate::string_type(loc(&["body", key]), other));
                None
            }
        }
    }

    /// A required string (NUL bytes stripped, as the reference's sanitisers do).
    pub fn required_string(&mut self, key: &str) -> Option<String> {
        match self.get(key) {
            None => {
                self.errors
                    .push(validate::missing(loc(&["body", key]), &self.body()));
                None
            }
            Some(Value::String(s)) => Some(s.replace('\0', "")),
            Some(other) => {
                self.errors
                    .push(validate::string_type(loc(&["body", key]), other));
                None
            }
        }
    }

    /// An integer field read with pydantic's lax JSON rules (whole floats, numeric
    /// strings and booleans are integers), bounded to `min..=max`.
    pub fn int(&mut self, key: &str, default: i64, min: i64, max: i64) -> Option<i64> {
        let at = loc(&["body", key]);
        let Some(value) = self.get(key) else {
            return Some(default);
        };
        let parsed = match value {
            Value::Bool(b) => Ok(i64::from(*b)),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Ok(i),
                (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => Ok(f as i64),
                _ => Err(FieldError::new(
                    "int_from_float",
                    at.clone(),
                    "Input should be a valid integer, got a number with a fractional part",
                    value.clone(),
                )),
            },
            Value::String(s) => s.trim().parse::<i64>().map_err(|_| {
                FieldError::new(
                    "int_parsing",
                    at.clone(),
                    "Input should be a valid integer, unable to parse string as an integer",
                    value.clone(),
                )
            }),
            other => Err(FieldError::new(
                "int_type",
                at.clone(),
                "Input should be a valid integer",
                other.clone(),
            )),
        };
        let checked = parsed.and_then(|n| {
            if n < min {
                Err(FieldError::new(
                    "greater_than_equal",
                    at.clone(),
                    format!("Input should be greater than or equal to {min}"),
                    value.clone(),
                )
                .with_ctx(json!({"ge": min})))
            } else if n > max {
                Err(FieldError::new(
                    "less_than_equal",
                    at.clone(),
                    format!("Input should be less than or equal to {max}"),
                    value.clone(),
                )
                .with_ctx(json!({"le": max})))
            } else {
                Ok(n)
            }
        });
        match checked {
            Ok(n) => Some(n),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// A `{peer_id: SessionPeerConfig}` map at `key` (or the whole body when `key` is empty).
    pub fn peer_map(&mut self, key: &str) -> Option<Vec<(String, SessionPeerConfig)>> {
        let (value, base) = if key.is_empty() {
            (Some(self.map), vec![json!("body")])
        } else {
            match self.get(key) {
                None | Some(Value::Null) => return None,
                Some(Value::Object(m)) => (Some(m), loc(&["body", key])),
                Some(other) => {
                    self.errors
                        .push(validate::dict_type(loc(&["body", key]), other));
                    return None;
                }
            }
        };
        let map = value?;
        let mut out = Vec::with_capacity(map.len());
        for (peer, config) in map {
            let mut at = base.clone();
            at.push(json!(peer));
            match peer_config(config, at) {
                Ok(c) => out.push((peer.clone(), c)),
                Err(mut e) => self.errors.append(&mut e),
            }
        }
        Some(out)
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors.into())
        }
    }
}

/// Parses a `SessionPeerConfig` object; unknown keys are ignored as the reference does.
pub fn peer_config(value: &Value, at: Vec<Value>) -> Result<SessionPeerConfig, Vec<FieldError>> {
    let Value::Object(map) = value else {
        return Err(vec![
            FieldError::new(
                "model_type",
                at,
                "Input should be a valid dictionary or instance of SessionPeerConfig",
                value.clone(),
            )
            .with_ctx(json!({"class_name": "SessionPeerConfig"})),
        ]);
    };
    let mut errors = vec![];
    let mut flag = |key: &str| -> Option<bool> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => match parse_bool(v) {
                Some(b) => Some(b),
                None => {
                    let mut l = at.clone();
                    l.push(json!(key));
                    errors.push(FieldError::new(
                        "bool_parsing",
                        l,
                        "Input should be a valid boolean, unable to interpret input",
                        v.clone(),
                    ));
                    None
                }
            },
        }
    };
    let config = SessionPeerConfig {
        observe_me: flag("observe_me"),
        observe_others: flag("observe_others"),
    };
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// pydantic's lax boolean: JSON booleans, 0/1 and the usual words.
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) if n.as_f64() == Some(1.0) => Some(true),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(false),
        Value::String(s) => parse_bool_str(s),
        _ => None,
    }
}

fn parse_bool_str(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
        _ => None,
    }
}

/// Query-string parameters, checked like FastAPI checks them.
pub struct Params(HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(map) = Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError(Error::BadRequest(e.body_text())))?;
        Ok(Params(map))
    }
}

impl Params {
    pub fn string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    pub fn int(
        &self,
        key: &str,
        default: i64,
        min: Option<i64>,
        max: Option<i64>,
    ) -> Result<i64, FieldError> {
        let Some(raw) = self.0.get(key) else {
            return Ok(default);
        };
        let at = loc(&["query", key]);
        let n: i64 = raw.trim().parse().map_err(|_| {
            FieldError::new(
                "int_parsing",
                at.clone(),
                "Input should be a valid integer, unable to parse string as an integer",
                json!(raw),
            )
        })?;
        if let Some(min) = min.filter(|m| n < *m) {
            return Err(FieldError::new(
                "greater_than_equal",
                at,
                format!("Input should be greater than or equal to {min}"),
                json!(raw),
            )
            .with_ctx(json!({"ge": min})));
        }
        if let Some(max) = max.filter(|m| n > *m) {
            return Err(FieldError::new(
                "less_than_equal",
                at,
                format!("Input should be less than or equal to {max}"),
                json!(raw),
            )
            .with_ctx(json!({"le": max})));
        }
        Ok(n)
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool, FieldError> {
        let Some(raw) = self.0.get(key) else {
            return Ok(default);
        };
        parse_bool_str(raw).ok_or_else(|| {
            FieldError::new(
                "bool_parsing",
                loc(&["query", key]),
                "Input should be a valid boolean, unable to interpret input",
                json!(raw),
            )
        })
    }

    /// `page`, `size` and `reverse`, with every violation reported together.
    pub fn paging(&self) -> Result<(PageRequest, bool), ApiError> {
        let page = self.int("page", 1, Some(1), None);
        let size = self.int("size", 50, Some(1), Some(100));
        let reverse = self.bool("reverse", false);
        match (page, size, reverse) {
            (Ok(page), Ok(size), Ok(reverse)) => Ok((PageRequest { page, size }, reverse)),
            (p, s, r) => Err([p.err(), s.err(), r.err()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .into()),
        }
    }
}

/// Rejects implicitly created peer names the way the reference does (a 422 string).
pub fn peer_names(members: &[(String, SessionPeerConfig)]) -> Result<(), ApiError> {
    validate::new_peer_names(members.iter().map(|(name, _)| name.as_str())).map_err(ApiError::from)
}

/// Checks a name taken from the path before it can create a resource.
pub fn path_name(value: &str, param: &str) -> Result<(), ApiError> {
    validate::name(value, loc(&["path", param])).map_err(ApiError::from)
}

/// Rejects `%00` anywhere in the path or query: names and ids never contain NUL, and
/// PostgreSQL cannot bind it, so such a request could only fail later and worse.
pub async fn reject_nul_bytes(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    let has_nul = |s: &str| {
        s.as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0')
    };
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError(Error::Unprocessable(
            "Path and query parameters must not contain NUL (0x00) bytes".into(),
        ))
        .into_response();
    }
    next.run(req).await
}
