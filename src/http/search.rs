//! `POST /.search` at the service root (RFC 7644 §3.4.3): one query over Users and Groups.
//! Results are users then groups, each in its own default order, paged across both.

use axum::Extension;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::extract::{ScimBody, ScimResponse, scim_base_url};
use super::list::{ListParams, list_response};
use super::{ApiError, AppState, groups, users};
use crate::auth::Principal;
use crate::scim::ScimError;
use crate::scim::filter::check::validate;
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
use crate::store::{ListQuery, doc_bytes};

pub async fn search_all(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_search_body(&body, state.settings.max_results)?
        .limited(&state.settings.limits, &[&USER_RESOURCE, &GROUP_RESOURCE])?;
    if params.cursor_mode || params.query.sort.is_some() {
        return Err(ScimError::invalid_value(
            "root search supports index paging in the default order only (no cursor, no sortBy)",
        )
        .into());
    }
    let base = scim_base_url(&state.settings, &uri, &headers);
    let org = principal.org_id;
    let start = params.query.start_index;
    let count = params.query.count;

    // Totals first (count = 0 reads no rows), so the page can be split between the types.
    // A filter that does not fit one resource type selects nothing of that type; it is an
    // error only when it fits neither (RFC 7644 §3.4.3 leaves this to the server).
    let totals = ListQuery {
        count: 0,
        ..params.query.clone()
    };
    let fits = |resource| {
        params
            .query
            .filter
            .as_ref()
            .is_none_or(|f| validate(f, resource).is_ok())
    };
    let user_total = if fits(&USER_RESOURCE) {
        Some(state.store.list_users(org, &totals).await?.total)
    } else {
        None
    };
    let group_total = if fits(&GROUP_RESOURCE) {
        Some(state.store.list_groups(org, &totals).await?.total)
    } else {
        None
    };
    if user_total.is_none() && group_total.is_none() {
        let detail = "the filter names attributes that neither Users nor Groups have";
        return Err(ScimError::invalid_filter(detail).into());
    }
    let (user_total, group_total) = (user_total.unwrap_or(0), group_total.unwrap_or(0));

    // One byte budget for the whole page: what the users used is not left for the groups.
    // A page stopped early has fewer items than asked; the next startIndex continues it.
    let mut budget = state.settings.limits.list_byte_budget;
    let mut resources: Vec<Value> = Vec::new();
    if start <= user_total && count > 0 {
        let query = ListQuery {
            start_index: start,
            count,
            ..params.query.clone()
        };
        let page = state.store.list_users(org, &query).await?;
        if page.truncated {
            budget = 0;
        }
        // Measured as the store measures the budget.
        let used: usize = page.users.iter().map(|u| doc_bytes(&u.doc)).sum();
        budget = budget.saturating_sub(used);
        resources
            .extend(users::render_page(&state, org, &base, &page.users, &params.projection).await?);
    }
    let remaining = count - resources.len() as i64;
    if remaining > 0 && group_total > 0 && budget > 0 {
        let group_start = (start - user_total).max(1);
        let query = ListQuery {
            start_index: group_start,
            count: remaining,
            byte_budget: Some(budget),
            ..params.query.clone()
        };
        let page = state.store.list_groups(org, &query).await?;
        resources
            .extend(groups::render_page(&state, &base, &page.groups, &params.projection).await?);
    }
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: list_response(resources, user_total + group_total, Some(start), None),
        etag: None,
        location: None,
    })
}
