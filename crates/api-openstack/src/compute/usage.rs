//! `/os-simple-tenant-usage`: every project's usage (admins) and one project's (its readers
//! too) over a window `start`–`end`, from the servers' launch times: hours, and vCPU, RAM and
//! disk hours, as Nova's `_hours_for` counts them. nubis keeps no record of a deleted
//! server in memory, so a server counts while it exists (docs/nova-operator.md).

use super::hosts::{self, instance_resources};
use super::{Nova, Res, param};
use crate::errors::Fault;
use crate::render::iso_micro;
use crate::{Reply, ids};
use nubis_core::Instance;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A `start` or `end` as Nova's `_parse_datetime` reads one (ms since the epoch); absent is
/// now.
fn parse_time(v: Option<&str>) -> Result<i64, Fault> {
    use time::macros::format_description as fd;
    let Some(s) = v.filter(|s| !s.is_empty()) else {
        return Ok(hosts::now_ms());
    };
    let parsed =
        time::PrimitiveDateTime::parse(s, fd!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
            .or_else(|_| {
                time::PrimitiveDateTime::parse(
                    s,
                    fd!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"),
                )
            })
            .or_else(|_| {
                time::PrimitiveDateTime::parse(
                    s,
                    fd!("[year]-[month]-[day] [hour]:[minute]:[second].[subsecond]"),
                )
            })
            .map_err(|_| {
                Fault::bad_request("Invalid datetime string: Datetime is in invalid format")
            })?;
    let nanos = parsed.assume_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000)
        .map_err(|_| Fault::bad_request("Invalid datetime string: Datetime is in invalid format"))
}

/// Hours of `[a, b]` in ms, as a float.
fn hours(a: i64, b: i64) -> f64 {
    (b - a).max(0) as f64 / 3_600_000.0
}

#[derive(Default)]
struct Totals {
    hours: f64,
    vcpus: f64,
    memory_mb: f64,
    local_gb: f64,
    servers: Vec<Value>,
}

impl Nova<'_> {
    /// The window of the request: 400 when it is not ordered.
    fn usage_window(&self, q: &[(String, String)], allowed: &[&str]) -> Result<(i64, i64), Fault> {
        if self.v.at_least(75)
            && let Some((k, _)) = q.iter().find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            return Err(Fault::bad_request(format!(
                "Invalid input for query parameters {k}. Value: {k}. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let start = parse_time(param(q, "start"))?;
        let stop = parse_time(param(q, "end"))?;
        if start >= stop {
            return Err(Fault::bad_request(
                "Invalid start time. The start time cannot occur after the end time.",
            ));
        }
        Ok((start, stop))
    }

    /// The servers that ran within `[start, stop]` (of project `only`), paged from 2.40 by
    /// `limit` and `marker` (a server's UUID) over all of them; with the last one's UUID when
    /// the page is full (Nova then links the next page).
    fn usage_servers(
        &self,
        q: &[(String, String)],
        stop: i64,
        only: Option<&str>,
    ) -> Result<(Vec<Instance>, Option<String>), Fault> {
        let mut list: Vec<Instance> = self
            .all_instances()
            .into_iter()
            .filter(|i| i.created_at_ms <= stop && only.is_none_or(|p| p == project_of(i)))
            .collect();
        if !self.v.at_least(40) {
            return Ok((list, None));
        }
        list.sort_by_key(|i| (i.created_at_ms, i.uuid));
        if let Some(marker) = param(q, "marker")
            && !super::skip_past(&mut list, |i| i.uuid.to_string() == marker)
        {
            return Err(Fault::bad_request(format!("marker [{marker}] not found")));
        }
        let Some(limit) = super::int_param(q, "limit")? else {
            return Ok((list, None));
        };
        let limit = usize::try_from(limit).map_err(|_| {
            Fault::bad_request(format!(
                "Invalid input for query parameters limit. Value: {limit}. {limit} is less than the minimum of 0"
            ))
        })?;
        list.truncate(limit);
        let next = (limit > 0 && list.len() == limit)
            .then(|| list.last().map(|i| i.uuid.to_string()))
            .flatten();
        Ok((list, next))
    }

    /// Usage per project of `servers` within `[start, stop]`.
    fn usage_by_project(
        &self,
        servers: Vec<Instance>,
        start: i64,
        stop: i64,
    ) -> BTreeMap<String, Totals> {
        let now = hosts::now_ms();
        let mut out: BTreeMap<String, Totals> = BTreeMap::new();
        for i in servers {
            let project = project_of(&i);
            let h = hours(i.created_at_ms.max(start), stop.min(now));
            let (vcpus, memory_mb, local_gb) = instance_resources(&i);
            let st = crate::state::nova_state(i.state, crate::state::Extra::default());
            let flavor = i.instance_type.clone();
            let t = out.entry(project.clone()).or_default();
            t.hours += h;
            t.vcpus += vcpus as f64 * h;
            t.memory_mb += memory_mb as f64 * h;
            t.local_gb += local_gb as f64 * h;
            t.servers.push(json!({
                "instance_id": i.uuid.to_string(),
                "name": i.name,
                "hours": h,
                "vcpus": vcpus,
                "memory_mb": memory_mb,
                "local_gb": local_gb,
                "tenant_id": project,
                "flavor": flavor,
                "started_at": iso_micro(i.created_at_ms),
                "ended_at": null,
                "state": st.vm_state,
                "uptime": (now - i.created_at_ms).max(0) / 1000,
            }));
        }
        out
    }

    fn usage_entry(project: &str, t: Totals, start: i64, stop: i64, servers: bool) -> Value {
        let mut m = Map::new();
        m.insert("tenant_id".into(), json!(project));
        m.insert("total_hours".into(), json!(t.hours));
        m.insert("total_vcpus_usage".into(), json!(t.vcpus));
        m.insert("total_memory_mb_usage".into(), json!(t.memory_mb));
        m.insert("total_local_gb_usage".into(), json!(t.local_gb));
        m.insert("start".into(), json!(iso_micro(start)));
        m.insert("stop".into(), json!(iso_micro(stop)));
        if servers {
            m.insert("server_usages".into(), json!(t.servers));
        }
        Value::Object(m)
    }

    /// `GET /os-simple-tenant-usage?start&end&detailed` (admins).
    pub(super) fn list_usage(&self) -> Res {
        let q = self.req.query();
        let (start, stop) =
            self.usage_window(&q, &["start", "end", "detailed", "limit", "marker"])?;
        let detailed = param(&q, "detailed") == Some("1");
        let (servers, next) = self.usage_servers(&q, stop, None)?;
        let list: Vec<Value> = self
            .usage_by_project(servers, start, stop)
            .into_iter()
            .map(|(p, t)| Self::usage_entry(&p, t, start, stop, detailed))
            .collect();
        let mut body = Map::new();
        body.insert("tenant_usages".into(), json!(list));
        if let Some(marker) = next {
            body.insert(
                "tenant_usages_links".into(),
                self.usage_next(&q, "os-simple-tenant-usage", &marker),
            );
        }
        Ok(Reply::json(200, &Value::Object(body)))
    }

    /// `GET /os-simple-tenant-usage/{tenant}?start&end`: a project's readers and admins; `{}`
    /// when nothing of it ran in the window.
    pub(super) fn show_usage(&self, tenant: &str) -> Res {
        let own = self.token.project.as_ref().is_some_and(|p| p.id == tenant);
        if !own && !self.admin_role {
            return Err(Fault::new(
                403,
                "Policy doesn't allow os_compute_api:os-simple-tenant-usage:show to be performed.",
            ));
        }
        let q = self.req.query();
        let (start, stop) = self.usage_window(&q, &["start", "end", "limit", "marker"])?;
        let (servers, next) = self.usage_servers(&q, stop, Some(tenant))?;
        let usage = self
            .usage_by_project(servers, start, stop)
            .remove(tenant)
            .map_or_else(
                || json!({}),
                |t| Self::usage_entry(tenant, t, start, stop, true),
            );
        let mut body = Map::new();
        body.insert("tenant_usage".into(), usage);
        if let Some(marker) = next {
            body.insert(
                "tenant_usage_links".into(),
                self.usage_next(&q, &format!("os-simple-tenant-usage/{tenant}"), &marker),
            );
        }
        Ok(Reply::json(200, &Value::Object(body)))
    }

    /// The `next` link of a full page: the same query with `marker` moved on.
    fn usage_next(&self, q: &[(String, String)], path: &str, marker: &str) -> Value {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (k, v) in q.iter().filter(|(k, _)| k != "marker") {
            query.append_pair(k, v);
        }
        query.append_pair("marker", marker);
        let href = format!("{}/compute/v2.1/{path}?{}", self.base, query.finish());
        json!([{"rel": "next", "href": href}])
    }
}

fn project_of(i: &Instance) -> String {
    i.project
        .clone()
        .unwrap_or_else(|| ids::project_id(&i.account))
}
