//! Request bodies and SCIM responses: `ScimBody` owns every body rejection (malformed JSON →
//! `invalidSyntax`, too large → 413), `ScimResponse` sets `application/scim+json`, `ETag` and
//! `Location`.

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::{ApiError, SCIM_CONTENT_TYPE, client_ip};
use crate::config::Settings;
use crate::scim::ScimError;

/// Path parameters, as axum's `Path`, but a segment that does not decode (bad
/// percent-encoding, invalid UTF-8) is a SCIM 400 naming the path, like every other error.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParams(value))
            .map_err(|rejection| {
                ScimError::invalid_value(format!("path: {}", rejection.body_text())).into()
            })
    }
}

/// A JSON object request body. Accepted whatever the declared content type
/// (`application/scim+json`, `application/json`, or none): IdPs differ, and the body decides.
#[derive(Debug)]
pub struct ScimBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ScimError::invalid_syntax("The request body could not be read").into()
            }
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            // Postgres cannot store U+0000 in text or jsonb; refuse it on both backends alike.
            Ok(value) if holds_nul(&bytes, &value) => Err(ScimError::invalid_value(
                "Strings must not contain the NUL character (U+0000)",
            )
            .into()),
            Ok(Value::Object(map)) => Ok(ScimBody(map)),
            Ok(_) => {
                Err(ScimError::invalid_syntax("The request body must be a JSON object").into())
            }
            Err(e) => Err(ScimError::invalid_syntax(format!("Malformed JSON body: {e}")).into()),
        }
    }
}

/// Whether any string or key of `value`, parsed from the JSON text `body`, holds U+0000.
/// JSON text can only carry one as the escape `\u0000` (RFC 8259 §7 forbids the raw control
/// character), so a body without that escape (every body an IdP sends) is not walked (about
/// 500 instructions of a PATCH's body).
fn holds_nul(body: &[u8], value: &Value) -> bool {
    // A body that parsed is UTF-8; were it not, the value is walked.
    let may_escape_nul = std::str::from_utf8(body).map_or(true, |text| text.contains("\\u0000"));
    may_escape_nul && contains_nul(value)
}

/// Whether any string or key in `value` holds U+0000.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// A SCIM resource response.
#[derive(Debug)]
pub struct ScimResponse {
    pub status: StatusCode,
    /// None: no body (304).
    pub body: Option<JsonBody>,
    pub etag: Option<String>,
    pub location: Option<String>,
}

/// A JSON response body: a tree to serialise, or text already written (a resource rendered
/// from its stored text, a list page).
#[derive(Debug)]
pub enum JsonBody {
    Tree(Value),
    Text(Vec<u8>),
}

impl From<Value> for JsonBody {
    fn from(value: Value) -> JsonBody {
        JsonBody::Tree(value)
    }
}

impl JsonBody {
    /// Appends the JSON text to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            // Serialising a tree into a Vec cannot fail (string keys, finite numbers).
            JsonBody::Tree(value) => {
                let _ = serde_json::to_writer(&mut *out, value);
            }
            JsonBody::Text(text) => out.extend_from_slice(text),
        }
    }

    /// The JSON text.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            // `to_vec` writes bytes directly; `to_string` goes through `fmt::Write`, an
            // adapter per fragment (visible in a list page's profile).
            JsonBody::Tree(value) => serde_json::to_vec(&value).unwrap_or_default(),
            JsonBody::Text(text) => text,
        }
    }
}

impl ScimResponse {
    /// 304 for a matching `If-None-Match` (RFC 7644 §3.14): no body, the ETag repeated.
    pub fn not_modified(etag: String) -> ScimResponse {
        ScimResponse {
            status: StatusCode::NOT_MODIFIED,
            body: None,
            etag: Some(etag),
            location: None,
        }
    }
}

impl IntoResponse for ScimResponse {
    fn into_response(self) -> Response {
        let body = self.body.map(JsonBody::into_bytes).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(SCIM_CONTENT_TYPE),
        );
        // SCIM responses carry personal data: no shared caches.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(etag) = self.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
            headers.insert(header::ETAG, etag);
        }
        if let Some(location) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// The absolute base of the SCIM API as the client reached it, e.g.
/// `http://host:8080/scim/v2`, for `meta.location` (RFC 7643 §3.1).
///
/// `X-Forwarded-Proto` and `X-Forwarded-Host` (first value: the client-facing hop) are used
/// when present: the envelope (`http/envelope.rs`) removes them from any peer that
/// is not a trusted proxy (`SCIMD_TRUSTED_PROXIES`), so only our own proxy's can reach here.
pub fn scim_base_url(settings: &Settings, uri: &OriginalUri, headers: &HeaderMap) -> String {
    let prefix = if uri.path().starts_with("/api/") {
        "/api/scim/v2"
    } else {
        "/scim/v2"
    };
    if let Some(public) = &settings.public_url {
        return [public.trim_end_matches('/'), prefix].concat();
    }
    let host = client_ip::first_forwarded(headers, client_ip::X_FORWARDED_HOST)
        .filter(|h| valid_host(h))
        .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
        .unwrap_or("localhost");
    let scheme = client_ip::first_forwarded(headers, client_ip::X_FORWARDED_PROTO)
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or("http");
    // Joined, not formatted: every request builds it.
    [scheme, "://", host, prefix].concat()
}

/// A `host[:port]` of the characters a host name or address literal can hold.
fn valid_host(host: &str) -> bool {
    (1..=255).contains(&host.len())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_is_found_wherever_the_body_escapes_one() {
        // (body, holds U+0000)
        let cases: [(&str, bool); 7] = [
            (r#"{"userName":"a@b.co"}"#, false),
            (r#"{"userName":"a\u0000@b.co"}"#, true),
            (r#"{"a\u0000":1}"#, true),
            (r#"{"emails":[{"value":"x"},{"value":"\u0000"}]}"#, true),
            (
                r#"{"Operations":[{"op":"add","value":{"x":["\u0000"]}}]}"#,
                true,
            ),
            // An escaped backslash before "u0000" is no NUL.
            (r#"{"userName":"a\\u0000"}"#, false),
            (r#"{"userName":"\u0001"}"#, false),
        ];
        for (body, nul) in cases {
            let value: Value = serde_json::from_str(body).unwrap();
            assert_eq!(holds_nul(body.as_bytes(), &value), nul, "{body}");
        }
    }
}
