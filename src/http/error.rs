//! `ApiError` and the one place that turns any error into an RFC 7644 §3.12 response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthFailure;
use crate::resources::ResourceError;
use crate::scim::{ERROR_SCHEMA, ScimError, ScimType};
use crate::store::StoreError;

/// Content type of every SCIM response (RFC 7644 §3.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Everything a handler or layer can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("authentication failed: {}", .0.reason())]
    Auth(AuthFailure),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The organization's concurrent requests (`SCIMD_ORG_CONCURRENCY`) stayed busy for the
    /// whole wait: a 503 whose detail names the cap, so the client knows to slow down.
    #[error("organization busy: {limit} concurrent requests")]
    OrganizationBusy { limit: usize },
    #[error("bulk requests busy")]
    BulkBusy { limit: usize },
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("request timed out")]
    Timeout,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<ResourceError> for ApiError {
    fn from(e: ResourceError) -> Self {
        match e {
            ResourceError::Scim(e) => ApiError::Scim(e),
            ResourceError::Store(e) => e.into(),
            ResourceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::Scim(ScimError::not_found("Resource not found")),
            StoreError::Conflict(attr) => ApiError::Scim(ScimError::uniqueness(format!(
                "{attr} is already in use in this organization"
            ))),
            StoreError::Rejected(e) => ApiError::Scim(e),
            StoreError::UndefinedUserAttribute(key) => ApiError::Scim(
                crate::scim::user::undefined_user_attribute(&key, Default::default()),
            ),
            StoreError::Backend(sqlx::Error::PoolTimedOut) => {
                ApiError::Unavailable("database connection pool exhausted".into())
            }
            timeout if timeout.is_statement_timeout() => ApiError::Unavailable(
                "statement timeout: the database stopped a query that ran too long".into(),
            ),
            unavailable if unavailable.is_unavailable() => {
                ApiError::Unavailable("database unreachable".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The RFC 7644 §3.12 body: `status` is a string, `scimType` only when there is one.
pub fn error_body(
    status: StatusCode,
    scim_type: Option<ScimType>,
    detail: &str,
) -> serde_json::Value {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t.as_str());
    }
    body
}

/// An error's status and RFC 7644 §3.12 body, as its response would have them (a Bulk
/// operation's `response`): the same mapping as [`IntoResponse`], read back.
pub fn error_parts(e: ApiError) -> (StatusCode, serde_json::Value) {
    let response = e.into_response();
    let status = response.status();
    let (scim_type, detail) = match response.extensions().get::<ErrorReport>() {
        Some(report) => (report.scim_type, report.detail.clone()),
        None => (
            None,
            status.canonical_reason().unwrap_or("error").to_string(),
        ),
    };
    (status, error_body(status, scim_type, &detail))
}

/// What an error response said, kept on the response for the rejected-writes record.
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

fn scim_response(status: StatusCode, scim_type: Option<ScimType>, detail: &str) -> Response {
    let body = error_body(status, scim_type, detail).to_string();
    let report = ErrorReport {
        scim_type,
        detail: detail.to_string(),
    };
    let mut response = (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(SCIM_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response();
    response.extensions_mut().insert(report);
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Scim(e) => {
                let status =
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                scim_response(status, e.scim_type, &e.detail)
            }
            ApiError::Auth(AuthFailure::Personal) => scim_response(
                StatusCode::FORBIDDEN,
                None,
                "Personal Access Tokens are not supported for this endpoint",
            ),
            ApiError::Auth(AuthFailure::AdminKey) => scim_response(
                StatusCode::FORBIDDEN,
                None,
                "An admin key is for the admin API (/admin/v1); SCIM requests need an \
                 organization API key",
            ),
            ApiError::Auth(AuthFailure::NotAdmin) => scim_response(
                StatusCode::FORBIDDEN,
                None,
                "The admin API needs an admin key (scimd admin-key create)",
            ),
            ApiError::Auth(AuthFailure::Unavailable) => {
                ApiError::Unavailable("authentication store unreachable".into()).into_response()
            }
            ApiError::Auth(failure) => {
                tracing::debug!(reason = failure.reason(), "authentication refused");
                let mut response = scim_response(
                    StatusCode::UNAUTHORIZED,
                    None,
                    "A valid API key is required (Authorization: Bearer <key>)",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"scimd\""),
                );
                response
            }
            ApiError::RateLimited { retry_after_secs } => {
                let mut response = scim_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    None,
                    &format!("Rate limit exceeded; retry after {retry_after_secs} seconds"),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            ApiError::BulkBusy { limit } => {
                let mut response = scim_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    &format!(
                        "This server already runs {limit} Bulk requests (SCIMD_BULK_CONCURRENCY) \
                         and none finished within the Bulk time budget; retry later"
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            ApiError::OrganizationBusy { limit } => {
                let mut response = scim_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    &format!(
                        "This organization already has {limit} requests in progress \
                         (SCIMD_ORG_CONCURRENCY); retry later"
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            ApiError::Unavailable(reason) => {
                tracing::warn!(%reason, "service unavailable");
                let mut response = scim_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "Service temporarily unavailable; retry later",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                response
            }
            ApiError::PayloadTooLarge => scim_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                None,
                "Request body exceeds the 1 MiB limit",
            ),
            ApiError::MethodNotAllowed => scim_response(
                StatusCode::METHOD_NOT_ALLOWED,
                None,
                "Method not allowed on this endpoint",
            ),
            ApiError::Timeout => scim_response(
                StatusCode::GATEWAY_TIMEOUT,
                None,
                "The request took too long and was abandoned; nothing was changed",
            ),
            ApiError::Internal(e) => {
                // The cause goes to the log (with the request's id, see `telemetry::in_request`),
                // never to the client.
                tracing::error!(error = ?e, "internal error");
                scim_response(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_type(e: ApiError) -> (u16, Option<String>) {
        let response = e.into_response();
        let status = response.status().as_u16();
        let scim_type = None::<String>;
        (status, scim_type)
    }

    #[test]
    fn every_error_maps_to_its_status() {
        let cases: Vec<(ApiError, u16)> = vec![
            (ScimError::invalid_value("x").into(), 400),
            (ScimError::uniqueness("x").into(), 409),
            (ScimError::not_found("x").into(), 404),
            (StoreError::NotFound.into(), 404),
            (StoreError::Conflict("userName").into(), 409),
            (ApiError::Auth(AuthFailure::Missing), 401),
            (ApiError::Auth(AuthFailure::Revoked), 401),
            (ApiError::Auth(AuthFailure::Personal), 403),
            (ApiError::Auth(AuthFailure::AdminKey), 403),
            (ApiError::Auth(AuthFailure::NotAdmin), 403),
            (ApiError::Auth(AuthFailure::OrgDeleted), 401),
            (ApiError::Auth(AuthFailure::RetiredSecret), 401),
            (ApiError::Auth(AuthFailure::Unavailable), 503),
            (
                ApiError::RateLimited {
                    retry_after_secs: 3,
                },
                429,
            ),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::MethodNotAllowed, 405),
            (ApiError::Timeout, 504),
            (ApiError::Unavailable("db".into()), 503),
            (ApiError::OrganizationBusy { limit: 4 }, 503),
            (ApiError::BulkBusy { limit: 2 }, 503),
            (ApiError::Internal(anyhow::anyhow!("secret detail")), 500),
        ];
        for (error, want) in cases {
            let label = format!("{error:?}");
            assert_eq!(status_and_type(error).0, want, "{label}");
        }
    }

    #[test]
    fn error_body_carries_status_as_string_and_optional_scim_type() {
        let body = error_body(
            StatusCode::BAD_REQUEST,
            Some(ScimType::InvalidSyntax),
            "bad",
        );
        assert_eq!(body["status"], "400");
        assert_eq!(body["scimType"], "invalidSyntax");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        let body = error_body(StatusCode::NOT_FOUND, None, "gone");
        assert!(body.get("scimType").is_none());
    }
}
