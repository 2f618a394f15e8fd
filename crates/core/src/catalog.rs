//! The built-in catalogue: regions, zones, images, instance types.
//!
//! One canonical region with a name per dialect, so an instance created through one API can be
//! managed through another. Some entries exist to make seed error codes reachable (an ARM
//! family, an edge zone, a special and a bare-metal type).

use crate::model::OsFamily;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeKind {
    Standard,
    /// Special-purpose type (UnsupportedOperation.SpecialInstanceType).
    Special,
    /// Bare metal (InvalidInstance.NotSupported).
    BareMetal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceType {
    pub name: &'static str,
    /// The Alibaba spelling of the same type.
    pub aliyun: &'static str,
    pub family: &'static str,
    pub cpu: u32,
    pub memory_gib: u32,
    pub arch: Arch,
    pub kind: TypeKind,
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
        name: "S5.SMALL2",
        aliyun: "ecs.s5.small2",
        family: "S5",
        cpu: 1,
        memory_gib: 2,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: "S5.MEDIUM4",
        aliyun: "ecs.s5.medium4",
        family: "S5",
        cpu: 2,
        memory_gib: 4,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: "S5.LARGE8",
        aliyun: "ecs.s5.large8",
        family: "S5",
        cpu: 4,
        memory_gib: 8,
        arch: Arch::X86_64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: "SR1.MEDIUM4",
        aliyun: "ecs.sr1.medium4",
        family: "SR1",
        cpu: 2,
        memory_gib: 4,
        arch: Arch::Arm64,
        kind: TypeKind::Standard,
    },
    InstanceType {
        name: "HCCS5.MEDIUM4",
        aliyun: "ecs.hccs5.medium4",
        family: "HCCS5",
        cpu: 2,
        memory_gib: 4,
        arch: Arch::X86_64,
        kind: TypeKind::Special,
    },
    InstanceType {
        name: "BMS5.LARGE8",
        aliyun: "ecs.ebms5.large8",
        family: "BMS5",
        cpu: 4,
        memory_gib: 8,
        arch: Arch::X86_64,
        kind: TypeKind::BareMetal,
    },
];

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
