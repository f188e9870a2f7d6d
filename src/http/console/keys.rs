//! The console's forms that change something: create an organization key (its token shown
//! once, on the answer to the form, never again) and revoke one. Both check the session's
//! CSRF token and go through the same admin operations as the admin API, so the admin audit
//! trail names the operator's admin key.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{AppState, CsrfForm, SignedIn, csrf_refused, error_page, html_response, page};
use crate::admin::NewKey;
use crate::http::extract::PathParams;
use crate::scim::ScimError;

#[derive(Deserialize)]
pub(super) struct NewKeyForm {
    csrf: String,
    name: String,
}

/// `POST /admin/orgs/{slug}/keys`: creates an organization key named as the form says.
pub(super) async fn create_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PathParams(slug): PathParams<String>,
    Form(form): Form<NewKeyForm>,
) -> Response {
    if !signed_in.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let new = NewKey {
        name: Some(form.name.trim().to_string()),
        ..NewKey::default()
    };
    let (key, token) = match state.admin.create_key(&signed_in.actor, &slug, &new).await {
        Ok(created) => created,
        Err(e) => return error_page(e),
    };
    let body = html! {
        (signed_in.header(html! { " / " a href={ "/admin/orgs/" (slug) } { (slug) } " / new key" }))
        h2 { "Key " (key.name.as_deref().unwrap_or("")) " created" }
        p { "Give this token to the identity provider now: it is shown only this once." }
        pre.token { (token) }
        p { a href={ "/admin/orgs/" (slug) } { "Back to " (slug) } }
    };
    html_response(StatusCode::CREATED, page("New key", body))
}

/// `POST /admin/orgs/{slug}/keys/{id}/revoke`: revokes the key, back to the organization.
pub(super) async fn revoke_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    PathParams((slug, id)): PathParams<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !signed_in.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(ScimError::not_found(format!("no key {id}")).into());
    };
    match state
        .admin
        .revoke_key(&signed_in.actor, Some(&slug), id)
        .await
    {
        Ok(()) => Redirect::to(&format!("/admin/orgs/{slug}")).into_response(),
        Err(e) => error_page(e),
    }
}
