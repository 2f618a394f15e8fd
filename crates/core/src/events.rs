//! System events (docs/system-events.md): what the platform does, or announces it will do, to
//! an instance on its own — ECS's DescribeInstanceHistoryEvents and the scheduled events of
//! DescribeInstancesFullStatus. nubis's events are the simulated ones an account schedules
//! (CreateSimulatedSystemEvents): they never touch the instance, and their lifecycle is
//! derived here from the record, the clock and what the instance did since, so every view
//! and every node agrees without a timer.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event type with ECS's code and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "SystemMaintenance.Reboot")]
    SystemMaintenanceReboot,
    #[serde(rename = "SystemMaintenance.Redeploy")]
    SystemMaintenanceRedeploy,
    #[serde(rename = "SystemMaintenance.Stop")]
    SystemMaintenanceStop,
    #[serde(rename = "SystemFailure.Reboot")]
    SystemFailureReboot,
    #[serde(rename = "SystemFailure.Redeploy")]
    SystemFailureRedeploy,
    #[serde(rename = "SystemFailure.Stop")]
    SystemFailureStop,
    #[serde(rename = "SystemFailure.Delete")]
    SystemFailureDelete,
    #[serde(rename = "InstanceFailure.Reboot")]
    InstanceFailureReboot,
    #[serde(rename = "InstanceExpiration.Stop")]
    InstanceExpirationStop,
    #[serde(rename = "InstanceExpiration.Delete")]
    InstanceExpirationDelete,
    #[serde(rename = "AccountUnbalanced.Stop")]
    AccountUnbalancedStop,
    #[serde(rename = "AccountUnbalanced.Delete")]
    AccountUnbalancedDelete,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        Self::SystemMaintenanceReboot,
        Self::SystemMaintenanceRedeploy,
        Self::SystemMaintenanceStop,
        Self::SystemFailureReboot,
        Self::SystemFailureRedeploy,
        Self::SystemFailureStop,
        Self::SystemFailureDelete,
        Self::InstanceFailureReboot,
        Self::InstanceExpirationStop,
        Self::InstanceExpirationDelete,
        Self::AccountUnbalancedStop,
        Self::AccountUnbalancedDelete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::SystemMaintenanceReboot => "SystemMaintenance.Reboot",
            Self::SystemMaintenanceRedeploy => "SystemMaintenance.Redeploy",
            Self::SystemMaintenanceStop => "SystemMaintenance.Stop",
            Self::SystemFailureReboot => "SystemFailure.Reboot",
            Self::SystemFailureRedeploy => "SystemFailure.Redeploy",
            Self::SystemFailureStop => "SystemFailure.Stop",
            Self::SystemFailureDelete => "SystemFailure.Delete",
            Self::InstanceFailureReboot => "InstanceFailure.Reboot",
            Self::InstanceExpirationStop => "InstanceExpiration.Stop",
            Self::InstanceExpirationDelete => "InstanceExpiration.Delete",
            Self::AccountUnbalancedStop => "AccountUnbalanced.Stop",
            Self::AccountUnbalancedDelete => "AccountUnbalanced.Delete",
        }
    }

    /// ECS's numeric code of the type. The reference's examples show SystemMaintenance.Reboot
    /// = 1, SystemFailure.Reboot = 65 and InstanceExpiration.Stop = 34; the others are
    /// nubis's, numbered beside them (docs/system-events.md).
    pub fn code(self) -> i64 {
        match self {
            Self::SystemMaintenanceReboot => 1,
            Self::SystemMaintenanceRedeploy => 2,
            Self::SystemMaintenanceStop => 3,
            Self::SystemFailureReboot => 65,
            Self::SystemFailureRedeploy => 66,
            Self::SystemFailureStop => 67,
            Self::SystemFailureDelete => 68,
            Self::InstanceFailureReboot => 129,
            Self::InstanceExpirationStop => 34,
            Self::InstanceExpirationDelete => 35,
            Self::AccountUnbalancedStop => 36,
            Self::AccountUnbalancedDelete => 37,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The types CreateSimulatedSystemEvents schedules (the ECS reference's list).
    pub fn simulatable(self) -> bool {
        matches!(
            self,
            Self::SystemMaintenanceReboot
                | Self::SystemMaintenanceRedeploy
                | Self::SystemMaintenanceStop
                | Self::SystemFailureReboot
                | Self::SystemFailureRedeploy
                | Self::SystemFailureStop
                | Self::InstanceFailureReboot
        )
    }

    /// An unplanned event (a system or instance failure): it is executing from the moment
    /// it is published until its time, when it is executed (ECS's CreateSimulatedSystemEvents
    /// reference); a planned one waits, scheduled.
    pub fn unplanned(self) -> bool {
        matches!(
            self,
            Self::SystemFailureReboot
                | Self::SystemFailureRedeploy
                | Self::SystemFailureStop
                | Self::SystemFailureDelete
                | Self::InstanceFailureReboot
        )
    }

    /// Whether restarting the instance before the event's time avoids it (ECS: the
    /// maintenance restart, done by the user first, is not needed any more).
    pub fn avoidable_by_restart(self) -> bool {
        self == Self::SystemMaintenanceReboot
    }
}

/// Where an event is in its lifecycle (ECS's `EventCycleStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventCycle {
    Scheduled,
    Avoided,
    Executing,
    Executed,
    Canceled,
    Failed,
    Inquiring,
}

impl EventCycle {
    pub const ALL: [EventCycle; 7] = [
        Self::Scheduled,
        Self::Avoided,
        Self::Executing,
        Self::Executed,
        Self::Canceled,
        Self::Failed,
        Self::Inquiring,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduled => "Scheduled",
            Self::Avoided => "Avoided",
            Self::Executing => "Executing",
            Self::Executed => "Executed",
            Self::Canceled => "Canceled",
            Self::Failed => "Failed",
            Self::Inquiring => "Inquiring",
        }
    }

    /// ECS's numeric code of the status. The reference's examples show Scheduled = 24,
    /// Avoided = 8 and Executed = 0; the others are nubis's (docs/system-events.md).
    pub fn code(self) -> i64 {
        match self {
            Self::Scheduled => 24,
            Self::Avoided => 8,
            Self::Executing => 16,
            Self::Executed => 0,
            Self::Canceled => 2,
            Self::Failed => 32,
            Self::Inquiring => 4,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Not ended yet: what DescribeInstancesFullStatus lists as scheduled, and what
    /// DescribeInstanceHistoryEvents leaves out unless asked for by status.
    pub fn active(self) -> bool {
        matches!(self, Self::Scheduled | Self::Executing | Self::Inquiring)
    }
}

/// Simulated events an account may have pending (not canceled, NotBefore still ahead) at
/// once: ECS refuses more with `SimulatedEventLimitExceeded` without documenting its value;
/// this one is nubis's.
pub const MAX_PENDING_SIMULATED: usize = 1_000;

/// How far ahead an event may be scheduled (nubis's bound; ECS documents none).
pub const MAX_AHEAD_MS: i64 = 365 * 24 * 3600 * 1000;

/// Why a simulated event cannot be scheduled at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenRefusal {
    /// Its NotBefore has passed.
    Passed,
    /// More than [`MAX_AHEAD_MS`] ahead.
    TooFar,
}

/// Whether an event may be scheduled for `not_before_ms` at `now_ms`.
pub fn check_when(not_before_ms: i64, now_ms: i64) -> Result<(), WhenRefusal> {
    if not_before_ms < now_ms {
        Err(WhenRefusal::Passed)
    } else if not_before_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        Err(WhenRefusal::TooFar)
    } else {
        Ok(())
    }
}

/// How long an ended event stays listed (ECS: completed events of the last 30 days).
pub const KEPT_AFTER_END_MS: i64 = 30 * 24 * 3600 * 1000;

/// One system event on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemEvent {
    /// `e-` and 20 lowercase letters and digits.
    pub id: String,
    pub account: String,
    pub instance: Uuid,
    pub kind: EventKind,
    /// Made by CreateSimulatedSystemEvents: it never acts on the instance.
    pub simulated: bool,
    pub published_at_ms: i64,
    /// When it is to happen; it ends then at the latest.
    pub not_before_ms: i64,
    /// Set when the account canceled it (only a scheduled event can be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_at_ms: Option<i64>,
    /// Bumped by each rewrite; the store writes it only over the one before.
    pub generation: u64,
}

/// An event's status now, and when it ended (`None`: not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventStatus {
    pub cycle: EventCycle,
    pub finished_at_ms: Option<i64>,
}

impl SystemEvent {
    /// Its status at `now_ms`, given the times (ms) at which its instance was restarted
    /// (a reboot, or a start after a stop, that succeeded). A canceled event stays canceled;
    /// an event a restart avoids is avoided from the first restart between its publication
    /// and its time; any other event is executed at its time (a simulated one does nothing
    /// then: the status is all that changes), and until then scheduled, or executing if it
    /// is [`EventKind::unplanned`].
    pub fn status(&self, now_ms: i64, restarts: &[i64]) -> EventStatus {
        if let Some(at) = self.canceled_at_ms {
            return EventStatus {
                cycle: EventCycle::Canceled,
                finished_at_ms: Some(at),
            };
        }
        if self.kind.avoidable_by_restart()
            && let Some(at) = restarts
                .iter()
                .copied()
                .filter(|t| *t >= self.published_at_ms && *t < self.not_before_ms && *t <= now_ms)
                .min()
        {
            return EventStatus {
                cycle: EventCycle::Avoided,
                finished_at_ms: Some(at),
            };
        }
        if now_ms >= self.not_before_ms {
            return EventStatus {
                cycle: EventCycle::Executed,
                finished_at_ms: Some(self.not_before_ms),
            };
        }
        EventStatus {
            cycle: if self.kind.unplanned() {
                EventCycle::Executing
            } else {
                EventCycle::Scheduled
            },
            finished_at_ms: None,
        }
    }

    /// The record canceled at `now_ms`, if an event whose status is `status` may be: only a
    /// simulated one still pending (scheduled or executing).
    pub fn canceled(&self, status: EventStatus, now_ms: i64) -> Option<SystemEvent> {
        (self.simulated && status.cycle.active()).then(|| SystemEvent {
            canceled_at_ms: Some(now_ms),
            generation: self.generation + 1,
            ..self.clone()
        })
    }
}

/// A new event ID: `e-` and 20 lowercase letters and digits, as ECS's are.
pub fn new_event_id() -> String {
    let hex = Uuid::new_v4().simple().to_string();
    format!("e-{}", &hex[..20])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> SystemEvent {
        SystemEvent {
            id: new_event_id(),
            account: "a".into(),
            instance: Uuid::nil(),
            kind,
            simulated: true,
            published_at_ms: 1_000,
            not_before_ms: 10_000,
            canceled_at_ms: None,
            generation: 1,
        }
    }

    #[test]
    fn scheduled_until_its_time_then_executed_at_it() {
        let e = event(EventKind::SystemMaintenanceRedeploy);
        assert_eq!(e.status(9_999, &[]).cycle, EventCycle::Scheduled);
        assert_eq!(e.status(9_999, &[]).finished_at_ms, None);
        let done = e.status(50_000, &[]);
        assert_eq!(
            (done.cycle, done.finished_at_ms),
            (EventCycle::Executed, Some(10_000))
        );
        // A restart does not avoid an event of this type.
        assert_eq!(e.status(5_000, &[2_000]).cycle, EventCycle::Scheduled);
    }

    #[test]
    fn an_unplanned_event_is_executing_until_its_time() {
        let e = event(EventKind::SystemFailureReboot);
        assert_eq!(e.status(5_000, &[2_000]).cycle, EventCycle::Executing);
        assert_eq!(e.status(10_000, &[]).cycle, EventCycle::Executed);
        assert!(EventCycle::Executing.active() && !EventCycle::Executed.active());
    }

    #[test]
    fn a_restart_in_time_avoids_a_maintenance_reboot() {
        let e = event(EventKind::SystemMaintenanceReboot);
        // Before publication or after its time: no effect.
        assert_eq!(e.status(50_000, &[500, 10_000]).cycle, EventCycle::Executed);
        let avoided = e.status(50_000, &[7_000, 3_000]);
        assert_eq!(
            (avoided.cycle, avoided.finished_at_ms),
            (EventCycle::Avoided, Some(3_000))
        );
        // Not in the future of the reading.
        assert_eq!(e.status(2_000, &[3_000]).cycle, EventCycle::Scheduled);
    }

    #[test]
    fn only_a_pending_simulated_event_is_canceled() {
        let e = event(EventKind::SystemMaintenanceReboot);
        let done = e.canceled(e.status(2_000, &[]), 2_000).unwrap();
        assert_eq!((done.canceled_at_ms, done.generation), (Some(2_000), 2));
        assert_eq!(e.canceled(e.status(20_000, &[]), 20_000), None);
        let real = SystemEvent {
            simulated: false,
            ..e
        };
        assert_eq!(real.canceled(real.status(2_000, &[]), 2_000), None);
    }

    #[test]
    fn canceled_stays_canceled() {
        let mut e = event(EventKind::SystemMaintenanceReboot);
        e.canceled_at_ms = Some(4_000);
        let s = e.status(50_000, &[2_000]);
        assert_eq!(
            (s.cycle, s.finished_at_ms),
            (EventCycle::Canceled, Some(4_000))
        );
    }

    #[test]
    fn an_event_is_scheduled_ahead_within_a_year() {
        assert_eq!(check_when(1_000, 1_000), Ok(()));
        assert_eq!(check_when(999, 1_000), Err(WhenRefusal::Passed));
        assert_eq!(check_when(1_000 + MAX_AHEAD_MS, 1_000), Ok(()));
        assert_eq!(
            check_when(1_001 + MAX_AHEAD_MS, 1_000),
            Err(WhenRefusal::TooFar)
        );
    }

    #[test]
    fn names_round_trip_and_ids_have_ecs_shape() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        for c in EventCycle::ALL {
            assert_eq!(EventCycle::parse(c.name()), Some(c));
        }
        assert_eq!(EventKind::parse("Nonsense"), None);
        let id = new_event_id();
        assert!(id.starts_with("e-") && id.len() == 22, "{id}");
    }
}
