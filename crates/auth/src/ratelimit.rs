//! Per-(account, action) request rate limiting (Tencent's per-action quotas,
//! answered with `RequestLimitExceeded`).
//!
//! One `governor` GCRA cell per (account, action), with quota `per_second` and
//! burst `per_second`. Cells live in a `DashMap` looked up by `(&str, &str)`
//! without allocating, so the hot path is one sharded read lock plus one atomic
//! compare-and-swap. Cells are created on first use and never evicted: their
//! number is bounded by accounts × actions, which is small for an emulator.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// Rejection: the caller may retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded, retry after {0:?}")]
pub struct RetryAfter(pub Duration);

/// Rate limiter keyed by (account, action).
#[derive(Debug)]
pub struct RateLimiter {
    enabled: bool,
    clock: DefaultClock,
    cells: DashMap<CellKey, Cell>,
}

#[derive(Debug)]
struct Cell {
    per_second: u32,
    limiter: DefaultDirectRateLimiter,
}

impl RateLimiter {
    /// A limiter; when `enabled` is false [`RateLimiter::check`] always passes.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            clock: DefaultClock::default(),
            cells: DashMap::new(),
        }
    }

    /// Whether limits are enforced.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Admits one request of `action` by `account` under a quota of `per_second`
    /// requests per second (burst `per_second`). `per_second == 0` means the
    /// action has no limit. If the quota for a key changes, its cell restarts
    /// with the new quota (full burst).
    pub fn check(&self, account: &str, action: &str, per_second: u32) -> Result<(), RetryAfter> {
        let Some(rate) = NonZeroU32::new(per_second).filter(|_| self.enabled) else {
            return Ok(());
        };
        let probe: &dyn KeyRef = &(account, action);
        // Fast path; the read guard must be gone before `entry` locks the shard.
        if let Some(cell) = self.cells.get(probe) {
            if cell.per_second == per_second {
                return self.admit(&cell.limiter);
            }
        }
        let mut cell = self
            .cells
            .entry(CellKey {
                account: account.to_owned(),
                action: action.to_owned(),
            })
            .or_insert_with(|| self.new_cell(rate));
        if cell.per_second != per_second {
            *cell = self.new_cell(rate);
        }
        self.admit(&cell.limiter)
    }

    fn new_cell(&self, rate: NonZeroU32) -> Cell {
        let quota = Quota::per_second(rate).allow_burst(rate);
        Cell {
            per_second: rate.get(),
            limiter: governor::RateLimiter::direct_with_clock(quota, self.clock.clone()),
        }
    }

    fn admit(&self, limiter: &DefaultDirectRateLimiter) -> Result<(), RetryAfter> {
        limiter
            .check()
            .map_err(|not_until| RetryAfter(not_until.wait_time_from(self.clock.now())))
    }
}

/// Owned map key.
#[derive(Debug)]
struct CellKey {
    account: String,
    action: String,
}

/// Borrowed view of a key, so lookups can use `(&str, &str)` without building a
/// `CellKey` (the usual `Borrow<dyn Trait>` trick for composite keys).
trait KeyRef {
    fn parts(&self) -> (&str, &str);
}

impl KeyRef for CellKey {
    fn parts(&self) -> (&str, &str) {
        (&self.account, &self.action)
    }
}

impl KeyRef for (&str, &str) {
    fn parts(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn KeyRef + 'a> for CellKey {
    fn borrow(&self) -> &(dyn KeyRef + 'a) {
        self
    }
}

// Hash/Eq must agree between `CellKey` and `dyn KeyRef`; both go through `parts`.
impl Hash for dyn KeyRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn KeyRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn KeyRef + '_ {}

impl Hash for CellKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self as &dyn KeyRef).hash(state);
    }
}

impl PartialEq for CellKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for CellKey {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_per_second_admits_ten_then_rejects() {
        let rl = RateLimiter::new(true);
        for i in 0..10 {
            assert_eq!(
                rl.check("acct", "DescribeInstances", 10),
                Ok(()),
                "call {i}"
            );
        }
        let RetryAfter(wait) = rl.check("acct", "DescribeInstances", 10).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
    }

    #[test]
    fn disabled_never_rejects() {
        let rl = RateLimiter::new(false);
        assert!(!rl.is_enabled());
        for _ in 0..1000 {
            assert_eq!(rl.check("acct", "RunInstances", 1), Ok(()));
        }
    }

    #[test]
    fn keys_are_independent() {
        let rl = RateLimiter::new(true);
        assert_eq!(rl.check("a", "RunInstances", 1), Ok(()));
        assert!(rl.check("a", "RunInstances", 1).is_err());
        // Other account, other action, and swapped parts are separate cells.
        assert_eq!(rl.check("b", "RunInstances", 1), Ok(()));
        assert_eq!(rl.check("a", "StopInstances", 1), Ok(()));
        assert_eq!(rl.check("RunInstances", "a", 1), Ok(()));
        assert!(rl.check("b", "RunInstances", 1).is_err());
    }

    #[test]
    fn zero_means_unlimited_and_quota_change_resets() {
        let rl = RateLimiter::new(true);
        for _ in 0..100 {
            assert_eq!(rl.check("a", "X", 0), Ok(()));
        }
        assert_eq!(rl.check("a", "X", 1), Ok(()));
        assert!(rl.check("a", "X", 1).is_err());
        assert_eq!(rl.check("a", "X", 2), Ok(()));
        assert_eq!(rl.check("a", "X", 2), Ok(()));
        assert!(rl.check("a", "X", 2).is_err());
    }

    #[test]
    fn shared_across_threads() {
        let rl = std::sync::Arc::new(RateLimiter::new(true));
        let admitted: usize = (0..4)
            .map(|_| {
                let rl = rl.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .filter(|_| rl.check("acct", "A", 20).is_ok())
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        // 40 attempts against a burst of 20 (a few may refill if threads are slow).
        assert!((20..=30).contains(&admitted), "{admitted}");
    }
}
