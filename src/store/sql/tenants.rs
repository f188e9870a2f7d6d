//! Organizations, API keys, user-attribute definitions and settings in the skeleton; health
//! and metrics reads; the rate limiter (the dialect's); and the start-up refold.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Arg, Dialect, RowOf, SqlDb, SqlStore, execute, fetch_all, fetch_optional};
use crate::scim::interop::Profile;
use crate::store::fold::FoldedDoc;
use crate::store::{
    ApiKey, HealthStore, KeyKind, KeyUse, Organization, StoreError, StoreResult, TenantStore,
    UserWrite, conflict_as, now_ms,
};

const KEY_COLUMNS: &str = "id, org_id, name, kind, created_at, expires_at, revoked_at, \
     secret_id, last_used_at, last_used_addr, last_used_agent";

/// Rows refolded per transaction at start-up: the writer is held only briefly each time.
const REFOLD_BATCH: i64 = 500;

/// A key of `api_keys` (its `kind` column) or of `admin_keys` (no `kind`: `admin`).
pub(super) fn key_from_row<D: Dialect>(
    row: &RowOf<D>,
    kind: Option<KeyKind>,
) -> StoreResult<ApiKey> {
    let kind = match kind {
        Some(kind) => kind,
        None => KeyKind::parse(&D::DB::text(row, "kind")?).unwrap_or(KeyKind::Personal),
    };
    let last_used = match D::DB::opt_int(row, "last_used_at")? {
        Some(at) => Some(KeyUse {
            at,
            client_addr: D::DB::opt_text(row, "last_used_addr")?,
            user_agent: D::DB::opt_text(row, "last_used_agent")?,
        }),
        None => None,
    };
    Ok(ApiKey {
        id: D::uuid(row, "id")?,
        org_id: match kind {
            KeyKind::Admin => None,
            _ => Some(D::uuid(row, "org_id")?),
        },
        name: D::DB::opt_text(row, "name")?,
        kind,
        created_at: D::DB::int(row, "created_at")?,
        expires_at: D::DB::opt_int(row, "expires_at")?,
        revoked_at: D::DB::opt_int(row, "revoked_at")?,
        secret_id: D::DB::text(row, "secret_id")?,
        last_used,
        org_deleted: false,
    })
}

/// The columns of an organization, as [`org_from_row`] reads them.
pub(super) const ORG_COLUMNS: &str = "id, slug, created_at, deleted_at";

pub(super) fn org_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<Organization> {
    Ok(Organization {
        id: D::uuid(row, "id")?,
        slug: D::DB::text(row, "slug")?,
        created_at: D::DB::int(row, "created_at")?,
        deleted_at: D::DB::opt_int(row, "deleted_at")?,
    })
}

/// The setting naming the profile the users' derived columns were computed under.
const PROFILE_SETTING: &str = "profile";

/// The profile the stored users' derived columns follow (the reference's before it was kept).
async fn stored_profile<D: Dialect>(pool: &sqlx::Pool<D::DB>) -> StoreResult<Profile> {
    let mut conn = pool.acquire().await?;
    let sql = "select value from settings where name = $1";
    let row = fetch_optional::<D>(&mut conn, sql, &[Arg::Text(PROFILE_SETTING)]).await?;
    let name = row.map(|r| D::DB::text(&r, "value")).transpose()?;
    Ok(name
        .as_deref()
        .and_then(Profile::from_name)
        .unwrap_or_default())
}

/// Fills `doc_folded` of rows written before it existed (migration 0007), or marked for it
/// by a migration or a change of profile, a batch per transaction: with it the `active`
/// column and `user_emails` (migration 0004 folded them with the database's `lower()`), all
/// as the stored profile derives them ([`UserWrite::from_doc`]). Idempotent: only rows
/// whose `doc_folded` is null. Runs on `pool`, the migrations' own connection.
async fn refold<D: Dialect>(pool: &sqlx::Pool<D::DB>) -> StoreResult<u64> {
    let profile = stored_profile::<D>(pool).await?;
    // Postgres skips rows another starting process is refolding.
    let skip_locked = if D::FOR_UPDATE.is_empty() {
        ""
    } else {
        " for update skip locked"
    };
    let mut done = 0;
    loop {
        let mut tx = pool.begin().await?;
        let users = format!(
            "select id, org_id, doc from users where doc_folded is null limit $1{skip_locked}"
        );
        let rows = fetch_all::<D>(&mut tx, &users, &[Arg::Int(REFOLD_BATCH)]).await?;
        for row in &rows {
            let (id, org_id) = (D::uuid(row, "id")?, D::uuid(row, "org_id")?);
            let user = UserWrite::from_doc(super::doc::<D>(row, "doc")?, None, profile);
            let update =
                "update users set doc_folded = $2, active = $4 where org_id = $3 and id = $1";
            let args = [
                Arg::Uuid(id),
                Arg::JsonText(user.doc_folded.text()),
                Arg::Uuid(org_id),
                Arg::OptBool(user.active),
            ];
            execute::<D>(&mut tx, update, &args).await?;
            super::users::write_emails::<D>(&mut tx, id, org_id, &user.emails_folded).await?;
        }
        let groups = format!(
            "select id, org_id, doc from groups where doc_folded is null limit $1{skip_locked}"
        );
        let group_rows = fetch_all::<D>(&mut tx, &groups, &[Arg::Int(REFOLD_BATCH)]).await?;
        for row in &group_rows {
            let folded = FoldedDoc::of(
                &crate::scim::schema::GROUP_RESOURCE,
                &super::doc::<D>(row, "doc")?,
                None,
            );
            let update = "update groups set doc_folded = $2 where org_id = $3 and id = $1";
            let args = [
                Arg::Uuid(D::uuid(row, "id")?),
                Arg::JsonText(folded.text()),
                Arg::Uuid(D::uuid(row, "org_id")?),
            ];
            execute::<D>(&mut tx, update, &args).await?;
        }
        tx.commit().await?;
        done += (rows.len() + group_rows.len()) as u64;
        if rows.is_empty() && group_rows.is_empty() {
            return Ok(done);
        }
    }
}

#[async_trait]
impl<D: Dialect> HealthStore for SqlStore<D> {
    fn kind(&self) -> &'static str {
        D::NAME
    }

    /// The SQL migrations, then the refold of rows written before the folded columns existed.
    async fn migrate(&self) -> StoreResult<()> {
        let pool = self.dialect.migration_pool().await?;
        let result = async {
            D::apply_migrations(&pool).await?;
            let refolded = refold::<D>(&pool).await?;
            if refolded > 0 {
                tracing::info!(
                    rows = refolded,
                    "folded older rows for case-insensitive filters"
                );
            }
            StoreResult::Ok(())
        }
        .await;
        pool.close().await;
        result
    }

    /// Marks the users whose derived columns differ between the profiles (no `active`
    /// stored, or no emails: the fallback email) for the refold, records `profile`, and
    /// refolds, when the stored profile is another.
    async fn adopt_profile(&self, profile: Profile) -> StoreResult<u64> {
        let pool = self.dialect.migration_pool().await?;
        let result = async {
            let stored = stored_profile::<D>(&pool).await?;
            if stored == profile {
                return Ok(0);
            }
            // Every replica of a database must run one profile: say loudly that it changed.
            tracing::warn!(
                from = stored.as_str(),
                to = profile.as_str(),
                "SCIMD_PROFILE differs from the one this database was served under: refolding \
                 the users it concerns; restart every other replica with the same profile"
            );
            let mut tx = pool.begin().await?;
            let mark = format!(
                "update users set doc_folded = null where {}",
                D::PROFILE_DEPENDENT_USERS
            );
            execute::<D>(&mut tx, &mark, &[]).await?;
            let record = "insert into settings (name, value) values ($1, $2) \
                          on conflict (name) do update set value = excluded.value";
            let args = [Arg::Text(PROFILE_SETTING), Arg::Text(profile.as_str())];
            execute::<D>(&mut tx, record, &args).await?;
            tx.commit().await?;
            let refolded = refold::<D>(&pool).await?;
            tracing::info!(
                profile = profile.as_str(),
                rows = refolded,
                "derived user columns refolded for the new profile"
            );
            Ok(refolded)
        }
        .await;
        pool.close().await;
        result
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read_all("select 1", &[]).await?;
        Ok(())
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        let newest = D::migrator()
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or_default();
        let sql = "select max(version) as version from _sqlx_migrations where success";
        let applied = match self.read_optional(sql, &[]).await? {
            Some(row) => D::DB::opt_int(&row, "version")?,
            None => None,
        };
        Ok(applied.unwrap_or_default() >= newest)
    }

    fn pool_state(&self) -> (u32, u32) {
        self.dialect.reader().state()
    }

    async fn resource_counts(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        let sql = "select o.slug, \
             (select count(*) from users u where u.org_id = o.id) as users, \
             (select count(*) from groups g where g.org_id = o.id) as groups \
             from organizations o order by o.slug";
        let rows = self.read_all(sql, &[]).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    D::DB::text(r, "slug")?,
                    D::DB::int(r, "users")?,
                    D::DB::int(r, "groups")?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl<D: Dialect> TenantStore for SqlStore<D> {
    async fn create_org(&self, slug: &str) -> StoreResult<Organization> {
        let org = Organization {
            id: Uuid::now_v7(),
            slug: slug.to_string(),
            created_at: now_ms(),
            deleted_at: None,
        };
        let sql = "insert into organizations (id, slug, created_at) values ($1, $2, $3)";
        let args = [
            Arg::Uuid(org.id),
            Arg::Text(&org.slug),
            Arg::Int(org.created_at),
        ];
        self.write(sql, &args).await.map_err(unique("slug"))?;
        Ok(org)
    }

    async fn org_by_slug(&self, slug: &str) -> StoreResult<Organization> {
        let sql = format!("select {ORG_COLUMNS} from organizations where slug = $1");
        let row = self
            .read_optional(&sql, &[Arg::Text(slug)])
            .await?
            .ok_or(StoreError::NotFound)?;
        org_from_row::<D>(&row)
    }

    async fn count_orgs(&self) -> StoreResult<i64> {
        let row = self
            .read_optional("select count(*) as n from organizations", &[])
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(D::DB::int(&row, "n")?)
    }

    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let sql = "insert into api_keys (id, org_id, name, kind, created_at, expires_at, \
                   revoked_at, secret_id) values ($1, $2, $3, $4, $5, $6, $7, $8)";
        let org_id = key.org_id.ok_or(StoreError::NotFound)?;
        let args = [
            Arg::Uuid(key.id),
            Arg::Uuid(org_id),
            Arg::OptText(key.name.as_deref()),
            Arg::Text(key.kind.as_str()),
            Arg::Int(key.created_at),
            Arg::OptInt(key.expires_at),
            Arg::OptInt(key.revoked_at),
            Arg::Text(&key.secret_id),
        ];
        self.write(sql, &args).await?;
        Ok(())
    }

    /// With whether its organization is deleted: authentication refuses both alike.
    async fn api_key(&self, id: Uuid) -> StoreResult<ApiKey> {
        let columns = KEY_COLUMNS.replace(", ", ", k.");
        let sql = format!(
            "select k.{columns}, o.deleted_at from api_keys k \
             join organizations o on o.id = k.org_id where k.id = $1"
        );
        let row = self
            .read_optional(&sql, &[Arg::Uuid(id)])
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut key = key_from_row::<D>(&row, None)?;
        key.org_deleted = D::DB::opt_int(&row, "deleted_at")?.is_some();
        Ok(key)
    }

    async fn list_api_keys(&self, org_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        let sql =
            format!("select {KEY_COLUMNS} from api_keys where org_id = $1 order by created_at, id");
        let rows = self.read_all(&sql, &[Arg::Uuid(org_id)]).await?;
        rows.iter()
            .map(|row| key_from_row::<D>(row, None))
            .collect()
    }

    async fn revoke_api_key(&self, id: Uuid, at: i64) -> StoreResult<()> {
        let sql = "update api_keys set revoked_at = coalesce(revoked_at, $2) where id = $1";
        if self.write(sql, &[Arg::Uuid(id), Arg::Int(at)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn create_user_attribute(&self, org_id: Uuid, key: &str) -> StoreResult<()> {
        let sql =
            "insert into user_attribute_definitions (org_id, key, created_at) values ($1, $2, $3)";
        let args = [Arg::Uuid(org_id), Arg::Text(key), Arg::Int(now_ms())];
        self.write(sql, &args).await.map_err(unique("key"))?;
        Ok(())
    }

    async fn list_user_attributes(&self, org_id: Uuid) -> StoreResult<Vec<String>> {
        let sql = "select key from user_attribute_definitions where org_id = $1 order by key";
        let rows = self.read_all(sql, &[Arg::Uuid(org_id)]).await?;
        rows.iter().map(|r| Ok(D::DB::text(r, "key")?)).collect()
    }

    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        let sql = "select value from settings where name = $1";
        match self.read_optional(sql, &[Arg::Text(name)]).await? {
            Some(row) => Ok(Some(D::DB::text(&row, "value")?)),
            None => Ok(None),
        }
    }

    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<String> {
        let sql = "insert into settings (name, value) values ($1, $2) on conflict do nothing";
        self.write(sql, &[Arg::Text(name), Arg::Text(value)])
            .await?;
        self.setting(name).await?.ok_or(StoreError::NotFound)
    }
}

/// A unique violation among store errors as `Conflict(attribute)`.
pub(super) fn unique(attribute: &'static str) -> impl Fn(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Backend(e) => conflict_as(attribute)(e),
        other => other,
    }
}
