//! `POST /Bulk` (RFC 7644 §3.7): reads the request (at most `maxPayloadSize` bytes and
//! `maxOperations` operations, else 413), charges the key one token per operation all at once
//! (more operations than the key's limit per minute can never pass: 413; more than it has
//! left: 429 with the true `Retry-After`, nothing done), runs the operations through the
//! resource layer within the Bulk time budget, and renders the `BulkResponse`.

use std::time::Instant;

use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::context::RequestContext;
use super::error::error_parts;
use super::extract::ScimBody;
use super::middleware::{ceil_secs, key_bucket, rate_limit_headers};
use super::{ApiError, AppState, SCIM_CONTENT_TYPE};
use crate::ratelimit::now_ns;
use crate::resources::{BulkOutcome, BulkResult};
use crate::scim::ScimError;
use crate::scim::bulk::{BULK_RESPONSE_SCHEMA, parse_request};
use crate::scim::etag::etag;

/// `POST /Bulk`.
pub async fn bulk(State(state): State<AppState>, ctx: RequestContext, req: Request) -> Response {
    let settings = &state.settings;
    let started = Instant::now();
    let body = match read_body(&state, req).await {
        Ok(body) => body,
        // A request that cannot be read still costs its one token.
        Err(e) => {
            return charged(&state, &ctx, 1)
                .await
                .err()
                .unwrap_or(e)
                .into_response();
        }
    };
    let request = match parse_request(&body, settings.bulk_max_operations) {
        Ok(request) => request,
        Err(e) => {
            return charged(&state, &ctx, 1)
                .await
                .err()
                .unwrap_or(e.into())
                .into_response();
        }
    };
    let operations = request.entries.len().max(1) as u64;
    let decision = match charged(&state, &ctx, operations).await {
        Ok(decision) => decision,
        Err(e) => return e.into_response(),
    };
    let deadline = started + settings.bulk_time_budget;
    let outcomes = state.resources.bulk(&ctx.caller, request, deadline).await;
    let rendered: Vec<Value> = outcomes
        .into_iter()
        .flatten()
        .map(|outcome| render(&ctx.base_url, outcome))
        .collect();
    let body = json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": rendered});
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        )],
        body.to_string(),
    )
        .into_response();
    rate_limit_headers(response.headers_mut(), settings.rate_limit.limit, &decision);
    response
}

/// The body as a JSON object, at most `maxPayloadSize` bytes (RFC 7644 §3.7.4: 413).
async fn read_body(state: &AppState, req: Request) -> Result<Map<String, Value>, ApiError> {
    let max = state.settings.bulk_max_payload_bytes;
    let too_large = || {
        ApiError::from(ScimError {
            status: 413,
            scim_type: None,
            detail: format!(
                "The Bulk request is larger than maxPayloadSize ({max} bytes, \
                 ServiceProviderConfig.bulk)"
            ),
        })
    };
    // The route's body limit is `maxPayloadSize` (`http/mod.rs`).
    match ScimBody::from_request(req, state).await {
        Ok(ScimBody(body)) => Ok(body),
        Err(ApiError::PayloadTooLarge) => Err(too_large()),
        Err(e) => Err(e),
    }
}

/// Takes `operations` tokens from the key, all or none: 413 when the key's limit per minute
/// is below them (no wait would help), 429 with the wait until they fit otherwise.
async fn charged(
    state: &AppState,
    ctx: &RequestContext,
    operations: u64,
) -> Result<crate::ratelimit::RateDecision, ApiError> {
    let limit = state.settings.rate_limit;
    if operations > limit.limit {
        return Err(ScimError {
            status: 413,
            scim_type: None,
            detail: format!(
                "The Bulk request has {operations} operations, more than this key may send \
                 in a minute ({}): split it, or use a key with a higher limit for imports",
                limit.limit
            ),
        }
        .into());
    }
    let key_id = ctx.caller.actor.key_id.unwrap_or_default();
    let decision = state
        .store
        .rate_limit_all(&key_bucket(key_id), now_ns(), limit, operations, operations)
        .await?;
    if !decision.allowed {
        crate::metrics::rate_limited("key");
        crate::metrics::refused_for_key(key_id, 429);
        return Err(ApiError::RateLimited {
            retry_after_secs: ceil_secs(decision.retry_after_ms),
        });
    }
    Ok(decision)
}

/// One operation of the `BulkResponse` (RFC 7644 §3.7.3): `status` as a string, `location`
/// and `version` when the resource exists, the error body as `response` when it failed.
fn render(base_url: &str, outcome: BulkOutcome) -> Value {
    let mut op = Map::new();
    if let Some(method) = outcome.method {
        op.insert("method".into(), Value::String(method));
    }
    if let Some(bulk_id) = outcome.bulk_id {
        op.insert("bulkId".into(), Value::String(bulk_id));
    }
    let status = match outcome.result {
        BulkResult::Done {
            id,
            version,
            status,
        } => {
            if let Some(endpoint) = outcome.endpoint {
                let location = format!("{base_url}{}/{id}", endpoint.as_str());
                op.insert("location".into(), Value::String(location));
            }
            if let Some(version) = version {
                op.insert("version".into(), Value::String(etag(version)));
            }
            status
        }
        BulkResult::Failed(e) => {
            let (status, body) = error_parts(e.into());
            op.insert("response".into(), body);
            status.as_u16()
        }
        BulkResult::NotStarted => {
            let detail = "Not started: the Bulk request's time budget ran out first";
            let status = StatusCode::SERVICE_UNAVAILABLE;
            op.insert("response".into(), super::error_body(status, None, detail));
            status.as_u16()
        }
    };
    op.insert("status".into(), Value::String(status.to_string()));
    Value::Object(op)
}
