//! Operational endpoints outside `/scim/v2`, without SCIM authentication: liveness,
//! readiness, metrics (optionally behind its own token) and the OpenAPI contract.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::AppState;

/// GET /healthz — the process is alive and serving; touches no database.
pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// GET /readyz — the database answers and its migrations are current; 503 with the reason
/// otherwise, so a load balancer stops sending traffic until it recovers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": reason})),
        )
            .into_response()
    };
    match state.store.migrations_current().await {
        Ok(true) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "database": state.store.kind()})),
        )
            .into_response(),
        Ok(false) => unavailable("database migrations are behind this version of scimd"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable("database unreachable")
        }
    }
}

/// GET /metrics — Prometheus text format. With `SCIMD_METRICS_TOKEN` set, only for
/// `Authorization: Bearer <token>` (401 otherwise). Gauges that need the database are read
/// here, at scrape time, so requests never pay for them.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.metrics_token
        && !bearer_matches(&headers, token)
    {
        let mut response = (StatusCode::UNAUTHORIZED, "metrics token required\n").into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scimd-metrics\""),
        );
        return response;
    }
    let (open, idle) = state.store.pool_state();
    crate::metrics::pool(open, idle);
    match state.store.resource_counts().await {
        Ok(counts) if state.settings.metrics_per_org => {
            for (org, users, groups) in counts {
                crate::metrics::resources(&org, users, groups);
            }
        }
        Ok(counts) => {
            let (users, groups) = counts
                .iter()
                .fold((0, 0), |(u, g), (_, users, groups)| (u + users, g + groups));
            crate::metrics::resource_totals(users, groups);
        }
        Err(e) => tracing::warn!(error = %e, "metrics: resource counts unavailable"),
    }
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}

/// Whether `Authorization` carries exactly `Bearer <token>`, compared in constant time so the
/// answer's timing does not reveal how much of a guess was right.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or("");
    bool::from(presented.trim().as_bytes().ct_eq(token.as_bytes()))
}

/// The HTTP contract, embedded at build time so the served copy is the one tested.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// GET /openapi.yaml — the OpenAPI 3.1 contract of this server.
pub async fn openapi() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/yaml")],
        OPENAPI_YAML,
    )
        .into_response()
}
