//! The plan of a request on one existing instance: refused with the domain error a dialect
//! translates, or the steps an operation runs (a saga: stop → change → start), what accepting
//! it changes on the record, and how the instance settles when it ends.

use super::table::{Deletion, allowed, deletion, unsupported};
use crate::catalog;
use crate::error::{DomainError, ResourceKind};
use crate::images::ImageFacts;
use crate::model::Instance;
use crate::op::{
    Accept, KmsState, MigratePhase, Outcome, ResizeEnd, Settle, Step, StopMode, WhenRunning,
};
use crate::request::{ActionRequest, PublicKey, Request};
use crate::state::{Action, InstanceState, Restriction};

/// The charge type of subscription instances (Tencent's spelling, kept on the record).
pub const PREPAID: &str = "PREPAID";

/// Facts from outside the instance record that a decision needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanContext<'a> {
    /// State of the key encrypting the instance's disks, if they are encrypted.
    pub kms: Option<KmsState>,
    /// The operation holding the instance's lock creates it and leaves it stopped (Alibaba
    /// CreateInstance): a start may join it.
    pub create_leaves_stopped: bool,
    /// The type a resize names, resolved by the engine from the built-in catalogue and the
    /// created types the caller may use (`None`: only a built-in type is found).
    pub resize_to: Option<&'a catalog::InstanceType>,
    /// The facts of the image the instance runs (deleted ones too), when the registry has
    /// them: a resize must leave it the memory it needs (`min_ram`).
    pub image: Option<&'a ImageFacts>,
}

/// A change to the instance record made when a plan is accepted (in the same commit as the
/// operation), not when its steps run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stopped with StoppedMode=STOP_CHARGING (true), or charged again (a start).
    StopCharging(bool),
    /// Key pairs associated (by ID; ones already there are kept once).
    AddKeys(Vec<String>),
    /// Key pairs disassociated (by ID).
    RemoveKeys(Vec<String>),
    /// The key pairs, replaced (a rebuild with new keys).
    SetKeys(Vec<String>),
    /// The system disk's image and with it the OS (a rebuild).
    SetImage(ImageFacts),
    /// The system disk grown to this size in GiB (a rebuild that expands it).
    GrowSystemDisk(u32),
    /// The instance type (a resize, a revert); `remember`: the type a resize awaiting
    /// confirmation goes back to on revert (None: nothing to go back to).
    SetType {
        to: catalog::InstanceType,
        remember: Option<catalog::InstanceType>,
    },
    /// The type before a resize is forgotten (confirmed).
    ForgetResize,
    /// The zone (an offloaded guest unshelved into another zone).
    SetZone(String),
    /// The image its shelve made (Nova's `<name>-shelved`), or none once unshelved.
    SetShelvedImage(Option<String>),
}

impl Effect {
    pub fn apply(&self, inst: &mut Instance) {
        match self {
            Self::StopCharging(on) => inst.stop_charging = *on,
            Self::AddKeys(ids) => {
                for k in ids {
                    if !inst.key_ids.contains(k) {
                        inst.key_ids.push(k.clone());
                    }
                }
            }
            Self::RemoveKeys(ids) => inst.key_ids.retain(|k| !ids.contains(k)),
            Self::SetKeys(ids) => inst.key_ids = ids.clone(),
            Self::SetImage(image) => {
                inst.image_id = image.id.clone();
                inst.os = image.os;
                inst.image_os_name = image.os_name.clone();
                inst.image_user = image.default_user.clone();
            }
            Self::GrowSystemDisk(gib) => {
                inst.system_disk.size_gib = inst.system_disk.size_gib.max(*gib);
            }
            Self::SetType { to, remember } => {
                inst.instance_type = to.name.to_string();
                inst.flavor = Some(to.clone());
                inst.resize_from = remember.as_ref().map(|t| t.name.to_string());
                inst.resize_from_flavor = remember.clone();
            }
            Self::ForgetResize => {
                inst.resize_from = None;
                inst.resize_from_flavor = None;
            }
            Self::SetZone(zone) => inst.zone = zone.clone(),
            Self::SetShelvedImage(image) => inst.shelved_image = image.clone(),
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
    /// Changes to the record on acceptance.
    pub effects: Vec<Effect>,
    /// How the engine takes it.
    pub accept: Accept,
    /// The operation holding the instance's lock, if any, ends as superseded by this one
    /// (a delete in any state). Its step in flight finishes first; no later step runs.
    pub supersedes: bool,
    /// The state the instance takes when the operation ends.
    pub settle: Settle,
}

impl Plan {
    /// Nothing to do: the request is already being carried out (a delete of an instance that
    /// is being deleted). Accepted without a new operation.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The state an instance in `current` shows once the plan is accepted as an operation.
    pub fn shows(&self, current: InstanceState) -> InstanceState {
        self.display
            .or_else(|| self.steps.first().map(|s| s.showing(current)))
            .unwrap_or(current)
    }

    fn new(action: Action, steps: Vec<Step>) -> Self {
        Self {
            action,
            steps,
            display: None,
            effects: Vec::new(),
            accept: Accept::Operation,
            supersedes: false,
            settle: Settle::for_action(action),
        }
    }
}

/// The image's administrator account (root, ubuntu, Administrator).
pub fn default_user(inst: &Instance) -> &str {
    inst.os_user()
}

fn ids(keys: &[PublicKey]) -> Vec<String> {
    keys.iter().map(|k| k.id.clone()).collect()
}

fn public(keys: &[PublicKey]) -> Vec<String> {
    keys.iter().map(|k| k.key.clone()).collect()
}

/// Decide a request on one instance. Order (as the clouds behave): restriction → instance kind
/// → state → lock. Parameter shape and existence were checked before; rate limits too. Errors
/// name the instance by its canonical ID (dialects render their own).
pub fn plan(
    inst: &Instance,
    req: &ActionRequest,
    ctx: &PlanContext<'_>,
) -> Result<Plan, DomainError> {
    let action = req.action();
    let id = inst.uuid.to_string();
    if inst.restriction != Restriction::None {
        return Err(DomainError::Restricted {
            id,
            restriction: inst.restriction,
        });
    }
    // An owner's lock stops every action but the operator's host maintenance (and an
    // admin's delete through Nova).
    let lock_override = matches!(
        req,
        Request::Delete { admin: true } | Request::SoftDelete { admin: true }
    );
    if inst.locked.is_some() && action != Action::LiveMigrate && !lock_override {
        return Err(DomainError::Locked { id });
    }
    // Nova's delete with a reclaim interval: soft_delete where its state check passes (a
    // settled, launched server, no task running), a plain delete otherwise.
    if let Request::SoftDelete { .. } = req
        && inst.lock.is_none()
        && allowed(Action::SoftDelete, inst.state, false)
    {
        // Powered off hard, as Nova's soft delete does (`power_off` with no clean shutdown
        // timeout); an instance already off is left off (the step is idempotent).
        return Ok(Plan {
            display: Some(InstanceState::SoftDeleting),
            ..Plan::new(
                Action::SoftDelete,
                vec![Step::PowerOff {
                    mode: StopMode::Hard,
                }],
            )
        });
    }
    // Tencent's recycle bin: a subscription (PREPAID) instance's first TerminateInstances
    // moves it to the bin (SHUTDOWN, "awaiting destruction"), the second destroys it;
    // pay-as-you-go instances are destroyed at once. Only Tencent creates PREPAID instances
    // (Alibaba's are all pay-as-you-go).
    if let Request::Terminate { force } = req
        && inst.charge_type == PREPAID
        && inst.lock.is_none()
        && matches!(inst.state, InstanceState::Running | InstanceState::Stopped)
        && allowed(Action::Terminate, inst.state, *force)
    {
        return Ok(Plan {
            display: Some(InstanceState::SoftDeleting),
            ..Plan::new(
                Action::SoftDelete,
                vec![Step::PowerOff {
                    mode: StopMode::Hard,
                }],
            )
        });
    }
    if let Request::Delete { .. } | Request::SoftDelete { .. } = req {
        let action = Action::Terminate;
        let steps = match deletion(inst.state) {
            Deletion::Destroy => vec![Step::Destroy],
            Deletion::AlreadyDeleting => Vec::new(),
            Deletion::Gone => {
                return Err(DomainError::NotFound {
                    kind: ResourceKind::Instance,
                    id,
                });
            }
        };
        let supersedes = !steps.is_empty() && inst.lock.is_some();
        return Ok(Plan {
            supersedes,
            ..Plan::new(action, steps)
        });
    }
    // A resize names a known type: an unknown one is refused before anything else.
    let resize_to = match req {
        Request::Resize { instance_type, .. } => Some(
            ctx.resize_to
                .filter(|t| t.name == *instance_type)
                .or_else(|| catalog::instance_type(instance_type))
                .ok_or_else(|| DomainError::NotFound {
                    kind: ResourceKind::InstanceType,
                    id: instance_type.clone(),
                })?,
        ),
        _ => None,
    };
    // Nova's resize checks the new flavor against the image (`_validate_flavor_image_nostatus`).
    if let (Some(to), Some(image)) = (resize_to, ctx.image) {
        super::create::fits_image(image, to)?;
    }
    if let Some(why) = unsupported(inst, action) {
        return Err(DomainError::Unsupported { id, why });
    }
    // A created instance is started from Pending: the start joins the create that would
    // otherwise leave it stopped (Alibaba CreateInstance then StartInstance).
    let joins_create = *req == Request::Start
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
    // Nova: a zone only for an offloaded guest (checked after the state, as Nova does).
    if let Request::Unshelve { zone: Some(_) } = req
        && inst.state != InstanceState::ShelvedOffloaded
    {
        return Err(DomainError::Unsupported {
            id,
            why: crate::error::Unsupported::UnshelveZoneNotOffloaded,
        });
    }
    // Actions that boot or restart the guest need its disks readable.
    if matches!(
        action,
        Action::Start
            | Action::Reboot
            | Action::EnterRescue
            | Action::ExitRescue
            | Action::Resume
            | Action::Unshelve
            | Action::Restore
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
            effects: vec![Effect::StopCharging(false)],
            accept: Accept::JoinCreate,
            ..Plan::new(action, vec![Step::PowerOn])
        });
    }
    if let Some(to) = resize_to {
        check_resize_target(inst, to)?;
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
    let mut effects = Vec::new();
    let mut settle = Settle::for_action(action);
    let (steps, display) = match req {
        Request::Start => {
            effects.push(Effect::StopCharging(false));
            (vec![Step::PowerOn], None)
        }
        Request::Stop {
            mode,
            stop_charging,
        } => {
            effects.push(Effect::StopCharging(*stop_charging));
            (vec![Step::PowerOff { mode: *mode }], None)
        }
        Request::Reboot { mode } => (vec![Step::Reboot { mode: *mode }], None),
        Request::Terminate { .. } | Request::Delete { .. } | Request::SoftDelete { .. } => {
            (vec![Step::Destroy], None)
        }
        // Nova's restore powers the guest on, whatever its power before the delete.
        Request::Restore => (vec![Step::PowerOn], Some(InstanceState::Restoring)),
        Request::ResetPassword { user, password, .. } => (
            around(vec![Step::SetPassword {
                user: user
                    .clone()
                    .unwrap_or_else(|| default_user(inst).to_string()),
                password_hash: password.0.clone(),
            }]),
            None,
        ),
        Request::AssociateKeys { key_ids, .. } => {
            effects.push(Effect::AddKeys(ids(key_ids)));
            (
                around(vec![Step::AddKeys {
                    keys: public(key_ids),
                }]),
                None,
            )
        }
        Request::DisassociateKeys { key_ids, .. } => {
            effects.push(Effect::RemoveKeys(ids(key_ids)));
            (
                around(vec![Step::RemoveKeys {
                    keys: public(key_ids),
                }]),
                None,
            )
        }
        Request::EnterRescue {
            user,
            password,
            mode,
            image_id,
            ..
        } => {
            let mut steps = Vec::new();
            if running {
                steps.push(Step::PowerOff { mode: *mode });
            }
            steps.push(Step::BootRescue {
                // The rescue system is Linux whatever the instance runs.
                user: user.clone().unwrap_or_else(|| "root".to_string()),
                password_hash: password.0.clone(),
                image_id: image_id.clone(),
            });
            (steps, Some(InstanceState::EnteringRescue))
        }
        Request::ExitRescue => (
            vec![
                Step::PowerOff {
                    mode: StopMode::SoftFirst,
                },
                Step::BootSystem,
            ],
            Some(InstanceState::ExitingRescue),
        ),
        Request::Rebuild {
            image,
            password,
            key_ids,
            system_disk_gib,
            ..
        } => {
            if let Some(gib) = system_disk_gib {
                effects.push(Effect::GrowSystemDisk(*gib));
            }
            effects.push(Effect::SetImage(image.clone()));
            if let Some(keys) = key_ids {
                effects.push(Effect::SetKeys(ids(keys)));
            }
            let reinstall = Step::Reprovision {
                image_id: image.id.clone(),
                user: image.default_user.clone(),
                password_hash: password.as_ref().map(|h| h.0.clone()),
                keys: key_ids.as_deref().map(public),
                guest: Default::default(),
            };
            // A running instance is stopped, reinstalled and started again; a stopped one
            // stays stopped. One marked broken (Nova ERROR) is rebuilt into a running one,
            // as Nova does, whatever its guest's power (the power-off is idempotent).
            let steps = if running || inst.state == InstanceState::Error {
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
        Request::Resize {
            instance_type,
            then,
            ..
        } => {
            let Some(to) = resize_to else {
                return Err(DomainError::Internal(format!(
                    "resize target {instance_type} not resolved"
                )));
            };
            let remember = match *then == ResizeEnd::Verify {
                true => Some(inst.type_facts().cloned().ok_or_else(|| {
                    DomainError::Internal(format!("instance {id} has a type nobody knows"))
                })?),
                false => None,
            };
            effects.push(Effect::SetType {
                to: to.clone(),
                remember,
            });
            let start = running || *then == ResizeEnd::Start;
            let display = (*then == ResizeEnd::Verify).then_some(InstanceState::Resizing);
            if *then == ResizeEnd::Verify {
                settle.success = Outcome::VerifyResize;
            }
            (
                resize_steps(running, to, StopMode::SoftFirst, start),
                display,
            )
        }
        Request::ConfirmResize => {
            effects.push(Effect::ForgetResize);
            (vec![Step::ConfirmResize], None)
        }
        Request::RevertResize => {
            let from = inst.resize_from_facts().ok_or_else(|| {
                DomainError::Internal(format!("instance {id} has no type to revert to"))
            })?;
            effects.push(Effect::SetType {
                to: from.clone(),
                remember: None,
            });
            // The guest on the new type is dropped (Nova destroys it on the destination) and
            // the previous one powered as it was.
            let on = inst.state == InstanceState::VerifyResize;
            (
                resize_steps(on, from, StopMode::Hard, on),
                Some(InstanceState::RevertingResize),
            )
        }
        Request::Pause => (vec![Step::Pause], None),
        Request::Unpause => (vec![Step::Unpause], None),
        Request::Suspend => (vec![Step::Suspend], None),
        Request::Resume => (vec![Step::Resume], None),
        Request::Shelve { offload, image_id } => {
            let mut steps = vec![Step::Shelve];
            // The shelved guest's snapshot, taken powered off (Nova's shelve image).
            if let Some(image_id) = image_id {
                steps.push(Step::Snapshot {
                    image_id: image_id.clone(),
                });
                effects.push(Effect::SetShelvedImage(Some(image_id.clone())));
            }
            if *offload {
                steps.push(Step::Offload);
            }
            (steps, None)
        }
        Request::ShelveOffload => (vec![Step::Offload], None),
        Request::CreateImage {
            image_id,
            stop_first,
        } => {
            let snapshot = Step::Snapshot {
                image_id: image_id.clone(),
            };
            let steps = if running && *stop_first {
                vec![
                    Step::PowerOff {
                        mode: StopMode::SoftFirst,
                    },
                    snapshot,
                    Step::PowerOn,
                ]
            } else {
                vec![snapshot]
            };
            (steps, None)
        }
        Request::Unshelve { zone } => {
            // The shelve image is the engine's to delete once the unshelve is accepted.
            if inst.shelved_image.is_some() {
                effects.push(Effect::SetShelvedImage(None));
            }
            if let Some(z) = zone.as_ref().filter(|z| **z != inst.zone) {
                effects.push(Effect::SetZone(z.clone()));
            }
            (vec![Step::Unshelve], None)
        }
        Request::LiveMigrate => (
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
    let accept = if running && req.when_running() == WhenRunning::NextBoot {
        Accept::NextBoot
    } else {
        Accept::Operation
    };
    Ok(Plan {
        display,
        effects,
        accept,
        settle,
        ..Plan::new(action, steps)
    })
}

/// A resize's steps: powered off (`stop` if it runs), moved to type `to`, powered on when
/// `start`.
fn resize_steps(
    running: bool,
    to: &catalog::InstanceType,
    stop: StopMode,
    start: bool,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(3);
    if running {
        steps.push(Step::PowerOff { mode: stop });
    }
    steps.push(Step::Resize {
        instance_type: to.name.to_string(),
        cpu: to.cpu,
        memory_mib: to.memory_mib,
    });
    if start {
        steps.push(Step::PowerOn);
    }
    steps
}

/// The catalogue facts of a resize's target type: another type, of the same architecture,
/// a standard one (special and bare-metal types are not reached by a resize).
fn check_resize_target(inst: &Instance, to: &catalog::InstanceType) -> Result<(), DomainError> {
    let id = inst.uuid.to_string();
    if to.name == inst.instance_type {
        return Err(DomainError::SameInstanceType {
            id,
            instance_type: to.name.to_string(),
        });
    }
    let arch = inst.type_facts().map(|t| t.arch);
    if to.kind != catalog::TypeKind::Standard || arch.is_some_and(|a| a != to.arch) {
        return Err(DomainError::InstanceTypeNotAllowed {
            id,
            instance_type: to.name.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
