//! The two event endpoints outside SCIM's API-key authentication: the JWKS that verifies
//! SETs (public), and the RFC 8936 poll endpoint, authenticated by the stream's own token.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::AppState;
use super::extract::PathParams;
use crate::events::poll::{PollRequest, poll as poll_stream};
use crate::store::{StoreError, StreamKind, StreamState};

/// An RFC 8935 §2.4-style error: `{"err": code, "description": text}`.
fn error(status: StatusCode, err: &str, description: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({"err": err, "description": description}).to_string(),
    )
        .into_response()
}

/// `GET /events/jwks.json`: the public keys SETs are signed with (RFC 7517).
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state.events.signer().await {
        Ok(signer) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jwk-set+json"),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("max-age=300"),
                ),
            ],
            signer.jwks().to_string(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "event signing keys unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "signing keys unavailable",
            )
        }
    }
}

pub use crate::events::poll_token_hash as token_hash;

/// `POST /events/streams/{id}/poll` (RFC 8936 §2.4), with `Authorization: Bearer <token>`.
pub async fn poll(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such poll stream");
    let Ok(id) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let stream = match state.store.stream(id).await {
        Ok(stream) if stream.kind == StreamKind::Poll => stream,
        Ok(_) | Err(StoreError::NotFound) => return not_found(),
        Err(e) => {
            tracing::error!(error = %e, "reading a stream failed");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unavailable",
            );
        }
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let expected = stream.poll_token_hash.as_deref().unwrap_or_default();
    let matches: bool = token_hash(token)
        .as_bytes()
        .ct_eq(expected.as_bytes())
        .into();
    if token.is_empty() || !matches {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "the stream's poll token is required: Authorization: Bearer <token>",
        );
    }
    if stream.state == StreamState::Disabled {
        return error(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this stream is disabled",
        );
    }
    let request: PollRequest = if body.is_empty() {
        PollRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string());
            }
        }
    };
    let signer = match state.events.signer().await {
        Ok(signer) => signer,
        Err(e) => {
            tracing::error!(error = %e, "event signing keys unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "signing keys unavailable",
            );
        }
    };
    // A long poll waits at most half the request timeout, and never more than 25 s.
    let max_wait = (state.settings.request_timeout / 2).min(std::time::Duration::from_secs(25));
    let audience = format!("{}/events/streams/{id}", state.events.issuer);
    match poll_stream(
        &*state.store,
        &signer,
        &state.events.issuer,
        &audience,
        &stream,
        &request,
        max_wait,
    )
    .await
    {
        Ok(response) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            serde_json::to_string(&response).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, stream = %id, "poll failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the poll could not be answered",
            )
        }
    }
}
