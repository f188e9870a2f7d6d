//! `/Users` and `/Groups` (RFC 7644 §3): one set of handlers for every resource type, generic
//! over [`ResourceKind`]. Each extracts, calls the resource layer and renders; what differs
//! between types lives in `src/resources/`.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::context::RequestContext;
use super::extract::{JsonBody, PathParams, ScimBody, ScimResponse};
use super::list::{ListBody, ListParams, Projection};
use super::{ApiError, AppState};
use crate::resources::{Loaded, ResourceKind, View};
use crate::scim::etag::etag;
use crate::scim::schema::GROUP_MEMBERS_EXTENSION_SCHEMA;
use crate::store::Versioned;

/// A resource rendered as the client sees it, projected (RFC 7644 §3.4.2.5), as JSON text.
pub(super) fn render<K: ResourceKind>(
    ctx: &RequestContext,
    loaded: Loaded<K::Record>,
    projection: &Projection,
) -> Result<JsonBody, ApiError> {
    let mut text = Vec::new();
    write_rendered::<K>(&view_of(ctx), loaded, projection, &mut text)?;
    Ok(JsonBody::Text(text))
}

/// How `ctx`'s request is shown resources: where the API is, and the profile.
fn view_of(ctx: &RequestContext) -> View<'_> {
    View {
        base_url: &ctx.base_url,
        profile: ctx.profile,
    }
}

/// [`render`], appended to `out` (a page's buffer). Without a projection, a type that writes
/// its resources as text (see [`ResourceKind::render_text`]) writes it in place, with no
/// tree and no buffer of its own to copy from.
fn write_rendered<K: ResourceKind>(
    view: &View<'_>,
    loaded: Loaded<K::Record>,
    projection: &Projection,
    out: &mut Vec<u8>,
) -> Result<(), ApiError> {
    if !projection.is_requested() && K::render_text(view, &loaded.record, &loaded.related, out)? {
        return Ok(());
    }
    render_tree::<K>(view, loaded, projection)?.write_to(out);
    Ok(())
}

/// [`render`] through the resource's map: for a projection, or a type without text.
fn render_tree<K: ResourceKind>(
    view: &View<'_>,
    loaded: Loaded<K::Record>,
    projection: &Projection,
) -> Result<JsonBody, ApiError> {
    let mut rendered = K::render(view, loaded.record, &loaded.related)?;
    // Where a group's members are listed instead goes with `members`, whatever the
    // projection names (it is not a client attribute of its own).
    let elsewhere = rendered.remove(GROUP_MEMBERS_EXTENSION_SCHEMA);
    let mut out = projection.apply(rendered);
    if let Some(elsewhere) = elsewhere
        && projection.includes(K::RELATED)
    {
        out.insert(GROUP_MEMBERS_EXTENSION_SCHEMA.into(), elsewhere);
    }
    Ok(JsonBody::Tree(Value::Object(out)))
}

/// The response for one resource: its related resources read only when the projection
/// returns them, `ETag`, and `Location` for a 201.
async fn respond<K: ResourceKind>(
    state: &AppState,
    ctx: &RequestContext,
    record: K::Record,
    status: StatusCode,
    projection: &Projection,
) -> Result<ScimResponse, ApiError> {
    let (id, version) = (record.id(), record.version());
    let with_related = projection.includes(K::RELATED);
    let loaded = state
        .resources
        .load_one::<K>(&ctx.caller, record, with_related)
        .await?;
    let base = &ctx.base_url;
    Ok(ScimResponse {
        status,
        body: Some(render::<K>(ctx, loaded, projection)?),
        etag: Some(etag(version)),
        location: (status == StatusCode::CREATED)
            .then(|| format!("{base}{}/{id}", K::DEF.endpoint)),
    })
}

/// POST — RFC 7644 §3.3: 201 with `Location`; 409 `uniqueness` for a taken name.
pub async fn create<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = ctx.projection()?;
    let record = state.resources.create::<K>(&ctx.caller, body).await?;
    respond::<K>(&state, &ctx, record, StatusCode::CREATED, &projection).await
}

/// GET by id — RFC 7644 §3.4.1; related resources are read only when returned.
pub async fn get<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
) -> Result<ScimResponse, ApiError> {
    let projection = ctx.projection()?;
    let record = state.resources.get::<K>(&ctx.caller, &id).await?;
    let version = record.version();
    // RFC 7644 §3.14: a client holding the current version gets 304 and no body.
    if ctx
        .if_none_match
        .as_ref()
        .is_some_and(|c| c.matches(version))
    {
        return Ok(ScimResponse::not_modified(etag(version)));
    }
    respond::<K>(&state, &ctx, record, StatusCode::OK, &projection).await
}

/// PUT — the configured PUT mode (the reference's merge by default), one read-modify-write
/// transaction; a stale `If-Match` is 412.
pub async fn replace<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = ctx.projection()?;
    let record = state
        .resources
        .replace::<K>(&ctx.caller, &id, body, ctx.if_match.as_ref())
        .await?;
    respond::<K>(&state, &ctx, record, StatusCode::OK, &projection).await
}

/// PATCH — RFC 7644 §3.5.2: all operations or none, in one transaction; 200 with the
/// resource, or 204 where the type answers so (groups) and no attributes were asked for.
pub async fn patch<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
    ScimBody(body): ScimBody,
) -> Result<Response, ApiError> {
    let projection = ctx.projection()?;
    let record = state
        .resources
        .patch::<K>(&ctx.caller, &id, body, ctx.if_match.as_ref())
        .await?;
    if K::PATCH_ANSWERS_NO_CONTENT && !projection.is_requested() {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if let Ok(tag) = etag(record.version()).parse() {
            response.headers_mut().insert(header::ETAG, tag);
        }
        return Ok(response);
    }
    Ok(
        respond::<K>(&state, &ctx, record, StatusCode::OK, &projection)
            .await?
            .into_response(),
    )
}

/// DELETE — RFC 7644 §3.6: 204; afterwards the id is 404 everywhere.
pub async fn delete<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state
        .resources
        .delete::<K>(&ctx.caller, &id, ctx.if_match.as_ref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET the collection — RFC 7644 §3.4.2: filter, sort, index or cursor paging, projection.
pub async fn list<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&ctx.query, state.settings.max_results)?;
    list_page::<K>(&state, &ctx, params).await
}

/// POST `.search` — RFC 7644 §3.4.3: the same query in a body (keeps filters with personal
/// data out of URLs and logs).
pub async fn search<K: ResourceKind>(
    State(state): State<AppState>,
    ctx: RequestContext,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_search_body(&body, state.settings.max_results)?;
    list_page::<K>(&state, &ctx, params).await
}

async fn list_page<K: ResourceKind>(
    state: &AppState,
    ctx: &RequestContext,
    params: ListParams,
) -> Result<ScimResponse, ApiError> {
    let ListParams {
        request,
        projection,
    } = params;
    let with_related = projection.includes(K::RELATED);
    let page = state
        .resources
        .list::<K>(&ctx.caller, request, with_related)
        .await?;
    let view = view_of(ctx);
    let size: usize = page
        .items
        .iter()
        .map(|loaded| K::rendered_size_hint(&view, &loaded.record, &loaded.related))
        .sum();
    let mut body = ListBody::with_capacity(size + page.items.len());
    for loaded in page.items {
        write_rendered::<K>(&view, loaded, &projection, body.next_resource())?;
    }
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: Some(body.finish(page.total, page.start_index, page.cursors)),
        etag: None,
        location: None,
    })
}
