//! Accepting work on existing instances: prepare the request (core checks it against its
//! targets, the password is hashed), ask core for a plan per instance, then write operations,
//! locks and the plans' effects in one commit, generation-checked; the fleet takes them only
//! once committed, and a batch that lost a race on a target plans again.

use crate::generations::{self, RETRIES, Refused, busy};
use crate::update::AttrChange;
use crate::{Engine, Fleet, now_ms, visible_or_not_found};
use nubis_core::limits::batch;
use nubis_core::{
    Accept, Action, ActionRequest, Command, DomainError, Instance, LatestOp, OpLock, OpState,
    Operation, Plan, PlanContext, Principal, ResourceKind, Step, rules,
};
use nubis_store::Write;
use uuid::Uuid;

/// How a batch is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Every instance or none: the first refusal refuses the batch (Tencent, Alibaba
    /// `AllTogether`).
    AllOrNothing,
    /// Every instance that can be acted on is, in one commit; each refused one gets its own
    /// error (Alibaba `SuccessFirst`, AttachKeyPair).
    SuccessFirst,
}

/// One request on a batch of instances.
#[derive(Debug, Clone)]
pub struct Batch<'a> {
    /// Canonical IDs, in the order results are reported.
    pub targets: &'a [Uuid],
    pub cmd: Command,
    pub mode: BatchMode,
    /// Run every check (parameters, existence, rules, locks) and write nothing.
    pub dry_run: bool,
    /// Descriptive attributes changed on every accepted instance, in the same commit.
    pub attrs: AttrChange,
    /// A rebuild's user data and files, written with its acceptance (ignored by any other
    /// command).
    pub guest: RebuildGuest,
}

/// What a rebuild gives the new system disk besides its credentials (Nova rebuild's
/// `personality` before 2.57, `user_data` from 2.57), written in the commit that accepts it
/// so the runner's reprovisioning step reads them.
#[derive(Debug, Clone, Default)]
pub struct RebuildGuest {
    /// Replace the user data (`Some(None)`: remove it); `None`: keep it.
    pub user_data: Option<Option<String>>,
    /// The files for the new disk: the rebuild's own. Those of the create or of an earlier
    /// rebuild are not given again (as in Nova), so every rebuild replaces them.
    pub files: Vec<nubis_core::InjectedFile>,
}

impl RebuildGuest {
    /// The writes for a rebuild of `instance`.
    fn writes(&self, instance: Uuid) -> Vec<Write> {
        let mut w = vec![if self.files.is_empty() {
            Write::DeleteInjectedFiles(instance)
        } else {
            Write::InjectedFiles {
                instance,
                files: self.files.clone(),
            }
        }];
        match &self.user_data {
            None => {}
            Some(Some(data)) => w.push(Write::UserData {
                instance,
                data: data.clone(),
            }),
            Some(None) => w.push(Write::DeleteUserData(instance)),
        }
        w
    }
}

impl<'a> Batch<'a> {
    pub fn new(targets: &'a [Uuid], cmd: Command, mode: BatchMode) -> Self {
        Self {
            targets,
            cmd,
            mode,
            dry_run: false,
            attrs: AttrChange::default(),
            guest: RebuildGuest::default(),
        }
    }
}

/// Per-instance results of a batch, in the order of its targets. A refused instance has its
/// domain error; with a dry run an admissible one has `DryRunOk`.
pub type BatchResults = Vec<Result<(), DomainError>>;

/// What accepting plans will change: the writes, and what the fleet takes once they are
/// committed (nothing of it is in memory before).
#[derive(Default)]
struct Acceptance {
    writes: Vec<Write>,
    /// The instances' new records, one generation on from what the plans read.
    records: Vec<Instance>,
    /// New operations to run.
    ops: Vec<Operation>,
    /// Operations ended as superseded (they leave the running table).
    superseded: Vec<Uuid>,
    /// Next-boot changes for the driver to stage: (instance, steps).
    staged: Vec<(nubis_driver::VmSpec, Vec<Step>)>,
    /// Creates that had steps appended, with all their steps.
    joined: Vec<Operation>,
    /// Images registered with the operations (an image being made from an instance).
    images: Vec<nubis_core::images::Image>,
}

/// The operation carrying out `plan` on `inst`, started: the instance shows the plan's state
/// and holds the lock, and its latest operation is this one. A next-boot change is recorded
/// done at once (the driver stages it before the commit): no lock, the state stays.
pub(crate) fn start_operation(
    inst: &mut Instance,
    request_id: &str,
    caller: &Principal,
    plan: Plan,
    now: i64,
) -> Operation {
    let next_boot = plan.accept == Accept::NextBoot;
    let shows = plan.shows(inst.state);
    let op = Operation {
        id: Uuid::now_v7(),
        request_id: request_id.to_string(),
        account: caller.account.clone(),
        instance: inst.uuid,
        action: plan.action,
        steps_done: if next_boot {
            u32::try_from(plan.steps.len()).unwrap_or(u32::MAX)
        } else {
            0
        },
        steps: plan.steps,
        display: plan.display,
        from_state: inst.state,
        state: if next_boot {
            OpState::Success
        } else {
            OpState::Operating
        },
        attempts: 1,
        error: None,
        created_at_ms: now,
        finished_at_ms: next_boot.then_some(now),
        settle: Some(plan.settle),
        user_id: caller.keystone_user.clone(),
        project_id: caller.project.as_ref().map(|p| p.id.clone()),
    };
    if !next_boot {
        inst.state = shows;
        inst.lock = Some(OpLock {
            operation_id: op.id,
            action: op.action,
        });
    }
    inst.latest_op = Some(LatestOp {
        action: op.action,
        state: op.state,
        request_id: request_id.to_string(),
        error: None,
    });
    op
}

impl Engine {
    /// Public keys of key pairs `p` sees, in order; unknown → NotFound.
    pub(crate) fn public_keys(
        &self,
        p: &Principal,
        key_ids: &[String],
    ) -> Result<Vec<String>, DomainError> {
        let fleet = self.inner.fleet.lock();
        key_ids
            .iter()
            .map(|id| {
                fleet
                    .key_pairs
                    .get(id)
                    .filter(|k| p.sees_key_pair(k))
                    .map(|k| k.public_key.clone())
                    .ok_or_else(|| DomainError::NotFound {
                        kind: ResourceKind::KeyPair,
                        id: id.clone(),
                    })
            })
            .collect()
    }

    /// The prepared request: core checks it against the visible targets, the key pairs are
    /// resolved, the password hashed (off the async workers; the clear text ends there).
    async fn prepare(
        &self,
        p: &Principal,
        targets: &[Instance],
        cmd: Command,
    ) -> Result<ActionRequest, DomainError> {
        let image = cmd.image_id().and_then(|id| self.image_facts(p, id));
        rules::check_request(&cmd, targets, image.as_ref())?;
        let keys = match cmd.key_ids() {
            Some(ids) => self.public_keys(p, ids)?,
            None => Vec::new(),
        };
        if cmd.password().is_none() {
            return cmd.prepare(keys, image, |_| String::new());
        }
        tokio::task::spawn_blocking(move || cmd.prepare(keys, image, nubis_auth::password::hash))
            .await
            .map_err(|e| DomainError::Internal(format!("hashing: {e}")))?
    }

    /// Accept a command on a batch of instances, all or nothing. With `dry_run` every check
    /// runs (parameters, existence, rules, locks) and nothing is written: `DryRunOk`.
    pub async fn submit(
        &self,
        p: &Principal,
        request_id: &str,
        targets: &[Uuid],
        cmd: Command,
        dry_run: bool,
    ) -> Result<(), DomainError> {
        let batch = Batch {
            dry_run,
            ..Batch::new(targets, cmd, BatchMode::AllOrNothing)
        };
        self.submit_batch(p, request_id, batch).await.map(|_| ())
    }

    /// Accept a batch in one commit, as its mode says. `Err` refuses the whole batch: any
    /// refusal in [`BatchMode::AllOrNothing`] (`DryRunOk` for a dry run that passed), or a
    /// failure to record. `Ok` has one result per target.
    pub async fn submit_batch(
        &self,
        p: &Principal,
        request_id: &str,
        batch: Batch<'_>,
    ) -> Result<BatchResults, DomainError> {
        self.submit_batch_with(p, request_id, batch, Vec::new())
            .await
    }

    /// [`Engine::submit_batch`], registering `images` in the commit that accepts it (an image
    /// made from an instance: the image, the instance and the operation in one commit).
    pub(crate) async fn submit_batch_with(
        &self,
        p: &Principal,
        request_id: &str,
        batch: Batch<'_>,
        images: Vec<nubis_core::images::Image>,
    ) -> Result<BatchResults, DomainError> {
        let Batch {
            targets,
            cmd,
            mode,
            dry_run,
            attrs,
            guest,
        } = batch;
        let all = mode == BatchMode::AllOrNothing;
        if targets.len() > batch::INSTANCES {
            return Err(DomainError::TooMany {
                name: "InstanceIds".into(),
                max: batch::INSTANCES,
                got: targets.len(),
            });
        }
        let insts = self.instances_by_id(p, targets);
        if all && insts.len() != targets.len() {
            // A target vanished between resolve and now.
            return Err(DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: String::new(),
            });
        }
        let req = match self.prepare(p, &insts, cmd).await {
            Ok(req) => req,
            // A refusal of the request itself is every instance's refusal.
            Err(e) if !all && e != DomainError::DryRunOk => {
                return Ok(targets.iter().map(|_| Err(e.clone())).collect());
            }
            Err(e) => return Err(e),
        };
        let mut attempt = 0;
        loop {
            let mut results: BatchResults = Vec::with_capacity(targets.len());
            let acc = {
                let fleet = self.inner.fleet.lock();
                let mut plans = Vec::with_capacity(targets.len());
                let mut seen = std::collections::HashMap::with_capacity(targets.len());
                for id in targets {
                    // An instance named twice is acted on once; each mention reports the result.
                    if let Some(first) = seen.get(id).and_then(|i: &usize| results.get(*i)) {
                        results.push(first.clone());
                        continue;
                    }
                    seen.insert(*id, results.len());
                    match plan_one(&fleet, p, *id, &req) {
                        Ok(plan) => {
                            results.push(if dry_run {
                                Err(DomainError::DryRunOk)
                            } else {
                                Ok(())
                            });
                            plans.push((*id, plan));
                        }
                        Err(e) if all => return Err(e),
                        Err(e) => results.push(Err(e)),
                    }
                }
                if dry_run && all {
                    return Err(DomainError::DryRunOk);
                }
                if dry_run {
                    return Ok(results);
                }
                let mut acc = Acceptance::default();
                let now = now_ms();
                for (id, plan) in plans {
                    accept(
                        &fleet, &mut acc, p, request_id, id, plan, &attrs, &guest, now,
                    );
                }
                if !acc.ops.is_empty() {
                    for image in &images {
                        acc.writes.push(Write::Image(Box::new(image.clone())));
                    }
                    acc.images.clone_from(&images);
                }
                acc
            };
            if acc.writes.is_empty() {
                return Ok(results);
            }
            let touched: Vec<Uuid> = acc.records.iter().map(|i| i.uuid).collect();
            match self.record_acceptance(acc).await {
                Ok(()) => return Ok(results),
                // Another writer changed a target since the plan read it: read it back and
                // plan again (which answers its new state or lock).
                Err(Refused::Stale) if attempt < RETRIES => {
                    attempt += 1;
                    self.reload_instances(&touched).await?;
                }
                Err(Refused::Stale) => return Err(busy()),
                Err(Refused::Failed(e)) => return Err(e),
            }
        }
    }

    /// Stage next-boot changes, commit, then apply to the fleet and start the runners; if
    /// staging or the commit fails, put the guests back as they were (memory was not touched).
    async fn record_acceptance(&self, mut acc: Acceptance) -> Result<(), Refused> {
        // Next-boot changes reach the guest's disk before they are recorded, so a recorded
        // change is never missing from the guest.
        let mut before = Vec::with_capacity(acc.staged.len());
        let mut failed = None;
        'staging: for (spec, steps) in &acc.staged {
            // Staged over the guest as its last commit left it, whichever node wrote that
            // (read between steps: a step in flight here is not undone in memory).
            if let Err(e) = self.settled_guest(spec.uuid).await {
                failed = Some(e);
                break 'staging;
            }
            before.push((spec.uuid, self.inner.driver.snapshot(spec.uuid)));
            for step in steps {
                if let Err(e) = self.inner.driver.stage(spec, step).await {
                    failed = Some(crate::driver_err(e));
                    break 'staging;
                }
            }
            acc.writes.extend(self.guest_write(spec.uuid));
        }
        // Each new operation's lease, in the commit that accepts it (`leases.rs`).
        let leases = self.lease_writes(&acc.ops);
        acc.writes.extend(leases);
        let result = match failed {
            Some(e) => Err(Refused::Failed(e)),
            None => self.commit_fenced(std::mem::take(&mut acc.writes)).await,
        };
        if let Err(e) = result {
            for (vm, snapshot) in before {
                if let Some(data) = snapshot
                    && let Err(e) = self.inner.driver.restore(vm, data)
                {
                    tracing::error!(error = %e, %vm, "cannot put a staged guest change back");
                }
            }
            return Err(e);
        }
        {
            let mut fleet = self.inner.fleet.lock();
            // A superseded operation's runner sees it gone at its next step and stops.
            for id in &acc.superseded {
                fleet.running.remove(id);
            }
            for op in &acc.joined {
                if let Some(cur) = fleet.running.get_mut(&op.id) {
                    // Steps are only ever appended: the longer list is the newer.
                    if cur.steps.len() < op.steps.len() {
                        cur.steps = op.steps.clone();
                    }
                }
            }
            for image in acc.images {
                fleet.put_image(image);
            }
            for op in &acc.ops {
                fleet.running.insert(op.id, op.clone());
            }
            for inst in acc.records {
                fleet.apply_committed(inst);
            }
        }
        self.hold_new(&acc.ops);
        for op in &acc.ops {
            self.spawn_runner(op.id);
        }
        Ok(())
    }
}

/// Core's plan for one target, with the facts it needs from the fleet.
fn plan_one(
    fleet: &Fleet,
    p: &Principal,
    id: Uuid,
    req: &ActionRequest,
) -> Result<Plan, DomainError> {
    let inst = visible_or_not_found(fleet.instances.get(&id), p, id)?;
    let create_leaves_stopped = inst
        .lock
        .as_ref()
        .filter(|l| l.action == Action::Create)
        .and_then(|l| fleet.running.get(&l.operation_id))
        .is_some_and(|op| !op.steps.contains(&Step::PowerOn));
    let resize_to = match req {
        nubis_core::Request::Resize { instance_type, .. } => {
            fleet.instance_type_for(crate::TypeViewer::of(p), instance_type)
        }
        _ => None,
    };
    let image = resize_to
        .as_ref()
        .and_then(|_| fleet.images.get(&inst.image_id))
        .map(nubis_core::images::Image::facts);
    let ctx = PlanContext {
        kms: inst.kms_key_id.as_ref().map(|k| fleet.kms_state(k)),
        create_leaves_stopped,
        resize_to: resize_to.as_ref(),
        image: image.as_ref(),
    };
    let plan = rules::plan(&inst, req, &ctx)?;
    // A change of type takes the quota of what it adds (a resize, or a revert to a larger
    // type): checked here, under the fleet lock that accepts it.
    for effect in &plan.effects {
        if let nubis_core::Effect::SetType { to, .. } = effect
            && let Some(from) = inst.type_facts()
        {
            fleet.check_resize_quota(&inst, from, to)?;
        }
    }
    Ok(plan)
}

/// Carry out an accepted plan on a copy of the instance, recording what to write and what
/// the fleet takes after the commit. The plan says everything: how it is taken (`accept`),
/// what it supersedes, its effects on the record.
#[allow(clippy::too_many_arguments)]
fn accept(
    fleet: &Fleet,
    acc: &mut Acceptance,
    p: &Principal,
    request_id: &str,
    id: Uuid,
    plan: Plan,
    attrs: &AttrChange,
    guest: &RebuildGuest,
    now: i64,
) {
    // Already being carried out (a delete of an instance being deleted).
    if plan.is_empty() {
        return;
    }
    let Some(mut inst) = fleet.instances.cloned(&id) else {
        return;
    };
    // The operation in flight ends here as superseded: its runner finishes the step it is in
    // (steps on one instance never overlap) and runs no more. Its record is written with
    // the instance's, so it stands or falls with that conditional write.
    if plan.supersedes
        && let Some(lock) = &inst.lock
        && let Some(old) = fleet.running.get(&lock.operation_id)
    {
        let mut old = old.clone();
        old.state = OpState::Failed;
        old.error = Some(format!("superseded by {}", plan.action.as_str()));
        old.finished_at_ms = Some(now);
        acc.superseded.push(old.id);
        acc.writes.push(Write::Operation(old));
    }
    inst.updated_at_ms = now;
    for effect in &plan.effects {
        effect.apply(&mut inst);
    }
    attrs.apply(&mut inst);
    generations::bump(&mut inst);
    if plan.accept == Accept::JoinCreate {
        // The create's operation boots the instance once provisioned.
        let op_id = inst.lock.as_ref().map(|l| l.operation_id);
        acc.writes.push(Write::Instance(Box::new(inst.clone())));
        acc.records.push(inst);
        if let Some(op) = op_id.and_then(|op_id| fleet.running.get(&op_id)) {
            let mut op = op.clone();
            op.steps.extend(plan.steps);
            acc.writes.push(Write::Operation(op.clone()));
            acc.joined.push(op);
        }
        return;
    }
    let next_boot = plan.accept == Accept::NextBoot;
    if plan.action == Action::Rebuild {
        acc.writes.extend(guest.writes(id));
    }
    let op = start_operation(&mut inst, request_id, p, plan, now);
    if next_boot {
        acc.staged.push((crate::vm_spec(&inst), op.steps.clone()));
    }
    acc.writes.push(Write::Instance(Box::new(inst.clone())));
    acc.writes.push(Write::Operation(op.clone()));
    acc.records.push(inst);
    if !next_boot {
        acc.ops.push(op);
    }
}
