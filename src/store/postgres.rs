//! The Postgres dialect: production backend. Its pools, its SQL fragments, native `uuid`
//! ids, the one-statement member add and the shared rate limiter; the rest is the skeleton's.
//!
//! With a statement timeout, the request and limiter pools set Postgres's `statement_timeout`
//! as a connection option, so the server itself cancels a statement still running past it
//! (SQLSTATE 57014) and the connection is free again; migrations and the start-up refold run
//! on a connection of their own without it.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{
    PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult, PgRow,
};
use sqlx::{Arguments, Pool, Postgres, Row};
use uuid::Uuid;

use super::filter_sql;
use super::sql::conns::Conns;
use super::sql::{Dialect, LimiterState, SqlStore, settled};
use super::{StoreOptions, StoreResult, unknown_member};

/// Change-log positions per transaction id: an entry's position is its transaction's id
/// times this, plus its place among the transaction's entries (`CHANGES_VISIBLE` and
/// `CHANGES_HEAD` write the number out; a test keeps them equal).
const POSITIONS_PER_TRANSACTION: i64 = 1024;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Postgres-backed store.
pub type PgStore = SqlStore<PgDialect>;

/// The read of one user by id, as `examples/floor.rs` sends it to Postgres.
pub use super::sql::USER_BY_ID;

/// Postgres pools and SQL.
#[derive(Debug, Clone)]
pub struct PgDialect {
    pool: Conns<Postgres>,
    /// Connections for the rate limiter only, with `synchronous_commit = off`: a limiter
    /// update lost in a crash forgives one request, while waiting for a WAL flush on every
    /// request would cap the whole server at the disk's fsync rate.
    limiter: PgPool,
    /// For the migrations' own connection (no statement timeout).
    migration_options: PgConnectOptions,
}

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
        // Our pool (`sql/conns.rs`): no round trip when a connection is checked out or
        // returned, except a ping for one idle ten seconds or more; a connection that died
        // while in use is found by the statement itself (503, then the pool drops it). The
        // checkout timeout is short enough that an outage answers 503 well inside the
        // request timeout.
        let pool = Conns::own(options, 16, std::time::Duration::from_secs(3));
        // Fails now, not at the first request, when the database cannot be reached.
        drop(pool.acquire().await?);
        let limiter_options =
            with_timeout(PgConnectOptions::from_str(url)?.options([("synchronous_commit", "off")]));
        let limiter = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(3))
            .test_before_acquire(false)
            .connect_lazy_with(limiter_options);
        Ok(SqlStore {
            dialect: PgDialect {
                pool,
                limiter,
                migration_options,
            },
            activity: Default::default(),
            member_queues: Default::default(),
            texts: Default::default(),
        })
    }
}

#[async_trait]
impl Dialect for PgDialect {
    type DB = Postgres;
    const NAME: &'static str = "postgres";
    const FILTER: filter_sql::Dialect = filter_sql::Dialect::Postgres;
    /// `json` and `jsonb` accept only JSON.
    const DOCS_CHECKED: bool = true;
    /// Serialises concurrent read-modify-writes of one row.
    const FOR_UPDATE: &'static str = " for update";
    const FOR_SHARE: &'static str = " for share";
    /// `doc` is `json` (migration 0019): its member is read as `jsonb` for `?`.
    const USER_ATTRIBUTE_PRESENT: &'static str =
        "(doc -> 'urn:omni:params:1.0:UserAttribute')::jsonb ? $2";
    /// A transaction gets its id (its change-log position) when it first locks a row, and
    /// it does so *before* waiting for the lock. Two writers queued behind a third can thus
    /// win the row in the opposite order of their ids, and the later version would be
    /// logged at the lower position. A transaction-scoped advisory lock on the resource,
    /// taken first, needs no transaction id: the queue forms there, and the winner takes its
    /// id only after the previous writer committed, so a resource's positions rise with its
    /// versions. It is evaluated in the scan, below `LockRows`, before the row lock.
    const WRITE_ORDER_LOCK: Option<&'static str> =
        Some(" and pg_advisory_xact_lock($3) is not null");
    /// `doc` is `json` (migration 0019), which has no `=`: an empty array is one of length 0.
    const PROFILE_DEPENDENT_USERS: &'static str = "json_typeof(doc -> 'active') \
         is distinct from 'boolean' \
         or case when json_typeof(doc -> 'emails') = 'array' \
            then json_array_length(doc -> 'emails') = 0 else true end";
    const GREATEST: &'static str = "greatest";
    const LEAST: &'static str = "least";
    /// Room for the entries of one transaction below the next transaction's positions.
    const MAX_ENTRIES_PER_TRANSACTION: usize = POSITIONS_PER_TRANSACTION as usize;
    /// Below the oldest transaction still running, every transaction has ended: nothing can
    /// commit there any more, so a follower that has read up to here never skips an entry.
    const CHANGES_VISIBLE: &'static str = "position < pg_snapshot_xmin(pg_current_snapshot())\
         ::text::bigint * 1024";
    const LOG_IN_WRITE: bool = true;
    const UNLOCKED_UPDATES: bool = true;
    const CHANGES_HEAD: &'static str =
        "pg_snapshot_xmin(pg_current_snapshot())::text::bigint * 1024 - 1";

    /// The writing transaction's id, scaled to leave room for its several entries: no
    /// shared counter, so writes never queue on one row.
    fn change_position(ordinal: usize, _count: usize) -> String {
        format!("pg_current_xact_id()::text::bigint * {POSITIONS_PER_TRANSACTION} + {ordinal}")
    }

    fn change_position_bound(param: usize) -> Option<String> {
        Some(format!(
            "pg_current_xact_id()::text::bigint * {POSITIONS_PER_TRANSACTION} + ${param}"
        ))
    }

    fn change_position_bump(_count: usize) -> Option<String> {
        None
    }

    fn in_ids(column: &str, param: &str) -> String {
        format!("{column} = any({param})")
    }

    /// The group's row is locked (behind its write-order lock, as every change of an existing
    /// resource) by `g`, which every write of the statement waits for (each is gated on it),
    /// so no transaction id is taken before the queue; the row stays locked only until this
    /// statement commits (or, for changes queued behind another, until the transaction that
    /// writes them together commits: `sql/member_queue.rs`), where the locked transaction held
    /// it across four round trips.
    fn member_change_sql(add: bool, log: &str) -> Option<String> {
        let lock = "g as (select id from groups where org_id = $1 and id = $2 \
                    and pg_advisory_xact_lock($3) is not null for update)";
        let written = "written as (update groups set version = version + 1, \
                       modified_at = greatest($5, modified_at) \
                       where org_id = $1 and id = $2 and exists (select 1 from changed) \
                       returning id, org_id, display_name, external_id, doc, created_at, \
                       modified_at, version)";
        // Added in id order, as `add_members` adds them.
        let change = if add {
            "known as (select id from users where org_id = $1 and id = any($4)), \
             stranger as (select min(x::text) as id from unnest($4::uuid[]) x \
                          where x not in (select id from known)), \
             changed as (insert into group_members (org_id, group_id, user_id, created_at) \
                         select $1, $2, id, $5 from known \
                         where exists (select 1 from g) \
                           and (select id from stranger) is null \
                         order by id on conflict do nothing returning user_id)"
        } else {
            "stranger as (select null::text as id), \
             changed as (delete from group_members where org_id = $1 and group_id = $2 \
                         and user_id = any($4) \
                         and exists (select 1 from g) returning user_id)"
        };
        Some(format!(
            "with {lock}, {change}, {written}, logged as ({log}) \
             select exists (select 1 from g) as found, (select id from stranger) as stranger, \
             w.* from (select 1) as one left join written w on true"
        ))
    }

    /// As `Memberships::to_json`: the counts, and at most `MEMBERSHIP_IDS_KEPT` ids.
    fn member_change_memberships(add: bool) -> &'static str {
        if add {
            "jsonb_build_object('added', (select count(*) from changed), 'removed', 0, \
             'addedIds', (select coalesce(jsonb_agg(user_id), '[]') \
                          from (select user_id from changed limit 1000) c), 'removedIds', '[]'::jsonb)"
        } else {
            "jsonb_build_object('added', 0, 'removed', (select count(*) from changed), \
             'addedIds', '[]'::jsonb, 'removedIds', (select coalesce(jsonb_agg(user_id), '[]') \
                          from (select user_id from changed limit 1000) c))"
        }
    }

    fn reader(&self) -> &Conns<Postgres> {
        &self.pool
    }

    fn writer(&self) -> &Conns<Postgres> {
        &self.pool
    }

    fn push_uuid(args: &mut PgArguments, id: Uuid) -> Result<(), BoxDynError> {
        args.add(id)
    }

    fn push_opt_uuid(args: &mut PgArguments, id: Option<Uuid>) -> Result<(), BoxDynError> {
        args.add(id)
    }

    fn push_ids(args: &mut PgArguments, ids: &[Uuid]) -> Result<(), BoxDynError> {
        args.add(ids)
    }

    fn uuid(row: &PgRow, column: &str) -> StoreResult<Uuid> {
        Ok(row.try_get(column)?)
    }

    fn uuid_at(row: &PgRow, index: usize) -> StoreResult<Uuid> {
        Ok(row.try_get_unchecked(index)?)
    }

    fn opt_uuid(row: &PgRow, column: &str) -> StoreResult<Option<Uuid>> {
        Ok(row.try_get(column)?)
    }

    fn rows_affected(result: &PgQueryResult) -> u64 {
        result.rows_affected()
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    async fn add_members(
        conn: &mut PgConnection,
        org_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        // One statement checks the ids and adds the known ones (the group's row lock is held
        // meanwhile, so each round trip here delays the group's next change). An unknown id
        // fails the request, and the transaction is rolled back with it. Added in id order:
        // the trigger that keeps each user's `member_of` locks their rows in that order
        // (migration 0018), so two such statements cannot deadlock on them.
        let result = sqlx::query_as(
            "with known as (select id from users where org_id = $4 and id = any($2)), \
             added as (insert into group_members (org_id, group_id, user_id, created_at) \
                       select $4, $1, id, $3 from known order by id on conflict do nothing \
                       returning user_id) \
             select array(select id from known), array(select user_id from added)",
        )
        .bind(group_id)
        .bind(ids)
        .bind(crate::store::now_ms())
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await;
        let (known, added): (Vec<Uuid>, Vec<Uuid>) = settled::<PgDialect, _>(conn, result).await?;
        if let Some(stranger) = ids.iter().find(|id| !known.contains(id)) {
            return Err(unknown_member(stranger));
        }
        Ok(added)
    }

    async fn migration_pool(&self) -> StoreResult<Pool<Self::DB>> {
        Ok(PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.migration_options.clone())
            .await?)
    }

    fn limiter(&self) -> LimiterState<'_, Postgres> {
        LimiterState::Shared(&self.limiter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_visibility_conditions_scale_positions_as_entries_are_written() {
        let scale = format!("* {POSITIONS_PER_TRANSACTION}");
        assert!(PgDialect::CHANGES_VISIBLE.contains(&scale));
        assert!(PgDialect::CHANGES_HEAD.contains(&scale));
        assert!(PgDialect::change_position(3, 5).contains(&scale));
        let bound = PgDialect::change_position_bound(6).unwrap_or_default();
        assert!(bound.contains(&scale) && bound.ends_with("+ $6"), "{bound}");
    }

    #[test]
    fn a_transaction_of_queued_member_changes_has_room_for_each_entry() {
        assert!(
            super::super::sql::member_queue::MAX_CHANGES_PER_TRANSACTION as i64
                <= POSITIONS_PER_TRANSACTION,
            "every entry of a transaction needs a position of its own"
        );
    }
}
