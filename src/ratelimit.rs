//! Rate limiting: the GCRA arithmetic, an in-process limiter, and per-process token leases.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
//! time (TAT). It is smooth — one request per `period/limit` refills — and allows a burst of
//! `limit`. Time is counted in nanoseconds so that the emission interval stays exact for any
//! configured limit (whole milliseconds capped every limit above 60,000/min at 1,000/s). The
//! same arithmetic runs in Rust for SQLite and in SQL for Postgres, where the state is shared
//! by every scimd process using that database.
//!
//! A check may take several tokens at once ([`Leases`]): a process that is spending a key's
//! tokens quickly takes the next few in one database round trip and spends them locally.
//! Tokens are charged to the shared bucket when they are taken, so a lease can never admit
//! more than the bucket allows; a lease left unspent is forfeited (the only error is towards
//! refusing). At limits below 1,200/min a lease is always one token: exact, as before.

use std::collections::HashMap;
use std::sync::Mutex;

const NANOS_PER_MS: i64 = 1_000_000;

/// Outcome of one rate-limit check (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    /// Tokens taken by this check (0 when refused; more than 1 only for a lease).
    pub granted: u64,
    /// Requests still allowed right now.
    pub remaining: u64,
    /// Milliseconds until the next request would be allowed (0 when allowed).
    pub retry_after_ms: i64,
    /// Milliseconds until the bucket is completely full again.
    pub reset_ms: i64,
}

/// Parameters of a rate limit: `limit` requests per `period_ms`, with a burst of `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub period_ms: i64,
}

/// Wall-clock time in nanoseconds since the Unix epoch (fits an `i64` until 2262).
pub fn now_ns() -> i64 {
    chrono::Utc::now()
        .timestamp_nanos_opt()
        .unwrap_or(i64::MAX / 2)
}

impl RateLimit {
    /// Per-minute limit, the shape scimd's configuration uses.
    pub fn per_minute(limit: u64) -> RateLimit {
        RateLimit {
            limit: limit.max(1),
            period_ms: 60_000,
        }
    }

    pub fn period_ns(&self) -> i64 {
        self.period_ms.saturating_mul(NANOS_PER_MS)
    }

    /// Time one request "costs": the emission interval, in nanoseconds.
    pub fn interval_ns(&self) -> i64 {
        (self.period_ns() / self.limit.min(i64::MAX as u64) as i64).max(1)
    }

    /// Tokens that fit in the bucket when the theoretical arrival time is `current_tat`.
    fn available(&self, now_ns: i64, current_tat: i64) -> i64 {
        ((self.period_ns() - (current_tat - now_ns)) / self.interval_ns()).max(0)
    }

    /// The decision after `granted` (≥ 1) tokens were taken and the TAT became `new_tat`.
    pub fn granted(&self, now_ns: i64, new_tat: i64, granted: u64) -> RateDecision {
        RateDecision {
            allowed: true,
            granted,
            remaining: self.available(now_ns, new_tat) as u64,
            retry_after_ms: 0,
            reset_ms: ns_to_ms_ceil(new_tat - now_ns),
        }
    }

    /// The decision when no token fits while the TAT is `current_tat` (≥ `now_ns`).
    pub fn refused(&self, now_ns: i64, current_tat: i64) -> RateDecision {
        self.refused_for(now_ns, current_tat, 1)
    }

    /// The decision when fewer than `need` tokens fit: `Retry-After` is when `need` will.
    pub fn refused_for(&self, now_ns: i64, current_tat: i64, need: u64) -> RateDecision {
        // `need` more tokens fit once the TAT after them is at most one period ahead.
        let need = need.clamp(1, self.limit.min(i64::MAX as u64)) as i64;
        let wait = current_tat + need * self.interval_ns() - now_ns - self.period_ns();
        RateDecision {
            allowed: false,
            granted: 0,
            remaining: 0,
            retry_after_ms: ns_to_ms_ceil(wait).max(1),
            reset_ms: ns_to_ms_ceil(current_tat - now_ns),
        }
    }

    /// The most tokens one lease may take: 50 ms worth of the limit, at least one.
    pub fn lease_cap(&self) -> u64 {
        (self.limit.saturating_mul(LEASE_WINDOW_NS as u64) / self.period_ns().max(1) as u64)
            .clamp(1, self.limit)
    }
}

fn ns_to_ms_ceil(ns: i64) -> i64 {
    (ns.max(0) as u64).div_ceil(NANOS_PER_MS as u64) as i64
}

/// One GCRA step taking up to `want` tokens: returns the decision and the TAT to store
/// (unchanged when refused).
pub fn gcra(tat: Option<i64>, now_ns: i64, limit: RateLimit, want: u64) -> (RateDecision, i64) {
    gcra_at_least(tat, now_ns, limit, want, 1)
}

/// [`gcra`] granting nothing unless at least `need` tokens fit (a Bulk request's operations
/// are taken all at once or not at all).
pub fn gcra_at_least(
    tat: Option<i64>,
    now_ns: i64,
    limit: RateLimit,
    want: u64,
    need: u64,
) -> (RateDecision, i64) {
    let current = tat.unwrap_or(now_ns).max(now_ns);
    let want = want.clamp(1, limit.limit.min(i64::MAX as u64)) as i64;
    let need = (need as i64).clamp(1, want);
    let granted = limit.available(now_ns, current).min(want);
    if granted < need {
        return (limit.refused_for(now_ns, current, need as u64), current);
    }
    let new_tat = current + granted * limit.interval_ns();
    (limit.granted(now_ns, new_tat, granted as u64), new_tat)
}

/// An in-process limiter keyed by string: used for SQLite (single node) and for the per-IP
/// limit on failed authentication.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    buckets: Mutex<HashMap<String, i64>>,
}

impl MemoryLimiter {
    /// Counts one request against `bucket`.
    pub fn check(&self, bucket: &str, now_ns: i64, limit: RateLimit) -> RateDecision {
        self.take(bucket, now_ns, limit, 1)
    }

    /// Takes up to `want` tokens from `bucket`.
    pub fn take(&self, bucket: &str, now_ns: i64, limit: RateLimit, want: u64) -> RateDecision {
        self.take_at_least(bucket, now_ns, limit, want, 1)
    }

    /// Takes up to `want` tokens from `bucket`, or none unless `need` fit.
    pub fn take_at_least(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
        need: u64,
    ) -> RateDecision {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        // Forget buckets that have fully drained so the map cannot grow without bound.
        if buckets.len() > 10_000 {
            buckets.retain(|_, tat| *tat > now_ns);
        }
        let (decision, stored) =
            gcra_at_least(buckets.get(bucket).copied(), now_ns, limit, want, need);
        buckets.insert(bucket.to_string(), stored);
        decision
    }
}

/// A lease holds at most 50 ms of a key's rate...
const LEASE_WINDOW_NS: i64 = 50 * NANOS_PER_MS;
/// ...and is forfeited when not spent within 100 ms of being taken.
const LEASE_TTL_NS: i64 = 100 * NANOS_PER_MS;
/// A key with a lease taken within this long is busy: its next lease is sized from the last.
const BUSY_WINDOW_NS: i64 = 1_000 * NANOS_PER_MS;

/// Tokens this process has taken from shared buckets and not spent yet.
#[derive(Debug, Default)]
pub struct Leases {
    leases: Mutex<HashMap<String, Lease>>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    tokens: u64,
    /// How many tokens the last fetch asked for; doubles while fetches come quickly.
    size: u64,
    taken_at: i64,
    /// The bucket's decision when the lease was taken, for the response headers.
    at_fetch: RateDecision,
    /// When the fetch of the next lease was sized (cleared when it is recorded).
    fetching_since: Option<i64>,
}

impl Leases {
    /// Spends one leased token of `bucket`, if this process holds a live one.
    pub fn spend(&self, bucket: &str, now_ns: i64) -> Option<RateDecision> {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let lease = leases.get_mut(bucket)?;
        if lease.tokens == 0 || now_ns - lease.taken_at >= LEASE_TTL_NS {
            return None;
        }
        lease.tokens -= 1;
        let elapsed_ms = (now_ns - lease.taken_at) / NANOS_PER_MS;
        Some(RateDecision {
            allowed: true,
            granted: 1,
            remaining: lease.at_fetch.remaining + lease.tokens,
            retry_after_ms: 0,
            reset_ms: (lease.at_fetch.reset_ms - elapsed_ms).max(0),
        })
    }

    /// How many tokens the next fetch for `bucket` should ask for: twice as many as last time
    /// when that lease was spent before it expired; half as many when it expired unspent
    /// but the key was busy within the last second; one for a key that was quiet.
    ///
    /// A lease sized by the time since the last fetch alone fell back to one token whenever
    /// it outlasted the lease window, and grew again fetch by fetch: at 11,000 requests/s
    /// about one request in eleven went to the shared bucket.
    pub fn want(&self, bucket: &str, now_ns: i64, limit: RateLimit) -> u64 {
        let cap = limit.lease_cap();
        if cap == 1 {
            return 1;
        }
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        let Some(lease) = leases.get_mut(bucket) else {
            return 1;
        };
        // The requests that find the lease spent while its next fetch is on its way ask for
        // one token each, not as many again each.
        if lease
            .fetching_since
            .is_some_and(|since| now_ns - since < LEASE_TTL_NS)
        {
            return 1;
        }
        let want = if now_ns - lease.taken_at < LEASE_TTL_NS && lease.tokens == 0 {
            lease.size.saturating_mul(2).min(cap)
        } else if now_ns - lease.taken_at < BUSY_WINDOW_NS {
            (lease.size / 2).max(1)
        } else {
            1
        };
        lease.fetching_since = Some(now_ns);
        want
    }

    /// Records a fetch that asked for `want` tokens; one granted token is spent by the caller.
    pub fn record(
        &self,
        bucket: &str,
        now_ns: i64,
        limit: RateLimit,
        want: u64,
        decision: &RateDecision,
    ) {
        if limit.lease_cap() == 1 {
            // Every fetch is one token, spent at once: nothing to keep.
            return;
        }
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.len() > 10_000 {
            leases.retain(|_, lease| now_ns - lease.taken_at < LEASE_TTL_NS);
        }
        let lease = leases.entry(bucket.to_string()).or_insert(Lease {
            tokens: 0,
            size: 1,
            taken_at: now_ns,
            at_fetch: *decision,
            fetching_since: None,
        });
        let live = if now_ns - lease.taken_at < LEASE_TTL_NS {
            lease.tokens
        } else {
            0
        };
        // A single token asked for while the key is busy was a request that found the lease
        // spent while its next fetch was on its way (see `want`): it does not size the next.
        let size = if want == 1 && now_ns - lease.taken_at < BUSY_WINDOW_NS {
            lease.size
        } else {
            want
        };
        *lease = Lease {
            tokens: live + decision.granted.saturating_sub(1),
            size,
            taken_at: now_ns,
            at_fetch: *decision,
            fetching_since: None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const T0: i64 = 1_700_000_000 * SECOND;

    #[test]
    fn sixty_per_minute_allows_sixty_at_once_and_refuses_the_sixty_first_for_one_second() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(60);
        for i in 0..60 {
            let d = limiter.check("k", T0, limit);
            assert!(d.allowed, "request {i} should pass");
            assert_eq!(d.remaining, 59 - i);
        }
        let refused = limiter.check("k", T0, limit);
        assert!(!refused.allowed);
        assert_eq!(refused.granted, 0);
        assert_eq!(refused.retry_after_ms, 1000);
        assert_eq!(refused.remaining, 0);
        // One emission interval later exactly one more request fits.
        assert!(limiter.check("k", T0 + SECOND, limit).allowed);
        assert!(!limiter.check("k", T0 + SECOND, limit).allowed);
    }

    #[test]
    fn buckets_are_independent_and_refill_smoothly() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(2);
        assert!(limiter.check("a", T0, limit).allowed);
        assert!(limiter.check("a", T0, limit).allowed);
        assert!(!limiter.check("a", T0, limit).allowed);
        assert!(limiter.check("b", T0, limit).allowed);
        assert!(limiter.check("a", T0 + 30 * SECOND, limit).allowed);
    }

    #[test]
    fn limits_above_sixty_thousand_per_minute_refill_at_their_own_rate() {
        // 6,000,000/min is 100,000/s: after the burst, each millisecond refills 100 tokens.
        // (With whole-millisecond intervals this refilled one per millisecond.)
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(6_000_000);
        let burst = limiter.take("k", T0, limit, u64::MAX);
        assert_eq!(burst.granted, 6_000_000);
        assert!(!limiter.check("k", T0, limit).allowed);
        let later = limiter.take("k", T0 + SECOND / 1000, limit, u64::MAX);
        assert_eq!(later.granted, 100);
        let mut admitted = 0;
        let mut t = T0 + SECOND / 1000;
        while t < T0 + SECOND + SECOND / 1000 {
            t += 10_000; // every 10 µs for one second
            admitted += limiter.check("k", t, limit).granted;
        }
        assert_eq!(admitted, 100_000);
    }

    #[test]
    fn a_take_gets_what_fits_and_no_more() {
        let limiter = MemoryLimiter::default();
        let limit = RateLimit::per_minute(10);
        let first = limiter.take("k", T0, limit, 4);
        assert_eq!((first.granted, first.remaining), (4, 6));
        let second = limiter.take("k", T0, limit, 10);
        assert_eq!((second.granted, second.remaining), (6, 0));
        let third = limiter.take("k", T0, limit, 10);
        assert_eq!(third.granted, 0);
        assert_eq!(third.retry_after_ms, 6_000);
        assert_eq!(third.reset_ms, 60_000);
    }

    #[test]
    fn lease_cap_is_fifty_milliseconds_of_the_limit() {
        for (per_minute, cap) in [
            (1, 1),
            (60, 1),
            (1_199, 1),
            (2_400, 2),
            (60_000, 50),
            (1_200_000, 1_000),
        ] {
            assert_eq!(
                RateLimit::per_minute(per_minute).lease_cap(),
                cap,
                "{per_minute}"
            );
        }
    }

    #[test]
    fn leases_stay_single_tokens_at_low_limits() {
        let leases = Leases::default();
        let limit = RateLimit::per_minute(60);
        let d = limit.granted(T0, T0 + SECOND, 1);
        leases.record("k", T0, limit, 1, &d);
        assert_eq!(leases.want("k", T0, limit), 1);
        assert_eq!(leases.spend("k", T0), None);
    }

    #[test]
    fn leases_grow_while_fetches_come_quickly_and_expire() {
        let leases = Leases::default();
        let limit = RateLimit::per_minute(1_200_000); // cap 1,000
        let memory = MemoryLimiter::default();
        let mut now = T0;
        let mut sizes = Vec::new();
        for _ in 0..12 {
            let want = leases.want("k", now, limit);
            sizes.push(want);
            let d = memory.take("k", now, limit, want);
            leases.record("k", now, limit, want, &d);
            for _ in 1..d.granted {
                assert!(leases.spend("k", now).is_some());
            }
            assert_eq!(leases.spend("k", now), None);
            now += SECOND / 1000;
        }
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000]);
        // A quiet key starts again from one token, and unspent tokens are forfeited.
        now += SECOND;
        assert_eq!(leases.want("k", now, limit), 1);
        let d = memory.take("k", now, limit, 8);
        leases.record("k", now, limit, 8, &d);
        assert!(leases.spend("k", now + LEASE_TTL_NS / 2).is_some());
        assert_eq!(leases.spend("k", now + LEASE_TTL_NS), None);
    }

    #[test]
    fn a_lease_spent_before_it_expires_doubles_the_next_and_one_left_unspent_halves_it() {
        let leases = Leases::default();
        let limit = RateLimit::per_minute(1_200_000); // cap 1,000
        let memory = MemoryLimiter::default();
        let d = memory.take("k", T0, limit, 512);
        leases.record("k", T0, limit, 512, &d);
        for _ in 0..100 {
            assert!(leases.spend("k", T0).is_some());
        }
        // Expired with 411 left: the key needs fewer than it took.
        let later = T0 + LEASE_TTL_NS;
        assert_eq!(leases.want("k", later, limit), 256);
        let d = memory.take("k", later, limit, 256);
        leases.record("k", later, limit, 256, &d);
        for _ in 1..256 {
            assert!(leases.spend("k", later + 1).is_some());
        }
        assert_eq!(leases.spend("k", later + 1), None);
        // Spent before it expired (even after the lease window): it needs more; and the
        // others who find it spent before that fetch is back ask for one token each.
        let spent = later + LEASE_WINDOW_NS + 1;
        assert_eq!(leases.want("k", spent, limit), 512);
        assert_eq!(leases.want("k", spent, limit), 1);
        assert_eq!(leases.want("k", spent + 1, limit), 1);
    }

    #[test]
    fn two_processes_leasing_from_one_bucket_admit_exactly_the_limit() {
        let shared = MemoryLimiter::default();
        let processes = [Leases::default(), Leases::default()];
        let limit = RateLimit::per_minute(120_000); // burst 120,000, cap 100
        let mut admitted = 0u64;
        let mut refused = [false, false];
        let mut turn = 0;
        while !(refused[0] && refused[1]) {
            let leases = &processes[turn % 2];
            let decision = leases.spend("k", T0).unwrap_or_else(|| {
                let want = leases.want("k", T0, limit);
                let d = shared.take("k", T0, limit, want);
                leases.record("k", T0, limit, want, &d);
                d
            });
            if decision.allowed {
                admitted += 1;
            } else {
                refused[turn % 2] = true;
            }
            turn += 1;
        }
        assert_eq!(admitted, 120_000);
    }
}
