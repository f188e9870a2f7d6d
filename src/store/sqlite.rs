//! The SQLite store: the zero-setup embedded default. All SQLite SQL lives in this file.
//!
//! Writes go through a pool of exactly one connection, so they queue in-process instead of
//! failing with SQLITE_BUSY when two deferred transactions both try to upgrade to a write lock;
//! reads use a separate pool and, thanks to WAL, never wait for the writer.
//!
//! With a statement timeout, every connection handed out by either pool carries a deadline
//! (the acquire time plus the timeout), checked by SQLite's progress handler every few thousand
//! VM steps: a statement still running then is interrupted (`SQLITE_INTERRUPT`), so a request
//! the server gave up on frees its connection. Migrations run on a connection of their own.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Arguments, Row};
use uuid::Uuid;

use super::filter_sql::{Dialect, GROUPS, SqlValue, Table, USERS, list_sql};
use super::fold::fold_doc;
use super::{
    ApiKey, Doc, GroupCheckFn, GroupPage, GroupRecord, GroupUpdateFn, GroupWrite, KeyKind,
    ListQuery, MemberOp, MemberRef, Organization, Store, StoreError, StoreOptions, StoreResult,
    UserCheckFn, UserPage, UserRecord, UserUpdateFn, UserWrite, doc_bytes, fold_display_name,
    fold_user_name, folded_emails, now_ms, take_page, unknown_member,
};
use crate::ratelimit::MemoryLimiter;
use crate::ratelimit::{RateDecision, RateLimit};
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

/// SQLite-backed [`Store`].
#[derive(Debug)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    /// A single node owns the file, so rate-limit state can stay in memory.
    limiter: MemoryLimiter,
    /// For the migrations' own connection (no statement deadline).
    options: SqliteConnectOptions,
}

/// VM steps between two looks at the deadline: a few microseconds of work, so a statement
/// overruns its deadline by little, and the check (one clock read) costs nothing measurable.
const PROGRESS_STEPS: i32 = 4_000;

/// Rows refolded per transaction at start-up: the writer is held only briefly each time.
const REFOLD_BATCH: i64 = 500;

/// Member ids per statement when adding or removing members: bound as one JSON array, so the
/// parameter limit does not apply; the chunk keeps each statement's work (and the time the
/// writer is held between two checks of the deadline) modest.
const MEMBER_CHUNK: usize = 5_000;

const USER_COLUMNS: &str = "id, org_id, user_name, external_id, active, doc, password_hash, \
                            created_at, modified_at, version";

impl SqliteStore {
    pub async fn connect(url: &str, store_options: &StoreOptions) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the request is acknowledged, even on power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        make_private(options.get_filename())?;
        let timeout = store_options.statement_timeout;
        let writer = with_deadline(SqlitePoolOptions::new().max_connections(1), timeout)
            .connect_with(options.clone())
            .await?;
        let reader = with_deadline(SqlitePoolOptions::new().max_connections(8), timeout)
            .connect_with(options.clone().read_only(false))
            .await?;
        Ok(SqliteStore {
            reader,
            writer,
            limiter: MemoryLimiter::default(),
            options,
        })
    }

    /// Fills `doc_folded` of rows written before it existed (migration 0007), a batch per
    /// transaction, and rewrites their `user_emails` with the same fold. Idempotent: it only
    /// looks at rows whose `doc_folded` is null.
    async fn refold(conn: &SqlitePool) -> StoreResult<u64> {
        let mut done = 0;
        loop {
            let mut tx = conn.begin().await?;
            let rows =
                sqlx::query("select id, org_id, doc from users where doc_folded is null limit $1")
                    .bind(REFOLD_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
            for row in &rows {
                let Json(doc): Json<Doc> = row.try_get("doc")?;
                let id: String = row.try_get("id")?;
                sqlx::query("update users set doc_folded = $2 where id = $1")
                    .bind(&id)
                    .bind(Json(fold_doc(&USER_RESOURCE, &doc)))
                    .execute(&mut *tx)
                    .await?;
                write_emails(&mut tx, &id, &row.try_get::<String, _>("org_id")?, &doc).await?;
            }
            let groups =
                sqlx::query("select id, doc from groups where doc_folded is null limit $1")
                    .bind(REFOLD_BATCH)
                    .fetch_all(&mut *tx)
                    .await?;
            for row in &groups {
                let Json(doc): Json<Doc> = row.try_get("doc")?;
                sqlx::query("update groups set doc_folded = $2 where id = $1")
                    .bind(row.try_get::<String, _>("id")?)
                    .bind(Json(fold_doc(&GROUP_RESOURCE, &doc)))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            done += (rows.len() + groups.len()) as u64;
            if rows.is_empty() && groups.is_empty() {
                return Ok(done);
            }
        }
    }
}

/// Pool options that, with a timeout, give each connection handed out a fresh deadline: the
/// progress handler interrupts any statement still running past it (`SQLITE_INTERRUPT`). A
/// reused connection gets it in `before_acquire`, a new one in `after_connect` (the pool
/// skips `before_acquire` for a connection it has just opened).
fn with_deadline(pool: SqlitePoolOptions, timeout: Option<Duration>) -> SqlitePoolOptions {
    let Some(timeout) = timeout else {
        return pool;
    };
    pool.after_connect(move |conn, _| Box::pin(set_deadline(conn, timeout)))
        .before_acquire(move |conn, _| {
            Box::pin(async move {
                set_deadline(conn, timeout).await?;
                Ok(true)
            })
        })
}

async fn set_deadline(conn: &mut SqliteConnection, timeout: Duration) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + timeout;
    conn.lock_handle()
        .await?
        .set_progress_handler(PROGRESS_STEPS, move || Instant::now() < deadline);
    Ok(())
}

/// The database file (and its `-wal`/`-shm` companions, which SQLite creates with the file's
/// mode) readable by its owner only: it holds the JWT signing secret. A new file is created
/// `0600` before SQLite opens it; an existing one with looser permissions is tightened, with a
/// warning, since anyone who could read it (or a copy) could mint keys for every organization.
#[cfg(unix)]
fn make_private(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.to_string_lossy();
    if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(StoreError::Backend(sqlx::Error::Io(e))),
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = Path::new(&format!("{name}{suffix}")).to_path_buf();
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                mode = format!("{mode:o}"),
                "database file readable by others; making it 0600 (it holds the signing secret)"
            );
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| StoreError::Backend(sqlx::Error::Io(e)))?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_path: &Path) -> StoreResult<()> {
    Ok(())
}

impl SqliteStore {
    /// One page of `table` (decoded, within the byte budget), the total matching, and
    /// whether the budget cut the page short; filtered in SQL.
    #[allow(clippy::too_many_arguments)]
    async fn list<T>(
        &self,
        org_id: Uuid,
        query: &ListQuery,
        table: &Table,
        table_name: &str,
        columns: &str,
        decode: impl Fn(&SqliteRow) -> StoreResult<T>,
        bytes: impl Fn(&T) -> usize,
    ) -> StoreResult<(Vec<T>, i64, bool)> {
        let statements = list_sql(Dialect::Sqlite, table, table_name, columns, query)?;
        let (rows, truncated) = if query.count == 0 {
            (Vec::new(), false)
        } else {
            let args = arguments(org_id, &statements.values)?;
            let stream = sqlx::query_with(&statements.select, args).fetch(&self.reader);
            take_page(stream, query, decode, bytes).await?
        };
        // A page the budget cut short is not the last one: count.
        if !truncated && let Some(total) = query.total_from_page(rows.len()) {
            return Ok((rows, total, truncated));
        }
        let args = arguments(org_id, &statements.values[..statements.count_values])?;
        let total: i64 = sqlx::query_scalar_with(&statements.count, args)
            .fetch_one(&self.reader)
            .await?;
        Ok((rows, total, truncated))
    }
}

/// The organization id (`$1`) and the translated filter values, as statement arguments (ids as
/// their hyphenated text, as SQLite stores them).
fn arguments(org_id: Uuid, values: &[SqlValue]) -> StoreResult<SqliteArguments<'static>> {
    let mut args = SqliteArguments::default();
    args.add(org_id.to_string()).map_err(sqlx::Error::Encode)?;
    for value in values {
        match value {
            SqlValue::Text(v) => args.add(v.clone()),
            SqlValue::Int(v) => args.add(*v),
            SqlValue::Real(v) => args.add(*v),
            SqlValue::Bool(v) => args.add(*v),
            SqlValue::Uuid(v) => args.add(v.to_string()),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn uuid_col(row: &SqliteRow, name: &str) -> StoreResult<Uuid> {
    let text: String = row.try_get(name)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
}

fn user_from_row(row: &SqliteRow) -> StoreResult<UserRecord> {
    let Json(doc): Json<Doc> = row.try_get("doc")?;
    Ok(UserRecord {
        id: uuid_col(row, "id")?,
        org_id: uuid_col(row, "org_id")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        active: row.try_get("active")?,
        doc,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
        version: row.try_get("version")?,
        groups: None,
    })
}

fn key_from_row(row: &SqliteRow) -> StoreResult<ApiKey> {
    let kind: String = row.try_get("kind")?;
    Ok(ApiKey {
        id: uuid_col(row, "id")?,
        org_id: uuid_col(row, "org_id")?,
        name: row.try_get("name")?,
        kind: KeyKind::parse(&kind).unwrap_or(KeyKind::Personal),
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

/// Maps a unique violation to `Conflict(attribute)`; other errors pass through.
fn conflict_as(attribute: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(attribute),
        _ => StoreError::Backend(e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // A connection of its own: the pools' statement deadline must not cut a migration.
        let conn = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone())
            .await?;
        let result = async {
            sqlx::migrate!("migrations/sqlite").run(&conn).await?;
            let refolded = SqliteStore::refold(&conn).await?;
            if refolded > 0 {
                tracing::info!(
                    rows = refolded,
                    "folded older rows for case-insensitive filters"
                );
            }
            StoreResult::Ok(())
        }
        .await;
        conn.close().await;
        result
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        let newest = sqlx::migrate!("migrations/sqlite")
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default();
        let applied: Option<i64> =
            sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
                .fetch_one(&self.reader)
                .await?;
        Ok(applied.unwrap_or_default() >= newest)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.reader).await?;
        Ok(())
    }

    fn pool_state(&self) -> (u32, u32) {
        (self.reader.size(), self.reader.num_idle() as u32)
    }

    async fn resource_counts(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "select o.slug, \
             (select count(*) from users u where u.org_id = o.id) as users, \
             (select count(*) from groups g where g.org_id = o.id) as groups \
             from organizations o order by o.slug",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("slug")?,
                    r.try_get("users")?,
                    r.try_get("groups")?,
                ))
            })
            .collect()
    }

    async fn create_org(&self, slug: &str) -> StoreResult<Organization> {
        let org = Organization {
            id: Uuid::now_v7(),
            slug: slug.to_string(),
            created_at: now_ms(),
        };
        sqlx::query("insert into organizations (id, slug, created_at) values ($1, $2, $3)")
            .bind(org.id.to_string())
            .bind(&org.slug)
            .bind(org.created_at)
            .execute(&self.writer)
            .await
            .map_err(conflict_as("slug"))?;
        Ok(org)
    }

    async fn org_by_slug(&self, slug: &str) -> StoreResult<Organization> {
        let row = sqlx::query("select id, slug, created_at from organizations where slug = $1")
            .bind(slug)
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Organization {
            id: uuid_col(&row, "id")?,
            slug: row.try_get("slug")?,
            created_at: row.try_get("created_at")?,
        })
    }

    async fn count_orgs(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("select count(*) from organizations")
            .fetch_one(&self.reader)
            .await?)
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "insert into api_keys (id, org_id, name, kind, created_at, expires_at, revoked_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id.to_string())
        .bind(key.org_id.to_string())
        .bind(&key.name)
        .bind(key.kind.as_str())
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn api_key(&self, id: Uuid) -> StoreResult<ApiKey> {
        let row = sqlx::query("select * from api_keys where id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from_row(&row)
    }

    async fn list_api_keys(&self, org_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("select * from api_keys where org_id = $1 order by created_at, id")
            .bind(org_id.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: Uuid, at: i64) -> StoreResult<()> {
        let done =
            sqlx::query("update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1")
                .bind(id.to_string())
                .bind(at)
                .execute(&self.writer)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_user_attribute(&self, org_id: Uuid, key: &str) -> StoreResult<()> {
        sqlx::query(
            "insert into user_attribute_definitions (org_id, key, created_at) values ($1, $2, $3)",
        )
        .bind(org_id.to_string())
        .bind(key)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(conflict_as("key"))?;
        Ok(())
    }

    async fn list_user_attributes(&self, org_id: Uuid) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select key from user_attribute_definitions where org_id = $1 order by key",
        )
        .bind(org_id.to_string())
        .fetch_all(&self.reader)
        .await?)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("select value from settings where name = $1")
                .bind(name)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query("insert into settings (name, value) values ($1, $2) on conflict do nothing")
            .bind(name)
            .bind(value)
            .execute(&self.writer)
            .await?;
        self.setting(name).await?.ok_or(StoreError::NotFound)
    }

    async fn create_user(&self, org_id: Uuid, user: &UserWrite) -> StoreResult<UserRecord> {
        let mut tx = self.writer.begin().await?;
        let now = now_ms();
        let row = sqlx::query(&format!(
            "insert into users (id, org_id, user_name, user_name_folded, external_id, active, doc, \
             password_hash, created_at, modified_at, version, doc_folded) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1, $10) returning {USER_COLUMNS}"
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(org_id.to_string())
        .bind(&user.user_name)
        .bind(fold_user_name(&user.user_name))
        .bind(&user.external_id)
        .bind(user.active)
        .bind(Json(&user.doc))
        .bind(&user.password_hash)
        .bind(now)
        .bind(Json(fold_doc(&USER_RESOURCE, &user.doc)))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_as("userName"))?;
        let record = user_from_row(&row)?;
        write_emails(
            &mut tx,
            &record.id.to_string(),
            &org_id.to_string(),
            &record.doc,
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_user(&self, org_id: Uuid, id: Uuid) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "select {USER_COLUMNS} from users where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        user_from_row(&row)
    }

    async fn update_user(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &UserUpdateFn<'_>,
    ) -> StoreResult<UserRecord> {
        // The single writer connection serialises every read-modify-write; reading inside the
        // transaction on that connection means no concurrent update can slip in between.
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "select {USER_COLUMNS} from users where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let current = user_from_row(&row)?;
        let next = update(&current)?;
        if next.same_as(&current) {
            tx.commit().await?;
            return Ok(current);
        }
        let row = sqlx::query(&format!(
            "update users set user_name = $3, user_name_folded = $4, external_id = $5, \
             active = $6, doc = $7, password_hash = $8, modified_at = max($9, modified_at), \
             version = version + 1, doc_folded = $10 where org_id = $1 and id = $2 \
             returning {USER_COLUMNS}"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .bind(&next.user_name)
        .bind(fold_user_name(&next.user_name))
        .bind(&next.external_id)
        .bind(next.active)
        .bind(Json(&next.doc))
        .bind(&next.password_hash)
        .bind(now_ms())
        .bind(Json(fold_doc(&USER_RESOURCE, &next.doc)))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_as("userName"))?;
        let updated = user_from_row(&row)?;
        if folded_emails(&updated.doc) != folded_emails(&current.doc) {
            write_emails(&mut tx, &id.to_string(), &org_id.to_string(), &updated.doc).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    async fn list_users(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<UserPage> {
        let (users, total, truncated) = self
            .list(
                org_id,
                query,
                &USERS,
                "users",
                USER_COLUMNS,
                user_from_row,
                |u| doc_bytes(&u.doc),
            )
            .await?;
        Ok(UserPage {
            users,
            total,
            truncated,
        })
    }

    async fn delete_user(
        &self,
        org_id: Uuid,
        id: Uuid,
        check: &UserCheckFn<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "select {USER_COLUMNS} from users where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        check(&user_from_row(&row)?)?;
        sqlx::query("delete from users where org_id = $1 and id = $2")
            .bind(org_id.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rate_limit(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
    ) -> StoreResult<RateDecision> {
        // One process owns a SQLite file, so the bucket lives in memory.
        Ok(self.limiter.take(bucket, now_ns, limit, want))
    }

    async fn create_group(
        &self,
        org_id: Uuid,
        group: &GroupWrite,
        members: &[Uuid],
    ) -> StoreResult<GroupRecord> {
        let mut tx = self.writer.begin().await?;
        let now = now_ms();
        let row = sqlx::query(&format!(
            "insert into groups (id, org_id, display_name, display_name_folded, external_id, doc, \
             created_at, modified_at, version, doc_folded) \
             values ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8) returning {GROUP_COLUMNS}"
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(org_id.to_string())
        .bind(&group.display_name)
        .bind(fold_display_name(&group.display_name))
        .bind(&group.external_id)
        .bind(Json(&group.doc))
        .bind(now)
        .bind(Json(fold_doc(&GROUP_RESOURCE, &group.doc)))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_as("displayName"))?;
        let record = group_from_row(&row)?;
        apply_member_ops(
            &mut tx,
            org_id,
            record.id,
            &[MemberOp::Add(members.to_vec())],
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_group(&self, org_id: Uuid, id: Uuid) -> StoreResult<GroupRecord> {
        let row = sqlx::query(&format!(
            "select {GROUP_COLUMNS} from groups where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .ok_or(StoreError::NotFound)?;
        group_from_row(&row)
    }

    async fn update_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        update: &GroupUpdateFn<'_>,
        members: &[MemberOp],
    ) -> StoreResult<GroupRecord> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "select {GROUP_COLUMNS} from groups where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        let current = group_from_row(&row)?;
        let next = update(&current)?;
        let members_changed = apply_member_ops(&mut tx, org_id, id, members).await?;
        if !members_changed && next.same_as(&current) {
            tx.commit().await?;
            return Ok(current);
        }
        let row = sqlx::query(&format!(
            "update groups set display_name = $3, display_name_folded = $4, external_id = $5, \
             doc = $6, modified_at = max($7, modified_at), version = version + 1, \
             doc_folded = $8 where org_id = $1 and id = $2 returning {GROUP_COLUMNS}"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .bind(&next.display_name)
        .bind(fold_display_name(&next.display_name))
        .bind(&next.external_id)
        .bind(Json(&next.doc))
        .bind(now_ms())
        .bind(Json(fold_doc(&GROUP_RESOURCE, &next.doc)))
        .fetch_one(&mut *tx)
        .await
        .map_err(conflict_as("displayName"))?;
        let record = group_from_row(&row)?;
        tx.commit().await?;
        Ok(record)
    }

    async fn delete_group(
        &self,
        org_id: Uuid,
        id: Uuid,
        check: &GroupCheckFn<'_>,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        let row = sqlx::query(&format!(
            "select {GROUP_COLUMNS} from groups where org_id = $1 and id = $2"
        ))
        .bind(org_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        check(&group_from_row(&row)?)?;
        sqlx::query("delete from groups where org_id = $1 and id = $2")
            .bind(org_id.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_groups(&self, org_id: Uuid, query: &ListQuery) -> StoreResult<GroupPage> {
        let (groups, total, truncated) = self
            .list(
                org_id,
                query,
                &GROUPS,
                "groups",
                GROUP_COLUMNS,
                group_from_row,
                |g| doc_bytes(&g.doc),
            )
            .await?;
        Ok(GroupPage {
            groups,
            total,
            truncated,
        })
    }

    async fn group_members(&self, org_id: Uuid, group_id: Uuid) -> StoreResult<Vec<MemberRef>> {
        let rows = sqlx::query(
            "select u.id, coalesce(json_extract(u.doc, '$.displayName'), u.user_name) as display \
             from group_members m join users u on u.id = m.user_id \
             where m.group_id = $1 and u.org_id = $2 order by m.created_at, u.id",
        )
        .bind(group_id.to_string())
        .bind(org_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRef {
                    id: uuid_col(r, "id")?,
                    display: r.try_get("display")?,
                })
            })
            .collect()
    }

    async fn groups_of_users(
        &self,
        org_id: Uuid,
        user_ids: &[Uuid],
    ) -> StoreResult<Vec<(Uuid, MemberRef)>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        // json_each over a bound JSON array stands in for Postgres' `= any($1)`.
        let ids: Vec<String> = user_ids.iter().map(Uuid::to_string).collect();
        let rows = sqlx::query(
            "select m.user_id, g.id, g.display_name from group_members m \
             join groups g on g.id = m.group_id \
             where m.user_id in (select value from json_each($1)) and g.org_id = $2 \
             order by m.user_id, g.display_name_folded",
        )
        .bind(Json(&ids))
        .bind(org_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    uuid_col(r, "user_id")?,
                    MemberRef {
                        id: uuid_col(r, "id")?,
                        display: r.try_get("display_name")?,
                    },
                ))
            })
            .collect()
    }
}

const GROUP_COLUMNS: &str =
    "id, org_id, display_name, external_id, doc, created_at, modified_at, version";

fn group_from_row(row: &SqliteRow) -> StoreResult<GroupRecord> {
    let Json(doc): Json<Doc> = row.try_get("doc")?;
    Ok(GroupRecord {
        id: uuid_col(row, "id")?,
        org_id: uuid_col(row, "org_id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        doc,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
        version: row.try_get("version")?,
    })
}

/// Applies membership changes inside the group's transaction. Every user added must belong to
/// the org; otherwise the whole change is rejected (RFC 7644 §3.5.2: all or nothing).
///
/// Ids go to SQLite as one JSON array per chunk (`json_each`), so adding N members costs two
/// statements per chunk (find a stranger, insert the rest), not two per member: the writer is
/// held for one pass over the ids instead of N round trips.
async fn apply_member_ops(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    org_id: Uuid,
    group_id: Uuid,
    ops: &[MemberOp],
) -> StoreResult<bool> {
    let group = group_id.to_string();
    let org = org_id.to_string();
    let mut changed = false;
    let now = now_ms();
    for op in ops {
        match op {
            MemberOp::Add(ids) | MemberOp::Replace(ids) => {
                if matches!(op, MemberOp::Replace(_)) {
                    changed |= sqlx::query("delete from group_members where group_id = $1")
                        .bind(&group)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected()
                        > 0;
                }
                for chunk in ids.chunks(MEMBER_CHUNK) {
                    let chunk_ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
                    let stranger: Option<String> = sqlx::query_scalar(
                        "select j.value from json_each($1) j where not exists \
                         (select 1 from users u where u.org_id = $2 and u.id = j.value) \
                         order by j.key limit 1",
                    )
                    .bind(Json(&chunk_ids))
                    .bind(&org)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some(stranger) = stranger {
                        let id = Uuid::parse_str(&stranger)
                            .map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))?;
                        return Err(unknown_member(&id));
                    }
                    // Every id is a user of the org now. `where true`: SQLite parses an upsert
                    // on INSERT … SELECT only when the SELECT has a WHERE clause.
                    changed |= sqlx::query(
                        "insert into group_members (group_id, user_id, created_at) \
                         select $1, j.value, $2 from json_each($3) j where true \
                         on conflict do nothing",
                    )
                    .bind(&group)
                    .bind(now)
                    .bind(Json(&chunk_ids))
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
                        > 0;
                }
            }
            MemberOp::Remove(ids) => {
                for chunk in ids.chunks(MEMBER_CHUNK) {
                    let chunk_ids: Vec<String> = chunk.iter().map(Uuid::to_string).collect();
                    changed |= sqlx::query(
                        "delete from group_members where group_id = $1 \
                         and user_id in (select value from json_each($2))",
                    )
                    .bind(&group)
                    .bind(Json(&chunk_ids))
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
                        > 0;
                }
            }
            MemberOp::RemoveAll => {
                changed |= sqlx::query("delete from group_members where group_id = $1")
                    .bind(&group)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected()
                    > 0;
            }
        }
    }
    Ok(changed)
}

/// Replaces a user's rows in `user_emails` (the index behind `emails.value eq`).
async fn write_emails(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    user_id: &str,
    org_id: &str,
    doc: &Doc,
) -> StoreResult<()> {
    sqlx::query("delete from user_emails where user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for value in folded_emails(doc) {
        sqlx::query("insert into user_emails (user_id, org_id, value_folded) values ($1, $2, $3)")
            .bind(user_id)
            .bind(org_id)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
