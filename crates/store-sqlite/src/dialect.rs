//! SQLite rendering of the shared filter language, and the paginated list helper.

use engram_core::Result;
use engram_core::filter::{Cmp, Column, Filter};
use engram_core::filter_sql::{Bind, Dialect, render};
use engram_core::model::{ListQuery, Page};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params_from_iter};
use serde_json::Value;

use crate::db_err;

/// Column expressions for one listing; `workspace` is the constant workspace name.
pub struct Sqlite<'a> {
    pub columns: fn(Column) -> &'static str,
    pub workspace: &'a str,
    pub binds: Vec<SqlValue>,
    aliases: usize,
}

impl<'a> Sqlite<'a> {
    pub fn new(
        columns: fn(Column) -> &'static str,
        workspace: &'a str,
        binds: Vec<SqlValue>,
    ) -> Self {
        Sqlite {
            columns,
            workspace,
            binds,
            aliases: 0,
        }
    }

    fn alias(&mut self) -> String {
        self.aliases += 1;
        format!("je{}", self.aliases)
    }

    /// Condition: the JSON element described by `j` (a json_each row alias) matches `v`
    /// under containment rules.
    fn element_matches(&mut self, j: &str, v: &Value) -> String {
        self.value_matches(&format!("{j}.type"), &format!("{j}.value"), v)
    }

    /// Condition: the value at top-level `key` of the object in `expr` matches `v`, read by
    /// path, which costs a fraction of a `json_each` scan per row. None when `key` cannot
    /// be written as a path.
    fn key_matches(&mut self, expr: &str, key: &str, v: &Value) -> Option<String> {
        let path = self.path(key)?;
        Some(self.value_matches(
            &format!("json_type({expr}, {path})"),
            &format!("json_extract({expr}, {path})"),
            v,
        ))
    }

    /// Condition: a JSON value, given by its `json_type` name and its SQL value, matches
    /// `v` under containment rules.
    fn value_matches(&mut self, ty: &str, value: &str, v: &Value) -> String {
        match v {
            Value::Null => format!("{ty} = 'null'"),
            Value::Bool(true) => format!("{ty} = 'true'"),
            Value::Bool(false) => format!("{ty} = 'false'"),
            // An integer binds as one, so containment compares it exactly, as
            // PostgreSQL's numeric does, even past 2^53 where a float cannot tell
            // neighbours apart.
            Value::Number(n) => {
                let p = self.bind(match n.as_i64() {
                    Some(i) => Bind::Int(i),
                    None => Bind::Float(n.as_f64().unwrap_or(f64::NAN)),
                });
                format!("({ty} IN ('integer', 'real') AND {value} = {p})")
            }
            Value::String(s) => {
                let p = self.bind(Bind::Text(s.clone()));
                format!("({ty} = 'text' AND {value} = {p})")
            }
            Value::Object(_) | Value::Array(_) => {
                let kind = if v.is_object() { "object" } else { "array" };
                let inner = self.contains_in(value, v);
                format!("({ty} = '{kind}' AND {inner})")
            }
        }
    }

    /// Placeholder for the JSON path of a top-level key; SQLite paths cannot quote `"` or `\`.
    fn path(&mut self, key: &str) -> Option<String> {
        (!key.is_empty() && !key.contains(['"', '\\']))
            .then(|| self.bind(Bind::Text(format!("$.\"{key}\""))))
    }

    /// Condition: the JSON document in `expr` (an object or array) contains `doc`.
    fn contains_in(&mut self, expr: &str, doc: &Value) -> String {
        let mut parts = Vec::new();
        match doc {
            Value::Object(map) => {
                parts.push(format!("json_type({expr}) = 'object'"));
                for (k, v) in map {
                    if let Some(m) = self.key_matches(expr, k, v) {
                        parts.push(m);
                        continue;
                    }
                    let j = self.alias();
                    let key = self.bind(Bind::Text(k.clone()));
                    let m = self.element_matches(&j, v);
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM json_each({expr}) {j} WHERE {j}.key = {key} AND {m})"
                    ));
                }
            }
            Value::Array(items) => {
                parts.push(format!("json_type({expr}) = 'array'"));
                for v in items {
                    let j = self.alias();
                    let m = self.element_matches(&j, v);
                    parts.push(format!(
                        "EXISTS (SELECT 1 FROM json_each({expr}) {j} WHERE {m})"
                    ));
                }
            }
            other => {
                let j = self.alias();
                let m = self.element_matches(&j, other);
                parts.push(format!(
                    "EXISTS (SELECT 1 FROM json_each({expr}) {j} WHERE {m})"
                ));
            }
        }
        format!("({})", parts.join(" AND "))
    }
}

impl Dialect for Sqlite<'_> {
    fn column(&self, column: Column) -> String {
        match column {
            Column::WorkspaceName => format!("'{}'", self.workspace.replace('\'', "''")),
            other => (self.columns)(other).to_string(),
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(match value {
            Bind::Text(s) => SqlValue::Text(s),
            Bind::Int(i) => SqlValue::Integer(i),
            Bind::Float(f) => SqlValue::Real(f),
            Bind::Bool(b) => SqlValue::Integer(b.into()),
            Bind::Json(v) => SqlValue::Text(v.to_string()),
        });
        format!("?{}", self.binds.len())
    }

    fn json_contains(&mut self, expr: &str, doc: &Value) -> String {
        self.contains_in(expr, doc)
    }

    // Read as REAL, as PostgreSQL reads `::float8`: integers past 2^53 round the same
    // way on both engines before they are compared.
    fn json_number(&mut self, expr: &str, key: &str) -> String {
        if let Some(path) = self.path(key) {
            return format!(
                "(CASE WHEN json_type({expr}, {path}) IN ('integer', 'real') THEN CAST(json_extract({expr}, {path}) AS REAL) END)"
            );
        }
        let j = self.alias();
        let k = self.bind(Bind::Text(key.to_string()));
        format!(
            "(SELECT CAST({j}.value AS REAL) FROM json_each({expr}) {j} WHERE {j}.key = {k} AND {j}.type IN ('integer', 'real'))"
        )
    }

    fn json_text(&mut self, expr: &str, key: &str) -> String {
        if let Some(path) = self.path(key) {
            return format!(
                "(CASE json_type({expr}, {path}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 WHEN 'null' THEN NULL ELSE CAST(json_extract({expr}, {path}) AS TEXT) END)"
            );
        }
        let j = self.alias();
        let k = self.bind(Bind::Text(key.to_string()));
        format!(
            "(SELECT CASE {j}.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN NULL \
             ELSE CAST({j}.value AS TEXT) END FROM json_each({expr}) {j} WHERE {j}.key = {k})"
        )
    }

    fn ilike(&self, expr: &str, pattern: &str) -> String {
        format!("({expr} LIKE {pattern} ESCAPE '\\')")
    }

    fn text_compare(&self, left: &str, cmp: Cmp, right: &str) -> String {
        format!("({left} {} {right})", cmp.sql())
    }
}

/// Runs a count and one page of `SELECT {cols} FROM {from} WHERE {where} AND <filter>
/// ORDER BY {order}` where `order` lists `(column)` and is flipped by `reverse`.
#[allow(clippy::too_many_arguments)]
pub fn list_page<T>(
    conn: &Connection,
    columns: fn(Column) -> &'static str,
    workspace: &str,
    select: &str,
    from_where: &str,
    binds: Vec<SqlValue>,
    order: &[&str],
    query: &ListQuery,
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Page<T>> {
    let mut d = Sqlite::new(columns, workspace, binds);
    let cond = query.filter.as_ref().map(|f: &Filter| render(f, &mut d));
    let filter_sql = cond.map(|c| format!(" AND {c}")).unwrap_or_default();
    let binds = d.binds;
    let total: i64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM {from_where}{filter_sql}"),
            params_from_iter(binds.iter()),
            |r| r.get(0),
        )
        .map_err(db_err)?;
    let dir = if query.reverse { "DESC" } else { "ASC" };
    let order_by: Vec<String> = order.iter().map(|c| format!("{c} {dir}")).collect();
    let sql = format!(
        "SELECT {select} FROM {from_where}{filter_sql} ORDER BY {} LIMIT {} OFFSET {}",
        order_by.join(", "),
        query.page.size,
        query.page.offset()
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(db_err)?;
    let items = stmt
        .query_map(params_from_iter(binds.iter()), map)
        .map_err(db_err)?
        .collect::<rusqlite::Result<Vec<T>>>()
        .map_err(db_err)?;
    Ok(Page::new(items, total, query.page))
}
