//! `GET /admin/orgs/{slug}/resources/{id}`: one user or group: its attributes as stored now
//! (never a password), and its history from the change log as a timeline, newest first: who
//! changed what and when, with what each request sent (passwords removed). A deleted
//! resource keeps its timeline.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use uuid::Uuid;

use super::{AppState, SignedIn, error_page, html_response, page, when};
use crate::admin::StoredResource;
use crate::http::extract::PathParams;
use crate::resources::{ResourceError, ResourceResult};
use crate::scim::ScimError;
use crate::store::{AuditQuery, ChangeEntry};

/// Most entries of a timeline.
const TIMELINE_ROWS: i64 = 200;

pub(super) async fn resource(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Response {
    match resource_page(&state, &signed_in, &slug, &id).await {
        Ok(page) => html_response(StatusCode::OK, page),
        Err(e) => error_page(e),
    }
}

async fn resource_page(
    state: &AppState,
    signed_in: &SignedIn,
    slug: &str,
    id: &str,
) -> ResourceResult<Markup> {
    let admin = &state.admin;
    let id =
        Uuid::parse_str(id).map_err(|_| ScimError::not_found(format!("no user or group {id}")))?;
    let current = match admin.stored_resource(slug, id).await {
        Ok(resource) => Some(resource),
        Err(ResourceError::Scim(e)) if e.status == 404 => None,
        Err(e) => return Err(e),
    };
    let query = AuditQuery {
        resource_id: Some(id),
        newest_first: true,
        limit: TIMELINE_ROWS,
        ..Default::default()
    };
    let timeline = admin.changes(slug, &query).await?;
    if current.is_none() && timeline.is_empty() {
        return Err(ScimError::not_found(format!("no user or group {id}")).into());
    }
    let kind = current
        .as_ref()
        .map(|r| r.resource_type)
        .or_else(|| timeline.first().map(|e| e.resource_type.as_str()))
        .unwrap_or("Resource");
    Ok(page(
        &format!("{kind} {id}"),
        html! {
            (signed_in.header(html! { " / " a href={ "/admin/orgs/" (slug) } { (slug) } " / " (kind) " " (id) }))
            @match &current {
                Some(resource) => (attributes(resource)),
                None => p { "Deleted: only its history remains." },
            }
            h2 { "History" }
            @if timeline.is_empty() { p { "No change recorded (retention may have pruned it)." } }
            ol.timeline {
                @for entry in &timeline { (timeline_entry(entry)) }
            }
        },
    ))
}

fn attributes(resource: &StoredResource) -> Markup {
    let document = serde_json::to_string_pretty(&resource.doc).unwrap_or_default();
    html! {
        p { "Version " (resource.version) " · created " (when(resource.created_at))
            " · modified " (when(resource.modified_at)) }
        h2 { "Attributes" }
        pre.doc { (document) }
    }
}

fn timeline_entry(entry: &ChangeEntry) -> Markup {
    let by = entry
        .key_name
        .clone()
        .or_else(|| entry.key_id.map(|k| k.to_string()))
        .unwrap_or_else(|| "the command line".into());
    html! {
        li {
            p {
                strong { (entry.operation) @if let Some(a) = &entry.activation { " (" (a) ")" } }
                " → version " (entry.version) " · " (when(entry.at)) " · by " (by)
                @if let Some(addr) = &entry.client_addr { " from " (addr) }
                @if let Some(agent) = &entry.user_agent { " · " (agent) }
            }
            @if !entry.attributes.is_empty() { p { "Changed: " (entry.attributes.join(", ")) } }
            @if let Some(memberships) = &entry.memberships {
                p { "Memberships: " (memberships["added"].as_u64().unwrap_or(0)) " added, "
                    (memberships["removed"].as_u64().unwrap_or(0)) " removed" }
            }
            @if let Some(data) = &entry.data {
                details {
                    summary { "What the request sent" }
                    pre.doc { (serde_json::to_string_pretty(data).unwrap_or_default()) }
                }
            }
        }
    }
}
