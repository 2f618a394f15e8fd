//! The cluster-wide state of a shared store (docs/postgres.md "Cluster-wide state"), for the
//! dialects: signature nonces and rate windows (behind nubis-auth's [`SharedNonces`] and
//! [`SharedWindows`]) and Keystone tokens. On SQLite (one process) there is no [`Cluster`]:
//! the dialects keep their in-memory paths.

use crate::{CLIENT_TOKEN_TTL_MS, Engine, now_ms, store_err};
use nubis_auth::nonce::{NonceError, SharedNonces};
use nubis_auth::ratelimit::SharedWindows;
use nubis_core::DomainError;
use nubis_store::{ClusterState, NonceSpend, Store, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Minimum spacing between two sweeps of expired rows by this process.
const SWEEP_EVERY_MS: i64 = 60_000;
/// When this process last swept (ms); one process serves one engine.
static LAST_SWEEP_MS: AtomicI64 = AtomicI64::new(0);

/// A handle on the cluster's state in the store; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    store: Arc<dyn Store>,
}

impl Engine {
    /// The cluster's state, when the store is shared by several nodes (PostgreSQL).
    pub fn cluster(&self) -> Option<Cluster> {
        let store = &self.inner.store;
        (store.shared() && store.cluster().is_some()).then(|| Cluster {
            store: Arc::clone(store),
        })
    }
}

impl Cluster {
    fn state(&self) -> Result<&dyn ClusterState, StoreError> {
        self.store
            .cluster()
            .ok_or_else(|| StoreError::Unavailable("the store keeps no cluster state".into()))
    }

    /// At most once a minute per process, drop expired rows (in the background: the request
    /// that triggers it does not wait).
    fn maybe_sweep(&self) {
        let now = now_ms();
        let last = LAST_SWEEP_MS.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY_MS
            || LAST_SWEEP_MS
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let store = Arc::clone(&self.store);
        tokio::spawn(async move {
            if let Some(state) = store.cluster() {
                match state
                    .sweep_cluster_state(now, now.saturating_sub(CLIENT_TOKEN_TTL_MS))
                    .await
                {
                    Ok(n) => tracing::debug!(rows = n, "swept expired cluster state"),
                    Err(e) => tracing::warn!(error = %e, "sweeping expired cluster state"),
                }
            }
        });
    }

    /// Store a Keystone token (the hex digest of its ID, never the ID), keeping at most
    /// `max_per_user` live ones for `user` (the oldest go).
    #[allow(clippy::too_many_arguments)] // the token's columns, the clock and the bound
    pub async fn put_keystone_token(
        &self,
        digest: &str,
        user: &str,
        issued_ms: i64,
        expires_at: i64,
        data: &str,
        now: i64,
        max_per_user: usize,
    ) -> Result<(), DomainError> {
        self.maybe_sweep();
        self.state()
            .map_err(store_err)?
            .put_keystone_token(digest, user, issued_ms, expires_at, data, now, max_per_user)
            .await
            .map_err(store_err)
    }

    /// A live token's document by digest.
    pub async fn keystone_token(
        &self,
        digest: &str,
        now: i64,
    ) -> Result<Option<String>, DomainError> {
        self.state()
            .map_err(store_err)?
            .keystone_token(digest, now)
            .await
            .map_err(store_err)
    }

    /// Forget a token on every node; whether it was stored.
    pub async fn revoke_keystone_token(&self, digest: &str) -> Result<bool, DomainError> {
        self.state()
            .map_err(store_err)?
            .revoke_keystone_token(digest)
            .await
            .map_err(store_err)
    }

    /// Live tokens of `user`.
    pub async fn keystone_tokens_of(&self, user: &str, now: i64) -> Result<usize, DomainError> {
        self.state()
            .map_err(store_err)?
            .keystone_tokens_of(user, now)
            .await
            .map_err(store_err)
    }
}

#[async_trait::async_trait]
impl SharedNonces for Cluster {
    async fn spend(
        &self,
        scope: &'static str,
        access_key_id: &str,
        nonce: &str,
        now: i64,
        expires_at: i64,
        max_per_key: usize,
    ) -> Result<Result<(), NonceError>, String> {
        self.maybe_sweep();
        let spent = self
            .state()
            .map_err(|e| e.to_string())?
            .spend_nonce(scope, access_key_id, nonce, now, expires_at, max_per_key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(match spent {
            NonceSpend::Spent => Ok(()),
            NonceSpend::Used => Err(NonceError::Used),
            NonceSpend::Full => Err(NonceError::Full),
        })
    }
}

#[async_trait::async_trait]
impl SharedWindows for Cluster {
    async fn hit(&self, account: &str, action: &str, window_s: i64) -> Result<u64, String> {
        self.maybe_sweep();
        self.state()
            .map_err(|e| e.to_string())?
            .count_request(account, action, window_s)
            .await
            .map_err(|e| e.to_string())
    }
}
