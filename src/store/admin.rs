//! What operating scimd stores beyond the organizations' own data: admin keys, the secrets
//! that sign keys, keys' last use, organization deletion and its progress, user-attribute
//! deletion, and the operators' audit trail.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{ApiKey, KeyKind, KeyUse, Organization, StoreResult};

/// The name of the first signing secret: `SCIMD_JWT_SECRET` (or SQLite's generated one).
/// A key's JWT without `kid` was signed with it.
pub const INITIAL_SECRET: &str = "initial";

/// An organization with what it holds, for the admin API's lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgSummary {
    pub org: Organization,
    pub users: i64,
    /// Users with `active: false`.
    pub inactive_users: i64,
    pub groups: i64,
    /// Keys not revoked (expired ones included).
    pub keys: i64,
    /// When its newest change-log entry was written.
    pub last_change_at: Option<i64>,
}

/// The progress of an organization's deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgDeletion {
    pub org_id: Uuid,
    pub slug: String,
    /// Milliseconds since the Unix epoch.
    pub requested_at: i64,
    /// Rows of its data removed so far.
    pub rows_removed: i64,
    /// Set once every row, the organization's own last, is gone.
    pub finished_at: Option<i64>,
}

/// A secret that signs API keys (HMAC, HS256), named by the JWT's `kid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecret {
    pub id: String,
    /// The secret; none for [`INITIAL_SECRET`], whose value is configured, not stored.
    pub secret: Option<String>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

/// A signed-in session of the operator console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The hash of the cookie's token.
    pub id: String,
    pub admin_key_id: Uuid,
    /// The token every form of the session carries.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One thing an operator did, through the admin API or the command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminAction {
    pub id: Uuid,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// What was done, e.g. `org.create`, `key.revoke`, `secret.retire`.
    pub action: String,
    /// The organization it concerned, by slug (kept when the organization is gone).
    pub org_slug: Option<String>,
    /// What it acted on within that organization, or on the server (a key id, an attribute).
    pub target: Option<String>,
    /// The admin key (none from the command line).
    pub key_id: Option<Uuid>,
    pub key_name: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    /// What else the action had (a new slug, how many keys a retirement invalidated).
    pub detail: Option<Value>,
}

/// Organizations as operators manage them, keys beyond the organizations', signing secrets,
/// and the operators' audit trail.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Every organization, deleted ones still being removed included, by slug, with counts.
    async fn org_summaries(&self) -> StoreResult<Vec<OrgSummary>>;
    /// One organization by slug (a deleted one still being removed included), with counts.
    async fn org_summary(&self, slug: &str) -> StoreResult<OrgSummary>;
    /// Renames an organization that is not deleted; `Conflict("slug")` when taken.
    async fn rename_org(&self, id: Uuid, slug: &str) -> StoreResult<()>;
    /// Marks the organization deleted at `at` and starts its deletion record, in one
    /// transaction; `NotFound` when it is already deleted or unknown.
    async fn mark_org_deleted(&self, org: &Organization, at: i64) -> StoreResult<OrgDeletion>;
    /// Deletions, unfinished ones first, then the most recently requested.
    async fn org_deletions(&self, limit: i64) -> StoreResult<Vec<OrgDeletion>>;
    /// Removes at most `batch` rows of a deleted organization's data from one table (each
    /// table in an order the foreign keys allow), counting them in its deletion record, in
    /// one short transaction; when no data is left, removes the organization's row and
    /// finishes the record. How many rows went: `Some(0)` when this call finished the
    /// deletion, `None` when there is none to run (finished elsewhere, or never started).
    async fn delete_org_batch(&self, org_id: Uuid, batch: i64) -> StoreResult<Option<u64>>;

    async fn create_admin_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn admin_key(&self, id: Uuid) -> StoreResult<ApiKey>;
    async fn admin_keys(&self) -> StoreResult<Vec<ApiKey>>;
    /// Marks an admin key revoked (idempotent); `NotFound` for an unknown id.
    async fn revoke_admin_key(&self, id: Uuid, at: i64) -> StoreResult<()>;
    /// Records a key's use unless one was recorded in the minute before `used.at` (so
    /// several processes together write at most once a minute per key).
    async fn record_key_use(&self, kind: KeyKind, id: Uuid, used: &KeyUse) -> StoreResult<()>;

    async fn signing_secrets(&self) -> StoreResult<Vec<SigningSecret>>;
    async fn add_signing_secret(&self, secret: &SigningSecret) -> StoreResult<()>;
    /// Marks a secret retired at `at` (the initial one gets its row here); `NotFound` for
    /// an unknown id.
    async fn retire_signing_secret(&self, id: &str, at: i64) -> StoreResult<()>;
    /// Keys (of organizations and admin keys) signed by `secret_id` that still work at `now`.
    async fn live_keys_of_secret(&self, secret_id: &str, now: i64) -> StoreResult<i64>;

    /// Deletes a user-attribute definition only when no user of the organization carries
    /// the key, checked in the same transaction (a write adding the key holds the
    /// definition's row until it commits: see `UserStore`). `Conflict` naming how many users
    /// carry it; `NotFound` for an unknown key.
    async fn delete_user_attribute(&self, org_id: Uuid, key: &str) -> StoreResult<()>;

    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()>;
    /// A session that has not expired at `now`; `NotFound` otherwise.
    async fn console_session(&self, id: &str, now: i64) -> StoreResult<ConsoleSession>;
    /// Ends a session (and, while at it, every session expired at `now`).
    async fn delete_console_session(&self, id: &str, now: i64) -> StoreResult<()>;

    async fn record_admin_action(&self, action: &AdminAction) -> StoreResult<()>;
    /// The operators' audit trail, oldest first, after `after` (an action id) when given.
    async fn admin_actions(&self, after: Option<Uuid>, limit: i64)
    -> StoreResult<Vec<AdminAction>>;
}
