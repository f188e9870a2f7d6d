//! `/Users` (RFC 7644 §3): create, read and the reference's merging PUT.

use std::collections::HashMap;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use axum::Extension;
use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::extract::{ScimBody, ScimResponse, scim_base_url};
use super::list::{ListParams, Projection, list_response};
use super::preconditions::{check_if_match, if_match, if_none_match};
use super::{ApiError, AppState};
use crate::auth::Principal;
use crate::config::PutMode;
use crate::scim::etag::etag;
use crate::scim::limits::check_document;
use crate::scim::normalize::normalize_resource;
use crate::scim::patch;
use crate::scim::schema::USER_RESOURCE;
use crate::scim::user::{self, UserMeta};
use crate::scim::{ScimError, USER_ATTRIBUTE_SCHEMA};
use crate::store::{Doc, MemberRef, UserRecord, UserWrite};

/// A validated POST/PUT body: the document (with its userName) and the write-only password,
/// not hashed yet: hashing comes only after everything else about the request is known good.
struct UserInput {
    doc: Doc,
    password: Option<String>,
}

/// Validates a POST/PUT body: schema normalisation (RFC 7643 §4.1), userName rules, the
/// document caps (size, values per attribute) and the org's user-attribute keys.
async fn user_input(state: &AppState, org_id: Uuid, body: Doc) -> Result<UserInput, ApiError> {
    let mut doc = normalize_resource(&USER_RESOURCE, body)?;
    let name = user::user_name(&doc, state.settings.user_name_format)?;
    doc.insert("userName".into(), Value::String(name));
    let password = match doc.remove("password") {
        Some(Value::String(password)) => Some(password),
        _ => None,
    };
    check_document("user", &doc, &state.settings.limits)?;
    check_user_attributes(state, org_id, &doc).await?;
    Ok(UserInput { doc, password })
}

/// Hashes a password when there is one.
async fn hash_if_given(
    state: &AppState,
    password: Option<String>,
) -> Result<Option<String>, ApiError> {
    match password {
        Some(password) => Ok(Some(hash_password(state, password).await?)),
        None => Ok(None),
    }
}

/// Keys under `urn:omni:params:1.0:UserAttribute` must be defined for the organization.
async fn check_user_attributes(state: &AppState, org_id: Uuid, doc: &Doc) -> Result<(), ApiError> {
    let Some(Value::Object(attributes)) = doc.get(USER_ATTRIBUTE_SCHEMA) else {
        return Ok(());
    };
    if attributes.is_empty() {
        return Ok(());
    }
    let defined = state.store.list_user_attributes(org_id).await?;
    Ok(undefined_user_attribute(doc, &defined)?)
}

/// Refuses a user-attribute key the organization has not defined, naming it.
fn undefined_user_attribute(doc: &Doc, defined: &[String]) -> Result<(), ScimError> {
    let Some(Value::Object(attributes)) = doc.get(USER_ATTRIBUTE_SCHEMA) else {
        return Ok(());
    };
    match attributes.keys().find(|k| !defined.contains(k)) {
        Some(undefined) => Err(ScimError::invalid_value(format!(
            "User attribute {undefined:?} is not defined for this organization \
             ({USER_ATTRIBUTE_SCHEMA})"
        ))),
        None => Ok(()),
    }
}

/// argon2id costs tens of milliseconds and about 19 MiB: run it on the blocking pool, at
/// most `password_hash_concurrency` at once (issue 11: 60 concurrent hashes peaked at
/// 1.27 GB). The permit is taken before the task is spawned and released when the hash is
/// done, even if the request was abandoned meanwhile; requests beyond the limit wait here.
async fn hash_password(state: &AppState, password: String) -> Result<String, ApiError> {
    let permit = state
        .password_hashes
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| anyhow::anyhow!("password hash permits closed: {e}"))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?
    .map_err(ApiError::Internal)
}

/// A path id that is not a UUID cannot name a user: 404, exactly as for an unknown id.
fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ScimError::not_found(format!("User {id} not found")).into())
}

/// The rendered user (all attributes, before projection).
fn render_user(base: &str, record: &UserRecord, groups: Option<&[MemberRef]>) -> Doc {
    let id = record.id.to_string();
    let meta = UserMeta {
        id: &id,
        created_ms: record.created_at,
        modified_ms: record.modified_at,
        version: record.version,
        location: format!("{base}/Users/{id}"),
        base_url: base,
        groups,
    };
    user::render(&record.doc, &meta)
}

/// The groups of each user (RFC 7643 §4.1.2 `groups`), in one query, when the projection
/// returns them.
async fn user_groups(
    state: &AppState,
    org_id: Uuid,
    users: &[UserRecord],
    projection: &Projection,
) -> Result<HashMap<Uuid, Vec<MemberRef>>, ApiError> {
    let mut by_user: HashMap<Uuid, Vec<MemberRef>> = HashMap::new();
    if !projection.includes("groups") {
        return Ok(by_user);
    }
    // Read with the users themselves where the backend does that.
    if users.iter().all(|u| u.groups.is_some()) {
        for user in users {
            by_user.insert(user.id, user.groups.clone().unwrap_or_default());
        }
        return Ok(by_user);
    }
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    for (user, group) in state.store.groups_of_users(org_id, &ids).await? {
        by_user.entry(user).or_default().push(group);
    }
    for id in ids {
        by_user.entry(id).or_default();
    }
    Ok(by_user)
}

async fn user_response(
    state: &AppState,
    base: &str,
    record: &UserRecord,
    status: StatusCode,
    projection: &Projection,
) -> Result<ScimResponse, ApiError> {
    let groups = user_groups(
        state,
        record.org_id,
        std::slice::from_ref(record),
        projection,
    )
    .await?;
    let rendered = render_user(base, record, groups.get(&record.id).map(Vec::as_slice));
    Ok(ScimResponse {
        status,
        body: Value::Object(projection.apply(rendered)),
        etag: Some(etag(record.version)),
        location: (status == StatusCode::CREATED).then(|| format!("{base}/Users/{}", record.id)),
    })
}

/// POST /Users — RFC 7644 §3.3: 201 with `Location`; 409 `uniqueness` for a taken userName.
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let input = user_input(&state, principal.org_id, body).await?;
    let password_hash = hash_if_given(&state, input.password).await?;
    let record = state
        .store
        .create_user(
            principal.org_id,
            &UserWrite::from_doc(input.doc, password_hash),
        )
        .await?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    user_response(&state, &base, &record, StatusCode::CREATED, &projection).await
}

/// GET /Users/{id} — RFC 7644 §3.4.1.
pub async fn get_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let record = state
        .store
        .get_user(principal.org_id, parse_id(&id)?)
        .await?;
    // RFC 7644 §3.14: a client holding the current version gets 304 and no body.
    if if_none_match(&headers).is_some_and(|c| c.matches(record.version)) {
        return Ok(ScimResponse::not_modified(etag(record.version)));
    }
    let base = scim_base_url(&state.settings, &uri, &headers);
    user_response(&state, &base, &record, StatusCode::OK, &projection).await
}

/// PUT /Users/{id} — the reference's update: sets the attributes provided and leaves all others
/// unchanged, in one read-modify-write transaction. `userName` is required and may change to a
/// value unique in the organization.
pub async fn replace_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let id = parse_id(&id)?;
    let input = user_input(&state, principal.org_id, body).await?;
    let condition = if_match(&headers);
    let put_mode = state.settings.put_mode;
    let limits = state.settings.limits;
    // The document the update makes of `current`, checked.
    let next_doc = |current: &UserRecord| -> Result<Doc, ScimError> {
        check_if_match(condition.as_ref(), current.version)?;
        let doc = match put_mode {
            PutMode::Merge => user::merge(&current.doc, input.doc.clone()),
            // RFC 7644 §3.5.1: attributes not given are cleared.
            PutMode::Replace => user::merge(&Doc::new(), input.doc.clone()),
        };
        check_document("user", &doc, &limits)?;
        Ok(doc)
    };
    // A password is hashed only for a user that exists and would take the update, read
    // outside any transaction; the transaction then checks again against the locked row.
    if input.password.is_some() {
        next_doc(&state.store.get_user(principal.org_id, id).await?)?;
    }
    let password_hash = hash_if_given(&state, input.password.clone()).await?;
    let update = |current: &UserRecord| {
        let doc = next_doc(current)?;
        // A password is write-only and never sent back, so an omitted one is kept in both modes.
        let hash = password_hash
            .clone()
            .or_else(|| current.password_hash.clone());
        Ok(UserWrite::from_doc(doc, hash))
    };
    let record = state
        .store
        .update_user(principal.org_id, id, &update)
        .await?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    user_response(&state, &base, &record, StatusCode::OK, &projection).await
}

/// PATCH /Users/{id} — RFC 7644 §3.5.2: all operations or none, in one read-modify-write
/// transaction; 200 with the user (subject to `attributes` / `excludedAttributes`).
pub async fn patch_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let projection = Projection::from_query(&query)?;
    let id = parse_id(&id)?;
    let limits = state.settings.limits;
    patch::check_operation_count(&body, &limits)?;
    let ops = patch::parse_request(&body)?;
    // Definitions are only ever added, so keys already stored were defined; only a request
    // that names the user-attribute schema can bring a new key, and only then are they read.
    let urn = USER_ATTRIBUTE_SCHEMA.to_ascii_lowercase();
    let text = serde_json::to_string(&body).unwrap_or_default();
    let defined_attributes = if text.to_ascii_lowercase().contains(&urn) {
        Some(state.store.list_user_attributes(principal.org_id).await?)
    } else {
        None
    };
    let format = state.settings.user_name_format;
    let condition = if_match(&headers);
    // The document the operations make of `current`, checked, and whether they set a password.
    let patched = |current: &UserRecord| -> Result<(Doc, bool), ScimError> {
        check_if_match(condition.as_ref(), current.version)?;
        let outcome = patch::apply(&USER_RESOURCE, &current.doc, &ops, &limits)?;
        for adaptation in &outcome.adaptations {
            tracing::debug!(adaptation, "PATCH adapted an identity provider's request");
        }
        let mut doc = outcome.doc;
        let password_set = doc.remove("password").is_some();
        let name = user::user_name(&doc, format)?;
        doc.insert("userName".into(), Value::String(name));
        if let Some(defined) = &defined_attributes {
            undefined_user_attribute(&doc, defined)?;
        }
        check_document("user", &doc, &limits)?;
        Ok((doc, password_set))
    };
    // Hashing is slow and memory-hungry: only once the user exists and the operations apply
    // cleanly (read outside any transaction), and never inside the transaction.
    let password = patch::requested_password(&ops);
    if password.is_some() {
        patched(&state.store.get_user(principal.org_id, id).await?)?;
    }
    let password_hash = hash_if_given(&state, password).await?;
    let update = |current: &UserRecord| {
        let (doc, password_set) = patched(current)?;
        let hash = match (password_set, &password_hash) {
            (true, Some(hash)) => Some(hash.clone()),
            _ => current.password_hash.clone(),
        };
        Ok(UserWrite::from_doc(doc, hash))
    };
    let record = state
        .store
        .update_user(principal.org_id, id, &update)
        .await?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    user_response(&state, &base, &record, StatusCode::OK, &projection).await
}

/// DELETE /Users/{id} — RFC 7644 §3.6: 204; afterwards the id is 404 everywhere.
pub async fn delete_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let condition = if_match(&headers);
    let check = |current: &UserRecord| check_if_match(condition.as_ref(), current.version);
    state
        .store
        .delete_user(principal.org_id, id, &check)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /Users — RFC 7644 §3.4.2: filter, sort, index or cursor paging, projection.
pub async fn list_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    query: RawQuery,
    headers: HeaderMap,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_query(&query, state.settings.max_results)?
        .limited(&state.settings.limits, &[&USER_RESOURCE])?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    list(&state, principal, &base, params).await
}

/// POST /Users/.search — RFC 7644 §3.4.3: the same query in a body (keeps filters with personal
/// data out of URLs and logs).
pub async fn search_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    uri: OriginalUri,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<ScimResponse, ApiError> {
    let params = ListParams::from_search_body(&body, state.settings.max_results)?
        .limited(&state.settings.limits, &[&USER_RESOURCE])?;
    let base = scim_base_url(&state.settings, &uri, &headers);
    list(&state, principal, &base, params).await
}

async fn list(
    state: &AppState,
    principal: Principal,
    base: &str,
    mut params: ListParams,
) -> Result<ScimResponse, ApiError> {
    let page_size = params.cursor_page_size();
    let mut page = state
        .store
        .list_users(principal.org_id, &params.query)
        .await?;
    let next_cursor = params.next_cursor(&mut page.users, page_size, page.truncated, |u| {
        (u.created_at, u.id)
    });
    let resources = render_page(
        state,
        principal.org_id,
        base,
        &page.users,
        &params.projection,
    )
    .await?;
    Ok(ScimResponse {
        status: StatusCode::OK,
        body: list_response(resources, page.total, params.start_index(), next_cursor),
        etag: None,
        location: None,
    })
}

/// Renders a page of users with their groups (one query for the whole page).
pub(super) async fn render_page(
    state: &AppState,
    org_id: Uuid,
    base: &str,
    users: &[UserRecord],
    projection: &Projection,
) -> Result<Vec<Value>, ApiError> {
    let groups = user_groups(state, org_id, users, projection).await?;
    Ok(users
        .iter()
        .map(|record| {
            let rendered = render_user(base, record, groups.get(&record.id).map(Vec::as_slice));
            Value::Object(projection.apply(rendered))
        })
        .collect())
}
