//! Operator commands: inspection and the switches that make every seed error reproducible.

use crate::Engine;
use nubis_core::{DomainError, Operation, Principal, ResourceKind, Restriction};
use nubis_store::Write;
use uuid::Uuid;

/// Attributes an operator may set to reproduce restrictions of the real clouds.
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminAttributes {
    pub stopped_mode: Option<String>,
    pub reinstall_failed: Option<bool>,
    #[serde(default, with = "double_option")]
    pub application_role: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub kms_key_id: Option<Option<String>>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// A migration record: a resize with its number (Nova's integer migration ID) and status.
#[derive(Debug, Clone)]
pub struct Migration {
    pub number: i64,
    pub resize: Operation,
    pub status: nubis_core::migration::MigrationStatus,
    /// When its status last changed (`None`: not since it was accepted).
    pub updated_at_ms: Option<i64>,
    /// The instance it resized, terminated ones included, while the store keeps it.
    pub instance: Option<nubis_core::Instance>,
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: ResourceKind::Instance,
        id: id.to_string(),
    }
}

/// The operator, as the principal of an admin command.
pub(crate) fn operator() -> nubis_core::Principal {
    nubis_core::Principal {
        account: String::new(),
        user: "admin".into(),
        is_admin: true,
        sub_user: None,
        ..Default::default()
    }
}

impl Engine {
    /// Any external ID (Tencent, Alibaba, UUID) to the canonical one.
    pub fn resolve_any(&self, id: &str) -> Option<Uuid> {
        let table = self.inner.table.read();
        table
            .by_tencent(id)
            .or_else(|| table.by_aliyun(id))
            .or_else(|| Uuid::parse_str(id).ok().filter(|u| table.get(u).is_some()))
    }

    async fn update(
        &self,
        id: &str,
        f: impl FnMut(&mut nubis_core::Instance),
    ) -> Result<(), DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        self.update_instance(&operator(), uuid, f).await
    }

    pub async fn admin_restrict(&self, id: &str, r: Restriction) -> Result<(), DomainError> {
        self.update(id, |i| i.restriction = r).await
    }

    pub async fn admin_attributes(&self, id: &str, a: AdminAttributes) -> Result<(), DomainError> {
        if let Some(m) = &a.stopped_mode
            && m != "STOP_CHARGING"
            && m != "KEEP_CHARGING"
        {
            return Err(DomainError::invalid(
                "stopped_mode",
                "STOP_CHARGING or KEEP_CHARGING",
            ));
        }
        self.update(id, |i| {
            if let Some(m) = &a.stopped_mode {
                i.stop_charging = m == "STOP_CHARGING";
            }
            if let Some(r) = a.reinstall_failed {
                i.reinstall_failed = r;
            }
            if let Some(role) = &a.application_role {
                i.application_role = role.clone();
            }
            if let Some(key) = &a.kms_key_id {
                i.kms_key_id = key.clone();
            }
        })
        .await
    }

    /// Start a simulated host maintenance: the instance walks through the three live
    /// migration states. Returns the RequestId of the operation.
    pub async fn admin_live_migrate(&self, id: &str) -> Result<String, DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        let rid = nubis_core::ids::new_request_id();
        self.submit(
            &operator(),
            &rid,
            &[uuid],
            crate::Command::LiveMigrate,
            false,
        )
        .await?;
        Ok(rid)
    }

    /// Behave as if the database were down (every commit fails, /healthz answers 503).
    pub fn admin_store_down(&self, down: bool) {
        self.inner
            .store_down
            .store(down, std::sync::atomic::Ordering::Relaxed);
    }

    /// Fault injection on one instance: the guest ignores ACPI, and/or a disk is broken.
    pub async fn admin_fault(
        &self,
        id: &str,
        soft_stop_fails: Option<bool>,
        disk_error: Option<bool>,
    ) -> Result<(), DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        if let Some(fails) = soft_stop_fails {
            self.inner
                .driver
                .set_soft_stop_fails(uuid, fails)
                .map_err(|e| DomainError::InvalidValue {
                    name: "soft_stop_fails".into(),
                    reason: e.to_string(),
                })?;
            let w: Vec<Write> = self.guest_write(uuid).into_iter().collect();
            self.commit(w).await?;
        }
        if let Some(broken) = disk_error {
            self.update(id, |i| i.disk_error = broken).await?;
        }
        Ok(())
    }

    /// Register or change a KMS key's state.
    pub async fn admin_kms_key(
        &self,
        key: &str,
        state: nubis_core::KmsState,
    ) -> Result<(), DomainError> {
        let value = serde_json::to_value(state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.commit_meta(format!("kms:{key}"), value).await?;
        self.inner
            .fleet
            .lock()
            .kms_keys
            .insert(key.to_string(), state);
        Ok(())
    }

    pub async fn admin_guest(&self, id: &str) -> Result<serde_json::Value, DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        self.settled_guest(uuid).await?;
        self.inner.driver.inspect(uuid).ok_or_else(|| not_found(id))
    }

    pub async fn admin_check_password(
        &self,
        id: &str,
        user: &str,
        password: &str,
    ) -> Result<bool, DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        self.settled_guest(uuid).await?;
        if self.inner.driver.facts(uuid).is_none() {
            return Err(not_found(id));
        }
        // A driver without a guest model (qemu) cannot tell without logging in.
        self.inner
            .driver
            .verify_password(uuid, user, password)
            .await
            .ok_or_else(|| DomainError::InvalidValue {
                name: "check-password".into(),
                reason: "this driver runs real guests: log in over SSH (the nubis:ssh tag) instead"
                    .into(),
            })
    }

    pub async fn admin_instance(&self, id: &str) -> Result<serde_json::Value, DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        self.settled_guest(uuid).await?;
        let inst = self.instance(uuid).ok_or_else(|| not_found(id))?;
        Ok(serde_json::json!({
            "id": inst.uuid,
            "tencent_id": inst.tencent_id,
            "aliyun_id": inst.aliyun_id,
            "state": inst.state.as_str(),
            "host": inst.host,
            "restriction": inst.restriction,
            "lock": inst.lock.as_ref().map(|l| serde_json::json!({"operation_id": l.operation_id, "action": l.action.as_str()})),
            "guest": self.inner.driver.inspect(uuid),
        }))
    }

    /// Operations on an instance (any external ID, even of a terminated one), newest first.
    pub async fn admin_operations(&self, id: &str) -> Result<Vec<Operation>, DomainError> {
        let uuid = self.resolve_any(id).ok_or_else(|| not_found(id))?;
        self.inner
            .store
            .operations_of_instance(uuid, 200)
            .await
            .map_err(crate::store_err)
    }

    /// Instance `id` if `p` may see it, a terminated one too (read back from the store):
    /// Nova shows the actions of a deleted server from 2.21.
    pub async fn instance_incl_deleted(
        &self,
        p: &Principal,
        id: Uuid,
    ) -> Result<nubis_core::Instance, DomainError> {
        let live = self.inner.table.cloned(&id);
        if let Some(inst) = live {
            return crate::visible_or_not_found(Some(inst), p, id);
        }
        let stored = self
            .inner
            .store
            .instances(&[id])
            .await
            .map_err(crate::store_err)?;
        let inst = stored
            .into_iter()
            .find(|i| i.uuid == id && p.sees(&i.account) && p.sees_project(i.project.as_deref()))
            .ok_or_else(|| not_found(&id.to_string()))?;
        p.may_touch(&inst).map_err(DomainError::PolicyDenied)?;
        Ok(inst)
    }

    /// The migrations `p` may see (docs/resize.md): resizes, newest first, on `instance` or on
    /// every instance, among the newest `window` of them; each with the status what followed
    /// it on its instance gives it, and the instance (terminated ones included) while the
    /// store has it.
    pub async fn migrations(
        &self,
        p: &Principal,
        instance: Option<Uuid>,
        window: usize,
    ) -> Result<Vec<Migration>, DomainError> {
        let found = self
            .inner
            .store
            .migrations(instance, window)
            .await
            .map_err(crate::store_err)?;
        let mut ids: Vec<Uuid> = found.iter().map(|(_, o)| o.instance).collect();
        ids.sort_unstable();
        ids.dedup();
        let instances = self.instances_live_or_stored(&ids).await?;
        // Each instance's operations, oldest first, read once however many resizes it had.
        let mut history: std::collections::HashMap<Uuid, Vec<Operation>> = Default::default();
        let mut out = Vec::with_capacity(found.len());
        for (number, resize) in found {
            let inst = instances
                .get(&resize.instance)
                .map(|i| nubis_core::Instance::clone(i));
            let visible = match &inst {
                Some(i) => p.sees(&i.account) && p.sees_project(i.project.as_deref()),
                None => p.sees(&resize.account),
            };
            if !visible {
                continue;
            }
            let ops = match history.entry(resize.instance) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let mut ops = self.operations_of(resize.instance).await?;
                    ops.reverse();
                    e.insert(ops)
                }
            };
            let later = ops
                .iter()
                .position(|o| o.id == resize.id)
                .map_or(&[][..], |at| &ops[at + 1..]);
            let (status, updated_at_ms) = nubis_core::migration::migration_status(&resize, later);
            out.push(Migration {
                number,
                resize,
                status,
                updated_at_ms,
                instance: inst,
            });
        }
        Ok(out)
    }

    /// The operations on instance `id` (canonical), newest first, at most 200.
    pub async fn operations_of(&self, id: Uuid) -> Result<Vec<Operation>, DomainError> {
        self.inner
            .store
            .operations_of_instance(id, 200)
            .await
            .map_err(crate::store_err)
    }

    pub async fn admin_operations_by_request(
        &self,
        request_id: &str,
    ) -> Result<Vec<Operation>, DomainError> {
        self.inner
            .store
            .operations_of_request(request_id)
            .await
            .map_err(crate::store_err)
    }
}
