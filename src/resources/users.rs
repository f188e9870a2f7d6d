//! Users (RFC 7643 §4.1): what differs from other resource types. A body is validated
//! against the schema, the userName rules, the caps and the organization's user attributes;
//! a password is hashed only once the change is known to apply; PUT is the reference's merge.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::kind::{log_adaptations, put_document};
use super::{Caller, Related, ResourceError, ResourceKind, ResourceResult, Resources, View};
use crate::config::Settings;
use crate::scim::diff::without_password;
use crate::scim::etag::{EtagCondition, check_if_match};
use crate::scim::interop::{self, Profile};
use crate::scim::limits::check_document;
use crate::scim::normalize::normalize_resource;
use crate::scim::patch;
use crate::scim::schema::{ResourceTypeDef, USER_RESOURCE};
use crate::scim::user::{self, UserMeta};
use crate::scim::user_text;
use crate::scim::{ScimError, USER_ATTRIBUTE_SCHEMA};
use crate::store::{
    ChangeRequest, Doc, MemberRef, Operation, ResourceRows, Store, StoreResult, UserRecord,
    UserWrite,
};

/// The User resource type.
pub struct Users;

/// A validated POST/PUT body: the document (with its userName) and the write-only password,
/// not hashed yet: hashing comes only after everything else about the request is known good.
struct UserInput {
    doc: Doc,
    password: Option<String>,
}

impl Resources {
    /// Validates a POST/PUT body: schema normalisation (RFC 7643 §4.1), userName rules, the
    /// document caps (size, values per attribute) and the org's user-attribute keys.
    async fn user_input(&self, org_id: Uuid, body: Doc) -> ResourceResult<UserInput> {
        if self.settings.profile.is_interop() {
            interop::check_body(&USER_RESOURCE, &body)?;
        }
        let mut doc = normalize_resource(&USER_RESOURCE, body)?;
        let name = user::user_name(&doc, self.settings.user_name_format)?;
        doc.insert("userName".into(), Value::String(name));
        let password = match doc.remove("password") {
            Some(Value::String(password)) => Some(password),
            _ => None,
        };
        check_document("user", &doc, &self.settings.limits)?;
        self.check_user_attributes(org_id, &doc).await?;
        Ok(UserInput { doc, password })
    }

    /// Keys under `urn:omni:params:1.0:UserAttribute` must be defined for the organization.
    async fn check_user_attributes(&self, org_id: Uuid, doc: &Doc) -> ResourceResult<()> {
        let Some(Value::Object(attributes)) = doc.get(USER_ATTRIBUTE_SCHEMA) else {
            return Ok(());
        };
        if attributes.is_empty() {
            return Ok(());
        }
        let defined = self.store.list_user_attributes(org_id).await?;
        Ok(undefined_user_attribute(
            doc,
            &defined,
            self.settings.profile,
        )?)
    }

    /// The hash to store for `password`, if given, computed only for a user that exists and
    /// would take the change (`rest_unchanged` on the user read outside any transaction says
    /// whether everything but the password would stay as it is). Hashing is slow and
    /// memory-hungry, and never runs inside the transaction, which checks again against the
    /// locked row.
    ///
    /// When nothing else changes and the password verifies against the stored hash, that
    /// hash is kept: an IdP retrying a PUT that carries the password then changes nothing,
    /// makes no new version and no change-log entry. Otherwise the password is recorded as
    /// changed whether or not it differs (verifying would cost a second argon2 run).
    async fn password_hash(
        &self,
        org_id: Uuid,
        id: Uuid,
        password: Option<String>,
        rest_unchanged: &(dyn Fn(&UserRecord) -> Result<bool, ScimError> + Sync),
    ) -> ResourceResult<Option<String>> {
        let Some(password) = password else {
            return Ok(None);
        };
        let current = self.store.users().get(org_id, id).await?;
        if rest_unchanged(&current)?
            && let Some(stored) = current.password_hash
            && self
                .password_matches(password.clone(), stored.clone())
                .await?
        {
            return Ok(Some(stored));
        }
        self.hash_if_given(Some(password)).await
    }

    /// Creates users as consecutive Bulk POSTs do (RFC 7644 §3.7): each body validated and
    /// its password hashed as a single create's is, and those that pass written in one
    /// transaction, each with its own change-log entry ([`UserStore::create_users`]). For
    /// each body, in order, the new user's id (version 1) or why it was not created, having
    /// changed nothing. Should the transaction fail as a whole, each user is written on its
    /// own instead, so each reports its own outcome.
    ///
    /// [`UserStore::create_users`]: crate::store::UserStore::create_users
    pub(super) async fn create_users(
        &self,
        caller: &Caller,
        bodies: Vec<Doc>,
    ) -> Vec<ResourceResult<Uuid>> {
        let mut results = Vec::with_capacity(bodies.len());
        let mut writes = Vec::with_capacity(bodies.len());
        let mut slots = Vec::with_capacity(bodies.len());
        for body in bodies {
            match self.new_user(caller, body).await {
                Ok(write) => {
                    slots.push(results.len());
                    results.push(Ok(Uuid::nil()));
                    writes.push(write);
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let profile = self.settings.profile;
        match self.store.create_users(caller.org_id, &writes).await {
            Ok(created) => {
                for (slot, result) in slots.into_iter().zip(created) {
                    results[slot] = result.map_err(|e| ResourceError::in_profile(e, profile));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, users = writes.len(), "batch of creates failed; writing them one by one");
                for (slot, (write, change)) in slots.into_iter().zip(&writes) {
                    results[slot] = self
                        .store
                        .create_user(caller.org_id, write, change)
                        .await
                        .map(|user| user.id)
                        .map_err(|e| ResourceError::in_profile(e, profile));
                }
            }
        }
        results
    }

    /// A POST body made into the user to insert and the change it records: validated, its
    /// password hashed.
    async fn new_user<'c>(
        &self,
        caller: &'c Caller,
        body: Doc,
    ) -> ResourceResult<(UserWrite, ChangeRequest<'c>)> {
        let input = self.user_input(caller.org_id, body).await?;
        let password_hash = self.hash_if_given(input.password).await?;
        let change = caller.change(Operation::Create, Some(Value::Object(input.doc.clone())));
        let write = UserWrite::from_doc(input.doc, password_hash, self.settings.profile);
        Ok((write, change))
    }
}

/// Refuses a user-attribute key the organization has not defined, naming it.
fn undefined_user_attribute(
    doc: &Doc,
    defined: &[String],
    profile: Profile,
) -> Result<(), ScimError> {
    match user::user_attribute_keys(doc).find(|k| !defined.contains(k)) {
        Some(undefined) => Err(user::undefined_user_attribute(undefined, profile)),
        None => Ok(()),
    }
}

#[async_trait]
impl ResourceKind for Users {
    type Record = UserRecord;
    const DEF: &'static ResourceTypeDef = &USER_RESOURCE;
    const RELATED: &'static str = "groups";
    const PATCH_ANSWERS_NO_CONTENT: bool = false;

    fn rows(store: &dyn Store) -> &dyn ResourceRows<UserRecord> {
        store.users()
    }

    /// RFC 7643 §4.1.2 `groups`: every statement that reads a user reads them with it (a
    /// column of its row kept by the database, migration 0018). Moved, not copied: a copy
    /// of each user's list (and of each group's name) was two allocations per user of a page.
    async fn related(
        _store: &dyn Store,
        _settings: &Settings,
        _org_id: Uuid,
        users: &mut [UserRecord],
    ) -> StoreResult<Vec<Option<Vec<MemberRef>>>> {
        Ok(users.iter_mut().map(|u| u.groups.take()).collect())
    }

    fn render(view: &View<'_>, record: UserRecord, groups: &Related) -> ResourceResult<Doc> {
        let meta = user_meta(view, &record, groups);
        // From the stored text, as `render_text`: the map is only for the projection.
        user::render(record.doc.stored_text(), &meta, view.profile)
            .map_err(|e| unrenderable(record.id, e))
    }

    /// Straight from the stored text (`scim::user_text`): no tree is built.
    fn render_text(
        view: &View<'_>,
        record: &UserRecord,
        groups: &Related,
        out: &mut Vec<u8>,
    ) -> ResourceResult<bool> {
        let meta = user_meta(view, record, groups);
        user_text::render_text(record.doc.stored_text(), &meta, view.profile, out)
            .map_err(|e| unrenderable(record.id, e))?;
        Ok(true)
    }

    /// The stored text, the members the server adds (`meta`, `schemas`, the extensions:
    /// under 640 bytes besides the base URL, twice in `meta`) and each group's entry.
    fn rendered_size_hint(view: &View<'_>, record: &UserRecord, groups: &Related) -> usize {
        let groups = groups.listed().map_or(0, <[_]>::len);
        record.doc.stored_text().text.len()
            + 640
            + 2 * view.base_url.len()
            + groups * (160 + view.base_url.len())
    }

    /// 409 `uniqueness` for a userName taken in the organization (any case).
    async fn create(res: &Resources, caller: &Caller, body: Doc) -> ResourceResult<UserRecord> {
        let (write, change) = res.new_user(caller, body).await?;
        res.store
            .create_user(caller.org_id, &write, &change)
            .await
            .map_err(|e| ResourceError::in_profile(e, res.settings.profile))
    }

    /// The reference's update: sets the attributes provided and leaves all others unchanged
    /// (in merge mode), in one read-modify-write transaction. `userName` is required and may
    /// change to a value unique in the organization.
    async fn replace(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<UserRecord> {
        let input = res.user_input(caller.org_id, body).await?;
        let (put_mode, profile) = (res.settings.put_mode, res.settings.profile);
        let limits = res.settings.limits;
        // The document the update makes of `current`, checked.
        let next_doc = |current: &UserRecord| -> Result<Doc, ScimError> {
            check_if_match(if_match, current.version)?;
            let doc = put_document(put_mode, current_doc(current)?, input.doc.clone());
            check_document("user", &doc, &limits)?;
            Ok(doc)
        };
        let rest_unchanged =
            |current: &UserRecord| Ok(next_doc(current)? == *current_doc(current)?);
        let password_hash = res
            .password_hash(caller.org_id, id, input.password.clone(), &rest_unchanged)
            .await?;
        let update = |current: &UserRecord| {
            let doc = next_doc(current)?;
            // A password is write-only and never sent back, so an omitted one is kept in
            // both modes.
            let hash = password_hash
                .clone()
                .or_else(|| current.password_hash.clone());
            Ok(UserWrite::from_doc(doc, hash, profile))
        };
        let change = caller.change(Operation::Put, Some(Value::Object(input.doc.clone())));
        res.store
            .update_user(caller.org_id, id, &update, &change)
            .await
            .map_err(|e| ResourceError::in_profile(e, profile))
    }

    async fn patch(
        res: &Resources,
        caller: &Caller,
        id: Uuid,
        body: Doc,
        if_match: Option<&EtagCondition>,
    ) -> ResourceResult<UserRecord> {
        let limits = res.settings.limits;
        patch::check_operation_count(&body, &limits)?;
        let ops = patch::parse_request(&body)?;
        let profile = res.settings.profile;
        if profile.is_interop() {
            interop::check_patch_ops(&ops)?;
        }
        // A key the operations add is checked against the organization's definitions by
        // the store, inside the write's transaction (a definition can be deleted meanwhile).
        let format = res.settings.user_name_format;
        // The document the operations make of `current`, checked, and whether they set a
        // password.
        let patched = |current: &UserRecord| -> Result<(Doc, bool), ScimError> {
            check_if_match(if_match, current.version)?;
            let outcome = patch::apply(&USER_RESOURCE, current_doc(current)?, &ops, &limits)?;
            log_adaptations(&outcome.adaptations);
            let mut doc = outcome.doc;
            let password_set = doc.remove("password").is_some();
            let name = user::user_name(&doc, format)?;
            doc.insert("userName".into(), Value::String(name));
            check_document("user", &doc, &limits)?;
            Ok((doc, password_set))
        };
        let password = patch::requested_password(&ops);
        let rest_unchanged =
            |current: &UserRecord| Ok(patched(current)?.0 == *current_doc(current)?);
        let password_hash = res
            .password_hash(caller.org_id, id, password, &rest_unchanged)
            .await?;
        let update = |current: &UserRecord| {
            let (doc, password_set) = patched(current)?;
            let hash = match (password_set, &password_hash) {
                (true, Some(hash)) => Some(hash.clone()),
                _ => current.password_hash.clone(),
            };
            Ok(UserWrite::from_doc(doc, hash, profile))
        };
        let data = without_password(Value::Object(body));
        let change = caller.change(Operation::Patch, Some(data));
        res.store
            .update_user(caller.org_id, id, &update, &change)
            .await
            .map_err(|e| ResourceError::in_profile(e, profile))
    }
}

/// A stored document that is not a JSON object (only something other than scimd writes
/// one): the read fails rather than showing a part of it.
fn unrenderable(id: Uuid, e: serde_json::Error) -> ResourceError {
    anyhow::anyhow!("the stored document of user {id} cannot be rendered: {e}").into()
}

/// What a rendered user shows besides its document.
fn user_meta<'a>(view: &View<'a>, record: &UserRecord, groups: &'a Related) -> UserMeta<'a> {
    UserMeta {
        id: record.id,
        created_ms: record.created_at,
        modified_ms: record.modified_at,
        version: record.version,
        base_url: view.base_url,
        groups: groups.listed(),
    }
}

/// The current user's document, for a write: one that cannot be read refuses the write
/// rather than being taken for an empty document.
fn current_doc(current: &UserRecord) -> Result<&Doc, ScimError> {
    current.doc.map().map_err(|e| {
        ScimError::internal(format!(
            "the stored document of user {} cannot be read: {e}",
            current.id
        ))
    })
}
