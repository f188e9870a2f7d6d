//! Discovery endpoints (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes[/{id}]`,
//! `/Schemas[/{id}]`. Same authentication as the rest of the SCIM API.

use axum::Extension;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};

use super::extract::{JsonBody, PathParams, ScimResponse, scim_base_url};
use super::list::{DEFAULT_COUNT, list_response};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::resources::PageCursors;
use crate::scim::ScimError;
use crate::scim::discovery::{BulkLimits, find_schema, schema_json, service_provider_config};
use crate::scim::schema::{all_resource_types, all_schemas};

fn ok(body: impl Into<JsonBody>) -> ScimResponse {
    ScimResponse {
        status: StatusCode::OK,
        body: Some(body.into()),
        etag: None,
        location: None,
    }
}

/// GET /ServiceProviderConfig — RFC 7644 §4, RFC 7643 §5.
pub async fn get_service_provider_config(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> ScimResponse {
    let base = scim_base_url(&state.settings, &uri, &headers);
    ok(service_provider_config(
        &base,
        state.settings.max_results,
        DEFAULT_COUNT,
        BulkLimits {
            max_operations: state.settings.bulk_max_operations,
            max_payload_bytes: state.settings.bulk_max_payload_bytes,
        },
        state.settings.profile.is_interop() && state.settings.tls,
        state.settings.cursor_timeout.as_secs(),
    ))
}

/// GET /ResourceTypes — RFC 7644 §4, RFC 7643 §6.
pub async fn list_resource_types(
    State(state): State<AppState>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> ScimResponse {
    let base = scim_base_url(&state.settings, &uri, &headers);
    let types: Vec<JsonBody> = all_resource_types()
        .iter()
        .map(|rt| rt.to_json(&base).into())
        .collect();
    let total = types.len() as i64;
    ok(list_response(types, total, Some(1), PageCursors::default()))
}

/// GET /ResourceTypes/{id}
pub async fn get_resource_type(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let base = scim_base_url(&state.settings, &uri, &headers);
    let rt = all_resource_types()
        .into_iter()
        .find(|rt| rt.id.eq_ignore_ascii_case(&id))
        .ok_or_else(|| ScimError::not_found(format!("No resource type {id:?}")))?;
    Ok(ok(rt.to_json(&base)))
}

/// GET /Schemas — RFC 7644 §4, RFC 7643 §7; the user-attribute schema lists the org's keys.
pub async fn list_schemas(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let base = scim_base_url(&state.settings, &uri, &headers);
    let keys = state.store.list_user_attributes(principal.org_id).await?;
    let schemas: Vec<JsonBody> = all_schemas()
        .iter()
        .map(|s| schema_json(s, &base, &keys).into())
        .collect();
    let total = schemas.len() as i64;
    Ok(ok(list_response(
        schemas,
        total,
        Some(1),
        PageCursors::default(),
    )))
}

/// GET /Schemas/{id}
pub async fn get_schema(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    PathParams(id): PathParams<String>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let base = scim_base_url(&state.settings, &uri, &headers);
    let schema =
        find_schema(&id).ok_or_else(|| ScimError::not_found(format!("No schema {id:?}")))?;
    let keys = state.store.list_user_attributes(principal.org_id).await?;
    Ok(ok(schema_json(schema, &base, &keys)))
}
