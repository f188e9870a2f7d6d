//! The envelope around every request, outside routing: its request id (in its log lines), the
//! forwarded headers of untrusted peers dropped, its timeout, and its access-log line and metrics.
//!
//! One layer rather than six: as separate layers (`tower-http`'s request-id pair, its trace
//! layer and three axum middleware functions) each moved the request through a future of its
//! own, about 12,000 instructions of a GET by id's 97,000 (BENCHMARKS.md).

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, client_ip};
use crate::auth::Principal;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `x-request-id` taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// When a request arrived (its timeout counts from then), as a request extension.
#[derive(Debug, Clone, Copy)]
pub struct RequestStarted(pub Instant);

/// Gives the request its id and drops what an untrusted peer may not say, then runs it as that
/// request (`telemetry::in_request`) under the request timeout, and writes one access-log
/// line (request id, method, route template, status, latency, org; never headers, tokens or
/// bodies). The id is echoed in the response's `x-request-id`.
pub async fn envelope(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    // When the request timeout started: a Bulk's time budget counts from here too.
    req.extensions_mut().insert(RequestStarted(started));
    let request_id = request_id(req.headers_mut());
    drop_untrusted_forwarded_headers(&state, &mut req);
    // Any token is a valid method name: only the standard ones are named in logs and metrics.
    let method = crate::metrics::method_label(req.method());
    let id = request_id.to_str().unwrap_or("-");
    // The request's id goes into every log line of the request, including the error logged
    // for a 5xx.
    let work = async {
        let response =
            match tokio::time::timeout(state.settings.request_timeout, next.run(req)).await {
                Ok(response) => response,
                Err(_) => ApiError::Timeout.into_response(),
            };
        access_log(id, method, started, &response);
        response
    };
    let mut response = crate::telemetry::in_request(request_id.clone(), work).await;
    response.headers_mut().insert(X_REQUEST_ID, request_id);
    response
}

/// The request's id: the client's `x-request-id` when it is one value of 1-64 characters of
/// `A-Z a-z 0-9 . _ : -` (UUIDs, trace ids), else a fresh UUID, which replaces what the
/// client sent. The id is echoed and written to every log line of the request: unbounded, it
/// was a free way to amplify traffic and logs.
fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(X_REQUEST_ID).iter();
    if let (Some(value), None) = (values.next(), values.next())
        && safe_request_id(value.as_bytes())
    {
        return value.clone();
    }
    let mut text = uuid::Uuid::encode_buffer();
    let fresh = HeaderValue::from_str(uuid::Uuid::new_v4().hyphenated().encode_lower(&mut text))
        .unwrap_or(HeaderValue::from_static("-"));
    headers.insert(X_REQUEST_ID, fresh.clone());
    fresh
}

fn safe_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Removes the `X-Forwarded-*` headers of any peer that is not a trusted proxy, so nothing
/// further in (the failed-authentication limit, `meta.location`) can believe a client's word.
fn drop_untrusted_forwarded_headers(state: &AppState, req: &mut Request) {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if !peer.is_some_and(|peer| state.settings.trusted_proxies.contains(peer)) {
        for name in &client_ip::FORWARDED_HEADERS {
            req.headers_mut().remove(name);
        }
    }
}

/// The request's metrics and its access-log line; the route and organization come from the
/// response's extensions (routing and authentication run inside this layer).
fn access_log(request_id: &str, method: &'static str, started: Instant, response: &Response) {
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("-", MatchedPath::as_str);
    let mut org = uuid::Uuid::encode_buffer();
    let org_id: &str = match response.extensions().get::<Principal>() {
        Some(principal) => principal.org_id.hyphenated().encode_lower(&mut org),
        None => "-",
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    crate::metrics::request(method, route, status, elapsed.as_secs_f64());
    crate::telemetry::access_log(&crate::telemetry::AccessLine {
        request_id,
        method,
        route,
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
        org_id,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_short_and_plain_or_not_taken() {
        for good in [
            "abc",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "a.b_c:d-e",
            &"x".repeat(64),
        ] {
            assert!(safe_request_id(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a\"b",
            "abc\u{e9}",
            "<script>",
            "a/b",
        ] {
            assert!(!safe_request_id(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_request_keeps_one_plain_id_and_gets_a_fresh_one_otherwise() {
        let mut one = HeaderMap::new();
        one.insert(X_REQUEST_ID, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&mut one), "abc-123");

        for sent in [vec![], vec!["a b"], vec!["abc", "def"]] {
            let mut headers = HeaderMap::new();
            for value in &sent {
                headers.append(X_REQUEST_ID, HeaderValue::from_static(value));
            }
            let id = request_id(&mut headers);
            assert!(
                uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
                "{sent:?}"
            );
            let now: Vec<_> = headers.get_all(X_REQUEST_ID).iter().collect();
            assert_eq!(now, vec![&id], "the fresh id replaces {sent:?}");
        }
    }
}
