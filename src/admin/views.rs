//! What the admin API answers, as JSON: organizations with their counts, keys with their
//! last use, signing secrets with the keys they still sign, deletions with their progress.
//! Times are milliseconds since the Unix epoch, as everywhere in scimd's own JSON.

use serde::Serialize;
use uuid::Uuid;

use crate::store::admin::{OrgDeletion, OrgSummary};
use crate::store::{ApiKey, KeyUse, now_ms};

/// An organization.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgView {
    pub id: Uuid,
    pub slug: String,
    pub created_at: i64,
    /// `active`, or `deleting` while its data is being removed.
    pub state: &'static str,
    pub users: i64,
    /// Users with `active: false`.
    pub inactive_users: i64,
    pub groups: i64,
    /// Keys not revoked.
    pub keys: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion: Option<OrgDeletion>,
}

impl OrgView {
    pub fn new(summary: OrgSummary, deletion: Option<OrgDeletion>) -> OrgView {
        OrgView {
            id: summary.org.id,
            slug: summary.org.slug,
            created_at: summary.org.created_at,
            state: if summary.org.deleted_at.is_some() {
                "deleting"
            } else {
                "active"
            },
            users: summary.users,
            inactive_users: summary.inactive_users,
            groups: summary.groups,
            keys: summary.keys,
            deletion,
        }
    }
}

/// A deletion's progress (`OrgDeletion`), as the API names it.
pub type DeletionView = OrgDeletion;

/// A key: never its token, which is shown once, when it is created.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView {
    pub id: Uuid,
    pub name: Option<String>,
    /// `organization`, `personal` or `admin`.
    pub kind: &'static str,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The secret that signed it.
    pub secret: String,
    /// Its last use, recorded at most once a minute.
    pub last_used: Option<KeyUse>,
}

impl From<ApiKey> for KeyView {
    fn from(key: ApiKey) -> KeyView {
        KeyView {
            id: key.id,
            state: key_state(&key),
            name: key.name,
            kind: key.kind.as_str(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            secret: key.secret_id,
            last_used: key.last_used,
        }
    }
}

/// `active`, `expired` or `revoked`.
pub fn key_state(key: &ApiKey) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if key.expires_at.is_some_and(|at| at <= now_ms()) {
        "expired"
    } else {
        "active"
    }
}

/// A signing secret: never its value.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretView {
    /// The `kid` of the keys it signs.
    pub id: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// Whether new keys are signed with it (the newest active secret).
    pub signing: bool,
    /// Keys it signs that still work: retiring it invalidates them.
    pub live_keys: i64,
}
