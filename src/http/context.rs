//! The request context every resource handler takes: who is calling (for the resource layer),
//! the base URL responses link to, the query string (projection, list parameters) and the
//! conditional headers. One extractor instead of six per handler.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, RawQuery};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, header};

use super::extract::scim_base_url;
use super::list::Projection;
use super::preconditions::{if_match, if_none_match};
use super::{ApiError, AppState, client_ip};
use crate::audit::rejections::truncate;
use crate::auth::Principal;
use crate::resources::Caller;
use crate::scim::ScimError;
use crate::scim::etag::EtagCondition;
use crate::scim::interop::Profile;
use crate::store::Actor;

/// What a SCIM resource request brings besides its path and body.
#[derive(Debug)]
pub struct RequestContext {
    pub caller: Caller,
    /// The absolute base of the SCIM API as the client reached it (RFC 7643 §3.1 `location`).
    pub base_url: String,
    /// How resources are rendered (`SCIMD_PROFILE`).
    pub profile: Profile,
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
        let Ok(uri) = OriginalUri::from_request_parts(parts, state).await;
        let headers = &parts.headers;
        // A write's actor was built by `middleware::authenticate` (it records the write if
        // refused); a read records nothing, so it is named by its key alone.
        let actor = match parts.extensions.get::<Arc<Actor>>() {
            Some(actor) => Arc::clone(actor),
            None => Arc::new(Actor {
                key_id: Some(principal.key_id),
                key_name: principal.key_name,
                ..Actor::default()
            }),
        };
        let caller = Caller {
            org_id: principal.org_id,
            actor,
        };
        Ok(RequestContext {
            caller,
            base_url: scim_base_url(&state.settings, &uri, headers),
            profile: state.settings.profile,
            query: RawQuery(parts.uri.query().map(str::to_string)),
            if_match: if_match(headers),
            if_none_match: if_none_match(headers),
        })
    }
}

/// Longest `User-Agent` the change log keeps, in bytes: a header can be kilobytes long.
const MAX_USER_AGENT_BYTES: usize = 256;

/// Who sent this request, as the change log and the rejected writes name it.
pub(super) fn actor(
    state: &AppState,
    principal: Principal,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Actor {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    request_actor(
        state,
        Some(principal.key_id),
        principal.key_name,
        headers,
        peer,
    )
}

/// The actor of a request by a key: its request id, client address (after trusted proxies)
/// and `User-Agent` (at most [`MAX_USER_AGENT_BYTES`]).
pub(super) fn request_actor(
    state: &AppState,
    key_id: Option<uuid::Uuid>,
    key_name: Option<Arc<str>>,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Actor {
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Actor {
        key_id,
        key_name,
        request_id: text(super::envelope::X_REQUEST_ID),
        client_addr: client_ip::client_addr(peer, headers, &state.settings.trusted_proxies),
        user_agent: text(header::USER_AGENT).map(|mut agent| {
            truncate(&mut agent, MAX_USER_AGENT_BYTES);
            agent
        }),
    }
}
