//! The request pool (`store/sql/conns.rs`): a connection goes back without a round trip, yet
//! what a dropped transaction or a cancelled statement left behind is settled before anyone
//! else uses it, a broken connection is replaced, checkouts are bounded, and connections are
//! retired: checked after an idle spell, closed when idle or old. Mostly on Postgres; the
//! SQLite tests at the end are about the deadline its connections check themselves.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scimd::store::conns::{Conns, PoolSettings, Retirement};
use scimd::store::sqlite_request_pool;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, PgConnection, Postgres};

use crate::helpers::{Backend, TestDb, postgres_url};
use crate::postgres_tests;

postgres_tests!(a_connection_that_stopped_answering_is_given_up_after_a_short_ping);

/// A pool of `max` connections on a fresh database, and that database (kept alive with it).
async fn pool(max: u32, acquire_timeout: Duration) -> Option<(Conns<Postgres>, TestDb)> {
    postgres_url()?;
    let db = TestDb::create(Backend::Postgres).await;
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    Some((Conns::own(options, max, acquire_timeout), db))
}

/// A pool of one connection retired as `retirement` says, and its database.
async fn retiring_pool(retirement: Retirement) -> Option<(Conns<Postgres>, TestDb)> {
    postgres_url()?;
    let db = TestDb::create(Backend::Postgres).await;
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let settings = PoolSettings {
        retirement,
        ..PoolSettings::new(1, Duration::from_secs(3))
    };
    let pool = Conns::new(options, settings);
    Some((pool, db))
}

/// The sessions open on `db`, other than the asking one.
async fn sessions(db: &TestDb) -> i64 {
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    scalar(
        &mut other,
        "select count(*) from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .await
}

/// Uses the pool's one connection, then has the server end its session while it is idle in
/// the pool; that session's backend pid.
async fn terminate_pooled_backend(pool: &Conns<Postgres>, db: &TestDb) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let pid = scalar(&mut conn, "select pg_backend_pid()::int8").await;
    drop(conn);
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("select pg_terminate_backend($1::int4)")
        .bind(pid)
        .execute(&mut other)
        .await
        .unwrap();
    pid
}

async fn scalar(conn: &mut PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_used_to_the_end_is_back_in_the_pool_as_soon_as_it_is_dropped() {
    let Some((pool, _db)) = pool(4, Duration::from_secs(3)).await else {
        return;
    };
    for _ in 0..20 {
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(scalar(&mut conn, "select 1::int8").await, 1);
        drop(conn);
        // Synchronously: no round trip was needed to return it.
        assert_eq!(pool.state(), (1, 1), "one connection, idle again at once");
    }
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(scalar(&mut tx, "select 2::int8").await, 2);
    tx.commit().await.unwrap();
    assert_eq!(pool.state(), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_is_rolled_back_and_releases_its_locks_without_a_next_use() {
    let Some((pool, db)) = pool(1, Duration::from_secs(3)).await else {
        return;
    };
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("create table t (v int)")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("insert into t values (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    scalar(&mut tx, "select 0::int8 from pg_advisory_xact_lock(42)").await;
    drop(tx);
    // Nobody uses the pool again: the rollback must still reach the server, so another
    // session gets the lock.
    let mut other = PgConnection::connect(&db.url).await.unwrap();
    let mut free = false;
    for _ in 0..40 {
        free = sqlx::query_scalar("select pg_try_advisory_lock(42)")
            .fetch_one(&mut other)
            .await
            .unwrap();
        if free {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(free, "the dropped transaction still holds its lock");
    assert_eq!(scalar(&mut other, "select count(*) from t").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cancelled_mid_way_leaves_its_connection_clean_for_the_next_user() {
    let Some((pool, _db)) = pool(1, Duration::from_secs(3)).await else {
        return;
    };
    let mut conn = pool.acquire().await.unwrap();
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        sqlx::query_scalar::<_, i64>("select 7::int8 from pg_sleep(0.3)").fetch_one(&mut *conn),
    )
    .await;
    assert!(cancelled.is_err(), "the statement should still be running");
    drop(conn);
    // The next user gets the same connection, its own answer, and not the sleeper's.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(scalar(&mut conn, "select 8::int8").await, 8);
    drop(conn);
    assert_eq!(pool.state(), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_closed_fails_one_statement_and_is_replaced() {
    let Some((pool, db)) = pool(1, Duration::from_secs(3)).await else {
        return;
    };
    let pid = terminate_pooled_backend(&pool, &db).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut conn = pool.acquire().await.unwrap();
    let failed = sqlx::query_scalar::<_, i64>("select 1::int8")
        .fetch_one(&mut *conn)
        .await;
    assert!(
        failed.is_err(),
        "a statement on a terminated backend must fail"
    );
    drop(conn);
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(scalar(&mut conn, "select 1::int8").await, 1);
    assert_ne!(
        scalar(&mut conn, "select pg_backend_pid()::int8").await,
        pid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkouts_beyond_the_bound_wait_and_then_time_out() {
    let Some((pool, _db)) = pool(2, Duration::from_millis(200)).await else {
        return;
    };
    let first = pool.acquire().await.unwrap();
    let _second = pool.acquire().await.unwrap();
    let third = pool.acquire().await;
    assert!(
        matches!(third, Err(sqlx::Error::PoolTimedOut)),
        "a third checkout of two: {:?}",
        third.err()
    );
    drop(first);
    let fourth = pool.acquire().await;
    assert!(fourth.is_ok(), "a returned connection is handed out again");
    assert_eq!(pool.state().0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_past_the_check_is_pinged_and_a_dead_one_replaced_unseen() {
    let retirement = Retirement {
        check_after_idle: Duration::from_millis(100),
        ..Retirement::default()
    };
    let Some((pool, db)) = retiring_pool(retirement).await else {
        return;
    };
    let pid = terminate_pooled_backend(&pool, &db).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Unlike a connection checked out at once, this one's death costs no statement.
    let mut conn = pool.acquire().await.unwrap();
    assert_ne!(
        scalar(&mut conn, "select pg_backend_pid()::int8").await,
        pid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_idle_past_the_idle_timeout_is_closed() {
    let retirement = Retirement {
        idle_timeout: Duration::from_millis(200),
        ..Retirement::default()
    };
    let Some((pool, db)) = retiring_pool(retirement).await else {
        return;
    };
    let mut conn = pool.acquire().await.unwrap();
    scalar(&mut conn, "select 1::int8").await;
    drop(conn);
    assert_eq!(pool.state(), (1, 1));
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if pool.state() == (0, 0) && sessions(&db).await == 0 {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "still open: {:?}, {} sessions",
        pool.state(),
        sessions(&db).await
    );
    // And the pool opens a new one when asked.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(scalar(&mut conn, "select 2::int8").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_its_lifetime_is_closed_when_it_comes_back() {
    let retirement = Retirement {
        max_lifetime: Duration::from_millis(300),
        ..Retirement::default()
    };
    let Some((pool, _db)) = retiring_pool(retirement).await else {
        return;
    };
    let mut conn = pool.acquire().await.unwrap();
    let pid = scalar(&mut conn, "select pg_backend_pid()::int8").await;
    drop(conn);
    // Young: it is kept.
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(
        scalar(&mut conn, "select pg_backend_pid()::int8").await,
        pid
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    drop(conn);
    assert_eq!(pool.state(), (0, 0), "closed as it came back");
    let mut conn = pool.acquire().await.unwrap();
    assert_ne!(
        scalar(&mut conn, "select pg_backend_pid()::int8").await,
        pid
    );
}

/// A TCP relay to Postgres whose connections made so far can be frozen: they stay open but
/// carry nothing more, as through a middlebox that dropped them without a reset.
struct Relay {
    port: u16,
    frozen: Arc<AtomicUsize>,
    made: Arc<AtomicUsize>,
}

impl Relay {
    async fn start(upstream: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let frozen = Arc::new(AtomicUsize::new(0));
        let made = Arc::new(AtomicUsize::new(0));
        let (f, m) = (frozen.clone(), made.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let number = m.fetch_add(1, Ordering::SeqCst) + 1;
                let server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let f = f.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    // Connections numbered up to the frozen mark pass nothing on.
                    let g = f.clone();
                    let a = tokio::spawn(async move { relay(&mut cr, &mut sw, number, &f).await });
                    let b = tokio::spawn(async move { relay(&mut sr, &mut cw, number, &g).await });
                    let _ = tokio::join!(a, b);
                });
            }
        });
        Relay { port, frozen, made }
    }

    /// Every connection made so far stops carrying anything.
    fn freeze_existing(&self) {
        self.frozen
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

/// Copies `from` to `to` while connection `number` is above the frozen mark.
async fn relay(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    number: usize,
    frozen: &AtomicUsize,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else {
            return;
        };
        if n == 0 {
            return;
        }
        if number <= frozen.load(Ordering::SeqCst) {
            // Swallowed: the other side waits for an answer that never comes.
            continue;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

async fn a_connection_that_stopped_answering_is_given_up_after_a_short_ping() {
    let db = TestDb::create(Backend::Postgres).await;
    let options = PgConnectOptions::from_str(&db.url).unwrap();
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let relay = Relay::start(upstream).await;
    let retirement = Retirement {
        check_after_idle: Duration::from_millis(100),
        ..Retirement::default()
    };
    let settings = PoolSettings {
        retirement,
        ..PoolSettings::new(1, Duration::from_secs(3))
    };
    let pool = Conns::<Postgres>::new(options.port(relay.port), settings);
    let mut conn = pool.acquire().await.unwrap();
    let pid = scalar(&mut conn, "select pg_backend_pid()::int8").await;
    drop(conn);
    relay.freeze_existing();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let mut conn = pool
        .acquire()
        .await
        .expect("a fresh connection, within the checkout timeout");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(
        scalar(&mut conn, "select pg_backend_pid()::int8").await,
        pid
    );
}

/// A SQLite statement that runs for minutes unless it is stopped.
const ENDLESS_SQLITE: &str = "with recursive c(x) as (select 1 union all select x + 1 from c \
     where x < 4000000000) select count(*) from c";

/// A SQLite pool of one connection to a database in memory, its statements stopped `timeout`
/// after their checkout.
fn sqlite_pool(timeout: Duration) -> Conns<sqlx::Sqlite> {
    let options = SqliteConnectOptions::from_str("sqlite::memory:").unwrap();
    sqlite_request_pool(options, 1, Some(timeout))
}

async fn sqlite_scalar(conn: &mut SqliteConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_connection_whose_statements_ended_is_back_in_the_pool_as_soon_as_it_is_dropped() {
    let pool = sqlite_pool(Duration::from_secs(10));
    for _ in 0..20 {
        let mut conn = pool.acquire().await.unwrap();
        assert_eq!(sqlite_scalar(&mut conn, "select 1").await, 1);
        drop(conn);
        // Synchronously: no message to the connection's thread was needed to return it.
        assert_eq!(pool.state(), (1, 1), "one connection, idle again at once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_statement_past_its_deadline_is_stopped() {
    let pool = sqlite_pool(Duration::from_millis(300));
    let mut conn = pool.acquire().await.unwrap();
    let started = Instant::now();
    let endless = sqlx::query_scalar::<_, i64>(ENDLESS_SQLITE)
        .fetch_one(&mut *conn)
        .await;
    let error = endless.expect_err("interrupted");
    assert!(error.to_string().contains("interrupt"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // A reused connection gets a deadline of its own, not the one that passed.
    drop(conn);
    let mut conn = pool.acquire().await.unwrap();
    let counted = sqlite_scalar(
        &mut conn,
        "with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000) \
         select count(*) from c",
    )
    .await;
    assert_eq!(counted, 100_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_statement_its_request_abandoned_is_stopped_before_the_next_user_gets_the_connection()
 {
    // Long enough that, were the abandoned statement given the next lease's deadline, the
    // next user would wait for it well past the bound below.
    let pool = sqlite_pool(Duration::from_secs(30));
    let mut conn = pool.acquire().await.unwrap();
    let endless = sqlx::query_scalar::<_, i64>(ENDLESS_SQLITE).fetch_one(&mut *conn);
    // The request gives up (a timeout, or its client went away): its future is dropped with
    // the statement still running on the connection's thread.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), endless)
            .await
            .is_err()
    );
    drop(conn);
    let started = Instant::now();
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(sqlite_scalar(&mut conn, "select 1").await, 1);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the next user waited {waited:?} behind the abandoned statement"
    );
}
