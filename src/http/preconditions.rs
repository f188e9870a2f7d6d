//! Conditional requests (RFC 7644 §3.14): reading `If-Match` / `If-None-Match` and refusing
//! a stale write with 412.

use axum::http::{HeaderMap, HeaderName, header};

use crate::scim::ScimError;
use crate::scim::etag::{EtagCondition, etag};

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

/// A stale `If-Match` is 412 and changes nothing.
pub fn check_if_match(condition: Option<&EtagCondition>, version: i64) -> Result<(), ScimError> {
    match condition {
        Some(c) if !c.matches(version) => Err(ScimError::precondition_failed(format!(
            "If-Match does not match the current version {}",
            etag(version)
        ))),
        _ => Ok(()),
    }
}
