//! The SQLite dialect: the zero-setup embedded default. Its pools, its SQL fragments, ids as
//! hyphenated text, the chunked member add and the in-memory rate limiter; the rest is the
//! skeleton's.
//!
//! Writes go through a pool of exactly one connection, so they queue in-process instead of
//! failing with SQLITE_BUSY when two deferred transactions both try to upgrade to a write lock;
//! reads use a separate pool and, thanks to WAL, never wait for the writer.
//!
//! With a statement timeout, every connection handed out by either pool carries a deadline
//! (the checkout time plus the timeout), checked by SQLite's progress handler every few
//! thousand VM steps: a statement still running then is interrupted (`SQLITE_INTERRUPT`), so a
//! request the server gave up on frees its connection. The handler is installed once per
//! connection and reads a [`Deadline`] the pool sets at checkout (`sql/conns.rs`), without a
//! message to the connection's thread; a lease dropped while its statement may still run
//! stops that statement and waits for the connection to be idle before it is handed out
//! again. Migrations run on a connection of their own.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions,
    SqliteQueryResult, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;
use sqlx::{Arguments, Pool, Row, Sqlite};
use uuid::Uuid;

use super::filter_sql;
use super::sql::conns::{Conns, Deadline, Deadlines, PoolSettings};
use super::sql::{Arg, Dialect, LimiterState, SqlStore, fetch_all, fetch_optional};
use super::{StoreError, StoreOptions, StoreResult, now_ms, unknown_member};
use crate::ratelimit::MemoryLimiter;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// SQLite-backed store.
pub type SqliteStore = SqlStore<SqliteDialect>;

/// SQLite pools, the in-memory limiter, and SQL.
#[derive(Debug)]
pub struct SqliteDialect {
    reader: Conns<Sqlite>,
    writer: Conns<Sqlite>,
    /// A single node owns the file, so rate-limit state can stay in memory.
    limiter: MemoryLimiter,
    /// For the migrations' own connection (no statement deadline).
    options: SqliteConnectOptions,
}

/// VM steps between two looks at the deadline: a few microseconds of work, so a statement
/// overruns its deadline by little, and the check (one clock read) costs nothing measurable.
const PROGRESS_STEPS: i32 = 4_000;

/// Rows a connection's thread may read ahead of the task that takes them. At sqlx's default
/// of 50, a page of 100 filled the channel and then handed each further row over with a
/// wake-up of the blocked thread (futex calls and task switches, about a tenth of a page's
/// CPU). 128 holds a page of 100, the count IdPs page by; what it buffers is bounded by
/// `max_document_bytes` per row (16 MiB per connection at the default 128 KiB).
const ROW_BUFFER: usize = 128;

/// How long a checkout waits for a connection: sqlx's pool's default, kept when SQLite moved
/// to our pool. Writes queue for the one writer connection this long at most; the request
/// timeout usually answers first.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);

/// Member ids per statement when adding members (see the skeleton's removal chunks).
const MEMBER_CHUNK: usize = 5_000;

impl SqliteStore {
    pub async fn connect(url: &str, store_options: &StoreOptions) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the request is acknowledged, even on power loss.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            .row_buffer_size(ROW_BUFFER);
        make_private(options.get_filename())?;
        let timeout = store_options.statement_timeout;
        let writer = request_pool(options.clone(), 1, timeout);
        let reader = request_pool(options.clone(), 8, timeout);
        // Fails now, not at the first request, when the file cannot be opened (and creates it).
        drop(writer.acquire().await?);
        drop(reader.acquire().await?);
        Ok(SqlStore {
            dialect: SqliteDialect {
                reader,
                writer,
                limiter: MemoryLimiter::default(),
                options,
            },
            activity: Default::default(),
            member_queues: Default::default(),
            texts: Default::default(),
        })
    }
}

/// An id as SQLite stores it (hyphenated text).
fn text_id(id: &Uuid) -> String {
    id.to_string()
}

#[async_trait]
impl Dialect for SqliteDialect {
    type DB = Sqlite;
    const NAME: &'static str = "sqlite";
    const FILTER: filter_sql::Dialect = filter_sql::Dialect::Sqlite;
    /// A document is text: what another writer put there is checked as it is read.
    const DOCS_CHECKED: bool = false;
    /// The single writer connection already serialises every read-modify-write.
    const FOR_UPDATE: &'static str = "";
    // One writer at a time: a write's transaction already excludes every other.
    const FOR_SHARE: &'static str = "";
    const USER_ATTRIBUTE_PRESENT: &'static str = "exists (select 1 from \
         json_each(users.doc, '$.\"urn:omni:params:1.0:UserAttribute\"') where key = $2)";
    /// One writer at a time: commit order is the order the writer connection runs them.
    const WRITE_ORDER_LOCK: Option<&'static str> = None;
    const PROFILE_DEPENDENT_USERS: &'static str = "coalesce(json_type(doc, '$.active'), 'null') \
         not in ('true', 'false') \
         or coalesce(json_type(doc, '$.emails'), 'null') <> 'array' \
         or json_array_length(doc, '$.emails') = 0";
    const GREATEST: &'static str = "max";
    const LEAST: &'static str = "min";
    /// Any number: positions come from a counter.
    const MAX_ENTRIES_PER_TRANSACTION: usize = usize::MAX;
    /// A committed position is never preceded by a later commit, so every entry is visible.
    const CHANGES_VISIBLE: &'static str = "true";
    /// SQLite has no data-modifying `with`; its statements do not leave the process anyway.
    const LOG_IN_WRITE: bool = false;
    const UNLOCKED_UPDATES: bool = false;
    const CHANGES_HEAD: &'static str = "(select last from change_positions)";

    /// One writer at a time: a counter bumped in the writing transaction hands out positions
    /// in commit order; the statement's `count` entries take the last `count` of them.
    fn change_position(ordinal: usize, count: usize) -> String {
        format!(
            "(select last from change_positions) - {}",
            count.saturating_sub(ordinal + 1)
        )
    }

    fn change_position_bump(count: usize) -> Option<String> {
        Some(format!("update change_positions set last = last + {count}"))
    }

    /// `json_each` over a bound JSON array stands in for Postgres' `= any($n)`.
    fn in_ids(column: &str, param: &str) -> String {
        format!("{column} in (select value from json_each({param}))")
    }

    fn reader(&self) -> &Conns<Sqlite> {
        &self.reader
    }

    fn writer(&self) -> &Conns<Sqlite> {
        &self.writer
    }

    fn push_uuid<'q>(args: &mut SqliteArguments<'q>, id: Uuid) -> Result<(), BoxDynError> {
        args.add(text_id(&id))
    }

    fn push_opt_uuid<'q>(
        args: &mut SqliteArguments<'q>,
        id: Option<Uuid>,
    ) -> Result<(), BoxDynError> {
        args.add(id.as_ref().map(text_id))
    }

    fn push_ids<'q>(args: &mut SqliteArguments<'q>, ids: &'q [Uuid]) -> Result<(), BoxDynError> {
        args.add(Json(ids.iter().map(text_id).collect::<Vec<_>>()))
    }

    fn uuid(row: &SqliteRow, column: &str) -> StoreResult<Uuid> {
        let text: String = row.try_get(column)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
    }

    fn uuid_at(row: &SqliteRow, index: usize) -> StoreResult<Uuid> {
        let text: String = row.try_get_unchecked(index)?;
        Uuid::parse_str(&text).map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
    }

    fn opt_uuid(row: &SqliteRow, column: &str) -> StoreResult<Option<Uuid>> {
        let text: Option<String> = row.try_get(column)?;
        text.map(|t| Uuid::parse_str(&t))
            .transpose()
            .map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn migrator() -> &'static Migrator {
        &MIGRATOR
    }

    /// An empty file gets the baseline in one transaction (`sqlite_baseline.rs`); any other
    /// the migrations it lacks, one by one.
    async fn apply_migrations(pool: &Pool<Sqlite>) -> StoreResult<()> {
        super::sqlite_baseline::apply_to_empty(pool, &MIGRATOR).await?;
        MIGRATOR.run(pool).await?;
        Ok(())
    }

    /// Ids go to SQLite as one JSON array per chunk (`json_each`), so adding N members costs
    /// two statements per chunk (find a stranger, insert the rest), not two per member: the
    /// writer is held for one pass over the ids instead of N round trips.
    async fn add_members(
        conn: &mut SqliteConnection,
        org_id: Uuid,
        group_id: Uuid,
        ids: &[Uuid],
    ) -> StoreResult<Vec<Uuid>> {
        let mut added = Vec::new();
        let now = now_ms();
        for chunk in ids.chunks(MEMBER_CHUNK) {
            let stranger = "select j.value from json_each($1) j where not exists \
                 (select 1 from users u where u.org_id = $2 and u.id = j.value) \
                 order by j.key limit 1";
            let args = [Arg::Ids(chunk), Arg::Uuid(org_id)];
            if let Some(row) = fetch_optional::<Self>(conn, stranger, &args).await? {
                return Err(unknown_member(&Self::uuid(&row, "value")?));
            }
            // Every id is a user of the org now. `where true`: SQLite parses an upsert on
            // INSERT … SELECT only when the SELECT has a WHERE clause. `returning` names only
            // the rows inserted, not those `do nothing` skipped.
            let insert = "insert into group_members (org_id, group_id, user_id, created_at) \
                 select $4, $1, j.value, $2 from json_each($3) j where true \
                 on conflict do nothing returning user_id";
            let args = [
                Arg::Uuid(group_id),
                Arg::Int(now),
                Arg::Ids(chunk),
                Arg::Uuid(org_id),
            ];
            for row in fetch_all::<Self>(conn, insert, &args).await? {
                added.push(Self::uuid(&row, "user_id")?);
            }
        }
        Ok(added)
    }

    /// Migrations and refolds commit without waiting for the disk (`synchronous = NORMAL`):
    /// run one by one, 18 migrations' commits were 36 flushes, about a quarter of a cold start
    /// (an empty file now gets them in one transaction: `sqlite_baseline.rs`). Nothing they
    /// write is acknowledged to anyone, and in WAL mode a commit that did not reach the disk
    /// is lost whole, in order, never half-applied: a power cut undoes the last migrations
    /// and their records together, and the next start runs them again.
    /// The first commit of the serving connections (`FULL`) flushes the log, theirs included.
    async fn migration_pool(&self) -> StoreResult<Pool<Self::DB>> {
        Ok(SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(self.options.clone().synchronous(SqliteSynchronous::Normal))
            .await?)
    }

    /// One process owns a SQLite file, so the buckets live in memory.
    fn limiter(&self) -> LimiterState<'_, Sqlite> {
        LimiterState::InMemory(&self.limiter)
    }
}

/// A pool of `max` connections opened with `options` whose statements are interrupted once
/// they run `statement_timeout` past their connection's checkout. Without a timeout the
/// progress handler is installed all the same: it tells the pool when a lease was dropped
/// with a statement that may still run ([`Deadline`]).
pub fn request_pool(
    options: SqliteConnectOptions,
    max: u32,
    statement_timeout: Option<Duration>,
) -> Conns<Sqlite> {
    let deadlines = Deadlines {
        timeout: statement_timeout.unwrap_or(Duration::MAX),
        install: install_deadline,
    };
    let settings = PoolSettings {
        deadlines: Some(deadlines),
        ..PoolSettings::new(max, ACQUIRE_TIMEOUT)
    };
    Conns::new(options, settings)
}

/// A new connection's progress handler: a statement still running past the connection's
/// [`Deadline`] (set at each checkout) is interrupted (`SQLITE_INTERRUPT`).
fn install_deadline(
    conn: &mut SqliteConnection,
    deadline: Arc<Deadline>,
) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async move {
        conn.lock_handle()
            .await?
            .set_progress_handler(PROGRESS_STEPS, move || deadline.check());
        Ok(())
    })
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
