//! Per-(account, action) request rate limiting (Tencent's per-action quotas,
//! answered with `RequestLimitExceeded`).
//!
//! One `governor` GCRA cell per (account, action), with quota `per_second` and
//! burst `per_second`. Cells live in a `DashMap` looked up by `(&str, &str)`
//! without allocating, so the hot path is one sharded read lock plus one atomic
//! compare-and-swap. Cells are created on first use and never evicted: their
//! number is bounded by accounts × actions, which is small for an emulator.
//!
//! Several nodes on one database count together instead ([`SharedWindows`], docs/postgres.md
//! "Cluster-wide state"): fixed one-second windows counted in the store, a request admitted
//! while its window's count is within the quota. Over any run of whole seconds that admits
//! exactly `per_second` per second across the cluster, as the GCRA cell does on one node (both
//! let one more second's worth through at the edge of the run: the GCRA its burst, the
//! windows the second the run starts in).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};

/// Rejection: the caller may retry after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded, retry after {0:?}")]
pub struct RetryAfter(pub Duration);

/// Where several nodes count requests together (the store, on a shared database).
#[async_trait::async_trait]
pub trait SharedWindows: Send + Sync {
    /// Counts one request of `action` by `account` in the one-second window `window_s` (unix
    /// seconds); the window's count, this one included. `Err` when the store cannot say.
    async fn hit(&self, account: &str, action: &str, window_s: i64) -> Result<u64, String>;
}

/// Rate limiter keyed by (account, action).
pub struct RateLimiter {
    enabled: bool,
    clock: DefaultClock,
    cells: DashMap<CellKey, Cell>,
    /// The cluster's windows, on a shared store.
    shared: Option<Arc<dyn SharedWindows>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.enabled)
            .field("cells", &self.cells.len())
            .field("shared", &self.shared.is_some())
            .finish()
    }
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
            shared: None,
        }
    }

    /// Count in `shared` (the cluster's one-second windows) instead of this node's cells.
    pub fn with_shared(mut self, shared: Arc<dyn SharedWindows>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// [`RateLimiter::check`], in the cluster's windows on a shared store. If the store
    /// cannot answer, this node's cell decides (each node then admits the quota; logged).
    pub async fn admit(
        &self,
        account: &str,
        action: &str,
        per_second: u32,
    ) -> Result<(), RetryAfter> {
        let Some(shared) = self
            .shared
            .as_ref()
            .filter(|_| self.enabled && per_second > 0)
        else {
            return self.check(account, action, per_second);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let window = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        match shared.hit(account, action, window).await {
            Ok(n) if n <= u64::from(per_second) => Ok(()),
            // The next window opens at the next whole second.
            Ok(_) => Err(RetryAfter(
                Duration::from_secs(1)
                    .saturating_sub(Duration::from_nanos(u64::from(now.subsec_nanos()))),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's rate windows are unavailable; this node's limits decide");
                self.check(account, action, per_second)
            }
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
                return self.admit_cell(&cell.limiter);
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
        self.admit_cell(&cell.limiter)
    }

    fn new_cell(&self, rate: NonZeroU32) -> Cell {
        let quota = Quota::per_second(rate).allow_burst(rate);
        Cell {
            per_second: rate.get(),
            limiter: governor::RateLimiter::direct_with_clock(quota, self.clock.clone()),
        }
    }

    fn admit_cell(&self, limiter: &DefaultDirectRateLimiter) -> Result<(), RetryAfter> {
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

    /// A stand-in for the store's windows.
    #[derive(Default)]
    struct Windows(parking_lot::Mutex<std::collections::HashMap<(String, String, i64), u64>>);

    #[async_trait::async_trait]
    impl SharedWindows for Windows {
        async fn hit(&self, account: &str, action: &str, window_s: i64) -> Result<u64, String> {
            let mut m = self.0.lock();
            let n = m
                .entry((account.into(), action.into(), window_s))
                .or_default();
            *n += 1;
            Ok(*n)
        }
    }

    struct Down;

    #[async_trait::async_trait]
    impl SharedWindows for Down {
        async fn hit(&self, _: &str, _: &str, _: i64) -> Result<u64, String> {
            Err("down".into())
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn two_nodes_share_one_quota() {
        let windows: Arc<Windows> = Arc::default();
        let a = RateLimiter::new(true).with_shared(windows.clone());
        let b = RateLimiter::new(true).with_shared(windows.clone());
        block_on(async {
            // Until the window's count passes the quota, in one second (retried once if the
            // second turned between the calls).
            for _ in 0..2 {
                windows.0.lock().clear();
                let started = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let mut admitted = 0;
                for i in 0..10 {
                    let node = if i % 2 == 0 { &a } else { &b };
                    if node.admit("acct", "RunInstances", 4).await.is_ok() {
                        admitted += 1;
                    }
                }
                let ended = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                if started == ended {
                    assert_eq!(admitted, 4, "the quota is the cluster's, not each node's");
                    let RetryAfter(wait) = a.admit("acct", "RunInstances", 4).await.unwrap_err();
                    assert!(wait <= Duration::from_secs(1), "{wait:?}");
                    // Other accounts and unlimited actions are not counted against it.
                    assert_eq!(b.admit("other", "RunInstances", 4).await, Ok(()));
                    assert_eq!(b.admit("acct", "Free", 0).await, Ok(()));
                    return;
                }
            }
            panic!("no whole second to test in");
        });
    }

    #[test]
    fn disabled_or_unreachable_falls_back_to_the_nodes_cells() {
        let off = RateLimiter::new(false).with_shared(Arc::new(Down));
        let down = RateLimiter::new(true).with_shared(Arc::new(Down));
        block_on(async {
            for _ in 0..10 {
                assert_eq!(off.admit("a", "X", 1).await, Ok(()));
            }
            assert_eq!(down.admit("a", "X", 1).await, Ok(()));
            assert!(down.admit("a", "X", 1).await.is_err());
        });
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
