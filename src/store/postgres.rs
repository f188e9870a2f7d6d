//! The Postgres store: production backend. All Postgres SQL lives in this file.
//!
//! With a statement timeout, the request and limiter pools set Postgres's `statement_timeout`
//! as a connection option, so the server itself cancels a statement still running past it
//! (SQLSTATE 57014) and the connection is free again; migrations and the start-up refold run
//! on a connection of their own without it.

use async_trait::async_trait;
use sqlx::Row;
use std::str::FromStr;

use sqlx::Arguments;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use uuid::Uuid;

use super::filter_sql::{Dialect, GROUPS, SqlValue, Table, USERS, list_sql};
use super::fold::fold_doc;
use super::{
    ApiKey, Doc, GroupCheckFn, GroupPage, GroupRecord, GroupUpdateFn, GroupWrite, KeyKind,
    ListQuery, MemberOp, MemberRef, Organization, Store, StoreError, StoreOptions, StoreResult,
    UserCheckFn, UserPage, UserRecord, UserUpdateFn, UserWrite, doc_bytes, fold_display_name,
    fold_user_name, folded_emails, now_ms, take_page, unknown_member,
};
use crate::ratelimit::{RateDecision, RateLimit};
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

/// Rows refolded per transaction at start-up.
const REFOLD_BATCH: i64 = 500;

/// Postgres-backed [`Store`].
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Connections for the rate limiter only, with `synchronous_commit = off`: a limiter
    /// update lost in a crash forgives one request, while waiting for a WAL flush on every
    /// request would cap the whole server at the disk's fsync rate.
    limiter: PgPool,
    /// For the migrations' own connection (no statement timeout).
    migration_options: PgConnectOptions,
}

const USER_COLUMNS: &str = "id, org_id, user_name, external_id, active, doc, password_hash, \
                            created_at, modified_at, version";

/// The user's columns plus its groups (ordered by name) as a JSON array of `[id, name]`, so a
/// read or write answers with one statement instead of two. `m.user_id = users.id` keeps the
/// plan generic (an array parameter made Postgres plan the join on every execution). In a
/// `for update` select only `users` is locked.
const USER_SELECT: &str = "id, org_id, user_name, external_id, active, doc, password_hash, \
     created_at, modified_at, version, \
     (select coalesce(json_agg(json_build_array(g.id, g.display_name) \
                               order by g.display_name_folded), '[]') \
      from group_members m join groups g on g.id = m.group_id \
      where m.user_id = users.id and g.org_id = users.org_id) as groups";

impl PgStore {
    pub async fn connect(url: &str, store_options: &StoreOptions) -> StoreResult<PgStore> {
        let migration_options = PgConnectOptions::from_str(url)?;
        // Whole milliseconds, at least one (0 would mean no timeout at all).
        let timeout = store_options
            .statement_timeout
            .map(|t| t.as_millis().max(1).to_string());
        let with_timeout = |options: PgConnectOptions| match &timeout {
            Some(ms) => options.options([("statement_timeout", ms.as_str())]),
            None => options,
        };
        // No parallel query: for a count over many rows Postgres would start worker processes
        // on every request, which under load costs more CPU than it saves in latency.
        let options = with_timeout(
            PgConnectOptions::from_str(url)?.options([("max_parallel_workers_per_gather", "0")]),
        );
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // Short enough that an outage answers 503 well inside the request timeout.
            .acquire_timeout(std::time::Duration::from_secs(3))
            // No ping on every checkout: it is a round trip per statement, and a connection
            // that died is found by the statement itself (503, then the pool drops it).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let limiter_options =
            with_timeout(PgConnectOptions::from_str(url)?.options([("synchronous_commit", "off")]));
        let limiter = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .test_before_acquire(false)
            .connect_lazy_with(limiter_options);
        Ok(PgStore {
            pool,
            limiter,
            migration_options,
        })
    }

    /// Fills `doc_folded` of rows written before it existed (migration 0007), a batch per
    /// transaction, and rewrites their `user_emails` with the same fold (migration 0004 folded
    /// them with the database's `lower()`). Idempotent: only rows whose `doc_folded` is null.
    async fn refold(conn: &PgPool) -> StoreResult<u64> {
        let mut done = 0;
        loop {
            let mut tx = conn.begin().await?;
            let rows = sqlx::query(
                "select id, org_id, doc from users where doc_folded is null \
                 limit $1 for update skip locked",
            )
            .bind(REFOLD_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut ids = Vec::with_capacity(rows.len());
            let mut folded = Vec::with_capacity(rows.len());
            for row in &rows {
                let Json(doc): Json<Doc> = row.try_get("doc")?;
                let id: Uuid = row.try_get("id")?;
                write_emails(&mut tx, id, row.try_get("org_id")?, &doc).await?;
                ids.push(id);
                folded.push(Json(fold_doc(&USER_RESOURCE, &doc)));
            }
            sqlx::query(
                "update users u set doc_folded = v.folded \
                 from unnest($1::uuid[], $2::jsonb[]) as v(id, folded) where u.id = v.id",
            )
            .bind(&ids)
            .bind(&folded)
            .execute(&mut *tx)
            .await?;
            let groups = sqlx::query(
                "select id, doc from groups where doc_folded is null \
                 limit $1 for update skip locked",
            )
            .bind(REFOLD_BATCH)
            .fetch_all(&mut *tx)
            .await?;
            let mut group_ids = Vec::with_capacity(groups.len());
            let mut group_folded = Vec::with_capacity(groups.len());
            for row in &groups {
                let Json(doc): Json<Doc> = row.try_get("doc")?;
                group_ids.push(row.try_get::<Uuid, _>("id")?);
                group_folded.push(Json(fold_doc(&GROUP_RESOURCE, &doc)));
            }
            sqlx::query(
                "update groups g set doc_folded = v.folded \
                 from unnest($1::uuid[], $2::jsonb[]) as v(id, folded) where g.id = v.id",
            )
            .bind(&group_ids)
            .bind(&group_folded)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            done += (rows.len() + groups.len()) as u64;
            if rows.is_empty() && groups.is_empty() {
                return Ok(done);
            }
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

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
        decode: impl Fn(&PgRow) -> StoreResult<T>,
        bytes: impl Fn(&T) -> usize,
    ) -> StoreResult<(Vec<T>, i64, bool)> {
        let statements = list_sql(Dialect::Postgres, table, table_name, columns, query)?;
        let (rows, truncated) = if query.count == 0 {
            (Vec::new(), false)
        } else {
            let args = arguments(org_id, &statements.values)?;
            let stream = sqlx::query_with(&statements.select, args).fetch(&self.pool);
            take_page(stream, query, decode, bytes).await?
        };
        // A page the budget cut short is not the last one: count.
        if !truncated && let Some(total) = query.total_from_page(rows.len()) {
            return Ok((rows, total, truncated));
        }
        let args = arguments(org_id, &statements.values[..statements.count_values])?;
        let total: i64 = sqlx::query_scalar_with(&statements.count, args)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total, truncated))
    }
}

/// The organization id (`$1`) and the translated filter values, as statement arguments.
fn arguments(org_id: Uuid, values: &[SqlValue]) -> StoreResult<PgArguments> {
    let mut args = PgArguments::default();
    args.add(org_id).map_err(sqlx::Error::Encode)?;
    for value in values {
        match value {
            SqlValue::Text(v) => args.add(v.clone()),
            SqlValue::Int(v) => args.add(*v),
            SqlValue::Real(v) => args.add(*v),
            SqlValue::Bool(v) => args.add(*v),
            SqlValue::Uuid(v) => args.add(*v),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

fn user_from_row(row: &PgRow) -> StoreResult<UserRecord> {
    let Json(doc): Json<Doc> = row.try_get("doc")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        active: row.try_get("active")?,
        doc,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
        version: row.try_get("version")?,
        groups: match row.try_get::<Option<Json<Vec<(Uuid, String)>>>, _>("groups") {
            Ok(groups) => groups.map(|Json(groups)| {
                groups
                    .into_iter()
                    .map(|(id, display)| MemberRef { id, display })
                    .collect()
            }),
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            Err(e) => return Err(e.into()),
        },
    })
}

fn key_from_row(row: &PgRow) -> StoreResult<ApiKey> {
    let kind: String = row.try_get("kind")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
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
impl Store for PgStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> StoreResult<()> {
        // A connection of its own: the request pool's statement timeout must not cut a
        // migration or the refold.
        let conn = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.migration_options.clone())
            .await?;
        let result = async {
            sqlx::migrate!("migrations/postgres").run(&conn).await?;
            let refolded = PgStore::refold(&conn).await?;
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
        let newest = sqlx::migrate!("migrations/postgres")
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default();
        let applied: Option<i64> =
            sqlx::query_scalar("select max(version) from _sqlx_migrations where success")
                .fetch_one(&self.pool)
                .await?;
        Ok(applied.unwrap_or_default() >= newest)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("select 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_state(&self) -> (u32, u32) {
        (self.pool.size(), self.pool.num_idle() as u32)
    }

    async fn resource_counts(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "select o.slug, \
             (select count(*) from users u where u.org_id = o.id) as users, \
             (select count(*) from groups g where g.org_id = o.id) as groups \
             from organizations o order by o.slug",
        )
        .fetch_all(&self.pool)
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
            .bind(org.id)
            .bind(&org.slug)
            .bind(org.created_at)
            .execute(&self.pool)
            .await
            .map_err(conflict_as("slug"))?;
        Ok(org)
    }

    async fn org_by_slug(&self, slug: &str) -> StoreResult<Organization> {
        let row = sqlx::query("select id, slug, created_at from organizations where slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(Organization {
            id: row.try_get("id")?,
            slug: row.try_get("slug")?,
            created_at: row.try_get("created_at")?,
        })
    }

    async fn count_orgs(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("select count(*) from organizations")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "insert into api_keys (id, org_id, name, kind, created_at, expires_at, revoked_at) \
             values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.id)
        .bind(key.org_id)
        .bind(&key.name)
        .bind(key.kind.as_str())
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn api_key(&self, id: Uuid) -> StoreResult<ApiKey> {
        let row = sqlx::query("select * from api_keys where id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from_row(&row)
    }

    async fn list_api_keys(&self, org_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("select * from api_keys where org_id = $1 order by created_at, id")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_api_key(&self, id: Uuid, at: i64) -> StoreResult<()> {
        let done =
            sqlx::query("update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1")
                .bind(id)
                .bind(at)
                .execute(&self.pool)
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
        .bind(org_id)
        .bind(key)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(conflict_as("key"))?;
        Ok(())
    }

    async fn list_user_attributes(&self, org_id: Uuid) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "select key from user_attribute_definitions where org_id = $1 order by key",
        )
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("select value from settings where name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query("insert into settings (name, value) values ($1, $2) on conflict do nothing")
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.setting(name).await?.ok_or(StoreError::NotFound)
    }

    async fn create_user(&self, org_id: Uuid, user: &UserWrite) -> StoreResult<UserRecord> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let row = sqlx::query(&format!(
            "insert into users (id, org_id, user_name, user_name_folded, external_id, active, doc, \
             password_hash, created_at, modified_at, version, doc_folded) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 1, $10) returning {USER_SELECT}"
        ))
        .bind(Uuid::now_v7())
        .bind(org_id)
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
        write_emails(&mut tx, record.id, org_id, &record.doc).await?;
        tx.commit().await?;
        Ok(record)
    }

    async fn get_user(&self, org_id: Uuid, id: Uuid) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "select {USER_SELECT} from users where org_id = $1 and id = $2"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // `for update` serialises concurrent read-modify-writes of one user, so a merge never
        // works from a stale copy and no attribute set by a concurrent PUT is lost.
        let row = sqlx::query(&format!(
            "select {USER_SELECT} from users where org_id = $1 and id = $2 for update"
        ))
        .bind(org_id)
        .bind(id)
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
             active = $6, doc = $7, password_hash = $8, modified_at = greatest($9, modified_at), \
             version = version + 1, doc_folded = $10 where org_id = $1 and id = $2 \
             returning {USER_SELECT}"
        ))
        .bind(org_id)
        .bind(id)
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
            write_emails(&mut tx, id, org_id, &updated.doc).await?;
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
                USER_SELECT,
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
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "select {USER_COLUMNS} from users where org_id = $1 and id = $2 for update"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        check(&user_from_row(&row)?)?;
        sqlx::query("delete from users where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
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
        // One atomic statement per fetch: the row lock on the bucket orders processes. In an
        // UPDATE's SET list `b.tat_ns` is the old value, so `granted` is computed from the
        // same TAT as the new one; the WHERE refuses when not even one token fits.
        let want = want.clamp(1, limit.limit) as i64;
        let interval = limit.interval_ns();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "insert into rate_limit_buckets as b (bucket, tat_ns, granted) \
             values ($1, $2 + $3 * $4, $3) \
             on conflict (bucket) do update set \
               tat_ns = greatest(b.tat_ns, $2) \
                 + least($3, ($5 - (greatest(b.tat_ns, $2) - $2)) / $4) * $4, \
               granted = least($3, ($5 - (greatest(b.tat_ns, $2) - $2)) / $4) \
             where ($5 - (greatest(b.tat_ns, $2) - $2)) / $4 >= 1 \
             returning tat_ns, granted",
        )
        .bind(bucket)
        .bind(now_ns)
        .bind(want)
        .bind(interval)
        .bind(limit.period_ns())
        .fetch_optional(&self.limiter)
        .await?;
        if let Some((new_tat, granted)) = row {
            return Ok(limit.granted(now_ns, new_tat, granted as u64));
        }
        let tat: i64 =
            sqlx::query_scalar("select tat_ns from rate_limit_buckets where bucket = $1")
                .bind(bucket)
                .fetch_one(&self.limiter)
                .await?;
        Ok(limit.refused(now_ns, tat.max(now_ns)))
    }

    async fn create_group(
        &self,
        org_id: Uuid,
        group: &GroupWrite,
        members: &[Uuid],
    ) -> StoreResult<GroupRecord> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        let row = sqlx::query(&format!(
            "insert into groups (id, org_id, display_name, display_name_folded, external_id, doc, \
             created_at, modified_at, version, doc_folded) \
             values ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8) returning {GROUP_COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(org_id)
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
        .bind(org_id)
        .bind(id)
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "select {GROUP_COLUMNS} from groups where org_id = $1 and id = $2 for update"
        ))
        .bind(org_id)
        .bind(id)
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
             doc = $6, modified_at = greatest($7, modified_at), version = version + 1, \
             doc_folded = $8 where org_id = $1 and id = $2 returning {GROUP_COLUMNS}"
        ))
        .bind(org_id)
        .bind(id)
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
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(&format!(
            "select {GROUP_COLUMNS} from groups where org_id = $1 and id = $2 for update"
        ))
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound)?;
        check(&group_from_row(&row)?)?;
        sqlx::query("delete from groups where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
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
            "select u.id, coalesce(u.doc ->> 'displayName', u.user_name) as display \
             from group_members m join users u on u.id = m.user_id \
             where m.group_id = $1 and u.org_id = $2 order by m.created_at, u.id",
        )
        .bind(group_id)
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRef {
                    id: r.try_get("id")?,
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
        // One user (a write's response) gets `= $1`: an array parameter makes Postgres plan
        // the join again on every execution.
        let rows = if let [user_id] = user_ids {
            sqlx::query(
                "select m.user_id, g.id, g.display_name from group_members m \
                 join groups g on g.id = m.group_id \
                 where m.user_id = $1 and g.org_id = $2 order by g.display_name_folded",
            )
            .bind(user_id)
        } else {
            sqlx::query(
                "select m.user_id, g.id, g.display_name from group_members m \
                 join groups g on g.id = m.group_id \
                 where m.user_id = any($1) and g.org_id = $2 \
                 order by m.user_id, g.display_name_folded",
            )
            .bind(user_ids)
        }
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("user_id")?,
                    MemberRef {
                        id: r.try_get("id")?,
                        display: r.try_get("display_name")?,
                    },
                ))
            })
            .collect()
    }
}

const GROUP_COLUMNS: &str =
    "id, org_id, display_name, external_id, doc, created_at, modified_at, version";

fn group_from_row(row: &PgRow) -> StoreResult<GroupRecord> {
    let Json(doc): Json<Doc> = row.try_get("doc")?;
    Ok(GroupRecord {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
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
async fn apply_member_ops(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    org_id: Uuid,
    group_id: Uuid,
    ops: &[MemberOp],
) -> StoreResult<bool> {
    let mut changed = false;
    for op in ops {
        match op {
            MemberOp::Add(ids) | MemberOp::Replace(ids) => {
                if matches!(op, MemberOp::Replace(_)) {
                    changed |= sqlx::query("delete from group_members where group_id = $1")
                        .bind(group_id)
                        .execute(&mut **tx)
                        .await?
                        .rows_affected()
                        > 0;
                }
                if ids.is_empty() {
                    continue;
                }
                // One statement checks the ids and adds the known ones (the group's row lock is
                // held meanwhile, so each round trip here delays the group's next change). An
                // unknown id fails the request, and the transaction is rolled back with it.
                let (known, inserted): (Vec<Uuid>, i64) = sqlx::query_as(
                    "with known as (select id from users where org_id = $4 and id = any($2)), \
                     added as (insert into group_members (group_id, user_id, created_at) \
                               select $1, id, $3 from known on conflict do nothing returning 1) \
                     select array(select id from known), (select count(*) from added)",
                )
                .bind(group_id)
                .bind(ids)
                .bind(now_ms())
                .bind(org_id)
                .fetch_one(&mut **tx)
                .await?;
                if let Some(stranger) = ids.iter().find(|id| !known.contains(id)) {
                    return Err(unknown_member(stranger));
                }
                changed |= inserted > 0;
            }
            MemberOp::Remove(ids) => {
                changed |= sqlx::query(
                    "delete from group_members where group_id = $1 and user_id = any($2)",
                )
                .bind(group_id)
                .bind(ids)
                .execute(&mut **tx)
                .await?
                .rows_affected()
                    > 0;
            }
            MemberOp::RemoveAll => {
                changed |= sqlx::query("delete from group_members where group_id = $1")
                    .bind(group_id)
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
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    user_id: Uuid,
    org_id: Uuid,
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
