//! Operating scimd: organizations, their keys, user-attribute definitions, event streams and
//! audit trail, admin keys and the secrets that sign keys. No axum here: the admin API
//! (`http/admin.rs`) and the command line (`main.rs` through `app.rs`) call the same
//! functions, and every action is recorded in the operators' own audit trail
//! ([`AdminAction`]), which outlives the organizations it names.
//!
//! Errors are [`ResourceError`]s, as in the resource layer: a bad field is a 400 naming it,
//! an unknown organization or key a 404, a conflict a 409.

mod console_data;
mod deletion;
mod keys;
mod org_data;
mod orgs;
mod secrets;
mod views;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Notify;
use uuid::Uuid;

pub use console_data::{LAG_SHOWN_UP_TO, StoredResource};
pub use deletion::{DELETE_BATCH, spawn_deletions};
pub use keys::NewKey;
pub use org_data::StreamRequest;
pub use views::{DeletionView, KeyView, OrgView, SecretView};

use crate::auth::Authenticator;
use crate::resources::{ResourceError, ResourceResult};
use crate::scim::ScimError;
use crate::store::admin::{AdminAction, OrgDeletion};
use crate::store::{Actor, Organization, Store, StoreError, now_ms};

/// The operations behind the admin API and the command line.
#[derive(Clone)]
pub struct Admin {
    store: Arc<dyn Store>,
    auth: Arc<Authenticator>,
    /// Wakes this process's deletion worker when an organization is deleted here.
    deletions: Arc<Notify>,
}

impl Admin {
    pub fn new(store: Arc<dyn Store>, auth: Arc<Authenticator>) -> Admin {
        Admin {
            store,
            auth,
            deletions: Arc::new(Notify::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// An organization that is not deleted, by slug; 404 naming it otherwise.
    async fn live_org(&self, slug: &str) -> ResourceResult<Organization> {
        match self.store.org_by_slug(slug).await {
            Ok(org) if org.deleted_at.is_none() => Ok(org),
            Ok(_) => {
                Err(ScimError::not_found(format!("organization {slug:?} is being deleted")).into())
            }
            Err(StoreError::NotFound) => Err(no_org(slug)),
            Err(e) => Err(e.into()),
        }
    }

    /// Records an operator's action in the admin audit trail (after the action succeeded).
    async fn record(
        &self,
        by: &Actor,
        action: &str,
        org_slug: Option<&str>,
        target: Option<String>,
        detail: Option<Value>,
    ) -> ResourceResult<()> {
        let action = AdminAction {
            id: Uuid::now_v7(),
            at: now_ms(),
            action: action.to_string(),
            org_slug: org_slug.map(str::to_string),
            target,
            key_id: by.key_id,
            key_name: by.key_name.as_deref().map(str::to_string),
            request_id: by.request_id.clone(),
            client_addr: by.client_addr.map(|a| a.to_string()),
            user_agent: by.user_agent.clone(),
            detail,
        };
        Ok(self.store.record_admin_action(&action).await?)
    }

    /// The operators' audit trail, oldest first, after the action `after` when given.
    pub async fn actions(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> ResourceResult<Vec<AdminAction>> {
        Ok(self
            .store
            .admin_actions(after, limit.clamp(1, MAX_PAGE))
            .await?)
    }

    /// Deletions, unfinished first.
    pub async fn deletions(&self) -> ResourceResult<Vec<OrgDeletion>> {
        Ok(self.store.org_deletions(MAX_PAGE).await?)
    }
}

/// Most rows one admin list returns.
pub const MAX_PAGE: i64 = 1_000;

/// 404 for an organization slug.
fn no_org(slug: &str) -> ResourceError {
    ScimError::not_found(format!("no organization {slug:?}")).into()
}

/// 400 naming the field that is wrong and why.
fn bad_field(field: &str, why: impl std::fmt::Display) -> ResourceError {
    ScimError::invalid_value(format!("{field}: {why}")).into()
}

/// The actor of a command-line action: no key, no request.
pub fn command_line() -> Actor {
    Actor {
        key_name: Some(Arc::from("command line")),
        ..Actor::default()
    }
}
