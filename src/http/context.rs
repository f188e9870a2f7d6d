//! The request context every resource handler takes: who is calling (for the resource layer),
//! the base URL responses link to, the query string (projection, list parameters) and the
//! conditional headers. One extractor instead of six per handler.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, RawQuery};
use axum::http::header;
use axum::http::request::Parts;

use super::extract::scim_base_url;
use super::list::Projection;
use super::preconditions::{if_match, if_none_match};
use super::{ApiError, AppState, client_ip};
use crate::auth::Principal;
use crate::resources::Caller;
use crate::scim::ScimError;
use crate::scim::etag::EtagCondition;

/// What a SCIM resource request brings besides its path and body.
#[derive(Debug)]
pub struct RequestContext {
    pub caller: Caller,
    /// The absolute base of the SCIM API as the client reached it (RFC 7643 §3.1 `location`).
    pub base_url: String,
    pub query: RawQuery,
    pub if_match: Option<EtagCondition>,
    pub if_none_match: Option<EtagCondition>,
}

impl RequestContext {
    /// `attributes` / `excludedAttributes` of the query string. Parsed when the handler asks,
    /// so a malformed body is still reported before a malformed projection.
    pub fn projection(&self) -> Result<Projection, ScimError> {
        Projection::from_query(&self.query)
    }
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Set by `middleware::authenticate`, which every resource route sits behind.
        let principal = parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("a resource route without authentication"))?;
        let key_name = principal.key_name;
        let Ok(uri) = OriginalUri::from_request_parts(parts, state).await;
        let headers = &parts.headers;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let caller = Caller {
            org_id: principal.org_id,
            key_id: principal.key_id,
            key_name,
            request_id: text(header::HeaderName::from_static("x-request-id")),
            client_addr: client_ip::client_addr(peer, headers, &state.settings.trusted_proxies),
            user_agent: text(header::USER_AGENT),
        };
        Ok(RequestContext {
            caller,
            base_url: scim_base_url(&state.settings, &uri, headers),
            query: RawQuery(parts.uri.query().map(str::to_string)),
            if_match: if_match(headers),
            if_none_match: if_none_match(headers),
        })
    }
}
