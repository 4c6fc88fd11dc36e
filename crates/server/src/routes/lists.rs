//! The `{filters}` body plus `page`/`size`/`reverse` query shared by every list route.

use engram_core::filter::{self, Resource};
use engram_core::model::ListQuery;
use engram_core::validate;
use serde_json::Value;

use crate::error::ApiResult;
use crate::input::{Body, Fields, Params};

pub fn list_query(
    resource: Resource,
    body: &Body,
    params: &Params,
) -> ApiResult<(ListQuery, Option<Value>)> {
    let (page, reverse) = params.paging()?;
    let mut fields = Fields::of(&body.0, false)?;
    let filters = fields.filters();
    let kind = body.0.as_ref().and_then(|b| b.get("kind")).cloned();
    fields.finish()?;
    let filter = match filters {
        // Stored strings never hold NUL bytes (they are stripped on the way in), and
        // PostgreSQL cannot bind them, so they are stripped from filters too.
        Some(f) => filter::parse(resource, &validate::strip_nul(f))?,
        None => None,
    };
    Ok((
        ListQuery {
            filter,
            page,
            reverse,
        },
        kind,
    ))
}
