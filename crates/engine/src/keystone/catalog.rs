//! Keystone's catalog: regions, services and endpoints (`/v3/regions`, `/v3/services`,
//! `/v3/endpoints`). Stored like the rest of the directory (`keystone_objects`, kinds
//! `region`, `service`, `endpoint`). Built in (never stored, not changeable): the region of
//! nubis's catalogue (`RegionOne`), the services `nova` (compute), `glance` (image),
//! `keystone` (identity) and their public, internal and admin endpoints, whose URLs are
//! paths on nubis's one listener (the dialect puts its base URL in front). The token
//! catalog is built from these: every enabled service with its enabled endpoints.

use super::{KsDir, KsError, Link, MAX_DESCRIPTION, Object, del, derived_id, new_id, put};
use crate::Engine;
use nubis_store::Write;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Region IDs, service types and names (Keystone's schema: 255 characters).
pub const MAX_CATALOG_NAME: usize = 255;
/// Endpoint URLs (Keystone's schema: 225 characters).
pub const MAX_URL: usize = 225;
/// Keystone's three interfaces.
pub const INTERFACES: &[&str] = &["public", "internal", "admin"];

/// The built-in services: (type, name, path on the listener).
pub const BUILTIN_SERVICES: &[(&str, &str, &str)] = &[
    ("compute", "nova", "/compute/v2.1"),
    ("image", "glance", "/image"),
    ("identity", "keystone", "/identity"),
];

/// The built-in region (the first of nubis's catalogue).
pub fn builtin_region() -> &'static str {
    nubis_core::catalog::REGIONS
        .first()
        .map(|r| r.openstack)
        .unwrap_or("RegionOne")
}

pub fn builtin_service_id(name: &str) -> String {
    derived_id("service", name)
}

pub fn builtin_endpoint_id(service: &str, interface: &str) -> String {
    derived_id("endpoint", &format!("{service}/{interface}"))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub id: String,
    pub description: String,
    pub parent_region_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub service_id: String,
    pub interface: String,
    pub region_id: Option<String>,
    /// An absolute URL; a built-in endpoint's is a path on nubis's listener (`/…`).
    pub url: String,
    pub enabled: bool,
}

impl Endpoint {
    /// The URL a client is given: a built-in path behind `base`.
    pub fn url_at(&self, base: &str) -> String {
        if self.url.starts_with('/') {
            format!("{base}{}", self.url)
        } else {
            self.url.clone()
        }
    }
}

/// Catalog objects are unique by ID only: their store name key is their ID.
macro_rules! catalog_object {
    ($t:ty, $table:ident, $kind:literal, $plural:literal, $name:ident; $($extra:tt)*) => {
        impl Object for $t {
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            fn table(dir: &KsDir) -> &BTreeMap<String, Self> {
                &dir.$table
            }
            fn table_mut(dir: &mut KsDir) -> &mut BTreeMap<String, Self> {
                &mut dir.$table
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.$name
            }
            fn same_name(&self, _name: &str) -> bool {
                false
            }
            fn name_key(&self) -> String {
                self.id.clone()
            }
            $($extra)*
        }
    };
}

catalog_object! {
    Region, regions, "region", "regions", id;
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        (id == builtin_region()).then(|| format!("Region {id}"))
    }
    /// Refused while endpoints or sub-regions name it (Keystone's `RegionDeletionError`
    /// for endpoints; nubis refuses sub-regions too rather than delete them along).
    fn check_delete(e: &Engine, r: &Self) -> Result<Vec<Write>, KsError> {
        let dir = e.ks();
        if dir.endpoints.values().any(|x| x.region_id.as_ref() == Some(&r.id)) {
            return Err(KsError::Forbidden(format!(
                "Unable to delete region {} because it or its child regions have associated endpoints.",
                r.id
            )));
        }
        if dir.regions.values().any(|x| x.parent_region_id.as_ref() == Some(&r.id)) {
            return Err(KsError::Forbidden(format!(
                "Unable to delete region {} because it has child regions: delete them first.",
                r.id
            )));
        }
        Ok(Vec::new())
    }
}

catalog_object! {
    Service, services, "service", "services", name;
    fn enabled(&self) -> Option<bool> {
        Some(self.enabled)
    }
    fn enabled_mut(&mut self) -> Option<&mut bool> {
        Some(&mut self.enabled)
    }
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        BUILTIN_SERVICES
            .iter()
            .any(|(_, n, _)| builtin_service_id(n) == id)
            .then(|| format!("Service {id}"))
    }
    /// Its endpoints go with it (Keystone).
    fn check_delete(e: &Engine, s: &Self) -> Result<Vec<Write>, KsError> {
        Ok((e.ks().endpoints.values())
            .filter(|x| x.service_id == s.id)
            .map(|x| del("endpoint", &x.id))
            .collect())
    }
    fn after_delete(e: &Engine, s: &Self) {
        e.inner.keystone.write().endpoints.retain(|_, x| x.service_id != s.id);
    }
    fn takes(_id: &str, _link: Link<'_>) -> bool {
        false
    }
}

catalog_object! {
    Endpoint, endpoints, "endpoint", "endpoints", id;
    fn enabled(&self) -> Option<bool> {
        Some(self.enabled)
    }
    fn enabled_mut(&mut self) -> Option<&mut bool> {
        Some(&mut self.enabled)
    }
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        let builtin = BUILTIN_SERVICES.iter().any(|(_, n, _)| {
            INTERFACES.iter().any(|i| builtin_endpoint_id(n, i) == id)
        });
        builtin.then(|| format!("Endpoint {id}"))
    }
}

impl KsDir {
    /// The built-in region, services and endpoints.
    pub(super) fn load_catalog(&mut self) {
        let region = builtin_region();
        self.regions.insert(
            region.into(),
            Region {
                id: region.into(),
                description: String::new(),
                parent_region_id: None,
            },
        );
        for (kind, name, path) in BUILTIN_SERVICES {
            let sid = builtin_service_id(name);
            self.services.insert(
                sid.clone(),
                Service {
                    id: sid.clone(),
                    kind: (*kind).into(),
                    name: (*name).into(),
                    description: String::new(),
                    enabled: true,
                },
            );
            for interface in INTERFACES {
                let id = builtin_endpoint_id(name, interface);
                self.endpoints.insert(
                    id.clone(),
                    Endpoint {
                        id,
                        service_id: sid.clone(),
                        interface: (*interface).into(),
                        region_id: Some(region.into()),
                        url: (*path).into(),
                        enabled: true,
                    },
                );
            }
        }
    }
}

/// A new region (`id`: chosen by the caller, else generated).
#[derive(Debug, Clone, Default)]
pub struct NewRegion {
    pub id: Option<String>,
    pub description: String,
    pub parent_region_id: Option<String>,
}

/// A change to a region (`None`: unchanged; `parent_region_id: Some(None)`: top level).
#[derive(Debug, Clone, Default)]
pub struct RegionPatch {
    pub description: Option<String>,
    pub parent_region_id: Option<Option<String>>,
}

/// A new service or a change to one (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct ServiceFields {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A new endpoint or a change to one (`None`: unchanged; `region_id: Some(None)`: none).
#[derive(Debug, Clone, Default)]
pub struct EndpointFields {
    pub service_id: Option<String>,
    pub interface: Option<String>,
    pub region_id: Option<Option<String>>,
    /// Keystone's legacy `region`: a region it names that does not exist is created.
    pub legacy_region: bool,
    pub url: Option<String>,
    pub enabled: Option<bool>,
}

fn check_len(field: &str, v: &str, max: usize, empty_ok: bool) -> Result<(), KsError> {
    if (!empty_ok && v.is_empty()) || v.chars().count() > max {
        return Err(KsError::Invalid(format!(
            "Invalid input for field '{field}': the length must be {} to {max} characters.",
            usize::from(!empty_ok)
        )));
    }
    Ok(())
}

fn check_url(url: &str) -> Result<(), KsError> {
    check_len("url", url, MAX_URL, false)?;
    // Keystone's schema: `^[a-zA-Z0-9+.-]+:.+`.
    let ok = url.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
            && !rest.is_empty()
    });
    if !ok {
        return Err(KsError::Invalid(format!(
            "Invalid input for field 'url': '{url}' is not a URL."
        )));
    }
    Ok(())
}

impl Engine {
    /// Would making `parent` the parent of `id` close a loop?
    fn region_loop(dir: &KsDir, id: &str, parent: &str) -> bool {
        let mut at = Some(parent.to_string());
        let mut steps = 0;
        while let Some(p) = at {
            if p == id || steps > dir.regions.len() {
                return true;
            }
            steps += 1;
            at = dir.regions.get(&p).and_then(|r| r.parent_region_id.clone());
        }
        false
    }

    pub async fn ks_create_region(&self, new: NewRegion) -> Result<Region, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let id = new.id.unwrap_or_else(new_id);
        check_len("id", &id, MAX_CATALOG_NAME, false)?;
        check_len("description", &new.description, MAX_DESCRIPTION, true)?;
        {
            let dir = self.ks();
            self.ks_bound(dir.regions.len(), "regions")?;
            if dir.regions.contains_key(&id) {
                return Err(KsError::Conflict(format!(
                    "Conflict occurred attempting to store region - Duplicate ID, {id}."
                )));
            }
            if let Some(p) = &new.parent_region_id
                && !dir.regions.contains_key(p)
            {
                return Err(KsError::NotFound("region", p.clone()));
            }
        }
        let r = Region {
            id,
            description: new.description,
            parent_region_id: new.parent_region_id,
        };
        self.ks_save(&r, Vec::new()).await?;
        Ok(r)
    }

    pub async fn ks_update_region(&self, id: &str, p: RegionPatch) -> Result<Region, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<Region>(id)?;
        let mut r: Region = self.ks_get(id)?;
        if let Some(d) = p.description {
            check_len("description", &d, MAX_DESCRIPTION, true)?;
            r.description = d;
        }
        if let Some(parent) = p.parent_region_id {
            if let Some(pid) = &parent {
                let dir = self.ks();
                if !dir.regions.contains_key(pid) {
                    return Err(KsError::NotFound("region", pid.clone()));
                }
                if Self::region_loop(&dir, id, pid) {
                    return Err(KsError::Invalid(format!(
                        "The specified parent region {pid} would create a circular region hierarchy."
                    )));
                }
            }
            r.parent_region_id = parent;
        }
        self.ks_save(&r, Vec::new()).await?;
        Ok(r)
    }

    pub async fn ks_create_service(&self, f: ServiceFields) -> Result<Service, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let Some(kind) = f.kind else {
            return Err(KsError::Invalid("'type' is a required property.".into()));
        };
        check_len("type", &kind, MAX_CATALOG_NAME, false)?;
        let name = f.name.unwrap_or_default();
        check_len("name", &name, MAX_CATALOG_NAME, true)?;
        let description = f.description.unwrap_or_default();
        check_len("description", &description, MAX_DESCRIPTION, true)?;
        self.ks_bound(self.ks().services.len(), "services")?;
        let s = Service {
            id: new_id(),
            kind,
            name,
            description,
            enabled: f.enabled.unwrap_or(true),
        };
        self.ks_save(&s, Vec::new()).await?;
        Ok(s)
    }

    pub async fn ks_update_service(&self, id: &str, f: ServiceFields) -> Result<Service, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<Service>(id)?;
        let mut s: Service = self.ks_get(id)?;
        if let Some(k) = f.kind {
            check_len("type", &k, MAX_CATALOG_NAME, false)?;
            s.kind = k;
        }
        if let Some(n) = f.name {
            check_len("name", &n, MAX_CATALOG_NAME, true)?;
            s.name = n;
        }
        if let Some(d) = f.description {
            check_len("description", &d, MAX_DESCRIPTION, true)?;
            s.description = d;
        }
        if let Some(e) = f.enabled {
            s.enabled = e;
        }
        self.ks_save(&s, Vec::new()).await?;
        Ok(s)
    }

    /// The region an endpoint names must exist, unless named by the legacy `region`: then
    /// it is created (Keystone). Returns the writes that create it.
    fn endpoint_region(&self, f: &EndpointFields) -> Result<Option<Region>, KsError> {
        let Some(Some(r)) = &f.region_id else {
            return Ok(None);
        };
        check_len("region_id", r, MAX_CATALOG_NAME, false)?;
        let dir = self.ks();
        if dir.regions.contains_key(r) {
            return Ok(None);
        }
        if !f.legacy_region {
            return Err(KsError::Invalid(format!("Could not find region: {r}.")));
        }
        self.ks_bound(dir.regions.len(), "regions")?;
        Ok(Some(Region {
            id: r.clone(),
            description: String::new(),
            parent_region_id: None,
        }))
    }

    fn check_interface(i: &str) -> Result<(), KsError> {
        if !INTERFACES.contains(&i) {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'interface': '{i}' does not match '^(?:admin|internal|public)$'."
            )));
        }
        Ok(())
    }

    fn check_service(&self, id: &str) -> Result<(), KsError> {
        if self.ks().services.contains_key(id) {
            Ok(())
        } else {
            Err(KsError::Invalid(format!("Could not find service: {id}.")))
        }
    }

    /// Save `e`, creating the legacy region it names first.
    async fn save_endpoint(&self, e: &Endpoint, region: Option<Region>) -> Result<(), KsError> {
        let mut writes = Vec::new();
        if let Some(r) = &region {
            writes.push(put(Region::KIND, &r.id, r.name_key(), r));
        }
        self.ks_save(e, writes).await?;
        if let Some(r) = region {
            self.inner.keystone.write().regions.insert(r.id.clone(), r);
        }
        Ok(())
    }

    pub async fn ks_create_endpoint(&self, f: EndpointFields) -> Result<Endpoint, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let (Some(service_id), Some(interface), Some(url)) =
            (f.service_id.clone(), f.interface.clone(), f.url.clone())
        else {
            return Err(KsError::Invalid(
                "'service_id', 'interface' and 'url' are required properties.".into(),
            ));
        };
        Self::check_interface(&interface)?;
        check_url(&url)?;
        self.check_service(&service_id)?;
        self.ks_bound(self.ks().endpoints.len(), "endpoints")?;
        let region = self.endpoint_region(&f)?;
        let e = Endpoint {
            id: new_id(),
            service_id,
            interface,
            region_id: f.region_id.flatten(),
            url,
            enabled: f.enabled.unwrap_or(true),
        };
        self.save_endpoint(&e, region).await?;
        Ok(e)
    }

    pub async fn ks_update_endpoint(
        &self,
        id: &str,
        f: EndpointFields,
    ) -> Result<Endpoint, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<Endpoint>(id)?;
        let mut e: Endpoint = self.ks_get(id)?;
        if let Some(s) = &f.service_id {
            self.check_service(s)?;
            e.service_id = s.clone();
        }
        if let Some(i) = &f.interface {
            Self::check_interface(i)?;
            e.interface = i.clone();
        }
        if let Some(u) = &f.url {
            check_url(u)?;
            e.url = u.clone();
        }
        let region = self.endpoint_region(&f)?;
        if let Some(r) = f.region_id {
            e.region_id = r;
        }
        if let Some(en) = f.enabled {
            e.enabled = en;
        }
        self.save_endpoint(&e, region).await?;
        Ok(e)
    }

    /// The token catalog: every enabled service with its enabled endpoints, built-in ones
    /// first.
    pub fn ks_catalog(&self) -> Vec<(Service, Vec<Endpoint>)> {
        let dir = self.ks();
        let builtin: Vec<String> = BUILTIN_SERVICES
            .iter()
            .map(|(_, n, _)| builtin_service_id(n))
            .collect();
        let mut services: Vec<&Service> = dir.services.values().filter(|s| s.enabled).collect();
        services.sort_by_key(|s| {
            (
                builtin
                    .iter()
                    .position(|b| b == &s.id)
                    .unwrap_or(usize::MAX),
                s.id.clone(),
            )
        });
        services
            .into_iter()
            .map(|s| {
                let mut eps: Vec<Endpoint> = (dir.endpoints.values())
                    .filter(|e| e.service_id == s.id && e.enabled)
                    .cloned()
                    .collect();
                eps.sort_by_key(|e| {
                    (
                        INTERFACES.iter().position(|i| *i == e.interface),
                        e.id.clone(),
                    )
                });
                (s.clone(), eps)
            })
            .collect()
    }
}

/// A Keystone policy blob (`/v3/policies`): Keystone stores it for other services and
/// enforces nothing from it; nor does nubis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub blob: String,
}

/// An OS-EP-FILTER endpoint group: endpoints chosen by `service_id`, `region_id`,
/// `interface`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub filters: BTreeMap<String, String>,
}

/// The filters Keystone accepts on an endpoint group.
pub const ENDPOINT_GROUP_FILTERS: &[&str] = &["service_id", "region_id", "interface"];
/// A policy blob (nubis).
pub const MAX_POLICY_BLOB: usize = 65_536;

catalog_object! {
    Policy, policies, "policy", "policies", id;
}

catalog_object! {
    EndpointGroup, endpoint_groups, "endpoint_group", "endpoint_groups", name;
    const NOUN: &'static str = "endpoint group";
}

/// A new policy or endpoint group, or a change to one (`None`: unchanged).
#[derive(Debug, Clone, Default)]
pub struct PolicyFields {
    pub kind: Option<String>,
    pub blob: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointGroupFields {
    pub name: Option<String>,
    pub description: Option<String>,
    pub filters: Option<BTreeMap<String, String>>,
}

fn check_filters(f: &BTreeMap<String, String>) -> Result<(), KsError> {
    if f.is_empty() {
        return Err(KsError::Invalid(
            "Invalid input for field 'filters': at least one filter.".into(),
        ));
    }
    if let Some(k) = f
        .keys()
        .find(|k| !ENDPOINT_GROUP_FILTERS.contains(&k.as_str()))
    {
        return Err(KsError::Invalid(format!(
            "Invalid input for field 'filters': '{k}' is not one of service_id, region_id, interface."
        )));
    }
    for v in f.values() {
        check_len("filters", v, MAX_CATALOG_NAME, false)?;
    }
    Ok(())
}

impl Engine {
    pub async fn ks_save_policy(
        &self,
        id: Option<&str>,
        f: PolicyFields,
    ) -> Result<Policy, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let mut p = match id {
            Some(id) => self.ks_get::<Policy>(id)?,
            None => {
                self.ks_bound(self.ks().policies.len(), "policies")?;
                let (Some(kind), Some(blob)) = (f.kind.clone(), f.blob.clone()) else {
                    return Err(KsError::Invalid(
                        "'blob' and 'type' are required properties.".into(),
                    ));
                };
                Policy {
                    id: new_id(),
                    kind,
                    blob,
                }
            }
        };
        if let Some(k) = f.kind {
            p.kind = k;
        }
        if let Some(b) = f.blob {
            p.blob = b;
        }
        check_len("type", &p.kind, MAX_CATALOG_NAME, false)?;
        check_len("blob", &p.blob, MAX_POLICY_BLOB, true)?;
        self.ks_save(&p, Vec::new()).await?;
        Ok(p)
    }

    pub async fn ks_save_endpoint_group(
        &self,
        id: Option<&str>,
        f: EndpointGroupFields,
    ) -> Result<EndpointGroup, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let mut g = match id {
            Some(id) => self.ks_get::<EndpointGroup>(id)?,
            None => {
                self.ks_bound(self.ks().endpoint_groups.len(), "endpoint groups")?;
                let (Some(name), Some(filters)) = (f.name.clone(), f.filters.clone()) else {
                    return Err(KsError::Invalid(
                        "'name' and 'filters' are required properties.".into(),
                    ));
                };
                EndpointGroup {
                    id: new_id(),
                    name,
                    description: String::new(),
                    filters,
                }
            }
        };
        if let Some(n) = f.name {
            g.name = n;
        }
        if let Some(d) = f.description {
            g.description = d;
        }
        if let Some(fl) = f.filters {
            g.filters = fl;
        }
        check_len("name", &g.name, MAX_CATALOG_NAME, false)?;
        check_len("description", &g.description, MAX_DESCRIPTION, true)?;
        check_filters(&g.filters)?;
        self.ks_save(&g, Vec::new()).await?;
        Ok(g)
    }
}
