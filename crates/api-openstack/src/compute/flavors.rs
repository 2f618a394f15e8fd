//! Flavors: the catalogue's instance types, read-only.

use super::{Nova, Res, int_param, listing, param, skip_past};
use crate::errors::Fault;
use crate::{Reply, render};
use nubis_core::catalog;
use serde_json::{Value, json};

impl Nova<'_> {
    // -- flavors ------------------------------------------------------------------------

    pub(super) fn list_flavors(&self, detail: bool) -> Res {
        let q = self.req.query();
        let min_ram = int_param(&q, "minRam")?.unwrap_or(0);
        let min_disk = int_param(&q, "minDisk")?.unwrap_or(0);
        let limit = int_param(&q, "limit")?;
        if limit.is_some_and(|l| l < 0) {
            return Err(Fault::bad_request("limit must be >= 0"));
        }
        // All flavors are public: `is_public=false` lists none.
        let only_private = param(&q, "is_public")
            .is_some_and(|p| matches!(p.to_ascii_lowercase().as_str(), "false" | "f" | "0" | "no"));
        let mut types: Vec<&catalog::InstanceType> = catalog::INSTANCE_TYPES
            .iter()
            .filter(|_| !only_private)
            .filter(|t| i64::from(t.memory_gib) * 1024 >= min_ram)
            .filter(|_| i64::from(render::ROOT_DISK_GIB) >= min_disk)
            .collect();
        let key = param(&q, "sort_key").unwrap_or("flavorid");
        match key {
            "flavorid" | "id" | "name" => types.sort_by_key(|t| t.name),
            "memory_mb" => types.sort_by_key(|t| (t.memory_gib, t.name)),
            "vcpus" => types.sort_by_key(|t| (t.cpu, t.name)),
            "root_gb" | "ephemeral_gb" | "swap" | "rxtx_factor" | "disabled" | "is_public"
            | "created_at" => types.sort_by_key(|t| t.name),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters sort_key. Value: {other}."
                )));
            }
        }
        match param(&q, "sort_dir").unwrap_or("asc") {
            "asc" => {}
            "desc" => types.reverse(),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters sort_dir. Value: {other}."
                )));
            }
        }
        if let Some(marker) = param(&q, "marker")
            && !skip_past(&mut types, |t| t.name == marker)
        {
            return Err(Fault::bad_request(format!("marker [{marker}] not found")));
        }
        let limit = limit.map(|l| l as usize).unwrap_or(1000);
        let cut = types.len() > limit;
        types.truncate(limit);
        let flavors: Vec<Value> = types
            .iter()
            .map(|t| render::flavor(t, self.v, &self.base, detail))
            .collect();
        let path = if detail { "flavors/detail" } else { "flavors" };
        let next = types.last().filter(|_| cut).map(|t| t.name.to_string());
        listing(&self.base, "flavors", path, flavors, limit, next)
    }

    pub(super) fn show_flavor(&self, id: &str) -> Res {
        let t = catalog::instance_type(id)
            .ok_or_else(|| Fault::not_found(format!("Flavor {id} could not be found.")))?;
        Ok(Reply::json(
            200,
            &json!({"flavor": render::flavor(t, self.v, &self.base, true)}),
        ))
    }

    /// Extra specs: no flavor has any.
    pub(super) fn flavor_extra_specs(&self, id: &str) -> Res {
        self.show_flavor(id)
            .map(|_| Reply::json(200, &json!({"extra_specs": {}})))
    }
}
