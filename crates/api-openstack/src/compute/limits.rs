//! The small supporting endpoints: limits and availability zones.

use super::{Nova, region};
use crate::Reply;
use nubis_core::ItemQuota;
use serde_json::{Map, Value, json};

impl Nova<'_> {
    // -- supporting endpoints -----------------------------------------------------------

    /// `GET /limits`: the quotas of the caller's project (its account's for the default
    /// project, docs/quotas.md) and what it uses; `-1` is unlimited, as Nova shows it.
    pub(super) fn limits(&self) -> Result<Reply, crate::errors::Fault> {
        let own = match &self.p.project {
            Some(s) => nubis_engine::QuotaScope::project(&self.p.account, &s.id),
            None => nubis_engine::QuotaScope::Account(self.p.account.clone()),
        };
        let q = self.req.query();
        let scope = match super::param(&q, "tenant_id") {
            None => own,
            // Another project's limits: Nova's `limits:other_project` rule (admin), checked
            // against that project; a project nubis does not know shows the defaults, as
            // Nova (which does not verify it) shows them.
            Some(tenant) => {
                let mut target = super::nova_target(self.token);
                target.insert("project_id".into(), tenant.to_string());
                let rule = "os_compute_api:limits:other_project";
                if !crate::routes::allowed(&self.api.nova_policy, self.token, rule, target) {
                    return Err(Self::policy_refusal(rule));
                }
                match self.quota_scope(tenant) {
                    Ok(nubis_engine::QuotaScope::User {
                        account, project, ..
                    }) => nubis_engine::QuotaScope::project(&account, &project),
                    Ok(scope) => scope,
                    Err(_) => nubis_engine::QuotaScope::Class("default".into()),
                }
            }
        };
        let q = self.api.engine.quota_of(&scope).map_err(|e| {
            crate::errors::map(nubis_core::DomainError::Internal(e.to_string()), None)
        })?;
        let item = |i: ItemQuota| q.limits.items.get(i);
        let meta = item(ItemQuota::MetadataItems);
        let mut abs = json!({
            "maxServerMeta": meta,
            "maxImageMeta": meta,
            "maxTotalKeypairs": q.limits.key_pairs,
            "maxServerGroups": item(ItemQuota::ServerGroups),
            "maxServerGroupMembers": item(ItemQuota::ServerGroupMembers),
            "maxTotalCores": q.limits.cores,
            "maxTotalInstances": q.limits.instances,
            "maxTotalRAMSize": q.limits.ram_mib,
            "totalCoresUsed": q.usage.cores,
            "totalRAMUsed": q.usage.ram_mib,
            "totalInstancesUsed": q.usage.instances,
            "totalServerGroupsUsed": q.usage.server_groups,
        });
        if !self.v.at_least(36) {
            for (k, n) in [
                ("maxSecurityGroupRules", item(ItemQuota::SecurityGroupRules)),
                ("maxSecurityGroups", item(ItemQuota::SecurityGroups)),
                ("maxTotalFloatingIps", item(ItemQuota::FloatingIps)),
                ("totalFloatingIpsUsed", 0),
                ("totalSecurityGroupsUsed", 0),
            ] {
                abs[k] = json!(n);
            }
        }
        if !self.v.at_least(57) {
            // What core lets through (the quotas under its fixed maxima).
            let files = nubis_core::inject::FileLimits::from_quotas(&q.limits.items);
            abs["maxPersonality"] = json!(files.files);
            abs["maxPersonalitySize"] = json!(files.content_bytes);
        }
        Ok(Reply::json(
            200,
            &json!({"limits": {"rate": [], "absolute": abs}}),
        ))
    }
}

impl Nova<'_> {
    /// Every zone with its compute hosts and their services' state (available: up; active:
    /// enabled): the catalog's zones, which nubis schedules into whatever their hosts, then
    /// the zones aggregates give hosts (`hosts.rs`).
    fn compute_zones(&self) -> Vec<(String, Vec<(String, Value)>)> {
        let aggregates = self.aggregates();
        let now = crate::render::iso_micro(super::hosts::now_ms());
        let mut zones: Vec<(String, Vec<(String, Value)>)> = region()
            .zones
            .iter()
            .map(|z| (z.openstack.to_string(), Vec::new()))
            .collect();
        for s in self.live_services() {
            if s.compute.is_none() {
                continue;
            }
            let st = self.service_state(&s);
            let zone = self.service_zone(&s, &aggregates);
            let entry = json!({"available": !st.forced_down, "active": !st.disabled,
                "updated_at": now});
            match zones.iter_mut().find(|(z, _)| *z == zone) {
                Some((_, hosts)) => hosts.push((s.host.clone(), entry)),
                None => zones.push((zone, vec![(s.host.clone(), entry)])),
            }
        }
        zones
    }

    /// A zone is available unless every compute service in it is disabled.
    fn zone_available(hosts: &[(String, Value)]) -> bool {
        hosts.is_empty() || hosts.iter().any(|(_, e)| e["active"] == json!(true))
    }

    /// `GET /os-availability-zone`.
    pub(super) fn zones(&self) -> Reply {
        let info: Vec<Value> = self
            .compute_zones()
            .iter()
            .map(|(z, hosts)| {
                json!({"zoneName": z, "zoneState": {"available": Self::zone_available(hosts)},
                    "hosts": null})
            })
            .collect();
        Reply::json(200, &json!({"availabilityZoneInfo": info}))
    }

    /// `GET /os-availability-zone/detail` (admins: the os-availability-zone:detail rule): the
    /// zones with their hosts and the services on them; the control services in Nova's
    /// `internal` zone.
    pub(super) fn zone_detail(&self) -> Reply {
        let now = crate::render::iso_micro(super::hosts::now_ms());
        let mut control = Map::new();
        for s in self.live_services() {
            if s.compute.is_some() {
                continue;
            }
            let st = self.service_state(&s);
            control.insert(
                s.binary.to_string(),
                json!({"available": !st.forced_down, "active": !st.disabled, "updated_at": now}),
            );
        }
        let mut info = Vec::new();
        if !control.is_empty() {
            info.push(json!({
                "zoneName": super::hosts::INTERNAL_ZONE,
                "zoneState": {"available": true},
                "hosts": {super::hosts::CONTROL_HOST: control},
            }));
        }
        for (z, hosts) in self.compute_zones() {
            let available = Self::zone_available(&hosts);
            let hosts: Value = if hosts.is_empty() {
                Value::Null
            } else {
                let mut m = Map::new();
                for (h, e) in hosts {
                    m.insert(h, json!({"nova-compute": e}));
                }
                Value::Object(m)
            };
            info.push(
                json!({"zoneName": z, "zoneState": {"available": available}, "hosts": hosts}),
            );
        }
        Reply::json(200, &json!({"availabilityZoneInfo": info}))
    }
}
