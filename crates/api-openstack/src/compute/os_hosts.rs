//! `/os-hosts` (admin, microversions 2.1–2.42; Nova removed it in 2.43 in favour of
//! os-hypervisors and os-services): the hosts of every service, one compute host's resources,
//! enabling or disabling its compute service. Host power actions and maintenance mode are
//! what Nova's libvirt driver answers: 501 (docs/nova-operator.md).

use super::hosts::{HOST_LOCAL_GB, HOST_MEMORY_MB, HOST_VCPUS, Host, INTERNAL_ZONE, now_ms};
use super::{Nova, Res, json_body, param};
use crate::Reply;
use crate::errors::Fault;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Nova's topic of a service binary (the `service` column of the list).
fn topic(binary: &str) -> &str {
    binary.strip_prefix("nova-").unwrap_or(binary)
}

/// `enable`/`disable` in any of the cases Nova's schema allows.
fn switch(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>, Fault> {
    let Some(v) = obj.get(key) else {
        return Ok(None);
    };
    match v.as_str() {
        Some("enable" | "Enable" | "ENABLE") => Ok(Some(true)),
        Some("disable" | "Disable" | "DISABLE") => Ok(Some(false)),
        _ => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {v}. {v} is not one of \
             ['enable', 'disable', 'Enable', 'Disable', 'ENABLE', 'DISABLE']"
        ))),
    }
}

fn host_not_found(name: &str) -> Fault {
    Fault::not_found(format!("Compute host {name} could not be found."))
}

impl Nova<'_> {
    /// A compute host by name.
    fn compute_host(&self, name: &str) -> Result<Host, Fault> {
        self.live_hosts()
            .into_iter()
            .find(|h| h.name() == name)
            .ok_or_else(|| host_not_found(name))
    }

    /// `GET /os-hosts[?zone=]`: one row per service; an empty `zone` lists every host.
    pub(super) fn list_os_hosts(&self) -> Res {
        let q = self.req.query();
        let zone = param(&q, "zone").filter(|z| !z.is_empty());
        let aggregates = self.aggregates();
        let list: Vec<Value> = self
            .live_services()
            .iter()
            .map(|s| {
                let z = if s.compute.is_some() {
                    self.service_zone(s, &aggregates)
                } else {
                    INTERNAL_ZONE.to_string()
                };
                json!({"host_name": s.host, "service": topic(s.binary), "zone": z})
            })
            .filter(|row| zone.is_none_or(|z| row["zone"] == z))
            .collect();
        Ok(Reply::json(200, &json!({ "hosts": list })))
    }

    /// `GET /os-hosts/{host}`: the host's total, what its servers use now (and at most: the
    /// same, nubis does not overcommit), and per project.
    pub(super) fn show_os_host(&self, name: &str) -> Res {
        let h = self.compute_host(name)?;
        let total = (HOST_VCPUS, HOST_MEMORY_MB, HOST_LOCAL_GB);
        let mut by_project: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
        let mut used = (0, 0, 0);
        for i in self.instances_on(&h) {
            let (c, m, d) = super::hosts::instance_resources(&i);
            let project = i
                .project
                .clone()
                .unwrap_or_else(|| crate::ids::project_id(&i.account));
            let e = by_project.entry(project).or_default();
            *e = (e.0 + c, e.1 + m, e.2 + d);
            used = (used.0 + c, used.1 + m, used.2 + d);
        }
        let row = |project: &str, (cpu, memory_mb, disk_gb): (u64, u64, u64)| {
            json!({"resource": {"host": name, "project": project, "cpu": cpu,
                "memory_mb": memory_mb, "disk_gb": disk_gb}})
        };
        let mut rows = vec![
            row("(total)", total),
            row("(used_now)", used),
            row("(used_max)", used),
        ];
        rows.extend(by_project.into_iter().map(|(p, u)| row(&p, u)));
        Ok(Reply::json(200, &json!({ "host": rows })))
    }

    /// `PUT /os-hosts/{host}` with `status` and/or `maintenance_mode`: the body is checked
    /// before the host (400 before 404); `status` enables or disables the host's compute
    /// service (as `PUT /os-services` does); maintenance mode is not implemented by the
    /// libvirt driver: 501.
    pub(super) async fn update_os_host(&self, name: &str) -> Res {
        let body = json_body(self.req.body)?;
        let Value::Object(obj) = &body else {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute body. Value: {body}. {body} is not of type 'object'"
            )));
        };
        if let Some(k) = obj
            .keys()
            .find(|k| *k != "status" && *k != "maintenance_mode")
        {
            return Err(Fault::bad_request(format!(
                "Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let status = switch(obj, "status")?;
        let maintenance = switch(obj, "maintenance_mode")?;
        if status.is_none() && maintenance.is_none() {
            return Err(Fault::bad_request(
                "Invalid input for field/attribute body. Value: {}. {} does not have enough properties",
            ));
        }
        let h = self.compute_host(name)?;
        if maintenance.is_some() {
            return Err(not_implemented());
        }
        let enable = status.unwrap_or(true);
        let _guard = self.api.operator.write.lock().await;
        let s = self
            .live_services()
            .into_iter()
            .find(|s| s.compute.as_ref().is_some_and(|c| c.name() == h.name()))
            .ok_or_else(|| host_not_found(name))?;
        let mut st = self.service_state(&s);
        st.disabled = !enable;
        st.disabled_reason = None;
        st.updated_ms = now_ms();
        self.save_service_state(&s, &st).await?;
        let word = if enable { "enabled" } else { "disabled" };
        Ok(Reply::json(200, &json!({"host": name, "status": word})))
    }

    /// `GET /os-hosts/{host}/{startup|shutdown|reboot}`: an unknown host is 404; the libvirt
    /// driver implements no host power action: 501.
    pub(super) fn os_host_power(&self, name: &str) -> Res {
        self.compute_host(name)?;
        Err(not_implemented())
    }
}

fn not_implemented() -> Fault {
    Fault::new(501, "Virt driver does not implement host power management.")
}
