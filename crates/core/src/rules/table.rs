//! The state table: which action is allowed in which state, what a delete does in each, and
//! which catalogue facts forbid an action whatever the state. Exhaustive matches on purpose: a
//! new state or action must be decided here.

use crate::catalog::{self, Arch, TypeKind};
use crate::error::Unsupported;
use crate::model::{Instance, OsFamily};
use crate::state::{Action, InstanceState};

/// What a delete in any state does, by state. Exhaustive on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Destroy now; an operation in flight is superseded.
    Destroy,
    /// Already being deleted: nothing more to do.
    AlreadyDeleting,
    /// Gone: nothing to delete.
    Gone,
}

pub fn deletion(state: InstanceState) -> Deletion {
    use InstanceState as S;
    match state {
        S::Pending
        | S::LaunchFailed
        | S::Running
        | S::Starting
        | S::Stopping
        | S::Stopped
        | S::Rebooting
        | S::EnteringRescue
        | S::Rescue
        | S::ExitingRescue
        | S::EnteringLiveMigrate
        | S::LiveMigrating
        | S::ExitingLiveMigrate => Deletion::Destroy,
        S::Resizing | S::VerifyResize | S::VerifyResizeStopped | S::RevertingResize => {
            Deletion::Destroy
        }
        // Nova deletes a server in any of these (a shelved one's disks with it).
        S::Pausing
        | S::Paused
        | S::Unpausing
        | S::Suspending
        | S::Suspended
        | S::Resuming
        | S::Shelving
        | S::Shelved
        | S::ShelvingOffloading
        | S::ShelvedOffloaded
        | S::Unshelving => Deletion::Destroy,
        // A soft-deleted server is deleted for good (forceDelete, a second delete, the
        // reclaim); one marked broken like any other.
        S::SoftDeleting | S::SoftDeleted | S::Restoring | S::Error => Deletion::Destroy,
        S::Terminating => Deletion::AlreadyDeleting,
        S::Terminated => Deletion::Gone,
    }
}

/// Is `action` allowed in `state`? `force` opens Running to guest changes (ForceStop), to a
/// rebuild that stops and starts it (Nova, Tencent ResetInstance; not Alibaba
/// ReplaceSystemDisk) and to termination (Alibaba `Force`).
/// Exhaustive on purpose: a new state must be decided for every action.
pub fn allowed(action: Action, state: InstanceState, force: bool) -> bool {
    use InstanceState as S;
    match state {
        S::Running => match action {
            Action::Stop | Action::Reboot | Action::EnterRescue | Action::LiveMigrate => true,
            // Rebuild: stopped and started around the reinstall (Nova, Tencent), unless the
            // dialect needs the instance stopped (Alibaba ReplaceSystemDisk).
            Action::ResetPassword
            | Action::AssociateKeys
            | Action::DisassociateKeys
            | Action::Terminate
            | Action::Rebuild => force,
            Action::Start | Action::ExitRescue | Action::Create => false,
            // Nova resizes a running server; Tencent with ForceStop; Alibaba never.
            Action::Resize => force,
            Action::ConfirmResize | Action::RevertResize => false,
            Action::Pause | Action::Suspend | Action::Shelve => true,
            Action::Unpause | Action::Resume | Action::ShelveOffload | Action::Unshelve => false,
            Action::SoftDelete => true,
            Action::Restore => false,
            // Copied live (Nova, Alibaba) or stopped around the copy (Tencent ForcePoweroff).
            Action::CreateImage => true,
        },
        S::Stopped => match action {
            Action::Start
            | Action::Terminate
            | Action::ResetPassword
            | Action::EnterRescue
            | Action::AssociateKeys
            | Action::DisassociateKeys
            | Action::Rebuild => true,
            Action::Stop
            | Action::Reboot
            | Action::ExitRescue
            | Action::LiveMigrate
            | Action::Create => false,
            Action::Resize => true,
            Action::ConfirmResize | Action::RevertResize => false,
            Action::Shelve => true,
            Action::Pause
            | Action::Unpause
            | Action::Suspend
            | Action::Resume
            | Action::ShelveOffload
            | Action::Unshelve => false,
            Action::SoftDelete => true,
            Action::Restore => false,
            Action::CreateImage => true,
        },
        // Held guests (Nova's check_instance_state of each action). Every cloud deletes them;
        // nothing else of the other actions applies until they run again.
        // Nova snapshots paused and suspended servers too (compute/api.py `snapshot`).
        S::Paused => matches!(
            action,
            Action::Unpause | Action::Shelve | Action::Terminate | Action::CreateImage
        ),
        S::Suspended => matches!(
            action,
            Action::Resume | Action::Shelve | Action::Terminate | Action::CreateImage
        ),
        S::Shelved => matches!(
            action,
            Action::Unshelve | Action::ShelveOffload | Action::Terminate
        ),
        S::ShelvedOffloaded => matches!(action, Action::Unshelve | Action::Terminate),
        // A broken instance in rescue may be given up on: every cloud lets it be deleted.
        S::Rescue => matches!(action, Action::ExitRescue | Action::Terminate),
        S::LaunchFailed => action == Action::Terminate,
        // Deferred delete (docs/deferred-delete.md): a soft-deleted server is restored or
        // deleted for good (forceDelete; Tencent/Alibaba delete it too).
        S::SoftDeleted => matches!(action, Action::Restore | Action::Terminate),
        // Marked broken by an operator: Nova's actions whose vm_states include ERROR (stop,
        // rebuild, delete, soft delete).
        S::Error => matches!(
            action,
            Action::Stop | Action::Rebuild | Action::Terminate | Action::SoftDelete
        ),
        S::SoftDeleting | S::Restoring => false,
        // A resize awaiting confirmation: kept, undone, or the server deleted (Nova allows
        // nothing else in vm_state resized).
        S::VerifyResize | S::VerifyResizeStopped => matches!(
            action,
            Action::ConfirmResize | Action::RevertResize | Action::Terminate
        ),
        S::Resizing | S::RevertingResize => false,
        S::Pending
        | S::Starting
        | S::Stopping
        | S::Rebooting
        | S::EnteringRescue
        | S::ExitingRescue
        | S::Terminating
        | S::EnteringLiveMigrate
        | S::LiveMigrating
        | S::ExitingLiveMigrate
        | S::Terminated => false,
        S::Pausing
        | S::Unpausing
        | S::Suspending
        | S::Resuming
        | S::Shelving
        | S::ShelvingOffloading
        | S::Unshelving => false,
    }
}

/// Key pairs are Linux-only: the one rule, for creates (the image's OS) and for key changes
/// on an instance (its OS).
pub(super) fn keys_unsupported(os: OsFamily) -> Option<Unsupported> {
    match os {
        OsFamily::Windows => Some(Unsupported::WindowsOs),
        OsFamily::Linux => None,
    }
}

/// Catalogue facts that forbid `action` for this instance, whatever its state.
pub(super) fn unsupported(inst: &Instance, action: Action) -> Option<Unsupported> {
    let ty = inst.type_facts();
    let kind = ty.map(|t| t.kind).unwrap_or(TypeKind::Standard);
    let arm = ty.is_some_and(|t| t.arch == Arch::Arm64);
    let edge = catalog::zone(&inst.zone).is_some_and(|z| z.edge);
    let stopped_uncharged = inst.stop_charging && inst.state == InstanceState::Stopped;
    // Each action lists its refusals in the order they are reported: the first that holds.
    let bare_metal = (kind == TypeKind::BareMetal).then_some(Unsupported::InstanceKind);
    let special = (kind == TypeKind::Special).then_some(Unsupported::SpecialInstanceType);
    let reinstall_failed = inst
        .reinstall_failed
        .then_some(Unsupported::ReinstallFailed);
    let stopped = stopped_uncharged.then_some(Unsupported::StoppedModeStopCharging);
    let first = |in_order: &[Option<Unsupported>]| in_order.iter().flatten().next().copied();
    match action {
        Action::EnterRescue => first(&[
            bare_metal,
            arm.then_some(Unsupported::ArmArchitecture),
            edge.then_some(Unsupported::EdgeZone),
            special,
            reinstall_failed,
            stopped,
        ]),
        Action::ResetPassword => first(&[
            bare_metal,
            inst.application_role
                .is_some()
                .then_some(Unsupported::ApplicationRole),
            special,
            reinstall_failed,
            stopped,
        ]),
        Action::AssociateKeys | Action::DisassociateKeys => {
            first(&[bare_metal, keys_unsupported(inst.os), stopped])
        }
        Action::Create
        | Action::Start
        | Action::Stop
        | Action::Reboot
        | Action::Terminate
        | Action::ExitRescue
        | Action::LiveMigrate
        | Action::Rebuild => None,
        // The instance's own type: the target type's facts are checked by the plan.
        Action::Resize => first(&[bare_metal, special, stopped]),
        Action::ConfirmResize | Action::RevertResize => None,
        Action::Pause
        | Action::Unpause
        | Action::Suspend
        | Action::Resume
        | Action::Shelve
        | Action::ShelveOffload
        | Action::Unshelve => None,
        Action::SoftDelete | Action::Restore => None,
        Action::CreateImage => first(&[bare_metal]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceState as S;

    /// The whole table: every action × every state.
    #[test]
    fn state_table() {
        let ok = |a, s: &[S]| -> Vec<(Action, S)> { s.iter().map(|s| (a, *s)).collect() };
        let mut expected: Vec<(Action, S)> = vec![];
        expected.extend(ok(Action::Start, &[S::Stopped]));
        expected.extend(ok(Action::Stop, &[S::Running]));
        expected.extend(ok(Action::Reboot, &[S::Running]));
        expected.extend(ok(
            Action::Terminate,
            &[S::Stopped, S::LaunchFailed, S::Rescue],
        ));
        expected.extend(ok(Action::ResetPassword, &[S::Stopped]));
        expected.extend(ok(Action::EnterRescue, &[S::Running, S::Stopped]));
        expected.extend(ok(Action::ExitRescue, &[S::Rescue]));
        expected.extend(ok(Action::AssociateKeys, &[S::Stopped]));
        expected.extend(ok(Action::DisassociateKeys, &[S::Stopped]));
        expected.extend(ok(Action::LiveMigrate, &[S::Running]));
        expected.extend(ok(Action::Rebuild, &[S::Stopped]));
        expected.extend(ok(Action::Resize, &[S::Stopped]));
        let awaiting = [S::VerifyResize, S::VerifyResizeStopped];
        expected.extend(ok(Action::ConfirmResize, &awaiting));
        expected.extend(ok(Action::RevertResize, &awaiting));
        expected.extend(ok(Action::Terminate, &awaiting));
        expected.extend(ok(Action::Terminate, &[S::Paused, S::Suspended]));
        expected.extend(ok(Action::Terminate, &[S::Shelved, S::ShelvedOffloaded]));
        expected.extend(ok(Action::Pause, &[S::Running]));
        expected.extend(ok(Action::Unpause, &[S::Paused]));
        expected.extend(ok(Action::Suspend, &[S::Running]));
        expected.extend(ok(Action::Resume, &[S::Suspended]));
        expected.extend(ok(
            Action::Shelve,
            &[S::Running, S::Stopped, S::Paused, S::Suspended],
        ));
        expected.extend(ok(Action::ShelveOffload, &[S::Shelved]));
        expected.extend(ok(Action::Unshelve, &[S::Shelved, S::ShelvedOffloaded]));
        expected.extend(ok(Action::SoftDelete, &[S::Running, S::Stopped, S::Error]));
        expected.extend(ok(Action::Restore, &[S::SoftDeleted]));
        expected.extend(ok(Action::Terminate, &[S::SoftDeleted, S::Error]));
        expected.extend(ok(Action::Stop, &[S::Error]));
        expected.extend(ok(Action::Rebuild, &[S::Error]));
        expected.extend(ok(
            Action::CreateImage,
            &[S::Running, S::Stopped, S::Paused, S::Suspended],
        ));
        let actions = [
            Action::Create,
            Action::Start,
            Action::Stop,
            Action::Reboot,
            Action::Terminate,
            Action::ResetPassword,
            Action::EnterRescue,
            Action::ExitRescue,
            Action::AssociateKeys,
            Action::DisassociateKeys,
            Action::LiveMigrate,
            Action::Rebuild,
            Action::Resize,
            Action::ConfirmResize,
            Action::RevertResize,
            Action::Pause,
            Action::Unpause,
            Action::Suspend,
            Action::Resume,
            Action::Shelve,
            Action::ShelveOffload,
            Action::Unshelve,
            Action::SoftDelete,
            Action::Restore,
            Action::CreateImage,
        ];
        for a in actions {
            for s in S::ALL {
                assert_eq!(
                    allowed(a, s, false),
                    expected.contains(&(a, s)),
                    "{a:?} in {s:?}"
                );
            }
        }
        // Force additionally opens Running for guest changes, rebuilds and termination,
        // nothing else.
        for a in [
            Action::ResetPassword,
            Action::AssociateKeys,
            Action::DisassociateKeys,
            Action::Terminate,
            Action::Rebuild,
        ] {
            assert!(allowed(a, S::Running, true));
            assert!(!allowed(a, S::Rebooting, true));
            assert!(!allowed(a, S::Paused, true) || a == Action::Terminate);
        }
        // A delete destroys a held guest whatever holds it.
        for s in [
            S::Paused,
            S::Suspended,
            S::Shelved,
            S::ShelvedOffloaded,
            S::Pausing,
            S::SoftDeleting,
            S::SoftDeleted,
            S::Restoring,
            S::Error,
        ] {
            assert_eq!(deletion(s), Deletion::Destroy, "{s:?}");
        }
        // A running instance is resized only when it may be stopped for it.
        assert!(allowed(Action::Resize, S::Running, true));
        for s in [S::Resizing, S::RevertingResize, S::VerifyResize] {
            assert!(!allowed(Action::Resize, s, true), "{s:?}");
        }
    }

    #[test]
    fn every_resize_state_may_be_deleted() {
        for s in [
            S::Resizing,
            S::VerifyResize,
            S::VerifyResizeStopped,
            S::RevertingResize,
        ] {
            assert_eq!(deletion(s), Deletion::Destroy, "{s:?}");
        }
    }

    #[test]
    fn keys_are_linux_only() {
        assert_eq!(
            keys_unsupported(OsFamily::Windows),
            Some(Unsupported::WindowsOs)
        );
        assert_eq!(keys_unsupported(OsFamily::Linux), None);
    }
}
