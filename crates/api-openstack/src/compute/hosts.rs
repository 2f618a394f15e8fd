//! The compute hosts Nova's operator APIs show (docs/nova-operator.md): nubis runs one
//! compute host per zone of the region, `nubis-<zone>`, with one hypervisor of the same name
//! and one `nova-compute` service; the control services (`nova-scheduler`, `nova-conductor`)
//! run on `nubis-control` in Nova's `internal` zone. Servers, hypervisors, services,
//! aggregates and availability zones all name hosts from here, so every view agrees.
//!
//! What an operator changes — a service's enabled/disabled state and reason, its forced-down
//! flag, aggregates — is a dialect record in the store's meta table (`Engine::
//! put_dialect_records`), written before the reply, so it survives a restart.

use super::{Nova, region};
use crate::errors::{Fault, map};
use nubis_core::{Instance, Principal, catalog};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// The host of the control services.
pub(crate) const CONTROL_HOST: &str = "nubis-control";
/// Nova's `internal_service_availability_zone`.
pub(crate) const INTERNAL_ZONE: &str = "internal";

/// Capacity of each compute host (a fixed model, the same on both drivers).
pub(crate) const HOST_VCPUS: u64 = 128;
pub(crate) const HOST_MEMORY_MB: u64 = 524_288;
pub(crate) const HOST_LOCAL_GB: u64 = 10_240;

/// A compute host: the zone it serves and its position (hypervisor ID before 2.53).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Host {
    pub zone: &'static catalog::Zone,
    pub index: usize,
}

impl Host {
    pub fn name(&self) -> String {
        host_name(self.zone)
    }
    /// The hypervisor's ID before 2.53.
    pub fn number(&self) -> usize {
        self.index + 1
    }
    /// The hypervisor's ID from 2.53: stable, derived from the host's name.
    pub fn uuid(&self) -> Uuid {
        stable_uuid("hypervisor", &self.name())
    }
}

pub(crate) fn host_name(zone: &catalog::Zone) -> String {
    format!("nubis-{}", zone.openstack)
}

/// The compute host of catalog zone `zone_id` (the instance's `zone`).
pub(crate) fn host_of_zone(zone_id: &str) -> String {
    catalog::zone(zone_id).map_or_else(|| CONTROL_HOST.to_string(), host_name)
}

pub(crate) fn hosts() -> Vec<Host> {
    region()
        .zones
        .iter()
        .enumerate()
        .map(|(index, zone)| Host { zone, index })
        .collect()
}

fn stable_uuid(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("nubis:{kind}:{name}").as_bytes(),
    )
}

/// A Nova service: its ID before 2.53, binary and host.
#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub number: usize,
    pub binary: &'static str,
    pub host: String,
    /// The compute host it runs on (none for the control services).
    pub compute: Option<Host>,
}

impl Service {
    pub fn uuid(&self) -> Uuid {
        stable_uuid(self.binary, &self.host)
    }
    /// Its key in the dialect records.
    pub fn key(&self) -> String {
        format!("{SERVICE_PREFIX}{}/{}", self.host, self.binary)
    }
}

/// Every service, in ID order.
pub(crate) fn services() -> Vec<Service> {
    let mut s = vec![
        Service {
            number: 1,
            binary: "nova-scheduler",
            host: CONTROL_HOST.into(),
            compute: None,
        },
        Service {
            number: 2,
            binary: "nova-conductor",
            host: CONTROL_HOST.into(),
            compute: None,
        },
    ];
    s.extend(hosts().into_iter().map(|h| Service {
        number: 3 + h.index,
        binary: "nova-compute",
        host: h.name(),
        compute: Some(h),
    }));
    s
}

const SERVICE_PREFIX: &str = "nova:service:";
pub(crate) const AGGREGATE_PREFIX: &str = "nova:aggregate:";
pub(crate) const AGGREGATE_SEQ: &str = "nova:aggregate-seq";

/// What an operator set on a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ServiceState {
    pub disabled: bool,
    pub disabled_reason: Option<String>,
    pub forced_down: bool,
    /// When the operator last changed it (ms).
    pub updated_ms: i64,
}

/// A host aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Aggregate {
    pub id: u64,
    pub uuid: Uuid,
    pub name: String,
    pub hosts: Vec<String>,
    /// Its availability zone is the `availability_zone` key, as in Nova.
    pub metadata: BTreeMap<String, String>,
    pub created_ms: i64,
    pub updated_ms: Option<i64>,
}

impl Aggregate {
    pub fn key(&self) -> String {
        format!("{AGGREGATE_PREFIX}{}", self.id)
    }
    pub fn availability_zone(&self) -> Option<&str> {
        self.metadata.get("availability_zone").map(String::as_str)
    }
}

/// The operator state that is not durable by design, and the lock that serializes the
/// read-modify-write of the durable records.
#[derive(Debug)]
pub(crate) struct Operator {
    pub write: tokio::sync::Mutex<()>,
    /// Services deleted since start: as in Nova, a service comes back when it starts again.
    pub deleted: parking_lot::Mutex<HashSet<String>>,
}

impl Default for Operator {
    fn default() -> Self {
        Self {
            write: tokio::sync::Mutex::new(()),
            deleted: parking_lot::Mutex::new(HashSet::new()),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Resources one host's instances use.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Usage {
    pub vcpus: u64,
    pub memory_mb: u64,
    pub local_gb: u64,
    pub running_vms: u64,
}

pub(crate) fn instance_resources(i: &Instance) -> (u64, u64, u64) {
    let (cpu, mem) = i
        .type_facts()
        .map_or((0, 0), |t| (u64::from(t.cpu), u64::from(t.memory_mib)));
    let disk = u64::from(i.system_disk.size_gib)
        + i.data_disks
            .iter()
            .map(|d| u64::from(d.size_gib))
            .sum::<u64>();
    (cpu, mem, disk)
}

impl Nova<'_> {
    pub(super) fn admin_view() -> Principal {
        Principal {
            is_admin: true,
            ..Default::default()
        }
    }

    /// Every listed instance of the region (any project).
    pub(super) fn all_instances(&self) -> Vec<Instance> {
        let rid = region().id;
        self.api
            .engine
            .query(&Self::admin_view(), |i| i.region == rid, 0, usize::MAX)
            .1
    }

    /// The instances on compute host `h` (those past scheduling: Nova's `building` ones have
    /// no host yet).
    pub(super) fn instances_on(&self, h: &Host) -> Vec<Instance> {
        self.all_instances()
            .into_iter()
            .filter(|i| i.zone == h.zone.id && on_host(i))
            .collect()
    }

    pub(super) fn usage_of(&self, h: &Host) -> Usage {
        let mut u = Usage::default();
        for i in self.instances_on(h) {
            let (c, m, d) = instance_resources(&i);
            u.vcpus += c;
            u.memory_mb += m;
            u.local_gb += d;
            u.running_vms += 1;
        }
        u
    }

    /// The services that exist now (not deleted since start).
    pub(super) fn live_services(&self) -> Vec<Service> {
        let deleted = self.api.operator.deleted.lock();
        services()
            .into_iter()
            .filter(|s| !deleted.contains(&s.key()))
            .collect()
    }

    /// The compute hosts whose `nova-compute` service exists.
    pub(super) fn live_hosts(&self) -> Vec<Host> {
        self.live_services()
            .into_iter()
            .filter_map(|s| s.compute)
            .collect()
    }

    pub(super) fn service_state(&self, s: &Service) -> ServiceState {
        self.api
            .engine
            .dialect_record(&s.key())
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default()
    }

    pub(super) fn aggregates(&self) -> Vec<Aggregate> {
        let mut a: Vec<Aggregate> = self
            .api
            .engine
            .dialect_records(AGGREGATE_PREFIX)
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_str(&v).ok())
            .collect();
        a.sort_by_key(|a| a.id);
        a
    }

    /// The availability zone of a service: an aggregate's zone that holds its host, else the
    /// catalog zone of its compute host; `internal` for the control services.
    pub(super) fn service_zone(&self, s: &Service, aggregates: &[Aggregate]) -> String {
        match s.compute {
            None => INTERNAL_ZONE.to_string(),
            Some(h) => aggregates
                .iter()
                .filter(|a| a.hosts.contains(&s.host))
                .find_map(|a| a.availability_zone().map(str::to_string))
                .unwrap_or_else(|| h.zone.openstack.to_string()),
        }
    }

    /// The zone an aggregate gives `host`, if one does.
    pub(super) fn aggregate_zone_of(&self, host: &str) -> Option<String> {
        self.aggregates()
            .iter()
            .filter(|a| a.hosts.iter().any(|h| h == host))
            .find_map(|a| a.availability_zone().map(str::to_string))
    }

    /// The catalog zone a create's `availability_zone` names: a catalog zone by its Nova
    /// name, or a zone an aggregate gives one of its hosts (the first such host's zone, as
    /// Nova's scheduler would pick a host of that aggregate).
    pub(super) fn zone_named(&self, az: &str) -> Option<&'static catalog::Zone> {
        if let Some(z) = region().zones.iter().find(|z| z.openstack == az) {
            return Some(z);
        }
        let live = self.live_hosts();
        self.aggregates()
            .iter()
            .filter(|a| a.availability_zone() == Some(az))
            .flat_map(|a| a.hosts.iter())
            .find_map(|h| live.iter().find(|l| &l.name() == h).map(|l| l.zone))
    }

    /// Commit dialect records (the store's meta table).
    pub(super) async fn put_records(
        &self,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), Fault> {
        self.api
            .engine
            .put_dialect_records(changes)
            .await
            .map_err(|e| map(e, None))
    }
}

/// Has Nova scheduled the instance to a host yet?
pub(crate) fn on_host(i: &Instance) -> bool {
    crate::state::nova_state(i.state, crate::state::Extra::default()).vm_state != "building"
}

/// The host's uptime line as `uptime(1)` prints it, from the machine's /proc (the same host
/// runs every zone's guests); none where /proc is not there.
pub(crate) fn uptime_line() -> Option<String> {
    let up = std::fs::read_to_string("/proc/uptime").ok()?;
    let secs = up.split_whitespace().next()?.parse::<f64>().ok()? as u64;
    let load = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut l = load.split_whitespace();
    let (l1, l5, l15) = (l.next()?, l.next()?, l.next()?);
    let now = time::OffsetDateTime::now_utc();
    let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    let span = if days > 0 {
        format!("{days} days, {hours:2}:{mins:02}")
    } else {
        format!("{hours:2}:{mins:02}")
    };
    Some(format!(
        " {:02}:{:02}:{:02} up {span},  0 users,  load average: {l1}, {l5}, {l15}",
        now.hour(),
        now.minute(),
        now.second()
    ))
}
