//! What the store keeps and returns: organizations, keys, user and group records, the writes
//! the SCIM layer computes (with every derived column, in `from_doc`), and the closures a
//! read-modify-write transaction runs.

use serde_json::Value;
use uuid::Uuid;

use super::fold::{self, FoldedDoc};
use super::{Doc, StoredDoc};
use crate::scim::ScimError;
use crate::scim::group::MemberRef;
use crate::scim::interop::Profile;
use crate::scim::user::{fallback_email, fallback_emails};

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub created_at: i64,
    /// When it was deleted: its keys are refused and its data is being removed.
    pub deleted_at: Option<i64>,
}

/// What an API key may do: organization keys reach SCIM, personal access tokens do not,
/// admin keys reach only the admin API (`/admin/v1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Organization,
    Personal,
    Admin,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Organization => "organization",
            KeyKind::Personal => "personal",
            KeyKind::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "organization" => Some(KeyKind::Organization),
            "personal" => Some(KeyKind::Personal),
            "admin" => Some(KeyKind::Admin),
            _ => None,
        }
    }
}

/// The stored side of an API key (the JWT itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    /// The organization of an organization key or personal token; none for an admin key.
    pub org_id: Option<Uuid>,
    pub name: Option<String>,
    pub kind: KeyKind,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The signing secret of its JWT (the token's `kid`).
    pub secret_id: String,
    /// Its last recorded use (at most one record a minute).
    pub last_used: Option<KeyUse>,
    /// Its organization is deleted (read with the key for authentication).
    pub org_deleted: bool,
}

impl ApiKey {
    /// Whether the key is usable at `now`: not revoked, not expired, its organization not
    /// deleted.
    pub fn live_at(&self, now: i64) -> bool {
        self.revoked_at.is_none() && !self.org_deleted && self.expires_at.is_none_or(|at| at > now)
    }
}

/// When, from where and by what a key was last used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyUse {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
}

/// A stored user: its SCIM document plus the server-managed columns.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    /// The `active` column: what filters compare (see [`UserWrite::from_doc`]).
    pub active: Option<bool>,
    /// Client-settable attributes (core, and extensions under their URN), without
    /// id/meta/groups/password: the stored text, parsed when a write needs it.
    pub doc: StoredDoc,
    pub password_hash: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub modified_at: i64,
    pub version: i64,
    /// The groups the user belongs to, ordered by name: a column of the user's row, which
    /// every statement that answers with a user selects (`None` where a statement did not).
    pub groups: Option<Vec<MemberRef>>,
}

/// The client-controlled part of a user, as computed by the SCIM layer for a create or update,
/// with every value the store derives from it. Build it with [`UserWrite::from_doc`], the one
/// place those values are computed.
#[derive(Debug, Clone, PartialEq)]
pub struct UserWrite {
    pub user_name: String,
    pub external_id: Option<String>,
    /// `active` as the profile renders it: the stored value, defaulting to true in the
    /// reference profile; none when absent in the interop profile.
    pub active: Option<bool>,
    pub doc: Doc,
    pub password_hash: Option<String>,
    /// `userName` folded, for the case-insensitive uniqueness index (RFC 7643 §4.1.1).
    pub user_name_folded: String,
    /// The folded `emails[].value`s, for the `user_emails` lookup table.
    pub emails_folded: Vec<String>,
    /// The document with its caseExact=false strings folded, for filters and sorting.
    pub doc_folded: FoldedDoc,
}

impl UserWrite {
    /// The columns the store keeps, derived from the document (which stays the truth):
    /// `userName`, `externalId`, `active`, and their folded copies, each as `profile`
    /// renders the user, so filters find what is shown. A change of profile refolds the
    /// users whose derived columns differ between the two (`HealthStore::adopt_profile`).
    pub fn from_doc(doc: Doc, password_hash: Option<String>, profile: Profile) -> UserWrite {
        let user_name = doc
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        // Filters read the folded copy: it holds the fallback email as it is rendered.
        let fallback = fallback_email(&doc).filter(|_| profile == Profile::Reference);
        let fallback_value = fallback.map(fallback_emails);
        let doc_folded = FoldedDoc::of(
            &crate::scim::schema::USER_RESOURCE,
            &doc,
            fallback_value.as_ref().map(|emails| ("emails", emails)),
        );
        let stored_active = doc.get("active").and_then(Value::as_bool);
        UserWrite {
            user_name_folded: fold::fold(&user_name),
            emails_folded: folded_emails(&doc, fallback),
            doc_folded,
            user_name,
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string),
            active: match profile {
                Profile::Reference => Some(stored_active.unwrap_or(true)),
                Profile::Interop => stored_active,
            },
            doc,
            password_hash,
        }
    }

    /// Whether writing this would change nothing: then no new version is made
    /// (RFC 7644 §3.5.2.1: an add that changes nothing "SHALL NOT change the modify timestamp").
    pub fn same_as(&self, current: &UserRecord) -> bool {
        self.user_name == current.user_name
            && self.external_id == current.external_id
            && self.active == current.active
            && self.password_hash == current.password_hash
            && current.doc.map().is_ok_and(|doc| *doc == self.doc)
    }

    /// Whether `user_emails` may need rewriting for this write: the stored emails or the
    /// userName (the fallback email's source) differ. Rewriting equal rows is harmless, so a
    /// stored document that cannot be read counts as different.
    pub fn emails_differ(&self, current: &UserRecord) -> bool {
        let current_emails = current.doc.map().map(|doc| doc.get("emails"));
        current_emails.map_or(true, |emails| emails != self.doc.get("emails"))
            || self.user_name != current.user_name
    }

    /// Whether the user counts as active for the change log's activated / deactivated: an
    /// absent `active` is not a deactivation.
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }
}

impl UserRecord {
    /// See [`UserWrite::is_active`].
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }
}

impl GroupWrite {
    /// Whether writing this would change nothing (see [`UserWrite::same_as`]).
    pub fn same_as(&self, current: &GroupRecord) -> bool {
        self.display_name == current.display_name
            && self.external_id == current.external_id
            && self.doc == current.doc
    }
}

/// A read-modify-write step: given the current user (read under a lock), compute its new state.
pub type UserUpdateFn<'a> = dyn Fn(&UserRecord) -> Result<UserWrite, ScimError> + Send + Sync + 'a;

/// A stored group (RFC 7643 §4.2): its document without members, plus server columns.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    /// Client-settable attributes except `members`, which live in their own table.
    pub doc: Doc,
    pub created_at: i64,
    pub modified_at: i64,
    pub version: i64,
}

/// The client-controlled part of a group, as computed by the SCIM layer, with the values the
/// store derives from it; built by [`GroupWrite::from_doc`].
#[derive(Debug, Clone, PartialEq)]
pub struct GroupWrite {
    pub display_name: String,
    pub external_id: Option<String>,
    pub doc: Doc,
    /// `displayName` folded, for its case-insensitive uniqueness index.
    pub display_name_folded: String,
    /// The document with its caseExact=false strings folded.
    pub doc_folded: FoldedDoc,
}

impl GroupWrite {
    /// The columns the store keeps, derived from the document; `displayName` is required
    /// (RFC 7643 §4.2).
    pub fn from_doc(doc: Doc) -> Result<GroupWrite, ScimError> {
        let display_name = crate::scim::group::display_name(&doc)?;
        Ok(GroupWrite {
            display_name_folded: fold::fold(&display_name),
            doc_folded: FoldedDoc::of(&crate::scim::schema::GROUP_RESOURCE, &doc, None),
            display_name,
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string),
            doc,
        })
    }
}

/// A read-modify-write step for a group.
pub type GroupUpdateFn<'a> =
    dyn Fn(&GroupRecord) -> Result<GroupWrite, ScimError> + Send + Sync + 'a;

/// One page of a list plus the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<R> {
    pub rows: Vec<R>,
    pub total: i64,
    /// The byte budget stopped the page before `count` rows: more rows follow.
    pub truncated: bool,
}

/// A check run on the current resource (read under a lock) before it is deleted, e.g.
/// `If-Match`.
pub type CheckFn<'a, R> = dyn Fn(&R) -> Result<(), ScimError> + Send + Sync + 'a;

/// What every stored resource has: an id, a creation time and a version (its ETag).
pub trait Versioned {
    fn id(&self) -> Uuid;
    fn created_at(&self) -> i64;
    fn version(&self) -> i64;
}

macro_rules! versioned {
    ($($record:ty),*) => {$(
        impl Versioned for $record {
            fn id(&self) -> Uuid {
                self.id
            }
            fn created_at(&self) -> i64 {
                self.created_at
            }
            fn version(&self) -> i64 {
                self.version
            }
        }
    )*};
}

versioned!(UserRecord, GroupRecord);

/// The folded `emails[].value`s of a user document, for the `user_emails` lookup table: the
/// fallback email where it is rendered ([`fallback_email`]), else the stored ones.
fn folded_emails(doc: &Doc, fallback: Option<&str>) -> Vec<String> {
    if let Some(address) = fallback {
        return vec![fold::fold(address)];
    }
    let Some(serde_json::Value::Array(emails)) = doc.get("emails") else {
        return Vec::new();
    };
    let mut values: Vec<String> = emails
        .iter()
        .filter_map(|e| e.get("value").and_then(serde_json::Value::as_str))
        .map(fold::fold)
        .collect();
    values.sort();
    values.dedup();
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user's folded copy, read back.
    fn folded_members(user: &UserWrite) -> Doc {
        serde_json::from_str(user.doc_folded.text()).unwrap()
    }

    #[test]
    fn from_doc_derives_the_folded_and_defaulted_columns() {
        let doc = |v: Value| v.as_object().cloned().unwrap();
        let user = UserWrite::from_doc(
            doc(serde_json::json!({"userName": "ÄNNE@BlobsRUs.CO",
                "emails": [{"value": "B@X.de"}, {"value": "b@x.DE"}]})),
            None,
            Profile::Reference,
        );
        assert_eq!(user.user_name_folded, "änne@blobsrus.co");
        assert_eq!(user.emails_folded, ["b@x.de"]);
        assert_eq!(user.active, Some(true));
        let bare = doc(serde_json::json!({"userName": "Anne@x.co"}));
        let reference = UserWrite::from_doc(bare.clone(), None, Profile::Reference);
        assert_eq!(reference.active, Some(true));
        assert_eq!(reference.emails_folded, ["anne@x.co"]);
        assert_eq!(
            folded_members(&reference)["emails"],
            serde_json::json!([{"primary": true, "value": "anne@x.co"}])
        );
        let interop = UserWrite::from_doc(bare, None, Profile::Interop);
        assert_eq!(interop.active, None);
        assert!(interop.emails_folded.is_empty());
        assert!(!folded_members(&interop).contains_key("emails"));
        assert_eq!(user.external_id, None);
        let group = GroupWrite::from_doc(doc(serde_json::json!({"displayName": "Ops"}))).unwrap();
        assert_eq!(group.display_name_folded, "ops");
        assert!(GroupWrite::from_doc(Doc::new()).is_err());
    }
}
