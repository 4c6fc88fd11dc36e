//! The filter language of the reference (`filters` bodies), parsed into an engine-neutral
//! tree. Each store renders the tree into its own SQL; the parse is where every
//! validation rule and error message lives, so both engines reject the same inputs.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::time::Micros;

mod values;

use values::{document_depth, document_size, py_str, type_name};
pub use values::{json_text, like_pattern};

const MAX_DEPTH: usize = 5;
/// Bounds the SQL a filter can produce (bind parameters, nested subqueries), so an
/// oversized filter is a 422 rather than an engine error.
const MAX_WEIGHT: usize = 1000;
const MAX_DOCUMENT_DEPTH: usize = 6;
const OPERATORS: [&str; 8] = [
    "contains",
    "gt",
    "gte",
    "icontains",
    "in",
    "lt",
    "lte",
    "ne",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Workspace,
    Peer,
    Session,
    Message,
}

impl Resource {
    fn model(self) -> &'static str {
        match self {
            Resource::Workspace => "Workspace",
            Resource::Peer => "Peer",
            Resource::Session => "Session",
            Resource::Message => "Message",
        }
    }

    fn column(self, key: &str) -> Result<Column, Error> {
        let generic = match key {
            "id" => Some(Column::Name),
            "created_at" => Some(Column::CreatedAt),
            "is_active" => Some(Column::IsActive),
            "workspace_id" => Some(Column::WorkspaceName),
            "session_id" => Some(Column::SessionName),
            "peer_id" => Some(Column::PeerName),
            "metadata" => Some(Column::Metadata),
            "token_count" if self == Resource::Message => Some(Column::TokenCount),
            _ => None,
        };
        let allowed = match self {
            Resource::Workspace => &[Column::Name, Column::CreatedAt, Column::Metadata][..],
            Resource::Peer => &[
                Column::Name,
                Column::CreatedAt,
                Column::Metadata,
                Column::WorkspaceName,
            ],
            Resource::Session => &[
                Column::Name,
                Column::CreatedAt,
                Column::Metadata,
                Column::WorkspaceName,
                Column::IsActive,
            ],
            Resource::Message => &[
                Column::WorkspaceName,
                Column::SessionName,
                Column::PeerName,
                Column::TokenCount,
                Column::CreatedAt,
                Column::Metadata,
            ],
        };
        let model = self.model();
        match generic {
            Some(Column::Name) if self == Resource::Message => Err(not_allowed(key, model)),
            Some(c) if allowed.contains(&c) => Ok(c),
            Some(_) => Err(Error::Unprocessable(format!(
                "Column '{key}' does not exist on {model}"
            ))),
            None => Err(not_allowed(key, model)),
        }
    }
}

fn not_allowed(key: &str, model: &str) -> Error {
    Error::Unprocessable(format!(
        "Column '{key}' is not allowed to be filtered on or does not exist on {model}"
    ))
}

/// A filterable column, named by meaning; stores map each to their own expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Name,
    CreatedAt,
    IsActive,
    WorkspaceName,
    SessionName,
    PeerName,
    TokenCount,
    Metadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Time,
    Bool,
    Number,
    Json,
}

impl Column {
    fn kind(self) -> Kind {
        match self {
            Column::Name | Column::WorkspaceName | Column::SessionName | Column::PeerName => {
                Kind::Text
            }
            Column::CreatedAt => Kind::Time,
            Column::IsActive => Kind::Bool,
            Column::TokenCount => Kind::Number,
            Column::Metadata => Kind::Json,
        }
    }

    /// The reference's internal column name, which its error messages quote.
    fn internal(self) -> &'static str {
        match self {
            Column::Name => "name",
            Column::CreatedAt => "created_at",
            Column::IsActive => "is_active",
            Column::WorkspaceName => "workspace_name",
            Column::SessionName => "session_name",
            Column::PeerName => "peer_name",
            Column::TokenCount => "token_count",
            Column::Metadata => "h_metadata",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
    Time(Micros),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Cmp {
    pub fn sql(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ne => "<>",
            Cmp::Gt => ">",
            Cmp::Gte => ">=",
            Cmp::Lt => "<",
            Cmp::Lte => "<=",
        }
    }

    fn from_op(op: &str) -> Option<Cmp> {
        Some(match op {
            "gt" => Cmp::Gt,
            "gte" => Cmp::Gte,
            "lt" => Cmp::Lt,
            "lte" => Cmp::Lte,
            "ne" => Cmp::Ne,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    /// `cond IS NOT TRUE`: rows where the condition is false or unknown.
    NotTrue(Box<Filter>),
    IsNull(Column),
    NotNull(Column),
    /// Plain comparison; `Cmp::Ne` is never produced here (see `Distinct`).
    Compare(Column, Cmp, Scalar),
    /// `IS DISTINCT FROM`: rows whose column is NULL match too.
    Distinct(Column, Scalar),
    /// Membership; an empty list matches nothing.
    In(Column, Vec<Scalar>),
    /// Case-insensitive substring match on a text column.
    Contains(Column, String),
    /// JSON containment of a document, with PostgreSQL `@>` semantics.
    JsonContains(Column, Value),
    /// Numeric comparison of a JSON number at a top-level key.
    JsonNumber(Column, String, Cmp, f64),
    /// Text comparison of the text form of a top-level key.
    JsonText(Column, String, Cmp, String),
    JsonIn(Column, String, Vec<String>),
    JsonContainsText(Column, String, String),
}

/// Parses a `filters` object; `Ok(None)` means "no condition".
pub fn parse(resource: Resource, filters: &Value) -> Result<Option<Filter>, Error> {
    // Stored text never holds NUL (writes strip it), and PostgreSQL rejects it in any
    // bound string, so a filter loses its NUL bytes the same way before anything else.
    let filters = &crate::validate::strip_nul(filters.clone());
    let parsed = match filters {
        Value::Null => None,
        Value::Object(map) => conditions(resource, map, 0)?,
        _ => return Err(Error::Unprocessable("Invalid filter configuration".into())),
    };
    if parsed.as_ref().is_some_and(|f| weight(f) > MAX_WEIGHT) {
        return Err(Error::Unprocessable(format!(
            "Filter is too large: at most {MAX_WEIGHT} conditions and values are allowed"
        )));
    }
    Ok(parsed)
}

fn weight(f: &Filter) -> usize {
    match f {
        Filter::And(parts) | Filter::Or(parts) => 1 + parts.iter().map(weight).sum::<usize>(),
        Filter::NotTrue(inner) => 1 + weight(inner),
        Filter::In(_, values) => 1 + values.len(),
        Filter::JsonIn(_, _, values) => 1 + values.len(),
        Filter::JsonContains(_, doc) => document_size(doc),
        _ => 1,
    }
}

fn join(mut parts: Vec<Filter>, and: bool) -> Option<Filter> {
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ if and => Some(Filter::And(parts)),
        _ => Some(Filter::Or(parts)),
    }
}

fn conditions(
    resource: Resource,
    map: &Map<String, Value>,
    depth: usize,
) -> Result<Option<Filter>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::Unprocessable(format!(
            "Filter nesting exceeds maximum depth of {MAX_DEPTH}"
        )));
    }
    let mut out = Vec::new();
    for logical in ["AND", "OR", "NOT"] {
        let Some(value) = map.get(logical) else {
            continue;
        };
        if logical == "NOT" && value.is_null() {
            return Err(Error::Unprocessable("NOT operator cannot be None".into()));
        }
        let Value::Array(items) = value else {
            return Err(Error::Unprocessable(format!(
                "{logical} operator must contain a list, got {}",
                type_name(value)
            )));
        };
        let mut subs = Vec::new();
        for item in items {
            let Value::Object(sub) = item else {
                return Err(Error::Unprocessable("Invalid filter configuration".into()));
            };
            if let Some(c) = conditions(resource, sub, depth + 1)? {
                subs.push(c);
            }
        }
        let combined = match logical {
            "AND" => join(subs, true),
            "OR" => join(subs, false),
            _ => join(
                subs.into_iter()
                    .map(|c| Filter::NotTrue(Box::new(c)))
                    .collect(),
                true,
            ),
        };
        out.extend(combined);
    }
    for (key, value) in map {
        if matches!(key.as_str(), "AND" | "OR" | "NOT") {
            continue;
        }
        out.extend(field(resource, key, value)?);
    }
    Ok(join(out, true))
}

fn field(resource: Resource, key: &str, value: &Value) -> Result<Option<Filter>, Error> {
    let column = resource.column(key)?;
    if value == "*" {
        return Ok(None);
    }
    if value.is_null() {
        return Ok(Some(Filter::IsNull(column)));
    }
    let json = column.kind() == Kind::Json;
    match value {
        Value::Array(items) if !json => comparisons(
            column,
            &Map::from_iter([("in".to_string(), Value::Array(items.clone()))]),
        ),
        Value::Object(ops) if ops.keys().any(|k| OPERATORS.contains(&k.as_str())) => {
            comparisons(column, ops)
        }
        Value::Object(doc) if json => metadata_keys(column, doc),
        Value::Object(ops) => {
            let keys: Vec<Value> = ops.keys().map(|k| Value::String(k.clone())).collect();
            Err(Error::Unprocessable(format!(
                "Invalid filter for column '{key}': unsupported operator(s) {}. Expected one of {} or a scalar value.",
                py_str(&Value::Array(keys)),
                py_str(&Value::Array(
                    OPERATORS
                        .iter()
                        .map(|o| Value::String((*o).into()))
                        .collect()
                ))
            )))
        }
        other if json => Ok(Some(Filter::JsonContains(
            column,
            coerce_json(column, other, "")?,
        ))),
        other => Ok(Some(Filter::Compare(
            column,
            Cmp::Eq,
            coerce(column, other, "")?,
        ))),
    }
}

fn coerce_json(column: Column, value: &Value, op: &str) -> Result<Value, Error> {
    if matches!(op, "" | "contains") && matches!(value, Value::Object(_) | Value::Array(_)) {
        if document_depth(value) > MAX_DOCUMENT_DEPTH {
            return Err(Error::Unprocessable(format!(
                "Filter nesting exceeds maximum depth of {MAX_DEPTH}"
            )));
        }
        return Ok(value.clone());
    }
    Err(Error::Unprocessable(format!(
        "Invalid filter for column '{}': a JSONB column takes an object, optionally under 'contains'",
        column.internal()
    )))
}

fn coerce(column: Column, value: &Value, op: &str) -> Result<Scalar, Error> {
    let name = column.internal();
    let kind = column.kind();
    if matches!(op, "contains" | "icontains") {
        if kind != Kind::Text {
            let py = match kind {
                Kind::Time => "datetime",
                Kind::Bool => "bool",
                _ => "int",
            };
            return Err(Error::Unprocessable(format!(
                "Operator '{op}' requires a text column, but '{name}' is {py}"
            )));
        }
        return Ok(Scalar::Text(py_str(value)));
    }
    match kind {
        Kind::Bool => match value {
            Value::Bool(b) => Ok(Scalar::Bool(*b)),
            other => Err(Error::Unprocessable(format!(
                "Invalid value for column '{name}': expected true or false, got {}",
                type_name(other)
            ))),
        },
        Kind::Time => match value {
            Value::String(s) => crate::time::parse(s)
                .map(Scalar::Time)
                .ok_or_else(|| Error::Unprocessable(format!("Invalid datetime value: {s}"))),
            other => Err(Error::Unprocessable(format!(
                "Invalid value for column '{name}': expected a datetime, got {}",
                type_name(other)
            ))),
        },
        Kind::Number => {
            let number = match value {
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                _ => None,
            };
            number.map(Scalar::Number).ok_or_else(|| {
                Error::Unprocessable(format!(
                    "Invalid numeric value: {}. Expected a number, got {}",
                    py_str(value),
                    type_name(value)
                ))
            })
        }
        Kind::Text => match value {
            Value::String(s) => Ok(Scalar::Text(s.clone())),
            other => Err(Error::Unprocessable(format!(
                "Invalid value for column '{name}': expected a string, got {}",
                type_name(other)
            ))),
        },
        Kind::Json => Err(Error::Unprocessable(format!(
            "Column '{name}' cannot be filtered on"
        ))),
    }
}

fn comparisons(column: Column, ops: &Map<String, Value>) -> Result<Option<Filter>, Error> {
    let mut out = Vec::new();
    for (op, operand) in ops {
        if !OPERATORS.contains(&op.as_str()) {
            return Err(Error::Unprocessable(format!(
                "Unsupported comparison operator: {op}"
            )));
        }
        if operand == "*" {
            continue;
        }
        if operand.is_null() {
            if op != "ne" {
                return Err(Error::Unprocessable(format!(
                    "Operator '{op}' does not accept null. Use {{\"ne\": null}} for a not-null check, or null on its own for a null check."
                )));
            }
            out.push(Filter::NotNull(column));
            continue;
        }
        if column.kind() == Kind::Json {
            if op == "in" {
                return Err(invalid_in(operand)
                    .unwrap_or_else(|| coerce_json(column, operand, op).unwrap_err()));
            }
            out.push(Filter::JsonContains(
                column,
                coerce_json(column, operand, op)?,
            ));
            continue;
        }
        let filter = match op.as_str() {
            "in" => {
                let Value::Array(items) = operand else {
                    return Err(invalid_in(operand).expect("non-list operand"));
                };
                if items.iter().any(|v| v == "*") {
                    continue;
                }
                let values = items
                    .iter()
                    .map(|v| coerce(column, v, op))
                    .collect::<Result<_, _>>()?;
                Filter::In(column, values)
            }
            "contains" | "icontains" => match coerce(column, operand, op)? {
                Scalar::Text(s) => Filter::Contains(column, s),
                _ => unreachable!("coerce returns text for contains"),
            },
            "ne" => Filter::Distinct(column, coerce(column, operand, op)?),
            other => {
                let cmp = Cmp::from_op(other).expect("validated operator");
                Filter::Compare(column, cmp, coerce(column, operand, op)?)
            }
        };
        out.push(filter);
    }
    Ok(join(out, true))
}

fn invalid_in(operand: &Value) -> Option<Error> {
    (!operand.is_array()).then(|| {
        Error::Unprocessable(format!(
            "Invalid value for 'in' operator: {}. Expected an iterable (list, tuple, set), got {}",
            py_str(operand),
            type_name(operand)
        ))
    })
}

fn metadata_keys(column: Column, doc: &Map<String, Value>) -> Result<Option<Filter>, Error> {
    let mut out = Vec::new();
    for (key, value) in doc {
        match value {
            Value::Object(ops) if ops.keys().any(|k| OPERATORS.contains(&k.as_str())) => {
                for (op, operand) in ops {
                    out.extend(json_key_op(column, key, op, operand)?);
                }
            }
            v if v == "*" => {}
            v => {
                let mut single = Map::new();
                single.insert(key.clone(), v.clone());
                let doc = coerce_json(column, &Value::Object(single), "")?;
                out.push(Filter::JsonContains(column, doc));
            }
        }
    }
    Ok(join(out, true))
}

fn json_key_op(
    column: Column,
    key: &str,
    op: &str,
    operand: &Value,
) -> Result<Option<Filter>, Error> {
    if !OPERATORS.contains(&op) {
        return Err(Error::Unprocessable(format!(
            "Unsupported comparison operator: {op}"
        )));
    }
    if operand == "*" {
        return Ok(None);
    }
    let key = key.to_string();
    if let Some(cmp) = Cmp::from_op(op) {
        return Ok(Some(match operand {
            Value::Bool(b) => Filter::JsonText(column, key, cmp, b.to_string()),
            Value::Number(n) => {
                Filter::JsonNumber(column, key, cmp, n.as_f64().unwrap_or(f64::NAN))
            }
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Filter::JsonNumber(column, key, cmp, f),
                _ => Filter::JsonText(column, key, cmp, s.clone()),
            },
            other => {
                return Err(Error::Unprocessable(format!(
                    "Invalid value for numeric operator: {}. Expected a number, got {}",
                    py_str(other),
                    type_name(other)
                )));
            }
        }));
    }
    match op {
        "in" => {
            let Value::Array(items) = operand else {
                return Err(invalid_in(operand).expect("non-list operand"));
            };
            if items.iter().any(|v| v == "*") {
                return Ok(None);
            }
            Ok(Some(Filter::JsonIn(
                column,
                key,
                items.iter().map(json_text).collect(),
            )))
        }
        _ => Ok(Some(Filter::JsonContainsText(column, key, py_str(operand)))),
    }
}

#[cfg(test)]
mod tests;
