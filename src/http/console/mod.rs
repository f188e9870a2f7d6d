//! The operator console at `/admin`: server-rendered HTML (maud, compiled in; its one
//! stylesheet served from the binary; no script), signed in with an admin key.
//!
//! A sign-in creates a session in the database (any scimd process serves it), named by an
//! `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the request came over https, as the
//! trusted-proxy setting decides) that expires. Only the token's hash is stored. Every form
//! carries a CSRF token (the session's; the sign-in form's is a cookie of its own, compared
//! with the form's). Every answer carries a strict `Content-Security-Policy`,
//! `X-Frame-Options: DENY` and `Cache-Control: no-store`. A session ends when it expires, when
//! its admin key is revoked or expires, or at sign-out.

mod changes;
mod charts;
mod keys;
mod organization;
mod overview;
mod resource;

use std::net::SocketAddr;

use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{AppState, client_ip};
use crate::auth::random_hex;
use crate::events::poll_token_hash;
use crate::store::admin::ConsoleSession;
use crate::store::{Actor, ApiKey, now_ms};

/// The session cookie.
const SESSION_COOKIE: &str = "scimd_console";
/// The sign-in form's CSRF cookie.
const SIGN_IN_COOKIE: &str = "scimd_console_sign_in";
/// How long a session lasts.
const SESSION_MS: i64 = 8 * 3_600_000;
const STYLESHEET: &str = include_str!("console.css");

/// The console's routes (at the host root).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(overview::overview))
        .route("/admin/orgs/{slug}", get(organization::organization))
        .route("/admin/orgs/{slug}/changes", get(changes::changes))
        .route("/admin/orgs/{slug}/resources/{id}", get(resource::resource))
        .route("/admin/orgs/{slug}/keys", post(keys::create_key))
        .route(
            "/admin/orgs/{slug}/keys/{id}/revoke",
            post(keys::revoke_key),
        )
        .route("/admin/sign-in", get(sign_in_form).post(sign_in))
        .route("/admin/sign-out", post(sign_out))
        .route("/admin/console.css", get(stylesheet))
        .layer(axum::middleware::map_response(console_headers))
}

/// Headers on every console answer: nothing from elsewhere, never framed, never cached.
async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    response
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// A cookie's value from the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request came over https: the forwarded scheme survives only from trusted
/// proxies (`http/envelope.rs`), or the public URL says so.
fn over_https(state: &AppState, headers: &HeaderMap) -> bool {
    let forwarded = client_ip::first_forwarded(headers, client_ip::X_FORWARDED_PROTO)
        .is_some_and(|p| p == "https");
    forwarded
        || state
            .settings
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, for `/admin` only.
fn set_cookie(name: &str, value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{name}={value}; Path=/admin; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The session the request's cookie names, if it is live and its admin key still works.
async fn session(state: &AppState, headers: &HeaderMap) -> Option<(ConsoleSession, ApiKey)> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let now = now_ms();
    let session = state
        .store
        .console_session(&poll_token_hash(token), now)
        .await
        .ok()?;
    let key = state.store.admin_key(session.admin_key_id).await.ok()?;
    let secrets = state.auth.request_secrets().await;
    (key.live_at(now) && secrets.is_active(&key.secret_id)).then_some((session, key))
}

/// A signed-in operator: the session, and the actor the admin audit trail names for what
/// they do (their admin key, address and `User-Agent`). Without a live session, the
/// request is sent to the sign-in form.
pub struct SignedIn {
    session: ConsoleSession,
    actor: Actor,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some((session, key)) = session(state, &parts.headers).await else {
            return Err(Redirect::to("/admin/sign-in").into_response());
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let actor = super::context::request_actor(
            state,
            Some(key.id),
            key.name.as_deref().map(Into::into),
            &parts.headers,
            peer,
        );
        Ok(SignedIn { session, actor })
    }
}

impl SignedIn {
    /// Whether a form's CSRF token is this session's.
    fn csrf_ok(&self, given: &str) -> bool {
        same_token(Some(&self.session.csrf), given)
    }

    /// The page header: where the operator is, and the sign-out button.
    fn header(&self, trail: Markup) -> Markup {
        html! {
            header {
                h1 { a href="/admin" { "scimd" } (trail) }
                (sign_out_form(&self.session.csrf))
            }
        }
    }
}

/// A form's CSRF token did not match: nothing was done.
fn csrf_refused() -> Response {
    let body = html! { h1 { "scimd" } p.error { "The form expired: go back, reload the page and try again." } };
    html_response(StatusCode::FORBIDDEN, page("Refused", body))
}

/// The page for an error of the admin operations (most often an unknown organization or
/// resource), with the status the admin API would have answered.
fn error_page(e: crate::resources::ResourceError) -> Response {
    let (status, body) = super::error::error_parts(e.into());
    let detail = body["detail"].as_str().unwrap_or("error").to_string();
    let body = html! { h1 { a href="/admin" { "scimd" } } p.error { (detail) } };
    html_response(status, page("Error", body))
}

/// The sign-out button every signed-in page carries, with the session's CSRF token.
fn sign_out_form(csrf: &str) -> Markup {
    html! {
        form method="post" action="/admin/sign-out" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { "Sign out" }
        }
    }
}

/// The sign-in form with a fresh CSRF token, also set as the form's own cookie.
fn sign_in_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let csrf = random_hex(16);
    let mut response = html_response(status, sign_in_page(&csrf, error));
    let secure = over_https(state, headers);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, &csrf, 600, secure),
    );
    response
}

fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scimd" }
                link rel="stylesheet" href="/admin/console.css";
            }
            body { (body) }
        }
    }
}

fn html_response(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// A time as `YYYY-MM-DD HH:MM UTC`.
fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "-".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn sign_in_page(csrf: &str, error: Option<&str>) -> Markup {
    page(
        "Sign in",
        html! {
            h1 { "scimd" }
            form.sign-in method="post" action="/admin/sign-in" {
                @if let Some(error) = error { p.error { (error) } }
                label for="key" { "Admin key" }
                input #key type="password" name="key" autocomplete="off" required;
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// `GET /admin/sign-in`: the form, with a fresh CSRF token in a cookie of its own.
async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    sign_in_response(&state, &headers, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct SignInForm {
    key: String,
    csrf: String,
}

/// Whether a form's token is the expected one (in constant time).
fn same_token(expected: Option<&str>, given: &str) -> bool {
    expected.is_some_and(|e| !e.is_empty() && bool::from(e.as_bytes().ct_eq(given.as_bytes())))
}

/// `POST /admin/sign-in`: an admin key starts a session; anything else is refused.
async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    if !same_token(cookie(&headers, SIGN_IN_COOKIE), &form.csrf) {
        let error = Some("The form expired: sign in again.");
        return sign_in_response(&state, &headers, StatusCode::FORBIDDEN, error);
    }
    let bearer = format!("Bearer {}", form.key.trim());
    let principal = match state.auth.authenticate_admin(Some(&bearer)).await {
        Ok(principal) => principal,
        Err(failure) => {
            crate::metrics::auth_failure(failure.reason());
            let error = Some("That is not a valid admin key.");
            return sign_in_response(&state, &headers, StatusCode::FORBIDDEN, error);
        }
    };
    let token = random_hex(32);
    let now = now_ms();
    let session = ConsoleSession {
        id: poll_token_hash(&token),
        admin_key_id: principal.key_id,
        csrf: random_hex(16),
        created_at: now,
        expires_at: now + SESSION_MS,
    };
    if let Err(e) = state.store.create_console_session(&session).await {
        return super::ApiError::from(e).into_response();
    }
    // Sessions that expired without a sign-out go when the next one starts.
    if let Err(e) = state.store.delete_console_session("", now).await {
        tracing::warn!(error = %e, "could not prune expired console sessions");
    }
    let secure = over_https(&state, &headers);
    let mut response = Redirect::to("/admin").into_response();
    let cookies = response.headers_mut();
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_MS / 1000, secure),
    );
    cookies.append(
        header::SET_COOKIE,
        set_cookie(SIGN_IN_COOKIE, "", 0, secure),
    );
    response
}

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// `POST /admin/sign-out`: ends the session (the form's CSRF token must be the session's).
async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let Some((session, _)) = session(&state, &headers).await else {
        return Redirect::to("/admin/sign-in").into_response();
    };
    if !same_token(Some(&session.csrf), &form.csrf) {
        return (StatusCode::FORBIDDEN, "CSRF token mismatch").into_response();
    }
    if let Err(e) = state
        .store
        .delete_console_session(&session.id, now_ms())
        .await
    {
        return super::ApiError::from(e).into_response();
    }
    let secure = over_https(&state, &headers);
    let mut response = Redirect::to("/admin/sign-in").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, secure),
    );
    response
}
