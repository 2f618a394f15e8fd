//! Compute hosts and where an instance goes (docs/agents.md). A host is one `nubis agent`: it
//! serves one zone, reports its capacity and is alive while its reports keep arriving. The
//! single process's embedded driver is no host: instances of a zone no agent serves run there,
//! so `nubis serve` alone never schedules anything.

use crate::groups::Policy;
use crate::model::Instance;
use serde::{Deserialize, Serialize};

/// What a host offers, or what an instance takes of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_mib: u64,
    pub disk_gib: u64,
}

impl Capacity {
    /// What a new instance of type `t` takes before its disks (the stock views ask so).
    pub fn of_type(t: &crate::catalog::InstanceType) -> Self {
        Self {
            vcpus: t.cpu,
            memory_mib: u64::from(t.memory_mib),
            disk_gib: 0,
        }
    }

    /// What `inst` takes: its type's vCPUs and memory, its disks. An unknown type (never
    /// accepted at create) takes one vCPU and 1 GiB.
    pub fn of(inst: &Instance) -> Self {
        let (vcpus, memory_mib) = inst
            .type_facts()
            .map_or((1, 1024), |t| (t.cpu, t.memory_mib));
        let disk_gib = u64::from(inst.system_disk.size_gib)
            + inst
                .data_disks
                .iter()
                .map(|d| u64::from(d.size_gib))
                .sum::<u64>();
        Self {
            vcpus,
            memory_mib: u64::from(memory_mib),
            disk_gib,
        }
    }

    fn fits(&self, need: &Capacity) -> bool {
        self.vcpus >= need.vcpus
            && self.memory_mib >= need.memory_mib
            && self.disk_gib >= need.disk_gib
    }

    fn minus(&self, used: &Capacity) -> Capacity {
        Capacity {
            vcpus: self.vcpus.saturating_sub(used.vcpus),
            memory_mib: self.memory_mib.saturating_sub(used.memory_mib),
            disk_gib: self.disk_gib.saturating_sub(used.disk_gib),
        }
    }

    pub fn add(&mut self, other: &Capacity) {
        self.vcpus = self.vcpus.saturating_add(other.vcpus);
        self.memory_mib = self.memory_mib.saturating_add(other.memory_mib);
        self.disk_gib = self.disk_gib.saturating_add(other.disk_gib);
    }
}

/// A registered host as the store keeps it. The operator creates it (ID, zone, credential);
/// its agent's reports fill in the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    /// `[a-z0-9-]`, 1–63 characters.
    pub id: String,
    /// The catalogue zone it serves (`Zone::id`).
    pub zone: String,
    /// The agent's credential, sealed like an access key's secret.
    pub sealed_secret: String,
    pub created_at_ms: i64,
    /// Where the control plane reaches the agent (`http://host:port`), from its last report.
    pub address: String,
    /// The agent's driver (`sim`, `qemu`), from its last report.
    pub driver: String,
    pub capacity: Capacity,
    /// When its last report arrived (ms since the epoch; 0: never).
    pub last_seen_ms: i64,
}

/// Whether a host takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostHealth {
    /// Registered, no report yet.
    New,
    Up,
    /// No report for longer than the timeout: its instances are shown as unknown, work for
    /// them waits (docs/agents.md).
    Lost,
}

impl HostRecord {
    pub fn health(&self, now_ms: i64, timeout_ms: i64) -> HostHealth {
        if self.last_seen_ms == 0 {
            HostHealth::New
        } else if now_ms.saturating_sub(self.last_seen_ms) > timeout_ms {
            HostHealth::Lost
        } else {
            HostHealth::Up
        }
    }
}

/// Is `id` a valid host ID?
pub fn valid_host_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// A host as the scheduler weighs it.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub host: &'a HostRecord,
    pub health: HostHealth,
    /// What its instances take now.
    pub used: Capacity,
}

/// Where an instance of `zone` that takes `need` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// No host serves the zone: the embedded driver runs it.
    Embedded,
    Host(String),
    /// Hosts serve the zone but none that is up has room: the clouds' sold-out answer.
    SoldOut,
}

/// Where a placement group's member runs, for the group's rule: an agent host, or the
/// embedded driver of a zone (one host per zone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Spot {
    Host(String),
    Embedded(String),
}

impl Spot {
    /// Where `inst` runs.
    pub fn of(inst: &Instance) -> Self {
        match &inst.host {
            Some(h) => Self::Host(h.clone()),
            None => Self::Embedded(inst.zone.clone()),
        }
    }
}

/// The placement group a new instance joins: its policy and where its members run now
/// (those placed earlier in the same create included).
#[derive(Debug, Clone)]
pub struct GroupRule<'a> {
    pub policy: Policy,
    /// For [`Policy::AntiAffinity`]: the most members on one host (at least 1).
    pub max_per_host: u32,
    pub members: &'a [Spot],
}

impl GroupRule<'_> {
    fn count(&self, spot: &Spot) -> usize {
        self.members.iter().filter(|m| *m == spot).count()
    }

    /// May a member go to `spot` under a hard policy?
    fn allows(&self, spot: &Spot) -> bool {
        match self.policy {
            Policy::AntiAffinity => self.count(spot) < self.max_per_host.max(1) as usize,
            Policy::Affinity => self.members.iter().all(|m| m == spot),
            Policy::SoftAffinity | Policy::SoftAntiAffinity => true,
        }
    }

    /// How much a soft policy prefers `spot` (higher is better; 0 for hard ones).
    fn preference(&self, spot: &Spot) -> i64 {
        let n = i64::try_from(self.count(spot)).unwrap_or(i64::MAX);
        match self.policy {
            Policy::SoftAffinity => n,
            Policy::SoftAntiAffinity => -n,
            Policy::Affinity | Policy::AntiAffinity => 0,
        }
    }
}

/// How a host ranks for a placement, higher first: the group's preference, free vCPUs, free
/// memory, then the smaller ID.
type Rank<'a> = (i64, u32, u64, std::cmp::Reverse<&'a str>);

/// Spread by default: of the hosts of the zone that are up and have room, the one with the
/// most free vCPUs, then memory, then the smallest ID (so the choice is deterministic).
pub fn place(candidates: &[Candidate<'_>], zone: &str, need: &Capacity) -> Placement {
    place_with(candidates, zone, need, None)
}

/// [`place`] for a member of a placement group: a hard policy (affinity, anti-affinity)
/// leaves out the hosts it forbids and answers [`Placement::SoldOut`] when none is left; a
/// soft one ranks the hosts by its preference first and never refuses. A zone no host
/// serves is one host, the embedded driver's.
pub fn place_with(
    candidates: &[Candidate<'_>],
    zone: &str,
    need: &Capacity,
    group: Option<&GroupRule<'_>>,
) -> Placement {
    let mut serves = false;
    let mut best: Option<(Rank<'_>, &str)> = None;
    for c in candidates.iter().filter(|c| c.host.zone == zone) {
        serves = true;
        if c.health != HostHealth::Up {
            continue;
        }
        let free = c.host.capacity.minus(&c.used);
        if !free.fits(need) {
            continue;
        }
        let spot = Spot::Host(c.host.id.clone());
        if group.is_some_and(|g| !g.allows(&spot)) {
            continue;
        }
        let rank = (
            group.map_or(0, |g| g.preference(&spot)),
            free.vcpus,
            free.memory_mib,
            std::cmp::Reverse(c.host.id.as_str()),
        );
        if best.as_ref().is_none_or(|(b, _)| rank > *b) {
            best = Some((rank, c.host.id.as_str()));
        }
    }
    match best {
        Some((_, id)) => Placement::Host(id.to_string()),
        None if serves => Placement::SoldOut,
        None if group.is_some_and(|g| !g.allows(&Spot::Embedded(zone.to_string()))) => {
            Placement::SoldOut
        }
        None => Placement::Embedded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(id: &str, zone: &str, vcpus: u32, seen: i64) -> HostRecord {
        HostRecord {
            id: id.into(),
            zone: zone.into(),
            sealed_secret: String::new(),
            created_at_ms: 0,
            address: String::new(),
            driver: "sim".into(),
            capacity: Capacity {
                vcpus,
                memory_mib: u64::from(vcpus) * 4096,
                disk_gib: 1000,
            },
            last_seen_ms: seen,
        }
    }

    fn need(vcpus: u32) -> Capacity {
        Capacity {
            vcpus,
            memory_mib: u64::from(vcpus) * 1024,
            disk_gib: 50,
        }
    }

    #[test]
    fn zones_without_hosts_stay_embedded_and_full_zones_are_sold_out() {
        let a = host("a", "local-a", 4, 1);
        let c = [Candidate {
            host: &a,
            health: HostHealth::Up,
            used: need(3),
        }];
        assert_eq!(place(&c, "local-b", &need(1)), Placement::Embedded);
        assert_eq!(place(&c, "local-a", &need(1)), Placement::Host("a".into()));
        assert_eq!(place(&c, "local-a", &need(2)), Placement::SoldOut);
        // A lost or new host takes nothing, but the zone is still served by hosts.
        for health in [HostHealth::Lost, HostHealth::New] {
            let c = [Candidate {
                host: &a,
                health,
                used: Capacity::default(),
            }];
            assert_eq!(place(&c, "local-a", &need(1)), Placement::SoldOut);
        }
    }

    #[test]
    fn spread_picks_the_freest_host_and_breaks_ties_by_id() {
        let (a, b) = (host("a", "z", 8, 1), host("b", "z", 8, 1));
        let mut c = vec![
            Candidate {
                host: &b,
                health: HostHealth::Up,
                used: Capacity::default(),
            },
            Candidate {
                host: &a,
                health: HostHealth::Up,
                used: Capacity::default(),
            },
        ];
        assert_eq!(place(&c, "z", &need(1)), Placement::Host("a".into()));
        c[1].used = need(1);
        assert_eq!(place(&c, "z", &need(1)), Placement::Host("b".into()));
    }

    #[test]
    fn health_follows_the_last_report() {
        let h = host("a", "z", 1, 0);
        assert_eq!(h.health(10_000, 5_000), HostHealth::New);
        let h = host("a", "z", 1, 10_000);
        assert_eq!(h.health(15_000, 5_000), HostHealth::Up);
        assert_eq!(h.health(15_001, 5_000), HostHealth::Lost);
    }

    #[test]
    fn host_ids_are_short_lowercase_names() {
        for ok in ["a", "host-1", &"h".repeat(63)] {
            assert!(valid_host_id(ok), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a b", &"h".repeat(64), "é"] {
            assert!(!valid_host_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_embedded_driver_is_one_host_per_zone_for_groups() {
        let one = [Spot::Embedded("z".into())];
        let anti = GroupRule {
            policy: Policy::AntiAffinity,
            max_per_host: 1,
            members: &one,
        };
        assert_eq!(
            place_with(&[], "z", &need(1), Some(&anti)),
            Placement::SoldOut
        );
        // Another zone's embedded driver is another host.
        assert_eq!(
            place_with(&[], "y", &need(1), Some(&anti)),
            Placement::Embedded
        );
        let two = GroupRule {
            max_per_host: 2,
            ..anti.clone()
        };
        assert_eq!(
            place_with(&[], "z", &need(1), Some(&two)),
            Placement::Embedded
        );
        let aff = GroupRule {
            policy: Policy::Affinity,
            max_per_host: 1,
            members: &one,
        };
        assert_eq!(
            place_with(&[], "z", &need(1), Some(&aff)),
            Placement::Embedded
        );
        assert_eq!(
            place_with(&[], "y", &need(1), Some(&aff)),
            Placement::SoldOut
        );
        for policy in [Policy::SoftAffinity, Policy::SoftAntiAffinity] {
            let soft = GroupRule {
                policy,
                ..anti.clone()
            };
            assert_eq!(
                place_with(&[], "z", &need(1), Some(&soft)),
                Placement::Embedded
            );
            assert_eq!(
                place_with(&[], "y", &need(1), Some(&soft)),
                Placement::Embedded
            );
        }
    }

    #[test]
    fn anti_affinity_spreads_and_affinity_follows_the_members() {
        let (a, b) = (host("a", "z", 8, 1), host("b", "z", 8, 1));
        let c = [
            Candidate {
                host: &a,
                health: HostHealth::Up,
                used: Capacity::default(),
            },
            Candidate {
                host: &b,
                health: HostHealth::Up,
                used: need(4),
            },
        ];
        let on_a = [Spot::Host("a".into())];
        let rule = |policy| GroupRule {
            policy,
            max_per_host: 1,
            members: &on_a,
        };
        // Without a group, the freest host (a); anti-affinity moves to b.
        assert_eq!(place(&c, "z", &need(1)), Placement::Host("a".into()));
        let anti = rule(Policy::AntiAffinity);
        assert_eq!(
            place_with(&c, "z", &need(1), Some(&anti)),
            Placement::Host("b".into())
        );
        let soft = rule(Policy::SoftAntiAffinity);
        assert_eq!(
            place_with(&c, "z", &need(1), Some(&soft)),
            Placement::Host("b".into())
        );
        let on_b = [Spot::Host("b".into())];
        let aff = GroupRule {
            members: &on_b,
            ..rule(Policy::Affinity)
        };
        assert_eq!(
            place_with(&c, "z", &need(1), Some(&aff)),
            Placement::Host("b".into())
        );
        // b has no room for 8 vCPUs: affinity refuses, soft affinity goes elsewhere.
        assert_eq!(
            place_with(&c, "z", &need(8), Some(&aff)),
            Placement::SoldOut
        );
        let soft_aff = GroupRule {
            policy: Policy::SoftAffinity,
            ..aff.clone()
        };
        assert_eq!(
            place_with(&c, "z", &need(8), Some(&soft_aff)),
            Placement::Host("a".into())
        );
        // Both hosts hold a member: a hard anti-affinity group is sold out.
        let both = [Spot::Host("a".into()), Spot::Host("b".into())];
        let full = GroupRule {
            members: &both,
            ..rule(Policy::AntiAffinity)
        };
        assert_eq!(
            place_with(&c, "z", &need(1), Some(&full)),
            Placement::SoldOut
        );
    }

    proptest! {
        /// Whatever the hosts, a placement never overfills a host, never picks a host that is
        /// not up or of another zone, and picks one whenever one has room.
        #[test]
        fn placement_respects_capacity_zone_and_health(
            hosts in proptest::collection::vec((0u32..16, 0u32..16, 0u8..3, any::<bool>()), 0..8),
            want in 1u32..8,
        ) {
            let records: Vec<HostRecord> = hosts
                .iter()
                .enumerate()
                .map(|(i, (cap, _, _, same_zone))| {
                    host(&format!("h{i}"), if *same_zone { "z" } else { "y" }, *cap, 1)
                })
                .collect();
            let cands: Vec<Candidate<'_>> = records
                .iter()
                .zip(&hosts)
                .map(|(h, (_, used, health, _))| Candidate {
                    host: h,
                    health: [HostHealth::Up, HostHealth::Lost, HostHealth::New][usize::from(*health)],
                    used: need(*used),
                })
                .collect();
            let room = |c: &Candidate<'_>| c.host.zone == "z"
                && c.health == HostHealth::Up
                && c.host.capacity.minus(&c.used).fits(&need(want));
            match place(&cands, "z", &need(want)) {
                Placement::Host(id) => {
                    let c = cands.iter().find(|c| c.host.id == id).unwrap();
                    prop_assert!(room(c));
                }
                Placement::SoldOut => {
                    prop_assert!(cands.iter().any(|c| c.host.zone == "z"));
                    prop_assert!(!cands.iter().any(room));
                }
                Placement::Embedded => prop_assert!(!cands.iter().any(|c| c.host.zone == "z")),
            }
        }

        /// Whatever the hosts and the members, a hard policy is never broken (anti-affinity:
        /// no host over its members' limit; affinity: only the members' host), a hard policy
        /// refuses only when no host it allows has room, and a soft one refuses only when
        /// no host has room at all.
        #[test]
        fn group_placement_keeps_hard_policies_and_soft_ones_never_refuse(
            hosts in proptest::collection::vec((0u32..16, 0u32..16, 0u8..3, any::<bool>()), 0..6),
            members in proptest::collection::vec(0usize..8, 0..6),
            policy in 0usize..4,
            max_per_host in 1u32..3,
            want in 1u32..8,
        ) {
            let records: Vec<HostRecord> = hosts
                .iter()
                .enumerate()
                .map(|(i, (cap, _, _, same_zone))| {
                    host(&format!("h{i}"), if *same_zone { "z" } else { "y" }, *cap, 1)
                })
                .collect();
            let cands: Vec<Candidate<'_>> = records
                .iter()
                .zip(&hosts)
                .map(|(h, (_, used, health, _))| Candidate {
                    host: h,
                    health: [HostHealth::Up, HostHealth::Lost, HostHealth::New][usize::from(*health)],
                    used: need(*used),
                })
                .collect();
            // Members on the hosts (by index), or on the embedded driver of z or y.
            let spots: Vec<Spot> = members
                .iter()
                .map(|m| match m {
                    6 => Spot::Embedded("z".into()),
                    7 => Spot::Embedded("y".into()),
                    i => records.get(*i).map_or(Spot::Embedded("z".into()), |h| Spot::Host(h.id.clone())),
                })
                .collect();
            let policy = Policy::ALL[policy];
            let rule = GroupRule { policy, max_per_host, members: &spots };
            let count = |s: &Spot| spots.iter().filter(|m| *m == s).count();
            let allowed = |s: &Spot| match policy {
                Policy::AntiAffinity => count(s) < max_per_host as usize,
                Policy::Affinity => spots.iter().all(|m| m == s),
                Policy::SoftAffinity | Policy::SoftAntiAffinity => true,
            };
            let room = |c: &Candidate<'_>| c.host.zone == "z"
                && c.health == HostHealth::Up
                && c.host.capacity.minus(&c.used).fits(&need(want));
            let serves = cands.iter().any(|c| c.host.zone == "z");
            match place_with(&cands, "z", &need(want), Some(&rule)) {
                Placement::Host(id) => {
                    let c = cands.iter().find(|c| c.host.id == id).unwrap();
                    prop_assert!(room(c));
                    prop_assert!(allowed(&Spot::Host(id)));
                }
                Placement::SoldOut if serves => {
                    prop_assert!(!cands
                        .iter()
                        .any(|c| room(c) && allowed(&Spot::Host(c.host.id.clone()))));
                    if !policy.hard() {
                        prop_assert!(!cands.iter().any(room));
                    }
                }
                Placement::SoldOut => {
                    prop_assert!(policy.hard());
                    prop_assert!(!allowed(&Spot::Embedded("z".into())));
                }
                Placement::Embedded => {
                    prop_assert!(!serves);
                    prop_assert!(allowed(&Spot::Embedded("z".into())));
                }
            }
        }
    }
}
