//! Storage: one narrow, resource-shaped trait with a Postgres and a SQLite implementation.
//!
//! SCIM semantics (validation, merge, PATCH, rendering) live above this trait; each backend file
//! holds only its own SQL. The backend is picked once, by URL scheme, in [`connect`].

pub mod filter_sql;
pub mod fold;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ratelimit::{RateDecision, RateLimit};
use crate::scim::ScimError;
use crate::scim::filter::Filter;
pub use crate::scim::group::{MemberOp, MemberRef};
use crate::scim::path::AttrPath;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// A JSON object: a SCIM resource document keyed by attribute name.
pub type Doc = Map<String, Value>;

/// Errors with meaning at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the payload names the attribute.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// The caller's read-modify-write function refused the change; nothing was written.
    #[error(transparent)]
    Rejected(#[from] ScimError),
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The database could not be reached or is going away: worth a 503 and a retry, not a
    /// 500. Besides socket errors and an exhausted pool, that is a connection the server
    /// ended (SQLSTATE class 57, e.g. `57P01` on shutdown) or a connection exception
    /// (class 08): a pooled connection finds out at its next statement.
    ///
    /// A statement stopped by the statement timeout ([`StoreError::is_statement_timeout`]) is
    /// one too: the query may well succeed once the database is less busy, and the client is
    /// told when to retry.
    pub fn is_unavailable(&self) -> bool {
        let unreachable = match self {
            StoreError::Backend(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => true,
            StoreError::Backend(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|code| code.starts_with("57") || code.starts_with("08")),
            _ => false,
        };
        unreachable || self.is_statement_timeout()
    }

    /// The database stopped a statement that ran past [`StoreOptions::statement_timeout`]:
    /// Postgres's `query_canceled` (SQLSTATE 57014) or SQLite's `SQLITE_INTERRUPT` (9), which
    /// the SQLite store's progress handler causes at the deadline.
    pub fn is_statement_timeout(&self) -> bool {
        match self {
            StoreError::Backend(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|code| code == "57014" || code == "9")
            }
            _ => false,
        }
    }
}

/// An organization (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Uuid,
    pub slug: String,
    pub created_at: i64,
}

/// What an API key may do: organization keys reach SCIM, personal access tokens do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Organization,
    Personal,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Organization => "organization",
            KeyKind::Personal => "personal",
        }
    }

    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "organization" => Some(KeyKind::Organization),
            "personal" => Some(KeyKind::Personal),
            _ => None,
        }
    }
}

/// The stored side of an API key (the JWT itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: Option<String>,
    pub kind: KeyKind,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A stored user: its SCIM document plus the server-managed columns.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub org_id: Uuid,
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    /// Client-settable attributes (core, and extensions under their URN), without id/meta/groups/password.
    pub doc: Doc,
    pub password_hash: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub modified_at: i64,
    pub version: i64,
    /// The groups the user belongs to, ordered by name, when the backend read them in the
    /// same statement as the user (Postgres); `None`: ask [`Store::groups_of_users`].
    pub groups: Option<Vec<MemberRef>>,
}

/// The client-controlled part of a user, as computed by the SCIM layer for a create or update,
/// with every value the store derives from it. Build it with [`UserWrite::from_doc`], the one
/// place those values are computed.
#[derive(Debug, Clone, PartialEq)]
pub struct UserWrite {
    pub user_name: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub doc: Doc,
    pub password_hash: Option<String>,
    /// `userName` folded, for the case-insensitive uniqueness index (RFC 7643 §4.1.1).
    pub user_name_folded: String,
    /// The folded `emails[].value`s, for the `user_emails` lookup table.
    pub emails_folded: Vec<String>,
    /// The document with its caseExact=false strings folded, for filters and sorting.
    pub doc_folded: Doc,
}

impl UserWrite {
    /// The columns the store keeps, derived from the document (which stays the truth):
    /// `userName`, `externalId`, `active` (true unless false), and their folded copies.
    pub fn from_doc(doc: Doc, password_hash: Option<String>) -> UserWrite {
        let user_name = doc
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        UserWrite {
            user_name_folded: fold::fold(&user_name),
            emails_folded: folded_emails(&doc),
            doc_folded: fold::fold_doc(&crate::scim::schema::USER_RESOURCE, &doc),
            user_name,
            external_id: doc
                .get("externalId")
                .and_then(Value::as_str)
                .map(str::to_string),
            active: doc.get("active").and_then(Value::as_bool).unwrap_or(true),
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
            && self.doc == current.doc
            && self.password_hash == current.password_hash
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
    pub doc_folded: Doc,
}

impl GroupWrite {
    /// The columns the store keeps, derived from the document; `displayName` is required
    /// (RFC 7643 §4.2).
    pub fn from_doc(doc: Doc) -> Result<GroupWrite, ScimError> {
        let display_name = crate::scim::group::display_name(&doc)?;
        Ok(GroupWrite {
            display_name_folded: fold::fold(&display_name),
            doc_folded: fold::fold_doc(&crate::scim::schema::GROUP_RESOURCE, &doc),
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

/// A check run on the current group before it is deleted, e.g. `If-Match`.
pub type GroupCheckFn<'a> = dyn Fn(&GroupRecord) -> Result<(), ScimError> + Send + Sync + 'a;

/// One page of groups plus the number matching the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    pub groups: Vec<GroupRecord>,
    pub total: i64,
    /// The byte budget stopped the page before `count` rows: more rows follow.
    pub truncated: bool,
}

/// Sort order of a list (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub path: AttrPath,
    pub descending: bool,
}

/// A keyset position: the (created_at, id) of the last row of a page, which the next page
/// starts after (RFC 9865 cursors). Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: Uuid,
}

impl Cursor {
    /// The opaque text form given to clients as `nextCursor`.
    pub fn encode(&self) -> String {
        format!("{:x}.{}", self.created_at, self.id.simple())
    }

    /// Parses a cursor previously returned by [`Cursor::encode`]; None when it is not one.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (created, id) = text.split_once('.')?;
        Some(Cursor {
            created_at: i64::from_str_radix(created, 16).ok()?,
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Which page of a list to read (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// Default order: creation order (created_at, id), stable so pages never skip or repeat.
    pub sort: Option<Sort>,
    /// 1-based index of the first result (ignored when `cursor` is set).
    pub start_index: i64,
    /// Maximum number of results; 0 asks only for `total`.
    pub count: i64,
    /// Keyset pagination: start after this position (default order only).
    pub cursor: Option<Cursor>,
    /// Stop reading rows once their stored documents add up to this many bytes (at least one
    /// row is always returned); the page then says `truncated`. None: no budget.
    pub byte_budget: Option<usize>,
}

impl ListQuery {
    /// `totalResults` when the page itself shows it, so the count statement can be skipped: a
    /// page that is not full is the last one, and the `startIndex - 1` results before it
    /// exist when the page is not empty (or there are none before it). Cursor pages do not
    /// know how many results precede them.
    pub fn total_from_page(&self, rows: usize) -> Option<i64> {
        let rows = rows as i64;
        let last_page = self.count > 0 && rows < self.count;
        let before = (self.start_index - 1).max(0);
        (self.cursor.is_none() && last_page && (rows > 0 || before == 0)).then_some(before + rows)
    }
}

/// One page of users plus the number matching the filter.
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<UserRecord>,
    pub total: i64,
    /// The byte budget stopped the page before `count` rows: more rows follow.
    pub truncated: bool,
}

/// A check run on the current user (read under a lock) before it is deleted, e.g. `If-Match`.
pub type UserCheckFn<'a> = dyn Fn(&UserRecord) -> Result<(), ScimError> + Send + Sync + 'a;

/// The storage operations scimd needs, resource-shaped.
#[async_trait]
pub trait Store: Send + Sync {
    /// Which backend this is ("postgres" or "sqlite"), for logs and readiness.
    fn kind(&self) -> &'static str;
    /// Applies the embedded migrations of this backend.
    async fn migrate(&self) -> StoreResult<()>;
    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether every embedded migration has been applied (readiness: a process must not
    /// serve a schema older than its code).
    async fn migrations_current(&self) -> StoreResult<bool>;

    /// Open and idle connections of the pool, for metrics.
    fn pool_state(&self) -> (u32, u32);
    /// (org slug, users, groups) for every organization, for metrics: index-only counts.
    async fn resource_counts(&self) -> StoreResult<Vec<(String, i64, i64)>>;

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

    /// Inserts a user; `Conflict("userName")` when the folded userName is taken in the org.
    async fn create_user(&self, org_id: Uuid, user: &UserWrite) -> StoreResult<UserRecord>;
    async fn get_user(&self, org_id: Uuid, id: Uuid) -> StoreResult<UserRecord>;
    /// One transaction: reads the user with a write lock, applies `update`, writes the result
    /// with a new version and `modified_at`. Concurrent updates of one user serialise here.
    async fn update_user(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &UserUpdateFn<'_>,
    ) -> StoreResult<UserRecord>;

    /// Users of an org matching `query.filter`, translated to SQL (never filtered in memory).
    /// Filters naming attributes that are not in the User schema are `Rejected(invalidFilter)`.
    async fn list_users(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<UserPage>;

    /// One transaction: reads the user with a write lock, runs `check`, deletes it.
    async fn delete_user(&self, org_id: Uuid, id: Uuid, check: &UserCheckFn<'_>)
    -> StoreResult<()>;

    /// Inserts a group with its initial members (all must be users of the org, else
    /// `Rejected(invalidValue)` naming the first stranger); `Conflict("displayName")` when taken.
    async fn create_group(
        &self,
        org_id: Uuid,
        group: &GroupWrite,
        members: &[Uuid],
    ) -> StoreResult<GroupRecord>;
    async fn get_group(&self, org_id: Uuid, id: Uuid) -> StoreResult<GroupRecord>;
    /// One transaction: lock the group, apply `update`, apply `members` in order, bump the
    /// version. A member that is not a user of the org rejects the whole change.
    async fn update_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &GroupUpdateFn<'_>,
        members: &[MemberOp],
    ) -> StoreResult<GroupRecord>;
    async fn delete_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        check: &GroupCheckFn<'_>,
    ) -> StoreResult<()>;
    /// Groups of an org matching `query.filter`.
    async fn list_groups(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<GroupPage>;
    /// The members of a group (users), in the order they were added.
    async fn group_members(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<Vec<MemberRef>>;
    /// The groups of each of `user_ids`: (user id, group) pairs, ordered by user then group name.
    async fn groups_of_users(
        &self,
        org_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, MemberRef)>>;

    /// Takes up to `want` tokens (at least one) from `bucket` and says how many it got (GCRA,
    /// the same arithmetic as [`crate::ratelimit::gcra`]; time in nanoseconds). Postgres keeps
    /// the state in the database so several processes share one limit.
    async fn rate_limit(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
    ) -> StoreResult<RateDecision>;
}

/// The rejection for a member id that is not a user of the organization.
pub fn unknown_member(id: &Uuid) -> StoreError {
    StoreError::Rejected(ScimError::invalid_value(format!(
        "member {id} is not a user of this organization"
    )))
}

/// The folded `emails[].value`s of a user document, for the `user_emails` lookup table.
pub fn folded_emails(doc: &Doc) -> Vec<String> {
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

/// Folds a group displayName for its case-insensitive uniqueness index.
pub fn fold_display_name(display_name: &str) -> String {
    fold::fold(display_name)
}

/// Folds a userName for the case-insensitive uniqueness index (RFC 7643 §4.1.1: caseExact false).
pub fn fold_user_name(user_name: &str) -> String {
    fold::fold(user_name)
}

/// A cheap estimate of the memory a decoded document holds, for a list's byte budget: the
/// lengths of its keys and strings plus a few bytes per value. It walks the document once
/// (no allocation), which costs far less than decoding it did.
pub fn doc_bytes(doc: &Doc) -> usize {
    fn value_bytes(value: &Value) -> usize {
        8 + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
    }
    doc.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

/// Collects the rows of a list page from `rows` until `query.count` of them or, with a byte
/// budget, until their documents add up to the budget (at least one row is always taken).
/// Returns the page and whether the budget stopped it while more rows followed.
async fn take_page<R, T>(
    mut rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    query: &ListQuery,
    decode: impl Fn(&R) -> StoreResult<T>,
    bytes: impl Fn(&T) -> usize,
) -> StoreResult<(Vec<T>, bool)> {
    use futures_util::TryStreamExt;
    let mut page = Vec::new();
    let mut read = 0usize;
    while let Some(row) = rows.try_next().await? {
        let item = decode(&row)?;
        read = read.saturating_add(bytes(&item));
        page.push(item);
        if query.byte_budget.is_some_and(|budget| read >= budget) {
            // Over budget: the page ends here, and it is short only if another row follows.
            let more = page.len() < query.count.max(0) as usize && rows.try_next().await?.is_some();
            return Ok((page, more));
        }
    }
    Ok((page, false))
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
    fn a_page_that_is_not_full_gives_the_total_without_counting() {
        let page = |start_index, count, cursor: bool| ListQuery {
            filter: None,
            sort: None,
            start_index,
            count,
            cursor: cursor.then_some(Cursor {
                created_at: 1,
                id: Uuid::nil(),
            }),
            byte_budget: None,
        };
        let cases = [
            // (startIndex, count, cursor, rows on the page, total known from the page)
            (1, 100, false, 0, Some(0)),
            (1, 100, false, 1, Some(1)),
            (1, 100, false, 99, Some(99)),
            (1, 100, false, 100, None), // full page: more may follow
            (51, 100, false, 7, Some(57)),
            (51, 100, false, 0, None), // past the end: how far past is unknown
            (0, 10, false, 3, Some(3)), // startIndex < 1 is read as 1
            (1, 0, false, 0, None),    // count=0 asks only for the total
            (1, 100, true, 5, None),   // a cursor page does not know what precedes it
        ];
        for (start_index, count, cursor, rows, want) in cases {
            assert_eq!(
                page(start_index, count, cursor).total_from_page(rows),
                want,
                "startIndex={start_index} count={count} cursor={cursor} rows={rows}"
            );
        }
    }

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

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            created_at: 1_733_267_594_109,
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "x", "zz.1", "1.not-a-uuid", "1"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn doc_bytes_grows_with_the_strings_a_document_holds() {
        let doc = |value: Value| match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let empty = doc_bytes(&Doc::new());
        let small = doc_bytes(&doc(serde_json::json!({"userName": "ann"})));
        let emails: Vec<Value> = (0..1000)
            .map(|i| serde_json::json!({"value": format!("user{i}@example.com"), "type": "work"}))
            .collect();
        let big = doc_bytes(&doc(
            serde_json::json!({"userName": "ann", "emails": emails}),
        ));
        assert_eq!(empty, 0);
        assert_eq!(small, "userName".len() + 8 + "ann".len());
        // At least the text the document holds, and not wildly more.
        let text: usize = (0..1000)
            .map(|i| format!("user{i}@example.com").len() + "valuetypework".len())
            .sum();
        assert!(big >= text && big < text * 3, "{big} vs {text}");
    }

    #[test]
    fn fold_user_name_lowercases_unicode() {
        assert_eq!(
            fold_user_name("Blob.Ross@BlobsRUs.CO"),
            "blob.ross@blobsrus.co"
        );
        assert_eq!(fold_user_name("ÄNNE@x.de"), "änne@x.de");
    }
}
