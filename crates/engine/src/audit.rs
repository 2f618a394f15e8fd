//! The audit trail (docs/audit.md): events are committed through the store's grouped writer
//! like any accepted change; lookups read the store; old events are swept.

use crate::{Engine, store_err};
use nubis_core::audit::{AuditEvent, AuditQuery};
use nubis_core::{DomainError, Principal};
use nubis_store::Write;
use std::time::Duration;

/// Events deleted per sweep statement: the writer is never held for long.
const SWEEP_BATCH: usize = 5_000;

/// Read events committed after their replies at most this many at a time; past it a read's
/// reply waits for its event's commit like a change's (bounded memory, backpressure).
pub(crate) const READS_IN_FLIGHT: usize = 4096;

/// Read events accepted but not yet handed to the writer, and whether a flusher runs.
#[derive(Default)]
pub struct Pending {
    writes: Vec<Write>,
    flushing: bool,
}

impl Engine {
    /// Commits one event. A change's (and a refusal's or an unclassified request's) caller
    /// waits for the group commit that carries it: an answered change is in the trail. A
    /// read's is committed after its reply (docs/audit.md, "Durability and cost"): a lookup
    /// by ID is not held up by an fsync, and this node's trail queries wait for it first.
    pub async fn record_audit(&self, event: AuditEvent) -> Result<(), DomainError> {
        let read = event.read_only == Some(true);
        let write = Write::AuditEvent(Box::new(event));
        if read && let Ok(permit) = self.inner.audit_reads.try_acquire() {
            // Given back in bulk by the flusher once its batch is committed.
            permit.forget();
            let start = {
                let mut pending = self.inner.audit_pending.lock();
                pending.writes.push(write);
                !std::mem::replace(&mut pending.flushing, true)
            };
            if start {
                let engine = self.clone();
                tokio::spawn(async move { engine.flush_reads().await });
            }
            return Ok(());
        }
        self.commit_audit(vec![write]).await
    }

    /// The one flusher: hands every read event waiting to the writer as one job, and again
    /// while more came during its commit (each batch as large as the writer's pace makes it:
    /// one task, one job and one wake-up a batch instead of one an event).
    async fn flush_reads(&self) {
        loop {
            let batch = {
                let mut pending = self.inner.audit_pending.lock();
                if pending.writes.is_empty() {
                    pending.flushing = false;
                    return;
                }
                std::mem::take(&mut pending.writes)
            };
            let n = batch.len();
            let _ = self.commit_audit(batch).await;
            self.inner.audit_reads.add_permits(n);
        }
    }

    /// Commits events; a failure is logged and counted here, for both paths (the reply is
    /// already decided: a lost event is never hidden).
    async fn commit_audit(&self, writes: Vec<Write>) -> Result<(), DomainError> {
        let n = writes.len() as u64;
        let done = self.commit(writes).await;
        if let Err(e) = &done {
            tracing::error!(error = %e, events = n, "audit events not recorded");
            metrics::counter!("nubis_audit_failures_total").increment(n);
        }
        done
    }

    /// Waits until every read event this node accepted before the call is committed (or
    /// failed): a trail query then sees them all.
    async fn audit_barrier(&self) {
        // Every permit back means nothing in flight; later reads queue behind this waiter.
        let all = u32::try_from(READS_IN_FLIGHT).unwrap_or(u32::MAX);
        let _ = self.inner.audit_reads.acquire_many(all).await;
    }

    /// The principal and secret of a temporary credential whose token binds it but whose
    /// expiry has passed: the one refusal at authentication the trail still attributes
    /// (docs/audit.md). The caller must still verify the request's signature with the secret.
    /// `None` when the token does not bind the credential (or it is unknown).
    pub fn expired_temp_credential(
        &self,
        id: &str,
        token: Option<&str>,
    ) -> Option<(Principal, String)> {
        // Checked as of the epoch's start, the expiry never refuses; every other check does.
        self.temp_credential(id, token, 0).ok()
    }

    /// The caller's own account's events matching `q` (whatever account `q` names: a trail
    /// is its account's alone, the bootstrap admin's included; the admin API reads every
    /// account's with [`Engine::admin_audit_events`]). At most `q.limit + 1` events.
    pub async fn audit_events(
        &self,
        p: &Principal,
        mut q: AuditQuery,
    ) -> Result<Vec<AuditEvent>, DomainError> {
        q.account = Some(p.account.clone());
        self.admin_audit_events(q).await
    }

    /// How many of the caller's own account's events match `q` in all (its cursor and page
    /// size aside): CloudAudit's `TotalCount`.
    pub async fn count_audit_events(
        &self,
        p: &Principal,
        mut q: AuditQuery,
    ) -> Result<u64, DomainError> {
        q.account = Some(p.account.clone());
        self.check_store()?;
        self.audit_barrier().await;
        self.inner
            .store
            .count_audit_events(q)
            .await
            .map_err(store_err)
    }

    /// Events of the account `q` names, or of every account.
    pub async fn admin_audit_events(&self, q: AuditQuery) -> Result<Vec<AuditEvent>, DomainError> {
        self.check_store()?;
        self.audit_barrier().await;
        self.inner.store.audit_events(q).await.map_err(store_err)
    }

    /// Deletes every event older than `before_ms`; returns how many.
    pub async fn sweep_audit(&self, before_ms: i64) -> Result<usize, DomainError> {
        let mut total = 0;
        loop {
            self.check_store()?;
            let n = self
                .inner
                .store
                .sweep_audit(before_ms, SWEEP_BATCH)
                .await
                .map_err(store_err)?;
            total += n;
            if n < SWEEP_BATCH {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Sweeps events older than `retention` now and then every `every`, for as long as the
    /// runtime lives.
    pub fn spawn_audit_sweeper(&self, retention: Duration, every: Duration) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let cut = crate::now_ms()
                    .saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
                match engine.sweep_audit(cut).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "audit events past retention swept"),
                    Err(e) => tracing::warn!(error = %e, "audit retention sweep failed"),
                }
            }
        });
    }
}
