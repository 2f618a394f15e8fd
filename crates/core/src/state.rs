//! The one lifecycle. Dialects render these states; they never invent their own.

use serde::{Deserialize, Serialize};

/// Canonical instance state (DESIGN.md "One state, three spellings").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    Pending,
    LaunchFailed,
    Running,
    Starting,
    Stopping,
    Stopped,
    Rebooting,
    EnteringRescue,
    Rescue,
    ExitingRescue,
    Terminating,
    /// Host maintenance (admin-triggered simulated live migration), three phases.
    EnteringLiveMigrate,
    LiveMigrating,
    ExitingLiveMigrate,
    /// Terminated: kept only so late readers can tell "gone" from "never existed".
    Terminated,
    /// A change of instance type in progress (Nova RESIZE; Tencent ResetInstancesType and
    /// Alibaba ModifyInstanceSpec while the type changes on the powered-off guest).
    Resizing,
    /// Resized, awaiting confirmResize / revertResize (Nova VERIFY_RESIZE), the guest running
    /// on the new type.
    VerifyResize,
    /// The same, the guest powered off (a resize of a SHUTOFF server).
    VerifyResizeStopped,
    /// Going back to the previous type (Nova REVERT_RESIZE).
    RevertingResize,
    // Pause, suspend and shelve (Nova; docs/pause-suspend-shelve.md).
    Pausing,
    /// The guest is frozen in memory (QEMU `stop`): its clock stands still.
    Paused,
    Unpausing,
    Suspending,
    /// The guest's memory is saved to the host's disk and its VM is gone.
    Suspended,
    Resuming,
    Shelving,
    /// Powered off, still on its host (Nova `shelved_offload_time = -1`).
    Shelved,
    ShelvingOffloading,
    /// Powered off and removed from its host; only its disks are kept.
    ShelvedOffloaded,
    Unshelving,
    // Deferred delete and the operator's error mark (Nova; docs/deferred-delete.md).
    /// Being soft-deleted: the guest is powered off (Nova task_state `soft-deleting`).
    SoftDeleting,
    /// Deleted, kept powered off on its host until reclaimed (Nova SOFT_DELETED, with
    /// `reclaim_instance_interval` > 0): restore brings it back, forceDelete ends it.
    SoftDeleted,
    /// Being restored from soft-deleted: the guest is powered on (Nova task_state
    /// `restoring`).
    Restoring,
    /// Marked broken by an operator (Nova `os-resetState` to `error`); the guest is left as
    /// it is. Rebuild, stop, delete or a reset to active get it out.
    Error,
}

impl InstanceState {
    pub const ALL: [InstanceState; 34] = [
        Self::Pending,
        Self::LaunchFailed,
        Self::Running,
        Self::Starting,
        Self::Stopping,
        Self::Stopped,
        Self::Rebooting,
        Self::EnteringRescue,
        Self::Rescue,
        Self::ExitingRescue,
        Self::Terminating,
        Self::EnteringLiveMigrate,
        Self::LiveMigrating,
        Self::ExitingLiveMigrate,
        Self::Terminated,
        Self::Resizing,
        Self::VerifyResize,
        Self::VerifyResizeStopped,
        Self::RevertingResize,
        Self::Pausing,
        Self::Paused,
        Self::Unpausing,
        Self::Suspending,
        Self::Suspended,
        Self::Resuming,
        Self::Shelving,
        Self::Shelved,
        Self::ShelvingOffloading,
        Self::ShelvedOffloaded,
        Self::Unshelving,
        Self::SoftDeleting,
        Self::SoftDeleted,
        Self::Restoring,
        Self::Error,
    ];

    /// Stable name used in the store, the admin API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::LaunchFailed => "launch_failed",
            Self::Running => "running",
            Self::Starting => "starting",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
            Self::Rebooting => "rebooting",
            Self::EnteringRescue => "entering_rescue",
            Self::Rescue => "rescue",
            Self::ExitingRescue => "exiting_rescue",
            Self::Terminating => "terminating",
            Self::EnteringLiveMigrate => "entering_live_migrate",
            Self::LiveMigrating => "live_migrating",
            Self::ExitingLiveMigrate => "exiting_live_migrate",
            Self::Terminated => "terminated",
            Self::Resizing => "resizing",
            Self::VerifyResize => "verify_resize",
            Self::VerifyResizeStopped => "verify_resize_stopped",
            Self::RevertingResize => "reverting_resize",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
            Self::Unpausing => "unpausing",
            Self::Suspending => "suspending",
            Self::Suspended => "suspended",
            Self::Resuming => "resuming",
            Self::Shelving => "shelving",
            Self::Shelved => "shelved",
            Self::ShelvingOffloading => "shelving_offloading",
            Self::ShelvedOffloaded => "shelved_offloaded",
            Self::Unshelving => "unshelving",
            Self::SoftDeleting => "soft_deleting",
            Self::SoftDeleted => "soft_deleted",
            Self::Restoring => "restoring",
            Self::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Visible to Describe* calls (a terminated instance is not listed).
    pub fn is_listed(self) -> bool {
        self != Self::Terminated
    }
}

/// Restrictions set by an operator (billing, security). They win over state rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Restriction {
    #[default]
    None,
    /// Expired / isolated (Tencent SHUTDOWN, Alibaba arrears).
    Expired,
    /// Being isolated.
    Isolating,
    Frozen,
    Banned,
    /// Locked for security reasons (Alibaba OperationLocks `security`).
    Security,
}

impl Restriction {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "expired" => Self::Expired,
            "isolating" => Self::Isolating,
            "frozen" => Self::Frozen,
            "banned" => Self::Banned,
            "security" => Self::Security,
            _ => return None,
        })
    }
}

/// Everything a principal can ask of an instance. One enum for all dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Start,
    Stop,
    Reboot,
    Terminate,
    ResetPassword,
    EnterRescue,
    ExitRescue,
    AssociateKeys,
    DisassociateKeys,
    LiveMigrate,
    /// Reinstall the system disk from an image (Nova rebuild, Tencent ResetInstance).
    Rebuild,
    /// Change the instance type (Nova resize, Tencent ResetInstancesType, Alibaba
    /// ModifyInstanceSpec).
    Resize,
    /// Keep the new type of a resize awaiting confirmation (Nova confirmResize).
    ConfirmResize,
    /// Go back to the previous type (Nova revertResize).
    RevertResize,
    // Pause, suspend and shelve (Nova only; docs/pause-suspend-shelve.md).
    Pause,
    Unpause,
    Suspend,
    Resume,
    Shelve,
    ShelveOffload,
    Unshelve,
    /// Delete, keeping the powered-off guest until it is reclaimed (Nova's delete with
    /// `reclaim_instance_interval` > 0).
    SoftDelete,
    /// Bring a soft-deleted instance back (Nova restore).
    Restore,
    /// Make an image of the system disk (Nova createImage, Tencent and Alibaba CreateImage;
    /// docs/images.md "Images from instances").
    CreateImage,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Reboot => "reboot",
            Self::Terminate => "terminate",
            Self::ResetPassword => "reset_password",
            Self::EnterRescue => "enter_rescue",
            Self::ExitRescue => "exit_rescue",
            Self::AssociateKeys => "associate_keys",
            Self::DisassociateKeys => "disassociate_keys",
            Self::LiveMigrate => "live_migrate",
            Self::Rebuild => "rebuild",
            Self::Resize => "resize",
            Self::ConfirmResize => "confirm_resize",
            Self::RevertResize => "revert_resize",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Suspend => "suspend",
            Self::Resume => "resume",
            Self::Shelve => "shelve",
            Self::ShelveOffload => "shelve_offload",
            Self::Unshelve => "unshelve",
            Self::SoftDelete => "soft_delete",
            Self::Restore => "restore",
            Self::CreateImage => "create_image",
        }
    }
}

/// Outcome of an operation as LatestOperationState shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OpState {
    #[serde(rename = "OPERATING")]
    Operating,
    #[serde(rename = "SUCCESS")]
    Success,
    #[serde(rename = "FAILED")]
    Failed,
}

impl OpState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operating => "OPERATING",
            Self::Success => "SUCCESS",
            Self::Failed => "FAILED",
        }
    }
}
