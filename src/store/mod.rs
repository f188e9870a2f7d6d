//! Storage: narrow traits by concern (health, tenants and keys, users, groups, the rate
//! limiter), implemented once by the shared SQL skeleton in [`sql`] over two dialects,
//! Postgres and SQLite, which hold only their own SQL and type conversions.
//!
//! SCIM semantics (validation, merge, PATCH, rendering) live above these traits. The backend is
//! picked once, by URL scheme, in [`connect`].

/// A user's own columns, as every user statement selects them; [`user_select!`] adds the
/// user's groups.
macro_rules! user_columns {
    () => {
        "id, org_id, user_name, external_id, active, doc, password_hash, created_at, \
         modified_at, version"
    };
}

/// The columns of every read of a user, on both databases: its own and its groups, kept on
/// its row as a JSON array of `[id, name]` by triggers (migration 0018 `user_member_of`), so
/// a user is one row and a page of users one statement. The groups are put in name order in
/// Rust (`sql::member_refs`). A macro so that [`USER_BY_ID`] is one constant text.
macro_rules! user_select {
    () => {
        concat!(user_columns!(), ", users.member_of as groups")
    };
}

pub mod activity;
pub mod admin;
mod changes;
mod error;
pub mod filter_sql;
pub mod fold;
mod list;
mod memberships;
mod postgres;
mod records;
mod sql;
mod sqlite;
mod sqlite_baseline;
mod stored_doc;
mod streams;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use changes::{
    Actor, AuditQuery, ChangeEntry, ChangeRequest, ChangeWrite, MEMBERSHIP_IDS_KEPT, Memberships,
    Operation, RejectedWrite, activation,
};
pub use error::{StoreError, StoreResult, conflict_as, unknown_member};
pub use list::{Cursor, ListQuery, Sort, doc_bytes};
pub use memberships::{Membership, MembershipQuery};
pub use postgres::{PgStore, USER_BY_ID as POSTGRES_USER_BY_ID};
pub use records::{
    ApiKey, CheckFn, GroupRecord, GroupUpdateFn, GroupWrite, KeyKind, KeyUse, Organization, Page,
    UserRecord, UserUpdateFn, UserWrite, Versioned,
};
pub use sql::conns;
pub use sqlite::{SqliteStore, request_pool as sqlite_request_pool};
pub use stored_doc::StoredDoc;
pub use streams::{EventStream, NewStream, SigningKeyRow, StreamKind, StreamProgress, StreamState};

use crate::ratelimit::{RateDecision, RateLimit};
pub use crate::scim::group::{MemberOp, MemberRef};
pub use admin::AdminStore;

/// The tables that hold no single organization's data, or that every request reads before it
/// knows its organization, with why. On a Postgres distributed by organization (Citus, with
/// `org_id` as the distribution column) these are reference tables, copied to every node.
/// Every other table carries `org_id`, and each of its primary keys, unique indexes and
/// foreign keys includes it (`tests/api/schema_keys.rs` checks both databases' schemas).
pub const REFERENCE_TABLES: &[(&str, &str)] = &[
    ("organizations", "the tenants themselves"),
    (
        "api_keys",
        "read by key id on every request, on whichever node takes it; few rows, rarely written",
    ),
    ("settings", "process-wide settings"),
    (
        "signing_secrets",
        "the secrets every API key is signed with",
    ),
    (
        "event_signing_keys",
        "the keys every SET is signed with, published as one JWKS",
    ),
    ("admin_keys", "operators' keys, of no organization"),
    (
        "admin_actions",
        "the operators' audit trail, which outlives a deleted organization",
    ),
    ("console_sessions", "operators' console sessions"),
    (
        "rate_limit_buckets",
        "the rate limiter's state per key (Postgres)",
    ),
    (
        "rate_limits",
        "the previous release's limiter state, kept for rolling upgrades (Postgres)",
    ),
    (
        "change_positions",
        "the change log's position counter (SQLite, one process per file)",
    ),
];

/// A JSON object: a SCIM resource document keyed by attribute name.
pub type Doc = Map<String, Value>;

/// Readiness, migrations and the figures `/metrics` shows.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Which backend this is ("postgres" or "sqlite"), for logs and readiness.
    fn kind(&self) -> &'static str;
    /// Applies the embedded migrations of this backend.
    async fn migrate(&self) -> StoreResult<()>;
    /// Derives the users' filter columns (`active`, the folded copy, `user_emails`) as
    /// `profile` renders users, refolding those that differ when the database was last
    /// served under another profile; the rows refolded. `scimd serve` calls it at start.
    async fn adopt_profile(&self, profile: crate::scim::interop::Profile) -> StoreResult<u64>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether every embedded migration has been applied (readiness: a process must not
    /// serve a schema older than its code).
    async fn migrations_current(&self) -> StoreResult<bool>;

    /// Open and idle connections of the pool, for metrics.
    fn pool_state(&self) -> (u32, u32);
    /// (org slug, users, groups) for every organization, for metrics: index-only counts.
    async fn resource_counts(&self) -> StoreResult<Vec<(String, i64, i64)>>;
}

/// Organizations, their API keys and user-attribute definitions, and server settings.
#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_org(&self, slug: &str) -> StoreResult<Organization>;
    async fn org_by_slug(&self, slug: &str) -> StoreResult<Organization>;
    async fn count_orgs(&self) -> StoreResult<i64>;

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_key(&self, id: Uuid) -> StoreResult<ApiKey>;
    async fn list_api_keys(&self, org_id: Uuid) -> StoreResult<Vec<ApiKey>>;
    /// Marks a key revoked (idempotent); NotFound for an unknown id.
    async fn revoke_api_key(&self, id: Uuid, at: i64) -> StoreResult<()>;

    async fn create_user_attribute(&self, org_id: Uuid, key: &str) -> StoreResult<()>;
    async fn list_user_attributes(&self, org_id: Uuid) -> StoreResult<Vec<String>>;

    async fn setting(&self, name: &str) -> StoreResult<Option<String>>;
    /// Stores `value` unless the setting exists; returns the value in force afterwards.
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String>;
}

/// What every resource table offers, users and groups alike.
#[async_trait]
pub trait ResourceRows<R>: Send + Sync {
    async fn get(&self, org_id: Uuid, id: Uuid) -> StoreResult<R>;
    /// One transaction: reads the row with a write lock, runs `check`, deletes it (a user
    /// leaves its groups; a group's memberships go with it) and appends the change-log entry
    /// naming the memberships that ended.
    async fn delete(
        &self,
        org_id: Uuid,
        id: Uuid,
        check: &CheckFn<'_, R>,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<()>;
    /// Rows of an org matching `query.filter`, translated to SQL (never filtered in memory).
    /// The filter was validated by the caller (`scim::filter::check`); the store translates.
    async fn list(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<Page<R>>;
}

/// Users (RFC 7643 §4.1), each change one transaction.
#[async_trait]
pub trait UserStore: ResourceRows<UserRecord> {
    /// Inserts a user and its change-log entry; `Conflict("userName")` when the folded
    /// userName is taken in the org.
    async fn create_user(
        &self,
        org_id: Uuid,
        user: &UserWrite,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<UserRecord>;
    /// Inserts several users, each with its change-log entry, in one transaction (a batch of
    /// Bulk creates: `resources/bulk.rs`). For each, its new id (its version is 1), or why it
    /// was not created (`Conflict("userName")`, also for a name taken earlier in the batch;
    /// an undefined user attribute), having changed nothing. An error of the whole (the
    /// database's) creates none of them.
    async fn create_users(
        &self,
        org_id: Uuid,
        users: &[(UserWrite, ChangeRequest<'_>)],
    ) -> StoreResult<Vec<StoreResult<Uuid>>>;
    /// One transaction: reads the user with a write lock, applies `update`, writes the result
    /// with a new version and `modified_at`, and appends its change-log entry; when `update`
    /// changes nothing, neither. Concurrent updates of one user serialise here.
    async fn update_user(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &UserUpdateFn<'_>,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<UserRecord>;
}

/// Groups (RFC 7643 §4.2) and their members.
#[async_trait]
pub trait GroupStore: ResourceRows<GroupRecord> {
    /// Inserts a group with its initial members (all must be users of the org, else
    /// `Rejected(invalidValue)` naming the first stranger); `Conflict("displayName")` when taken.
    async fn create_group(
        &self,
        org_id: Uuid,
        group: &GroupWrite,
        members: &[Uuid],
        change: &ChangeRequest<'_>,
    ) -> StoreResult<GroupRecord>;
    /// One transaction: lock the group, apply `update`, apply `members` in order, bump the
    /// version and append the change-log entry (neither when nothing changed). A member that
    /// is not a user of the org rejects the whole change.
    async fn update_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &GroupUpdateFn<'_>,
        members: &[MemberOp],
        change: &ChangeRequest<'_>,
    ) -> StoreResult<GroupRecord>;
    /// A change of members alone (one add or one remove: no other attribute, no `If-Match`)
    /// in one statement where the dialect has one, so the group's row is locked only for
    /// that statement (changes of one group that queue behind it are committed together, one
    /// statement each); `None` leaves the change to [`GroupStore::update_group`]. Same
    /// outcome as `update_group`: the group as written, or `current` when nothing changed.
    async fn change_members(
        &self,
        org_id: Uuid,
        current: &GroupRecord,
        op: &MemberOp,
        change: &ChangeRequest<'_>,
    ) -> StoreResult<Option<GroupRecord>>;
    /// The members of a group (users), in the order they were added: at most `limit`, so a
    /// read of a large group holds a bounded number of them.
    async fn group_members(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<MemberRef>>;
    /// One membership; `NotFound` when the user is not a member of the group.
    async fn membership(
        &self,
        org_id: Uuid,
        group_id: Uuid,
        user_id: Uuid,
    ) -> StoreResult<Membership>;
    /// A page of memberships in (group, member) order, and how many match in all.
    async fn memberships(
        &self,
        org_id: Uuid,
        query: &MembershipQuery,
    ) -> StoreResult<(Vec<Membership>, i64)>;
}

/// The shared state of the rate limiter.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Takes up to `want` tokens (at least one) from `bucket` and says how many it got (GCRA,
    /// the same arithmetic as [`crate::ratelimit::gcra`]; time in nanoseconds). Postgres keeps
    /// the state in the database so several processes share one limit.
    async fn rate_limit(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
    ) -> StoreResult<RateDecision> {
        self.rate_limit_all(bucket, now_ns, limit, want, 1).await
    }
    /// [`RateLimitStore::rate_limit`] granting nothing unless at least `need` tokens fit: a
    /// Bulk request's operations are paid all at once or not at all.
    async fn rate_limit_all(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
        need: u64,
    ) -> StoreResult<RateDecision>;
}

/// The change log (written by the resource stores, in each change's transaction) and the
/// rejected writes: read back for `scimd audit`, pruned by retention.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// An organization's entries in log order, only those no later commit can precede: a
    /// follower that passes the last position it read as `after_position` never skips one.
    async fn changes(&self, org_id: Uuid, query: &AuditQuery) -> StoreResult<Vec<ChangeEntry>>;
    /// Records refused write requests, in one transaction.
    async fn record_rejected(&self, writes: &[RejectedWrite]) -> StoreResult<()>;
    /// An organization's rejected writes, oldest first (`after_position` and `resource_id`
    /// do not apply).
    async fn rejected_writes(
        &self,
        org_id: Uuid,
        query: &AuditQuery,
    ) -> StoreResult<Vec<RejectedWrite>>;
    /// Deletes at most `batch` change-log entries and at most `batch` rejected writes older
    /// than `before_ms`, and at most `batch` hourly counts older than the console shows,
    /// each in a statement of its own; how many rows went.
    async fn prune_audit(&self, before_ms: i64, batch: i64) -> StoreResult<u64>;
    /// The console's hourly counts not yet written: the request path counts into it.
    fn activity(&self) -> &activity::Activity;
    /// Adds the counts not yet written to the database (they are kept for the next try when
    /// that fails); how many rows were written.
    async fn flush_activity(&self) -> StoreResult<usize>;
    /// The hourly counts from `since_hour` (hours since the Unix epoch) on, of `org_id` or of
    /// every organization, including those not yet written.
    async fn activity_since(
        &self,
        org_id: Option<Uuid>,
        since_hour: i64,
    ) -> StoreResult<Vec<activity::ActivityCount>>;
}

/// SCIM event streams (RFC 9967) and the keys that sign their events.
#[async_trait]
pub trait StreamStore: Send + Sync {
    /// Creates a stream starting at the head of the organization's change log.
    async fn create_stream(&self, org_id: Uuid, stream: &NewStream) -> StoreResult<EventStream>;
    async fn streams(&self, org_id: Uuid) -> StoreResult<Vec<EventStream>>;
    /// A stream by id alone (poll requests, the command line).
    async fn stream(&self, id: Uuid) -> StoreResult<EventStream>;
    async fn delete_stream(&self, id: Uuid) -> StoreResult<()>;
    /// Takes or renews, for `owner` until `until`, the lease of every push stream that is not
    /// disabled and whose lease is free, expired or already `owner`'s; returns those streams.
    async fn lease_push_streams(
        &self,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> StoreResult<Vec<EventStream>>;
    /// Records acknowledged delivery (the stream becomes active again), only while `owner`
    /// holds the lease when one is given: `false` when it does not.
    async fn advance_stream(
        &self,
        id: Uuid,
        owner: Option<Uuid>,
        progress: &StreamProgress,
    ) -> StoreResult<bool>;
    /// Marks a push stream failing since `since` with `error`, while `owner` holds its lease.
    async fn stream_failing(
        &self,
        id: Uuid,
        owner: Uuid,
        since: i64,
        error: &str,
    ) -> StoreResult<()>;
    /// Disables every stream that has acknowledged nothing since `before`; their ids.
    async fn disable_silent_streams(&self, before: i64) -> StoreResult<Vec<Uuid>>;
    /// Entries of the organization after `position`, not yet acknowledged by any stream:
    /// how far a stream lags, counted up to `cap` (a stream days behind must not cost a scan
    /// of its whole backlog at every look).
    async fn entries_after(&self, org_id: Uuid, position: i64, cap: i64) -> StoreResult<i64>;

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>>;
    /// Adds a key and retires every other (they stay published for a while).
    async fn rotate_signing_key(&self, key: &SigningKeyRow) -> StoreResult<()>;
}

/// Everything scimd stores: one backend implements every concern.
pub trait Store:
    HealthStore
    + TenantStore
    + UserStore
    + GroupStore
    + AuditStore
    + StreamStore
    + RateLimitStore
    + AdminStore
{
    /// The rows every resource table offers, of users.
    fn users(&self) -> &dyn ResourceRows<UserRecord>;
    /// The rows every resource table offers, of groups.
    fn groups(&self) -> &dyn ResourceRows<GroupRecord>;
}

impl<T> Store for T
where
    T: HealthStore
        + TenantStore
        + UserStore
        + GroupStore
        + AuditStore
        + StreamStore
        + RateLimitStore
        + AdminStore,
{
    fn users(&self) -> &dyn ResourceRows<UserRecord> {
        self
    }
    fn groups(&self) -> &dyn ResourceRows<GroupRecord> {
        self
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How a store's request pools are set up. The default (no statement timeout) is for the
/// command line; `scimd serve` sets a timeout below the request timeout. Migrations and
/// background work never run under it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// Longest one statement of a request may run before the database stops it.
    pub statement_timeout: Option<std::time::Duration>,
}

/// Opens the store named by `url`: `postgres://`/`postgresql://` → Postgres; `sqlite:` → SQLite.
/// Migrations are applied before the store is returned.
/// The migrations (SQL, then the Rust refold of older rows, see [`fold`]) run on a connection
/// of their own, without the statement timeout.
pub async fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> =
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(PgStore::connect(url, options).await?)
        } else if url.starts_with("sqlite:") {
            Arc::new(SqliteStore::connect(url, options).await?)
        } else {
            anyhow::bail!(
                "unsupported database URL scheme in {}: use postgres://… or sqlite://…",
                redact_url(url)
            );
        };
    store.migrate().await?;
    Ok(store)
}

/// The URL with any password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_hides_only_the_password() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("sqlite://scimd.db", "sqlite://scimd.db"),
            ("nonsense", "nonsense"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url(input), want, "{input}");
        }
    }
}
