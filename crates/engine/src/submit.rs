//! Accepting work: validate against core, then write operation + lock in one commit.

use crate::{Engine, Fleet, default_user, now_ms};
use nubis_core::{
    Accept, Action, ActionRequest, Disk, DomainError, Instance, InstanceState, LatestOp, OpLock,
    OpState, Operation, OsFamily, PlanContext, Principal, ResourceKind, Restriction, Step,
    StopMode, WhenRunning, catalog, ids, password, password::PasswordRule, rules,
};
use nubis_store::Write;
use uuid::Uuid;

/// A mutating request on existing instances, in dialect-neutral terms. Passwords arrive in
/// clear and leave this module hashed.
#[derive(Debug, Clone)]
pub enum Command {
    /// Simulated host maintenance (operator command).
    LiveMigrate,
    /// Reinstall the system disk from `image_id`, with a new password (or none).
    Rebuild {
        image_id: String,
        password: Option<String>,
        rule: PasswordRule,
        /// Replace the instance's key pairs (None: keep them).
        key_ids: Option<Vec<String>>,
    },
    Start,
    Stop {
        mode: StopMode,
        stop_charging: bool,
    },
    Reboot {
        mode: StopMode,
    },
    /// `force`: terminate even a running instance.
    Terminate {
        force: bool,
    },
    /// Delete in any state, superseding an operation in flight (Nova's delete; core
    /// `ActionRequest::Delete`). `admin`: the caller may pass an owner's lock.
    Delete {
        admin: bool,
    },
    ResetPassword {
        user: Option<String>,
        password: String,
        when_running: WhenRunning,
        rule: PasswordRule,
    },
    EnterRescue {
        user: Option<String>,
        password: String,
        rule: PasswordRule,
        mode: StopMode,
        /// Boot this catalogue image instead of the rescue image (Nova rescue_image_ref).
        image_id: Option<String>,
    },
    ExitRescue,
    AssociateKeys {
        key_ids: Vec<String>,
        when_running: WhenRunning,
    },
    DisassociateKeys {
        key_ids: Vec<String>,
        when_running: WhenRunning,
    },
}

/// RunInstances / CreateInstance, in dialect-neutral terms (canonical region and zone IDs).
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub region: String,
    pub zone: String,
    pub instance_type: String,
    pub image_id: String,
    pub count: u32,
    pub name: Option<String>,
    pub host_name: Option<String>,
    pub password: Option<String>,
    pub key_ids: Vec<String>,
    pub client_token: Option<String>,
    pub system_disk_gib: u32,
    pub system_disk_type: String,
    pub data_disks: Vec<(u32, String)>,
    /// The rule the password is held to (the dialect's cloud's).
    pub rule: PasswordRule,
    pub project_id: i64,
    pub charge_type: String,
    pub security_group_ids: Vec<String>,
    pub tags: Vec<(String, String)>,
    pub description: Option<String>,
    /// Boot after provisioning (RunInstances) or leave stopped (Alibaba CreateInstance).
    pub start: bool,
    /// Access addresses and user data to show (Nova).
    pub attrs: nubis_core::UserAttrs,
    /// User data (base64, as given), stored beside the instance (`Store::user_data`).
    pub user_data: Option<String>,
    /// Public bandwidth cap in Mbit/s (Alibaba InternetMaxBandwidthOut).
    pub internet_max_bandwidth_out: u32,
}

fn rescue_user_default() -> &'static str {
    "root"
}

impl Engine {
    /// Public keys of the caller's key pairs, in order; unknown → NotFound.
    fn public_keys(&self, p: &Principal, key_ids: &[String]) -> Result<Vec<String>, DomainError> {
        let fleet = self.inner.fleet.lock();
        key_ids
            .iter()
            .map(|id| {
                fleet
                    .key_pairs
                    .get(id)
                    .filter(|k| p.is_admin || k.account == p.account)
                    .map(|k| k.public_key.clone())
                    .ok_or_else(|| DomainError::NotFound {
                        kind: ResourceKind::KeyPair,
                        id: id.clone(),
                    })
            })
            .collect()
    }

    fn check_key_support(key_ids: &[String], keys: &[String]) -> Result<(), DomainError> {
        for (id, key) in key_ids.iter().zip(keys) {
            if !crate::keys::injectable(key) {
                return Err(DomainError::KeyPairNotSupported(id.clone()));
            }
        }
        Ok(())
    }

    /// Turn a command into the per-instance request core decides on, checking parameters that
    /// depend on the targets (password rules follow the strictest OS of the batch).
    async fn prepare(
        &self,
        p: &Principal,
        targets: &[Uuid],
        cmd: &Command,
    ) -> Result<Vec<ActionRequest>, DomainError> {
        let insts = self.instances_by_id(p, targets);
        let hash_checked = |user: &Option<String>,
                            pw: &str,
                            os: OsFamily,
                            rule: PasswordRule|
         -> Result<(), DomainError> {
            if let Some(u) = user {
                password::check_username_len("UserName", u)?;
                password::validate_username(u).map_err(|r| DomainError::invalid("UserName", r))?;
            }
            let users: Vec<&str> = match user {
                Some(u) => vec![u.as_str()],
                None => insts.iter().map(default_user).collect(),
            };
            password::check(rule, pw, os, &users).map_err(DomainError::InvalidPassword)
        };
        let reqs = match cmd {
            Command::Start => insts.iter().map(|_| ActionRequest::Start).collect(),
            Command::Stop {
                mode,
                stop_charging,
            } => insts
                .iter()
                .map(|_| ActionRequest::Stop {
                    mode: *mode,
                    stop_charging: *stop_charging,
                })
                .collect(),
            Command::Reboot { mode } => insts
                .iter()
                .map(|_| ActionRequest::Reboot { mode: *mode })
                .collect(),
            Command::Terminate { force } => insts
                .iter()
                .map(|_| ActionRequest::Terminate { force: *force })
                .collect(),
            Command::Delete { admin } => insts
                .iter()
                .map(|_| ActionRequest::Delete { admin: *admin })
                .collect(),
            Command::ExitRescue => insts.iter().map(|_| ActionRequest::ExitRescue).collect(),
            Command::LiveMigrate => insts.iter().map(|_| ActionRequest::LiveMigrate).collect(),
            Command::Rebuild {
                image_id,
                password,
                rule,
                key_ids,
            } => {
                let image = catalog::image(image_id)
                    .filter(|i| i.public)
                    .ok_or_else(|| DomainError::NotFound {
                        kind: ResourceKind::Image,
                        id: image_id.clone(),
                    })?;
                let hash = match password {
                    Some(pw) => {
                        password::check(*rule, pw, image.os, &[image.default_user])
                            .map_err(DomainError::InvalidPassword)?;
                        Some(hash(pw).await)
                    }
                    None => None,
                };
                let keys = match key_ids {
                    Some(ids) => {
                        let keys = self.public_keys(p, ids)?;
                        Self::check_key_support(ids, &keys)?;
                        Some(keys)
                    }
                    None => None,
                };
                insts
                    .iter()
                    .map(|_| ActionRequest::Rebuild {
                        image_id: image.id.to_string(),
                        user: image.default_user.to_string(),
                        password_hash: hash.clone(),
                        keys: keys.clone(),
                    })
                    .collect()
            }
            Command::ResetPassword {
                user,
                password,
                when_running,
                rule,
            } => {
                hash_checked(
                    user,
                    password,
                    password::batch_os(insts.iter().map(|i| i.os)),
                    *rule,
                )?;
                let hash = hash(password).await;
                insts
                    .iter()
                    .map(|i| ActionRequest::ResetPassword {
                        user: user.clone().unwrap_or_else(|| default_user(i).to_string()),
                        password_hash: hash.clone(),
                        when_running: *when_running,
                    })
                    .collect()
            }
            Command::EnterRescue {
                user,
                password,
                mode,
                image_id,
                rule,
            } => {
                // The rescue system is Linux whatever the instance runs.
                hash_checked(user, password, OsFamily::Linux, *rule)?;
                let hash = hash(password).await;
                let user = user
                    .clone()
                    .unwrap_or_else(|| rescue_user_default().to_string());
                insts
                    .iter()
                    .map(|_| ActionRequest::EnterRescue {
                        user: user.clone(),
                        password_hash: hash.clone(),
                        mode: *mode,
                        image_id: image_id.clone(),
                    })
                    .collect()
            }
            Command::AssociateKeys {
                key_ids,
                when_running,
            }
            | Command::DisassociateKeys {
                key_ids,
                when_running,
            } => {
                let keys = self.public_keys(p, key_ids)?;
                if matches!(cmd, Command::AssociateKeys { .. }) {
                    Self::check_key_support(key_ids, &keys)?;
                }
                insts
                    .iter()
                    .map(|_| match cmd {
                        Command::AssociateKeys { .. } => ActionRequest::AssociateKeys {
                            keys: keys.clone(),
                            when_running: *when_running,
                        },
                        _ => ActionRequest::DisassociateKeys {
                            keys: keys.clone(),
                            when_running: *when_running,
                        },
                    })
                    .collect()
            }
        };
        Ok(reqs)
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
        let reqs = self.prepare(p, targets, &cmd).await?;
        if reqs.len() != targets.len() {
            // A target vanished between resolve and now.
            return Err(DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: String::new(),
            });
        }
        let key_ids = match &cmd {
            Command::AssociateKeys { key_ids, .. }
            | Command::DisassociateKeys { key_ids, .. }
            | Command::Rebuild {
                key_ids: Some(key_ids),
                ..
            } => key_ids.clone(),
            _ => Vec::new(),
        };
        let (mut writes, ops, undo, superseded, staged, joined) = {
            let mut fleet = self.inner.fleet.lock();
            let mut plans = Vec::with_capacity(targets.len());
            for (id, req) in targets.iter().zip(&reqs) {
                let inst = fleet
                    .instances
                    .get(id)
                    .ok_or_else(|| DomainError::NotFound {
                        kind: ResourceKind::Instance,
                        id: id.to_string(),
                    })?;
                let create_leaves_stopped = inst
                    .lock
                    .as_ref()
                    .filter(|l| l.action == Action::Create)
                    .and_then(|l| fleet.running.get(&l.operation_id))
                    .is_some_and(|op| !op.steps.contains(&Step::PowerOn));
                let ctx = PlanContext {
                    kms: inst.kms_key_id.as_ref().map(|k| fleet.kms_state(k)),
                    create_leaves_stopped,
                };
                plans.push(rules::plan(inst, req, &ctx)?);
            }
            if dry_run {
                return Err(DomainError::DryRunOk);
            }
            let mut writes = Vec::with_capacity(targets.len() * 2);
            let mut ops = Vec::with_capacity(targets.len());
            let mut undo = Vec::with_capacity(targets.len());
            let mut superseded = Vec::new();
            let mut staged = Vec::new();
            let mut joined = Vec::new();
            let now = now_ms();
            for (id, plan) in targets.iter().zip(plans) {
                // Already being carried out (a delete of an instance being deleted).
                if plan.is_empty() {
                    continue;
                }
                // The operation in flight ends here as superseded: its runner finishes the
                // step it is in (steps on one instance never overlap) and runs no more.
                let held = fleet.instances.get(id).and_then(|i| i.lock.clone());
                if plan.supersedes
                    && let Some(lock) = held
                    && let Some(mut old) = fleet.running.remove(&lock.operation_id)
                {
                    superseded.push(old.clone());
                    old.state = OpState::Failed;
                    old.error = Some(format!("superseded by {}", plan.action.as_str()));
                    old.finished_at_ms = Some(now);
                    writes.push(Write::Operation(old));
                }
                let inst = fleet.instances.get_mut(id).expect("checked above");
                if plan.accept == Accept::JoinCreate {
                    // The create's operation boots the instance once provisioned.
                    let Some(op_id) = inst.lock.as_ref().map(|l| l.operation_id) else {
                        continue;
                    };
                    undo.push(inst.clone());
                    inst.updated_at_ms = now;
                    if let Some(sc) = plan.stop_charging {
                        inst.stop_charging = sc;
                    }
                    writes.push(Write::Instance(Box::new(inst.clone())));
                    if let Some(op) = fleet.running.get_mut(&op_id) {
                        joined.push((op_id, op.steps.len()));
                        op.steps.extend(plan.steps);
                        writes.push(Write::Operation(op.clone()));
                    }
                    continue;
                }
                let next_boot = plan.accept == Accept::NextBoot;
                let op = Operation {
                    id: Uuid::now_v7(),
                    request_id: request_id.to_string(),
                    account: p.account.clone(),
                    instance: *id,
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
                };
                undo.push(inst.clone());
                inst.updated_at_ms = now;
                if next_boot {
                    // Recorded at once: no lock, the state stays, the steps are staged below.
                    staged.push((crate::vm_spec(inst), op.steps.clone()));
                } else {
                    inst.state = op
                        .display
                        .unwrap_or_else(|| op.steps[0].showing(inst.state));
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
                if let Some(sc) = plan.stop_charging {
                    inst.stop_charging = sc;
                }
                match op.action {
                    Action::AssociateKeys => {
                        for k in &key_ids {
                            if !inst.key_ids.contains(k) {
                                inst.key_ids.push(k.clone());
                            }
                        }
                    }
                    Action::DisassociateKeys => inst.key_ids.retain(|k| !key_ids.contains(k)),
                    Action::Rebuild => {
                        if let Some(Step::Reprovision { image_id, .. }) = op
                            .steps
                            .iter()
                            .find(|s| matches!(s, Step::Reprovision { .. }))
                            && let Some(image) = catalog::image(image_id)
                        {
                            inst.image_id = image.id.to_string();
                            inst.os = image.os;
                        }
                        if let Command::Rebuild {
                            key_ids: Some(ids), ..
                        } = &cmd
                        {
                            inst.key_ids = ids.clone();
                        }
                    }
                    _ => {}
                }
                writes.push(Write::Instance(Box::new(inst.clone())));
                writes.push(Write::Operation(op.clone()));
                if !next_boot {
                    fleet.running.insert(op.id, op.clone());
                    ops.push(op.id);
                }
            }
            (writes, ops, undo, superseded, staged, joined)
        };
        if writes.is_empty() {
            return Ok(());
        }
        // Next-boot changes reach the guest's disk before they are recorded, so a recorded
        // change is never missing from the guest; if staging or the commit fails, the guest
        // is put back as it was.
        let mut before = Vec::with_capacity(staged.len());
        let mut failed = None;
        for (spec, steps) in &staged {
            before.push((spec.uuid, self.inner.driver.snapshot(spec.uuid)));
            for step in steps {
                if let Err(e) = self.inner.driver.stage(spec, step).await {
                    failed = Some(DomainError::Internal(e.to_string()));
                    break;
                }
            }
            if failed.is_some() {
                break;
            }
            writes.extend(self.guest_write(spec.uuid));
        }
        let result = match failed {
            Some(e) => Err(e),
            None => self.commit(writes).await,
        };
        if result.is_err() {
            let mut fleet = self.inner.fleet.lock();
            for op in &ops {
                fleet.running.remove(op);
            }
            for (op_id, len) in &joined {
                if let Some(op) = fleet.running.get_mut(op_id) {
                    op.steps.truncate(*len);
                }
            }
            for inst in undo {
                fleet.instances.insert(inst.uuid, inst);
            }
        }
        if result.is_err() {
            // The superseded operations go on: back in the table, with a runner (a second
            // runner beside a surviving one is harmless: each step runs under the gate and
            // reads the recorded progress).
            let back: Vec<Uuid> = {
                let mut fleet = self.inner.fleet.lock();
                superseded
                    .into_iter()
                    .map(|op| {
                        let id = op.id;
                        fleet.running.insert(id, op);
                        id
                    })
                    .collect()
            };
            for id in back {
                self.spawn_runner(id);
            }
        }
        if result.is_err() {
            for (vm, snapshot) in before {
                if let Some(data) = snapshot
                    && let Err(e) = self.inner.driver.restore(vm, data)
                {
                    tracing::error!(error = %e, %vm, "cannot put a staged guest change back");
                }
            }
            return result;
        }
        for id in ops {
            self.spawn_runner(id);
        }
        Ok(())
    }

    /// Commit accepted work; if the store refuses, put memory back as it was.
    async fn commit_or_undo(
        &self,
        writes: Vec<Write>,
        ops: &[Uuid],
        undo: Vec<Instance>,
        created: &[Uuid],
    ) -> Result<(), DomainError> {
        if let Err(e) = self.commit(writes).await {
            let mut fleet = self.inner.fleet.lock();
            for op in ops {
                fleet.running.remove(op);
            }
            for id in created {
                fleet.remove_instance(*id);
            }
            for inst in undo {
                fleet.instances.insert(inst.uuid, inst);
            }
            return Err(e);
        }
        Ok(())
    }

    /// Create instances. A repeated ClientToken returns the first call's instances that still
    /// exist, while the token is remembered (see `Fleet::token_instances`); never an empty list.
    pub async fn create(
        &self,
        p: &Principal,
        request_id: &str,
        spec: CreateSpec,
        dry_run: bool,
    ) -> Result<Vec<Instance>, DomainError> {
        if let Some(token) = &spec.client_token
            && let Some(found) =
                self.inner
                    .fleet
                    .lock()
                    .token_instances(&p.account, token, now_ms())
        {
            return Ok(found);
        }
        let image = catalog::image(&spec.image_id)
            .filter(|i| i.public)
            .ok_or_else(|| DomainError::NotFound {
                kind: ResourceKind::Image,
                id: spec.image_id.clone(),
            })?;
        let ty =
            catalog::instance_type(&spec.instance_type).ok_or_else(|| DomainError::NotFound {
                kind: ResourceKind::InstanceType,
                id: spec.instance_type.clone(),
            })?;
        let region = catalog::region(&spec.region)
            .ok_or_else(|| DomainError::UnsupportedRegion(spec.region.clone()))?;
        if !region.zones.iter().any(|z| z.id == spec.zone) {
            return Err(DomainError::InvalidZone(spec.zone.clone()));
        }
        if let Some(pw) = &spec.password {
            password::check(spec.rule, pw, image.os, &[image.default_user])
                .map_err(DomainError::InvalidPassword)?;
        }
        let keys = self.public_keys(p, &spec.key_ids)?;
        if !keys.is_empty() && image.os == OsFamily::Windows {
            return Err(DomainError::Unsupported {
                id: spec.image_id.clone(),
                why: nubis_core::error::Unsupported::WindowsOs,
            });
        }
        Self::check_key_support(&spec.key_ids, &keys)?;
        if dry_run {
            return Err(DomainError::DryRunOk);
        }
        let hash = match &spec.password {
            Some(pw) => Some(hash(pw).await),
            None => None,
        };
        let now = now_ms();
        let mut created = Vec::new();
        let mut writes = Vec::new();
        let mut ops = Vec::new();
        {
            let mut fleet: parking_lot::MutexGuard<'_, Fleet> = self.inner.fleet.lock();
            // A concurrent request with the same token may have won while we hashed.
            if let Some(token) = &spec.client_token
                && let Some(found) = fleet.token_instances(&p.account, token, now)
            {
                return Ok(found);
            }
            for _ in 0..spec.count {
                let uuid = Uuid::new_v4();
                let name = spec.name.clone().unwrap_or_else(|| "未命名".to_string());
                let mut tencent_id = ids::new_tencent_instance_id();
                while fleet.by_tencent.contains_key(&tencent_id) {
                    tencent_id = ids::new_tencent_instance_id();
                }
                let b = uuid.as_bytes();
                let inst = Instance {
                    uuid,
                    tencent_id,
                    aliyun_id: ids::new_aliyun_instance_id(),
                    account: p.account.clone(),
                    region: spec.region.clone(),
                    zone: spec.zone.clone(),
                    name,
                    host_name: spec
                        .host_name
                        .clone()
                        .unwrap_or_else(|| format!("VM-{}-{}-{}", b[0], b[1], b[2])),
                    instance_type: ty.name.to_string(),
                    image_id: image.id.to_string(),
                    os: image.os,
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
                    key_ids: spec.key_ids.clone(),
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
                    internet_max_bandwidth_out: spec.internet_max_bandwidth_out,
                };
                let op = Operation {
                    id: Uuid::now_v7(),
                    request_id: request_id.to_string(),
                    account: p.account.clone(),
                    instance: uuid,
                    action: Action::Create,
                    steps: std::iter::once(Step::Provision {
                        image_id: image.id.to_string(),
                        user: image.default_user.to_string(),
                        password_hash: hash.clone(),
                        keys: keys.clone(),
                    })
                    .chain(spec.start.then_some(Step::PowerOn))
                    .collect(),
                    steps_done: 0,
                    display: Some(InstanceState::Pending),
                    from_state: InstanceState::Pending,
                    state: OpState::Operating,
                    attempts: 1,
                    error: None,
                    created_at_ms: now,
                    finished_at_ms: None,
                };
                let mut inst = inst;
                inst.lock = Some(OpLock {
                    operation_id: op.id,
                    action: Action::Create,
                });
                inst.latest_op = Some(LatestOp {
                    action: Action::Create,
                    state: OpState::Operating,
                    request_id: request_id.to_string(),
                    error: None,
                });
                writes.push(Write::Instance(Box::new(inst.clone())));
                if let Some(data) = &spec.user_data {
                    writes.push(Write::UserData {
                        instance: uuid,
                        data: data.clone(),
                    });
                }
                writes.push(Write::Operation(op.clone()));
                fleet.running.insert(op.id, op.clone());
                ops.push(op.id);
                created.push(inst.clone());
                fleet.insert_instance(inst);
            }
        }
        let uuids: Vec<Uuid> = created.iter().map(|i| i.uuid).collect();
        // On failure the created instances are removed, and with them their token.
        self.commit_or_undo(writes, &ops, Vec::new(), &uuids)
            .await?;
        for id in ops {
            self.spawn_runner(id);
        }
        Ok(created)
    }
}

/// SHA-512 crypt is deliberately slow: keep it off the async workers.
async fn hash(password: &str) -> String {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || nubis_auth::password::hash(&pw))
        .await
        .expect("hashing does not panic")
}

impl Engine {
    /// The user data a visible instance was created with (None: it was given none).
    pub async fn user_data(&self, p: &Principal, id: Uuid) -> Result<Option<String>, DomainError> {
        let visible = self
            .inner
            .fleet
            .lock()
            .instances
            .get(&id)
            .is_some_and(|i| i.state.is_listed() && (p.is_admin || i.account == p.account));
        if !visible {
            return Err(DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: id.to_string(),
            });
        }
        self.inner
            .store
            .user_data(id)
            .await
            .map_err(crate::store_err)
    }

    /// Replace (or with None remove) a visible instance's user data (Nova rebuild `user_data`).
    pub async fn set_user_data(
        &self,
        p: &Principal,
        id: Uuid,
        data: Option<String>,
    ) -> Result<(), DomainError> {
        self.user_data(p, id).await?;
        let write = match data {
            Some(data) => Write::UserData { instance: id, data },
            None => Write::DeleteUserData(id),
        };
        self.commit(vec![write]).await
    }

    /// Lock (with a reason) or unlock an instance: an attribute, no operation.
    pub async fn set_locked(
        &self,
        p: &Principal,
        id: Uuid,
        locked: Option<String>,
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |i| i.locked = locked).await
    }

    /// Change what a user set and reads back (access addresses, user data): no operation.
    pub async fn set_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |inst| f(&mut inst.attrs)).await
    }

    /// [`Engine::modify`] and [`Engine::set_attrs`] in one commit.
    pub async fn modify_with_attrs(
        &self,
        p: &Principal,
        id: Uuid,
        name: Option<String>,
        description: Option<String>,
        host_name: Option<String>,
        f: impl FnOnce(&mut nubis_core::UserAttrs),
    ) -> Result<(), DomainError> {
        self.update_instance(p, id, |inst| {
            if let Some(n) = name {
                inst.name = n;
            }
            if let Some(d) = description {
                inst.description = d;
            }
            if let Some(h) = host_name {
                inst.host_name = h;
            }
            f(&mut inst.attrs);
        })
        .await
    }

    /// Change descriptive attributes (name, description, host name): no operation, no lock.
    pub async fn modify(
        &self,
        p: &Principal,
        id: Uuid,
        name: Option<String>,
        description: Option<String>,
        host_name: Option<String>,
    ) -> Result<(), DomainError> {
        self.modify_with_attrs(p, id, name, description, host_name, |_| {})
            .await
    }

    /// Change the tags (Nova server metadata) of a visible instance: `f` sees the instance
    /// under the fleet lock and returns its new tags or refuses (so a rule such as
    /// [`nubis_core::rules::metadata_change`] and a count limit hold against concurrent
    /// writers); the change is committed before this returns the tags written.
    pub async fn update_tags<E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&Instance) -> Result<Vec<(String, String)>, E>,
    ) -> Result<Vec<(String, String)>, E> {
        self.try_update_instance(p, id, |inst| {
            let tags = f(inst)?;
            inst.tags = tags.clone();
            Ok(tags)
        })
        .await
    }

    /// Change an attribute of a visible instance and commit it; memory is put back if the
    /// store refuses.
    pub(crate) async fn update_instance(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut Instance),
    ) -> Result<(), DomainError> {
        self.try_update_instance(p, id, |inst| {
            f(inst);
            Ok::<_, DomainError>(())
        })
        .await
    }

    /// [`Self::update_instance`] with a change that may refuse (nothing changes then).
    async fn try_update_instance<T, E: From<DomainError>>(
        &self,
        p: &Principal,
        id: Uuid,
        f: impl FnOnce(&mut Instance) -> Result<T, E>,
    ) -> Result<T, E> {
        let (before, after, out) = {
            let mut fleet = self.inner.fleet.lock();
            let inst = fleet
                .instances
                .get_mut(&id)
                .filter(|i| i.state.is_listed() && (p.is_admin || i.account == p.account))
                .ok_or_else(|| DomainError::NotFound {
                    kind: ResourceKind::Instance,
                    id: id.to_string(),
                })?;
            let before = inst.clone();
            let out = f(inst);
            if out.is_err() {
                *inst = before;
                drop(fleet);
                return out;
            }
            inst.updated_at_ms = now_ms();
            (before, inst.clone(), out)
        };
        if let Err(e) = self.commit(vec![Write::Instance(Box::new(after))]).await {
            self.inner.fleet.lock().instances.insert(id, before);
            return Err(e.into());
        }
        out
    }
}
