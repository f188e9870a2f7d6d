//! Keys: an organization's keys and personal tokens, and operators' admin keys. A token is
//! returned once, when its key is created; listings show each key's state and last use.

use serde_json::json;
use uuid::Uuid;

use super::views::KeyView;
use super::{Admin, bad_field};
use crate::resources::ResourceResult;
use crate::scim::ScimError;
use crate::store::{Actor, KeyKind, StoreError, now_ms};

/// Longest key name, in bytes.
const MAX_NAME_BYTES: usize = 200;

/// What a new key is.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: Option<String>,
    /// A personal access token (refused by every endpoint that takes keys) instead of an
    /// organization key.
    pub personal: bool,
    /// How long it lasts, in milliseconds; until revoked when absent.
    pub lifetime_ms: Option<i64>,
}

impl NewKey {
    fn check(&self) -> ResourceResult<()> {
        if let Some(name) = &self.name
            && (name.is_empty()
                || name.len() > MAX_NAME_BYTES
                || name.chars().any(char::is_control))
        {
            return Err(bad_field(
                "name",
                format!("must be 1-{MAX_NAME_BYTES} bytes without control characters"),
            ));
        }
        if self.lifetime_ms.is_some_and(|ms| ms <= 0) {
            return Err(bad_field("expiresIn", "must be a positive duration"));
        }
        Ok(())
    }
}

fn no_key(id: Uuid) -> crate::resources::ResourceError {
    ScimError::not_found(format!("no key {id}")).into()
}

impl Admin {
    /// Creates a key for an organization; the token (shown once) with its row.
    pub async fn create_key(
        &self,
        by: &Actor,
        slug: &str,
        new: &NewKey,
    ) -> ResourceResult<(KeyView, String)> {
        new.check()?;
        let org = self.live_org(slug).await?;
        let kind = if new.personal {
            KeyKind::Personal
        } else {
            KeyKind::Organization
        };
        let (key, token) = self
            .auth
            .mint(Some(org.id), kind, new.name.clone(), new.lifetime_ms)
            .await?;
        let detail = json!({"kind": kind.as_str(), "name": new.name});
        self.record(
            by,
            "key.create",
            Some(slug),
            Some(key.id.to_string()),
            Some(detail),
        )
        .await?;
        Ok((key.into(), token))
    }

    /// An organization's keys, oldest first.
    pub async fn keys(&self, slug: &str) -> ResourceResult<Vec<KeyView>> {
        let org = self.live_org(slug).await?;
        let keys = self.store.list_api_keys(org.id).await?;
        Ok(keys.into_iter().map(KeyView::from).collect())
    }

    /// Revokes a key of the organization `slug` (idempotent); a key of another organization
    /// is not found. The command line, which names no organization, passes `None`.
    pub async fn revoke_key(&self, by: &Actor, slug: Option<&str>, id: Uuid) -> ResourceResult<()> {
        let key = match self.store.api_key(id).await {
            Err(StoreError::NotFound) => return Err(no_key(id)),
            other => other?,
        };
        let org_slug = match slug {
            Some(slug) => {
                let org = self.live_org(slug).await?;
                if key.org_id != Some(org.id) {
                    return Err(no_key(id));
                }
                Some(slug.to_string())
            }
            None => None,
        };
        self.store.revoke_api_key(id, now_ms()).await?;
        self.auth.forget_cached();
        self.record(
            by,
            "key.revoke",
            org_slug.as_deref(),
            Some(id.to_string()),
            None,
        )
        .await
    }

    /// Creates an admin key; the token (shown once) with its row.
    pub async fn create_admin_key(
        &self,
        by: &Actor,
        new: &NewKey,
    ) -> ResourceResult<(KeyView, String)> {
        new.check()?;
        if new.personal {
            return Err(bad_field("personal", "an admin key is never personal"));
        }
        let (key, token) = self
            .auth
            .mint(None, KeyKind::Admin, new.name.clone(), new.lifetime_ms)
            .await?;
        let detail = json!({"name": new.name});
        self.record(
            by,
            "admin-key.create",
            None,
            Some(key.id.to_string()),
            Some(detail),
        )
        .await?;
        Ok((key.into(), token))
    }

    pub async fn admin_keys(&self) -> ResourceResult<Vec<KeyView>> {
        let keys = self.store.admin_keys().await?;
        Ok(keys.into_iter().map(KeyView::from).collect())
    }

    pub async fn revoke_admin_key(&self, by: &Actor, id: Uuid) -> ResourceResult<()> {
        match self.store.revoke_admin_key(id, now_ms()).await {
            Err(StoreError::NotFound) => return Err(no_key(id)),
            other => other?,
        }
        self.auth.forget_cached();
        self.record(by, "admin-key.revoke", None, Some(id.to_string()), None)
            .await
    }
}
