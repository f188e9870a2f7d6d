//! Request layers: bearer authentication with per-IP failure limiting, the per-key rate limit
//! with its `RateLimit-*` headers, and the SCIM 404/405 fallbacks.

use std::net::SocketAddr;

use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::auth::{AuthFailure, Principal};
use crate::ratelimit::now_ns;
use crate::scim::ScimError;
use crate::store::RateDecision;

/// Authenticates the organization API key, then counts the request against that key's limit.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    let ip_bucket = format!("auth-failures:{ip}");
    let now = now_ns();

    // A client that keeps failing is refused before its token is even looked at, so keys
    // cannot be guessed at speed.
    let failures = state
        .auth_failures
        .peek(&ip_bucket, now, state.settings.auth_failure_limit);
    if !failures.allowed {
        crate::metrics::rate_limited("auth_failures");
        return ApiError::RateLimited {
            retry_after_secs: ceil_secs(failures.retry_after_ms),
        }
        .into_response();
    }

    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.auth.authenticate(header_value).await {
        Ok(principal) => principal,
        Err(failure) => {
            crate::metrics::auth_failure(failure.reason());
            // A genuine personal token is not a guess, and an outage is nobody's guess.
            if !matches!(failure, AuthFailure::Personal | AuthFailure::Unavailable) {
                state
                    .auth_failures
                    .check(&ip_bucket, now, state.settings.auth_failure_limit);
            }
            return ApiError::Auth(failure).into_response();
        }
    };

    let limit = state.settings.rate_limit;
    let bucket = format!("key:{}", principal.key_id);
    let decision = match state.leases.spend(&bucket, now) {
        Some(decision) => decision,
        None => {
            let want = state.leases.want(&bucket, now, limit);
            match state.store.rate_limit(&bucket, now, limit, want).await {
                Ok(decision) => {
                    state.leases.record(&bucket, now, limit, want, &decision);
                    decision
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = if decision.allowed {
        req.extensions_mut().insert(principal);
        next.run(req).await
    } else {
        crate::metrics::rate_limited("key");
        ApiError::RateLimited {
            retry_after_secs: ceil_secs(decision.retry_after_ms),
        }
        .into_response()
    };
    rate_limit_headers(response.headers_mut(), limit.limit, &decision);
    // For the access log, which runs outside routing and authentication.
    response.extensions_mut().insert(principal);
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// The outermost layer: enforces the request timeout and writes one access-log line per
/// request (request id, method, route template, status, latency, org) — never headers,
/// tokens or bodies.
pub async fn access_log(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let response = match tokio::time::timeout(state.settings.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    };
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "-".to_string());
    let org_id = response
        .extensions()
        .get::<Principal>()
        .map(|p| p.org_id.to_string())
        .unwrap_or_else(|| "-".to_string());
    let elapsed = started.elapsed();
    crate::metrics::request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        elapsed.as_secs_f64(),
    );
    tracing::info!(
        request_id,
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        org_id,
        "request"
    );
    response
}

/// The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), in seconds.
fn rate_limit_headers(headers: &mut HeaderMap, limit: u64, decision: &RateDecision) {
    headers.insert("ratelimit-limit", HeaderValue::from(limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert(
        "ratelimit-reset",
        HeaderValue::from(ceil_secs(decision.reset_ms)),
    );
}

/// Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
fn ceil_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

/// Unknown routes: a SCIM 404, not axum's empty body.
pub async fn not_found() -> ApiError {
    ScimError::not_found("No such endpoint").into()
}

/// Known route, unsupported method: a SCIM 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_secs_rounds_up_and_never_goes_negative() {
        for (ms, secs) in [(0, 0), (1, 1), (999, 1), (1000, 1), (1001, 2), (-5, 0)] {
            assert_eq!(ceil_secs(ms), secs, "{ms}");
        }
    }
}
