//! Which action is allowed in which state, and what it does: the only place these rules live.
//!
//! [`plan`] either refuses with the domain error a dialect translates, or returns the steps an
//! operation runs (a saga: stop → change → start), which the engine persists and resumes.

use crate::catalog::{self, Arch, TypeKind};
use crate::error::{DomainError, Unsupported};
use crate::model::{Instance, OsFamily};
use crate::state::{Action, InstanceState, Restriction};
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
    },
    /// Host maintenance: one of three phases of a simulated live migration.
    LiveMigrate {
        phase: MigratePhase,
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

/// Facts from outside the instance record that a decision needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanContext {
    /// State of the key encrypting the instance's disks, if they are encrypted.
    pub kms: Option<KmsState>,
    /// The operation holding the instance's lock creates it and leaves it stopped (Alibaba
    /// CreateInstance): a start may join it.
    pub create_leaves_stopped: bool,
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

/// A mutating request on one instance, already parsed and validated for shape by a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRequest {
    Start,
    Stop {
        mode: StopMode,
        stop_charging: bool,
    },
    Reboot {
        mode: StopMode,
    },
    /// `force`: a running instance may be terminated (Alibaba needs `Force`; Tencent always).
    Terminate {
        force: bool,
    },
    /// Delete in any state (Nova's delete): an operation in flight is superseded, an instance
    /// already being deleted is left to finish. An owner's lock refuses it unless `admin`
    /// (Nova's `check_instance_lock`: admins pass).
    Delete {
        admin: bool,
    },
    ResetPassword {
        user: String,
        password_hash: String,
        when_running: WhenRunning,
    },
    EnterRescue {
        user: String,
        password_hash: String,
        mode: StopMode,
        image_id: Option<String>,
    },
    ExitRescue,
    AssociateKeys {
        keys: Vec<String>,
        when_running: WhenRunning,
    },
    DisassociateKeys {
        keys: Vec<String>,
        when_running: WhenRunning,
    },
    LiveMigrate,
    Rebuild {
        image_id: String,
        user: String,
        password_hash: Option<String>,
        /// Replace the injected public keys (None: keep them).
        keys: Option<Vec<String>>,
    },
}

impl ActionRequest {
    pub fn action(&self) -> Action {
        match self {
            Self::Start => Action::Start,
            Self::Stop { .. } => Action::Stop,
            Self::Reboot { .. } => Action::Reboot,
            Self::Terminate { .. } | Self::Delete { .. } => Action::Terminate,
            Self::ResetPassword { .. } => Action::ResetPassword,
            Self::EnterRescue { .. } => Action::EnterRescue,
            Self::ExitRescue => Action::ExitRescue,
            Self::AssociateKeys { .. } => Action::AssociateKeys,
            Self::DisassociateKeys { .. } => Action::DisassociateKeys,
            Self::LiveMigrate => Action::LiveMigrate,
            Self::Rebuild { .. } => Action::Rebuild,
        }
    }

    /// Opens the Running state to actions that otherwise need a stopped instance.
    fn force(&self) -> bool {
        match self {
            Self::ResetPassword { when_running, .. }
            | Self::AssociateKeys { when_running, .. }
            | Self::DisassociateKeys { when_running, .. } => *when_running != WhenRunning::Refuse,
            Self::Terminate { force } => *force,
            _ => false,
        }
    }

    fn when_running(&self) -> WhenRunning {
        match self {
            Self::ResetPassword { when_running, .. }
            | Self::AssociateKeys { when_running, .. }
            | Self::DisassociateKeys { when_running, .. } => *when_running,
            _ => WhenRunning::Refuse,
        }
    }
}

/// What an accepted request will do to one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    pub steps: Vec<Step>,
    /// State shown for the whole operation, overriding each step's own.
    pub display: Option<InstanceState>,
    /// Instance attribute changes applied on acceptance.
    pub stop_charging: Option<bool>,
    /// How the engine takes it.
    pub accept: Accept,
    /// The operation holding the instance's lock, if any, ends as superseded by this one
    /// (a delete in any state). Its step in flight finishes first; no later step runs.
    pub supersedes: bool,
}

impl Plan {
    /// Nothing to do: the request is already being carried out (a delete of an instance that
    /// is being deleted). Accepted without a new operation.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

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
        S::Terminating => Deletion::AlreadyDeleting,
        S::Terminated => Deletion::Gone,
    }
}

/// Is `action` allowed in `state`? `force` opens Running to guest changes (ForceStop) and to
/// termination (Alibaba `Force`).
/// Exhaustive on purpose: a new state must be decided for every action.
pub fn allowed(action: Action, state: InstanceState, force: bool) -> bool {
    use InstanceState as S;
    match state {
        S::Running => match action {
            Action::Stop
            | Action::Reboot
            | Action::EnterRescue
            | Action::LiveMigrate
            | Action::Rebuild => true,
            Action::ResetPassword
            | Action::AssociateKeys
            | Action::DisassociateKeys
            | Action::Terminate => force,
            Action::Start | Action::ExitRescue | Action::Create => false,
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
        },
        // A broken instance in rescue may be given up on: every cloud lets it be deleted.
        S::Rescue => matches!(action, Action::ExitRescue | Action::Terminate),
        S::LaunchFailed => action == Action::Terminate,
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
    }
}

/// Catalogue facts that forbid `action` for this instance, whatever its state.
fn unsupported(inst: &Instance, action: Action) -> Option<Unsupported> {
    let ty = catalog::instance_type(&inst.instance_type);
    let kind = ty.map(|t| t.kind).unwrap_or(TypeKind::Standard);
    let arm = ty.is_some_and(|t| t.arch == Arch::Arm64);
    let edge = catalog::zone(&inst.zone).is_some_and(|z| z.edge);
    let stopped_uncharged = inst.stop_charging && inst.state == InstanceState::Stopped;
    match action {
        Action::EnterRescue => {
            if kind == TypeKind::BareMetal {
                Some(Unsupported::InstanceKind)
            } else if arm {
                Some(Unsupported::ArmArchitecture)
            } else if edge {
                Some(Unsupported::EdgeZone)
            } else if kind == TypeKind::Special {
                Some(Unsupported::SpecialInstanceType)
            } else if inst.reinstall_failed {
                Some(Unsupported::ReinstallFailed)
            } else if stopped_uncharged {
                Some(Unsupported::StoppedModeStopCharging)
            } else {
                None
            }
        }
        Action::ResetPassword => {
            if kind == TypeKind::BareMetal {
                Some(Unsupported::InstanceKind)
            } else if inst.application_role.is_some() {
                Some(Unsupported::ApplicationRole)
            } else if kind == TypeKind::Special {
                Some(Unsupported::SpecialInstanceType)
            } else if inst.reinstall_failed {
                Some(Unsupported::ReinstallFailed)
            } else if stopped_uncharged {
                Some(Unsupported::StoppedModeStopCharging)
            } else {
                None
            }
        }
        Action::AssociateKeys | Action::DisassociateKeys => {
            if kind == TypeKind::BareMetal {
                Some(Unsupported::InstanceKind)
            } else if inst.os == OsFamily::Windows {
                Some(Unsupported::WindowsOs)
            } else if stopped_uncharged {
                Some(Unsupported::StoppedModeStopCharging)
            } else {
                None
            }
        }
        Action::Create
        | Action::Start
        | Action::Stop
        | Action::Reboot
        | Action::Terminate
        | Action::ExitRescue
        | Action::LiveMigrate
        | Action::Rebuild => None,
    }
}

/// Decide a request on one instance. Order (as the clouds behave): restriction → instance kind
/// → state → lock. Parameter shape and existence were checked before; rate limits too.
pub fn plan(inst: &Instance, req: &ActionRequest, ctx: &PlanContext) -> Result<Plan, DomainError> {
    let action = req.action();
    let id = inst.tencent_id.clone();
    if inst.restriction != Restriction::None {
        return Err(DomainError::Restricted {
            id,
            restriction: inst.restriction,
        });
    }
    // An owner's lock stops every action but the operator's host maintenance (and an
    // admin's delete through Nova).
    let lock_override = matches!(req, ActionRequest::Delete { admin: true });
    if inst.locked.is_some() && action != Action::LiveMigrate && !lock_override {
        return Err(DomainError::Locked { id });
    }
    if let ActionRequest::Delete { .. } = req {
        let steps = match deletion(inst.state) {
            Deletion::Destroy => vec![Step::Destroy],
            Deletion::AlreadyDeleting => Vec::new(),
            Deletion::Gone => {
                return Err(DomainError::NotFound {
                    kind: crate::error::ResourceKind::Instance,
                    id,
                });
            }
        };
        let supersedes = !steps.is_empty() && inst.lock.is_some();
        return Ok(Plan {
            action,
            steps,
            display: None,
            stop_charging: None,
            supersedes,
            accept: Accept::Operation,
        });
    }
    if let Some(why) = unsupported(inst, action) {
        return Err(DomainError::Unsupported { id, why });
    }
    // A created instance is started from Pending: the start joins the create that would
    // otherwise leave it stopped (Alibaba CreateInstance then StartInstance).
    let joins_create = *req == ActionRequest::Start
        && inst.state == InstanceState::Pending
        && ctx.create_leaves_stopped
        && inst
            .lock
            .as_ref()
            .is_some_and(|l| l.action == Action::Create);
    if !joins_create && !allowed(action, inst.state, req.force()) {
        return Err(DomainError::StateConflict {
            id,
            state: inst.state,
            action,
        });
    }
    // Actions that boot or restart the guest need its disks readable.
    if matches!(
        action,
        Action::Start | Action::Reboot | Action::EnterRescue | Action::ExitRescue
    ) {
        if inst.disk_error {
            return Err(DomainError::DiskError { id });
        }
        if let Some(kms) = ctx.kms.filter(|k| *k != KmsState::Enabled) {
            return Err(DomainError::KmsKey {
                id,
                key: inst.kms_key_id.clone().unwrap_or_default(),
                state: kms,
            });
        }
    }
    if joins_create {
        return Ok(Plan {
            action,
            steps: vec![Step::PowerOn],
            display: None,
            stop_charging: Some(false),
            supersedes: false,
            accept: Accept::JoinCreate,
        });
    }
    if let Some(lock) = &inst.lock {
        return Err(DomainError::OperationInProgress {
            id,
            running: lock.action,
            same_action: lock.action == action,
        });
    }
    let running = inst.state == InstanceState::Running;
    // ForceStop: try a clean shutdown first, then power off (the seeds' ForceStop semantics).
    let around = |change: Vec<Step>| -> Vec<Step> {
        if running && req.when_running() == WhenRunning::StopAndStart {
            let mut steps = vec![Step::PowerOff {
                mode: StopMode::SoftFirst,
            }];
            steps.extend(change);
            steps.push(Step::PowerOn);
            steps
        } else {
            change
        }
    };
    let (steps, display) = match req {
        ActionRequest::Start => (vec![Step::PowerOn], None),
        ActionRequest::Stop { mode, .. } => (vec![Step::PowerOff { mode: *mode }], None),
        ActionRequest::Reboot { mode } => (vec![Step::Reboot { mode: *mode }], None),
        ActionRequest::Terminate { .. } | ActionRequest::Delete { .. } => {
            (vec![Step::Destroy], None)
        }
        ActionRequest::ResetPassword {
            user,
            password_hash,
            ..
        } => (
            around(vec![Step::SetPassword {
                user: user.clone(),
                password_hash: password_hash.clone(),
            }]),
            None,
        ),
        ActionRequest::AssociateKeys { keys, .. } => {
            (around(vec![Step::AddKeys { keys: keys.clone() }]), None)
        }
        ActionRequest::DisassociateKeys { keys, .. } => {
            (around(vec![Step::RemoveKeys { keys: keys.clone() }]), None)
        }
        ActionRequest::EnterRescue {
            user,
            password_hash,
            mode,
            image_id,
        } => {
            let mut steps = Vec::new();
            if running {
                steps.push(Step::PowerOff { mode: *mode });
            }
            steps.push(Step::BootRescue {
                user: user.clone(),
                password_hash: password_hash.clone(),
                image_id: image_id.clone(),
            });
            (steps, Some(InstanceState::EnteringRescue))
        }
        ActionRequest::ExitRescue => (
            vec![
                Step::PowerOff {
                    mode: StopMode::SoftFirst,
                },
                Step::BootSystem,
            ],
            Some(InstanceState::ExitingRescue),
        ),
        ActionRequest::Rebuild {
            image_id,
            user,
            password_hash,
            keys,
        } => {
            let reinstall = Step::Reprovision {
                image_id: image_id.clone(),
                user: user.clone(),
                password_hash: password_hash.clone(),
                keys: keys.clone(),
            };
            // A running instance is stopped, reinstalled and started again; a stopped one
            // stays stopped.
            let steps = if running {
                vec![
                    Step::PowerOff {
                        mode: StopMode::SoftFirst,
                    },
                    reinstall,
                    Step::PowerOn,
                ]
            } else {
                vec![reinstall]
            };
            (steps, None)
        }
        ActionRequest::LiveMigrate => (
            [
                MigratePhase::Enter,
                MigratePhase::Migrate,
                MigratePhase::Exit,
            ]
            .into_iter()
            .map(|phase| Step::LiveMigrate { phase })
            .collect(),
            None,
        ),
    };
    let stop_charging = match req {
        ActionRequest::Stop { stop_charging, .. } => Some(*stop_charging),
        ActionRequest::Start => Some(false),
        _ => None,
    };
    let accept = if running && req.when_running() == WhenRunning::NextBoot {
        Accept::NextBoot
    } else {
        Accept::Operation
    };
    Ok(Plan {
        action,
        steps,
        display,
        stop_charging,
        supersedes: false,
        accept,
    })
}

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
/// settled active or stopped state with no task running. Checked under the fleet lock by
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
        S::Running | S::Stopped if inst.lock.is_none() => Ok(()),
        S::Running
        | S::Stopped
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
        | S::Terminated => Err(busy()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Disk, OpLock};
    use InstanceState as S;

    fn inst(state: InstanceState) -> Instance {
        Instance {
            uuid: uuid::Uuid::nil(),
            tencent_id: "ins-aaaaaaaa".into(),
            aliyun_id: "i-aaaaaaaaaaaaaaaaaaaa".into(),
            account: "a".into(),
            region: "local".into(),
            zone: "local-a".into(),
            name: "n".into(),
            host_name: "h".into(),
            instance_type: "S5.MEDIUM4".into(),
            image_id: "img-tos31x64".into(),
            os: OsFamily::Linux,
            state,
            restriction: Restriction::None,
            lock: None,
            latest_op: None,
            created_at_ms: 0,
            system_disk: Disk {
                id: "disk-1".into(),
                size_gib: 50,
                disk_type: "CLOUD_PREMIUM".into(),
            },
            data_disks: vec![],
            private_ip: "10.0.0.2".into(),
            key_ids: vec![],
            project_id: 0,
            charge_type: "POSTPAID_BY_HOUR".into(),
            security_group_ids: vec![],
            tags: vec![],
            stop_charging: false,
            reinstall_failed: false,
            application_role: None,
            client_token: None,
            disk_error: false,
            kms_key_id: None,
            description: String::new(),
            locked: None,
            ssh_endpoint: None,
            attrs: Default::default(),
            updated_at_ms: 0,
            internet_max_bandwidth_out: 0,
        }
    }

    #[test]
    fn metadata_changes_only_when_settled_and_unlocked() {
        for s in InstanceState::ALL {
            let ok = matches!(s, S::Running | S::Stopped);
            assert_eq!(metadata_change(&inst(s)).is_ok(), ok, "{s:?}");
        }
        let mut i = inst(S::Stopped);
        i.lock = Some(OpLock {
            operation_id: uuid::Uuid::nil(),
            action: Action::ResetPassword,
        });
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

    fn reset(force: bool) -> ActionRequest {
        ActionRequest::ResetPassword {
            user: "root".into(),
            password_hash: "$6$x".into(),
            when_running: if force {
                WhenRunning::StopAndStart
            } else {
                WhenRunning::Refuse
            },
        }
    }

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
        expected.extend(ok(Action::Rebuild, &[S::Running, S::Stopped]));
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
        // Force additionally opens Running for guest changes and termination, nothing else.
        for a in [
            Action::ResetPassword,
            Action::AssociateKeys,
            Action::DisassociateKeys,
            Action::Terminate,
        ] {
            assert!(allowed(a, S::Running, true));
            assert!(!allowed(a, S::Rebooting, true));
        }
    }

    #[test]
    fn running_without_force_is_a_state_conflict() {
        let e = plan(&inst(S::Running), &reset(false), &PlanContext::default()).unwrap_err();
        assert!(matches!(
            e,
            DomainError::StateConflict {
                state: S::Running,
                ..
            }
        ));
    }

    #[test]
    fn force_stop_wraps_change_in_stop_and_start() {
        let p = plan(&inst(S::Running), &reset(true), &PlanContext::default()).unwrap();
        assert_eq!(
            p.steps.first(),
            Some(&Step::PowerOff {
                mode: StopMode::SoftFirst
            })
        );
        assert_eq!(p.steps.last(), Some(&Step::PowerOn));
        let p = plan(&inst(S::Stopped), &reset(true), &PlanContext::default()).unwrap();
        assert_eq!(p.steps.len(), 1);
    }

    #[test]
    fn lock_gives_mutex_or_in_progress_after_state() {
        let mut i = inst(S::Stopped);
        i.lock = Some(OpLock {
            operation_id: uuid::Uuid::nil(),
            action: Action::ResetPassword,
        });
        let e = plan(&i, &reset(false), &PlanContext::default()).unwrap_err();
        assert!(matches!(
            e,
            DomainError::OperationInProgress {
                same_action: true,
                ..
            }
        ));
        let e = plan(
            &i,
            &ActionRequest::EnterRescue {
                user: "root".into(),
                password_hash: "h".into(),
                mode: StopMode::Soft,
                image_id: None,
            },
            &PlanContext::default(),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            DomainError::OperationInProgress {
                same_action: false,
                ..
            }
        ));
        // The state error wins when the state forbids the action anyway.
        let e = plan(
            &i,
            &ActionRequest::Reboot {
                mode: StopMode::Soft,
            },
            &PlanContext::default(),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            DomainError::StateConflict {
                state: S::Stopped,
                ..
            }
        ));
    }

    #[test]
    fn a_lock_stops_everything_but_maintenance() {
        let mut i = inst(S::Running);
        i.locked = Some(String::new());
        let e = plan(
            &i,
            &ActionRequest::Reboot {
                mode: StopMode::Soft,
            },
            &PlanContext::default(),
        )
        .unwrap_err();
        assert!(matches!(e, DomainError::Locked { .. }));
        assert!(plan(&i, &ActionRequest::LiveMigrate, &PlanContext::default()).is_ok());
    }

    #[test]
    fn restriction_wins_over_state() {
        let mut i = inst(S::Rebooting);
        i.restriction = Restriction::Frozen;
        assert!(matches!(
            plan(&i, &reset(true), &PlanContext::default()).unwrap_err(),
            DomainError::Restricted { .. }
        ));
    }

    #[test]
    fn catalogue_kinds() {
        let mut i = inst(S::Running);
        i.os = OsFamily::Windows;
        let e = plan(
            &i,
            &ActionRequest::AssociateKeys {
                keys: vec![],
                when_running: WhenRunning::StopAndStart,
            },
            &PlanContext::default(),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            DomainError::Unsupported {
                why: Unsupported::WindowsOs,
                ..
            }
        ));
        let mut i = inst(S::Running);
        i.instance_type = "SR1.MEDIUM4".into();
        let rescue = ActionRequest::EnterRescue {
            user: "root".into(),
            password_hash: "h".into(),
            mode: StopMode::Soft,
            image_id: None,
        };
        assert!(matches!(
            plan(&i, &rescue, &PlanContext::default()).unwrap_err(),
            DomainError::Unsupported {
                why: Unsupported::ArmArchitecture,
                ..
            }
        ));
        let mut i = inst(S::Stopped);
        i.stop_charging = true;
        assert!(matches!(
            plan(&i, &rescue, &PlanContext::default()).unwrap_err(),
            DomainError::Unsupported {
                why: Unsupported::StoppedModeStopCharging,
                ..
            }
        ));
    }

    #[test]
    fn rescue_from_running_stops_first() {
        let rescue = ActionRequest::EnterRescue {
            user: "root".into(),
            password_hash: "h".into(),
            mode: StopMode::Hard,
            image_id: None,
        };
        let p = plan(&inst(S::Running), &rescue, &PlanContext::default()).unwrap();
        assert_eq!(
            p.steps[0],
            Step::PowerOff {
                mode: StopMode::Hard
            }
        );
        assert_eq!(p.display, Some(S::EnteringRescue));
        let p = plan(&inst(S::Stopped), &rescue, &PlanContext::default()).unwrap();
        assert_eq!(p.steps.len(), 1);
    }

    #[test]
    fn delete_in_every_state_supersedes_the_operation_in_flight() {
        let ctx = PlanContext::default();
        for s in S::ALL {
            let mut i = inst(s);
            i.lock = Some(OpLock {
                operation_id: uuid::Uuid::nil(),
                action: Action::Reboot,
            });
            let got = plan(&i, &ActionRequest::Delete { admin: false }, &ctx);
            match deletion(s) {
                Deletion::Destroy => {
                    let p = got.unwrap();
                    assert_eq!(p.steps, vec![Step::Destroy], "{s:?}");
                    assert!(p.supersedes && p.action == Action::Terminate, "{s:?}");
                }
                Deletion::AlreadyDeleting => assert!(got.unwrap().is_empty(), "{s:?}"),
                Deletion::Gone => assert!(matches!(got, Err(DomainError::NotFound { .. }))),
            }
        }
        // Nothing in flight: nothing superseded.
        let p = plan(
            &inst(S::Pending),
            &ActionRequest::Delete { admin: false },
            &ctx,
        )
        .unwrap();
        assert!(!p.supersedes);
        // Terminate keeps its state rules (Tencent, Alibaba).
        assert!(matches!(
            plan(
                &inst(S::Pending),
                &ActionRequest::Terminate { force: true },
                &ctx
            ),
            Err(DomainError::StateConflict { .. })
        ));
    }

    #[test]
    fn an_owner_lock_refuses_delete_unless_admin() {
        let ctx = PlanContext::default();
        let mut i = inst(S::Running);
        i.locked = Some("why".into());
        assert!(matches!(
            plan(&i, &ActionRequest::Delete { admin: false }, &ctx),
            Err(DomainError::Locked { .. })
        ));
        assert!(plan(&i, &ActionRequest::Delete { admin: true }, &ctx).is_ok());
        assert!(matches!(
            plan(&i, &ActionRequest::Terminate { force: true }, &ctx),
            Err(DomainError::Locked { .. })
        ));
    }

    fn keys(when_running: WhenRunning) -> ActionRequest {
        ActionRequest::AssociateKeys {
            keys: vec!["ssh-ed25519 AAAA".into()],
            when_running,
        }
    }

    /// Regression (issue 11): a next-boot change on a running instance was an operation of
    /// the guest-change duration holding the lock; it is recorded at once, with no lock.
    #[test]
    fn next_boot_on_running_is_accepted_without_an_operation() {
        let ctx = PlanContext::default();
        for req in [
            keys(WhenRunning::NextBoot),
            ActionRequest::ResetPassword {
                user: "root".into(),
                password_hash: "h".into(),
                when_running: WhenRunning::NextBoot,
            },
        ] {
            let p = plan(&inst(S::Running), &req, &ctx).unwrap();
            assert_eq!(p.accept, Accept::NextBoot);
            assert_eq!(p.steps.len(), 1);
            // On a stopped instance it is an ordinary operation (the lock shows it running).
            let p = plan(&inst(S::Stopped), &req, &ctx).unwrap();
            assert_eq!(p.accept, Accept::Operation);
        }
        // A lock still refuses it, as any other change.
        let mut i = inst(S::Running);
        i.lock = Some(OpLock {
            operation_id: uuid::Uuid::nil(),
            action: Action::Reboot,
        });
        assert!(matches!(
            plan(&i, &keys(WhenRunning::NextBoot), &ctx).unwrap_err(),
            DomainError::OperationInProgress { .. }
        ));
        // Live changes (Nova) and ForceStop (Tencent) stay operations.
        for w in [WhenRunning::Live, WhenRunning::StopAndStart] {
            let p = plan(&inst(S::Running), &keys(w), &ctx).unwrap();
            assert_eq!(p.accept, Accept::Operation);
        }
    }

    /// Regression (issue 11): StartInstance right after CreateInstance (libcloud's
    /// create_node) was refused in Pending; it joins the create.
    #[test]
    fn start_joins_a_create_that_leaves_the_instance_stopped() {
        let mut i = inst(S::Pending);
        i.lock = Some(OpLock {
            operation_id: uuid::Uuid::nil(),
            action: Action::Create,
        });
        let joining = PlanContext {
            create_leaves_stopped: true,
            ..PlanContext::default()
        };
        let p = plan(&i, &ActionRequest::Start, &joining).unwrap();
        assert_eq!(p.accept, Accept::JoinCreate);
        assert_eq!(p.steps, vec![Step::PowerOn]);
        // A create that boots anyway (RunInstances): Pending refuses the start.
        assert!(matches!(
            plan(&i, &ActionRequest::Start, &PlanContext::default()).unwrap_err(),
            DomainError::StateConflict {
                state: S::Pending,
                ..
            }
        ));
        // Only a start joins; a stop in Pending is still a state conflict.
        assert!(matches!(
            plan(
                &i,
                &ActionRequest::Stop {
                    mode: StopMode::Soft,
                    stop_charging: false
                },
                &joining
            )
            .unwrap_err(),
            DomainError::StateConflict { .. }
        ));
    }
}
