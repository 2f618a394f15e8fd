//! Metadata (Nova server metadata; the tags of the other dialects): when it may change.

use crate::model::Instance;
use crate::state::{Action, InstanceState, Restriction};

/// Why an instance's metadata (Nova server metadata, the same records as the tags of the other
/// dialects) may not change now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataRefusal {
    /// Locked by its owner, or restricted by the operator.
    Locked,
    /// Not settled in a state that allows it: the state, and the action holding the
    /// instance's lock, if any.
    Busy {
        state: InstanceState,
        running: Option<Action>,
    },
}

/// May the instance's metadata change now? Nova's rule (compute/api.py
/// `update_instance_metadata`, `delete_instance_metadata`): not while locked, then only in a
/// settled active, stopped, paused or suspended state with no task running. Checked under the fleet lock by
/// whoever writes the change. Exhaustive on purpose: a new state must be decided here too.
pub fn metadata_change(inst: &Instance) -> Result<(), MetadataRefusal> {
    use InstanceState as S;
    if inst.locked.is_some() || inst.restriction != Restriction::None {
        return Err(MetadataRefusal::Locked);
    }
    let busy = || MetadataRefusal::Busy {
        state: inst.state,
        running: inst.lock.as_ref().map(|l| l.action),
    };
    match inst.state {
        S::Running | S::Stopped | S::Paused | S::Suspended if inst.lock.is_none() => Ok(()),
        S::Running
        | S::Stopped
        | S::Paused
        | S::Suspended
        | S::Pending
        | S::LaunchFailed
        | S::Starting
        | S::Stopping
        | S::Rebooting
        | S::EnteringRescue
        | S::Rescue
        | S::ExitingRescue
        | S::Terminating
        | S::EnteringLiveMigrate
        | S::LiveMigrating
        | S::ExitingLiveMigrate
        | S::Terminated
        | S::Pausing
        | S::Unpausing
        | S::Suspending
        | S::Resuming
        | S::Shelving
        | S::Shelved
        | S::ShelvingOffloading
        | S::ShelvedOffloaded
        | S::Unshelving
        | S::SoftDeleting
        | S::SoftDeleted
        | S::Restoring
        | S::Error => Err(busy()),
        // Nova's rule lists no resize state (vm_state resized included).
        S::Resizing | S::VerifyResize | S::VerifyResizeStopped | S::RevertingResize => Err(busy()),
    }
}

/// May the instance's tags change through Nova's server tags API now? Nova's rule
/// (api/openstack/compute/server_tags.py `_check_instance_in_valid_state`) looks at the
/// vm_state alone: active, stopped (and paused, suspended, shelved), whatever task runs; not
/// building, in error, rescued or deleted. Neither the owner's lock nor an operator's
/// restriction stops it. Exhaustive on purpose: a new state must be decided here too.
pub fn server_tags_change(inst: &Instance) -> Result<(), MetadataRefusal> {
    use InstanceState as S;
    match inst.state {
        S::Running
        | S::Starting
        | S::Stopping
        | S::Stopped
        | S::Rebooting
        | S::EnteringRescue
        | S::Terminating
        | S::EnteringLiveMigrate
        | S::LiveMigrating
        | S::ExitingLiveMigrate
        // vm_state active (or stopped) while the flavor changes; `resized` once it waits.
        | S::Resizing
        // paused, suspended, shelved(_offloaded), and the tasks into and out of them.
        | S::Pausing
        | S::Paused
        | S::Unpausing
        | S::Suspending
        | S::Suspended
        | S::Resuming
        | S::Shelving
        | S::Shelved
        | S::ShelvingOffloading
        | S::ShelvedOffloaded
        | S::Unshelving => Ok(()),
        S::Pending
        | S::LaunchFailed
        | S::Rescue
        | S::ExitingRescue
        | S::Terminated
        | S::VerifyResize
        | S::VerifyResizeStopped
        | S::RevertingResize
        // Not in Nova's valid vm_states for tags (soft-delete, error).
        | S::SoftDeleting
        | S::SoftDeleted
        | S::Restoring
        | S::Error => {
            Err(MetadataRefusal::Busy {
                state: inst.state,
                running: inst.lock.as_ref().map(|l| l.action),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixture::{inst, locked};
    use InstanceState as S;

    #[test]
    fn metadata_changes_only_when_settled_and_unlocked() {
        for s in InstanceState::ALL {
            let ok = matches!(s, S::Running | S::Stopped | S::Paused | S::Suspended);
            assert_eq!(metadata_change(&inst(s)).is_ok(), ok, "{s:?}");
        }
        let i = locked(S::Stopped, Action::ResetPassword);
        assert_eq!(
            metadata_change(&i),
            Err(MetadataRefusal::Busy {
                state: S::Stopped,
                running: Some(Action::ResetPassword)
            })
        );
        let mut i = inst(S::Running);
        i.locked = Some(String::new());
        assert_eq!(metadata_change(&i), Err(MetadataRefusal::Locked));
        let mut i = inst(S::Rebooting);
        i.locked = Some(String::new());
        assert_eq!(metadata_change(&i), Err(MetadataRefusal::Locked));
    }

    /// Server tags follow the vm_state alone: a task running or the owner's lock do not stop
    /// them; building, error, rescue, resized (awaiting confirmation) and deleted do.
    #[test]
    fn server_tags_change_by_vm_state() {
        for s in InstanceState::ALL {
            let refused = matches!(
                s,
                S::Pending
                    | S::LaunchFailed
                    | S::Rescue
                    | S::ExitingRescue
                    | S::Terminated
                    | S::VerifyResize
                    | S::VerifyResizeStopped
                    | S::RevertingResize
                    | S::SoftDeleting
                    | S::SoftDeleted
                    | S::Restoring
                    | S::Error
            );
            assert_eq!(server_tags_change(&inst(s)).is_err(), refused, "{s:?}");
        }
        let mut i = locked(S::Running, Action::Reboot);
        i.locked = Some(String::new());
        assert_eq!(server_tags_change(&i), Ok(()));
    }
}
