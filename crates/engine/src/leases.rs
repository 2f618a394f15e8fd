//! Leased operations (docs/cluster.md, "Leases and takeover"). On a shared store an
//! operation runs only on the node that holds its lease: the node that accepts it takes the
//! lease in the same commit, renews it every third of its TTL, and gives it up when the
//! operation ends. When a node dies its leases expire; any node's lease tick then takes the
//! operation over (the store hands each expired lease to one node, with the next fence),
//! reads the operation, its instance and its guest back, and resumes from the last committed
//! step. Every step a runner records carries the fence it holds: a node that lost its lease
//! (stalled past the TTL, cut off from the database) has its next write refused and stops
//! before touching the guest again.
//!
//! On a store that is not shared (SQLite, one process) there are no leases: start-up resumes
//! every unfinished operation, as before.

use crate::{Engine, store_err};
use nubis_core::{DomainError, OpState, Operation};
use nubis_store::Write;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a lease lasts without renewal, by default (`--lease-ttl`).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The shortest TTL accepted: renewals every third of it must stay well apart.
pub const MIN_LEASE_TTL: Duration = Duration::from_millis(600);
/// Operations taken over per round; the next round takes more.
const TAKE_OVER_PAGE: usize = 64;
/// How often a node looks for expired leases (and renews, at the latest every third of the
/// TTL).
const TAKE_OVER_EVERY: Duration = Duration::from_secs(1);

/// The fence a runner holds its operation's lease by; `None` on a store without leases.
pub(crate) type Lease = Option<u64>;

/// The leases this node holds.
#[derive(Debug)]
pub(crate) struct Leases {
    /// Fences by operation.
    held: parking_lot::Mutex<HashMap<Uuid, u64>>,
    ttl: Duration,
}

impl Leases {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            held: Default::default(),
            ttl: ttl.max(MIN_LEASE_TTL),
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

impl Engine {
    fn leased(&self) -> bool {
        self.inner.store.shared()
    }

    /// The lease writes of operations being accepted (with them, in one commit).
    pub(crate) fn lease_writes<'a>(
        &self,
        ops: impl IntoIterator<Item = &'a Operation>,
    ) -> Vec<Write> {
        if !self.leased() {
            return Vec::new();
        }
        let ttl_ms = self.inner.leases.ttl_ms();
        ops.into_iter()
            .map(|op| Write::Lease {
                operation: op.id,
                ttl_ms,
            })
            .collect()
    }

    /// After the acceptance committed: this node holds the new operations' leases (fence 1).
    pub(crate) fn hold_new<'a>(&self, ops: impl IntoIterator<Item = &'a Operation>) {
        if !self.leased() {
            return;
        }
        let mut held = self.inner.leases.held.lock();
        for op in ops {
            held.insert(op.id, 1);
        }
    }

    /// The lease a runner of `op` starts under: `Some(None)` on a store without leases,
    /// `None` when this node does not hold it.
    pub(crate) fn lease_of(&self, op: Uuid) -> Option<Lease> {
        if !self.leased() {
            return Some(None);
        }
        self.inner.leases.held.lock().get(&op).map(|f| Some(*f))
    }

    /// The precondition a runner's commit carries: the fence it started under. `None` when
    /// this node no longer holds that lease (lost, or lost and taken back by a newer runner):
    /// the runner stops without committing.
    pub(crate) fn fence_write(&self, op: Uuid, lease: Lease) -> Option<Option<Write>> {
        let Some(fence) = lease else {
            return Some(None);
        };
        let held = self.inner.leases.held.lock().get(&op).copied();
        (held == Some(fence)).then_some(Some(Write::Fence {
            operation: op,
            fence,
        }))
    }

    /// The runner of `op` under `lease` stopped: that lease (if this node still holds it) is
    /// no longer renewed. An operation that ended gave its row up in its last commit.
    pub(crate) fn release_lease(&self, op: Uuid, lease: Lease) {
        let mut held = self.inner.leases.held.lock();
        if lease.is_some() && held.get(&op).copied() == lease {
            held.remove(&op);
        }
    }

    /// Another node took `op` over: stop running it here and show it as that node's.
    pub(crate) fn lost_lease(&self, op: Uuid, lease: Lease) {
        tracing::warn!(%op, "lost the operation's lease to another node; stopping");
        self.release_lease(op, lease);
        self.mark_foreign(op);
    }

    /// Before a step on a guest whose whole state is the store's copy (the sim): carry on
    /// from what the last commit wrote, wherever it ran.
    pub(crate) async fn refresh_guest(&self, id: Uuid) -> Result<(), DomainError> {
        if !self.leased() || !self.inner.driver.portable() {
            return Ok(());
        }
        if let Some(data) = self.inner.store.guest(id).await.map_err(store_err)? {
            self.inner
                .driver
                .restore(id, data)
                .map_err(|e| DomainError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// Before reading or staging on a guest the driver keeps (admin inspection, next-boot
    /// changes): on a shared store, the store's copy, read between steps (under the
    /// instance's gate, so a step in flight here is not undone in memory before its commit).
    pub(crate) async fn settled_guest(&self, id: Uuid) -> Result<(), DomainError> {
        // An agent's VM: ask its agent (a no-op for this process's own VMs).
        self.inner.driver.refresh(id).await;
        if !self.leased() || !self.inner.driver.portable() {
            return Ok(());
        }
        let gate = self.gate(id);
        let _turn = gate.lock().await;
        self.refresh_guest(id).await
    }

    /// Renew, then take over: every [`TAKE_OVER_EVERY`] (and every third of the TTL at the
    /// latest). The first round runs at once: a node starting up adopts what a dead node
    /// left.
    pub(crate) fn spawn_lease_tick(&self) {
        if !self.leased() {
            return;
        }
        let every = TAKE_OVER_EVERY.min(self.inner.leases.ttl / 3);
        self.spawn_tick(every, |e: Engine| async move {
            if let Err(err) = e.lease_round().await {
                tracing::warn!(error = %err, "renewing or taking over operation leases failed");
            }
        });
    }

    /// Run `round` now and then every `every`, as long as the engine lives (the task holds
    /// it only while a round runs).
    pub(crate) fn spawn_tick<F, R>(&self, every: std::time::Duration, round: F)
    where
        F: Fn(Engine) -> R + Send + 'static,
        R: std::future::Future<Output = ()> + Send,
    {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                round(Engine { inner }).await;
                tokio::time::sleep(every).await;
            }
        });
    }

    async fn lease_round(&self) -> Result<(), DomainError> {
        let leases = &self.inner.leases;
        let held: Vec<(Uuid, u64)> = leases.held.lock().iter().map(|(k, v)| (*k, *v)).collect();
        if !held.is_empty() {
            let lost = self
                .inner
                .store
                .renew_leases(&held, leases.ttl_ms())
                .await
                .map_err(store_err)?;
            for op in lost {
                // Unless released or re-taken meanwhile.
                let fence = leases.held.lock().get(&op).copied();
                if held.contains(&(op, fence.unwrap_or(0))) {
                    self.lost_lease(op, fence);
                }
            }
        }
        let taken = self
            .inner
            .store
            .take_over_leases(leases.ttl_ms(), TAKE_OVER_PAGE)
            .await
            .map_err(store_err)?;
        for (op, fence) in taken {
            if let Err(e) = self.adopt(op, fence).await {
                // Held but not running: renewed until released. Give it up so another round
                // (here or elsewhere) tries again once it expires.
                tracing::error!(%op, error = %e, "cannot resume a taken-over operation");
                self.release_lease(op, Some(fence));
            }
        }
        Ok(())
    }

    /// Resume an operation whose lease this node just took over, from its last committed
    /// step.
    async fn adopt(&self, id: Uuid, fence: u64) -> Result<(), DomainError> {
        self.inner.leases.held.lock().insert(id, fence);
        let stored = self
            .inner
            .store
            .operations(&[id])
            .await
            .map_err(store_err)?;
        let Some(mut op) = stored.into_iter().find(|o| o.id == id) else {
            self.release_lease(id, Some(fence));
            return Ok(());
        };
        if op.state != OpState::Operating {
            // Ended between the lease's expiry and now.
            self.release_lease(id, Some(fence));
            return Ok(());
        }
        self.reload_instances(&[op.instance]).await?;
        self.refresh_guest(op.instance).await?;
        tracing::info!(op = %id, fence, instance = %op.instance, step = op.steps_done, "taking over an operation whose lease expired");
        op.attempts = op.attempts.saturating_add(1);
        self.run_here(op);
        self.spawn_runner(id);
        Ok(())
    }
}
