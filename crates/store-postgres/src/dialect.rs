//! PostgreSQL rendering of the shared filter language, and the paginated list helper.

use engram_core::filter::{Cmp, Column};
use engram_core::filter_sql::{Bind, Dialect, render};
use engram_core::model::{ListQuery, Page};
use serde_json::Value;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, AssertSqlSafe, PgConnection, Row};

use crate::R;

/// Column expressions for one listing; `workspace` is the constant workspace name.
pub struct Pg<'a> {
    columns: fn(Column) -> &'static str,
    workspace: &'a str,
    pub binds: Vec<Bind>,
}

impl<'a> Pg<'a> {
    /// `binds` are the listing's own parameters; filter parameters are numbered after them.
    pub fn new(columns: fn(Column) -> &'static str, workspace: &'a str, binds: Vec<Bind>) -> Self {
        Pg {
            columns,
            workspace,
            binds,
        }
    }
}

impl Dialect for Pg<'_> {
    fn column(&self, column: Column) -> String {
        match column {
            Column::WorkspaceName => format!("'{}'::text", self.workspace.replace('\'', "''")),
            Column::IsActive => "(s.deleted_at IS NULL)".into(),
            other => (self.columns)(other).to_string(),
        }
    }

    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn json_contains(&mut self, expr: &str, doc: &Value) -> String {
        let p = self.bind(Bind::Json(doc.clone()));
        format!("({expr} @> {p}::jsonb)")
    }

    fn json_number(&mut self, expr: &str, key: &str) -> String {
        let k = self.bind(Bind::Text(key.to_string()));
        format!(
            "(CASE WHEN jsonb_typeof({expr} -> {k}::text) = 'number' THEN ({expr} ->> {k}::text)::float8 END)"
        )
    }

    fn json_text(&mut self, expr: &str, key: &str) -> String {
        let k = self.bind(Bind::Text(key.to_string()));
        format!("({expr} ->> {k}::text)")
    }

    fn ilike(&self, expr: &str, pattern: &str) -> String {
        format!("({expr} ILIKE {pattern} ESCAPE '\\')")
    }

    fn text_compare(&self, left: &str, cmp: Cmp, right: &str) -> String {
        format!("({left} COLLATE \"C\" {} {right})", cmp.sql())
    }
}

/// Encodes binds in order, for `$1..$n`.
pub fn arguments(binds: &[Bind]) -> R<PgArguments> {
    let mut args = PgArguments::default();
    for b in binds {
        let added = match b {
            Bind::Text(s) => Arguments::add(&mut args, s.as_str()),
            Bind::Int(i) => Arguments::add(&mut args, *i),
            Bind::Float(f) => Arguments::add(&mut args, *f),
            Bind::Bool(v) => Arguments::add(&mut args, *v),
            Bind::Json(v) => Arguments::add(&mut args, v),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// One listing: `SELECT {select} FROM {from_where} [AND <filter>] ORDER BY {order}`, where
/// `from_where` uses `$1..` for `binds` and `reverse` flips every `order` column.
pub struct Listing<'a> {
    pub columns: fn(Column) -> &'static str,
    pub workspace: &'a str,
    pub select: &'a str,
    pub from_where: &'a str,
    pub binds: Vec<Bind>,
    pub order: &'a [&'a str],
}

/// Runs the count and one page; callers hold a snapshot transaction, so both agree.
pub async fn list_page<T>(
    conn: &mut PgConnection,
    listing: Listing<'_>,
    query: &ListQuery,
    map: impl Fn(&PgRow) -> sqlx::Result<T>,
) -> R<Page<T>> {
    let mut d = Pg::new(listing.columns, listing.workspace, listing.binds);
    let filter_sql = query
        .filter
        .as_ref()
        .map(|f| format!(" AND {}", render(f, &mut d)))
        .unwrap_or_default();
    let from_where = listing.from_where;
    let total: i64 = sqlx::query_with(
        AssertSqlSafe(format!("SELECT COUNT(*) FROM {from_where}{filter_sql}")),
        arguments(&d.binds)?,
    )
    .fetch_one(&mut *conn)
    .await?
    .try_get(0)?;
    let dir = if query.reverse { "DESC" } else { "ASC" };
    let order_by: Vec<String> = listing.order.iter().map(|c| format!("{c} {dir}")).collect();
    let sql = format!(
        "SELECT {} FROM {from_where}{filter_sql} ORDER BY {} LIMIT {} OFFSET {}",
        listing.select,
        order_by.join(", "),
        query.page.size,
        query.page.offset()
    );
    let rows = sqlx::query_with(AssertSqlSafe(sql), arguments(&d.binds)?)
        .fetch_all(&mut *conn)
        .await?;
    let items = rows.iter().map(map).collect::<sqlx::Result<Vec<T>>>()?;
    Ok(Page::new(items, total, query.page))
}
