//! The instance-type registry (docs/flavors.md): the built-in catalogue plus the types an
//! operator created (Nova flavors), kept in the fleet and written through to the store
//! (migration 0015), refreshed on other nodes from the journal like placement groups. Every
//! lookup a create, a resize, a quota or a listing makes goes through here, so a created type
//! is usable everywhere the built-in ones are.

use crate::{Engine, Fleet, now_ms};
use nubis_core::catalog::{self, InstanceType};
use nubis_core::flavors::{Flavor, MAX_ACCESS, MAX_CREATED};
use nubis_core::{DomainError, Principal, ResourceKind};
use nubis_store::Write;

/// Who asks: an administrator sees and uses every type; anyone else the public ones and the
/// private ones shared with its Keystone project.
#[derive(Debug, Clone, Copy)]
pub struct TypeViewer<'a> {
    pub admin: bool,
    pub project: Option<&'a str>,
}

impl<'a> TypeViewer<'a> {
    /// Anyone: the built-in types and the public created ones (what Tencent and Alibaba
    /// list: their callers are in no Keystone project).
    pub const PUBLIC: TypeViewer<'static> = TypeViewer {
        admin: false,
        project: None,
    };

    /// The viewer a principal is: admin if the account is, its Keystone project if any.
    pub fn of(p: &'a Principal) -> Self {
        Self {
            admin: p.is_admin,
            project: p.project.as_ref().map(|s| s.id.as_str()),
        }
    }

    fn sees(&self, f: &Flavor) -> bool {
        self.admin || f.open_to(self.project)
    }
}

/// What a flavor update changes (`None`: kept).
#[derive(Debug, Clone, Default)]
pub struct FlavorChange {
    pub description: Option<Option<String>>,
    /// Extra specs set (added or replaced).
    pub set_specs: Vec<(String, String)>,
    /// An extra spec removed (NotFound if it is not there).
    pub unset_spec: Option<String>,
    /// A project given access (Conflict if it has it already).
    pub add_project: Option<String>,
    /// A project's access removed (NotFound if it has none).
    pub remove_project: Option<String>,
}

/// Why a flavor change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlavorError {
    #[error("{0}")]
    Domain(#[from] DomainError),
    /// Nova's FlavorExists / FlavorIdExists (409).
    #[error("{0}")]
    Exists(String),
    /// A built-in type cannot be changed or deleted (409).
    #[error("flavor {0} is built in")]
    BuiltIn(String),
    /// An access change on a public flavor (Nova: 409 "Can not add access to a public
    /// flavor").
    #[error("flavor {0} is public")]
    Public(String),
    /// The project already has access (409 FlavorAccessExists).
    #[error("flavor access already exists for flavor {flavor} and project {project}")]
    AccessExists { flavor: String, project: String },
    /// The project has no access to remove (404 FlavorAccessNotFound).
    #[error("flavor access not found for {flavor} / {project} combination")]
    AccessNotFound { flavor: String, project: String },
    /// The flavor has no such extra spec (404).
    #[error("flavor {flavor} has no extra specs with key {key}")]
    SpecNotFound { flavor: String, key: String },
    /// More than the registry holds.
    #[error("{0}")]
    TooMany(String),
}

impl Fleet {
    /// The type named `name` (a built-in name or a created type's ID) if `who` may use it.
    pub(crate) fn instance_type_for(
        &self,
        who: TypeViewer<'_>,
        name: &str,
    ) -> Option<InstanceType> {
        if let Some(t) = catalog::instance_type(name) {
            return Some(t.clone());
        }
        self.instance_types
            .get(name)
            .filter(|f| who.sees(f))
            .map(Flavor::instance_type)
    }
}

/// A built-in type as a Nova flavor: public, with `root_gib` of root disk.
pub fn built_in_flavor(t: &InstanceType, root_gib: u32) -> Flavor {
    Flavor {
        id: t.name.to_string(),
        name: t.name.to_string(),
        vcpus: t.cpu,
        ram_mib: t.memory_mib,
        disk_gib: root_gib,
        ephemeral_gib: 0,
        swap_mib: 0,
        rxtx_factor: 1.0,
        is_public: true,
        description: None,
        extra_specs: Default::default(),
        projects: Vec::new(),
        created_at_ms: 0,
    }
}

fn not_found(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: ResourceKind::InstanceType,
        id: id.to_string(),
    }
}

impl Engine {
    /// The type `name` as `p` may use it (creates and resizes of every dialect).
    pub fn instance_type_for(&self, p: &Principal, name: &str) -> Option<InstanceType> {
        self.inner
            .fleet
            .lock()
            .instance_type_for(TypeViewer::of(p), name)
    }

    /// Every type `who` may use: the built-in catalogue first, then the created ones oldest
    /// first (Tencent and Alibaba listings).
    pub fn instance_types(&self, who: TypeViewer<'_>) -> Vec<InstanceType> {
        let fleet = self.inner.fleet.lock();
        let mut created: Vec<&Flavor> = fleet
            .instance_types
            .values()
            .filter(|f| who.sees(f))
            .collect();
        created.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        catalog::INSTANCE_TYPES
            .iter()
            .cloned()
            .chain(created.into_iter().map(Flavor::instance_type))
            .collect()
    }

    /// The created types `who` sees, as Nova flavors (the built-in ones are the dialect's to
    /// add, with its root disk).
    pub fn created_flavors(&self, who: TypeViewer<'_>) -> Vec<Flavor> {
        let fleet = self.inner.fleet.lock();
        fleet
            .instance_types
            .values()
            .filter(|f| who.sees(f))
            .cloned()
            .collect()
    }

    /// One created type as `who` sees it.
    pub fn created_flavor(&self, who: TypeViewer<'_>, id: &str) -> Option<Flavor> {
        let fleet = self.inner.fleet.lock();
        fleet
            .instance_types
            .get(id)
            .filter(|f| who.sees(f))
            .cloned()
    }

    /// Create a type (an administrator's; the dialect checked the caller and every field's
    /// shape). Its ID and name must be new among the built-in and the created types.
    pub async fn create_flavor(&self, mut f: Flavor) -> Result<Flavor, FlavorError> {
        f.created_at_ms = now_ms();
        {
            let mut fleet = self.inner.fleet.lock();
            if catalog::instance_type(&f.id).is_some() || fleet.instance_types.contains_key(&f.id) {
                return Err(FlavorError::Exists(format!(
                    "Flavor with ID {} already exists.",
                    f.id
                )));
            }
            if catalog::INSTANCE_TYPES.iter().any(|t| t.name == f.name)
                || fleet.instance_types.values().any(|x| x.name == f.name)
            {
                return Err(FlavorError::Exists(format!(
                    "Flavor with name {} already exists.",
                    f.name
                )));
            }
            if fleet.instance_types.len() >= MAX_CREATED {
                return Err(FlavorError::TooMany(format!(
                    "no more than {MAX_CREATED} flavors may be created"
                )));
            }
            // In the fleet before the commit (taken out again if it fails), so a concurrent
            // create of the same ID or name is refused.
            fleet.instance_types.insert(f.id.clone(), f.clone());
        }
        if let Err(e) = self.commit(vec![Write::InstanceType(f.clone())]).await {
            self.inner.fleet.lock().instance_types.remove(&f.id);
            return Err(e.into());
        }
        Ok(f)
    }

    /// Delete a created type. Instances of it keep its facts and live on (Nova).
    pub async fn delete_flavor(&self, id: &str) -> Result<(), FlavorError> {
        {
            let fleet = self.inner.fleet.lock();
            if !fleet.instance_types.contains_key(id) {
                return Err(match catalog::instance_type(id) {
                    Some(_) => FlavorError::BuiltIn(id.to_string()),
                    None => not_found(id).into(),
                });
            }
        }
        self.commit(vec![Write::DeleteInstanceType(id.to_string())])
            .await?;
        self.inner.fleet.lock().instance_types.remove(id);
        Ok(())
    }

    /// Change a created type's description, extra specs or access list.
    pub async fn update_flavor(
        &self,
        id: &str,
        change: FlavorChange,
    ) -> Result<Flavor, FlavorError> {
        let f = {
            let fleet = self.inner.fleet.lock();
            let Some(f) = fleet.instance_types.get(id) else {
                return Err(match catalog::instance_type(id) {
                    Some(_) => FlavorError::BuiltIn(id.to_string()),
                    None => not_found(id).into(),
                });
            };
            let mut f = f.clone();
            if let Some(d) = change.description {
                f.description = d;
            }
            for (k, v) in change.set_specs {
                f.extra_specs.insert(k, v);
            }
            if f.extra_specs.len() > nubis_core::flavors::MAX_EXTRA_SPECS {
                return Err(FlavorError::TooMany(format!(
                    "a flavor holds no more than {} extra specs",
                    nubis_core::flavors::MAX_EXTRA_SPECS
                )));
            }
            if let Some(key) = change.unset_spec
                && f.extra_specs.remove(&key).is_none()
            {
                return Err(FlavorError::SpecNotFound {
                    flavor: id.to_string(),
                    key,
                });
            }
            if let Some(project) = change.add_project {
                if f.is_public {
                    return Err(FlavorError::Public(id.to_string()));
                }
                if f.projects.contains(&project) {
                    return Err(FlavorError::AccessExists {
                        flavor: id.to_string(),
                        project,
                    });
                }
                if f.projects.len() >= MAX_ACCESS {
                    return Err(FlavorError::TooMany(format!(
                        "a flavor is shared with no more than {MAX_ACCESS} projects"
                    )));
                }
                f.projects.push(project);
            }
            if let Some(project) = change.remove_project {
                if f.is_public {
                    return Err(FlavorError::Public(id.to_string()));
                }
                let before = f.projects.len();
                f.projects.retain(|p| *p != project);
                if f.projects.len() == before {
                    return Err(FlavorError::AccessNotFound {
                        flavor: id.to_string(),
                        project,
                    });
                }
            }
            f
        };
        self.commit(vec![Write::InstanceType(f.clone())]).await?;
        self.inner
            .fleet
            .lock()
            .instance_types
            .insert(f.id.clone(), f.clone());
        Ok(f)
    }
}
