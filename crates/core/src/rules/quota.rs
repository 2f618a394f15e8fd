//! Per-account quotas: how many instances, vCPUs, MiB of memory and key pairs an account may
//! hold. The engine counts the usage from the fleet (instances not terminated, key pairs) and
//! asks here, under the fleet lock and before the new records exist, whether a create fits —
//! the same critical section that accepts the create, so two creates racing for the last slot
//! cannot both pass. docs/quotas.md has each cloud's answer.

use crate::catalog::InstanceType;
use crate::error::DomainError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A limit value meaning "no limit" (Nova's `-1`).
pub const UNLIMITED: i64 = -1;

/// The largest limit accepted (Nova's quota values are 32-bit signed integers in its API).
pub const MAX_LIMIT: i64 = i32::MAX as i64;

/// What a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaResource {
    /// Nova `cores`; sorted first as Nova lists them alphabetically.
    Cores,
    Instances,
    /// Nova `key_pairs`.
    KeyPairs,
    /// Memory in MiB (Nova `ram`).
    Ram,
}

impl QuotaResource {
    pub const ALL: [Self; 4] = [Self::Cores, Self::Instances, Self::KeyPairs, Self::Ram];

    /// Nova's name (`os-quota-sets` keys, quota messages).
    pub fn nova_name(self) -> &'static str {
        match self {
            Self::Cores => "cores",
            Self::Instances => "instances",
            Self::KeyPairs => "key_pairs",
            Self::Ram => "ram",
        }
    }
}

/// Nova's quotas on items rather than on counted capacity: what one server, group or
/// request may hold, and the legacy network quotas. docs/quotas.md says which nubis enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemQuota {
    /// Metadata items per server (Nova `metadata_items`).
    MetadataItems,
    /// Placement groups (Nova server groups; Tencent disaster recover groups; Alibaba
    /// deployment sets) per account, or per Keystone project for Nova's.
    ServerGroups,
    /// Members of one Nova server group.
    ServerGroupMembers,
    /// Personality files per server (Nova before 2.57), under core's fixed maximum.
    InjectedFiles,
    InjectedFileContentBytes,
    InjectedFilePathBytes,
    /// Neutron's in a Nova with Neutron: stored and shown, never enforced (nubis serves no
    /// Neutron).
    FixedIps,
    FloatingIps,
    SecurityGroups,
    SecurityGroupRules,
}

impl ItemQuota {
    pub const ALL: [Self; 10] = [
        Self::MetadataItems,
        Self::ServerGroups,
        Self::ServerGroupMembers,
        Self::InjectedFiles,
        Self::InjectedFileContentBytes,
        Self::InjectedFilePathBytes,
        Self::FixedIps,
        Self::FloatingIps,
        Self::SecurityGroups,
        Self::SecurityGroupRules,
    ];

    /// Nova's name (`os-quota-sets` keys).
    pub fn nova_name(self) -> &'static str {
        match self {
            Self::MetadataItems => "metadata_items",
            Self::ServerGroups => "server_groups",
            Self::ServerGroupMembers => "server_group_members",
            Self::InjectedFiles => "injected_files",
            Self::InjectedFileContentBytes => "injected_file_content_bytes",
            Self::InjectedFilePathBytes => "injected_file_path_bytes",
            Self::FixedIps => "fixed_ips",
            Self::FloatingIps => "floating_ips",
            Self::SecurityGroups => "security_groups",
            Self::SecurityGroupRules => "security_group_rules",
        }
    }

    pub fn from_nova_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.nova_name() == name)
    }

    /// Nova's default (`nova.conf [quota]`).
    pub fn nova_default(self) -> i64 {
        match self {
            Self::MetadataItems => 128,
            Self::ServerGroups | Self::ServerGroupMembers => 10,
            Self::InjectedFiles => crate::inject::MAX_FILES as i64,
            Self::InjectedFileContentBytes => crate::inject::MAX_CONTENT_BYTES as i64,
            Self::InjectedFilePathBytes => crate::inject::MAX_PATH_BYTES as i64,
            Self::FixedIps => UNLIMITED,
            Self::FloatingIps | Self::SecurityGroups => 10,
            Self::SecurityGroupRules => 20,
        }
    }

    /// Neutron's quotas, which Nova dropped at 2.36.
    pub fn is_network(self) -> bool {
        matches!(
            self,
            Self::FixedIps | Self::FloatingIps | Self::SecurityGroups | Self::SecurityGroupRules
        )
    }

    /// The personality quotas, which Nova dropped at 2.57.
    pub fn is_injected(self) -> bool {
        matches!(
            self,
            Self::InjectedFiles | Self::InjectedFileContentBytes | Self::InjectedFilePathBytes
        )
    }
}

/// One limit per [`ItemQuota`], each `>= 0` or [`UNLIMITED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemLimits([i64; ItemQuota::ALL.len()]);

impl ItemLimits {
    /// Nova's defaults ([`ItemQuota::nova_default`], which a test holds to this table).
    pub const NOVA_DEFAULTS: Self = Self([
        128,
        10,
        10,
        crate::inject::MAX_FILES as i64,
        crate::inject::MAX_CONTENT_BYTES as i64,
        crate::inject::MAX_PATH_BYTES as i64,
        UNLIMITED,
        10,
        10,
        20,
    ]);

    pub fn get(&self, i: ItemQuota) -> i64 {
        self.0[i as usize]
    }

    pub fn set(&mut self, i: ItemQuota, v: i64) {
        self.0[i as usize] = v;
    }

    /// Does `n` items fit under the limit of `i`?
    pub fn allows(&self, i: ItemQuota, n: u64) -> bool {
        u64::try_from(self.get(i)).map_or(true, |max| n <= max)
    }
}

impl Default for ItemLimits {
    fn default() -> Self {
        Self::NOVA_DEFAULTS
    }
}

impl Serialize for ItemLimits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(ItemQuota::ALL.len()))?;
        for i in ItemQuota::ALL {
            m.serialize_entry(&i, &self.get(i))?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for ItemLimits {
    /// A map of some items: the others keep Nova's defaults.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let given = std::collections::BTreeMap::<ItemQuota, i64>::deserialize(d)?;
        let mut l = Self::NOVA_DEFAULTS;
        for (i, v) in given {
            l.set(i, v);
        }
        Ok(l)
    }
}

/// The limits of one account, each `>= 0` or [`UNLIMITED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaLimits {
    pub instances: i64,
    pub cores: i64,
    pub ram_mib: i64,
    pub key_pairs: i64,
    /// The item quotas (Nova's defaults unless set).
    #[serde(default)]
    pub items: ItemLimits,
}

impl QuotaLimits {
    /// No limit on capacity (the bootstrap admin's default); the item quotas keep Nova's
    /// defaults, which bound what one server or group holds.
    pub const UNLIMITED: Self = Self {
        instances: UNLIMITED,
        cores: UNLIMITED,
        ram_mib: UNLIMITED,
        key_pairs: UNLIMITED,
        items: ItemLimits::NOVA_DEFAULTS,
    };

    /// Nova's default quotas (`nova.conf [quota]`): 10 instances, 20 cores, 50 GiB of
    /// memory, 100 key pairs — the default for every account but the bootstrap admin.
    pub const NOVA_DEFAULTS: Self = Self {
        instances: 10,
        cores: 20,
        ram_mib: 51_200,
        key_pairs: 100,
        items: ItemLimits::NOVA_DEFAULTS,
    };

    pub fn get(&self, r: QuotaResource) -> i64 {
        match r {
            QuotaResource::Instances => self.instances,
            QuotaResource::Cores => self.cores,
            QuotaResource::Ram => self.ram_mib,
            QuotaResource::KeyPairs => self.key_pairs,
        }
    }

    /// Every limit is `-1..=MAX_LIMIT`.
    pub fn check(&self) -> Result<(), DomainError> {
        for r in QuotaResource::ALL {
            check_limit(r, self.get(r))?;
        }
        for i in ItemQuota::ALL {
            check_item_limit(i, self.items.get(i))?;
        }
        Ok(())
    }

    /// Whether no capacity limit applies (usage need not be counted).
    pub fn is_unlimited(&self) -> bool {
        QuotaResource::ALL
            .into_iter()
            .all(|r| self.get(r) == UNLIMITED)
    }

    /// These limits with an account's overrides applied.
    pub fn with(&self, o: &QuotaOverrides) -> Self {
        let mut items = self.items;
        for (i, v) in &o.items {
            items.set(*i, *v);
        }
        Self {
            instances: o.instances.unwrap_or(self.instances),
            cores: o.cores.unwrap_or(self.cores),
            ram_mib: o.ram_mib.unwrap_or(self.ram_mib),
            key_pairs: o.key_pairs.unwrap_or(self.key_pairs),
            items,
        }
    }
}

/// One item limit value: `-1` (unlimited) up to [`MAX_LIMIT`].
pub fn check_item_limit(i: ItemQuota, v: i64) -> Result<(), DomainError> {
    if (UNLIMITED..=MAX_LIMIT).contains(&v) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            i.nova_name(),
            format!("must be -1 (unlimited) or 0…{MAX_LIMIT}, got {v}"),
        ))
    }
}

/// One limit value: `-1` (unlimited) up to [`MAX_LIMIT`].
pub fn check_limit(r: QuotaResource, v: i64) -> Result<(), DomainError> {
    if (UNLIMITED..=MAX_LIMIT).contains(&v) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            r.nova_name(),
            format!("must be -1 (unlimited) or 0…{MAX_LIMIT}, got {v}"),
        ))
    }
}

/// An account's own limits; a field not set follows the defaults (which the operator may
/// change at the next start). Strict: the admin API parses its body into it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ram_mib: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pairs: Option<i64>,
    /// Item quotas set (by Nova name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<ItemQuota, i64>,
}

impl QuotaOverrides {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Every given limit is `-1..=MAX_LIMIT`.
    pub fn check(&self) -> Result<(), DomainError> {
        for (r, v) in [
            (QuotaResource::Instances, self.instances),
            (QuotaResource::Cores, self.cores),
            (QuotaResource::Ram, self.ram_mib),
            (QuotaResource::KeyPairs, self.key_pairs),
        ] {
            if let Some(v) = v {
                check_limit(r, v)?;
            }
        }
        for (i, v) in &self.items {
            check_item_limit(*i, *v)?;
        }
        Ok(())
    }

    /// The capacity limit set for `r`, if any.
    pub fn get(&self, r: QuotaResource) -> Option<i64> {
        match r {
            QuotaResource::Instances => self.instances,
            QuotaResource::Cores => self.cores,
            QuotaResource::Ram => self.ram_mib,
            QuotaResource::KeyPairs => self.key_pairs,
        }
    }

    /// `self` with the fields `change` sets replaced.
    pub fn merged(&self, change: &QuotaOverrides) -> Self {
        let mut items = self.items.clone();
        items.extend(change.items.iter().map(|(i, v)| (*i, *v)));
        Self {
            instances: change.instances.or(self.instances),
            cores: change.cores.or(self.cores),
            ram_mib: change.ram_mib.or(self.ram_mib),
            key_pairs: change.key_pairs.or(self.key_pairs),
            items,
        }
    }
}

/// The stored record of an account's overrides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountQuota {
    pub account: String,
    pub overrides: QuotaOverrides,
}

/// What an account holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Instances not terminated.
    pub instances: u64,
    /// Their vCPUs.
    pub cores: u64,
    /// Their memory in MiB.
    pub ram_mib: u64,
    pub key_pairs: u64,
    /// Placement groups (Nova `server_groups` in use).
    pub server_groups: u64,
}

impl QuotaUsage {
    pub fn get(&self, r: QuotaResource) -> u64 {
        match r {
            QuotaResource::Instances => self.instances,
            QuotaResource::Cores => self.cores,
            QuotaResource::Ram => self.ram_mib,
            QuotaResource::KeyPairs => self.key_pairs,
        }
    }

    /// Count one instance of this type.
    pub fn add_instance(&mut self, t: &InstanceType) {
        self.instances += 1;
        self.cores += u64::from(t.cpu);
        self.ram_mib += u64::from(t.memory_mib);
    }

    /// One instance more (`gone`: less) of type `t` (`None`: a type no one knows, which
    /// takes no vCPUs or memory).
    pub fn count_instance(&mut self, t: Option<&InstanceType>, gone: bool) {
        let (cores, ram) = t.map_or((0, 0), |t| (u64::from(t.cpu), u64::from(t.memory_mib)));
        if gone {
            self.instances = self.instances.saturating_sub(1);
            self.cores = self.cores.saturating_sub(cores);
            self.ram_mib = self.ram_mib.saturating_sub(ram);
        } else {
            self.instances += 1;
            self.cores += cores;
            self.ram_mib += ram;
        }
    }
}

/// One resource a request would take beyond its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaOver {
    pub resource: QuotaResource,
    /// What the request asks for.
    pub requested: u64,
    /// What the account holds already.
    pub used: u64,
    pub limit: u64,
}

/// The resources `want` takes beyond `limits` given `used`, in [`QuotaResource`] order.
fn overs(limits: &QuotaLimits, used: &QuotaUsage, want: &QuotaUsage) -> Vec<QuotaOver> {
    QuotaResource::ALL
        .into_iter()
        .filter(|r| want.get(*r) > 0)
        .filter_map(|r| {
            let limit = u64::try_from(limits.get(r)).ok()?; // negative: unlimited
            let (requested, used) = (want.get(r), used.get(r));
            (used.saturating_add(requested) > limit).then_some(QuotaOver {
                resource: r,
                requested,
                used,
                limit,
            })
        })
        .collect()
}

/// May an account with `used` under `limits` launch `count` instances of type `t`? Refused
/// with [`DomainError::QuotaExceeded`] naming every resource it would exceed.
pub fn check_create(
    limits: &QuotaLimits,
    used: &QuotaUsage,
    t: &InstanceType,
    count: u32,
) -> Result<(), DomainError> {
    let mut want = QuotaUsage::default();
    for _ in 0..count.min(crate::limits::MAX_LAUNCH_COUNT) {
        want.add_instance(t);
    }
    let overs = overs(limits, used, &want);
    if overs.is_empty() {
        Ok(())
    } else {
        Err(DomainError::QuotaExceeded(overs))
    }
}

/// May an account with `used` under `limits` change an instance from type `from` to `to`
/// (a resize, or a revert to the type before one)? Only what grows counts: the difference
/// in vCPUs and memory; a smaller type always fits.
pub fn check_resize(
    limits: &QuotaLimits,
    used: &QuotaUsage,
    from: &InstanceType,
    to: &InstanceType,
) -> Result<(), DomainError> {
    let mib = |t: &InstanceType| u64::from(t.memory_mib);
    let want = QuotaUsage {
        cores: u64::from(to.cpu).saturating_sub(u64::from(from.cpu)),
        ram_mib: mib(to).saturating_sub(mib(from)),
        ..Default::default()
    };
    let overs = overs(limits, used, &want);
    if overs.is_empty() {
        Ok(())
    } else {
        Err(DomainError::QuotaExceeded(overs))
    }
}

/// May an account with `used` under `limits` add a key pair?
pub fn check_key_pair(limits: &QuotaLimits, used: &QuotaUsage) -> Result<(), DomainError> {
    let want = QuotaUsage {
        key_pairs: 1,
        ..Default::default()
    };
    let overs = overs(limits, used, &want);
    if overs.is_empty() {
        Ok(())
    } else {
        Err(DomainError::QuotaExceeded(overs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn t(name: &str) -> &'static InstanceType {
        catalog::instance_type(name).unwrap()
    }

    fn used(instances: u64, cores: u64, ram_mib: u64) -> QuotaUsage {
        QuotaUsage {
            instances,
            cores,
            ram_mib,
            ..Default::default()
        }
    }

    #[test]
    fn the_last_slot_is_taken_and_the_next_refused() {
        let l = QuotaLimits {
            instances: 2,
            ..QuotaLimits::UNLIMITED
        };
        let s1 = t("S5.SMALL2");
        assert!(check_create(&l, &used(1, 1, 2048), s1, 1).is_ok());
        let e = check_create(&l, &used(2, 2, 4096), s1, 1).unwrap_err();
        assert_eq!(
            e,
            DomainError::QuotaExceeded(vec![QuotaOver {
                resource: QuotaResource::Instances,
                requested: 1,
                used: 2,
                limit: 2
            }])
        );
        // A batch is all or nothing: 1 used + 2 asked > 2.
        assert!(check_create(&l, &used(1, 1, 2048), s1, 2).is_err());
    }

    #[test]
    fn cores_and_memory_count_and_every_exceeded_resource_is_named() {
        let l = QuotaLimits {
            instances: 10,
            cores: 4,
            ram_mib: 8192,
            key_pairs: 1,
            items: ItemLimits::NOVA_DEFAULTS,
        };
        let big = t("S5.LARGE8"); // 4 vCPU, 8 GiB
        assert!(check_create(&l, &used(0, 0, 0), big, 1).is_ok());
        let e = check_create(&l, &used(1, 1, 2048), big, 1).unwrap_err();
        let DomainError::QuotaExceeded(o) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            o.iter().map(|o| o.resource).collect::<Vec<_>>(),
            [QuotaResource::Cores, QuotaResource::Ram]
        );
        assert_eq!((o[0].requested, o[0].used, o[0].limit), (4, 1, 4));
        assert_eq!((o[1].requested, o[1].used, o[1].limit), (8192, 2048, 8192));
    }

    #[test]
    fn a_resize_counts_only_what_grows() {
        let l = QuotaLimits {
            instances: 1,
            cores: 3,
            ram_mib: 6144,
            key_pairs: 0,
            items: ItemLimits::NOVA_DEFAULTS,
        };
        // One MEDIUM4 (2 vCPU, 4 GiB) held: to LARGE8 (4, 8) needs 2 more of each.
        let held = used(1, 2, 4096);
        let e = check_resize(&l, &held, t("S5.MEDIUM4"), t("S5.LARGE8")).unwrap_err();
        let DomainError::QuotaExceeded(o) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            o.iter()
                .map(|o| (o.resource, o.requested, o.used, o.limit))
                .collect::<Vec<_>>(),
            [
                (QuotaResource::Cores, 2, 2, 3),
                (QuotaResource::Ram, 4096, 4096, 6144)
            ]
        );
        // Smaller always fits, even at the limit; the instance count is not touched.
        assert!(check_resize(&l, &used(1, 3, 6144), t("S5.MEDIUM4"), t("S5.SMALL2")).is_ok());
        let roomy = QuotaLimits {
            cores: 4,
            ram_mib: 8192,
            ..l
        };
        assert!(check_resize(&roomy, &held, t("S5.MEDIUM4"), t("S5.LARGE8")).is_ok());
    }

    #[test]
    fn unlimited_and_zero() {
        let huge = QuotaUsage {
            instances: u64::MAX,
            cores: u64::MAX,
            ram_mib: u64::MAX,
            key_pairs: u64::MAX,
            server_groups: u64::MAX,
        };
        assert!(check_create(&QuotaLimits::UNLIMITED, &huge, t("S5.SMALL2"), 100).is_ok());
        assert!(check_key_pair(&QuotaLimits::UNLIMITED, &huge).is_ok());
        let zero = QuotaLimits {
            instances: 0,
            cores: 0,
            ram_mib: 0,
            key_pairs: 0,
            items: ItemLimits::NOVA_DEFAULTS,
        };
        assert!(check_create(&zero, &QuotaUsage::default(), t("S5.SMALL2"), 1).is_err());
        let e = check_key_pair(&zero, &QuotaUsage::default()).unwrap_err();
        assert!(
            matches!(&e, DomainError::QuotaExceeded(o) if o[0].resource == QuotaResource::KeyPairs && o[0].limit == 0)
        );
    }

    #[test]
    fn overrides_apply_field_by_field_and_values_are_bounded() {
        let o = QuotaOverrides {
            instances: Some(3),
            ..Default::default()
        };
        let l = QuotaLimits::NOVA_DEFAULTS.with(&o);
        assert_eq!((l.instances, l.cores), (3, 20));
        let m = o.merged(&QuotaOverrides {
            cores: Some(-1),
            ..Default::default()
        });
        assert_eq!((m.instances, m.cores), (Some(3), Some(-1)));
        assert!(m.check().is_ok());
        for bad in [-2, MAX_LIMIT + 1] {
            let o = QuotaOverrides {
                key_pairs: Some(bad),
                ..Default::default()
            };
            assert!(
                matches!(o.check(), Err(DomainError::InvalidValue { name, .. }) if name == "key_pairs")
            );
        }
        assert!(QuotaLimits::NOVA_DEFAULTS.check().is_ok());
    }

    #[test]
    fn item_defaults_are_novas_and_overrides_set_them_one_by_one() {
        for i in ItemQuota::ALL {
            assert_eq!(ItemLimits::NOVA_DEFAULTS.get(i), i.nova_default(), "{i:?}");
            assert_eq!(ItemQuota::from_nova_name(i.nova_name()), Some(i));
        }
        let o = QuotaOverrides {
            items: [(ItemQuota::MetadataItems, 3)].into(),
            ..Default::default()
        };
        let l = QuotaLimits::NOVA_DEFAULTS.with(&o);
        assert_eq!(l.items.get(ItemQuota::MetadataItems), 3);
        assert_eq!(l.items.get(ItemQuota::ServerGroups), 10);
        assert!(l.items.allows(ItemQuota::MetadataItems, 3));
        assert!(!l.items.allows(ItemQuota::MetadataItems, 4));
        let mut u = l.items;
        u.set(ItemQuota::MetadataItems, UNLIMITED);
        assert!(u.allows(ItemQuota::MetadataItems, u64::MAX));
        // Stored as JSON by Nova name; unknown names refused.
        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(json, r#"{"items":{"metadata_items":3}}"#);
        assert_eq!(serde_json::from_str::<QuotaOverrides>(&json).unwrap(), o);
        assert!(serde_json::from_str::<QuotaOverrides>(r#"{"items":{"networks":3}}"#).is_err());
        let bad = QuotaOverrides {
            items: [(ItemQuota::ServerGroups, -2)].into(),
            ..Default::default()
        };
        assert!(bad.check().is_err());
        // A config's limits without items take Nova's.
        let c: QuotaLimits =
            serde_json::from_str(r#"{"instances":1,"cores":2,"ram_mib":3,"key_pairs":4}"#).unwrap();
        assert_eq!(c.items, ItemLimits::NOVA_DEFAULTS);
    }
}
