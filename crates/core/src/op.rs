//! The vocabulary of operations: the durable steps an operation runs, how a guest stops, what a
//! guest change does to a running instance, and how the instance settles when the operation
//! ends. Data only; [`crate::rules`] decides which of it a request gets.
//!
//! This module depends on nothing but [`crate::state`] and [`crate::inject`], so the records ([`crate::model`]) and
//! the errors ([`crate::error`]) can name it without depending on the rules.

use crate::inject::GuestData;
use crate::state::{Action, InstanceState};
use serde::{Deserialize, Serialize};

/// How to stop a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// ACPI shutdown only; fails if the guest ignores it.
    Soft,
    /// Power off.
    Hard,
    /// ACPI shutdown, then power off if the guest does not comply.
    SoftFirst,
}

/// One durable step of an operation. Steps are idempotent so a resumed operation may repeat
/// the step that was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Create the system disk from the image and set initial credentials.
    Provision {
        image_id: String,
        user: String,
        password_hash: Option<String>,
        keys: Vec<String>,
        /// The user data and files for the first boot: empty in the plan, filled from the
        /// store by the runner when it hands the step to the driver (crate::inject).
        #[serde(default, skip_serializing_if = "GuestData::is_empty")]
        guest: GuestData,
    },
    PowerOn,
    PowerOff {
        mode: StopMode,
    },
    Reboot {
        mode: StopMode,
    },
    SetPassword {
        user: String,
        password_hash: String,
    },
    AddKeys {
        keys: Vec<String>,
    },
    RemoveKeys {
        keys: Vec<String>,
    },
    /// Boot a fresh rescue system with the original disk attached second.
    BootRescue {
        user: String,
        password_hash: String,
        /// The image to boot (Nova rescue_image_ref); the rescue image when absent.
        #[serde(default)]
        image_id: Option<String>,
    },
    /// Leave rescue: boot the original system disk again.
    BootSystem,
    Destroy,
    /// Replace the system disk with a fresh copy of an image and set new credentials.
    Reprovision {
        image_id: String,
        user: String,
        password_hash: Option<String>,
        /// Public keys to inject instead of the instance's current ones (Nova 2.54 key_name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keys: Option<Vec<String>>,
        /// As [`Step::Provision`]'s: filled by the runner, empty in the plan.
        #[serde(default, skip_serializing_if = "GuestData::is_empty")]
        guest: GuestData,
    },
    /// Host maintenance: one of three phases of a simulated live migration.
    LiveMigrate {
        phase: MigratePhase,
    },
    /// Move the powered-off guest to another instance type: the vCPUs and memory it has from
    /// its next boot.
    Resize {
        instance_type: String,
        cpu: u32,
        memory_mib: u32,
    },
    /// Keep the new type of a resize: the resources held for going back are released.
    ConfirmResize,
    // Pause, suspend and shelve (docs/pause-suspend-shelve.md).
    /// Freeze the running guest in memory (QEMU `stop`).
    Pause,
    /// Let a paused guest run on (QEMU `cont`).
    Unpause,
    /// Save the running guest's memory to the host's disk and end its VM.
    Suspend,
    /// Start the VM again from the saved memory: the guest runs on where it was.
    Resume,
    /// Shut the guest down (ACPI first, then power off; a paused or suspended guest is powered
    /// off and its saved memory dropped) and mark it shelved.
    Shelve,
    /// Remove a shelved guest from its host: nothing but its disks is kept.
    Offload,
    /// Boot a shelved (or offloaded) guest from its own disks.
    Unshelve,
    /// Write a standalone copy of the system disk as image `image_id`'s bytes in the image
    /// store (`<images>/<image_id>.img`), crash-consistent if the guest runs; the guest is
    /// left as it was (docs/images.md "Images from instances").
    Snapshot {
        image_id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MigratePhase {
    Enter,
    Migrate,
    Exit,
}

impl Step {
    /// The state an instance shows while this step runs, unless the operation overrides it.
    pub fn showing(&self, current: InstanceState) -> InstanceState {
        match self {
            Step::Provision { .. } | Step::Reprovision { .. } => InstanceState::Pending,
            Step::PowerOn => InstanceState::Starting,
            Step::PowerOff { .. } => InstanceState::Stopping,
            Step::Reboot { .. } => InstanceState::Rebooting,
            Step::Destroy => InstanceState::Terminating,
            Step::BootRescue { .. } => InstanceState::EnteringRescue,
            Step::BootSystem => InstanceState::ExitingRescue,
            Step::LiveMigrate {
                phase: MigratePhase::Enter,
            } => InstanceState::EnteringLiveMigrate,
            Step::LiveMigrate {
                phase: MigratePhase::Migrate,
            } => InstanceState::LiveMigrating,
            Step::LiveMigrate {
                phase: MigratePhase::Exit,
            } => InstanceState::ExitingLiveMigrate,
            Step::SetPassword { .. } | Step::AddKeys { .. } | Step::RemoveKeys { .. } => current,
            Step::Resize { .. } => InstanceState::Resizing,
            Step::ConfirmResize => current,
            Step::Pause => InstanceState::Pausing,
            Step::Unpause => InstanceState::Unpausing,
            Step::Suspend => InstanceState::Suspending,
            Step::Resume => InstanceState::Resuming,
            Step::Shelve => InstanceState::Shelving,
            Step::Offload => InstanceState::ShelvingOffloading,
            Step::Unshelve => InstanceState::Unshelving,
            Step::Snapshot { .. } => current,
        }
    }
}

/// What a guest change (password, keys) does to a running instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenRunning {
    /// Refuse: only stopped instances (Tencent without ForceStop).
    Refuse,
    /// Stop (soft, then hard), change, start again (Tencent ForceStop).
    StopAndStart,
    /// Accept and record the change for the next boot at once: no restart, no lock, no long
    /// operation (Alibaba: "takes effect after a restart"). See [`Accept::NextBoot`].
    NextBoot,
    /// Change the running guest now, as an operation holding the instance's lock (Nova
    /// changePassword, which the guest agent applies live).
    Live,
}

/// How a change of instance type ends, by cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeEnd {
    /// Started afterwards whatever its power was (Tencent ResetInstancesType: "the instance
    /// shows as running once the change is done").
    Start,
    /// Powered as before (Alibaba ModifyInstanceSpec, which only takes stopped instances).
    AsBefore,
    /// Powered as before, then awaiting confirmResize or revertResize (Nova VERIFY_RESIZE),
    /// the previous type remembered.
    Verify,
}

/// State of a KMS key that encrypts an instance's disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KmsState {
    Enabled,
    Disabled,
    /// The account may not use the key.
    Unauthorized,
    /// The compute service may not call KMS for this account.
    KmsUnauthorized,
    Deleted,
}

/// How the engine takes an accepted plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accept {
    /// An operation: the instance's lock is taken and the steps run through the driver.
    Operation,
    /// A guest change on a running instance for its next boot: recorded at once (the
    /// operation is finished when the client hears of it), no lock, nothing restarts. The
    /// driver stages the steps without a long wait.
    NextBoot,
    /// A start of an instance still being created by an operation that would leave it
    /// stopped: the steps are appended to that operation, which boots it once provisioned.
    JoinCreate,
}

/// The state an instance takes when its operation ends one way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// What the driver reports (power, boot source); the state the operation started from if
    /// it reports nothing.
    Observed,
    /// Gone: the record is removed with its guest.
    Terminated,
    /// The launch failed.
    LaunchFailed,
    /// Resized, awaiting confirmation: VerifyResize or VerifyResizeStopped by what the driver
    /// reports (the state the operation started from if it reports nothing).
    VerifyResize,
    /// Soft-deleted: kept powered off until reclaimed or restored.
    SoftDeleted,
}

/// How an instance's state is derived when its operation ends: part of the plan, recorded
/// with the operation, so the runner that ends it (perhaps after a restart) decides nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Settle {
    pub success: Outcome,
    pub failure: Outcome,
}

impl Settle {
    /// What [`crate::rules`] plans for an action. Also read for operations recorded before
    /// plans carried their settlement.
    pub fn for_action(action: Action) -> Self {
        let (success, failure) = match action {
            Action::Terminate => (Outcome::Terminated, Outcome::Observed),
            Action::Create => (Outcome::Observed, Outcome::LaunchFailed),
            Action::Start
            | Action::Stop
            | Action::Reboot
            | Action::ResetPassword
            | Action::EnterRescue
            | Action::ExitRescue
            | Action::AssociateKeys
            | Action::DisassociateKeys
            | Action::LiveMigrate
            | Action::Rebuild => (Outcome::Observed, Outcome::Observed),
            Action::Resize | Action::ConfirmResize | Action::RevertResize => {
                (Outcome::Observed, Outcome::Observed)
            }
            Action::Pause
            | Action::Unpause
            | Action::Suspend
            | Action::Resume
            | Action::Shelve
            | Action::ShelveOffload
            | Action::Unshelve => (Outcome::Observed, Outcome::Observed),
            // A failed power-off leaves the instance as its facts show it (not deleted).
            Action::SoftDelete => (Outcome::SoftDeleted, Outcome::Observed),
            Action::Restore => (Outcome::Observed, Outcome::Observed),
            Action::CreateImage => (Outcome::Observed, Outcome::Observed),
        };
        Self { success, failure }
    }

    /// The state to settle in: `observed` is what the driver reports (None: nothing),
    /// `before` the state the operation started from.
    pub fn state(
        &self,
        success: bool,
        observed: Option<InstanceState>,
        before: InstanceState,
    ) -> InstanceState {
        match if success { self.success } else { self.failure } {
            Outcome::Observed => observed.unwrap_or(before),
            Outcome::Terminated => InstanceState::Terminated,
            Outcome::LaunchFailed => InstanceState::LaunchFailed,
            Outcome::SoftDeleted => InstanceState::SoftDeleted,
            Outcome::VerifyResize => match observed {
                Some(InstanceState::Running) => InstanceState::VerifyResize,
                Some(InstanceState::Stopped) => InstanceState::VerifyResizeStopped,
                other => other.unwrap_or(before),
            },
        }
    }
}

/// The state a guest's facts show: booted from the rescue system → rescue; otherwise by power.
pub fn observed(powered_on: bool, rescue_booted: bool) -> InstanceState {
    if rescue_booted {
        InstanceState::Rescue
    } else if powered_on {
        InstanceState::Running
    } else {
        InstanceState::Stopped
    }
}

/// A guest that is neither running nor plainly off: what pause, suspend and shelve leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Held {
    /// Frozen in memory.
    Paused,
    /// Its memory saved to the host's disk, no VM.
    Suspended,
    /// Powered off and marked shelved, still on its host.
    Shelved,
    /// Shelved and removed from its host: only its disks are kept.
    Offloaded,
}

/// The state a held guest's facts show.
pub fn observed_held(held: Held) -> InstanceState {
    match held {
        Held::Paused => InstanceState::Paused,
        Held::Suspended => InstanceState::Suspended,
        Held::Shelved => InstanceState::Shelved,
        Held::Offloaded => InstanceState::ShelvedOffloaded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceState as S;

    #[test]
    fn settlement_by_action_and_outcome() {
        let s = Settle::for_action(Action::Stop);
        assert_eq!(s.state(true, Some(S::Stopped), S::Running), S::Stopped);
        // A soft stop the guest ignored leaves it running.
        assert_eq!(s.state(false, Some(S::Running), S::Running), S::Running);
        assert_eq!(s.state(true, None, S::Running), S::Running);
        let s = Settle::for_action(Action::Create);
        assert_eq!(
            s.state(false, Some(S::Running), S::Pending),
            S::LaunchFailed
        );
        assert_eq!(s.state(true, Some(S::Running), S::Pending), S::Running);
        let s = Settle::for_action(Action::Terminate);
        assert_eq!(s.state(true, None, S::Running), S::Terminated);
        assert_eq!(s.state(false, Some(S::Stopped), S::Running), S::Stopped);
    }

    #[test]
    fn a_resize_awaiting_confirmation_keeps_the_power_it_ends_with() {
        let s = Settle {
            success: Outcome::VerifyResize,
            failure: Outcome::Observed,
        };
        assert_eq!(s.state(true, Some(S::Running), S::Running), S::VerifyResize);
        assert_eq!(
            s.state(true, Some(S::Stopped), S::Stopped),
            S::VerifyResizeStopped
        );
        assert_eq!(s.state(false, Some(S::Stopped), S::Running), S::Stopped);
    }

    #[test]
    fn held_facts_show_their_state() {
        assert_eq!(observed_held(Held::Paused), S::Paused);
        assert_eq!(observed_held(Held::Suspended), S::Suspended);
        assert_eq!(observed_held(Held::Shelved), S::Shelved);
        assert_eq!(observed_held(Held::Offloaded), S::ShelvedOffloaded);
        let s = Settle::for_action(Action::Suspend);
        assert_eq!(s.state(false, Some(S::Running), S::Running), S::Running);
    }

    #[test]
    fn facts_show_rescue_first_then_power() {
        assert_eq!(observed(true, true), S::Rescue);
        assert_eq!(observed(false, true), S::Rescue);
        assert_eq!(observed(true, false), S::Running);
        assert_eq!(observed(false, false), S::Stopped);
    }
}
