//! `/GroupMembers` (draft-zollner-scim-group-membership): one membership per resource,
//! created (`POST`), read (`GET`), listed with a `group.value` / `member.value` filter and
//! index or cursor paging, and deleted (`DELETE`). Memberships are never changed: there is no
//! `PUT` or `PATCH` (405).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::context::RequestContext;
use super::extract::{PathParams, ScimBody, ScimResponse};
use super::list::{ListParams, list_response};
use super::{ApiError, AppState};
use crate::resources::PageCursors;
use crate::scim::group_member;
use crate::store::Membership;

fn render(ctx: &RequestContext, membership: &Membership, params: &ListParams) -> Value {
    let rendered = group_member::render(
        &ctx.base_url,
        membership.group_id,
        membership.user_id,
        membership.created_at,
    );
    match rendered {
        Value::Object(map) => Value::Object(params.projection.apply(map)),
        other => other,
    }
}

/// POST: 201 with `Location`; 409 `uniqueness` for an existing membership.
pub async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&ctx.query, state.settings.max_results)?;
    let membership = state.resources.add_membership(&ctx.caller, body).await?;
    let id = group_member::id(membership.group_id, membership.user_id);
    Ok(ScimResponse {
        status: StatusCode::CREATED,
        body: Some(render(&ctx, &membership, &params).into()),
        etag: None,
        location: Some(format!("{}/GroupMembers/{id}", ctx.base_url)),
    })
}

/// GET by id.
pub async fn get(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&ctx.query, state.settings.max_results)?;
    let membership = state.resources.membership(&ctx.caller, &id).await?;
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: Some(render(&ctx, &membership, &params).into()),
        etag: None,
        location: None,
    })
}

/// DELETE: 204; the member leaves the group.
pub async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    state.resources.remove_membership(&ctx.caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// GET the collection: `filter`, `startIndex`/`count` or `cursor`, projection.
pub async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&ctx.query, state.settings.max_results)?;
    let page = state
        .resources
        .list_memberships(&ctx.caller, params.request.clone())
        .await?;
    let resources = page
        .items
        .iter()
        .map(|membership| render(&ctx, membership, &params).into())
        .collect();
    let cursors = PageCursors {
        next: page.next_cursor,
        previous: None,
    };
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: Some(list_response(
            resources,
            page.total,
            page.start_index,
            cursors,
        )),
        etag: None,
        location: None,
    })
}
