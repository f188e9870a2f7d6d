//! What the console reads beyond the admin API's listings: hourly activity, each stream's
//! lag, and one user or group as it is stored now.

use serde_json::Value;
use uuid::Uuid;

use super::Admin;
use crate::resources::ResourceResult;
use crate::scim::ScimError;
use crate::store::activity::ActivityCount;
use crate::store::{Doc, EventStream, StoreError};

/// A stream's lag is counted up to this many entries (and shown as "10000+").
pub const LAG_SHOWN_UP_TO: i64 = 10_000;

/// A user or group as stored: its document (never a password), version and times.
#[derive(Debug, Clone)]
pub struct StoredResource {
    pub resource_type: &'static str,
    pub id: Uuid,
    pub doc: Doc,
    pub version: i64,
    pub created_at: i64,
    pub modified_at: i64,
}

impl Admin {
    /// The hourly counts of `slug` (every organization: none) from `since_hour` on.
    pub async fn activity(
        &self,
        slug: Option<&str>,
        since_hour: i64,
    ) -> ResourceResult<Vec<ActivityCount>> {
        let org_id = match slug {
            Some(slug) => Some(self.live_org(slug).await?.id),
            None => None,
        };
        Ok(self.store.activity_since(org_id, since_hour).await?)
    }

    /// How many change-log entries `stream` has yet to deliver, counted up to
    /// [`LAG_SHOWN_UP_TO`].
    pub async fn stream_lag(&self, stream: &EventStream) -> ResourceResult<i64> {
        Ok(self
            .store
            .entries_after(stream.org_id, stream.position, LAG_SHOWN_UP_TO)
            .await?)
    }

    /// The user or group `id` of `slug`, whichever it is.
    pub async fn stored_resource(&self, slug: &str, id: Uuid) -> ResourceResult<StoredResource> {
        let org = self.live_org(slug).await?;
        match self.store.users().get(org.id, id).await {
            Ok(user) => {
                return Ok(StoredResource {
                    resource_type: "User",
                    id,
                    doc: user.doc.into_map()?,
                    version: user.version,
                    created_at: user.created_at,
                    modified_at: user.modified_at,
                });
            }
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        match self.store.groups().get(org.id, id).await {
            Ok(group) => {
                let mut doc = group.doc;
                doc.insert("displayName".into(), Value::String(group.display_name));
                Ok(StoredResource {
                    resource_type: "Group",
                    id,
                    doc,
                    version: group.version,
                    created_at: group.created_at,
                    modified_at: group.modified_at,
                })
            }
            Err(StoreError::NotFound) => {
                Err(ScimError::not_found(format!("no user or group {id}")).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}
