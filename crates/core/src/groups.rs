//! Placement groups (docs/placement-groups.md): one account-scoped resource that Nova shows as
//! a server group, Tencent as a disaster-recover (spread placement) group and Alibaba as a
//! deployment set. A group holds a policy; its members are the listed instances created into
//! it (`Instance::placement_group`), and `hosts::place_with` keeps the policy when it places
//! a new member.

use crate::ids;
use serde::{Deserialize, Serialize};

/// Where a group's members go relative to each other. "Host" is an agent host, or the
/// embedded driver of one zone (counted as one host per zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// All members on one host; a member that cannot join them is refused.
    Affinity,
    /// No more than `max_per_host` members on one host; one that cannot be placed so is
    /// refused. Tencent's groups (HOST, SW, RACK) and Alibaba's `Availability`.
    AntiAffinity,
    /// Together when there is room, never refused for it. Alibaba's `LowLatency`.
    SoftAffinity,
    /// Spread when there is room, never refused for it. Alibaba's `AvailabilityGroup`.
    SoftAntiAffinity,
}

impl Policy {
    pub const ALL: [Policy; 4] = [
        Self::Affinity,
        Self::AntiAffinity,
        Self::SoftAffinity,
        Self::SoftAntiAffinity,
    ];

    /// Nova's name (`affinity`, `anti-affinity`, `soft-affinity`, `soft-anti-affinity`).
    pub fn nova_name(self) -> &'static str {
        match self {
            Self::Affinity => "affinity",
            Self::AntiAffinity => "anti-affinity",
            Self::SoftAffinity => "soft-affinity",
            Self::SoftAntiAffinity => "soft-anti-affinity",
        }
    }

    pub fn from_nova(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.nova_name() == name)
    }

    /// A hard policy refuses a member it cannot place by its rule.
    pub fn hard(self) -> bool {
        match self {
            Self::Affinity | Self::AntiAffinity => true,
            Self::SoftAffinity | Self::SoftAntiAffinity => false,
        }
    }
}

/// Which cloud's flavour of group the record was created as: what Tencent's `Type` and
/// Alibaba's `Strategy` show. A group made through one API is shown by the others with the
/// nearest name (docs/placement-groups.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavour {
    /// A Nova server group.
    Nova,
    /// Tencent `HOST`.
    TencentHost,
    /// Tencent `SW` (switch): a host is its own switch here.
    TencentSwitch,
    /// Tencent `RACK`: a host is its own rack here.
    TencentRack,
    /// Alibaba `Availability`.
    AliyunAvailability,
    /// Alibaba `AvailabilityGroup`.
    AliyunAvailabilityGroup,
    /// Alibaba `LowLatency`.
    AliyunLowLatency,
}

impl Flavour {
    /// The policy a flavour keeps (a Nova group's is chosen by its creator).
    pub fn policy(self) -> Option<Policy> {
        match self {
            Self::Nova => None,
            Self::TencentHost | Self::TencentSwitch | Self::TencentRack => {
                Some(Policy::AntiAffinity)
            }
            Self::AliyunAvailability => Some(Policy::AntiAffinity),
            Self::AliyunAvailabilityGroup => Some(Policy::SoftAntiAffinity),
            Self::AliyunLowLatency => Some(Policy::SoftAffinity),
        }
    }

    /// The most members a group of this flavour holds (Tencent's `CvmQuotaTotal` per type,
    /// DescribeDisasterRecoverGroupQuota; Alibaba: 20 per zone for `Availability`, 20 per
    /// group of `AvailabilityGroup`; Nova's `server_group_members` quota default, 10).
    pub fn max_members(self, group_count: u32) -> u32 {
        match self {
            Self::Nova => NOVA_MAX_MEMBERS,
            Self::TencentHost => TENCENT_HOST_MEMBERS,
            Self::TencentSwitch => TENCENT_SWITCH_MEMBERS,
            Self::TencentRack => TENCENT_RACK_MEMBERS,
            Self::AliyunAvailability | Self::AliyunLowLatency => ALIYUN_ZONE_MEMBERS,
            Self::AliyunAvailabilityGroup => ALIYUN_ZONE_MEMBERS.saturating_mul(group_count),
        }
    }

    /// Whether [`Flavour::max_members`] counts the members of one zone (Alibaba) or of the
    /// whole group.
    pub fn per_zone(self) -> bool {
        matches!(
            self,
            Self::AliyunAvailability | Self::AliyunAvailabilityGroup | Self::AliyunLowLatency
        )
    }

    /// Tencent's `Type` for a group of this flavour.
    pub fn tencent_type(self) -> &'static str {
        match self {
            Self::TencentSwitch => "SW",
            Self::TencentRack => "RACK",
            Self::Nova
            | Self::TencentHost
            | Self::AliyunAvailability
            | Self::AliyunAvailabilityGroup
            | Self::AliyunLowLatency => "HOST",
        }
    }

    /// Alibaba's `Strategy` for a group of this flavour and policy.
    pub fn aliyun_strategy(self, policy: Policy) -> &'static str {
        match (self, policy) {
            (Self::AliyunAvailabilityGroup, _) => "AvailabilityGroup",
            (Self::AliyunLowLatency, _) => "LowLatency",
            (_, Policy::Affinity | Policy::SoftAffinity) => "LowLatency",
            (_, Policy::SoftAntiAffinity) => "AvailabilityGroup",
            (_, Policy::AntiAffinity) => "Availability",
        }
    }
}

/// Members per group (Nova `server_group_members` default quota).
pub const NOVA_MAX_MEMBERS: u32 = 10;
/// Tencent `CvmInHostGroupQuota`, `CvmInSwGroupQuota`, `CvmInRackGroupQuota`.
pub const TENCENT_HOST_MEMBERS: u32 = 50;
pub const TENCENT_SWITCH_MEMBERS: u32 = 20;
pub const TENCENT_RACK_MEMBERS: u32 = 30;
/// Alibaba: instances of a deployment set in one zone.
pub const ALIYUN_ZONE_MEMBERS: u32 = 20;
/// Groups per account, whatever API made them (Nova `server_groups` default quota; Tencent
/// `GroupQuota`).
pub const GROUPS_PER_ACCOUNT: u32 = 10;
/// The most members per host a group may allow (Tencent and Alibaba `Affinity` 1–10; Nova's
/// `max_server_per_host` is held to the same bound).
pub const MAX_PER_HOST: u32 = 10;

/// One placement group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementGroup {
    /// Canonical ID: a UUID, also Nova's server group ID.
    pub id: String,
    /// `ps-` + 8 lower-case alphanumerics.
    pub tencent_id: String,
    /// `ds-` + 20 lower-case alphanumerics.
    pub aliyun_id: String,
    pub account: String,
    /// The Keystone project of a group made through Nova with a project-scoped token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The Keystone user that made it through Nova.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub policy: Policy,
    pub flavour: Flavour,
    /// The most members on one host, for [`Policy::AntiAffinity`] (Nova
    /// `max_server_per_host`, Tencent and Alibaba `Affinity`); 1 by default.
    pub max_per_host: u32,
    /// Alibaba `GroupCount` (1–7, `AvailabilityGroup`); 0 elsewhere.
    #[serde(default)]
    pub group_count: u32,
    /// Alibaba `OnUnableToRedeployFailedInstance`, kept and shown.
    #[serde(default)]
    pub on_unable_to_redeploy: String,
    /// The ClientToken of the create, for an idempotent retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_token: Option<String>,
    pub created_at_ms: i64,
}

impl PlacementGroup {
    pub fn max_members(&self) -> u32 {
        self.flavour.max_members(self.group_count)
    }
}

/// `ps-` + 8 lower-case alphanumerics (Tencent).
pub fn new_tencent_id() -> String {
    format!("ps-{}", ids::random_alnum(8))
}

/// `ds-` + 20 lower-case alphanumerics (Alibaba).
pub fn new_aliyun_id() -> String {
    format!("ds-{}", ids::random_alnum(20))
}

pub fn is_tencent_id(s: &str) -> bool {
    ids::has_shape(s, "ps-", 8)
}

pub fn is_aliyun_id(s: &str) -> bool {
    ids::has_shape(s, "ds-", 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_shapes() {
        assert!(is_tencent_id(&new_tencent_id()));
        assert!(is_aliyun_id(&new_aliyun_id()));
        for bad in ["ps-1234567", "ps-ABCDEFGH", "ds-1", "", "ps-123456789"] {
            assert!(!is_tencent_id(bad) && !is_aliyun_id(bad), "{bad}");
        }
    }

    #[test]
    fn nova_names_round_trip_and_flavours_keep_their_policy() {
        for p in Policy::ALL {
            assert_eq!(Policy::from_nova(p.nova_name()), Some(p));
        }
        assert_eq!(Policy::from_nova("Affinity"), None);
        assert_eq!(Flavour::TencentRack.policy(), Some(Policy::AntiAffinity));
        assert_eq!(Flavour::TencentRack.tencent_type(), "RACK");
        assert_eq!(
            Flavour::Nova.aliyun_strategy(Policy::AntiAffinity),
            "Availability"
        );
        assert_eq!(Flavour::AliyunAvailabilityGroup.max_members(3), 60);
        assert!(Flavour::AliyunAvailability.per_zone() && !Flavour::TencentHost.per_zone());
    }
}
