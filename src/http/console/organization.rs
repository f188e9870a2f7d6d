//! `GET /admin/orgs/{slug}`: one organization: its activity over the last 24 hours and 30
//! days (changes per operation; rejected writes per `scimType` and 429s), the identity
//! providers seen (its keys, what last used each, and the forms to create and revoke them),
//! its event streams with their lag, its user attributes, and its latest changes and
//! rejected writes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::charts::{Column, columns, day_label, hour_label, hour_of, stacked_bars};
use super::{AppState, SignedIn, error_page, html_response, page, when};
use crate::admin::{KeyView, LAG_SHOWN_UP_TO, OrgView};
use crate::http::extract::PathParams;
use crate::resources::ResourceResult;
use crate::store::activity::{ActivityCount, ActivityKind};
use crate::store::{AuditQuery, ChangeEntry, EventStream, RejectedWrite, now_ms};

/// Rows of each "latest" list.
const LATEST_ROWS: i64 = 25;
/// Days of the long chart.
const DAYS: usize = 30;

/// The counts the charts draw: changes by operation; refusals by `scimType` and 429s.
const CHANGES: [(ActivityKind, Option<&str>); 1] = [(ActivityKind::Change, None)];
const REFUSED: [(ActivityKind, Option<&str>); 2] = [
    (ActivityKind::Rejected, None),
    (ActivityKind::Throttled, Some("429 rate limit")),
];

pub(super) async fn organization(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PathParams(slug): PathParams<String>,
) -> Response {
    match organization_page(&state, &signed_in, &slug).await {
        Ok(page) => html_response(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

async fn organization_page(
    state: &AppState,
    signed_in: &SignedIn,
    slug: &str,
) -> ResourceResult<Markup> {
    let admin = &state.admin;
    let org = admin.org(slug).await?;
    let keys = admin.keys(slug).await?;
    let mut streams = Vec::new();
    for stream in admin.streams(slug).await? {
        let lag = admin.stream_lag(&stream).await?;
        streams.push((stream, lag));
    }
    let attributes = admin.user_attributes(slug).await?;
    let latest = AuditQuery {
        limit: LATEST_ROWS,
        without_data: true,
        newest_first: true,
        ..Default::default()
    };
    let changes = admin.changes(slug, &latest).await?;
    let rejected = admin.rejected(slug, &latest).await?;
    let now_hour = hour_of(now_ms());
    let since = (now_hour.div_euclid(24) - DAYS as i64 + 1) * 24;
    let activity = admin.activity(Some(slug), since).await?;
    let csrf = &signed_in.session.csrf;
    Ok(page(
        &org.slug,
        html! {
            (signed_in.header(html! { " / " (org.slug) }))
            (summary(&org))
            h2 { "Activity" }
            (charts(&activity, now_hour))
            h2 { "Identity providers and keys" }
            (key_table(slug, &keys, csrf))
            form.inline method="post" action={ "/admin/orgs/" (slug) "/keys" } {
                input type="hidden" name="csrf" value=(csrf);
                label for="key-name" { "New key named" }
                input #key-name type="text" name="name" required maxlength="200" placeholder="okta";
                button type="submit" { "Create key" }
            }
            h2 { "Event streams" }
            (stream_table(&streams))
            h2 { "User attributes" }
            p { @if attributes.is_empty() { "None defined." } @else { (attributes.join(", ")) } }
            h2 { "Latest changes" }
            p { a href={ "/admin/orgs/" (slug) "/changes" } { "The whole change log" } }
            (change_table(slug, &changes))
            h2 { "Latest rejected writes" }
            p { a href={ "/admin/orgs/" (slug) "/changes?failed=1" } { "Every rejected write" } }
            (rejected_table(&rejected))
        },
    ))
}

fn summary(org: &OrgView) -> Markup {
    html! {
        p { (org.state) " · " (org.users - org.inactive_users) " active and "
            (counted(org.inactive_users, "inactive user")) " · " (counted(org.groups, "group"))
            " · " (counted(org.keys, "key")) " · created " (when(org.created_at)) }
    }
}

/// `1 group`, `2 groups`.
fn counted(n: i64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Changes and refusals per hour over the last 24 hours, and per day over the last 30.
fn charts(activity: &[ActivityCount], now_hour: i64) -> Markup {
    let hourly = |kinds: &[(ActivityKind, Option<&str>)]| -> Vec<Column> {
        columns(activity, kinds, now_hour, 24, 1, hour_label)
    };
    let daily = |kinds: &[(ActivityKind, Option<&str>)]| -> Vec<Column> {
        columns(activity, kinds, now_hour, DAYS, 24, day_label)
    };
    html! {
        div.charts {
            (stacked_bars("Changes per hour, last 24 hours (UTC)", &hourly(&CHANGES)))
            (stacked_bars("Rejected writes and 429s per hour, last 24 hours", &hourly(&REFUSED)))
            (stacked_bars("Changes per day, last 30 days", &daily(&CHANGES)))
            (stacked_bars("Rejected writes and 429s per day, last 30 days", &daily(&REFUSED)))
        }
    }
}

fn key_table(slug: &str, keys: &[KeyView], csrf: &str) -> Markup {
    html! {
        table {
            thead { tr { th { "key" } th { "kind" } th { "state" } th { "last used" } th { "from" } th { "User-Agent" } th {} } }
            tbody {
                @for key in keys {
                    tr {
                        td { (key.name.as_deref().unwrap_or("-")) }
                        td { (key.kind) }
                        td { (key.state) }
                        @match &key.last_used {
                            Some(used) => {
                                td { (when(used.at)) }
                                td { (used.client_addr.as_deref().unwrap_or("-")) }
                                td { (used.user_agent.as_deref().unwrap_or("-")) }
                            }
                            None => { td { "never" } td { "-" } td { "-" } }
                        }
                        td {
                            @if key.state == "active" {
                                form.inline method="post" action={ "/admin/orgs/" (slug) "/keys/" (key.id) "/revoke" } {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.danger type="submit" aria-label={ "Revoke key " (key.name.as_deref().unwrap_or("")) } { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn stream_table(streams: &[(EventStream, i64)]) -> Markup {
    html! {
        @if streams.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "stream" } th { "kind" } th { "state" } th { "target" } th { "delivered" } th { "behind" } th { "failing since" } th { "last error" } } }
                tbody {
                    @for (stream, lag) in streams {
                        tr class=[(stream.state.as_str() != "active").then_some("failing")] {
                            td { (stream.id) }
                            td { (stream.kind.as_str()) }
                            td { (stream.state.as_str()) }
                            td { (stream.endpoint.as_deref().unwrap_or("poll")) }
                            td.n { (stream.delivered) }
                            td.n { (lag) @if *lag >= LAG_SHOWN_UP_TO { "+" } }
                            td { (stream.failing_since.map_or_else(|| "-".to_string(), when)) }
                            td { (stream.last_error.as_deref().unwrap_or("-")) }
                        }
                    }
                }
            }
        }
    }
}

/// Change-log entries, each linking to its resource's page.
pub(super) fn change_table(slug: &str, changes: &[ChangeEntry]) -> Markup {
    html! {
        @if changes.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "at" } th { "operation" } th { "resource" } th { "attributes" } th { "key" } th { "User-Agent" } } }
                tbody {
                    @for entry in changes {
                        tr {
                            td { (when(entry.at)) }
                            td { (entry.operation) @if let Some(a) = &entry.activation { " (" (a) ")" } }
                            td { (entry.resource_type) " "
                                a href={ "/admin/orgs/" (slug) "/resources/" (entry.resource_id) } { (entry.resource_id) } }
                            td { (entry.attributes.join(", ")) }
                            td { (entry.key_name.as_deref().unwrap_or("-")) }
                            td { (entry.user_agent.as_deref().unwrap_or("-")) }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn rejected_table(rejected: &[RejectedWrite]) -> Markup {
    html! {
        @if rejected.is_empty() { p { "None." } } @else {
            table {
                thead { tr { th { "at" } th { "request" } th { "status" } th { "why" } th { "key" } th { "User-Agent" } } }
                tbody {
                    @for write in rejected {
                        tr {
                            td { (when(write.at)) }
                            td { (write.method) " " (write.path) }
                            td { (write.status) @if let Some(t) = &write.scim_type { " " (t) } }
                            td { (write.detail.as_deref().unwrap_or("-")) }
                            td { (write.key_name.as_deref().unwrap_or("-")) }
                            td { (write.user_agent.as_deref().unwrap_or("-")) }
                        }
                    }
                }
            }
        }
    }
}
