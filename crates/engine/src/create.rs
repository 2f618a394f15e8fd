//! Creating instances: core plans the create ([`nubis_core::rules::plan_create`]); the engine
//! gives each new instance its IDs and address and commits the records with their operations.

use crate::submit::start_operation;
use crate::{Engine, Fleet, now_ms};
use nubis_core::{
    CreateSpec, Disk, DomainError, Instance, InstanceState, Principal, Restriction, ids, rules,
};
use nubis_store::Write;
use uuid::Uuid;

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
        if let Some(token) = &spec.client_token
            && let Some(found) =
                self.inner
                    .fleet
                    .lock()
                    .token_instances(&p.account, token, now_ms())
        {
            return Ok(found);
        }
        let planned = rules::plan_create(&spec, |key_ids| self.public_keys(p, key_ids))?;
        // Early, so a dry run and a hopeless request stop here; the check that counts is the
        // one under the lock below, with the acceptance.
        self.inner.fleet.lock().check_create_quota(
            &p.account,
            planned.instance_type,
            spec.count,
        )?;
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
            // The quota, in the same lock hold that inserts the instances: a concurrent
            // create sees these before their commit (and loses them if it fails).
            fleet.check_create_quota(&p.account, planned.instance_type, spec.count)?;
            for _ in 0..spec.count {
                let mut inst = new_instance(&fleet, p, &spec, &planned, &key_ids, now);
                let op = start_operation(&mut inst, request_id, p, plan.clone(), now);
                writes.push(Write::Instance(Box::new(inst.clone())));
                if let Some(data) = &spec.user_data {
                    writes.push(Write::UserData {
                        instance: inst.uuid,
                        data: data.clone(),
                    });
                }
                writes.push(Write::Operation(op.clone()));
                ops.push(op.id);
                fleet.running.insert(op.id, op);
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
    while fleet.by_tencent.contains_key(&tencent_id) {
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
        image_id: planned.image.id.to_string(),
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
        generation: 0,
        internet_max_bandwidth_out: spec.internet_max_bandwidth_out,
        project: p.project.as_ref().map(|s| s.id.clone()),
    }
}
