//! Core states spelled the Nova way: the one table (DESIGN.md "One state, three spellings").
//!
//! Nova shows a server as `status` plus the pair (`OS-EXT-STS:vm_state`,
//! `OS-EXT-STS:task_state`) and an integer `OS-EXT-STS:power_state`. A settled state always
//! comes with a null task_state: Tempest's waiters poll until both match.

use nubis_core::{Action, InstanceState};

/// Nova power states (nova/compute/power_state.py).
pub const NOSTATE: u8 = 0;
pub const RUNNING: u8 = 1;
pub const PAUSED: u8 = 3;
pub const SHUTDOWN: u8 = 4;
pub const SUSPENDED: u8 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NovaState {
    pub status: &'static str,
    pub vm_state: &'static str,
    pub task_state: Option<&'static str>,
    pub power_state: u8,
}

const fn st(
    status: &'static str,
    vm_state: &'static str,
    task_state: Option<&'static str>,
    power_state: u8,
) -> NovaState {
    NovaState {
        status,
        vm_state,
        task_state,
        power_state,
    }
}

/// What else rendering needs besides the core state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extra {
    /// The action holding the instance's lock, if any.
    pub lock: Option<Action>,
    /// A reboot in progress is a hard one (HARD_REBOOT rather than REBOOT).
    pub hard_reboot: bool,
    /// The hypervisor reports the guest powered on (only consulted while terminating, whose
    /// Nova spelling depends on the power state it started from).
    pub powered_on: Option<bool>,
    /// The state the guest's facts show (only consulted while shelving, whose Nova spelling
    /// keeps the vm_state it started from: active, stopped, paused or suspended).
    pub shelving_from: Option<InstanceState>,
}

/// The table. Exhaustive on purpose: a new core state must be given a Nova spelling here.
pub fn nova_state(s: InstanceState, x: Extra) -> NovaState {
    use InstanceState as S;
    match s {
        S::Pending => st("BUILD", "building", Some("spawning"), NOSTATE),
        S::LaunchFailed => st("ERROR", "error", None, NOSTATE),
        S::Running => match x.lock {
            // A live password change (changePassword on an ACTIVE server).
            Some(Action::ResetPassword) => {
                st("PASSWORD", "active", Some("updating_password"), RUNNING)
            }
            // A snapshot of a running server (createImage): the status stays ACTIVE.
            Some(Action::CreateImage) => st("ACTIVE", "active", Some("image_snapshot"), RUNNING),
            _ => st("ACTIVE", "active", None, RUNNING),
        },
        S::Starting => st("SHUTOFF", "stopped", Some("powering-on"), SHUTDOWN),
        S::Stopping => st("ACTIVE", "active", Some("powering-off"), RUNNING),
        S::Stopped => match x.lock {
            // An offline guest change (password or keys written to the stopped disk).
            Some(Action::ResetPassword) => {
                st("SHUTOFF", "stopped", Some("updating_password"), SHUTDOWN)
            }
            Some(Action::CreateImage) => st("SHUTOFF", "stopped", Some("image_snapshot"), SHUTDOWN),
            _ => st("SHUTOFF", "stopped", None, SHUTDOWN),
        },
        S::Rebooting if x.hard_reboot => {
            st("HARD_REBOOT", "active", Some("rebooting_hard"), RUNNING)
        }
        S::Rebooting => st("REBOOT", "active", Some("rebooting"), RUNNING),
        S::EnteringRescue => st("ACTIVE", "active", Some("rescuing"), RUNNING),
        S::Rescue => st("RESCUE", "rescued", None, RUNNING),
        S::ExitingRescue => st("RESCUE", "rescued", Some("unrescuing"), RUNNING),
        S::Terminating => match x.powered_on {
            Some(false) => st("SHUTOFF", "stopped", Some("deleting"), SHUTDOWN),
            _ => st("ACTIVE", "active", Some("deleting"), RUNNING),
        },
        // Host maintenance: Nova's own spelling of a live migration.
        S::EnteringLiveMigrate | S::LiveMigrating | S::ExitingLiveMigrate => {
            st("MIGRATING", "active", Some("migrating"), RUNNING)
        }
        S::Terminated => st("DELETED", "deleted", None, NOSTATE),
        // A resize moving the guest: RESIZE from active or stopped (Nova's _STATE_MAP); the
        // hypervisor's power says which (known while the type changes).
        S::Resizing => match x.powered_on {
            Some(false) => st("RESIZE", "stopped", Some("resize_migrating"), SHUTDOWN),
            _ => st("RESIZE", "active", Some("resize_migrating"), RUNNING),
        },
        S::VerifyResize => st("VERIFY_RESIZE", "resized", None, RUNNING),
        S::VerifyResizeStopped => st("VERIFY_RESIZE", "resized", None, SHUTDOWN),
        S::RevertingResize => match x.powered_on {
            Some(false) => st(
                "REVERT_RESIZE",
                "resized",
                Some("resize_reverting"),
                SHUTDOWN,
            ),
            _ => st(
                "REVERT_RESIZE",
                "resized",
                Some("resize_reverting"),
                RUNNING,
            ),
        },
        // Pause, suspend, shelve (nova/compute/{vm_states,task_states}.py; the status by
        // nova/api/openstack/common.py `_STATE_MAP`). docs/pause-suspend-shelve.md.
        S::Pausing => st("ACTIVE", "active", Some("pausing"), RUNNING),
        S::Paused => match x.lock {
            Some(Action::CreateImage) => st("PAUSED", "paused", Some("image_snapshot"), PAUSED),
            _ => st("PAUSED", "paused", None, PAUSED),
        },
        S::Unpausing => st("PAUSED", "paused", Some("unpausing"), PAUSED),
        S::Suspending => st("ACTIVE", "active", Some("suspending"), RUNNING),
        S::Suspended => match x.lock {
            Some(Action::CreateImage) => {
                st("SUSPENDED", "suspended", Some("image_snapshot"), SUSPENDED)
            }
            _ => st("SUSPENDED", "suspended", None, SUSPENDED),
        },
        S::Resuming => st("SUSPENDED", "suspended", Some("resuming"), SUSPENDED),
        // Shelving starts from active, stopped, paused or suspended: Nova keeps the vm_state
        // it started from until the guest is shelved.
        S::Shelving => match x.shelving_from {
            Some(S::Stopped) => st("SHUTOFF", "stopped", Some("shelving"), SHUTDOWN),
            Some(S::Paused) => st("PAUSED", "paused", Some("shelving"), PAUSED),
            Some(S::Suspended) => st("SUSPENDED", "suspended", Some("shelving"), SUSPENDED),
            _ => st("ACTIVE", "active", Some("shelving"), RUNNING),
        },
        // The shelve's image being made of the powered-off guest (its lock still held):
        // Nova's SHELVING_IMAGE_UPLOADING, the vm_state not yet shelved.
        S::Shelved => match x.lock {
            Some(Action::Shelve) => st(
                "ACTIVE",
                "active",
                Some("shelving_image_uploading"),
                SHUTDOWN,
            ),
            _ => st("SHELVED", "shelved", None, SHUTDOWN),
        },
        S::ShelvingOffloading => st("SHELVED", "shelved", Some("shelving_offloading"), SHUTDOWN),
        S::ShelvedOffloaded => st("SHELVED_OFFLOADED", "shelved_offloaded", None, NOSTATE),
        S::Unshelving => st(
            "SHELVED_OFFLOADED",
            "shelved_offloaded",
            Some("unshelving"),
            NOSTATE,
        ),
        // Deferred delete (docs/deferred-delete.md): soft-deleting keeps the vm_state it
        // started from (active or stopped; error shows as active) until the guest is off.
        S::SoftDeleting => match x.powered_on {
            Some(false) => st("SHUTOFF", "stopped", Some("soft-deleting"), SHUTDOWN),
            _ => st("ACTIVE", "active", Some("soft-deleting"), RUNNING),
        },
        S::SoftDeleted => st("SOFT_DELETED", "soft-delete", None, SHUTDOWN),
        S::Restoring => st("SOFT_DELETED", "soft-delete", Some("restoring"), SHUTDOWN),
        // os-resetState to error: the guest is left as it was, its power shown as it is.
        S::Error => match x.powered_on {
            Some(false) => st("ERROR", "error", None, SHUTDOWN),
            _ => st("ERROR", "error", None, RUNNING),
        },
    }
}

/// The task_state Nova shows while `a` runs (for "while it is in task_state …" messages).
pub fn task_of(a: Action) -> &'static str {
    match a {
        Action::Create => "spawning",
        Action::Start => "powering-on",
        Action::Stop => "powering-off",
        Action::Reboot => "rebooting",
        Action::Terminate => "deleting",
        Action::ResetPassword => "updating_password",
        Action::EnterRescue => "rescuing",
        Action::ExitRescue => "unrescuing",
        Action::AssociateKeys | Action::DisassociateKeys => "updating",
        Action::LiveMigrate => "migrating",
        Action::Rebuild => "rebuilding",
        Action::Resize => "resize_migrating",
        // Nova has no task state of its own for a confirmation: its last resize one.
        Action::ConfirmResize => "resize_finish",
        Action::RevertResize => "resize_reverting",
        Action::Pause => "pausing",
        Action::Unpause => "unpausing",
        Action::Suspend => "suspending",
        Action::Resume => "resuming",
        Action::Shelve => "shelving",
        Action::ShelveOffload => "shelving_offloading",
        Action::Unshelve => "unshelving",
        Action::SoftDelete => "soft-deleting",
        Action::Restore => "restoring",
        // Nova's snapshot runs image_snapshot_pending → image_snapshot →
        // image_pending_upload → image_uploading; the copy is one step here.
        Action::CreateImage => "image_snapshot",
    }
}

/// Nova's name for an action in "Cannot '<action>' instance …" messages.
pub fn action_name(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Reboot => "reboot",
        Action::Terminate => "delete",
        Action::ResetPassword => "set_admin_password",
        Action::EnterRescue => "rescue",
        Action::ExitRescue => "unrescue",
        Action::AssociateKeys | Action::DisassociateKeys => "update",
        Action::LiveMigrate => "live_migrate",
        Action::Rebuild => "rebuild",
        Action::Resize => "resize",
        Action::ConfirmResize => "confirmResize",
        Action::RevertResize => "revertResize",
        Action::Pause => "pause",
        Action::Unpause => "unpause",
        Action::Suspend => "suspend",
        Action::Resume => "resume",
        Action::Shelve => "shelve",
        Action::ShelveOffload => "shelveOffload",
        Action::Unshelve => "unshelve",
        Action::SoftDelete => "soft_delete",
        Action::Restore => "restore",
        Action::CreateImage => "createImage",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceState as S;

    /// DESIGN.md's table, row by row (status, vm_state, task_state).
    #[test]
    fn design_table() {
        let rows: &[(S, &str, &str, Option<&str>)] = &[
            (S::Pending, "BUILD", "building", Some("spawning")),
            (S::LaunchFailed, "ERROR", "error", None),
            (S::Running, "ACTIVE", "active", None),
            (S::Starting, "SHUTOFF", "stopped", Some("powering-on")),
            (S::Stopping, "ACTIVE", "active", Some("powering-off")),
            (S::Stopped, "SHUTOFF", "stopped", None),
            (S::Rebooting, "REBOOT", "active", Some("rebooting")),
            (S::EnteringRescue, "ACTIVE", "active", Some("rescuing")),
            (S::Rescue, "RESCUE", "rescued", None),
            (S::ExitingRescue, "RESCUE", "rescued", Some("unrescuing")),
            (S::Terminating, "ACTIVE", "active", Some("deleting")),
            (S::Terminated, "DELETED", "deleted", None),
            (S::LiveMigrating, "MIGRATING", "active", Some("migrating")),
            (S::Pausing, "ACTIVE", "active", Some("pausing")),
            (S::Paused, "PAUSED", "paused", None),
            (S::Unpausing, "PAUSED", "paused", Some("unpausing")),
            (S::Suspending, "ACTIVE", "active", Some("suspending")),
            (S::Suspended, "SUSPENDED", "suspended", None),
            (S::Resuming, "SUSPENDED", "suspended", Some("resuming")),
            (S::Shelving, "ACTIVE", "active", Some("shelving")),
            (S::Shelved, "SHELVED", "shelved", None),
            (
                S::ShelvingOffloading,
                "SHELVED",
                "shelved",
                Some("shelving_offloading"),
            ),
            (
                S::ShelvedOffloaded,
                "SHELVED_OFFLOADED",
                "shelved_offloaded",
                None,
            ),
            (
                S::Unshelving,
                "SHELVED_OFFLOADED",
                "shelved_offloaded",
                Some("unshelving"),
            ),
            (S::SoftDeleting, "ACTIVE", "active", Some("soft-deleting")),
            (S::SoftDeleted, "SOFT_DELETED", "soft-delete", None),
            (
                S::Restoring,
                "SOFT_DELETED",
                "soft-delete",
                Some("restoring"),
            ),
            (S::Error, "ERROR", "error", None),
        ];
        for (s, status, vm, task) in rows {
            let n = nova_state(*s, Extra::default());
            assert_eq!(
                (n.status, n.vm_state, n.task_state),
                (*status, *vm, *task),
                "{s:?}"
            );
        }
        let hard = Extra {
            hard_reboot: true,
            ..Extra::default()
        };
        let n = nova_state(S::Rebooting, hard);
        assert_eq!(
            (n.status, n.vm_state, n.task_state),
            ("HARD_REBOOT", "active", Some("rebooting_hard"))
        );
        let off = Extra {
            powered_on: Some(false),
            ..Extra::default()
        };
        assert_eq!(nova_state(S::Terminating, off).status, "SHUTOFF");
        let pw = Extra {
            lock: Some(Action::ResetPassword),
            ..Extra::default()
        };
        assert_eq!(nova_state(S::Running, pw).status, "PASSWORD");
        assert_eq!(nova_state(S::Stopped, pw).status, "SHUTOFF");
        // Shelving keeps the vm_state it started from, with its power state.
        for (from, status, power) in [
            (S::Stopped, "SHUTOFF", SHUTDOWN),
            (S::Paused, "PAUSED", PAUSED),
            (S::Suspended, "SUSPENDED", SUSPENDED),
            (S::Running, "ACTIVE", RUNNING),
        ] {
            let x = Extra {
                shelving_from: Some(from),
                ..Extra::default()
            };
            let n = nova_state(S::Shelving, x);
            assert_eq!(
                (n.status, n.task_state, n.power_state),
                (status, Some("shelving"), power)
            );
        }
        // Power states (nova/compute/power_state.py).
        assert_eq!(nova_state(S::Paused, Extra::default()).power_state, 3);
        assert_eq!(nova_state(S::Suspended, Extra::default()).power_state, 7);
        assert_eq!(nova_state(S::Shelved, Extra::default()).power_state, 4);
        assert_eq!(
            nova_state(S::ShelvedOffloaded, Extra::default()).power_state,
            0
        );
    }

    /// Nova's resize states: RESIZE while moving (from active or stopped), VERIFY_RESIZE
    /// (vm_state resized) with the power the guest ends with, REVERT_RESIZE.
    #[test]
    fn resize_states() {
        let off = Extra {
            powered_on: Some(false),
            ..Extra::default()
        };
        let row = |s, x| {
            let n = nova_state(s, x);
            (n.status, n.vm_state, n.task_state, n.power_state)
        };
        assert_eq!(
            row(S::Resizing, Extra::default()),
            ("RESIZE", "active", Some("resize_migrating"), RUNNING)
        );
        assert_eq!(
            row(S::Resizing, off),
            ("RESIZE", "stopped", Some("resize_migrating"), SHUTDOWN)
        );
        assert_eq!(
            row(S::VerifyResize, off),
            ("VERIFY_RESIZE", "resized", None, RUNNING)
        );
        assert_eq!(
            row(S::VerifyResizeStopped, Extra::default()),
            ("VERIFY_RESIZE", "resized", None, SHUTDOWN)
        );
        assert_eq!(row(S::RevertingResize, Extra::default()).0, "REVERT_RESIZE");
    }

    /// Nova's own consistency rules (nova/api/openstack/common.py `_STATE_MAP`): the status
    /// follows from (vm_state, task_state), and a settled state has no task.
    #[test]
    fn status_follows_nova_state_map() {
        for s in S::ALL {
            for x in [
                Extra::default(),
                Extra {
                    hard_reboot: true,
                    lock: Some(Action::ResetPassword),
                    powered_on: Some(false),
                    shelving_from: Some(S::Paused),
                },
                Extra {
                    shelving_from: Some(S::Stopped),
                    ..Extra::default()
                },
            ] {
                let n = nova_state(s, x);
                let expect = match (n.vm_state, n.task_state) {
                    ("building", _) => "BUILD",
                    ("active", None) => "ACTIVE",
                    ("active", Some("rebooting")) => "REBOOT",
                    ("active", Some("rebooting_hard")) => "HARD_REBOOT",
                    ("active", Some("updating_password")) => "PASSWORD",
                    ("active", Some("migrating")) => "MIGRATING",
                    ("active" | "stopped", Some("resize_migrating")) => "RESIZE",
                    ("resized", Some("resize_reverting")) => "REVERT_RESIZE",
                    ("resized", None) => "VERIFY_RESIZE",
                    ("active", Some(_)) => "ACTIVE",
                    ("stopped", _) => "SHUTOFF",
                    ("rescued", _) => "RESCUE",
                    ("paused", _) => "PAUSED",
                    ("suspended", _) => "SUSPENDED",
                    ("shelved", _) => "SHELVED",
                    ("shelved_offloaded", _) => "SHELVED_OFFLOADED",
                    ("error", _) => "ERROR",
                    ("soft-delete", _) => "SOFT_DELETED",
                    ("deleted", _) => "DELETED",
                    other => panic!("unexpected {other:?}"),
                };
                assert_eq!(n.status, expect, "{s:?} {x:?}");
                // An operator's error mark shows the guest's own power.
                let powered = matches!(n.vm_state, "active" | "rescued")
                    || (matches!(n.vm_state, "resized" | "error") && n.power_state == RUNNING);
                assert_eq!(n.power_state == RUNNING, powered, "{s:?}");
                let held = match n.vm_state {
                    "paused" => Some(PAUSED),
                    "suspended" => Some(SUSPENDED),
                    "shelved_offloaded" => Some(NOSTATE),
                    _ => None,
                };
                if let Some(p) = held {
                    assert_eq!(n.power_state, p, "{s:?}");
                }
            }
        }
    }
}
