//! Flavors (nova/api/openstack/compute/{flavors,flavor_manage,flavor_access,
//! flavors_extraspecs}.py): the built-in catalogue's instance types and the ones an
//! administrator creates, kept by the engine's registry (docs/flavors.md).

use super::{Nova, Res, check_keys, int_param, json_body, listing, param, shown, skip_past};
use crate::errors::Fault;
use crate::{Reply, render};
use nubis_core::catalog;
use nubis_core::flavors::{Flavor, MAX_SPEC_LEN};
use nubis_engine::{FlavorChange, FlavorError, TypeViewer, built_in_flavor};
use serde_json::{Map, Value, json};

/// Nova's largest flavor integer (a database `INT`).
const MAX_DB_INT: i64 = 2_147_483_647;

/// Nova's `FlavorNotFound`.
fn flavor_not_found(id: &str) -> Fault {
    Fault::not_found(format!("Flavor {id} could not be found."))
}

fn flavor_fault(e: FlavorError, id: &str) -> Fault {
    match e {
        FlavorError::Domain(nubis_core::DomainError::NotFound { .. }) => flavor_not_found(id),
        FlavorError::Domain(d) => crate::errors::map(d, None),
        FlavorError::Exists(m) => Fault::conflict(m),
        FlavorError::BuiltIn(id) => Fault::conflict(format!(
            "Flavor {id} is built in and cannot be changed or deleted."
        )),
        FlavorError::Public(_) => Fault::conflict("Can not add access to a public flavor."),
        FlavorError::AccessExists { flavor, project } => Fault::conflict(format!(
            "Flavor access already exists for flavor {flavor} and project {project} combination."
        )),
        FlavorError::AccessNotFound { flavor, project } => Fault::not_found(format!(
            "Flavor access not found for {flavor} / {project} combination."
        )),
        FlavorError::SpecNotFound { flavor, key } => Fault::not_found(format!(
            "Flavor {flavor} has no extra specs with key {key}."
        )),
        FlavorError::TooMany(m) => Fault::new(403, m),
    }
}

/// An integer field of a flavor body: an integer, or a string holding one (Nova's
/// `flavor_param_positive` / `_non_negative`), within `min..=MAX_DB_INT`.
fn flavor_int(obj: &Map<String, Value>, key: &str, min: i64) -> Result<Option<u32>, Fault> {
    let bad = |v: &str, why: String| {
        Fault::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {}. {why}",
            shown(v)
        ))
    };
    let n = match obj.get(key) {
        None => return Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i,
            None => return Err(bad(&n.to_string(), format!("{n} is not of type 'integer'"))),
        },
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| bad(s, format!("'{}' does not match '^[0-9]+$'", shown(s))))?,
        Some(other) => {
            return Err(bad(
                &other.to_string(),
                format!("{other} is not of type 'integer', 'string'"),
            ));
        }
    };
    if n < min {
        return Err(bad(
            &n.to_string(),
            format!("{n} is less than the minimum of {min}"),
        ));
    }
    if n > MAX_DB_INT {
        return Err(bad(
            &n.to_string(),
            format!("{n} is greater than the maximum of {MAX_DB_INT}"),
        ));
    }
    Ok(Some(u32::try_from(n).unwrap_or(u32::MAX)))
}

/// Nova's flavor ID pattern: letters, digits, `.`, `_`, `-` and inner blanks, 1–255.
fn valid_flavor_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && !id.starts_with(' ')
        && !id.ends_with(' ')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '))
}

/// Nova's extra-spec key pattern `^[a-zA-Z0-9-_:. ]{1,255}$`.
fn valid_spec_key(k: &str) -> bool {
    (1..=MAX_SPEC_LEN).contains(&k.len())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.' | ' '))
}

/// How a known extra spec's value is checked (nova/api/validation/extra_specs/*.py).
#[derive(Clone, Copy)]
enum SpecValue {
    Any,
    Bool,
    /// An integer at least this.
    Int(i64),
    OneOf(&'static [&'static str]),
}

/// The extra specs Nova 2.86 knows, in the namespaces it validates (a subset of its
/// registry: the ones a libvirt deployment uses; docs/flavors.md).
const KNOWN_SPECS: &[(&str, SpecValue)] = &[
    (
        "hw:cpu_policy",
        SpecValue::OneOf(&["dedicated", "shared", "mixed"]),
    ),
    (
        "hw:cpu_thread_policy",
        SpecValue::OneOf(&["prefer", "isolate", "require"]),
    ),
    (
        "hw:emulator_threads_policy",
        SpecValue::OneOf(&["share", "isolate"]),
    ),
    ("hw:cpu_sockets", SpecValue::Int(1)),
    ("hw:cpu_cores", SpecValue::Int(1)),
    ("hw:cpu_threads", SpecValue::Int(1)),
    ("hw:max_cpu_sockets", SpecValue::Int(1)),
    ("hw:max_cpu_cores", SpecValue::Int(1)),
    ("hw:max_cpu_threads", SpecValue::Int(1)),
    ("hw:cpu_realtime", SpecValue::Bool),
    ("hw:cpu_realtime_mask", SpecValue::Any),
    ("hw:cpu_dedicated_mask", SpecValue::Any),
    ("hw:numa_nodes", SpecValue::Int(1)),
    ("hw:mem_page_size", SpecValue::Any),
    ("hw:mem_encryption", SpecValue::Bool),
    ("hw:boot_menu", SpecValue::Bool),
    ("hw:vif_multiqueue_enabled", SpecValue::Bool),
    (
        "hw:watchdog_action",
        SpecValue::OneOf(&["disabled", "pause", "poweroff", "reset", "none"]),
    ),
    ("hw:serial_port_count", SpecValue::Int(0)),
    ("hw:pmu", SpecValue::Bool),
    ("hw:hide_hypervisor_id", SpecValue::Bool),
    (
        "hw:pci_numa_affinity_policy",
        SpecValue::OneOf(&["required", "preferred", "legacy", "socket"]),
    ),
    ("hw:tpm_version", SpecValue::OneOf(&["1.2", "2.0"])),
    ("hw:tpm_model", SpecValue::OneOf(&["tpm-tis", "tpm-crb"])),
    ("hw:virtio_packed_ring", SpecValue::Bool),
    ("hw:locked_memory", SpecValue::Bool),
    ("hw_rng:allowed", SpecValue::Bool),
    ("hw_rng:rate_bytes", SpecValue::Int(0)),
    ("hw_rng:rate_period", SpecValue::Int(0)),
    ("hw_video:ram_max_mb", SpecValue::Int(0)),
    (
        "os:secure_boot",
        SpecValue::OneOf(&["required", "disabled", "optional"]),
    ),
    ("os:monitors", SpecValue::Int(1)),
    ("quota:cpu_shares", SpecValue::Int(0)),
    ("quota:cpu_period", SpecValue::Int(0)),
    ("quota:cpu_quota", SpecValue::Int(0)),
    ("quota:disk_read_bytes_sec", SpecValue::Int(0)),
    ("quota:disk_write_bytes_sec", SpecValue::Int(0)),
    ("quota:disk_total_bytes_sec", SpecValue::Int(0)),
    ("quota:disk_read_iops_sec", SpecValue::Int(0)),
    ("quota:disk_write_iops_sec", SpecValue::Int(0)),
    ("quota:disk_total_iops_sec", SpecValue::Int(0)),
    ("quota:vif_inbound_average", SpecValue::Int(0)),
    ("quota:vif_inbound_peak", SpecValue::Int(0)),
    ("quota:vif_inbound_burst", SpecValue::Int(0)),
    ("quota:vif_outbound_average", SpecValue::Int(0)),
    ("quota:vif_outbound_peak", SpecValue::Int(0)),
    ("quota:vif_outbound_burst", SpecValue::Int(0)),
    ("hide_hypervisor_id", SpecValue::Bool),
    ("group_policy", SpecValue::OneOf(&["isolate", "none"])),
    ("pci_passthrough:alias", SpecValue::Any),
    ("accel:device_profile", SpecValue::Any),
];

/// The namespaces Nova validates: a key in one of them that it does not know is refused
/// (a key in any other namespace, or in none, is the operator's own).
const VALIDATED_NAMESPACES: &[&str] = &[
    "hw",
    "hw_rng",
    "hw_video",
    "os",
    "powervm",
    "quota",
    "vmware",
    "accel",
    "pci_passthrough",
];

/// Nova 2.86's check of one extra spec (`nova.api.validation.extra_specs.validators`).
fn validate_spec(key: &str, value: &str) -> Result<(), Fault> {
    let bad = |why: String| Fault::bad_request(format!("Validation failed; {why}"));
    if let Some((_, kind)) = KNOWN_SPECS.iter().find(|(k, _)| *k == key) {
        let ok = match kind {
            SpecValue::Any => true,
            SpecValue::Bool => matches!(
                value.to_ascii_lowercase().as_str(),
                "true" | "false" | "1" | "0" | "yes" | "no" | "t" | "f" | "y" | "n" | "on" | "off"
            ),
            SpecValue::Int(min) => value.parse::<i64>().is_ok_and(|n| n >= *min),
            SpecValue::OneOf(allowed) => allowed.contains(&value),
        };
        return match ok {
            true => Ok(()),
            false => Err(bad(format!(
                "extra spec '{key}' has an invalid value '{}'.",
                shown(value)
            ))),
        };
    }
    let Some((ns, rest)) = key.split_once(':') else {
        return Ok(());
    };
    // `resources{N}:<class>` takes a count, `trait{N}:<trait>` required or forbidden.
    let group = |prefix: &str| {
        ns.strip_prefix(prefix)
            .is_some_and(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if group("resources") {
        return match value.parse::<i64>().is_ok_and(|n| n >= 0) && !rest.is_empty() {
            true => Ok(()),
            false => Err(bad(format!(
                "extra spec '{key}' has an invalid value '{}'.",
                shown(value)
            ))),
        };
    }
    if group("trait") {
        return match matches!(value, "required" | "forbidden") && !rest.is_empty() {
            true => Ok(()),
            false => Err(bad(format!(
                "extra spec '{key}' has an invalid value '{}'.",
                shown(value)
            ))),
        };
    }
    if VALIDATED_NAMESPACES.contains(&ns) {
        return Err(bad(format!("extra spec '{key}' does not exist.")));
    }
    Ok(())
}

/// An extra spec's value as Nova takes it: a string, number or boolean, kept as text.
fn spec_value(key: &str, v: &Value) -> Result<String, Fault> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        other => {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {}. {} is not of type 'string', 'number', 'boolean'",
                shown(&other.to_string()),
                shown(&other.to_string())
            )));
        }
    };
    if s.len() > MAX_SPEC_LEN {
        return Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: {}. '{}' is too long",
            shown(&s),
            shown(&s)
        )));
    }
    Ok(s)
}

impl Nova<'_> {
    /// Who asks, for the registry: an admin token sees every flavor.
    fn viewer(&self) -> TypeViewer<'_> {
        TypeViewer {
            admin: self.admin_role,
            project: self.p.project.as_ref().map(|s| s.id.as_str()),
        }
    }

    /// The flavor `id` as the caller sees it: built in, or created and open to it.
    fn flavor(&self, id: &str) -> Result<Flavor, Fault> {
        if let Some(t) = catalog::instance_type(id) {
            return Ok(built_in_flavor(t, render::ROOT_DISK_GIB));
        }
        self.api
            .engine
            .created_flavor(self.viewer(), id)
            .ok_or_else(|| flavor_not_found(id))
    }

    /// A created flavor (the ones access and extra specs change).
    fn created_flavor(&self, id: &str) -> Result<Flavor, Fault> {
        self.api
            .engine
            .created_flavor(self.viewer(), id)
            .ok_or_else(|| match catalog::instance_type(id) {
                Some(_) => Fault::conflict(format!(
                    "Flavor {id} is built in and cannot be changed or deleted."
                )),
                None => flavor_not_found(id),
            })
    }

    // -- flavors ------------------------------------------------------------------------

    pub(super) fn list_flavors(&self, detail: bool) -> Res {
        let q = self.req.query();
        let min_ram = int_param(&q, "minRam")?.unwrap_or(0);
        let min_disk = int_param(&q, "minDisk")?.unwrap_or(0);
        let limit = int_param(&q, "limit")?;
        if limit.is_some_and(|l| l < 0) {
            return Err(Fault::bad_request("limit must be >= 0"));
        }
        // nova/api/openstack/compute/flavors.py `_get_flavors`: an admin filters by
        // `is_public` (true: public ones, the default; false: private; none: all); anyone
        // else sees the public ones and the private ones shared with its project.
        let wanted: Option<bool> = match self.admin_role {
            true => match param(&q, "is_public")
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                None => Some(true),
                Some("none") => None,
                Some("true" | "t" | "1" | "yes" | "y" | "on") => Some(true),
                Some("false" | "f" | "0" | "no" | "n" | "off") => Some(false),
                Some(other) => {
                    return Err(Fault::bad_request(format!(
                        "Invalid is_public filter [{}]",
                        shown(other)
                    )));
                }
            },
            false => None,
        };
        let project = self.p.project.as_ref().map(|s| s.id.as_str());
        let mut flavors: Vec<Flavor> = catalog::INSTANCE_TYPES
            .iter()
            .map(|t| built_in_flavor(t, render::ROOT_DISK_GIB))
            .chain(self.api.engine.created_flavors(self.viewer()))
            .filter(|f| match wanted {
                Some(true) => f.is_public || f.open_to(project),
                Some(false) => !f.is_public,
                None => true,
            })
            .filter(|f| i64::from(f.ram_mib) >= min_ram)
            .filter(|f| i64::from(f.disk_gib) >= min_disk)
            .collect();
        let key = param(&q, "sort_key").unwrap_or("flavorid");
        match key {
            "flavorid" | "id" => flavors.sort_by(|a, b| a.id.cmp(&b.id)),
            "name" => flavors.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id))),
            "memory_mb" => flavors.sort_by(|a, b| (a.ram_mib, &a.id).cmp(&(b.ram_mib, &b.id))),
            "vcpus" => flavors.sort_by(|a, b| (a.vcpus, &a.id).cmp(&(b.vcpus, &b.id))),
            "root_gb" => flavors.sort_by(|a, b| (a.disk_gib, &a.id).cmp(&(b.disk_gib, &b.id))),
            "ephemeral_gb" => {
                flavors.sort_by(|a, b| (a.ephemeral_gib, &a.id).cmp(&(b.ephemeral_gib, &b.id)))
            }
            "swap" => flavors.sort_by(|a, b| (a.swap_mib, &a.id).cmp(&(b.swap_mib, &b.id))),
            "is_public" => flavors.sort_by(|a, b| (a.is_public, &a.id).cmp(&(b.is_public, &b.id))),
            "created_at" => {
                flavors.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)))
            }
            "rxtx_factor" | "disabled" => flavors.sort_by(|a, b| a.id.cmp(&b.id)),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters sort_key. Value: {}.",
                    shown(other)
                )));
            }
        }
        match param(&q, "sort_dir").unwrap_or("asc") {
            "asc" => {}
            "desc" => flavors.reverse(),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters sort_dir. Value: {}.",
                    shown(other)
                )));
            }
        }
        if let Some(marker) = param(&q, "marker")
            && !skip_past(&mut flavors, |f| f.id == marker)
        {
            return Err(Fault::bad_request(format!(
                "marker [{}] not found",
                shown(marker)
            )));
        }
        let limit = limit.map(|l| l as usize).unwrap_or(1000);
        let cut = flavors.len() > limit;
        flavors.truncate(limit);
        let list: Vec<Value> = flavors
            .iter()
            .map(|f| render::flavor(f, self.v, &self.base, detail))
            .collect();
        let path = if detail { "flavors/detail" } else { "flavors" };
        let next = flavors.last().filter(|_| cut).map(|f| f.id.clone());
        listing(&self.base, "flavors", path, list, limit, next)
    }

    pub(super) fn show_flavor(&self, id: &str) -> Res {
        let f = self.flavor(id)?;
        Ok(Reply::json(
            200,
            &json!({"flavor": render::flavor(&f, self.v, &self.base, true)}),
        ))
    }

    /// `POST /flavors` (flavor_manage.py `_create`).
    pub(super) async fn create_flavor(&self) -> Res {
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(top, &["flavor"])?;
        let fl = match top.get("flavor") {
            Some(Value::Object(o)) => o,
            Some(_) => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute flavor. Value is not an object.",
                ));
            }
            None => return Err(Fault::bad_request("'flavor' is a required property")),
        };
        let mut allowed = vec![
            "name",
            "id",
            "ram",
            "vcpus",
            "disk",
            "OS-FLV-EXT-DATA:ephemeral",
            "swap",
            "rxtx_factor",
            "os-flavor-access:is_public",
        ];
        if self.v.at_least(55) {
            allowed.push("description");
        }
        check_keys(fl, &allowed)?;
        for required in ["name", "ram", "vcpus", "disk"] {
            if !fl.contains_key(required) {
                return Err(Fault::bad_request(format!(
                    "'{required}' is a required property"
                )));
            }
        }
        let name = match fl.get("name") {
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute name. Value is not a string.",
                ));
            }
        };
        if name.is_empty()
            || name.chars().count() > 255
            || name.trim() != name
            || name.chars().any(char::is_control)
        {
            return Err(super::invalid_value("name", &name));
        }
        let id = match fl.get("id") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(s)) if valid_flavor_id(s) => s.clone(),
            Some(Value::String(s)) => return Err(super::invalid_value("id", s)),
            // Tempest's `rand_int_id` and older clients send a number.
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(other) => return Err(super::invalid_value("id", &other.to_string())),
        };
        let ram = flavor_int(fl, "ram", 1)?.unwrap_or(1);
        let vcpus = flavor_int(fl, "vcpus", 1)?.unwrap_or(1);
        let disk = flavor_int(fl, "disk", 0)?.unwrap_or(0);
        let ephemeral = flavor_int(fl, "OS-FLV-EXT-DATA:ephemeral", 0)?.unwrap_or(0);
        let swap = flavor_int(fl, "swap", 0)?.unwrap_or(0);
        let rxtx_factor = match fl.get("rxtx_factor") {
            None => 1.0,
            Some(v) => match v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            {
                Some(x) if x > 0.0 && x.is_finite() => x,
                _ => return Err(super::invalid_value("rxtx_factor", &v.to_string())),
            },
        };
        let is_public = match fl.get("os-flavor-access:is_public") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
                "true" | "t" | "1" | "yes" | "y" | "on" => true,
                "false" | "f" | "0" | "no" | "n" | "off" => false,
                _ => return Err(super::invalid_value("os-flavor-access:is_public", s)),
            },
            Some(other) => {
                return Err(super::invalid_value(
                    "os-flavor-access:is_public",
                    &other.to_string(),
                ));
            }
        };
        let description = description_field(fl)?;
        let f = Flavor {
            id: id.clone(),
            name,
            vcpus,
            ram_mib: ram,
            disk_gib: disk,
            ephemeral_gib: ephemeral,
            swap_mib: swap,
            rxtx_factor,
            is_public,
            description,
            extra_specs: Default::default(),
            projects: Vec::new(),
            created_at_ms: 0,
        };
        let f = self
            .api
            .engine
            .create_flavor(f)
            .await
            .map_err(|e| flavor_fault(e, &id))?;
        Ok(Reply::json(
            200,
            &json!({"flavor": render::flavor(&f, self.v, &self.base, true)}),
        ))
    }

    /// `PUT /flavors/{id}` (2.55): the description.
    pub(super) async fn update_flavor(&self, id: &str) -> Res {
        if !self.v.at_least(55) {
            return Err(Fault::not_found("The resource could not be found."));
        }
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(top, &["flavor"])?;
        let Some(Value::Object(fl)) = top.get("flavor") else {
            return Err(Fault::bad_request("'flavor' is a required property"));
        };
        check_keys(fl, &["description"])?;
        if !fl.contains_key("description") {
            return Err(Fault::bad_request("'description' is a required property"));
        }
        let description = description_field(fl)?;
        self.created_flavor(id)?;
        let f = self
            .api
            .engine
            .update_flavor(
                id,
                FlavorChange {
                    description: Some(description),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| flavor_fault(e, id))?;
        Ok(Reply::json(
            200,
            &json!({"flavor": render::flavor(&f, self.v, &self.base, true)}),
        ))
    }

    /// `DELETE /flavors/{id}`: instances of it keep its facts.
    pub(super) async fn delete_flavor(&self, id: &str) -> Res {
        self.api
            .engine
            .delete_flavor(id)
            .await
            .map_err(|e| flavor_fault(e, id))?;
        Ok(Reply::empty(202))
    }

    // -- flavor access --------------------------------------------------------------------

    fn access_list(f: &Flavor) -> Value {
        let list: Vec<Value> = f
            .projects
            .iter()
            .map(|p| json!({"flavor_id": f.id, "tenant_id": p}))
            .collect();
        json!({ "flavor_access": list })
    }

    /// `GET /flavors/{id}/os-flavor-access`.
    pub(super) fn flavor_access(&self, id: &str) -> Res {
        let f = self.flavor(id)?;
        if f.is_public {
            return Err(Fault::not_found(
                "Access list not available for public flavors.",
            ));
        }
        Ok(Reply::json(200, &Self::access_list(&f)))
    }

    /// `addTenantAccess` / `removeTenantAccess`.
    pub(super) async fn change_flavor_access(&self, id: &str, arg: &Value, add: bool) -> Res {
        let action = if add {
            "addTenantAccess"
        } else {
            "removeTenantAccess"
        };
        let obj = arg.as_object().ok_or_else(|| {
            Fault::bad_request(format!(
                "Invalid input for field/attribute {action}. Value is not an object."
            ))
        })?;
        check_keys(obj, &["tenant"])?;
        let tenant = match obj.get("tenant") {
            Some(Value::String(s))
                if (1..=255).contains(&s.len()) && !s.chars().any(char::is_control) =>
            {
                s.clone()
            }
            Some(other) => return Err(super::invalid_value("tenant", &other.to_string())),
            None => return Err(Fault::bad_request("'tenant' is a required property")),
        };
        let f = self.created_flavor(id)?;
        if f.is_public {
            return Err(Fault::conflict(if add {
                "Can not add access to a public flavor."
            } else {
                "Can not remove access from a public flavor."
            }));
        }
        let change = match add {
            true => FlavorChange {
                add_project: Some(tenant),
                ..Default::default()
            },
            false => FlavorChange {
                remove_project: Some(tenant),
                ..Default::default()
            },
        };
        let f = self
            .api
            .engine
            .update_flavor(id, change)
            .await
            .map_err(|e| flavor_fault(e, id))?;
        Ok(Reply::json(200, &Self::access_list(&f)))
    }

    // -- extra specs ----------------------------------------------------------------------

    /// `GET /flavors/{id}/os-extra_specs`.
    pub(super) fn flavor_extra_specs(&self, id: &str) -> Res {
        let f = self.flavor(id)?;
        Ok(Reply::json(200, &json!({"extra_specs": f.extra_specs})))
    }

    /// `GET /flavors/{id}/os-extra_specs/{key}`.
    pub(super) fn flavor_extra_spec(&self, id: &str, key: &str) -> Res {
        let f = self.flavor(id)?;
        match f.extra_specs.get(key) {
            Some(v) => Ok(Reply::json(200, &json!({ key: v }))),
            None => Err(Fault::not_found(format!(
                "Flavor {id} has no extra specs with key {}.",
                shown(key)
            ))),
        }
    }

    /// Checked extra specs from a body object (key pattern, value type, and at 2.86 Nova's
    /// registry of known keys).
    fn specs_from(&self, obj: &Map<String, Value>) -> Result<Vec<(String, String)>, Fault> {
        if obj.len() > nubis_core::flavors::MAX_EXTRA_SPECS {
            return Err(Fault::bad_request(format!(
                "no more than {} extra specs may be set at once",
                nubis_core::flavors::MAX_EXTRA_SPECS
            )));
        }
        let mut out = Vec::with_capacity(obj.len());
        for (k, v) in obj {
            if !valid_spec_key(k) {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute extra_specs. Value: {{{}}}. Additional properties are not allowed ('{}' was unexpected)",
                    shown(k),
                    shown(k)
                )));
            }
            let value = spec_value(k, v)?;
            if self.v.at_least(86) {
                validate_spec(k, &value)?;
            }
            out.push((k.clone(), value));
        }
        Ok(out)
    }

    /// `POST /flavors/{id}/os-extra_specs`: set (add or replace) several.
    pub(super) async fn create_flavor_extra_specs(&self, id: &str) -> Res {
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(top, &["extra_specs"])?;
        let specs = match top.get("extra_specs") {
            Some(Value::Object(o)) => self.specs_from(o)?,
            Some(_) => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute extra_specs. Value is not an object.",
                ));
            }
            None => return Err(Fault::bad_request("'extra_specs' is a required property")),
        };
        self.created_flavor(id)?;
        let set: Map<String, Value> = specs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        self.api
            .engine
            .update_flavor(
                id,
                FlavorChange {
                    set_specs: specs,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| flavor_fault(e, id))?;
        Ok(Reply::json(200, &json!({ "extra_specs": set })))
    }

    /// `PUT /flavors/{id}/os-extra_specs/{key}`: one, named by the path and the body.
    pub(super) async fn update_flavor_extra_spec(&self, id: &str, key: &str) -> Res {
        let body = json_body(self.req.body)?;
        let obj = body.as_object().ok_or_else(Fault::malformed)?;
        if obj.len() > 1 {
            return Err(Fault::bad_request("Request body contains too many items"));
        }
        if !obj.contains_key(key) {
            return Err(Fault::bad_request("Request body and URI mismatch"));
        }
        let specs = self.specs_from(obj)?;
        self.created_flavor(id)?;
        let shown_back: Map<String, Value> =
            specs.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        self.api
            .engine
            .update_flavor(
                id,
                FlavorChange {
                    set_specs: specs,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| flavor_fault(e, id))?;
        Ok(Reply::json(200, &Value::Object(shown_back)))
    }

    /// `DELETE /flavors/{id}/os-extra_specs/{key}`: 200 with no body.
    pub(super) async fn delete_flavor_extra_spec(&self, id: &str, key: &str) -> Res {
        self.created_flavor(id)?;
        self.api
            .engine
            .update_flavor(
                id,
                FlavorChange {
                    unset_spec: Some(key.to_string()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| flavor_fault(e, id))?;
        // Nova answers 200 here (202 for a flavor delete).
        Ok(Reply::empty(200))
    }
}

/// `description` (2.55): a string of at most 65535 characters, or null.
fn description_field(fl: &Map<String, Value>) -> Result<Option<String>, Fault> {
    match fl.get("description") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if s.chars().count() <= 65535 && !s.chars().any(|c| c.is_control() && c != '\n') =>
        {
            Ok(Some(s.clone()))
        }
        Some(other) => Err(super::invalid_value("description", &other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_specs_are_checked_as_nova_2_86_does() {
        assert!(validate_spec("hw:cpu_policy", "dedicated").is_ok());
        assert!(validate_spec("hw:cpu_policy", "sometimes").is_err());
        assert!(validate_spec("hw:numa_nodes", "0").is_err());
        assert!(validate_spec("hw:no_such_thing", "1").is_err());
        assert!(validate_spec("resources:VCPU", "2").is_ok());
        assert!(validate_spec("trait:HW_CPU_X86_AVX2", "required").is_ok());
        assert!(validate_spec("trait:HW_CPU_X86_AVX2", "maybe").is_err());
        // Not a namespace Nova validates, or none at all: the operator's own.
        assert!(validate_spec("mycompany:tier", "gold").is_ok());
        assert!(validate_spec("key1", "value1").is_ok());
    }

    #[test]
    fn flavor_ids_follow_nova_s_pattern() {
        assert!(valid_flavor_id("m1.custom") && valid_flavor_id("42") && valid_flavor_id("a b"));
        assert!(!valid_flavor_id("") && !valid_flavor_id(" a") && !valid_flavor_id("a/b"));
    }
}
