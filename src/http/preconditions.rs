//! Conditional requests (RFC 7644 §3.14): reading `If-Match` / `If-None-Match`. The check
//! itself is [`crate::scim::etag::check_if_match`], run by the resource layer.

use axum::http::{HeaderMap, HeaderName, header};

use crate::scim::etag::EtagCondition;

fn condition(headers: &HeaderMap, name: HeaderName) -> Option<EtagCondition> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(EtagCondition::parse)
}

/// The request's `If-Match`, when present.
pub fn if_match(headers: &HeaderMap) -> Option<EtagCondition> {
    condition(headers, header::IF_MATCH)
}

/// The request's `If-None-Match`, when present.
pub fn if_none_match(headers: &HeaderMap) -> Option<EtagCondition> {
    condition(headers, header::IF_NONE_MATCH)
}
