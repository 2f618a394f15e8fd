//! Instance types created by an operator (docs/flavors.md): Nova flavors made with
//! `POST /flavors`, kept in the store (migration 0015) beside the built-in catalogue
//! ([`crate::catalog::INSTANCE_TYPES`]). Every dialect uses and lists them; Tencent and Alibaba
//! name one by its Nova flavor ID.

use crate::catalog::{Arch, InstanceType, TypeKind};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Tencent's `InstanceFamily` (and Alibaba's `InstanceTypeFamily`) of a created type.
pub const CREATED_FAMILY: &str = "CUSTOM";

/// The most types an operator may create (the registry is held in memory by every node).
pub const MAX_CREATED: usize = 1000;

/// The most extra specs one flavor holds, and the longest key and value (Nova: 255 each).
pub const MAX_EXTRA_SPECS: usize = 100;
pub const MAX_SPEC_LEN: usize = 255;

/// The most projects a private flavor is shared with.
pub const MAX_ACCESS: usize = 1000;

/// A created instance type as Nova describes a flavor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flavor {
    /// The Nova flavor ID; also its Tencent and Alibaba type name, and what an instance of it
    /// records as `instance_type`.
    pub id: String,
    pub name: String,
    pub vcpus: u32,
    pub ram_mib: u32,
    /// Root disk in GiB (0: the image's size).
    pub disk_gib: u32,
    #[serde(default)]
    pub ephemeral_gib: u32,
    #[serde(default)]
    pub swap_mib: u32,
    #[serde(default = "one")]
    pub rxtx_factor: f64,
    pub is_public: bool,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub extra_specs: BTreeMap<String, String>,
    /// The Keystone projects a private flavor is shared with.
    #[serde(default)]
    pub projects: Vec<String>,
    pub created_at_ms: i64,
}

fn one() -> f64 {
    1.0
}

impl Flavor {
    /// The facts every rule and listing uses.
    pub fn instance_type(&self) -> InstanceType {
        InstanceType {
            name: Cow::Owned(self.id.clone()),
            aliyun: Cow::Owned(self.id.clone()),
            family: Cow::Borrowed(CREATED_FAMILY),
            cpu: self.vcpus,
            memory_mib: self.ram_mib,
            arch: if self
                .extra_specs
                .get("hw:cpu_arch")
                .is_some_and(|a| a == "aarch64")
            {
                Arch::Arm64
            } else {
                Arch::X86_64
            },
            kind: TypeKind::Standard,
        }
    }

    /// May a caller of `project` (not an administrator) see and use it?
    pub fn open_to(&self, project: Option<&str>) -> bool {
        self.is_public || project.is_some_and(|p| self.projects.iter().any(|x| x == p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flavor() -> Flavor {
        Flavor {
            id: "m1.custom".into(),
            name: "custom".into(),
            vcpus: 2,
            ram_mib: 512,
            disk_gib: 1,
            ephemeral_gib: 0,
            swap_mib: 0,
            rxtx_factor: 1.0,
            is_public: false,
            description: None,
            extra_specs: BTreeMap::new(),
            projects: vec!["p1".into()],
            created_at_ms: 0,
        }
    }

    #[test]
    fn a_created_type_is_named_by_its_id_everywhere() {
        let t = flavor().instance_type();
        assert_eq!(
            (t.name.as_ref(), t.aliyun.as_ref()),
            ("m1.custom", "m1.custom")
        );
        assert_eq!((t.cpu, t.memory_mib, t.memory_gib()), (2, 512, 1));
        assert!(!t.built_in());
    }

    #[test]
    fn a_private_flavor_is_open_to_its_projects_only() {
        let f = flavor();
        assert!(f.open_to(Some("p1")) && !f.open_to(Some("p2")) && !f.open_to(None));
        let public = Flavor {
            is_public: true,
            ..f
        };
        assert!(public.open_to(None));
    }

    #[test]
    fn a_record_without_the_optional_fields_reads() {
        let f: Flavor = serde_json::from_str(
            r#"{"id":"x","name":"x","vcpus":1,"ram_mib":64,"disk_gib":0,"is_public":true,"created_at_ms":1}"#,
        )
        .unwrap();
        assert_eq!(f.rxtx_factor, 1.0);
    }
}
