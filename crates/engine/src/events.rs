//! System events (docs/system-events.md): scheduled, canceled and listed here; their status
//! is derived in core ([`SystemEvent::status`]) from the stored record, the clock and the
//! instance's restarts. Nothing about them is kept in memory.

use crate::{Engine, now_ms, store_err};
use nubis_core::events::{
    EventCycle, EventKind, EventStatus, KEPT_AFTER_END_MS, MAX_PENDING_SIMULATED, SystemEvent,
    new_event_id,
};
use nubis_core::{Action, DomainError, Instance, OpState, Principal};
use nubis_store::{EventQuery, Write};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// At most this many events are read for one listing (the newest published first).
pub const EVENT_WINDOW: usize = 10_000;

/// An event, its status now, and its instance (the fleet's record, or for a released one
/// the store's last, while the store has it).
#[derive(Debug, Clone)]
pub struct EventView {
    pub event: SystemEvent,
    pub status: EventStatus,
    pub instance: Option<Arc<Instance>>,
}

/// Why [`Engine::cancel_system_events`] canceled nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelRefusal {
    /// No such simulated event for the caller (or outside the caller's scope).
    NotFound(String),
    /// The event has ended (or another request canceled it first): its status now.
    Ended(String, EventCycle),
}

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
            .system_events(EventQuery {
                account: p.account.clone(),
                instance: None,
                not_before_from: now,
                limit: EVENT_WINDOW,
            })
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

    /// Cancel the events `ids` (duplicates count once) of `p` that `in_scope` keeps (the
    /// dialect's region), all in one commit or none: each must be a simulated event still
    /// pending ([`SystemEvent::canceled`]). A rewrite that lost a race with another cancel
    /// commits nothing and is refused as ended.
    pub async fn cancel_system_events(
        &self,
        p: &Principal,
        ids: &[String],
        in_scope: impl Fn(&EventView) -> bool,
    ) -> Result<Result<(), CancelRefusal>, DomainError> {
        self.check_store()?;
        let mut unique: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(id.clone());
            }
        }
        let found = self.system_events_by_id(p, &unique).await?;
        let now = now_ms();
        let mut writes = Vec::with_capacity(unique.len());
        for id in &unique {
            let Some(v) = found.iter().find(|v| &v.event.id == id && in_scope(v)) else {
                return Ok(Err(CancelRefusal::NotFound(id.clone())));
            };
            if !v.event.simulated {
                return Ok(Err(CancelRefusal::NotFound(id.clone())));
            }
            let Some(done) = v.event.canceled(v.status, now) else {
                return Ok(Err(CancelRefusal::Ended(id.clone(), v.status.cycle)));
            };
            writes.push(Write::SystemEvent(Box::new(done)));
        }
        match self.inner.store.commit(writes).await {
            Err(nubis_store::StoreError::Conflict(_)) => Ok(Err(CancelRefusal::Ended(
                unique.first().cloned().unwrap_or_default(),
                EventCycle::Canceled,
            ))),
            other => other.map(Ok).map_err(store_err),
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
            .system_events(EventQuery {
                account: p.account.clone(),
                instance,
                not_before_from: now.saturating_sub(KEPT_AFTER_END_MS),
                limit: EVENT_WINDOW,
            })
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
        let mut ids: Vec<Uuid> = events.iter().map(|e| e.instance).collect();
        ids.sort_unstable();
        ids.dedup();
        let instances = self.instances_live_or_stored(&ids).await?;
        let visible: Vec<SystemEvent> = events
            .into_iter()
            .filter(|e| {
                p.sees(&e.account)
                    && instances
                        .get(&e.instance)
                        .is_none_or(|i| p.sees_project(i.project.as_deref()))
            })
            .collect();
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
                EventView {
                    status: e.status(now, times),
                    instance: instances.get(&e.instance).cloned(),
                    event: e,
                }
            })
            .collect())
    }
}
