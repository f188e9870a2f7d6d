//! `GET /admin/orgs/{slug}/changes`: an organization's change log, newest first, filtered by
//! resource, key, operation and time, or its rejected writes only (`failed=1`); 100 rows a
//! page, with a link to the older ones. The filter is a plain GET form: a filtered page can
//! be bookmarked and shared.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::organization::{change_table, rejected_table};
use super::{AppState, SignedIn, error_page, html_response, page};
use crate::http::extract::PathParams;
use crate::resources::{ResourceError, ResourceResult};
use crate::scim::ScimError;
use crate::store::AuditQuery;

/// Rows a page.
const PAGE_ROWS: i64 = 100;
const OPERATIONS: [&str; 4] = ["create", "put", "patch", "delete"];

/// The filter as the form sends it: an empty field filters nothing.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    resource: Option<String>,
    key: Option<String>,
    operation: Option<String>,
    /// An RFC 3339 time or an age (`24h`, `7d`).
    since: Option<String>,
    failed: Option<String>,
    /// The page: rows before this position (changes) or rejected write id.
    before: Option<String>,
}

/// A field's value, if it was given.
fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn bad(field: &str, value: &str) -> ResourceError {
    ScimError::invalid_value(format!("{field}: {value:?} is not valid here")).into()
}

impl Filter {
    fn failed_only(&self) -> bool {
        given(&self.failed).is_some()
    }

    /// The store query the filter asks for, one page of it.
    fn query(&self) -> ResourceResult<AuditQuery> {
        let id = |field: &str, value: Option<&str>| -> ResourceResult<Option<Uuid>> {
            value
                .map(|v| Uuid::parse_str(v).map_err(|_| bad(field, v)))
                .transpose()
        };
        let mut query = AuditQuery {
            resource_id: id("resource", given(&self.resource))?,
            key_id: id("key", given(&self.key))?,
            newest_first: true,
            limit: PAGE_ROWS,
            without_data: true,
            ..AuditQuery::default()
        };
        if let Some(operation) = given(&self.operation) {
            if !OPERATIONS.contains(&operation) {
                return Err(bad("operation", operation));
            }
            query.operation = Some(operation.to_string());
        }
        if let Some(since) = given(&self.since) {
            // A position is the admin API's and the command line's business: here a time.
            if since.parse::<i64>().is_ok() {
                return Err(bad("since", since));
            }
            crate::audit::report::since(since, &mut query).map_err(|_| bad("since", since))?;
        }
        if let Some(before) = given(&self.before) {
            if self.failed_only() {
                query.before_id = id("before", Some(before))?;
            } else {
                query.before_position = Some(before.parse().map_err(|_| bad("before", before))?);
            }
        }
        Ok(query)
    }

    /// This filter's link to the page before `before`.
    fn older(&self, slug: &str, before: &str) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (name, value) in [
            ("resource", &self.resource),
            ("key", &self.key),
            ("operation", &self.operation),
            ("since", &self.since),
            ("failed", &self.failed),
        ] {
            if let Some(value) = given(value) {
                pairs.push((name, value));
            }
        }
        pairs.push(("before", before));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("/admin/orgs/{slug}/changes?{query}")
    }
}

pub(super) async fn changes(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PathParams(slug): PathParams<String>,
    Query(filter): Query<Filter>,
) -> Response {
    match changes_page(&state, &signed_in, &slug, &filter).await {
        Ok(page) => html_response(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

async fn changes_page(
    state: &AppState,
    signed_in: &SignedIn,
    slug: &str,
    filter: &Filter,
) -> ResourceResult<Markup> {
    let admin = &state.admin;
    let query = filter.query()?;
    let keys = admin.keys(slug).await?;
    let (rows, older) = if filter.failed_only() {
        let rejected = admin.rejected(slug, &query).await?;
        let older = (rejected.len() as i64 == PAGE_ROWS)
            .then(|| {
                rejected
                    .last()
                    .map(|r| filter.older(slug, &r.id.to_string()))
            })
            .flatten();
        (rejected_table(&rejected), older)
    } else {
        let changes = admin.changes(slug, &query).await?;
        let older = (changes.len() as i64 == PAGE_ROWS)
            .then(|| {
                changes
                    .last()
                    .map(|c| filter.older(slug, &c.position.to_string()))
            })
            .flatten();
        (change_table(slug, &changes), older)
    };
    let title = if filter.failed_only() {
        "Rejected writes"
    } else {
        "Change log"
    };
    Ok(page(
        title,
        html! {
            (signed_in.header(html! { " / " a href={ "/admin/orgs/" (slug) } { (slug) } " / " (title) }))
            form.filter method="get" action={ "/admin/orgs/" (slug) "/changes" } {
                label { "Resource id " input type="text" name="resource" value=[given(&filter.resource)] size="36"; }
                label { "Key "
                    select name="key" {
                        option value="" { "any" }
                        @for key in &keys {
                            @let id = key.id.to_string();
                            option value=(id) selected[given(&filter.key) == Some(id.as_str())] {
                                (key.name.as_deref().unwrap_or(&id))
                            }
                        }
                    }
                }
                label { "Operation "
                    select name="operation" {
                        option value="" { "any" }
                        @for op in OPERATIONS {
                            option value=(op) selected[given(&filter.operation) == Some(op)] { (op) }
                        }
                    }
                }
                label { "Since " input type="text" name="since" value=[given(&filter.since)] placeholder="24h or 2026-12-01T00:00:00Z" size="24"; }
                label { input type="checkbox" name="failed" value="1" checked[filter.failed_only()]; " rejected writes only" }
                button type="submit" { "Show" }
            }
            (rows)
            @if let Some(older) = older { p { a href=(older) rel="next" { "Older" } } }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(pairs: &str) -> Filter {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn empty_fields_filter_nothing_and_given_ones_become_the_query() {
        let query = filter("resource=&key=&operation=&since=&before=")
            .query()
            .unwrap();
        assert_eq!(query.resource_id, None);
        assert_eq!(query.operation, None);
        assert!(query.newest_first);
        let id = Uuid::now_v7();
        let query = filter(&format!(
            "resource={id}&operation=patch&since=24h&before=42"
        ))
        .query()
        .unwrap();
        assert_eq!(query.resource_id, Some(id));
        assert_eq!(query.operation.as_deref(), Some("patch"));
        assert!(query.since_ms.is_some());
        assert_eq!(query.before_position, Some(42));
    }

    #[test]
    fn a_bad_field_is_refused_naming_it() {
        for (pairs, field) in [
            ("resource=nope", "resource"),
            ("operation=drop", "operation"),
            ("since=yesterday", "since"),
            ("since=12", "since"),
            ("before=x", "before"),
            ("failed=1&before=12", "before"),
        ] {
            let error = filter(pairs).query().unwrap_err().to_string();
            assert!(error.contains(field), "{pairs}: {error}");
        }
    }

    #[test]
    fn the_older_link_keeps_the_filter() {
        let link = filter("key=&operation=put&since=7d").older("acme", "99");
        assert_eq!(
            link,
            "/admin/orgs/acme/changes?operation=put&since=7d&before=99"
        );
    }
}
