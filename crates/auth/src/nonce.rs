//! Replay protection: a memory of (key, nonce) pairs for as long as the request that spent the
//! nonce could be accepted again. Alibaba (spec §3c: 15 minutes, `SignatureNonceUsed`) and
//! Tencent's legacy signatures (5 minutes, docs/hostile-input.md) each keep one.
//!
//! Several nodes on one database share what they spend through [`SharedNonces`] (the store's
//! `signature_nonces` table, docs/postgres.md "Cluster-wide state"): a request replayed to
//! another node is refused there too. The in-memory cache stays in front of it, so a replay to
//! the same node is refused before the request costs any rate budget.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use dashmap::DashMap;

/// Why a nonce was refused; each dialect answers with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// The (key, nonce) pair is still remembered: a replay.
    #[error("the nonce was already used")]
    Used,
    /// The key already holds its maximum of live nonces (never evicted while live).
    #[error("too many distinct nonces for this key within the replay window")]
    Full,
}

/// Where several nodes spend nonces together (the store, on a shared database).
#[async_trait::async_trait]
pub trait SharedNonces: Send + Sync {
    /// Spends `nonce` of `access_key_id` in `scope` until `expires_at` (unix seconds), or
    /// refuses it as [`NonceCache::check_and_insert`] does; `Err` when the store cannot say.
    async fn spend(
        &self,
        scope: &'static str,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
        max_per_key: usize,
    ) -> Result<Result<(), NonceError>, String>;
}

/// Default number of live nonces one AccessKeyId may hold. At the documented per-action rate
/// limits (20–40 requests/s) one client reaches it only by sustaining over 110 signed
/// requests/s for 15 minutes; memory stays under ~25 MB per key at the longest nonces.
pub const DEFAULT_MAX_PER_KEY: usize = 100_000;
/// Minimum spacing (seconds of `now`) between sweeps over all keys.
const SWEEP_INTERVAL_SECS: i64 = 60;

/// Remembers `(key, nonce)` pairs to reject replays with [`NonceError::Used`].
///
/// A nonce is remembered until `max(now, request timestamp) + window`, where `window` is the
/// dialect's timestamp tolerance: as long as the request that spent it can pass the
/// dialect's timestamp check (a client clock up to `window` ahead included), and at least
/// `window` after it was spent. A nonce that is still live is **never** evicted: when a key
/// holds its maximum ([`DEFAULT_MAX_PER_KEY`]) of live nonces, a new one is refused with
/// [`NonceError::Full`] (a throttling error) instead, so memory stays bounded without ever
/// letting a captured request through. Expired entries are dropped on
/// every call for the same key and by a sweep over all keys at most once a minute.
///
/// Record only requests whose signature verified and that passed the rate limiter, so that
/// neither unauthenticated nor throttled requests fill the cache ([`NonceCache::is_used`]
/// answers a replay earlier without recording anything).
#[derive(Debug)]
pub struct NonceCache {
    window: i64,
    max_per_key: usize,
    keys: DashMap<String, KeyNonces>,
    last_sweep: AtomicI64,
    /// The cluster's record and this cache's name in it (the dialect), on a shared store.
    shared: Option<(Arc<dyn SharedNonces>, &'static str)>,
}

impl std::fmt::Debug for dyn SharedNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedNonces")
    }
}

/// Nonces of one AccessKeyId: expiry by nonce, plus a min-heap of (expiry, nonce) to drop
/// them in expiry order. Every `expiry` entry has exactly one heap entry: expired entries are
/// dropped before any insert, so a nonce is only re-inserted once its old entry is gone.
#[derive(Debug, Default)]
struct KeyNonces {
    expiry: HashMap<Arc<str>, i64>,
    heap: BinaryHeap<Reverse<(i64, Arc<str>)>>,
}

impl KeyNonces {
    /// Drops entries whose expiry is before `now`.
    fn evict_expired(&mut self, now: i64) {
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at >= now {
                break;
            }
            if let Some(Reverse((at, nonce))) = self.heap.pop()
                && self.expiry.get(&nonce) == Some(&at)
            {
                self.expiry.remove(&nonce);
            }
        }
    }

    fn is_live(&self, nonce: &str, now: i64) -> bool {
        self.expiry.get(nonce).is_some_and(|at| *at >= now)
    }
}

impl Default for NonceCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceCache {
    /// Alibaba's cache: a 900 s window, at most [`DEFAULT_MAX_PER_KEY`] live nonces per key.
    pub fn new() -> Self {
        Self::with_limits(crate::aliyun::MAX_CLOCK_SKEW_SECS, DEFAULT_MAX_PER_KEY)
    }

    /// A cache for a timestamp tolerance of `window_secs`, holding at most `max_per_key`
    /// (at least 1) live nonces per key.
    pub fn with_limits(window_secs: u64, max_per_key: usize) -> Self {
        Self {
            window: i64::try_from(window_secs).unwrap_or(i64::MAX),
            max_per_key: max_per_key.max(1),
            keys: DashMap::new(),
            last_sweep: AtomicI64::new(i64::MIN),
            shared: None,
        }
    }

    /// Spend nonces in `shared` too, under `scope` (the dialect's name): every node of the
    /// cluster refuses a nonce any of them spent.
    pub fn with_shared(mut self, shared: Arc<dyn SharedNonces>, scope: &'static str) -> Self {
        self.shared = Some((shared, scope));
        self
    }

    /// [`NonceCache::check_and_insert`], then, on a shared store, the cluster's record: the
    /// one to call when a request is admitted. If the store cannot answer, the node's own
    /// record decides (a replay to this node is still refused; logged).
    pub async fn spend(
        &self,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        request_ts: i64,
    ) -> Result<(), NonceError> {
        self.check_and_insert(access_key_id, nonce, now, request_ts)?;
        let Some((shared, scope)) = &self.shared else {
            return Ok(());
        };
        let until = now.max(request_ts).saturating_add(self.window);
        match shared
            .spend(scope, access_key_id, nonce, now, until, self.max_per_key)
            .await
        {
            Ok(spent) => spent,
            Err(e) => {
                tracing::warn!(error = %e, "the cluster's nonce record is unavailable; this node's decides");
                Ok(())
            }
        }
    }

    /// [`NonceError::Used`] if the pair is live at `now`; records nothing.
    pub fn is_used(&self, access_key_id: &str, nonce: &str, now: i64) -> Result<(), NonceError> {
        match self.keys.get(access_key_id) {
            Some(nonces) if nonces.is_live(nonce, now) => Err(NonceError::Used),
            _ => Ok(()),
        }
    }

    /// Records `nonce` for `access_key_id`, spent at `now` by a request stamped `request_ts`
    /// (both unix seconds), or fails with [`NonceError::Used`] if the pair is still live, or
    /// with [`NonceError::Full`] if the key already holds its maximum of live nonces. A
    /// refused call changes nothing.
    pub fn check_and_insert(
        &self,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        request_ts: i64,
    ) -> Result<(), NonceError> {
        self.maybe_sweep(now);

        let mut entry = match self.keys.get_mut(access_key_id) {
            Some(entry) => entry,
            None => self.keys.entry(access_key_id.to_owned()).or_default(),
        };
        let nonces = entry.value_mut();
        nonces.evict_expired(now);
        if nonces.is_live(nonce, now) {
            return Err(NonceError::Used);
        }
        if nonces.expiry.len() >= self.max_per_key {
            return Err(NonceError::Full);
        }
        let until = now.max(request_ts).saturating_add(self.window);
        let nonce: Arc<str> = Arc::from(nonce);
        nonces.expiry.insert(Arc::clone(&nonce), until);
        nonces.heap.push(Reverse((until, nonce)));
        Ok(())
    }

    /// Number of remembered (key, nonce) pairs, expired ones included until evicted.
    pub fn len(&self) -> usize {
        self.keys.iter().map(|e| e.value().expiry.len()).sum()
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
            nonces.evict_expired(now);
            !nonces.expiry.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_704_110_400;

    /// Nonce "n" of key "ak", received at `now`, stamped `ts`.
    fn ak_n(cache: &NonceCache, now: i64, ts: i64) -> Result<(), NonceError> {
        cache.check_and_insert("ak", "n", now, ts)
    }

    #[test]
    fn reuse_rejected_other_key_ok() {
        let cache = NonceCache::new();
        assert_eq!(cache.check_and_insert("ak1", "n1", T0, T0), Ok(()));
        assert_eq!(
            cache.check_and_insert("ak1", "n1", T0 + 1, T0 + 1),
            Err(NonceError::Used)
        );
        // Same nonce, other key; other nonce, same key.
        assert_eq!(cache.check_and_insert("ak2", "n1", T0 + 1, T0 + 1), Ok(()));
        assert_eq!(cache.check_and_insert("ak1", "n2", T0 + 1, T0 + 1), Ok(()));
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn is_used_reports_without_recording() {
        let cache = NonceCache::new();
        assert_eq!(cache.is_used("ak", "n", T0), Ok(()));
        assert!(cache.is_empty());
        ak_n(&cache, T0, T0).unwrap();
        assert_eq!(cache.is_used("ak", "n", T0 + 900), Err(NonceError::Used));
        assert_eq!(cache.is_used("ak", "n", T0 + 901), Ok(()));
        assert_eq!(cache.is_used("other", "n", T0), Ok(()));
    }

    #[test]
    fn expires_after_900s() {
        let cache = NonceCache::new();
        ak_n(&cache, T0, T0).unwrap();
        assert_eq!(ak_n(&cache, T0 + 900, T0 + 900), Err(NonceError::Used));
        // The rejected reuse did not refresh it.
        assert_eq!(ak_n(&cache, T0 + 901, T0 + 901), Ok(()));
        // …and now it is remembered from T0 + 901.
        assert_eq!(ak_n(&cache, T0 + 1801, T0 + 1801), Err(NonceError::Used));
        assert_eq!(ak_n(&cache, T0 + 1802, T0 + 1802), Ok(()));
    }

    #[test]
    fn a_request_stamped_ahead_stays_unreplayable_until_its_timestamp_expires() {
        // Stamped 900 s ahead: acceptable by its timestamp until T0 + 1800.
        let cache = NonceCache::new();
        ak_n(&cache, T0, T0 + 900).unwrap();
        assert_eq!(ak_n(&cache, T0 + 1800, T0 + 900), Err(NonceError::Used));
        assert_eq!(ak_n(&cache, T0 + 1801, T0 + 1801), Ok(()));
    }

    #[test]
    fn the_window_is_the_dialects() {
        // Tencent: 300 s.
        let cache = NonceCache::with_limits(300, 10);
        cache.check_and_insert("id", "n", T0, T0).unwrap();
        assert_eq!(
            cache.check_and_insert("id", "n", T0 + 300, T0 + 300),
            Err(NonceError::Used)
        );
        assert_eq!(
            cache.check_and_insert("id", "n", T0 + 301, T0 + 301),
            Ok(())
        );
    }

    #[test]
    fn clock_going_backwards_still_rejects() {
        let cache = NonceCache::new();
        ak_n(&cache, T0, T0).unwrap();
        assert_eq!(ak_n(&cache, T0 - 5, T0 - 5), Err(NonceError::Used));
    }

    #[test]
    fn expired_entries_and_keys_are_evicted() {
        let cache = NonceCache::new();
        for i in 0..10 {
            cache
                .check_and_insert("old", &format!("n{i}"), T0, T0)
                .unwrap();
        }
        cache.check_and_insert("other", "x", T0, T0).unwrap();
        assert_eq!(cache.len(), 11);
        // A sweep at T0 + 890 finds nothing expired…
        cache
            .check_and_insert("x", "x", T0 + 890, T0 + 890)
            .unwrap();
        assert_eq!(cache.len(), 12);
        // …then per-key lazy eviction on the next call for that key (sweeps run at most once
        // a minute): `old` loses its ten, `other` keeps its expired one until the next sweep.
        cache
            .check_and_insert("old", "fresh", T0 + 901, T0 + 901)
            .unwrap();
        assert_eq!(cache.keys.get("old").unwrap().expiry.len(), 1);
        assert_eq!(cache.keys.get("old").unwrap().heap.len(), 1);
        assert_eq!(cache.len(), 3);
        // The global sweep drops expired keys entirely.
        cache
            .check_and_insert("new", "y", T0 + 1900, T0 + 1900)
            .unwrap();
        assert!(cache.keys.get("other").is_none());
        assert!(cache.keys.get("old").is_none());
        assert!(cache.keys.get("x").is_none());
        assert_eq!(cache.len(), 1);
        assert!(!cache.is_empty());
    }

    #[test]
    fn a_full_key_refuses_new_nonces_and_never_forgets_live_ones() {
        let cache = NonceCache::with_limits(900, 3);
        for (i, n) in ["a", "b", "c"].into_iter().enumerate() {
            let t = T0 + i as i64;
            cache.check_and_insert("ak", n, t, t).unwrap();
        }
        assert_eq!(
            cache.check_and_insert("ak", "d", T0 + 10, T0 + 10),
            Err(NonceError::Full)
        );
        // The oldest is still remembered.
        assert_eq!(
            cache.check_and_insert("ak", "a", T0 + 10, T0 + 10),
            Err(NonceError::Used)
        );
        // Other keys have their own budget.
        assert_eq!(cache.check_and_insert("ak2", "a", T0 + 10, T0 + 10), Ok(()));
        // Once `a` expires there is room again.
        assert_eq!(
            cache.check_and_insert("ak", "d", T0 + 901, T0 + 901),
            Ok(())
        );
        assert_eq!(cache.len(), 4);
    }

    /// Regression (issue 10): nonces used to be evicted by count, so a captured request was
    /// accepted again once 100,000 newer nonces had been seen within the window.
    #[test]
    fn replay_after_100_000_newer_nonces_is_refused() {
        let cache = NonceCache::new();
        cache.check_and_insert("ak", "captured", T0, T0).unwrap();
        let mut refused = 0;
        for i in 0..DEFAULT_MAX_PER_KEY {
            if cache
                .check_and_insert("ak", &format!("n{i}"), T0 + 1, T0 + 1)
                .is_err()
            {
                refused += 1;
            }
        }
        assert_eq!(refused, 1, "the key's budget is full after 99,999 more");
        assert_eq!(
            cache.check_and_insert("ak", "captured", T0 + 2, T0),
            Err(NonceError::Used)
        );
    }

    /// A stand-in for the store: one record several caches (nodes) share.
    #[derive(Default)]
    struct Cluster(parking_lot::Mutex<HashMap<(String, String), i64>>);

    #[async_trait::async_trait]
    impl SharedNonces for Cluster {
        async fn spend(
            &self,
            scope: &'static str,
            key: &str,
            nonce: &str,
            now: i64,
            expires_at: i64,
            _max: usize,
        ) -> Result<Result<(), NonceError>, String> {
            let mut m = self.0.lock();
            let k = (format!("{scope}/{key}"), nonce.to_string());
            if m.get(&k).is_some_and(|at| *at >= now) {
                return Ok(Err(NonceError::Used));
            }
            m.insert(k, expires_at);
            Ok(Ok(()))
        }
    }

    struct Down;

    #[async_trait::async_trait]
    impl SharedNonces for Down {
        async fn spend(
            &self,
            _: &'static str,
            _: &str,
            _: &str,
            _: i64,
            _: i64,
            _: usize,
        ) -> Result<Result<(), NonceError>, String> {
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
    fn a_nonce_spent_on_one_node_is_refused_on_another() {
        let cluster: Arc<Cluster> = Arc::default();
        let a = NonceCache::new().with_shared(cluster.clone(), "aliyun");
        let b = NonceCache::new().with_shared(cluster.clone(), "aliyun");
        let tencent = NonceCache::new().with_shared(cluster.clone(), "tencent");
        block_on(async {
            assert_eq!(a.spend("ak", "n", T0, T0).await, Ok(()));
            // B has never seen it: its own record says nothing, the cluster's refuses.
            assert_eq!(b.is_used("ak", "n", T0), Ok(()));
            assert_eq!(b.spend("ak", "n", T0 + 1, T0).await, Err(NonceError::Used));
            // Same node: refused by its own record first.
            assert_eq!(a.spend("ak", "n", T0 + 1, T0).await, Err(NonceError::Used));
            // Another dialect's namespace is its own.
            assert_eq!(tencent.spend("ak", "n", T0 + 1, T0).await, Ok(()));
            // The cluster remembers it for the window from max(now, timestamp).
            let until = T0 + 900;
            assert_eq!(
                cluster.0.lock().get(&("aliyun/ak".into(), "n".into())),
                Some(&until)
            );
        });
    }

    #[test]
    fn a_store_that_cannot_answer_leaves_the_nodes_own_record() {
        let c = NonceCache::new().with_shared(Arc::new(Down), "aliyun");
        block_on(async {
            assert_eq!(c.spend("ak", "n", T0, T0).await, Ok(()));
            assert_eq!(c.spend("ak", "n", T0, T0).await, Err(NonceError::Used));
        });
    }

    #[test]
    fn concurrent_inserts_of_one_nonce_admit_exactly_one() {
        let cache = Arc::new(NonceCache::new());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || cache.check_and_insert("ak", "same", T0, T0).is_ok())
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
