//! Renders a `Filter` into a SQL condition. The tree walk is shared; the few places the
//! engines differ (placeholders, JSON access, case-insensitive matching) sit behind
//! `Dialect`, so a rule change reaches both engines at once.

use serde_json::Value;

use crate::filter::{Cmp, Column, Filter, Scalar, like_pattern};

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Json(Value),
}

pub trait Dialect {
    /// SQL expression for a column of the row being filtered.
    fn column(&self, column: Column) -> String;
    /// Registers a bound value and returns its placeholder.
    fn bind(&mut self, value: Bind) -> String;
    /// Condition: `doc` is contained in the JSON column `expr` (PostgreSQL `@>`).
    fn json_contains(&mut self, expr: &str, doc: &Value) -> String;
    /// Numeric value at a top-level key, or NULL when it is not a JSON number.
    fn json_number(&mut self, expr: &str, key: &str) -> String;
    /// Text form of a top-level key (`->>`), or NULL when absent.
    fn json_text(&mut self, expr: &str, key: &str) -> String;
    /// Case-insensitive `LIKE` with `\` as the escape character.
    fn ilike(&self, expr: &str, pattern: &str) -> String;
    /// Text comparison with byte-order collation.
    fn text_compare(&self, left: &str, cmp: Cmp, right: &str) -> String;
}

pub fn render(filter: &Filter, d: &mut impl Dialect) -> String {
    match filter {
        Filter::And(parts) => group(parts, " AND ", d),
        Filter::Or(parts) => group(parts, " OR ", d),
        Filter::NotTrue(inner) => format!("(({}) IS NOT TRUE)", render(inner, d)),
        Filter::IsNull(c) => format!("({} IS NULL)", d.column(*c)),
        Filter::NotNull(c) => format!("({} IS NOT NULL)", d.column(*c)),
        Filter::Compare(c, cmp, v) => compare(*c, *cmp, v, d),
        Filter::Distinct(c, v) => {
            let col = d.column(*c);
            let p = bind_scalar(v, d);
            format!("({col} IS NULL OR {col} <> {p})")
        }
        Filter::In(_, values) if values.is_empty() => "(1 = 0)".into(),
        Filter::In(c, values) => {
            let col = d.column(*c);
            let ps: Vec<String> = values.iter().map(|v| bind_scalar(v, d)).collect();
            format!("({col} IN ({}))", ps.join(", "))
        }
        Filter::Contains(c, needle) => {
            let col = d.column(*c);
            let p = d.bind(Bind::Text(like_pattern(needle)));
            d.ilike(&col, &p)
        }
        Filter::JsonContains(c, doc) => {
            let col = d.column(*c);
            d.json_contains(&col, doc)
        }
        Filter::JsonNumber(c, key, cmp, n) => {
            let col = d.column(*c);
            let e = d.json_number(&col, key);
            let p = d.bind(Bind::Float(*n));
            format!("({e} {} {p})", cmp.sql())
        }
        Filter::JsonText(c, key, cmp, s) => {
            let col = d.column(*c);
            let e = d.json_text(&col, key);
            let p = d.bind(Bind::Text(s.clone()));
            d.text_compare(&e, *cmp, &p)
        }
        Filter::JsonIn(_, _, values) if values.is_empty() => "(1 = 0)".into(),
        Filter::JsonIn(c, key, values) => {
            let col = d.column(*c);
            let e = d.json_text(&col, key);
            let ps: Vec<String> = values
                .iter()
                .map(|v| d.bind(Bind::Text(v.clone())))
                .collect();
            format!("({e} IN ({}))", ps.join(", "))
        }
        Filter::JsonContainsText(c, key, needle) => {
            let col = d.column(*c);
            let e = d.json_text(&col, key);
            let p = d.bind(Bind::Text(like_pattern(needle)));
            d.ilike(&e, &p)
        }
    }
}

fn group(parts: &[Filter], sep: &str, d: &mut impl Dialect) -> String {
    let rendered: Vec<String> = parts.iter().map(|p| render(p, d)).collect();
    format!("({})", rendered.join(sep))
}

fn compare(c: Column, cmp: Cmp, v: &Scalar, d: &mut impl Dialect) -> String {
    let col = d.column(c);
    let p = bind_scalar(v, d);
    match v {
        Scalar::Text(_) => d.text_compare(&col, cmp, &p),
        _ => format!("({col} {} {p})", cmp.sql()),
    }
}

fn bind_scalar(v: &Scalar, d: &mut impl Dialect) -> String {
    d.bind(match v {
        Scalar::Text(s) => Bind::Text(s.clone()),
        Scalar::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => Bind::Int(*n as i64),
        Scalar::Number(n) => Bind::Float(*n),
        Scalar::Bool(b) => Bind::Bool(*b),
        Scalar::Time(t) => Bind::Int(*t),
    })
}

/// Where each filterable column lives, per resource: the shared schema under the alias
/// every engine's listing query gives the table (`w`, `p`, `s`, `m`). A column the
/// resource does not have reads as NULL, so a filter on it matches nothing.
pub mod columns {
    use crate::filter::Column;

    pub fn workspaces(c: Column) -> &'static str {
        match c {
            Column::Name => "w.name",
            Column::CreatedAt => "w.created_at",
            Column::Metadata => "w.metadata",
            _ => "NULL",
        }
    }

    pub fn peers(c: Column) -> &'static str {
        match c {
            Column::Name => "p.name",
            Column::CreatedAt => "p.created_at",
            Column::Metadata => "p.metadata",
            _ => "NULL",
        }
    }

    pub fn sessions(c: Column) -> &'static str {
        match c {
            Column::Name => "s.name",
            Column::CreatedAt => "s.created_at",
            Column::Metadata => "s.metadata",
            Column::IsActive => "(s.deleted_at IS NULL)",
            _ => "NULL",
        }
    }

    pub fn messages(c: Column) -> &'static str {
        match c {
            Column::SessionName => "m.session_name",
            Column::PeerName => "m.peer_name",
            Column::TokenCount => "m.token_count",
            Column::CreatedAt => "m.created_at",
            Column::Metadata => "m.metadata",
            _ => "NULL",
        }
    }
}
