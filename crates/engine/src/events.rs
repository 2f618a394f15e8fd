//! System events (docs/system-events.md): scheduled, canceled and listed here; their status
//! is derived in core ([`SystemEvent::status`]) from the stored record, the clock and the
//! instance's restarts. Nothing about them is kept in memory.

use crate::{Engine, now_ms, store_err};
use nubis_core::events::{
    EventKind, EventStatus, KEPT_AFTER_END_MS, MAX_PENDING_SIMULATED, SystemEvent, new_event_id,
};
use nubis_core::{Action, DomainError, OpState, Principal};
use nubis_store::Write;
use std::collections::HashMap;
use uuid::Uuid;

/// At most this many events are read for one listing (the newest published first).
pub const EVENT_WINDOW: usize = 10_000;

/// An event and its status now.
pub type EventView = (SystemEvent, EventStatus);

impl Engine {
    /// Schedule one simulated event of `kind` at `not_before_ms` on each of `instances`
    /// (resolved and authorized by the caller), in one commit; returns them in order.
    /// `Ok(None)`: the account would have more than [`MAX_PENDING_SIMULATED`] pending
    /// (counted before the commit among the newest [`EVENT_WINDOW`] events not yet due:
    /// concurrent requests may pass it together).
    pub async fn schedule_system_events(
        &self,
        p: &Principal,
        instances: &[Uuid],
        kind: EventKind,
        not_before_ms: i64,
    ) -> Result<Option<Vec<SystemEvent>>, DomainError> {
        let now = now_ms();
        let pending = self
            .inner
            .store
            .system_events(&p.account, None, now, EVENT_WINDOW)
            .await
            .map_err(store_err)?
            .iter()
            .filter(|e| e.simulated && e.canceled_at_ms.is_none())
            .count();
        if pending + instances.len() > MAX_PENDING_SIMULATED {
            return Ok(None);
        }
        let events: Vec<SystemEvent> = {
            let fleet = self.inner.fleet.lock();
            instances
                .iter()
                .map(|id| SystemEvent {
                    id: new_event_id(),
                    account: fleet
                        .instances
                        .get(id)
                        .map_or_else(|| p.account.clone(), |i| i.account.clone()),
                    instance: *id,
                    kind,
                    simulated: true,
                    published_at_ms: now,
                    not_before_ms,
                    canceled_at_ms: None,
                    generation: 1,
                })
                .collect()
        };
        let writes = events
            .iter()
            .map(|e| Write::SystemEvent(Box::new(e.clone())))
            .collect();
        self.commit(writes).await?;
        Ok(Some(events))
    }

    /// Cancel these events (read by [`Engine::system_events_by_id`] and found scheduled by
    /// the caller), in one commit. False: another writer rewrote one of them first (a
    /// concurrent cancel) and nothing was committed.
    pub async fn cancel_system_events(&self, events: &[SystemEvent]) -> Result<bool, DomainError> {
        self.check_store()?;
        let now = now_ms();
        let writes = events
            .iter()
            .map(|e| {
                Write::SystemEvent(Box::new(SystemEvent {
                    canceled_at_ms: Some(now),
                    generation: e.generation + 1,
                    ..e.clone()
                }))
            })
            .collect();
        match self.inner.store.commit(writes).await {
            Err(nubis_store::StoreError::Conflict(_)) => Ok(false),
            other => other.map(|()| true).map_err(store_err),
        }
    }

    /// The events of `p`'s account (on `instance`, or on every instance) that are pending or
    /// ended within the last 30 days, newest published first, with their status now.
    pub async fn system_events(
        &self,
        p: &Principal,
        instance: Option<Uuid>,
    ) -> Result<Vec<EventView>, DomainError> {
        let now = now_ms();
        let found = self
            .inner
            .store
            .system_events(
                &p.account,
                instance,
                now.saturating_sub(KEPT_AFTER_END_MS),
                EVENT_WINDOW,
            )
            .await
            .map_err(store_err)?;
        self.with_status(p, found, now).await
    }

    /// The events among `ids` that `p` may see, with their status now (unknown IDs left out).
    pub async fn system_events_by_id(
        &self,
        p: &Principal,
        ids: &[String],
    ) -> Result<Vec<EventView>, DomainError> {
        let found = self
            .inner
            .store
            .system_events_by_id(ids)
            .await
            .map_err(store_err)?;
        self.with_status(p, found, now_ms()).await
    }

    async fn with_status(
        &self,
        p: &Principal,
        events: Vec<SystemEvent>,
        now: i64,
    ) -> Result<Vec<EventView>, DomainError> {
        let visible: Vec<SystemEvent> = {
            let fleet = self.inner.fleet.lock();
            events
                .into_iter()
                .filter(|e| {
                    p.sees(&e.account)
                        && fleet
                            .instances
                            .get(&e.instance)
                            .is_none_or(|i| p.sees_project(i.project.as_deref()))
                })
                .collect()
        };
        // Restarts matter only to pending events a restart can avoid: read those instances'
        // operations once each.
        let mut restarts: HashMap<Uuid, Vec<i64>> = HashMap::new();
        for e in &visible {
            if !e.kind.avoidable_by_restart()
                || e.canceled_at_ms.is_some()
                || restarts.contains_key(&e.instance)
            {
                continue;
            }
            let times = self
                .operations_of(e.instance)
                .await?
                .iter()
                .filter(|o| {
                    o.state == OpState::Success
                        && matches!(o.action, Action::Reboot | Action::Start)
                })
                .filter_map(|o| o.finished_at_ms)
                .collect();
            restarts.insert(e.instance, times);
        }
        Ok(visible
            .into_iter()
            .map(|e| {
                let times = restarts.get(&e.instance).map_or(&[][..], Vec::as_slice);
                let status = e.status(now, times);
                (e, status)
            })
            .collect())
    }
}
