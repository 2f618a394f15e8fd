//! Creating instances: core plans the create ([`nubis_core::rules::plan_create`]); the engine
//! gives each new instance its IDs and address and commits the records (generation 1) with
//! their operations; they enter the fleet only once committed.

use crate::generations::{RETRIES, Refused, busy};
use crate::submit::start_operation;
use crate::{Engine, Fleet, now_ms};
use nubis_core::groups::PlacementGroup;
use nubis_core::hosts::{GroupRule, Placement, Spot};
use nubis_core::{
    CreateSpec, Disk, DomainError, Instance, InstanceState, LatestOp, OpState, Principal,
    ResourceKind, Restriction, ids, rules,
};
use nubis_store::Write;
use uuid::Uuid;

/// What a create does when no host of the zone has room (`nubis_core::hosts::place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoldOut {
    /// Refuse the request ([`DomainError::SoldOut`]): Tencent and Alibaba answer at once.
    Refuse,
    /// Accept it and record the instance as failed to launch, with this fault: Nova schedules
    /// after accepting, so the server goes to ERROR ("No valid host was found").
    Fail(&'static str),
}

impl Engine {
    /// Create instances. A repeated ClientToken returns the first call's instances that still
    /// exist, while the token is remembered (see `Fleet::token_instances`); never an empty list.
    pub async fn create(
        &self,
        p: &Principal,
        request_id: &str,
        spec: CreateSpec,
        dry_run: bool,
    ) -> Result<Vec<Instance>, DomainError> {
        self.create_with(p, request_id, spec, dry_run, SoldOut::Refuse)
            .await
    }

    /// [`Engine::create`], saying what happens when no host has room.
    pub async fn create_with(
        &self,
        p: &Principal,
        request_id: &str,
        spec: CreateSpec,
        dry_run: bool,
        sold_out: SoldOut,
    ) -> Result<Vec<Instance>, DomainError> {
        self.create_in(p, request_id, spec, dry_run, sold_out, None)
            .await
    }

    /// [`Engine::create_with`] into a placement group (its canonical ID; the dialect has
    /// resolved its own ID with [`Engine::placement_group`]): the group must hold the new
    /// members, and its policy places them (a hard one that cannot be kept is `sold_out`).
    pub async fn create_in(
        &self,
        p: &Principal,
        request_id: &str,
        spec: CreateSpec,
        dry_run: bool,
        sold_out: SoldOut,
        group: Option<&str>,
    ) -> Result<Vec<Instance>, DomainError> {
        let group_of = |fleet: &Fleet| -> Result<Option<PlacementGroup>, DomainError> {
            let Some(id) = group else { return Ok(None) };
            let g = fleet
                .placement_groups
                .get(id)
                .filter(|g| p.sees(&g.account))
                .ok_or_else(|| DomainError::NotFound {
                    kind: ResourceKind::PlacementGroup,
                    id: id.to_string(),
                })?;
            fleet.check_group_room(g, &spec.zone, spec.count)?;
            Ok(Some(g.clone()))
        };
        // One process: its memory knows every token. Several nodes: the claim in the store
        // decides, and answers the instances in the order their create made them (a node
        // that learnt them from the journal holds them in another order).
        if let Some(token) = &spec.client_token
            && !self.inner.store.shared()
            && let Some(found) =
                self.inner
                    .fleet
                    .lock()
                    .token_instances(&p.account, token, now_ms())
        {
            return Ok(found);
        }
        // The token's claim in the store (client_tokens.rs; a no-op on one process).
        let claim = match self.claim_client_token(p, &spec, dry_run).await? {
            crate::client_tokens::Claimed::Go(claim) => claim,
            crate::client_tokens::Claimed::Replay(found) => return Ok(found),
        };
        let image = self.image_facts(p, &spec.image_id);
        let instance_type = self.instance_type_for(p, &spec.instance_type);
        let planned = rules::plan_create(&spec, image, instance_type.as_ref(), |key_ids| {
            self.public_keys(p, key_ids)
        })?;
        // Early, so a dry run and a hopeless request stop here; the check that counts is the
        // one under the lock below, with the acceptance.
        (self.inner.fleet.lock()).check_create_quota(p, &planned.instance_type, spec.count)?;
        group_of(&self.inner.fleet.lock())?;
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        // SHA-512 crypt is deliberately slow: off the async workers.
        let hash = match spec.password.clone() {
            Some(pw) => Some(
                tokio::task::spawn_blocking(move || nubis_auth::password::hash(&pw))
                    .await
                    .map_err(|e| DomainError::Internal(format!("hashing: {e}")))?,
            ),
            None => None,
        };
        let plan = planned.plan(hash);
        let key_ids: Vec<String> = planned.keys.iter().map(|k| k.id.clone()).collect();
        let mut attempt = 0;
        loop {
            let now = now_ms();
            let mut created = Vec::new();
            let mut writes = Vec::new();
            let mut ops = Vec::new();
            {
                let mut fleet: parking_lot::MutexGuard<'_, Fleet> = self.inner.fleet.lock();
                // A concurrent request with the same token may have won while we hashed, or
                // be committing now (its instances are then answered before their commit,
                // as the one launch both requests ask for).
                if let Some(token) = &spec.client_token {
                    if let Some(found) = fleet.token_instances(&p.account, token, now) {
                        return Ok(found);
                    }
                    let pending: Vec<Instance> = fleet
                        .pending_creates
                        .iter()
                        .filter(|i| {
                            i.account == p.account && i.client_token.as_ref() == Some(token)
                        })
                        .cloned()
                        .collect();
                    if !pending.is_empty() {
                        return Ok(pending);
                    }
                }
                // The quota, in the same lock hold that reserves the instances: a concurrent
                // create counts these before their commit.
                fleet.check_create_quota(p, &planned.instance_type, spec.count)?;
                // The group's room and its members' hosts, in the same lock hold: a
                // concurrent create into it counts these before their commit.
                let joined = group_of(&fleet)?;
                let mut spots = joined
                    .as_ref()
                    .map(|g| fleet.group_spots(&g.id))
                    .unwrap_or_default();
                let mut placer = self.placer(&fleet);
                for _ in 0..spec.count {
                    let mut inst = new_instance(&fleet, p, &spec, &planned, &key_ids, now);
                    inst.placement_group = joined.as_ref().map(|g| g.id.clone());
                    let rule = joined.as_ref().map(|g| GroupRule {
                        policy: g.policy,
                        max_per_host: g.max_per_host,
                        members: &spots,
                    });
                    let mut unplaced = None;
                    match placer.place(&inst, rule.as_ref()) {
                        Placement::Embedded => {}
                        Placement::Host(h) => inst.host = Some(h),
                        Placement::SoldOut => match sold_out {
                            SoldOut::Refuse => {
                                return Err(DomainError::SoldOut {
                                    zone: inst.zone.clone(),
                                    instance_type: inst.instance_type.clone(),
                                });
                            }
                            SoldOut::Fail(fault) => unplaced = Some(fault),
                        },
                    }
                    placer.placed(&inst);
                    if joined.is_some() && unplaced.is_none() {
                        spots.push(Spot::of(&inst));
                    }
                    let mut op = start_operation(&mut inst, request_id, p, plan.clone(), now);
                    if let Some(fault) = unplaced {
                        fail_unplaced(&mut inst, &mut op, fault, now);
                    }
                    writes.push(Write::Instance(Box::new(inst.clone())));
                    if let Some(data) = &spec.user_data {
                        writes.push(Write::UserData {
                            instance: inst.uuid,
                            data: data.clone(),
                        });
                    }
                    if !spec.files.is_empty() {
                        writes.push(Write::InjectedFiles {
                            instance: inst.uuid,
                            files: spec.files.clone(),
                        });
                    }
                    writes.push(Write::Operation(op.clone()));
                    if unplaced.is_none() {
                        ops.push(op);
                    }
                    created.push(inst);
                }
                drop(placer);
                fleet.pending_creates.extend(created.iter().cloned());
            }
            // The token's claim records these instances in the same commit (client_tokens.rs).
            let uuids: Vec<Uuid> = created.iter().map(|i| i.uuid).collect();
            writes.extend(claim.write(&uuids));
            writes.extend(self.lease_writes(&ops));
            let result = self.commit_fenced(writes).await;
            {
                let mut fleet = self.inner.fleet.lock();
                fleet
                    .pending_creates
                    .retain(|i| !created.iter().any(|c| c.uuid == i.uuid));
                if result.is_ok() {
                    for inst in &created {
                        fleet.apply_committed(inst.clone());
                    }
                    for op in &ops {
                        fleet.running.insert(op.id, op.clone());
                    }
                }
            }
            match result {
                Ok(()) => {
                    claim.committed();
                    self.hold_new(&ops);
                    for op in ops {
                        self.spawn_runner(op.id);
                    }
                    return Ok(created);
                }
                // Another node took one of the fresh IDs: draw new ones.
                Err(Refused::Stale) if attempt < RETRIES => attempt += 1,
                Err(Refused::Stale) => return Err(busy()),
                Err(Refused::Failed(e)) => return Err(e),
            }
        }
    }
}

/// An instance no host had room for, accepted as failed (Nova): its create operation ends at
/// once with `fault`, no lock is taken.
fn fail_unplaced(inst: &mut Instance, op: &mut nubis_core::Operation, fault: &str, now: i64) {
    op.state = OpState::Failed;
    op.error = Some(fault.to_string());
    op.finished_at_ms = Some(now);
    inst.state = InstanceState::LaunchFailed;
    inst.lock = None;
    inst.latest_op = Some(LatestOp {
        action: op.action,
        state: OpState::Failed,
        request_id: op.request_id.clone(),
        error: Some(fault.to_string()),
    });
}

/// A new instance record from the spec and its plan, with fresh IDs, before it is accepted.
fn new_instance(
    fleet: &Fleet,
    p: &Principal,
    spec: &CreateSpec,
    planned: &rules::CreatePlan,
    key_ids: &[String],
    now: i64,
) -> Instance {
    let uuid = Uuid::new_v4();
    let mut tencent_id = ids::new_tencent_instance_id();
    while fleet.instances.read().by_tencent(&tencent_id).is_some() {
        tencent_id = ids::new_tencent_instance_id();
    }
    let b = uuid.as_bytes();
    Instance {
        uuid,
        tencent_id,
        aliyun_id: ids::new_aliyun_instance_id(),
        account: p.account.clone(),
        region: spec.region.clone(),
        zone: spec.zone.clone(),
        name: spec.name.clone().unwrap_or_else(|| "未命名".to_string()),
        host_name: spec
            .host_name
            .clone()
            .unwrap_or_else(|| format!("VM-{}-{}-{}", b[0], b[1], b[2])),
        instance_type: planned.instance_type.name.to_string(),
        image_id: planned.image.id.clone(),
        os: planned.image.os,
        state: InstanceState::Pending,
        restriction: Restriction::None,
        lock: None,
        latest_op: None,
        created_at_ms: now,
        system_disk: Disk {
            id: ids::new_disk_id(),
            size_gib: spec.system_disk_gib,
            disk_type: spec.system_disk_type.clone(),
        },
        data_disks: spec
            .data_disks
            .iter()
            .map(|(size, ty)| Disk {
                id: ids::new_disk_id(),
                size_gib: *size,
                disk_type: ty.clone(),
            })
            .collect(),
        private_ip: format!("10.{}.{}.{}", b[3], b[4], 2 + b[5] % 250),
        key_ids: key_ids.to_vec(),
        project_id: spec.project_id,
        charge_type: spec.charge_type.clone(),
        security_group_ids: spec.security_group_ids.clone(),
        tags: spec.tags.clone(),
        stop_charging: false,
        reinstall_failed: false,
        application_role: None,
        client_token: spec.client_token.clone(),
        disk_error: false,
        kms_key_id: None,
        description: spec.description.clone().unwrap_or_default(),
        locked: None,
        ssh_endpoint: None,
        attrs: spec.attrs.clone(),
        updated_at_ms: now,
        generation: 1,
        internet_max_bandwidth_out: spec.internet_max_bandwidth_out,
        project: p.project.as_ref().map(|s| s.id.clone()),
        user_id: p.keystone_user.clone(),
        host: None,
        resize_from: None,
        flavor: Some(planned.instance_type.clone()),
        resize_from_flavor: None,
        placement_group: None,
        image_os_name: planned.image.os_name.clone(),
        image_user: planned.image.default_user.clone(),
        soft_deleted_at_ms: None,
        shelved_image: None,
    }
}
