//! Replay protection: a 15-minute memory of (AccessKeyId, nonce) pairs (spec §3c).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;

use super::{AuthError, MAX_CLOCK_SKEW_SECS};

/// Default number of nonces remembered per AccessKeyId.
const DEFAULT_MAX_PER_KEY: usize = 100_000;
/// Minimum spacing (seconds of `now`) between sweeps over all keys.
const SWEEP_INTERVAL_SECS: i64 = 60;

/// Remembers `(AccessKeyId, nonce)` pairs for 15 minutes (900 s) to reject
/// replays with [`AuthError::SignatureNonceUsed`].
///
/// Memory is bounded: expired entries are dropped lazily on every call for the
/// same key and by a sweep over all keys at most once a minute (which also drops
/// keys with nothing left), and each key keeps at most 100 000 nonces, evicting
/// the oldest first. Call it only for requests whose signature verified, so that
/// the set of keys is bounded by the real AccessKeyIds.
///
/// Note: a request is accepted while its timestamp is within ±900 s of server
/// time, so one sent with a clock up to 900 s *ahead* stays acceptable for up to
/// 1800 s after it is first seen. To close that window use
/// [`NonceCache::with_limits`] with a 1800 s TTL.
#[derive(Debug)]
pub struct NonceCache {
    ttl: i64,
    max_per_key: usize,
    keys: DashMap<String, KeyNonces>,
    last_sweep: AtomicI64,
}

/// Nonces of one AccessKeyId: first-seen time by nonce, plus insertion order for
/// oldest-first eviction. An `order` entry whose time differs from the one in
/// `seen` is stale (the nonce expired and was seen again) and is skipped.
#[derive(Debug, Default)]
struct KeyNonces {
    seen: HashMap<Arc<str>, i64>,
    order: VecDeque<(i64, Arc<str>)>,
}

impl KeyNonces {
    /// Removes the oldest `order` entry (and its `seen` entry unless stale).
    fn pop_oldest(&mut self) -> bool {
        let Some((at, nonce)) = self.order.pop_front() else {
            return false;
        };
        if self.seen.get(&nonce) == Some(&at) {
            self.seen.remove(&nonce);
        }
        true
    }

    /// Drops entries first seen more than `ttl` seconds before `now`.
    fn evict_expired(&mut self, now: i64, ttl: i64) {
        while self
            .order
            .front()
            .is_some_and(|(at, _)| now.saturating_sub(*at) > ttl)
        {
            self.pop_oldest();
        }
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceCache {
    /// A cache remembering nonces for 900 s, at most 100 000 per AccessKeyId.
    pub fn new() -> Self {
        Self::with_limits(MAX_CLOCK_SKEW_SECS as i64, DEFAULT_MAX_PER_KEY)
    }

    /// A cache remembering nonces for `ttl_secs` seconds, at most `max_per_key`
    /// (at least 1) per AccessKeyId.
    pub fn with_limits(ttl_secs: i64, max_per_key: usize) -> Self {
        Self {
            ttl: ttl_secs.max(0),
            max_per_key: max_per_key.max(1),
            keys: DashMap::new(),
            last_sweep: AtomicI64::new(i64::MIN),
        }
    }

    /// Records `nonce` for `access_key_id` at `now` (unix seconds), or fails with
    /// [`AuthError::SignatureNonceUsed`] if the pair was first seen at most
    /// `ttl` (900) seconds before `now`. A rejected call does not extend the
    /// entry's lifetime.
    pub fn check_and_insert(
        &self,
        access_key_id: &str,
        nonce: &str,
        now: i64,
    ) -> Result<(), AuthError> {
        self.maybe_sweep(now);

        let mut entry = match self.keys.get_mut(access_key_id) {
            Some(entry) => entry,
            None => self.keys.entry(access_key_id.to_owned()).or_default(),
        };
        let nonces = entry.value_mut();
        nonces.evict_expired(now, self.ttl);

        let live = |at: &i64| now.saturating_sub(*at) <= self.ttl;
        if nonces.seen.get(nonce).is_some_and(live) {
            return Err(AuthError::SignatureNonceUsed);
        }

        while nonces.seen.len() >= self.max_per_key && nonces.pop_oldest() {}
        // Stale `order` entries only arise with out-of-order clocks; keep them bounded.
        if nonces.order.len() >= self.max_per_key.saturating_mul(2) {
            let KeyNonces { seen, order } = nonces;
            order.retain(|(at, n)| seen.get(n) == Some(at));
        }
        let nonce: Arc<str> = Arc::from(nonce);
        nonces.seen.insert(Arc::clone(&nonce), now);
        nonces.order.push_back((now, nonce));
        Ok(())
    }

    /// Number of remembered (key, nonce) pairs, expired ones included until evicted.
    pub fn len(&self) -> usize {
        self.keys.iter().map(|e| e.value().seen.len()).sum()
    }

    /// Whether no pair is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At most once per [`SWEEP_INTERVAL_SECS`], drop expired nonces of every key
    /// and keys left empty. Must run while no entry guard is held.
    fn maybe_sweep(&self, now: i64) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_INTERVAL_SECS
            || self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        self.keys.retain(|_, nonces| {
            nonces.evict_expired(now, self.ttl);
            !nonces.seen.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_110_400;

    #[test]
    fn reuse_rejected_other_key_ok() {
        let cache = NonceCache::new();
        assert_eq!(cache.check_and_insert("ak1", "n1", T0), Ok(()));
        assert_eq!(
            cache.check_and_insert("ak1", "n1", T0 + 1),
            Err(AuthError::SignatureNonceUsed)
        );
        assert_eq!(AuthError::SignatureNonceUsed.code(), "SignatureNonceUsed");
        // Same nonce, other key; other nonce, same key.
        assert_eq!(cache.check_and_insert("ak2", "n1", T0 + 1), Ok(()));
        assert_eq!(cache.check_and_insert("ak1", "n2", T0 + 1), Ok(()));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn expires_after_900s() {
        let cache = NonceCache::new();
        cache.check_and_insert("ak", "n", T0).unwrap();
        assert_eq!(
            cache.check_and_insert("ak", "n", T0 + 900),
            Err(AuthError::SignatureNonceUsed)
        );
        // The rejected reuse did not refresh it.
        assert_eq!(cache.check_and_insert("ak", "n", T0 + 901), Ok(()));
        // …and now it is remembered from T0 + 901.
        assert_eq!(
            cache.check_and_insert("ak", "n", T0 + 1801),
            Err(AuthError::SignatureNonceUsed)
        );
        assert_eq!(cache.check_and_insert("ak", "n", T0 + 1802), Ok(()));
    }

    #[test]
    fn clock_going_backwards_still_rejects() {
        let cache = NonceCache::new();
        cache.check_and_insert("ak", "n", T0).unwrap();
        assert_eq!(
            cache.check_and_insert("ak", "n", T0 - 5),
            Err(AuthError::SignatureNonceUsed)
        );
    }

    #[test]
    fn expired_entries_and_keys_are_evicted() {
        // A short TTL so that expiry happens between sweeps (60 s apart).
        let cache = NonceCache::with_limits(30, 100);
        for i in 0..10 {
            cache.check_and_insert("old", &format!("n{i}"), T0).unwrap();
        }
        cache.check_and_insert("other", "x", T0).unwrap();
        assert_eq!(cache.len(), 11);
        // Per-key lazy eviction (no sweep yet: T0 + 31 < T0 + 60).
        cache.check_and_insert("old", "fresh", T0 + 31).unwrap();
        assert_eq!(cache.keys.get("old").unwrap().seen.len(), 1);
        assert_eq!(cache.len(), 2);
        // The global sweep drops expired keys entirely.
        cache.check_and_insert("new", "y", T0 + 100).unwrap();
        assert!(cache.keys.get("other").is_none());
        assert!(cache.keys.get("old").is_none());
        assert_eq!(cache.len(), 1);
        assert!(!cache.is_empty());
    }

    #[test]
    fn per_key_cap_evicts_oldest_first() {
        let cache = NonceCache::with_limits(900, 3);
        for (i, n) in ["a", "b", "c", "d"].into_iter().enumerate() {
            cache.check_and_insert("ak", n, T0 + i as i64).unwrap();
        }
        assert_eq!(cache.len(), 3);
        // `a` was evicted (a replay slips through once the cap is hit), the rest remain.
        assert_eq!(cache.check_and_insert("ak", "a", T0 + 10), Ok(()));
        assert_eq!(
            cache.check_and_insert("ak", "d", T0 + 10),
            Err(AuthError::SignatureNonceUsed)
        );
        assert_eq!(cache.check_and_insert("ak", "b", T0 + 10), Ok(()));
        // Other keys have their own budget.
        assert_eq!(cache.check_and_insert("ak2", "c", T0 + 10), Ok(()));
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn concurrent_inserts_of_one_nonce_admit_exactly_one() {
        let cache = Arc::new(NonceCache::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || cache.check_and_insert("ak", "same", T0).is_ok())
            })
            .collect();
        let admitted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(admitted, 1);
    }
}
