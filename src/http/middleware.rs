//! Request layers inside routing: bearer authentication with per-address
//! failure limiting, the per-key rate limit with its `RateLimit-*` headers, the
//! per-organization concurrency limit, and the SCIM 404/405 fallbacks.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, OriginalUri, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::client_ip;
use super::{ApiError, AppState, ErrorReport};
use crate::auth::{AuthFailure, Principal};
use crate::ratelimit::RateDecision;
use crate::ratelimit::now_ns;
use crate::scim::ScimError;
use crate::store::RejectedWrite;
use crate::store::activity::ActivityKind;
use crate::store::{KeyKind, KeyUse};

/// Authenticates the organization API key, then counts the request against that key's limit,
/// then waits for one of the organization's concurrency permits.
pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let now = now_ns();
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // The token is checked first: a valid key is never refused because other clients behind
    // the same address (an IdP's egress, a reverse proxy) failed. Checking a bad token costs
    // one HMAC, no database round trip, so guesses are cheap to refuse at any rate.
    let principal = match state.auth.authenticate(header_value).await {
        Ok(principal) => principal,
        Err(failure) => return refuse(&state, &req, failure, now),
    };
    note_use(&state, KeyKind::Organization, principal.key_id, &req);

    let limit = state.settings.rate_limit;
    let route = req.extensions().get::<MatchedPath>().cloned();
    // A Bulk request pays one token per operation, all at once, once its operations are
    // counted (`http/bulk.rs`): not here.
    let bulk = route
        .as_ref()
        .is_some_and(|r| r.as_str().ends_with("/Bulk"));
    let bucket = key_bucket(principal.key_id);
    let leased = if bulk {
        None
    } else {
        state.leases.spend(&bucket, now)
    };
    let decision = match leased {
        _ if bulk => None,
        Some(decision) => Some(decision),
        None => {
            let want = state.leases.want(&bucket, now, limit);
            match state.store.rate_limit(&bucket, now, limit, want).await {
                Ok(decision) => {
                    state.leases.record(&bucket, now, limit, want, &decision);
                    Some(decision)
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    let mut response = if let Some(decision) = decision.filter(|d| !d.allowed) {
        crate::metrics::rate_limited("key");
        crate::metrics::refused_for_key(principal.key_id, 429);
        ApiError::RateLimited {
            retry_after_secs: ceil_secs(decision.retry_after_ms),
        }
        .into_response()
    } else {
        let write = WriteRequest::of(&state, &principal, &req);
        if let Some(write) = &write {
            // The handler's change-log entry names the same actor: built once.
            req.extensions_mut()
                .insert(std::sync::Arc::clone(&write.actor));
        }
        req.extensions_mut().insert(principal.clone());
        // At most `org_concurrency` requests of one organization run at once, so one tenant
        // cannot hold every database connection; the rest wait here, holding no connection.
        let wait = state.settings.request_timeout / 2;
        let response = match state.org_gate.enter(principal.org_id, wait).await {
            Some(_permit) => next.run(req).await,
            None => {
                crate::metrics::rate_limited("org_concurrency");
                ApiError::OrganizationBusy {
                    limit: state.settings.org_concurrency,
                }
                .into_response()
            }
        };
        if let Some(write) = write {
            write.record(&state, &response);
        }
        response
    };
    if let Some(decision) = &decision {
        rate_limit_headers(response.headers_mut(), limit.limit, decision);
    }
    // The key's limit, here or a Bulk's (`http/bulk.rs`).
    if response.status() == StatusCode::TOO_MANY_REQUESTS {
        let at = crate::store::now_ms();
        state
            .store
            .activity()
            .count(principal.org_id, at, ActivityKind::Throttled, "");
    }
    // For the access log, which runs outside routing and authentication.
    response.extensions_mut().insert(principal);
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// The rate-limit bucket of an organization key.
pub(super) fn key_bucket(key_id: uuid::Uuid) -> String {
    // Joined, not formatted: every authenticated request builds it.
    let mut id = uuid::Uuid::encode_buffer();
    ["key:", key_id.hyphenated().encode_lower(&mut id)].concat()
}

/// The response to a failed authentication. A client that keeps failing is told to slow
/// down (per address), so keys cannot be guessed at speed.
fn refuse(state: &AppState, req: &Request, failure: AuthFailure, now: i64) -> Response {
    crate::metrics::auth_failure(failure.reason());
    // A genuine key on the wrong endpoint is not a guess, and an outage is nobody's guess.
    let genuine = matches!(
        failure,
        AuthFailure::Personal
            | AuthFailure::AdminKey
            | AuthFailure::NotAdmin
            | AuthFailure::Unavailable
    );
    if !genuine {
        // Only a failing request needs its address: worked out here, off the hot path.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let address = client_ip::client_addr(peer, req.headers(), &state.settings.trusted_proxies)
            .map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        let failures = state.auth_failures.check(
            &format!("auth-failures:{address}"),
            now,
            state.settings.auth_failure_limit,
        );
        if !failures.allowed {
            crate::metrics::rate_limited("auth_failures");
            return ApiError::RateLimited {
                retry_after_secs: ceil_secs(failures.retry_after_ms),
            }
            .into_response();
        }
    }
    ApiError::Auth(failure).into_response()
}

/// Records a key's use (when, from which address, with which `User-Agent`) at most once a
/// minute per key: the address is worked out only then.
fn note_use(state: &AppState, kind: KeyKind, key_id: uuid::Uuid, req: &Request) {
    state.auth.note_use(kind, key_id, || {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // The address and `User-Agent` as the change log names them.
        let actor = super::context::request_actor(state, None, None, req.headers(), peer);
        KeyUse {
            at: crate::store::now_ms(),
            client_addr: actor.client_addr.map(|ip| ip.to_string()),
            user_agent: actor.user_agent,
        }
    });
}

/// Authenticates an admin key for the admin API, then counts the request against that
/// key's rate limit (the same limit as an organization key's).
pub async fn authenticate_admin(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let now = now_ns();
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = match state.auth.authenticate_admin(header_value).await {
        Ok(principal) => principal,
        Err(failure) => return refuse(&state, &req, failure, now),
    };
    note_use(&state, KeyKind::Admin, principal.key_id, &req);
    let limit = state.settings.rate_limit;
    let bucket = format!("admin-key:{}", principal.key_id);
    let decision = match state.store.rate_limit(&bucket, now, limit, 1).await {
        Ok(decision) => decision,
        Err(e) => return ApiError::from(e).into_response(),
    };
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
    response
}

/// A SCIM write request (POST, PUT, PATCH, DELETE; not a `.search`), noted before it runs so
/// that a refusal can be recorded afterwards.
struct WriteRequest {
    org_id: uuid::Uuid,
    actor: std::sync::Arc<crate::store::Actor>,
    method: &'static str,
    path: String,
}

impl WriteRequest {
    fn of(state: &AppState, principal: &Principal, req: &Request) -> Option<WriteRequest> {
        let method = req.method();
        let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        // The path as the client sent it, not as the nested router sees it.
        let path = req
            .extensions()
            .get::<OriginalUri>()
            .map_or_else(|| req.uri().path(), |uri| uri.path());
        if !writes.contains(method) || path.ends_with("/.search") {
            return None;
        }
        Some(WriteRequest {
            org_id: principal.org_id,
            actor: std::sync::Arc::new(super::context::actor(
                state,
                principal.clone(),
                req.headers(),
                req.extensions(),
            )),
            method: crate::metrics::method_label(method),
            path: path.to_string(),
        })
    }

    /// Counts the write in the organization's activity; a 4xx is counted and recorded as a
    /// rejected write (401 never gets here and a 429 is counted as such, not recorded).
    fn record(self, state: &AppState, response: &Response) {
        let activity = state.store.activity();
        let at = crate::store::now_ms();
        activity.count(self.org_id, at, ActivityKind::Write, self.method);
        let status = response.status();
        if !status.is_client_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return;
        }
        let report = response.extensions().get::<ErrorReport>();
        let why: std::borrow::Cow<'static, str> = match report.and_then(|r| r.scim_type) {
            Some(scim_type) => scim_type.as_str().into(),
            None => status.as_u16().to_string().into(),
        };
        activity.count(self.org_id, at, ActivityKind::Rejected, why);
        state.rejections.offer(RejectedWrite {
            org_id: self.org_id,
            id: uuid::Uuid::now_v7(),
            at: crate::store::now_ms(),
            key_id: self.actor.key_id,
            key_name: self.actor.key_name.as_deref().map(str::to_string),
            request_id: self.actor.request_id.clone(),
            client_addr: self.actor.client_addr.map(|a| a.to_string()),
            user_agent: self.actor.user_agent.clone(),
            method: self.method.to_string(),
            path: self.path,
            status: status.as_u16(),
            scim_type: report
                .and_then(|r| r.scim_type)
                .map(|t| t.as_str().to_string()),
            detail: report.map(|r| r.detail.clone()),
        });
    }
}

/// The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers), in seconds.
pub(super) fn rate_limit_headers(headers: &mut HeaderMap, limit: u64, decision: &RateDecision) {
    const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
    const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
    const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");
    headers.insert(LIMIT, HeaderValue::from(limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(ceil_secs(decision.reset_ms)));
}

/// Whole seconds, rounded up: `Retry-After: 0` would invite an immediate retry.
pub(super) fn ceil_secs(ms: i64) -> u64 {
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
