//! The small supporting endpoints: limits and availability zones.

use super::{Nova, region};
use crate::Reply;
use nubis_core::catalog;
use serde_json::{Value, json};

impl Nova<'_> {
    // -- supporting endpoints -----------------------------------------------------------

    pub(super) fn limits(&self) -> Reply {
        let (_, servers) =
            self.api
                .engine
                .query(&self.p, |i| i.account == self.p.account, 0, usize::MAX);
        let cores: u32 = servers
            .iter()
            .filter_map(|i| catalog::instance_type(&i.instance_type))
            .map(|t| t.cpu)
            .sum();
        let ram: u32 = servers
            .iter()
            .filter_map(|i| catalog::instance_type(&i.instance_type))
            .map(|t| t.memory_gib * 1024)
            .sum();
        let mut abs = json!({
            "maxServerMeta": 128,
            "maxImageMeta": 128,
            "maxTotalKeypairs": 100,
            "maxServerGroups": 10,
            "maxServerGroupMembers": 10,
            "maxTotalCores": 1000,
            "maxTotalInstances": 1000,
            "maxTotalRAMSize": 4_096_000,
            "totalCoresUsed": cores,
            "totalRAMUsed": ram,
            "totalInstancesUsed": servers.len(),
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
        Reply::json(200, &json!({"limits": {"rate": [], "absolute": abs}}))
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
