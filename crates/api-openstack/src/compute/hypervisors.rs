//! `/os-hypervisors`: list, detail, show, statistics and uptime, and (until 2.52) search and
//! servers by host name; one hypervisor per compute host (`hosts.rs`). Integer IDs until
//! 2.52, UUIDs from 2.53; the resource fields leave the views at 2.88, where `uptime` joins
//! them and the statistics and uptime routes end.

use super::hosts::{self, HOST_LOCAL_GB, HOST_MEMORY_MB, HOST_VCPUS, Host};
use super::{Nova, Res, param};
use crate::Reply;
use crate::errors::Fault;
use serde_json::{Map, Value, json};

/// The query parameters each listing takes (2.53+; Nova ignored unknown ones before).
const LIST_PARAMS: &[&str] = &[
    "limit",
    "marker",
    "hypervisor_hostname_pattern",
    "with_servers",
];
const SHOW_PARAMS: &[&str] = &["with_servers"];

impl Nova<'_> {
    fn hypervisor_id(&self, h: &Host) -> Value {
        if self.v.at_least(53) {
            json!(h.uuid().to_string())
        } else {
            json!(h.number())
        }
    }

    /// The hypervisor an `{id}` names: an integer before 2.53 (anything else is not found),
    /// a UUID from 2.53 (anything else is 400).
    fn find_hypervisor(&self, id: &str) -> Result<Host, Fault> {
        let missing = || Fault::not_found(format!("Hypervisor with ID '{id}' could not be found."));
        let host = if self.v.at_least(53) {
            let uuid = uuid::Uuid::try_parse(id)
                .map_err(|_| Fault::bad_request(format!("Invalid uuid {id}")))?;
            self.live_hosts().into_iter().find(|h| h.uuid() == uuid)
        } else {
            let n = id.parse::<usize>().ok();
            self.live_hosts()
                .into_iter()
                .find(|h| Some(h.number()) == n)
        };
        host.ok_or_else(missing)
    }

    /// `with_servers` (2.53+): a boolean as Nova's query schema reads one.
    fn with_servers(&self, q: &[(String, String)]) -> Result<bool, Fault> {
        match param(q, "with_servers") {
            None => Ok(false),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
                "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
                _ => Err(Fault::bad_request(format!(
                    "Invalid input for query parameters with_servers. Value: {v}. '{v}' is not one of ['True', 'true', 'TRUE', 'False', 'false', 'FALSE', '0', '1', 'on', 'On', 'ON', 'off', 'Off', 'OFF', 'y', 'Y', 'yes', 'Yes', 'YES', 'n', 'N', 'no', 'No', 'NO', 't', 'T', 'f', 'F']"
                ))),
            },
        }
    }

    /// Query parameters outside `allowed` are refused from 2.53 (Nova's query schemas say
    /// `additionalProperties: false` there); before, they are ignored.
    fn strict_query(&self, q: &[(String, String)], allowed: &[&str]) -> Result<(), Fault> {
        if !self.v.at_least(53) {
            return Ok(());
        }
        match q.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(Fault::bad_request(format!(
                "Invalid input for query parameters {k}. Value: {k}. Additional properties are not allowed ('{k}' was unexpected)"
            ))),
            None => Ok(()),
        }
    }

    fn hypervisor_brief(&self, h: &Host, servers: bool) -> Map<String, Value> {
        let svc = self.compute_service(h);
        let st = svc
            .as_ref()
            .map(|s| self.service_state(s))
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("id".into(), self.hypervisor_id(h));
        m.insert("hypervisor_hostname".into(), json!(h.name()));
        m.insert(
            "state".into(),
            json!(if st.forced_down { "down" } else { "up" }),
        );
        m.insert(
            "status".into(),
            json!(if st.disabled { "disabled" } else { "enabled" }),
        );
        if servers {
            let on = self.instances_on(h);
            // Nova leaves the key out when the host has no servers.
            if !on.is_empty() {
                let list: Vec<Value> = on
                    .iter()
                    .map(|i| json!({"name": i.name, "uuid": i.uuid.to_string()}))
                    .collect();
                m.insert("servers".into(), json!(list));
            }
        }
        m
    }

    fn compute_service(&self, h: &Host) -> Option<hosts::Service> {
        let name = h.name();
        hosts::services()
            .into_iter()
            .find(|s| s.compute.is_some() && s.host == name)
    }

    fn hypervisor_detail(&self, h: &Host, servers: bool) -> Value {
        let mut m = self.hypervisor_brief(h, false);
        let svc = self.compute_service(h);
        let st = svc
            .as_ref()
            .map(|s| self.service_state(s))
            .unwrap_or_default();
        let service_id = match (&svc, self.v.at_least(53)) {
            (Some(s), true) => json!(s.uuid().to_string()),
            (Some(s), false) => json!(s.number),
            (None, _) => Value::Null,
        };
        m.insert(
            "service".into(),
            json!({"host": h.name(), "id": service_id, "disabled_reason": st.disabled_reason}),
        );
        m.insert("host_ip".into(), json!("127.0.0.1"));
        m.insert("hypervisor_type".into(), json!("QEMU"));
        m.insert("hypervisor_version".into(), json!(8_002_000));
        if self.v.at_least(88) {
            m.insert("uptime".into(), json!(hosts::uptime_line()));
        } else {
            let u = self.usage_of(h);
            let cpu = json!({"arch": "x86_64", "model": "qemu64", "vendor": "nubis",
                "topology": {"cells": 1, "sockets": 1, "cores": HOST_VCPUS, "threads": 1},
                "features": []});
            m.insert(
                "cpu_info".into(),
                if self.v.at_least(28) {
                    cpu
                } else {
                    json!(cpu.to_string())
                },
            );
            m.insert("current_workload".into(), json!(0));
            let free_disk = HOST_LOCAL_GB.saturating_sub(u.local_gb);
            m.insert("disk_available_least".into(), json!(free_disk));
            m.insert("free_disk_gb".into(), json!(free_disk));
            m.insert(
                "free_ram_mb".into(),
                json!(HOST_MEMORY_MB.saturating_sub(u.memory_mb)),
            );
            m.insert("local_gb".into(), json!(HOST_LOCAL_GB));
            m.insert("local_gb_used".into(), json!(u.local_gb));
            m.insert("memory_mb".into(), json!(HOST_MEMORY_MB));
            m.insert("memory_mb_used".into(), json!(u.memory_mb));
            m.insert("running_vms".into(), json!(u.running_vms));
            m.insert("vcpus".into(), json!(HOST_VCPUS));
            m.insert("vcpus_used".into(), json!(u.vcpus));
        }
        if servers && let Some(s) = self.hypervisor_brief(h, true).remove("servers") {
            m.insert("servers".into(), s);
        }
        Value::Object(m)
    }

    /// `GET /os-hypervisors` and `/os-hypervisors/detail`.
    pub(super) fn list_hypervisors(&self, detail: bool) -> Res {
        let q = self.req.query();
        self.strict_query(&q, LIST_PARAMS)?;
        let mut hosts = self.live_hosts();
        let mut with_servers = false;
        let mut paged = false;
        if self.v.at_least(53) {
            with_servers = self.with_servers(&q)?;
            if let Some(pattern) = param(&q, "hypervisor_hostname_pattern") {
                if param(&q, "limit").is_some() || param(&q, "marker").is_some() {
                    return Err(Fault::bad_request(
                        "Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.",
                    ));
                }
                hosts.retain(|h| h.name().contains(pattern));
                if hosts.is_empty() {
                    return Err(Fault::not_found(format!(
                        "No hypervisor matching '{pattern}' could be found."
                    )));
                }
            }
        }
        if self.v.at_least(33) {
            if let Some(marker) = param(&q, "marker") {
                let at = hosts
                    .iter()
                    .position(|h| self.hypervisor_id(h).to_string().trim_matches('"') == marker)
                    .ok_or_else(|| Fault::bad_request(format!("marker [{marker}] not found")))?;
                hosts.drain(..=at);
            }
            if let Some(limit) = super::int_param(&q, "limit")? {
                let limit =
                    usize::try_from(limit).map_err(|_| Fault::bad_request("limit must be >= 0"))?;
                paged = hosts.len() > limit;
                hosts.truncate(limit);
            }
        }
        let items: Vec<Value> = hosts
            .iter()
            .map(|h| {
                if detail {
                    self.hypervisor_detail(h, with_servers)
                } else {
                    Value::Object(self.hypervisor_brief(h, with_servers))
                }
            })
            .collect();
        let mut body = Map::new();
        body.insert("hypervisors".into(), json!(items));
        if paged && let Some(last) = hosts.last() {
            let id = self.hypervisor_id(last).to_string();
            let path = if detail {
                "os-hypervisors/detail"
            } else {
                "os-hypervisors"
            };
            let href = format!(
                "{}/compute/v2.1/{path}?limit={}&marker={}",
                self.base,
                hosts.len(),
                id.trim_matches('"')
            );
            body.insert(
                "hypervisors_links".into(),
                json!([{"rel": "next", "href": href}]),
            );
        }
        Ok(Reply::json(200, &Value::Object(body)))
    }

    /// `GET /os-hypervisors/{id}`.
    pub(super) fn show_hypervisor(&self, id: &str) -> Res {
        let q = self.req.query();
        self.strict_query(&q, SHOW_PARAMS)?;
        let servers = self.v.at_least(53) && self.with_servers(&q)?;
        // From 2.88 the statistics route is gone: its path is no hypervisor (Nova: 404).
        if id == "statistics" {
            return Err(super::not_found());
        }
        let h = self.find_hypervisor(id)?;
        Ok(Reply::json(
            200,
            &json!({"hypervisor": self.hypervisor_detail(&h, servers)}),
        ))
    }

    /// `GET /os-hypervisors/{id}/uptime` (until 2.87).
    pub(super) fn hypervisor_uptime(&self, id: &str) -> Res {
        let h = self.find_hypervisor(id)?;
        let Some(uptime) = hosts::uptime_line() else {
            return Err(Fault::new(
                501,
                "Virt driver does not implement uptime function.",
            ));
        };
        let mut m = self.hypervisor_brief(&h, false);
        m.insert("uptime".into(), json!(uptime));
        Ok(Reply::json(200, &json!({"hypervisor": m})))
    }

    /// `GET /os-hypervisors/statistics` (until 2.87): the sums over every hypervisor.
    pub(super) fn hypervisor_statistics(&self) -> Res {
        let hosts = self.live_hosts();
        let n = hosts.len() as u64;
        let mut used = hosts::Usage::default();
        for h in &hosts {
            let u = self.usage_of(h);
            used.vcpus += u.vcpus;
            used.memory_mb += u.memory_mb;
            used.local_gb += u.local_gb;
            used.running_vms += u.running_vms;
        }
        let free_disk = (HOST_LOCAL_GB * n).saturating_sub(used.local_gb);
        Ok(Reply::json(
            200,
            &json!({"hypervisor_statistics": {
                "count": n,
                "current_workload": 0,
                "disk_available_least": free_disk,
                "free_disk_gb": free_disk,
                "free_ram_mb": (HOST_MEMORY_MB * n).saturating_sub(used.memory_mb),
                "local_gb": HOST_LOCAL_GB * n,
                "local_gb_used": used.local_gb,
                "memory_mb": HOST_MEMORY_MB * n,
                "memory_mb_used": used.memory_mb,
                "running_vms": used.running_vms,
                "vcpus": HOST_VCPUS * n,
                "vcpus_used": used.vcpus,
            }}),
        ))
    }

    /// `GET /os-hypervisors/{pattern}/search` and `/{pattern}/servers` (until 2.52): the
    /// hypervisors whose host name contains the pattern, with their servers for the latter.
    pub(super) fn search_hypervisors(&self, pattern: &str, servers: bool) -> Res {
        let found: Vec<Value> = self
            .live_hosts()
            .iter()
            .filter(|h| h.name().contains(pattern))
            .map(|h| Value::Object(self.hypervisor_brief(h, servers)))
            .collect();
        if found.is_empty() {
            return Err(Fault::not_found(format!(
                "No hypervisor matching '{pattern}' could be found."
            )));
        }
        Ok(Reply::json(200, &json!({"hypervisors": found})))
    }
}
