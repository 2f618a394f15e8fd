//! The small supporting endpoints: limits and availability zones.

use super::{Nova, region};
use crate::Reply;
use serde_json::{Value, json};

impl Nova<'_> {
    // -- supporting endpoints -----------------------------------------------------------

    /// `GET /limits`: the project's quotas (the account's, docs/quotas.md) and what it
    /// uses; `-1` is unlimited, as Nova shows it.
    pub(super) fn limits(&self) -> Result<Reply, crate::errors::Fault> {
        let q = self.api.engine.quota(&self.p.account).map_err(|e| {
            crate::errors::map(nubis_core::DomainError::Internal(e.to_string()), None)
        })?;
        let mut abs = json!({
            "maxServerMeta": 128,
            "maxImageMeta": 128,
            "maxTotalKeypairs": q.limits.key_pairs,
            "maxServerGroups": 10,
            "maxServerGroupMembers": 10,
            "maxTotalCores": q.limits.cores,
            "maxTotalInstances": q.limits.instances,
            "maxTotalRAMSize": q.limits.ram_mib,
            "totalCoresUsed": q.usage.cores,
            "totalRAMUsed": q.usage.ram_mib,
            "totalInstancesUsed": q.usage.instances,
            "totalServerGroupsUsed": 0,
        });
        if !self.v.at_least(36) {
            for (k, n) in [
                ("maxSecurityGroupRules", 20),
                ("maxSecurityGroups", 10),
                ("maxTotalFloatingIps", 10),
                ("totalFloatingIpsUsed", 0),
                ("totalSecurityGroupsUsed", 0),
            ] {
                abs[k] = json!(n);
            }
        }
        if !self.v.at_least(57) {
            abs["maxPersonality"] = json!(5);
            abs["maxPersonalitySize"] = json!(10240);
        }
        Ok(Reply::json(
            200,
            &json!({"limits": {"rate": [], "absolute": abs}}),
        ))
    }
}

pub(super) fn zones() -> Reply {
    let info: Vec<Value> = region()
        .zones
        .iter()
        .map(|z| json!({"zoneName": z.openstack, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    Reply::json(200, &json!({"availabilityZoneInfo": info}))
}

/// `GET /os-availability-zone/detail` (admins: the os-availability-zone:detail rule): the
/// zones with their hosts and the services on them. nubis has one compute host,
/// `render::HOST`, which serves every zone of the region (servers show it whatever their
/// zone), and its control services in Nova's `internal` zone; all are up, seen now.
pub(super) fn zone_detail() -> Reply {
    let now = crate::render::iso_micro(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0),
    );
    let up = json!({"available": true, "active": true, "updated_at": now});
    let host = crate::render::HOST;
    let mut info = vec![json!({
        "zoneName": "internal",
        "zoneState": {"available": true},
        "hosts": {host: {"nova-conductor": up, "nova-scheduler": up}},
    })];
    info.extend(region().zones.iter().map(|z| {
        json!({
            "zoneName": z.openstack,
            "zoneState": {"available": true},
            "hosts": {host: {"nova-compute": up}},
        })
    }));
    Reply::json(200, &json!({"availabilityZoneInfo": info}))
}
