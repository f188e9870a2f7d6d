//! The rate limiter's state (GCRA, [`crate::ratelimit::gcra`]): in a table every process
//! shares where the database is shared (Postgres), in this process's memory where one process
//! owns the database (SQLite). The table's statement is written once, here.

use async_trait::async_trait;
use sqlx::Pool;

use super::{Arg, Dialect, SqlDb, SqlStore, fetch_optional};
use crate::ratelimit::{MemoryLimiter, RateDecision, RateLimit};
use crate::store::{RateLimitStore, StoreError, StoreResult};

/// Where a dialect keeps the limiter's buckets.
pub enum LimiterState<'a, DB: sqlx::Database> {
    /// One process owns the database file: the buckets live in memory.
    InMemory(&'a MemoryLimiter),
    /// The `rate_limit_buckets` table, on a pool of its own, so several processes share
    /// one limit per key.
    Shared(&'a Pool<DB>),
}

#[async_trait]
impl<D: Dialect> RateLimitStore for SqlStore<D> {
    async fn rate_limit_all(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
        need: u64,
    ) -> StoreResult<RateDecision> {
        match self.dialect.limiter() {
            LimiterState::InMemory(limiter) => {
                Ok(limiter.take_at_least(bucket, now_ns, limit, want, need))
            }
            LimiterState::Shared(pool) => {
                shared::<D>(pool, bucket, now_ns, limit, want, need).await
            }
        }
    }
}

/// One atomic statement per fetch: the row lock on the bucket orders processes. In an
/// UPDATE's SET list `b.tat_ns` is the old value, so `granted` is computed from the same TAT
/// as the new one; the WHERE refuses when fewer than `need` tokens fit.
async fn shared<D: Dialect>(
    pool: &Pool<D::DB>,
    bucket: &str,
    now_ns: i64,
    limit: RateLimit,
    want: u64,
    need: u64,
) -> StoreResult<RateDecision> {
    let (greatest, least) = (D::GREATEST, D::LEAST);
    let take = format!(
        "insert into rate_limit_buckets as b (bucket, tat_ns, granted) \
         values ($1, $2 + $3 * $4, $3) \
         on conflict (bucket) do update set \
           tat_ns = {greatest}(b.tat_ns, $2) \
             + {least}($3, ($5 - ({greatest}(b.tat_ns, $2) - $2)) / $4) * $4, \
           granted = {least}($3, ($5 - ({greatest}(b.tat_ns, $2) - $2)) / $4) \
         where ($5 - ({greatest}(b.tat_ns, $2) - $2)) / $4 >= $6 \
         returning tat_ns, granted"
    );
    let want = want.clamp(1, limit.limit) as i64;
    let need = (need as i64).clamp(1, want);
    let values = [
        Arg::Text(bucket),
        Arg::Int(now_ns),
        Arg::Int(want),
        Arg::Int(limit.interval_ns()),
        Arg::Int(limit.period_ns()),
        Arg::Int(need),
    ];
    let mut conn = pool.acquire().await?;
    if let Some(row) = fetch_optional::<D>(&mut conn, &take, &values).await? {
        let (new_tat, granted) = (D::DB::int(&row, "tat_ns")?, D::DB::int(&row, "granted")?);
        return Ok(limit.granted(now_ns, new_tat, granted as u64));
    }
    let read = "select tat_ns from rate_limit_buckets where bucket = $1";
    let row = fetch_optional::<D>(&mut conn, read, &[Arg::Text(bucket)])
        .await?
        .ok_or(StoreError::NotFound)?;
    let tat = D::DB::int(&row, "tat_ns")?;
    Ok(limit.refused_for(now_ns, tat.max(now_ns), need as u64))
}
