//! The shared SQL skeleton: every store operation written once, for any [`Dialect`].
//!
//! A change to a resource has one shape here, for both databases: begin on the writer, read
//! the row (under `for update` where the dialect has it), run the caller's pure closure, skip
//! the write when nothing changed, write, commit. Row mapping, argument binding and the
//! mapping of unique violations are written once too. A dialect (`postgres.rs`, `sqlite.rs`)
//! supplies its pools, the SQL fragments that differ, how ids are represented, and the few
//! operations whose SQL differs entirely (adding members, the rate limiter, migrations).
//!
//! Why a dialect trait over sqlx's generic API and not a macro: the code stays ordinary,
//! type-checked Rust that reads top to bottom; sqlx's higher-ranked bounds are stated once,
//! in [`db`], instead of on every function.

mod activity;
mod admin;
mod changes;
pub mod conns;
mod db;
mod doc_text;
mod groups;
pub(super) mod member_queue;
mod ratelimit;
mod rows;
mod streams;
mod tenants;

mod users;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::{Arguments, Database, Pool};

use conns::Conns;
use uuid::Uuid;

pub use db::{Arg, OwnedArg, SqlDb, is_stale_plan};
pub use ratelimit::LimiterState;
pub use users::USER_BY_ID;

use super::filter_sql::{self, SqlValue, Table, list_sql};
use super::list::take_page;
use super::{Doc, ListQuery, MemberRef, StoreError, StoreResult};

/// A connection of the dialect's database (inside a transaction: `&mut *tx`).
pub type Conn<D> = <<D as Dialect>::DB as Database>::Connection;
/// A row of the dialect's database.
pub type RowOf<D> = <<D as Dialect>::DB as Database>::Row;
/// Statement arguments of the dialect's database.
pub type ArgsOf<'q, D> = <<D as Dialect>::DB as Database>::Arguments<'q>;

/// What differs between the two databases; everything else is in this module.
#[async_trait]
pub trait Dialect: Send + Sync + Sized + 'static {
    type DB: SqlDb;
    /// "postgres" or "sqlite".
    const NAME: &'static str;
    /// How `filter_sql` writes this dialect's filters.
    const FILTER: filter_sql::Dialect;
    /// Whether the database checks that a document is JSON as it stores it (Postgres's `json`
    /// and `jsonb` columns do; SQLite's text does not), so that reading it back need not.
    const DOCS_CHECKED: bool;
    /// Appended to a read that a write will follow in the same transaction.
    const FOR_UPDATE: &'static str;
    /// Appended to a read whose rows must not be deleted until the transaction ends.
    const FOR_SHARE: &'static str;
    /// A condition on `users` that the user carries the user-attribute key bound at `$2`.
    const USER_ATTRIBUTE_PRESENT: &'static str;
    /// A condition added to that read, taking a lock on the resource (its key bound at `$3`)
    /// *before* the row lock, where the dialect needs one to keep a resource's change-log
    /// entries in commit order (see Postgres' implementation).
    const WRITE_ORDER_LOCK: Option<&'static str>;
    /// A condition on `users`: the user's derived columns differ between the two profiles
    /// (no boolean `active` stored, or no stored emails, so the fallback email may apply).
    const PROFILE_DEPENDENT_USERS: &'static str;
    /// The larger of two values (`greatest` / `max`).
    const GREATEST: &'static str;
    /// The smaller of two values (`least` / `min`).
    const LEAST: &'static str;
    /// The most change-log entries one transaction may write (a batch of Bulk creates is
    /// one transaction: `resources/bulk.rs`).
    const MAX_ENTRIES_PER_TRANSACTION: usize;
    /// The condition on `position` that a reader may see an entry: no entry can commit
    /// later with a lower position than any entry it admits.
    const CHANGES_VISIBLE: &'static str;
    /// Whether an entry's insert can ride in the statement of the write it records (a
    /// data-modifying `with`), instead of a statement of its own.
    const LOG_IN_WRITE: bool;
    /// Whether a user's update may be written without holding its row across round trips:
    /// read, compute, then one conditional statement (`… and version = $read`) that writes
    /// the row and its entry, retried from a fresh read when another writer won (see
    /// `users::update_user_unlocked`). Where the writer connection already serialises every
    /// transaction (SQLite), the locked transaction costs nothing extra and is kept.
    const UNLOCKED_UPDATES: bool;
    /// The head of the change log: every entry a reader may see is at or below it, every
    /// later one above (a new event stream starts here).
    const CHANGES_HEAD: &'static str;

    /// The position of the `ordinal`th (from 0) of the `count` change-log entries one
    /// statement inserts, the only entries of its transaction (see the migrations of
    /// `changes`).
    fn change_position(ordinal: usize, count: usize) -> String;
    /// A statement run before inserting `count` entries to make their positions new, if any.
    fn change_position_bump(count: usize) -> Option<String>;
    /// A condition that `column` is one of the ids bound at `param` (an [`Arg::Ids`]).
    fn in_ids(column: &str, param: &str) -> String;
    /// One statement that adds (`add`) or removes the users bound as `$4` to or from the
    /// group `$2` of organization `$1`, bumps its version and appends `log` (an insert
    /// reading the written group as `written`) when that changed a membership: the group's
    /// row is locked only for that statement (its write-order key at `$3`, the time at `$5`).
    /// It answers one row: `found` (the group exists), `stranger` (an id to add that is not a
    /// user of the organization: then nothing was written), and the group's columns, null
    /// when nothing changed. `None` where the dialect runs member changes in its locked
    /// transaction instead.
    fn member_change_sql(_add: bool, _log: &str) -> Option<String> {
        None
    }
    /// The position of a statement's one entry whose place among its transaction's entries
    /// is bound at `$param` (a group's member changes run together in one transaction:
    /// `member_queue.rs`); `None` where member changes have no statement of their own.
    fn change_position_bound(_param: usize) -> Option<String> {
        None
    }
    /// In that statement's entry: its memberships as the entry keeps them (the version is
    /// the written group's).
    fn member_change_memberships(_add: bool) -> &'static str {
        "null"
    }
    fn reader(&self) -> &Conns<Self::DB>;
    /// The pool writes use (on SQLite a single connection, so writers queue in-process).
    fn writer(&self) -> &Conns<Self::DB>;
    fn push_uuid<'q>(args: &mut ArgsOf<'q, Self>, id: Uuid) -> Result<(), BoxDynError>;
    fn push_opt_uuid<'q>(args: &mut ArgsOf<'q, Self>, id: Option<Uuid>) -> Result<(), BoxDynError>;
    fn push_ids<'q>(args: &mut ArgsOf<'q, Self>, ids: &'q [Uuid]) -> Result<(), BoxDynError>;
    fn uuid(row: &RowOf<Self>, column: &str) -> StoreResult<Uuid>;
    /// [`Dialect::uuid`] of the column at `index` (see [`SqlDb::text_at`]).
    fn uuid_at(row: &RowOf<Self>, index: usize) -> StoreResult<Uuid>;
    fn opt_uuid(row: &RowOf<Self>, column: &str) -> StoreResult<Option<Uuid>>;
    fn rows_affected(result: &<Self::DB as Database>::QueryResult) -> u64;
    /// The embedded migrations of this dialect.
    fn migrator() -> &'static Migrator;
    /// Applies the migrations not yet applied on `pool` (sqlx's migrator: each in its own
    /// transaction, with its record).
    async fn apply_migrations(pool: &Pool<Self::DB>) -> StoreResult<()> {
        Self::DB::run_migrations(Self::migrator(), pool).await?;
        Ok(())
    }

    /// Adds `ids` to a group inside its transaction; every id must be a user of the org
    /// (else [`super::unknown_member`] for the first stranger). The ids that were not members
    /// yet, now added.
    async fn add_members(
        conn: &mut Conn<Self>,
        org_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>>;
    /// A pool of one connection of its own for the migrations and the refold: the request
    /// pools' statement timeout must not cut them.
    async fn migration_pool(&self) -> StoreResult<Pool<Self::DB>>;
    /// Where this dialect keeps the rate limiter's buckets.
    fn limiter(&self) -> LimiterState<'_, Self::DB>;
}

/// The store: the skeleton over one dialect.
#[derive(Debug)]
pub struct SqlStore<D: Dialect> {
    pub(super) dialect: D,
    /// The console's hourly counts not yet written (`store/activity.rs`).
    pub(super) activity: super::activity::Activity,
    /// Each group's member changes waiting to be written together (`member_queue.rs`).
    pub(super) member_queues: std::sync::Arc<member_queue::MemberQueues<D>>,
    /// Statement texts built at their first use.
    pub(super) texts: StatementTexts,
}

/// Statement texts built once per store, where every request would otherwise format them
/// (for a PATCH, about 3,700 instructions of its 175,000: callgrind, 2026-12-07).
#[derive(Debug, Default)]
pub struct StatementTexts {
    /// The write of the unlocked update of a user, with its change-log entry
    /// (`SqlStore::update_user_unlocked`).
    unlocked_user_update: std::sync::OnceLock<String>,
}

/// Binds `values` as this dialect represents them.
pub fn bind<'q, D: Dialect>(values: &[Arg<'q>]) -> StoreResult<ArgsOf<'q, D>> {
    let mut args = ArgsOf::<'q, D>::default();
    args.reserve(values.len(), values.iter().map(Arg::size_hint).sum());
    for value in values {
        match *value {
            Arg::Uuid(id) => D::push_uuid(&mut args, id),
            Arg::OptUuid(id) => D::push_opt_uuid(&mut args, id),
            Arg::Ids(ids) => D::push_ids(&mut args, ids),
            other => D::DB::push(&mut args, other),
        }
        .map_err(sqlx::Error::Encode)?;
    }
    Ok(args)
}

/// One row or none, on `conn`.
pub async fn fetch_optional<'q, D: Dialect>(
    conn: &mut Conn<D>,
    sql: &'q str,
    values: &[Arg<'q>],
) -> StoreResult<Option<RowOf<D>>> {
    let result = D::DB::fetch_optional(conn, sql, bind::<D>(values)?).await;
    if let Err(e) = &result
        && retry_after::<D>(conn, e).await
    {
        return Ok(D::DB::fetch_optional(conn, sql, bind::<D>(values)?).await?);
    }
    Ok(result?)
}

/// Every row, on `conn`.
pub async fn fetch_all<'q, D: Dialect>(
    conn: &mut Conn<D>,
    sql: &'q str,
    values: &[Arg<'q>],
) -> StoreResult<Vec<RowOf<D>>> {
    let result = D::DB::fetch_all(conn, sql, bind::<D>(values)?).await;
    if let Err(e) = &result
        && retry_after::<D>(conn, e).await
    {
        return Ok(D::DB::fetch_all(conn, sql, bind::<D>(values)?).await?);
    }
    Ok(result?)
}

/// Runs a statement on `conn`; the number of rows it changed.
pub async fn execute<'q, D: Dialect>(
    conn: &mut Conn<D>,
    sql: &'q str,
    values: &[Arg<'q>],
) -> StoreResult<u64> {
    let mut result = D::DB::execute(conn, sql, bind::<D>(values)?).await;
    if let Err(e) = &result
        && retry_after::<D>(conn, e).await
    {
        result = D::DB::execute(conn, sql, bind::<D>(values)?).await;
    }
    Ok(D::rows_affected(&result?))
}

/// Whether a statement that failed with `error` on `conn` is run once more: when its prepared
/// form was stale (`db::is_stale_plan`; the connection has dropped its prepared statements
/// since) and no transaction holds the connection. Inside a transaction the failure stands,
/// as a 503 (`StoreError::is_unavailable`): the client's retry finds the connection prepared
/// afresh.
async fn retry_after<D: Dialect>(conn: &mut Conn<D>, error: &sqlx::Error) -> bool {
    D::DB::forget_stale_statements(conn, error).await && !D::DB::in_transaction(conn)
}

/// `result` of a statement on `conn`, once the connection has dropped its prepared
/// statements if the error says one was stale (for statements the helpers above do not run).
pub(in crate::store) async fn settled<D: Dialect, T>(
    conn: &mut Conn<D>,
    result: Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    if let Err(e) = &result {
        D::DB::forget_stale_statements(conn, e).await;
    }
    result
}

/// The value as an argument (filter values).
fn sql_arg(value: &SqlValue) -> Arg<'_> {
    match value {
        SqlValue::Text(v) => Arg::Text(v),
        SqlValue::Int(v) => Arg::Int(*v),
        SqlValue::Real(v) => Arg::Real(*v),
        SqlValue::Bool(v) => Arg::Bool(*v),
        SqlValue::Uuid(v) => Arg::Uuid(*v),
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Counts `n` committed change-log entries of `operation` for `org_id`: in the metrics,
    /// and in the console's hourly activity.
    fn recorded(&self, org_id: Uuid, operation: super::Operation, n: usize) {
        crate::metrics::changes_recorded(n as u64);
        self.activity.count_n(
            org_id,
            super::now_ms(),
            super::activity::ActivityKind::Change,
            operation.as_str(),
            n as i64,
        );
    }

    /// One row or none, read on the reader pool.
    async fn read_optional(&self, sql: &str, values: &[Arg<'_>]) -> StoreResult<Option<RowOf<D>>> {
        let mut conn = self.dialect.reader().acquire().await?;
        fetch_optional::<D>(&mut conn, sql, values).await
    }

    /// Every row, read on the reader pool.
    async fn read_all(&self, sql: &str, values: &[Arg<'_>]) -> StoreResult<Vec<RowOf<D>>> {
        let mut conn = self.dialect.reader().acquire().await?;
        fetch_all::<D>(&mut conn, sql, values).await
    }

    /// One statement on the writer pool; the number of rows it changed.
    async fn write(&self, sql: &str, values: &[Arg<'_>]) -> StoreResult<u64> {
        let mut conn = self.dialect.writer().acquire().await?;
        execute::<D>(&mut conn, sql, values).await
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
        decode: impl Fn(&RowOf<D>) -> StoreResult<T>,
        bytes: impl Fn(&T) -> usize,
    ) -> StoreResult<(Vec<T>, i64, bool)> {
        let statements = list_sql(D::FILTER, table, table_name, columns, query)?;
        let mut values = vec![Arg::Uuid(org_id)];
        values.extend(statements.values.iter().map(sql_arg));
        let mut conn = self.dialect.reader().acquire().await?;
        if statements.single_row {
            // Read as a GET reads its row: the stream and the page it filled cost a
            // `userName eq` lookup about 6,000 instructions more (callgrind).
            let row = fetch_optional::<D>(&mut conn, &statements.select, &values).await?;
            let total = i64::from(row.is_some());
            let rows = match row {
                Some(row) if query.count > 0 => vec![decode(&row)?],
                _ => Vec::new(),
            };
            return Ok((rows, total, false));
        }
        // The kept total, from the page's first row where the statement carries it.
        let kept_total = std::sync::OnceLock::new();
        let decode = |row: &RowOf<D>| {
            if let Some(column) = statements.total_column
                && kept_total.get().is_none()
            {
                let _ = kept_total.set(D::DB::int(row, column)?);
            }
            decode(row)
        };
        let (rows, truncated) = if query.count == 0 {
            (Vec::new(), false)
        } else {
            // Read again once when the statement was stale (see `retry_after`): Postgres
            // refuses it before the first row, so nothing was taken from the first attempt.
            let mut retried = false;
            loop {
                let stream: BoxStream<'_, Result<RowOf<D>, sqlx::Error>> =
                    D::DB::fetch(&mut conn, &statements.select, bind::<D>(&values)?);
                let page = take_page(stream, query, &decode, &bytes).await;
                if let Err(StoreError::Backend(e)) = &page
                    && retry_after::<D>(&mut conn, e).await
                    && !retried
                {
                    retried = true;
                    continue;
                }
                break page?;
            }
        };
        // A page before a cursor is read backwards from it (the rows nearest the cursor
        // first, so a page the budget cuts keeps those); it is returned in list order.
        let mut rows = rows;
        if query.cursor.is_some_and(|c| c.backward) {
            rows.reverse();
        }
        // A page the budget cut short is not the last one: count.
        if !truncated && let Some(total) = query.total_from_page(rows.len()) {
            return Ok((rows, total, truncated));
        }
        if let Some(&total) = kept_total.get() {
            return Ok((rows, total, truncated));
        }
        let count_values = &values[..statements.count_values + 1];
        let row = fetch_optional::<D>(&mut conn, &statements.count, count_values)
            .await?
            .ok_or(StoreError::NotFound)?;
        let total = first_int::<D>(&row)?;
        Ok((rows, total, truncated))
    }
}

/// The first column of a row as an integer (a `count(*)`), whatever its name.
fn first_int<D: Dialect>(row: &RowOf<D>) -> StoreResult<i64> {
    use sqlx::{Column, Row};
    let name = row
        .columns()
        .first()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    Ok(D::DB::int(row, &name)?)
}

/// A user's groups read as a JSON array of `[id, display]` pairs, in name order
/// (case-insensitive, as `display_name_folded` orders them where SQL sorts).
fn member_refs(pairs: Vec<(uuid::Uuid, String)>) -> Vec<MemberRef> {
    let mut refs: Vec<MemberRef> = pairs
        .into_iter()
        .map(|(id, display)| MemberRef { id, display })
        .collect();
    if refs.len() > 1 {
        refs.sort_by_cached_key(|m| super::fold::fold(&m.display));
    }
    refs
}

/// The document column, or the decode error as a store error.
fn doc<D: Dialect>(row: &RowOf<D>, column: &str) -> StoreResult<Doc> {
    Ok(D::DB::doc(row, column)?)
}
