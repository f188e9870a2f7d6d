//! `/Groups` (RFC 7644 §3, RFC 7643 §4.2): create, read, the merging PUT, delete.
//! Members live in their own table; they are read only when the response returns them.

use axum::Extension;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use uuid::Uuid;

use super::extract::{ScimBody, ScimResponse, scim_base_url};
use super::list::{ListParams, Projection, list_response};
use super::preconditions::{check_if_match, if_match, if_none_match};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::config::PutMode;
use crate::scim::ScimError;
use crate::scim::doc::merge;
use crate::scim::etag::etag;
use crate::scim::group::{self, GroupMeta};
use crate::scim::limits::{check_document, check_members};
use crate::scim::normalize::normalize_resource;
use crate::scim::patch;
use crate::scim::schema::GROUP_RESOURCE;
use crate::store::{Doc, GroupRecord, GroupWrite, MemberOp, MemberRef};

/// A path id that is not a UUID cannot name a group: 404, as for an unknown id.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ScimError::not_found(format!("Group {id} not found")).into())
}

/// Renders a group, loading its members only when the projection returns them.
pub(super) async fn group_response(
    state: &AppState,
    base: &str,
    record: &GroupRecord,
    status: StatusCode,
    projection: &Projection,
) -> Result<ScimResponse, ApiError> {
    let members: Option<Vec<MemberRef>> = if projection.includes("members") {
        Some(state.store.group_members(record.org_id, record.id).await?)
    } else {
        None
    };
    Ok(ScimResponse {
        status,
        body: Value::Object(projection.apply(render_group(base, record, members.as_deref()))),
        etag: Some(etag(record.version)),
        location: (status == StatusCode::CREATED).then(|| format!("{base}/Groups/{}", record.id)),
    })
}

pub(super) fn render_group(base: &str, record: &GroupRecord, members: Option<&[MemberRef]>) -> Doc {
    let id = record.id.to_string();
    let meta = GroupMeta {
        id: &id,
        created_ms: record.created_at,
        modified_ms: record.modified_at,
        version: record.version,
        location: format!("{base}/Groups/{id}"),
        base_url: base,
    };
    group::render(&record.doc, members, &meta)
}

/// POST /Groups — RFC 7644 §3.3: 201; 409 `uniqueness` for a taken displayName (any case).
pub async fn create_group(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let limits = &state.settings.limits;
    let mut doc = normalize_resource(&GROUP_RESOURCE, body)?;
    let members = group::take_member_ids(&mut doc)?.unwrap_or_default();
    check_members(members.len(), limits)?;
    let doc = merge(&Doc::new(), doc);
    check_document("group", &doc, limits)?;
    let record = state
        .store
        .create_group(principal.org_id, &GroupWrite::from_doc(doc)?, &members)
        .await?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    group_response(&state, &base, &record, StatusCode::CREATED, &projection).await
}

/// GET /Groups/{id} — RFC 7644 §3.4.1; `excludedAttributes=members` never reads members.
pub async fn get_group(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let record = state
        .store
        .get_group(principal.org_id, parse_id(&id)?)
        .await?;
    if if_none_match(&headers).is_some_and(|c| c.matches(record.version)) {
        return Ok(ScimResponse::not_modified(etag(record.version)));
    }
    let base = scim_base_url(&state.settings, &uri, &headers);
    group_response(&state, &base, &record, StatusCode::OK, &projection).await
}

/// PUT /Groups/{id} — like users: sets the attributes provided (all of them in replace mode);
/// `members` given → the membership becomes exactly that list.
pub async fn replace_group(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let id = parse_id(&id)?;
    let limits = state.settings.limits;
    let mut doc = normalize_resource(&GROUP_RESOURCE, body)?;
    let members = group::take_member_ids(&mut doc)?;
    check_members(members.as_ref().map_or(0, Vec::len), &limits)?;
    check_document("group", &doc, &limits)?;
    let put_mode = state.settings.put_mode;
    let condition = if_match(&headers);
    let update = |current: &GroupRecord| {
        check_if_match(condition.as_ref(), current.version)?;
        let next = match put_mode {
            PutMode::Merge => merge(&current.doc, doc.clone()),
            PutMode::Replace => merge(&Doc::new(), doc.clone()),
        };
        check_document("group", &next, &limits)?;
        GroupWrite::from_doc(next)
    };
    let member_ops = match (members, put_mode) {
        (Some(ids), _) => vec![MemberOp::Replace(ids)],
        (None, PutMode::Replace) => vec![MemberOp::RemoveAll],
        (None, PutMode::Merge) => Vec::new(),
    };
    let record = state
        .store
        .update_group(principal.org_id, id, &update, &member_ops)
        .await?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    group_response(&state, &base, &record, StatusCode::OK, &projection).await
}

/// PATCH /Groups/{id} — RFC 7644 §3.5.2 as Okta and Entra ID send it. Membership changes
/// touch one row per member; the group's own attributes go through the PATCH engine; all
/// of it in one transaction. 204 (Entra's advice: never echo a huge member list), or 200
/// with the group when the request carries `attributes` or `excludedAttributes`.
pub async fn patch_group(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let projection = Projection::from_query(&query)?;
    let id = parse_id(&id)?;
    let limits = state.settings.limits;
    patch::check_operation_count(&body, &limits)?;
    let condition = if_match(&headers);
    // A primary-key read first: a large body aimed at a missing group (or a stale version)
    // is refused before its operations and member ids are parsed.
    let current = state.store.get_group(principal.org_id, id).await?;
    check_if_match(condition.as_ref(), current.version)?;
    let ops = patch::parse_request(&body)?;
    let (attribute_ops, member_ops) = group::split_member_ops(ops, id)?;
    check_members(group::member_count(&member_ops), &limits)?;
    let update = |current: &GroupRecord| {
        check_if_match(condition.as_ref(), current.version)?;
        let outcome = patch::apply(&GROUP_RESOURCE, &current.doc, &attribute_ops, &limits)?;
        for adaptation in &outcome.adaptations {
            tracing::debug!(adaptation, "PATCH adapted an identity provider's request");
        }
        check_document("group", &outcome.doc, &limits)?;
        GroupWrite::from_doc(outcome.doc)
    };
    let record = state
        .store
        .update_group(principal.org_id, id, &update, &member_ops)
        .await?;
    if !projection.is_requested() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(tag) = etag(record.version).parse() {
            response.headers_mut().insert(header::ETAG, tag);
        }
        return Ok(response);
    }
    let base = scim_base_url(&state.settings, &uri, &headers);
    Ok(
        group_response(&state, &base, &record, StatusCode::OK, &projection)
            .await?
            .into_response(),
    )
}

/// DELETE /Groups/{id} — RFC 7644 §3.6: 204; memberships go with the group.
pub async fn delete_group(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let condition = if_match(&headers);
    let check = |current: &GroupRecord| check_if_match(condition.as_ref(), current.version);
    state
        .store
        .delete_group(principal.org_id, id, &check)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /Groups — RFC 7644 §3.4.2, with the same parameters as `/Users`.
pub async fn list_groups(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&query, state.settings.max_results)?
        .limited(&state.settings.limits, &[&GROUP_RESOURCE])?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    list(&state, principal, &base, params).await
}

/// POST /Groups/.search — RFC 7644 §3.4.3.
pub async fn search_groups(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_search_body(&body, state.settings.max_results)?
        .limited(&state.settings.limits, &[&GROUP_RESOURCE])?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    list(&state, principal, &base, params).await
}

async fn list(
    state: &AppState,
    principal: Principal,
    base: &str,
    mut params: ListParams,
) -> Result<ScimResponse, ApiError> {
    let page_size = params.cursor_page_size();
    let mut page = state
        .store
        .list_groups(principal.org_id, &params.query)
        .await?;
    let next_cursor = params.next_cursor(&mut page.groups, page_size, page.truncated, |g| {
        (g.created_at, g.id)
    });
    let resources = render_page(state, base, &page.groups, &params.projection).await?;
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: list_response(resources, page.total, params.start_index(), next_cursor),
        etag: None,
        location: None,
    })
}

/// Renders a page of groups, reading members only when the projection returns them (Entra
/// lists groups with `excludedAttributes=members`).
pub(super) async fn render_page(
    state: &AppState,
    base: &str,
    groups: &[GroupRecord],
    projection: &Projection,
) -> Result<Vec<Value>, ApiError> {
    let with_members = projection.includes("members");
    let mut resources = Vec::with_capacity(groups.len());
    for record in groups {
        let members = if with_members {
            Some(state.store.group_members(record.org_id, record.id).await?)
        } else {
            None
        };
        let rendered = render_group(base, record, members.as_deref());
        resources.push(Value::Object(projection.apply(rendered)));
    }
    Ok(resources)
}
