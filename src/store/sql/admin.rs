//! The admin store in the skeleton: organization summaries, rename and deletion in batches,
//! admin keys, keys' last use, signing secrets, user-attribute deletion and the operators'
//! audit trail.

use async_trait::async_trait;
use uuid::Uuid;

use super::tenants::{ORG_COLUMNS, key_from_row, org_from_row, unique};
use super::{Arg, Dialect, RowOf, SqlDb, SqlStore, execute, fetch_optional};
use crate::scim::ScimError;
use crate::store::admin::{
    AdminAction, AdminStore, ConsoleSession, OrgDeletion, OrgSummary, SigningSecret,
};
use crate::store::{ApiKey, KeyKind, KeyUse, Organization, StoreError, StoreResult};

const ADMIN_KEY_COLUMNS: &str = "id, name, created_at, expires_at, revoked_at, secret_id, \
     last_used_at, last_used_addr, last_used_agent";

const DELETION_COLUMNS: &str = "org_id, slug, requested_at, rows_removed, finished_at";

const ACTION_COLUMNS: &str = "id, at, action, org_slug, target, key_id, key_name, request_id, \
     client_addr, user_agent, detail";

/// A recorded use within this long of the last one is not written (one write a minute).
const KEY_USE_INTERVAL_MS: i64 = 60_000;

/// An organization's data, table by table, in an order its foreign keys allow: each entry
/// is a table and the statement deleting at most `$2` of the organization `$1`'s rows.
/// Memberships go before groups, so deleting a group never cascades to a million rows in
/// one statement; a user's `user_emails` rows cascade with it (a few each).
const ORG_DATA: &[(&str, &str)] = &[
    (
        "group_members",
        "delete from group_members where org_id = $1 and (group_id, user_id) in \
         (select group_id, user_id from group_members where org_id = $1 limit $2)",
    ),
    (
        "groups",
        "delete from groups where org_id = $1 and id in \
         (select id from groups where org_id = $1 limit $2)",
    ),
    (
        "users",
        "delete from users where org_id = $1 and id in \
         (select id from users where org_id = $1 limit $2)",
    ),
    (
        "changes",
        "delete from changes where org_id = $1 and position in \
         (select position from changes where org_id = $1 limit $2)",
    ),
    (
        "rejected_writes",
        "delete from rejected_writes where org_id = $1 and id in \
         (select id from rejected_writes where org_id = $1 limit $2)",
    ),
    (
        "event_streams",
        "delete from event_streams where org_id = $1 and id in \
         (select id from event_streams where org_id = $1 limit $2)",
    ),
    (
        "user_attribute_definitions",
        "delete from user_attribute_definitions where org_id = $1 and key in \
         (select key from user_attribute_definitions where org_id = $1 limit $2)",
    ),
    (
        "api_keys",
        "delete from api_keys where id in (select id from api_keys where org_id = $1 limit $2)",
    ),
    (
        "org_activity",
        "delete from org_activity where (org_id, hour, kind, label) in \
         (select org_id, hour, kind, label from org_activity where org_id = $1 limit $2)",
    ),
    // `$2 > 0`: every statement takes the same two arguments.
    (
        "user_counts",
        "delete from user_counts where org_id = $1 and $2 > 0",
    ),
];

fn summary_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<OrgSummary> {
    Ok(OrgSummary {
        org: org_from_row::<D>(row)?,
        users: D::DB::int(row, "users")?,
        inactive_users: D::DB::int(row, "inactive_users")?,
        groups: D::DB::int(row, "groups")?,
        keys: D::DB::int(row, "keys")?,
        last_change_at: D::DB::opt_int(row, "last_change_at")?,
    })
}

/// An organization with its counts (index-only where the database can).
fn summary_sql(condition: &str) -> String {
    format!(
        "select {ORG_COLUMNS}, \
         coalesce((select n.users from user_counts n where n.org_id = o.id), 0) as users, \
         (select count(*) from users u where u.org_id = o.id and not u.active) \
           as inactive_users, \
         (select count(*) from groups g where g.org_id = o.id) as groups, \
         (select count(*) from api_keys k where k.org_id = o.id and k.revoked_at is null) as keys, \
         (select c.at from changes c where c.org_id = o.id order by c.position desc limit 1) \
           as last_change_at \
         from organizations o {condition} order by o.slug"
    )
}

fn deletion_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<OrgDeletion> {
    Ok(OrgDeletion {
        org_id: D::uuid(row, "org_id")?,
        slug: D::DB::text(row, "slug")?,
        requested_at: D::DB::int(row, "requested_at")?,
        rows_removed: D::DB::int(row, "rows_removed")?,
        finished_at: D::DB::opt_int(row, "finished_at")?,
    })
}

fn secret_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<SigningSecret> {
    Ok(SigningSecret {
        id: D::DB::text(row, "id")?,
        secret: D::DB::opt_text(row, "secret")?,
        created_at: D::DB::int(row, "created_at")?,
        retired_at: D::DB::opt_int(row, "retired_at")?,
    })
}

fn action_from_row<D: Dialect>(row: &RowOf<D>) -> StoreResult<AdminAction> {
    Ok(AdminAction {
        id: D::uuid(row, "id")?,
        at: D::DB::int(row, "at")?,
        action: D::DB::text(row, "action")?,
        org_slug: D::DB::opt_text(row, "org_slug")?,
        target: D::DB::opt_text(row, "target")?,
        key_id: D::opt_uuid(row, "key_id")?,
        key_name: D::DB::opt_text(row, "key_name")?,
        request_id: D::DB::opt_text(row, "request_id")?,
        client_addr: D::DB::opt_text(row, "client_addr")?,
        user_agent: D::DB::opt_text(row, "user_agent")?,
        detail: D::DB::opt_json(row, "detail")?,
    })
}

#[async_trait]
impl<D: Dialect> AdminStore for SqlStore<D> {
    async fn org_summaries(&self) -> StoreResult<Vec<OrgSummary>> {
        let rows = self.read_all(&summary_sql(""), &[]).await?;
        rows.iter().map(summary_from_row::<D>).collect()
    }

    async fn org_summary(&self, slug: &str) -> StoreResult<OrgSummary> {
        let sql = summary_sql("where o.slug = $1");
        let row = self
            .read_optional(&sql, &[Arg::Text(slug)])
            .await?
            .ok_or(StoreError::NotFound)?;
        summary_from_row::<D>(&row)
    }

    async fn rename_org(&self, id: Uuid, slug: &str) -> StoreResult<()> {
        let sql = "update organizations set slug = $2 where id = $1 and deleted_at is null";
        let renamed = self
            .write(sql, &[Arg::Uuid(id), Arg::Text(slug)])
            .await
            .map_err(unique("slug"))?;
        if renamed == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn mark_org_deleted(&self, org: &Organization, at: i64) -> StoreResult<OrgDeletion> {
        let mut tx = self.dialect.writer().begin().await?;
        let mark = "update organizations set deleted_at = $2 where id = $1 and deleted_at is null";
        if execute::<D>(&mut tx, mark, &[Arg::Uuid(org.id), Arg::Int(at)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let deletion = OrgDeletion {
            org_id: org.id,
            slug: org.slug.clone(),
            requested_at: at,
            rows_removed: 0,
            finished_at: None,
        };
        let insert = "insert into org_deletions (org_id, slug, requested_at) values ($1, $2, $3)";
        let args = [Arg::Uuid(org.id), Arg::Text(&org.slug), Arg::Int(at)];
        execute::<D>(&mut tx, insert, &args).await?;
        tx.commit().await?;
        Ok(deletion)
    }

    async fn org_deletions(&self, limit: i64) -> StoreResult<Vec<OrgDeletion>> {
        let sql = format!(
            "select {DELETION_COLUMNS} from org_deletions \
             order by case when finished_at is null then 0 else 1 end, requested_at desc limit $1"
        );
        let rows = self.read_all(&sql, &[Arg::Int(limit)]).await?;
        rows.iter().map(deletion_from_row::<D>).collect()
    }

    async fn delete_org_batch(&self, org_id: Uuid, batch: i64) -> StoreResult<Option<u64>> {
        let mut tx = self.dialect.writer().begin().await?;
        let check = "select 1 as one from organizations where id = $1 and deleted_at is not null";
        if fetch_optional::<D>(&mut tx, check, &[Arg::Uuid(org_id)])
            .await?
            .is_none()
        {
            return Ok(None);
        }
        let mut removed = 0;
        for (_, sql) in ORG_DATA {
            removed = execute::<D>(&mut tx, sql, &[Arg::Uuid(org_id), Arg::Int(batch)]).await?;
            if removed > 0 {
                break;
            }
        }
        let now = crate::store::now_ms();
        if removed == 0 {
            execute::<D>(
                &mut tx,
                "delete from organizations where id = $1",
                &[Arg::Uuid(org_id)],
            )
            .await?;
        }
        let progress = "update org_deletions set rows_removed = rows_removed + $2, \
             finished_at = case when $3 then $4 else finished_at end where org_id = $1";
        let args = [
            Arg::Uuid(org_id),
            Arg::Int(removed as i64),
            Arg::Bool(removed == 0),
            Arg::Int(now),
        ];
        execute::<D>(&mut tx, progress, &args).await?;
        tx.commit().await?;
        Ok(Some(removed))
    }

    async fn create_admin_key(&self, key: &ApiKey) -> StoreResult<()> {
        let sql = "insert into admin_keys (id, name, created_at, expires_at, revoked_at, \
                   secret_id) values ($1, $2, $3, $4, $5, $6)";
        let args = [
            Arg::Uuid(key.id),
            Arg::OptText(key.name.as_deref()),
            Arg::Int(key.created_at),
            Arg::OptInt(key.expires_at),
            Arg::OptInt(key.revoked_at),
            Arg::Text(&key.secret_id),
        ];
        self.write(sql, &args).await?;
        Ok(())
    }

    async fn admin_key(&self, id: Uuid) -> StoreResult<ApiKey> {
        let sql = format!("select {ADMIN_KEY_COLUMNS} from admin_keys where id = $1");
        let row = self
            .read_optional(&sql, &[Arg::Uuid(id)])
            .await?
            .ok_or(StoreError::NotFound)?;
        key_from_row::<D>(&row, Some(KeyKind::Admin))
    }

    async fn admin_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let sql = format!("select {ADMIN_KEY_COLUMNS} from admin_keys order by created_at, id");
        let rows = self.read_all(&sql, &[]).await?;
        rows.iter()
            .map(|row| key_from_row::<D>(row, Some(KeyKind::Admin)))
            .collect()
    }

    async fn revoke_admin_key(&self, id: Uuid, at: i64) -> StoreResult<()> {
        let sql = "update admin_keys set revoked_at = coalesce(revoked_at, $2) where id = $1";
        if self.write(sql, &[Arg::Uuid(id), Arg::Int(at)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn record_key_use(&self, kind: KeyKind, id: Uuid, used: &KeyUse) -> StoreResult<()> {
        let table = match kind {
            KeyKind::Admin => "admin_keys",
            _ => "api_keys",
        };
        let sql = format!(
            "update {table} set last_used_at = $2, last_used_addr = $3, last_used_agent = $4 \
             where id = $1 and (last_used_at is null or last_used_at <= $5)"
        );
        let args = [
            Arg::Uuid(id),
            Arg::Int(used.at),
            Arg::OptText(used.client_addr.as_deref()),
            Arg::OptText(used.user_agent.as_deref()),
            Arg::Int(used.at - KEY_USE_INTERVAL_MS),
        ];
        self.write(&sql, &args).await?;
        Ok(())
    }

    async fn signing_secrets(&self) -> StoreResult<Vec<SigningSecret>> {
        let sql = "select id, secret, created_at, retired_at from signing_secrets \
                   order by created_at, id";
        let rows = self.read_all(sql, &[]).await?;
        rows.iter().map(secret_from_row::<D>).collect()
    }

    async fn add_signing_secret(&self, secret: &SigningSecret) -> StoreResult<()> {
        let sql = "insert into signing_secrets (id, secret, created_at, retired_at) \
                   values ($1, $2, $3, $4)";
        let args = [
            Arg::Text(&secret.id),
            Arg::OptText(secret.secret.as_deref()),
            Arg::Int(secret.created_at),
            Arg::OptInt(secret.retired_at),
        ];
        self.write(sql, &args).await.map_err(unique("id"))?;
        Ok(())
    }

    async fn retire_signing_secret(&self, id: &str, at: i64) -> StoreResult<()> {
        if id == crate::store::admin::INITIAL_SECRET {
            // The initial secret has a row only once retired.
            let sql = "insert into signing_secrets (id, secret, created_at, retired_at) \
                       values ($1, null, 0, $2) on conflict (id) do update \
                       set retired_at = coalesce(signing_secrets.retired_at, $2)";
            self.write(sql, &[Arg::Text(id), Arg::Int(at)]).await?;
            return Ok(());
        }
        let sql = "update signing_secrets set retired_at = coalesce(retired_at, $2) where id = $1";
        if self.write(sql, &[Arg::Text(id), Arg::Int(at)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn live_keys_of_secret(&self, secret_id: &str, now: i64) -> StoreResult<i64> {
        let live = "secret_id = $1 and revoked_at is null \
                    and (expires_at is null or expires_at > $2)";
        let sql = format!(
            "select (select count(*) from api_keys k join organizations o on o.id = k.org_id \
              where o.deleted_at is null and {live}) \
             + (select count(*) from admin_keys where {live}) as n"
        );
        let row = self
            .read_optional(&sql, &[Arg::Text(secret_id), Arg::Int(now)])
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(D::DB::int(&row, "n")?)
    }

    async fn delete_user_attribute(&self, org_id: Uuid, key: &str) -> StoreResult<()> {
        let mut tx = self.dialect.writer().begin().await?;
        // The delete takes the definition's row lock first: a write that is adding the key
        // holds that row (`for share`) until it commits, so the check below, a statement
        // that starts once the lock is ours, sees every user such a write made.
        let delete = "delete from user_attribute_definitions where org_id = $1 and key = $2";
        if execute::<D>(&mut tx, delete, &[Arg::Uuid(org_id), Arg::Text(key)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        let in_use = format!(
            "select count(*) as n from users where org_id = $1 and {}",
            D::USER_ATTRIBUTE_PRESENT
        );
        let row = fetch_optional::<D>(&mut tx, &in_use, &[Arg::Uuid(org_id), Arg::Text(key)])
            .await?
            .ok_or(StoreError::NotFound)?;
        let users = D::DB::int(&row, "n")?;
        if users > 0 {
            return Err(StoreError::Rejected(ScimError::conflict(format!(
                "user attribute {key:?} is carried by {users} user(s) of this organization; \
                 remove it from them first"
            ))));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        let sql = "insert into console_sessions (id, admin_key_id, csrf, created_at, expires_at) \
                   values ($1, $2, $3, $4, $5)";
        let args = [
            Arg::Text(&session.id),
            Arg::Uuid(session.admin_key_id),
            Arg::Text(&session.csrf),
            Arg::Int(session.created_at),
            Arg::Int(session.expires_at),
        ];
        self.write(sql, &args).await?;
        Ok(())
    }

    async fn console_session(&self, id: &str, now: i64) -> StoreResult<ConsoleSession> {
        let sql = "select id, admin_key_id, csrf, created_at, expires_at from console_sessions \
                   where id = $1 and expires_at > $2";
        let row = self
            .read_optional(sql, &[Arg::Text(id), Arg::Int(now)])
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(ConsoleSession {
            id: D::DB::text(&row, "id")?,
            admin_key_id: D::uuid(&row, "admin_key_id")?,
            csrf: D::DB::text(&row, "csrf")?,
            created_at: D::DB::int(&row, "created_at")?,
            expires_at: D::DB::int(&row, "expires_at")?,
        })
    }

    async fn delete_console_session(&self, id: &str, now: i64) -> StoreResult<()> {
        let sql = "delete from console_sessions where id = $1 or expires_at <= $2";
        self.write(sql, &[Arg::Text(id), Arg::Int(now)]).await?;
        Ok(())
    }

    async fn record_admin_action(&self, action: &AdminAction) -> StoreResult<()> {
        let sql = format!(
            "insert into admin_actions ({ACTION_COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        let args = [
            Arg::Uuid(action.id),
            Arg::Int(action.at),
            Arg::Text(&action.action),
            Arg::OptText(action.org_slug.as_deref()),
            Arg::OptText(action.target.as_deref()),
            Arg::OptUuid(action.key_id),
            Arg::OptText(action.key_name.as_deref()),
            Arg::OptText(action.request_id.as_deref()),
            Arg::OptText(action.client_addr.as_deref()),
            Arg::OptText(action.user_agent.as_deref()),
            Arg::OptJson(action.detail.as_ref()),
        ];
        self.write(&sql, &args).await?;
        Ok(())
    }

    async fn admin_actions(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> StoreResult<Vec<AdminAction>> {
        // Ids are UUIDv7, ordered by time: `after` is a position in the trail.
        let (condition, args) = match after {
            Some(id) => ("where id > $2", vec![Arg::Int(limit), Arg::Uuid(id)]),
            None => ("", vec![Arg::Int(limit)]),
        };
        let sql =
            format!("select {ACTION_COLUMNS} from admin_actions {condition} order by id limit $1");
        let rows = self.read_all(&sql, &args).await?;
        rows.iter().map(action_from_row::<D>).collect()
    }
}
