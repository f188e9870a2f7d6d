//! Organizations: create, list and read with their counts, rename, delete (at once for its
//! keys, its data in the background: `deletion.rs`).

use serde_json::json;

use super::views::OrgView;
use super::{Admin, bad_field, no_org};
use crate::resources::ResourceResult;
use crate::scim::ScimError;
use crate::store::admin::OrgDeletion;
use crate::store::{Actor, StoreError, now_ms};

/// A slug: 1-63 of a-z, 0-9 and `-` (it appears in URLs and on the command line).
pub fn valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn check_slug(slug: &str) -> ResourceResult<()> {
    if valid_slug(slug) {
        Ok(())
    } else {
        Err(bad_field(
            "slug",
            format!("{slug:?} must be 1-63 of a-z, 0-9 and -"),
        ))
    }
}

impl Admin {
    pub async fn create_org(&self, by: &Actor, slug: &str) -> ResourceResult<OrgView> {
        check_slug(slug)?;
        match self.store.create_org(slug).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(ScimError::uniqueness(format!(
                    "organization {slug:?} already exists (or is still being deleted)"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        self.record(by, "org.create", Some(slug), None, None)
            .await?;
        self.org(slug).await
    }

    /// Every organization with its counts, by slug (those being deleted too).
    pub async fn orgs(&self) -> ResourceResult<Vec<OrgView>> {
        let deletions = self.store.org_deletions(super::MAX_PAGE).await?;
        let summaries = self.store.org_summaries().await?;
        Ok(summaries
            .into_iter()
            .map(|summary| {
                let deletion = summary.org.deleted_at.and_then(|_| {
                    deletions
                        .iter()
                        .find(|d| d.org_id == summary.org.id)
                        .cloned()
                });
                OrgView::new(summary, deletion)
            })
            .collect())
    }

    /// One organization with its counts; while it is being deleted, with the progress.
    pub async fn org(&self, slug: &str) -> ResourceResult<OrgView> {
        let summary = match self.store.org_summary(slug).await {
            Err(StoreError::NotFound) => return Err(no_org(slug)),
            other => other?,
        };
        let deletion = match summary.org.deleted_at {
            Some(_) => self
                .store
                .org_deletions(super::MAX_PAGE)
                .await?
                .into_iter()
                .find(|d| d.org_id == summary.org.id),
            None => None,
        };
        Ok(OrgView::new(summary, deletion))
    }

    pub async fn rename_org(
        &self,
        by: &Actor,
        slug: &str,
        new_slug: &str,
    ) -> ResourceResult<OrgView> {
        check_slug(new_slug)?;
        let org = self.live_org(slug).await?;
        match self.store.rename_org(org.id, new_slug).await {
            Err(StoreError::Conflict(_)) => {
                return Err(ScimError::uniqueness(format!(
                    "slug: organization {new_slug:?} already exists"
                ))
                .into());
            }
            Err(StoreError::NotFound) => return Err(no_org(slug)),
            other => other?,
        }
        let detail = json!({"from": slug, "to": new_slug});
        self.record(by, "org.rename", Some(new_slug), None, Some(detail))
            .await?;
        self.org(new_slug).await
    }

    /// Deletes an organization: its keys are refused from now on (in this process at once,
    /// in others within the key cache time) and its data is removed in the background, in
    /// batches, by whichever process runs the deletion worker. The record of the deletion
    /// and of its progress outlives the organization.
    pub async fn delete_org(&self, by: &Actor, slug: &str) -> ResourceResult<OrgDeletion> {
        let org = self.live_org(slug).await?;
        let deletion = match self.store.mark_org_deleted(&org, now_ms()).await {
            Err(StoreError::NotFound) => return Err(no_org(slug)),
            other => other?,
        };
        self.auth.forget_cached();
        self.record(by, "org.delete", Some(slug), Some(org.id.to_string()), None)
            .await?;
        self.deletions.notify_one();
        Ok(deletion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words() {
        for ok in ["default", "acme", "acme-2"] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in ["", "Acme", "a b", "a/b", &"x".repeat(64)] {
            assert!(!valid_slug(bad), "{bad}");
        }
    }
}
