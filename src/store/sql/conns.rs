//! The request pools' connections: [`Conns`] hands out a [`Leased`] connection or a [`Tx`]
//! (a transaction that owns its connection), from a pool of our own.
//!
//! sqlx 0.8's pool (and 0.9's) pings every connection when
//! it goes back, a `Sync` round trip per checkout that measured about a tenth of the server's
//! CPU on a GET (and a wake-up of the backend). What the ping is for is done here without a
//! round trip: a returned connection is *flushed* ([`sqlx::Connection::flush`], which sends
//! what is still buffered, such as the `ROLLBACK` of a dropped transaction, and reads the
//! answers of a statement whose future was dropped mid-way). A connection that was used to
//! the end has nothing to flush, so it is back in the pool at once; one that has goes back
//! from a task once its answers are read (within [`RETURN_DEADLINE`], else it is closed), and
//! one whose flush fails is closed.
//!
//! Connections are retired as sqlx's pool retires them ([`Retirement`]): one idle for
//! [`Retirement::idle_timeout`] is closed by a sweep, one open for
//! [`Retirement::max_lifetime`] is closed when it comes back, and one idle for
//! [`Retirement::check_after_idle`] is pinged (for at most [`PING_TIMEOUT`]) before it is
//! handed out, so a connection a server restart or a middlebox closed meanwhile is replaced
//! instead of failing a request.
//! Under load no connection sits idle that long: the ping costs nothing there.
//!
//! SQLite uses it too. There, sqlx's pool cost three messages to the connection's thread per
//! checkout (the statement deadline set through `lock_handle` before it, the statement, the
//! ping after it), each a wake-up of that thread and of the task: about ten futex calls per
//! GET. Here a SQLite connection checks its own [`Deadline`] (its progress handler reads it),
//! which the pool sets at checkout with one store; its flush has nothing to do, so a
//! connection is back at once. A rollback queued by a dropped transaction is run by the
//! connection's thread before the next command, since it takes them in order; a statement
//! that may still run when its lease ends is stopped, and its connection goes back once it
//! answers a ping ([`Deadline`]).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sqlx::{ConnectOptions, Connection, Database, TransactionManager};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a returned connection may take to read what a cancelled statement left behind
/// before it is closed instead (a backend that stopped answering must not hold a permit).
pub const RETURN_DEADLINE: Duration = Duration::from_secs(5);

/// When the pool checks, retires and closes its connections.
#[derive(Debug, Clone, Copy)]
pub struct Retirement {
    /// Idle this long, a connection is pinged before it is handed out.
    pub check_after_idle: Duration,
    /// Idle this long, a connection is closed.
    pub idle_timeout: Duration,
    /// Open this long, a connection is closed when it next comes back.
    pub max_lifetime: Duration,
}

impl Default for Retirement {
    /// sqlx's pool's idle timeout and lifetime; a check after ten idle seconds.
    fn default() -> Self {
        Retirement {
            check_after_idle: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10 * 60),
            max_lifetime: Duration::from_secs(30 * 60),
        }
    }
}

/// How long a connection checked after an idle spell may take to answer its ping.
pub const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Where a store's requests get their connections: our pool, which checks out and returns
/// a connection without a round trip.
pub struct Conns<DB: Database>(Arc<OwnPool<DB>>);

impl<DB: Database> Clone for Conns<DB> {
    fn clone(&self) -> Self {
        Conns(Arc::clone(&self.0))
    }
}

impl<DB: Database> fmt::Debug for Conns<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (size, idle) = self.state();
        f.debug_struct("Conns")
            .field("size", &size)
            .field("idle", &idle)
            .finish()
    }
}

/// A statement deadline a connection enforces itself (SQLite's progress handler calls
/// [`Deadline::check`] every few thousand VM steps), set by the pool at every checkout: one
/// atomic store, no message to the connection.
///
/// It also tells the pool when a lease may have left a statement running: a lease dropped
/// mid-statement (its request timed out, or its client went away) does not stop the
/// statement on the connection's thread, and a checkout that reset the deadline would give
/// that statement a new lease of life while the new holder waits behind it. So a lease
/// during which the check ran (it ran a statement long enough to be checked) ends by
/// expiring the deadline, which stops what may still run at its next check, and the
/// connection goes back only once it answers a ping, that is once it is idle.
#[derive(Debug)]
pub struct Deadline {
    base: Instant,
    /// Nanoseconds after `base`.
    at: AtomicU64,
    /// Whether the check ran since the checkout.
    checked: AtomicBool,
}

impl Deadline {
    fn new() -> Deadline {
        Deadline {
            base: Instant::now(),
            at: AtomicU64::new(u64::MAX),
            checked: AtomicBool::new(false),
        }
    }

    /// The connection's check between VM steps: whether its statement may go on.
    pub fn check(&self) -> bool {
        self.checked.store(true, Ordering::Relaxed);
        !self.passed()
    }

    /// Whether the connection's current statement has run past its checkout's deadline.
    fn passed(&self) -> bool {
        nanos(self.base.elapsed()) >= self.at.load(Ordering::Relaxed)
    }

    /// A lease begins: statements may run `timeout` from now. Relaxed: the statements that
    /// read it are sent to the connection's thread through a channel after these stores,
    /// and the channel orders them.
    fn start(&self, timeout: Duration) {
        self.checked.store(false, Ordering::Relaxed);
        let at = nanos(self.base.elapsed().saturating_add(timeout));
        self.at.store(at, Ordering::Relaxed);
    }

    /// A lease ends: whether it may have left a statement running, which is then stopped at
    /// its next check. A statement dropped before its first check (a few thousand steps,
    /// tens of microseconds) is not seen here: it runs under the next lease's deadline.
    fn end(&self) -> bool {
        if !self.checked.load(Ordering::Relaxed) {
            return false;
        }
        self.at.store(0, Ordering::Relaxed);
        true
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Installs a connection's check of its [`Deadline`], once, when the connection opens.
pub type InstallDeadline<DB> = for<'c> fn(
    &'c mut <DB as Database>::Connection,
    Arc<Deadline>,
) -> BoxFuture<'c, Result<(), sqlx::Error>>;

/// A statement timeout the pool's connections enforce themselves ([`Deadline`]).
pub struct Deadlines<DB: Database> {
    /// A statement still running this long after its connection's checkout is interrupted
    /// (`Duration::MAX`: never, though leases are still told apart).
    pub timeout: Duration,
    pub install: InstallDeadline<DB>,
}

/// How many connections a pool opens, how long a checkout may wait, when connections are
/// retired, and the deadline they enforce themselves, if any.
pub struct PoolSettings<DB: Database> {
    pub max: u32,
    /// A checkout waits at most this (then `PoolTimedOut`), opening a connection included.
    pub acquire_timeout: Duration,
    pub retirement: Retirement,
    pub deadlines: Option<Deadlines<DB>>,
}

impl<DB: Database> PoolSettings<DB> {
    /// `max` connections, checkouts waiting at most `acquire_timeout`, retired as sqlx
    /// retires them, no deadline of their own.
    pub fn new(max: u32, acquire_timeout: Duration) -> PoolSettings<DB> {
        PoolSettings {
            max,
            acquire_timeout,
            retirement: Retirement::default(),
            deadlines: None,
        }
    }
}

impl<DB: Database> Conns<DB> {
    /// A pool of at most `max` connections opened with `options`; a checkout waits at most
    /// `acquire_timeout` (then `PoolTimedOut`), opening a connection included.
    pub fn own(
        options: <DB::Connection as Connection>::Options,
        max: u32,
        acquire_timeout: Duration,
    ) -> Conns<DB> {
        Conns::new(options, PoolSettings::new(max, acquire_timeout))
    }

    /// A pool of connections opened with `options`, as `settings` say. Sweeps idle
    /// connections from a task on the current runtime, for as long as the pool lives.
    pub fn new(
        options: <DB::Connection as Connection>::Options,
        settings: PoolSettings<DB>,
    ) -> Conns<DB> {
        let pool = Arc::new(OwnPool {
            options,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(settings.max as usize)),
            open: AtomicU32::new(0),
            acquire_timeout: settings.acquire_timeout,
            retirement: settings.retirement,
            deadlines: settings.deadlines,
        });
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(sweep(Arc::downgrade(&pool)));
        }
        Conns(pool)
    }

    /// A connection for statements of its own.
    pub async fn acquire(&self) -> Result<Leased<DB>, sqlx::Error> {
        self.0.acquire().await
    }

    /// A transaction on a connection of its own; rolled back when dropped uncommitted.
    pub async fn begin(&self) -> Result<Tx<DB>, sqlx::Error> {
        let mut conn = self.acquire().await?;
        DB::TransactionManager::begin(&mut conn, None).await?;
        Ok(Tx { conn, open: true })
    }

    /// Connections open, and of those idle.
    pub fn state(&self) -> (u32, u32) {
        let pool = &self.0;
        (
            pool.open.load(Ordering::Relaxed),
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).len() as u32,
        )
    }
}

/// Our pool: idle connections (the most recently used last), and one permit per
/// connection that may be open.
pub struct OwnPool<DB: Database> {
    options: <DB::Connection as Connection>::Options,
    idle: Mutex<Vec<Idle<DB>>>,
    permits: Arc<Semaphore>,
    open: AtomicU32,
    acquire_timeout: Duration,
    retirement: Retirement,
    deadlines: Option<Deadlines<DB>>,
}

/// A connection of the pool, with when it was opened and the deadline it checks, if any.
struct Pooled<DB: Database> {
    conn: DB::Connection,
    opened: Instant,
    deadline: Option<Arc<Deadline>>,
}

/// An idle connection, and since when it is idle.
struct Idle<DB: Database> {
    pooled: Pooled<DB>,
    since: Instant,
}

impl<DB: Database> OwnPool<DB> {
    async fn acquire(self: &Arc<Self>) -> Result<Leased<DB>, sqlx::Error> {
        let checkout = async {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| sqlx::Error::PoolClosed)?;
            // A connection taken from the idle list leaves the count of open ones until it
            // is handed out, so a checkout cancelled meanwhile (its ping, say) drops it
            // without leaving the count wrong.
            let pooled = loop {
                let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(Idle { mut pooled, since }) = idle else {
                    break self.connect().await?;
                };
                self.open.fetch_sub(1, Ordering::Relaxed);
                if self.retired(pooled.opened, since) {
                    goodbye(pooled.conn);
                    continue;
                }
                if since.elapsed() < self.retirement.check_after_idle {
                    break pooled;
                }
                // A connection a middlebox dropped without a reset does not answer at all:
                // it is given up after a short wait, and the next one is tried.
                let ping = tokio::time::timeout(PING_TIMEOUT, pooled.conn.ping()).await;
                if matches!(ping, Ok(Ok(()))) {
                    break pooled;
                }
            };
            if let (Some(deadline), Some(deadlines)) = (&pooled.deadline, &self.deadlines) {
                deadline.start(deadlines.timeout);
            }
            self.open.fetch_add(1, Ordering::Relaxed);
            Ok(Leased {
                pooled: Some(pooled),
                permit: Some(permit),
                pool: Arc::clone(self),
            })
        };
        tokio::time::timeout(self.acquire_timeout, checkout)
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut))
    }

    /// A new connection, its deadline check installed.
    async fn connect(&self) -> Result<Pooled<DB>, sqlx::Error> {
        let mut conn = self.options.connect().await?;
        let deadline = match &self.deadlines {
            Some(deadlines) => {
                let deadline = Arc::new(Deadline::new());
                (deadlines.install)(&mut conn, Arc::clone(&deadline)).await?;
                Some(deadline)
            }
            None => None,
        };
        Ok(Pooled {
            conn,
            opened: Instant::now(),
            deadline,
        })
    }

    /// Whether a connection opened at `opened` and idle since `since` is past its time.
    fn retired(&self, opened: Instant, since: Instant) -> bool {
        opened.elapsed() >= self.retirement.max_lifetime
            || since.elapsed() >= self.retirement.idle_timeout
    }

    /// Back to the idle list, or closed when it has lived its time (its permit is released
    /// by the caller, after this).
    fn keep(&self, pooled: Pooled<DB>) {
        if pooled.opened.elapsed() >= self.retirement.max_lifetime {
            self.close(pooled.conn);
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Idle {
                pooled,
                since: Instant::now(),
            });
    }

    /// Closed without a goodbye: it is broken, or it did not answer in time.
    fn discard(&self, conn: DB::Connection) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        drop(conn);
    }

    /// Closed with a goodbye.
    fn close(&self, conn: DB::Connection) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        goodbye(conn);
    }
}

/// Closes a connection with a goodbye (the server ends its session at once), from a task.
fn goodbye<C: Connection + 'static>(conn: C) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let _ = tokio::time::timeout(RETURN_DEADLINE, conn.close()).await;
        });
    }
}

/// Closes the pool's connections that have been idle or open too long, a few times per
/// idle timeout, until the pool is gone.
async fn sweep<DB: Database>(pool: Weak<OwnPool<DB>>) {
    let every = match pool.upgrade() {
        Some(pool) => (pool.retirement.idle_timeout / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(60)),
        None => return,
    };
    loop {
        tokio::time::sleep(every).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        let retired: Vec<Idle<DB>> = {
            let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            let (retired, kept) = std::mem::take(&mut *idle)
                .into_iter()
                .partition(|c| pool.retired(c.pooled.opened, c.since));
            *idle = kept;
            retired
        };
        for idle in retired {
            pool.close(idle.pooled.conn);
        }
    }
}

/// A checked-out connection; it goes back to its pool when dropped.
pub struct Leased<DB: Database> {
    pooled: Option<Pooled<DB>>,
    permit: Option<OwnedSemaphorePermit>,
    pool: Arc<OwnPool<DB>>,
}

// The connection is taken out only by `drop`, after which nothing can deref: the `expect`s
// below cannot fire.
impl<DB: Database> Deref for Leased<DB> {
    type Target = DB::Connection;
    #[allow(clippy::expect_used)]
    fn deref(&self) -> &DB::Connection {
        &self
            .pooled
            .as_ref()
            .expect("a leased connection until dropped")
            .conn
    }
}

impl<DB: Database> DerefMut for Leased<DB> {
    #[allow(clippy::expect_used)]
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self
            .pooled
            .as_mut()
            .expect("a leased connection until dropped")
            .conn
    }
}

impl<DB: Database> Drop for Leased<DB> {
    fn drop(&mut self) {
        let (Some(mut pooled), permit) = (self.pooled.take(), self.permit.take()) else {
            return;
        };
        let pool = &self.pool;
        let may_still_run = pooled.deadline.as_ref().is_some_and(|d| d.end());
        // A connection used to the end has nothing to send or read: the flush completes on
        // its first poll, without a system call. One that may still run a statement is
        // settled by a task (below) whatever its flush says.
        let flushed = if may_still_run {
            None
        } else {
            pooled.conn.flush().now_or_never()
        };
        if let Some(flushed) = flushed {
            match flushed {
                Ok(()) => pool.keep(pooled),
                Err(_) => pool.discard(pooled.conn),
            }
            drop(permit);
            return;
        }
        let pool = Arc::clone(pool);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            pool.discard(pooled.conn);
            return;
        };
        runtime.spawn(async move {
            let settled = async {
                pooled.conn.flush().await?;
                if may_still_run {
                    pooled.conn.ping().await?;
                }
                Ok::<(), sqlx::Error>(())
            };
            match tokio::time::timeout(RETURN_DEADLINE, settled).await {
                Ok(Ok(())) => pool.keep(pooled),
                _ => pool.discard(pooled.conn),
            }
            drop(permit);
        });
    }
}

/// A transaction that owns its connection (as sqlx's `Transaction` does with a pooled one).
pub struct Tx<DB: Database> {
    conn: Leased<DB>,
    open: bool,
}

impl<DB: Database> Tx<DB> {
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        DB::TransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl<DB: Database> Deref for Tx<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for Tx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

impl<DB: Database> Drop for Tx<DB> {
    fn drop(&mut self) {
        if self.open {
            // Queued, not sent: the connection's return flushes it (see the module doc).
            DB::TransactionManager::start_rollback(&mut self.conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_never_started_never_passes() {
        assert!(Deadline::new().check());
    }

    #[test]
    fn a_deadline_passes_once_its_timeout_has_run_out_and_not_before() {
        let deadline = Deadline::new();
        deadline.start(Duration::from_secs(3600));
        assert!(deadline.check());
        deadline.start(Duration::ZERO);
        assert!(!deadline.check());
        // The next checkout moves it forward again.
        deadline.start(Duration::from_secs(3600));
        assert!(deadline.check());
    }

    #[test]
    fn a_timeout_too_long_to_count_in_nanoseconds_means_no_deadline() {
        let deadline = Deadline::new();
        deadline.start(Duration::MAX);
        assert!(deadline.check());
    }

    #[test]
    fn a_lease_whose_statements_were_never_checked_ends_without_stopping_anything() {
        let deadline = Deadline::new();
        deadline.start(Duration::from_secs(3600));
        assert!(!deadline.end(), "nothing may still run");
        assert!(deadline.check(), "the deadline is left as it was");
    }

    #[test]
    fn a_lease_whose_statement_was_checked_ends_by_stopping_what_may_still_run() {
        let deadline = Deadline::new();
        deadline.start(Duration::from_secs(3600));
        assert!(deadline.check());
        assert!(deadline.end(), "a checked statement may still run");
        assert!(!deadline.check(), "it is stopped at its next check");
        // The next lease starts unchecked, with a deadline of its own.
        deadline.start(Duration::from_secs(3600));
        assert!(!deadline.end());
    }
}
