//! `POST /.search` at the service root (RFC 7644 §3.4.3): one query over Users and Groups,
//! run by the resource layer; users first, then groups.

use axum::extract::State;
use axum::http::StatusCode;

use super::context::RequestContext;
use super::extract::{ScimBody, ScimResponse};
use super::list::{ListParams, list_response};
use super::resources::render;
use super::{ApiError, AppState};
use crate::resources::{Groups, PageCursors, Users};

pub async fn search_all(
    State(state): State<AppState>,
    ctx: RequestContext,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let ListParams {
        request,
        projection,
    } = ListParams::from_search_body(&body, state.settings.max_results)?;
    let page = state
        .resources
        .search_all(&ctx.caller, request, |name| projection.includes(name))
        .await?;
    let users = page
        .users
        .into_iter()
        .map(|user| render::<Users>(&ctx, user, &projection));
    let groups = page
        .groups
        .into_iter()
        .map(|group| render::<Groups>(&ctx, group, &projection));
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: Some(list_response(
            users.chain(groups).collect::<Result<_, _>>()?,
            page.total,
            Some(page.start_index),
            PageCursors::default(),
        )),
        etag: None,
        location: None,
    })
}
