//! Rate limiting: the GCRA arithmetic, an in-process limiter, and the HTTP layer pieces.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
//! time (TAT). It is smooth — one request per `period/limit` refills — and allows a burst of
//! `limit`. The same arithmetic runs in Rust for SQLite and in SQL for Postgres, where the
//! state is shared by every scimd process using that database.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::{RateDecision, RateLimit};

impl RateLimit {
    /// Per-minute limit, the shape scimd's configuration uses.
    pub fn per_minute(limit: u64) -> RateLimit {
        RateLimit {
            limit: limit.max(1),
            period_ms: 60_000,
        }
    }

    /// Time one request "costs": the emission interval.
    pub fn interval_ms(&self) -> i64 {
        (self.period_ms / self.limit as i64).max(1)
    }

    /// Builds the decision for a request given the TAT after it (`new_tat`) and whether it fit.
    pub fn decision(&self, now_ms: i64, new_tat: i64, allowed: bool) -> RateDecision {
        let interval = self.interval_ms();
        if allowed {
            let headroom = self.period_ms - (new_tat - now_ms);
            RateDecision {
                allowed: true,
                remaining: (headroom / interval).max(0) as u64,
                retry_after_ms: 0,
                reset_ms: (new_tat - now_ms).max(0),
            }
        } else {
            // `new_tat` is the TAT the request would have produced; it fits once it is at most
            // one period ahead of the clock.
            let current_tat = new_tat - interval;
            RateDecision {
                allowed: false,
                remaining: 0,
                retry_after_ms: (new_tat - now_ms - self.period_ms).max(1),
                reset_ms: (current_tat - now_ms).max(0),
            }
        }
    }
}

/// One GCRA step: returns the decision and the TAT to store (unchanged when refused).
pub fn gcra(tat: Option<i64>, now_ms: i64, limit: RateLimit) -> (RateDecision, i64) {
    let current = tat.unwrap_or(now_ms).max(now_ms);
    let new_tat = current + limit.interval_ms();
    let allowed = new_tat - now_ms <= limit.period_ms;
    let stored = if allowed { new_tat } else { current };
    (limit.decision(now_ms, new_tat, allowed), stored)
}

/// An in-process limiter keyed by string: used for SQLite (single node) and for the per-IP
/// limit on failed authentication.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    buckets: Mutex<HashMap<String, i64>>,
}

impl MemoryLimiter {
    /// Counts one request against `bucket`.
    pub fn check(&self, bucket: &str, now_ms: i64, limit: RateLimit) -> RateDecision {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Forget buckets that have fully drained so the map cannot grow without bound.
        if buckets.len() > 10_000 {
            buckets.retain(|_, tat| *tat > now_ms);
        }
        let (decision, stored) = gcra(buckets.get(bucket).copied(), now_ms, limit);
        buckets.insert(bucket.to_string(), stored);
        decision
    }

    /// Looks at a bucket without counting a request: would one more be allowed?
    pub fn peek(&self, bucket: &str, now_ms: i64, limit: RateLimit) -> RateDecision {
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        gcra(buckets.get(bucket).copied(), now_ms, limit).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_per_minute_allows_sixty_at_once_and_refuses_the_sixty_first_for_one_second() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(60);
        for i in 0..60 {
            let d = limiter.check("k", 1_000_000, limit);
            assert!(d.allowed, "request {i} should pass");
            assert_eq!(d.remaining, 59 - i);
        }
        let refused = limiter.check("k", 1_000_000, limit);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 1000);
        assert_eq!(refused.remaining, 0);
        // One emission interval later exactly one more request fits.
        assert!(limiter.check("k", 1_001_000, limit).allowed);
        assert!(!limiter.check("k", 1_001_000, limit).allowed);
    }

    #[test]
    fn buckets_are_independent_and_refill_smoothly() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(2);
        assert!(limiter.check("a", 0, limit).allowed);
        assert!(limiter.check("a", 0, limit).allowed);
        assert!(!limiter.check("a", 0, limit).allowed);
        assert!(limiter.check("b", 0, limit).allowed);
        assert!(limiter.check("a", 30_000, limit).allowed);
    }

    #[test]
    fn peek_does_not_count() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(1);
        assert!(limiter.peek("a", 0, limit).allowed);
        assert!(limiter.check("a", 0, limit).allowed);
        assert!(!limiter.peek("a", 0, limit).allowed);
    }
}
