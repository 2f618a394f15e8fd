//! The operator's state reset (Nova `os-resetState`) and the reclaim of soft-deleted
//! instances (Nova `reclaim_instance_interval`): docs/deferred-delete.md.

use crate::error::{DomainError, ResourceKind};
use crate::model::Instance;
use crate::state::InstanceState;

/// What an operator resets an instance to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetTo {
    /// Nova `active`: the instance shows what its guest's facts say (running, or stopped
    /// for a guest that is off, as Nova's power-state sync leaves an active server whose
    /// guest is off).
    Active,
    /// Nova `error`: marked broken; rebuild, stop or delete get it out.
    Error,
}

/// The state an instance takes on a reset to `to`, `observed` being what its guest's facts
/// show (None: nothing known). Refused while an operation holds the instance (its runner
/// settles the state when it ends, so a reset would be overwritten: wait for it) and for an
/// instance already gone.
pub fn reset_state(
    inst: &Instance,
    to: ResetTo,
    observed: Option<InstanceState>,
) -> Result<InstanceState, DomainError> {
    let id = inst.uuid.to_string();
    if inst.state == InstanceState::Terminated {
        return Err(DomainError::NotFound {
            kind: ResourceKind::Instance,
            id,
        });
    }
    if let Some(lock) = &inst.lock {
        return Err(DomainError::OperationInProgress {
            id,
            running: lock.action,
            same_action: false,
        });
    }
    Ok(match to {
        ResetTo::Error => InstanceState::Error,
        // A guest that reports nothing (no VM: shelved-offloaded, say) is shown running, as
        // Nova's vm_state active says.
        ResetTo::Active => observed.unwrap_or(InstanceState::Running),
    })
}

/// Is a soft-deleted instance due for reclaim at `now_ms`, given the interval in ms?
pub fn reclaim_due(inst: &Instance, interval_ms: i64, now_ms: i64) -> bool {
    inst.state == InstanceState::SoftDeleted
        && inst.lock.is_none()
        && inst
            .soft_deleted_at_ms
            .unwrap_or(inst.updated_ms())
            .saturating_add(interval_ms)
            <= now_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixture::{inst, locked};
    use crate::state::Action;
    use InstanceState as S;

    #[test]
    fn reset_marks_error_or_shows_the_guest() {
        for s in [
            S::Running,
            S::Stopped,
            S::Paused,
            S::SoftDeleted,
            S::LaunchFailed,
        ] {
            assert_eq!(reset_state(&inst(s), ResetTo::Error, None), Ok(S::Error));
        }
        let e = inst(S::Error);
        assert_eq!(
            reset_state(&e, ResetTo::Active, Some(S::Running)),
            Ok(S::Running)
        );
        assert_eq!(
            reset_state(&e, ResetTo::Active, Some(S::Stopped)),
            Ok(S::Stopped)
        );
        assert_eq!(reset_state(&e, ResetTo::Active, None), Ok(S::Running));
        assert!(matches!(
            reset_state(&locked(S::Rebooting, Action::Reboot), ResetTo::Error, None),
            Err(DomainError::OperationInProgress {
                running: Action::Reboot,
                ..
            })
        ));
        assert!(matches!(
            reset_state(&inst(S::Terminated), ResetTo::Active, None),
            Err(DomainError::NotFound { .. })
        ));
    }

    #[test]
    fn reclaim_after_the_interval_only_when_soft_deleted_and_idle() {
        let mut i = inst(S::SoftDeleted);
        i.soft_deleted_at_ms = Some(1_000);
        assert!(!reclaim_due(&i, 500, 1_499));
        assert!(reclaim_due(&i, 500, 1_500));
        assert!(!reclaim_due(&inst(S::Stopped), 0, i64::MAX));
        let mut l = locked(S::SoftDeleted, Action::Restore);
        l.soft_deleted_at_ms = Some(0);
        assert!(!reclaim_due(&l, 0, 10));
        // A huge interval never overflows into the past.
        assert!(!reclaim_due(&i, i64::MAX, 2_000));
    }
}
