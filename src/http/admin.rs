//! The admin API under `/admin/v1` (JSON; admin keys only): extracts, calls [`Admin`] and
//! renders. Errors are the same RFC 7644 §3.12 JSON as every other scimd error; a bad field
//! is a 400 naming it.

use std::net::SocketAddr;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{PathParams, ScimBody};
use super::{ApiError, AppState};
use crate::admin::{NewKey, StreamRequest};
use crate::auth::{AdminPrincipal, parse_duration_ms};
use crate::scim::ScimError;
use crate::store::{Actor, AuditQuery};

/// The admin API's routes, relative to `/admin/v1`, behind admin-key authentication.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route(
            "/orgs/{slug}",
            get(get_org).patch(rename_org).delete(delete_org),
        )
        .route("/orgs/{slug}/keys", get(list_keys).post(create_key))
        .route("/orgs/{slug}/keys/{id}", delete(revoke_key))
        .route(
            "/orgs/{slug}/user-attributes",
            get(list_attributes).post(create_attribute),
        )
        .route(
            "/orgs/{slug}/user-attributes/{key}",
            delete(delete_attribute),
        )
        .route("/orgs/{slug}/changes", get(changes))
        .route("/orgs/{slug}/rejected", get(rejected))
        .route(
            "/orgs/{slug}/streams",
            get(list_streams).post(create_stream),
        )
        .route(
            "/orgs/{slug}/streams/{id}",
            get(get_stream).delete(delete_stream),
        )
        .route("/deletions", get(deletions))
        .route("/admin-keys", get(list_admin_keys).post(create_admin_key))
        .route("/admin-keys/{id}", delete(revoke_admin_key))
        .route("/secrets", get(list_secrets).post(rotate_secret))
        .route("/secrets/{id}", delete(retire_secret))
        .route("/audit", get(audit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::middleware::authenticate_admin,
        ))
        .layer(axum::middleware::map_response(no_store))
        .method_not_allowed_fallback(super::middleware::method_not_allowed)
}

/// Admin answers carry one-time tokens and users' data: never cached (errors already say so).
async fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    response
}

/// The operator behind a request, as the admin audit trail names them.
pub struct Operator(Actor);

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = parts
            .extensions
            .get::<AdminPrincipal>()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("an admin route without authentication"))?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        Ok(Operator(super::context::request_actor(
            state,
            Some(principal.key_id),
            principal.key_name,
            &parts.headers,
            peer,
        )))
    }
}

/// A JSON body of type `T`: malformed JSON, an unknown field or a wrong type is a 400 that
/// names it.
pub struct Body<T>(T);

impl<T: DeserializeOwned> axum::extract::FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &AppState) -> Result<Self, ApiError> {
        let ScimBody(map) = ScimBody::from_request(req, state).await?;
        // The path names the field a type error is about (serde alone names only the type).
        serde_path_to_error::deserialize(Value::Object(map))
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let detail = if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                };
                ScimError::invalid_value(detail).into()
            })
    }
}

/// The query string as `T` (whose fields are strings: each is parsed where it is used, so
/// an error names it); an unknown parameter is a 400 naming it.
fn query<T: DeserializeOwned>(raw: &RawQuery) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.0.as_deref().unwrap_or(""))
        .map_err(|e| ScimError::invalid_value(format!("query: {e}")).into())
}

/// A query parameter parsed as `T`; a 400 naming it when it does not parse.
fn param<T: std::str::FromStr>(name: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    text.map(|t| {
        t.parse().map_err(|_| {
            ApiError::from(ScimError::invalid_value(format!(
                "{name}: {t:?} is not valid here"
            )))
        })
    })
    .transpose()
}

/// An id in the path; anything else names nothing there is (404).
fn path_id(text: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ScimError::not_found(format!("no {what} {text:?}")).into())
}

fn created(body: impl serde::Serialize) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

type Answer = Result<Response, ApiError>;

async fn list_orgs(State(state): State<AppState>) -> Answer {
    let orgs = state.admin.orgs().await?;
    Ok(Json(json!({ "orgs": orgs })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlugBody {
    slug: String,
}

async fn create_org(
    State(state): State<AppState>,
    by: Operator,
    Body(body): Body<SlugBody>,
) -> Answer {
    Ok(created(state.admin.create_org(&by.0, &body.slug).await?))
}

async fn get_org(State(state): State<AppState>, PathParams(slug): PathParams<String>) -> Answer {
    Ok(Json(state.admin.org(&slug).await?).into_response())
}

async fn rename_org(
    State(state): State<AppState>,
    by: Operator,
    PathParams(slug): PathParams<String>,
    Body(body): Body<SlugBody>,
) -> Answer {
    Ok(Json(state.admin.rename_org(&by.0, &slug, &body.slug).await?).into_response())
}

/// 202: the organization is disabled now; its data goes in the background.
async fn delete_org(
    State(state): State<AppState>,
    by: Operator,
    PathParams(slug): PathParams<String>,
) -> Answer {
    let deletion = state.admin.delete_org(&by.0, &slug).await?;
    Ok((StatusCode::ACCEPTED, Json(deletion)).into_response())
}

async fn deletions(State(state): State<AppState>) -> Answer {
    let deletions = state.admin.deletions().await?;
    Ok(Json(json!({ "deletions": deletions })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeyBody {
    name: Option<String>,
    #[serde(default)]
    personal: bool,
    /// A lifetime such as `90d`, `12h`, `30m`.
    expires_in: Option<String>,
}

impl KeyBody {
    fn new_key(self) -> Result<NewKey, ApiError> {
        let lifetime_ms = match &self.expires_in {
            Some(text) => Some(parse_duration_ms(text).map_err(|e| {
                ApiError::from(ScimError::invalid_value(format!("expiresIn: {e}")))
            })?),
            None => None,
        };
        Ok(NewKey {
            name: self.name,
            personal: self.personal,
            lifetime_ms,
        })
    }
}

async fn list_keys(State(state): State<AppState>, PathParams(slug): PathParams<String>) -> Answer {
    let keys = state.admin.keys(&slug).await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

async fn create_key(
    State(state): State<AppState>,
    by: Operator,
    PathParams(slug): PathParams<String>,
    Body(body): Body<KeyBody>,
) -> Answer {
    let (key, token) = state
        .admin
        .create_key(&by.0, &slug, &body.new_key()?)
        .await?;
    Ok(created(json!({ "key": key, "token": token })))
}

async fn revoke_key(
    State(state): State<AppState>,
    by: Operator,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Answer {
    let id = path_id(&id, "key")?;
    state.admin.revoke_key(&by.0, Some(&slug), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_attributes(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Answer {
    let keys = state.admin.user_attributes(&slug).await?;
    Ok(Json(json!({ "userAttributes": keys })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributeBody {
    key: String,
}

async fn create_attribute(
    State(state): State<AppState>,
    by: Operator,
    PathParams(slug): PathParams<String>,
    Body(body): Body<AttributeBody>,
) -> Answer {
    state
        .admin
        .create_user_attribute(&by.0, &slug, &body.key)
        .await?;
    Ok(created(json!({ "key": body.key })))
}

async fn delete_attribute(
    State(state): State<AppState>,
    by: Operator,
    PathParams((slug, key)): PathParams<(String, String)>,
) -> Answer {
    state
        .admin
        .delete_user_attribute(&by.0, &slug, &key)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The audit trail's query: `since` (a position, an RFC 3339 time or an age such as `24h`),
/// `resource`, `key` (ids) and `limit`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    since: Option<String>,
    resource: Option<String>,
    key: Option<String>,
    limit: Option<String>,
}

impl AuditParams {
    fn query(self) -> Result<AuditQuery, ApiError> {
        let id = |name: &str, text: Option<String>| -> Result<Option<Uuid>, ApiError> {
            text.map(|t| {
                Uuid::parse_str(&t).map_err(|_| {
                    ScimError::invalid_value(format!("{name}: {t:?} is not an id")).into()
                })
            })
            .transpose()
        };
        let mut query = AuditQuery {
            resource_id: id("resource", self.resource)?,
            key_id: id("key", self.key)?,
            limit: param::<i64>("limit", self.limit.as_deref())?
                .unwrap_or(100)
                .clamp(1, crate::admin::MAX_PAGE),
            ..AuditQuery::default()
        };
        if let Some(since) = &self.since {
            crate::audit::report::since(since, &mut query)
                .map_err(|e| ApiError::from(ScimError::invalid_value(format!("since: {e:#}"))))?;
        }
        Ok(query)
    }
}

async fn changes(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    raw: RawQuery,
) -> Answer {
    let query = query::<AuditParams>(&raw)?.query()?;
    let changes = state.admin.changes(&slug, &query).await?;
    Ok(Json(json!({ "changes": changes })).into_response())
}

async fn rejected(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
    raw: RawQuery,
) -> Answer {
    let query = query::<AuditParams>(&raw)?.query()?;
    // Rejected writes have no log position and name no resource: refused, not ignored.
    if query.after_position.is_some() {
        let detail = "since: rejected writes have no position; give a time or an age";
        return Err(ScimError::invalid_value(detail).into());
    }
    if query.resource_id.is_some() {
        let detail = "resource: rejected writes are not kept by resource";
        return Err(ScimError::invalid_value(detail).into());
    }
    let rejected = state.admin.rejected(&slug, &query).await?;
    Ok(Json(json!({ "rejected": rejected })).into_response())
}

async fn list_streams(
    State(state): State<AppState>,
    PathParams(slug): PathParams<String>,
) -> Answer {
    let streams = state.admin.streams(&slug).await?;
    Ok(Json(json!({ "streams": streams })).into_response())
}

async fn create_stream(
    State(state): State<AppState>,
    by: Operator,
    PathParams(slug): PathParams<String>,
    Body(body): Body<StreamRequest>,
) -> Answer {
    let (stream, token) = state.admin.create_stream(&by.0, &slug, &body).await?;
    let mut answer = json!({ "stream": stream });
    if let Some(token) = token {
        answer["token"] = Value::String(token);
    }
    Ok(created(answer))
}

async fn get_stream(
    State(state): State<AppState>,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Answer {
    let id = path_id(&id, "stream")?;
    Ok(Json(state.admin.stream(&slug, id).await?).into_response())
}

async fn delete_stream(
    State(state): State<AppState>,
    by: Operator,
    PathParams((slug, id)): PathParams<(String, String)>,
) -> Answer {
    let id = path_id(&id, "stream")?;
    state.admin.delete_stream(&by.0, Some(&slug), id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_admin_keys(State(state): State<AppState>) -> Answer {
    let keys = state.admin.admin_keys().await?;
    Ok(Json(json!({ "keys": keys })).into_response())
}

async fn create_admin_key(
    State(state): State<AppState>,
    by: Operator,
    Body(body): Body<KeyBody>,
) -> Answer {
    let (key, token) = state
        .admin
        .create_admin_key(&by.0, &body.new_key()?)
        .await?;
    Ok(created(json!({ "key": key, "token": token })))
}

async fn revoke_admin_key(
    State(state): State<AppState>,
    by: Operator,
    PathParams(id): PathParams<String>,
) -> Answer {
    let id = path_id(&id, "key")?;
    state.admin.revoke_admin_key(&by.0, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_secrets(State(state): State<AppState>) -> Answer {
    let secrets = state.admin.secrets().await?;
    Ok(Json(json!({ "secrets": secrets })).into_response())
}

async fn rotate_secret(State(state): State<AppState>, by: Operator) -> Answer {
    Ok(created(state.admin.rotate_secret(&by.0).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetireParams {
    force: Option<String>,
}

async fn retire_secret(
    State(state): State<AppState>,
    by: Operator,
    PathParams(id): PathParams<String>,
    raw: RawQuery,
) -> Answer {
    let params = query::<RetireParams>(&raw)?;
    let force = param::<bool>("force", params.force.as_deref())?.unwrap_or(false);
    let invalidated = state.admin.retire_secret(&by.0, &id, force).await?;
    Ok(Json(json!({ "id": id, "invalidatedKeys": invalidated })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TrailParams {
    after: Option<String>,
    limit: Option<String>,
}

/// The operators' audit trail, oldest first; `after` an action id to read on from.
async fn audit(State(state): State<AppState>, raw: RawQuery) -> Answer {
    let params = query::<TrailParams>(&raw)?;
    let after = params
        .after
        .map(|t| {
            Uuid::parse_str(&t).map_err(|_| {
                ApiError::from(ScimError::invalid_value(format!(
                    "after: {t:?} is not an id"
                )))
            })
        })
        .transpose()?;
    let actions = state
        .admin
        .actions(
            after,
            param::<i64>("limit", params.limit.as_deref())?.unwrap_or(100),
        )
        .await?;
    Ok(Json(json!({ "actions": actions })).into_response())
}
