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
use super::envelope::RequestStarted;
use super::error::error_parts;
use super::extract::ScimBody;
use super::middleware::{ceil_secs, key_bucket, rate_limit_headers};
use super::{ApiError, AppState, SCIM_CONTENT_TYPE};
use crate::ratelimit::{RateDecision, now_ns};
use crate::resources::{BulkOutcome, BulkResult};
use crate::scim::ScimError;
use crate::scim::bulk::{BULK_RESPONSE_SCHEMA, parse_request};
use crate::scim::etag::etag;

/// `POST /Bulk`.
pub async fn bulk(State(state): State<AppState>, ctx: RequestContext, req: Request) -> Response {
    let settings = &state.settings;
    // The budget counts from the request's arrival, as the request timeout does (it may
    // have waited for its organization's turn).
    let started = req
        .extensions()
        .get::<RequestStarted>()
        .map_or_else(Instant::now, |s| s.0);
    let limit = settings.rate_limit.limit;
    let deadline = started + settings.bulk_time_budget;
    // What the request costs, and whether it can run: a request refused before its
    // operations are counted still costs one token (it was read and parsed).
    let (cost, request) = match read_body(&state, req).await {
        Err(e) => (1, Err(e)),
        Ok(body) => match parse_request(&body, settings.bulk_max_operations) {
            Err(e) => (1, Err(e.into())),
            Ok(request) if request.entries.len() as u64 > limit => {
                let detail = format!(
                    "The Bulk request has {} operations, more than this key may send in a \
                     minute ({limit}): split it, or use a key with a higher limit for imports",
                    request.entries.len()
                );
                let refusal = ScimError {
                    status: 413,
                    scim_type: None,
                    detail,
                };
                (1, Err(refusal.into()))
            }
            Ok(request) => (request.entries.len().max(1) as u64, Ok(request)),
        },
    };
    // At most `bulk_concurrency` Bulks run at once: their operations, results and responses
    // are what a Bulk holds in memory. The wait is first come, first served, ends with the
    // time budget, and starts once the body has been read (a client that sends its body
    // slowly never holds a turn) and before any token is taken.
    let slot = tokio::time::timeout_at(deadline.into(), state.bulk_slots.clone().acquire_owned());
    let _slot = match slot.await {
        Ok(Ok(permit)) => permit,
        _ => {
            crate::metrics::rate_limited("bulk_concurrency");
            let busy = ApiError::BulkBusy {
                limit: settings.bulk_concurrency,
            };
            return bulk_response(busy.into_response(), None, limit);
        }
    };
    let decision = match charge(&state, &ctx, cost).await {
        Ok(decision) => decision,
        Err(e) => return bulk_response(e.into_response(), None, limit),
    };
    if !decision.allowed {
        // Over what the key has left: nothing done, and Retry-After is when all fit.
        let key_id = ctx.caller.actor.key_id.unwrap_or_default();
        crate::metrics::rate_limited("key");
        crate::metrics::refused_for_key(key_id, 429);
        let refusal = ApiError::RateLimited {
            retry_after_secs: ceil_secs(decision.retry_after_ms),
        };
        return bulk_response(refusal.into_response(), Some(&decision), limit);
    }
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            return bulk_response(e.into_response(), Some(&decision), limit);
        }
    };
    let outcomes = state.resources.bulk(&ctx.caller, request, deadline).await;
    let rendered: Vec<Value> = outcomes
        .into_iter()
        .flatten()
        .map(|outcome| render(&ctx.base_url, outcome))
        .collect();
    let body = json!({"schemas": [BULK_RESPONSE_SCHEMA], "Operations": rendered});
    let response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        )],
        body.to_string(),
    )
        .into_response();
    bulk_response(response, Some(&decision), limit)
}

/// Every Bulk answer is uncached and, once the key was charged, says what it has left.
fn bulk_response(mut response: Response, decision: Option<&RateDecision>, limit: u64) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(decision) = decision {
        rate_limit_headers(headers, limit, decision);
    }
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

/// Takes `cost` tokens from the key, all or none.
async fn charge(
    state: &AppState,
    ctx: &RequestContext,
    cost: u64,
) -> Result<RateDecision, ApiError> {
    let key = key_bucket(ctx.caller.actor.key_id.unwrap_or_default());
    let limit = state.settings.rate_limit;
    Ok(state
        .store
        .rate_limit_all(&key, now_ns(), limit, cost, cost)
        .await?)
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
