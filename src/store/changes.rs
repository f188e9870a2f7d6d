//! The change log and the rejected writes as the store keeps them: who made a change and
//! with which request ([`Actor`], [`ChangeRequest`]), what one entry records
//! ([`ChangeWrite`], [`ChangeEntry`]), refused write requests ([`RejectedWrite`]) and the
//! query that reads both back ([`AuditQuery`]).
//!
//! An entry is written by the store in the transaction of the change it records, and only
//! when something changed: a retry that changes nothing leaves no entry, exactly as it makes
//! no new version.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{GroupRecord, GroupWrite, StoreResult, UserRecord, UserWrite};
use crate::scim::diff::{changed_attributes, created_attributes};

/// Most member ids an entry lists each way (added, removed); the counts are always whole and
/// the full list of a PUT stays in the entry's data.
pub const MEMBERSHIP_IDS_KEPT: usize = 1_000;

/// Who made a change: the API key and the request, as the audit trail names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    /// The API key the request authenticated with (none for the command line).
    pub key_id: Option<Uuid>,
    /// That key's name, as its creator gave it (e.g. "okta").
    pub key_name: Option<Arc<str>>,
    /// The request id (`x-request-id`), echoed to the client and written to the logs.
    pub request_id: Option<String>,
    /// The client's address, after trusted proxies.
    pub client_addr: Option<IpAddr>,
    pub user_agent: Option<String>,
}

/// The kind of change, named as RFC 9967 §2.4 names its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Put,
    Patch,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Put => "put",
            Operation::Patch => "patch",
            Operation::Delete => "delete",
        }
    }
}

/// A change as the resource layer asks for it: who, which operation, and the request's data
/// (without any password) for RFC 9967 "full" events.
#[derive(Debug, Clone)]
pub struct ChangeRequest<'a> {
    pub actor: &'a Actor,
    pub operation: Operation,
    pub data: Option<Value>,
}

/// Memberships a change made or ended: for a group, its users; for a deleted user, the
/// groups it left. Counts are whole; ids are kept up to [`MEMBERSHIP_IDS_KEPT`] each way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    pub added: u64,
    pub removed: u64,
    pub added_ids: Vec<Uuid>,
    pub removed_ids: Vec<Uuid>,
}

impl Memberships {
    /// From every id added and removed.
    pub fn from_ids(mut added: Vec<Uuid>, mut removed: Vec<Uuid>) -> Memberships {
        let (added_count, removed_count) = (added.len() as u64, removed.len() as u64);
        added.truncate(MEMBERSHIP_IDS_KEPT);
        removed.truncate(MEMBERSHIP_IDS_KEPT);
        Memberships {
            added: added_count,
            removed: removed_count,
            added_ids: added,
            removed_ids: removed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added == 0 && self.removed == 0
    }

    /// As the entry keeps it.
    pub fn to_json(&self) -> Value {
        let ids = |ids: &[Uuid]| -> Vec<String> { ids.iter().map(Uuid::to_string).collect() };
        json!({
            "added": self.added,
            "removed": self.removed,
            "addedIds": ids(&self.added_ids),
            "removedIds": ids(&self.removed_ids),
        })
    }
}

/// `active` went from false to true (`activated`) or back (`deactivated`): RFC 9967 §2.4.5
/// and §2.4.6 publish these as events of their own.
pub fn activation(before: bool, after: bool) -> Option<&'static str> {
    match (before, after) {
        (false, true) => Some("activated"),
        (true, false) => Some("deactivated"),
        _ => None,
    }
}

/// One entry to append, as the store fills it in inside the transaction.
#[derive(Debug, Clone)]
pub struct ChangeWrite<'a> {
    pub resource_type: &'static str,
    pub resource_id: Uuid,
    pub external_id: Option<&'a str>,
    pub activation: Option<&'static str>,
    pub attributes: Vec<String>,
    /// The version after the change (for a delete, the version deleted).
    pub version: i64,
    pub memberships: Option<Memberships>,
    pub request: &'a ChangeRequest<'a>,
}

impl<'a> ChangeWrite<'a> {
    /// User `id` created as `next`, or changed from `before` (the locked row) to `next`; its
    /// version after the write is one more than before (1 when created), as the store
    /// writes it. Fails only when `before`'s stored document cannot be read.
    pub fn user(
        request: &'a ChangeRequest<'a>,
        id: Uuid,
        before: Option<&UserRecord>,
        next: &'a UserWrite,
    ) -> StoreResult<ChangeWrite<'a>> {
        let (mut attributes, activation) = match before {
            Some(before) => (
                changed_attributes(before.doc.map()?, &next.doc),
                activation(before.is_active(), next.is_active()),
            ),
            None => (created_attributes(&next.doc), None),
        };
        // The hash says only that a password was set, never which one.
        let password_changed = match before {
            Some(before) => before.password_hash != next.password_hash,
            None => next.password_hash.is_some(),
        };
        if password_changed {
            attributes.push("password".into());
            attributes.sort();
        }
        Ok(ChangeWrite {
            resource_type: "User",
            resource_id: id,
            external_id: next.external_id.as_deref(),
            activation,
            attributes,
            version: before.map_or(1, |before| before.version + 1),
            memberships: None,
            request,
        })
    }

    /// Group `id` created, or changed from `before` to `next`, with the memberships it made
    /// or ended (versions as for [`ChangeWrite::user`]).
    pub fn group(
        request: &'a ChangeRequest<'a>,
        id: Uuid,
        before: Option<&GroupRecord>,
        next: &'a GroupWrite,
        memberships: Memberships,
    ) -> ChangeWrite<'a> {
        let mut attributes = match before {
            Some(before) => changed_attributes(&before.doc, &next.doc),
            None => created_attributes(&next.doc),
        };
        if !memberships.is_empty() {
            attributes.push("members".into());
            attributes.sort();
        }
        ChangeWrite {
            resource_type: "Group",
            resource_id: id,
            external_id: next.external_id.as_deref(),
            activation: None,
            attributes,
            version: before.map_or(1, |before| before.version + 1),
            memberships: (!memberships.is_empty()).then_some(memberships),
            request,
        }
    }
}

/// One entry of the change log, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEntry {
    /// Where the entry stands in the log: increasing in commit order; a follower passes the
    /// last one it read to get the next ones.
    pub position: i64,
    pub org_id: Uuid,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub resource_type: String,
    pub resource_id: Uuid,
    pub external_id: Option<String>,
    pub operation: String,
    pub activation: Option<String>,
    pub attributes: Vec<String>,
    pub version: i64,
    pub key_id: Option<Uuid>,
    pub key_name: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub memberships: Option<Value>,
    pub data: Option<Value>,
}

/// A write request refused with a 4xx: who sent it and why it was refused, never its body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedWrite {
    pub org_id: Uuid,
    /// A UUIDv7: ordered by time.
    pub id: Uuid,
    pub at: i64,
    pub key_id: Option<Uuid>,
    pub key_name: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    pub path: String,
    pub status: u16,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
}

/// Which entries (or rejected writes) to read, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries after this position (change log only; rejected writes have none).
    pub after_position: Option<i64>,
    /// Only entries at or after this time (ms since the Unix epoch).
    pub since_ms: Option<i64>,
    pub resource_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    /// Only entries before this position (change log only: paging newest first).
    pub before_position: Option<i64>,
    /// Only rejected writes before this one (ids rise with time: paging newest first).
    pub before_id: Option<Uuid>,
    /// Only entries of this operation (`create`, `put`, `patch`, `delete`; change log only).
    pub operation: Option<String>,
    /// Newest first, instead of log order.
    pub newest_first: bool,
    /// Most entries returned.
    pub limit: i64,
    /// Leave each entry's `data` out (a reader that does not publish it, e.g. a stream of
    /// notices, is spared reading the documents).
    pub without_data: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memberships_keep_whole_counts_and_at_most_a_thousand_ids() {
        let added: Vec<Uuid> = (0..1_500).map(|_| Uuid::now_v7()).collect();
        let json = Memberships::from_ids(added.clone(), vec![added[0]]).to_json();
        assert_eq!(json["added"], 1_500);
        assert_eq!(json["removed"], 1);
        assert_eq!(
            json["addedIds"].as_array().unwrap().len(),
            MEMBERSHIP_IDS_KEPT
        );
        assert_eq!(json["removedIds"][0], added[0].to_string());
    }

    #[test]
    fn activation_names_only_a_change_of_active() {
        assert_eq!(activation(false, true), Some("activated"));
        assert_eq!(activation(true, false), Some("deactivated"));
        assert_eq!(activation(true, true), None);
        assert_eq!(activation(false, false), None);
    }
}
