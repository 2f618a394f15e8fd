//! The built-in catalogue: regions, zones, images, instance types.
//!
//! One canonical region with a name per dialect, so an instance created through one API can be
//! managed through another. Some entries exist to make seed error codes reachable (an ARM
//! family, an edge zone, a special and a bare-metal type).

use crate::model::OsFamily;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    pub id: &'static str,
    pub tencent: &'static str,
    pub tencent_zone_id: &'static str,
    pub aliyun: &'static str,
    pub openstack: &'static str,
    pub name: &'static str,
    pub edge: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub id: &'static str,
    pub tencent: &'static str,
    pub aliyun: &'static str,
    pub openstack: &'static str,
    pub name: &'static str,
    pub zones: &'static [Zone],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Arm64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeKind {
    Standard,
    /// Special-purpose type (UnsupportedOperation.SpecialInstanceType).
    Special,
    /// Bare metal (InvalidInstance.NotSupported).
    BareMetal,
}

/// The facts of an instance type: a built-in one of [`INSTANCE_TYPES`], or one an operator
/// created (`flavors::Flavor::instance_type`, docs/flavors.md). An instance keeps the facts of
/// its type (`Instance::flavor`), so it still renders when a created type is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredInstanceType")]
pub struct InstanceType {
    /// The canonical name: Tencent's `InstanceType`, Nova's flavor ID.
    pub name: Cow<'static, str>,
    /// The Alibaba spelling of the same type.
    pub aliyun: Cow<'static, str>,
    pub family: Cow<'static, str>,
    pub cpu: u32,
    pub memory_mib: u32,
    pub arch: Arch,
    pub kind: TypeKind,
}

/// The facts of type `name`: those an instance `kept` (when they are that type's), else the
/// built-in catalogue's (`None`: a type neither knows).
pub fn facts_of<'a>(kept: Option<&'a InstanceType>, name: &str) -> Option<&'a InstanceType> {
    kept.filter(|t| t.name == name)
        .or_else(|| instance_type(name))
}

/// [`InstanceType`] as read: one equal to a built-in type becomes that type, borrowing its
/// names (every instance keeps its type's facts; a million read back would otherwise hold
/// three small strings each).
#[derive(Deserialize)]
struct StoredInstanceType {
    name: String,
    aliyun: String,
    family: String,
    cpu: u32,
    memory_mib: u32,
    arch: Arch,
    kind: TypeKind,
}

impl From<StoredInstanceType> for InstanceType {
    fn from(s: StoredInstanceType) -> Self {
        let read = InstanceType {
            name: Cow::Owned(s.name),
            aliyun: Cow::Owned(s.aliyun),
            family: Cow::Owned(s.family),
            cpu: s.cpu,
            memory_mib: s.memory_mib,
            arch: s.arch,
            kind: s.kind,
        };
        INSTANCE_TYPES
            .iter()
            .find(|t| **t == read)
            .cloned()
            .unwrap_or(read)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Image {
    pub id: &'static str,
    pub name: &'static str,
    pub os_name: &'static str,
    pub platform: &'static str,
    pub os: OsFamily,
    pub default_user: &'static str,
    pub size_gib: u32,
    /// Listed to users (the rescue image is internal).
    pub public: bool,
}

pub const ZONES: &[Zone] = &[
    Zone {
        id: "local-a",
        tencent: "ap-guangzhou-3",
        tencent_zone_id: "100003",
        aliyun: "cn-hangzhou-h",
        openstack: "nova",
        name: "Guangzhou Zone 3",
        edge: false,
    },
    Zone {
        id: "local-b",
        tencent: "ap-guangzhou-4",
        tencent_zone_id: "100004",
        aliyun: "cn-hangzhou-i",
        openstack: "nova-b",
        name: "Guangzhou Zone 4",
        edge: false,
    },
    Zone {
        id: "local-edge",
        tencent: "ap-guangzhou-edge-1",
        tencent_zone_id: "100901",
        aliyun: "cn-hangzhou-edge-1",
        openstack: "edge",
        name: "Guangzhou Edge Zone 1",
        edge: true,
    },
];

pub const REGIONS: &[Region] = &[Region {
    id: "local",
    tencent: "ap-guangzhou",
    aliyun: "cn-hangzhou",
    openstack: "RegionOne",
    name: "South China (Guangzhou)",
    zones: ZONES,
}];

pub const INSTANCE_TYPES: &[InstanceType] = &[
    InstanceType {
        name: Cow::Borrowed("S5.SMALL2"),
        aliyun: Cow::Borrowed("ecs.s5.small2"),
        family: Cow::Borrowed("S5"),
        cpu: 1,
        memory_mib: 2048,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: Cow::Borrowed("S5.MEDIUM4"),
        aliyun: Cow::Borrowed("ecs.s5.medium4"),
        family: Cow::Borrowed("S5"),
        cpu: 2,
        memory_mib: 4096,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: Cow::Borrowed("S5.LARGE8"),
        aliyun: Cow::Borrowed("ecs.s5.large8"),
        family: Cow::Borrowed("S5"),
        cpu: 4,
        memory_mib: 8192,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: Cow::Borrowed("SR1.MEDIUM4"),
        aliyun: Cow::Borrowed("ecs.sr1.medium4"),
        family: Cow::Borrowed("SR1"),
        cpu: 2,
        memory_mib: 4096,
        arch: Arch::Arm64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: Cow::Borrowed("HCCS5.MEDIUM4"),
        aliyun: Cow::Borrowed("ecs.hccs5.medium4"),
        family: Cow::Borrowed("HCCS5"),
        cpu: 2,
        memory_mib: 4096,
        arch: Arch::X86_64,
        kind: TypeKind::Special,
    },
    InstanceType {
        name: Cow::Borrowed("BMS5.LARGE8"),
        aliyun: Cow::Borrowed("ecs.ebms5.large8"),
        family: Cow::Borrowed("BMS5"),
        cpu: 4,
        memory_mib: 8192,
        arch: Arch::X86_64,
        kind: TypeKind::BareMetal,
    },
];

impl InstanceType {
    /// Memory in whole GiB, rounded up (Tencent's `Memory`, Alibaba's `MemorySize`); a type
    /// created with less than 1 GiB shows 1.
    pub fn memory_gib(&self) -> u32 {
        self.memory_mib.div_ceil(1024)
    }

    /// Is this one of the built-in catalogue's types?
    pub fn built_in(&self) -> bool {
        instance_type(&self.name).is_some()
    }
}

pub const DEFAULT_INSTANCE_TYPE: &str = "S5.MEDIUM4";

pub const IMAGES: &[Image] = &[
    Image {
        id: "img-tos31x64",
        name: "TencentOS Server 3.1 (TK4)",
        os_name: "TencentOS Server 3.1 (TK4)",
        platform: "TencentOS",
        os: OsFamily::Linux,
        default_user: "root",
        size_gib: 20,
        public: true,
    },
    Image {
        id: "img-ubt22x64",
        name: "Ubuntu Server 22.04 LTS 64bit",
        os_name: "Ubuntu Server 22.04 LTS 64bit",
        platform: "Ubuntu",
        os: OsFamily::Linux,
        default_user: "ubuntu",
        size_gib: 20,
        public: true,
    },
    Image {
        id: "img-deb12x64",
        name: "Debian 12.5 64bit",
        os_name: "Debian 12.5 64bit",
        platform: "Debian",
        os: OsFamily::Linux,
        default_user: "root",
        size_gib: 20,
        public: true,
    },
    Image {
        id: "img-win22x64",
        name: "Windows Server 2022 DataCenter 64bit",
        os_name: "Windows Server 2022 DataCenter 64bit Chinese",
        platform: "Windows",
        os: OsFamily::Windows,
        default_user: "Administrator",
        size_gib: 50,
        public: true,
    },
    Image {
        id: "img-rescue01",
        name: "nubis rescue system",
        os_name: "Debian 12 rescue",
        platform: "Debian",
        os: OsFamily::Linux,
        default_user: "root",
        size_gib: 10,
        public: false,
    },
];

pub const RESCUE_IMAGE: &str = "img-rescue01";

pub fn region(id: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.id == id)
}
pub fn region_by_tencent(name: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.tencent == name)
}
pub fn zone(id: &str) -> Option<&'static Zone> {
    ZONES.iter().find(|z| z.id == id)
}
/// The canonical zone IDs a dialect spells `name` (`spelling` picks its word for a zone):
/// every catalogue zone so spelt, and `name` itself when it is no catalogue zone's ID (an ID
/// outside the catalogue is shown as it is).
pub fn zones_spelled(name: &str, spelling: impl Fn(&Zone) -> &str) -> Vec<String> {
    let mut out: Vec<String> = ZONES
        .iter()
        .filter(|z| spelling(z) == name)
        .map(|z| z.id.to_string())
        .collect();
    if zone(name).is_none() {
        out.push(name.to_string());
    }
    out
}
pub fn zone_by_tencent(name: &str) -> Option<&'static Zone> {
    ZONES.iter().find(|z| z.tencent == name)
}
pub fn image(id: &str) -> Option<&'static Image> {
    IMAGES.iter().find(|i| i.id == id)
}
pub fn instance_type_by_aliyun(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.aliyun == name)
}
pub fn region_by_aliyun(name: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.aliyun == name)
}
pub fn zone_by_aliyun(name: &str) -> Option<&'static Zone> {
    ZONES.iter().find(|z| z.aliyun == name)
}
pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    INSTANCE_TYPES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod stored_type_tests {
    use super::*;

    #[test]
    fn a_stored_built_in_type_borrows_the_catalogue_and_others_read_as_written() {
        let built_in = &INSTANCE_TYPES[0];
        let read: InstanceType =
            serde_json::from_str(&serde_json::to_string(built_in).unwrap()).unwrap();
        assert_eq!(&read, built_in);
        assert!(matches!(read.name, Cow::Borrowed(_)));
        let mut custom = built_in.clone();
        custom.memory_mib += 1;
        let read: InstanceType =
            serde_json::from_str(&serde_json::to_string(&custom).unwrap()).unwrap();
        assert_eq!(read, custom);
        assert!(matches!(read.name, Cow::Owned(_)));
    }
}
