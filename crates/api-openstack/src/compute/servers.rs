//! Servers: list (with Nova's filters), show, update, delete, and the views they answer with.

use super::actions::remember_reboot;
use super::{
    Nova, Res, SERVER_DESCRIPTION, SERVER_NAME, access_ip, check_field, check_keys, int_param,
    invalid_value, json_body, listing, opt_str, param, region, shown,
};
use crate::Reply;
use crate::errors::{Fault, map};
use crate::render::{self, ServerCtx};
use crate::state::Extra;
use nubis_core::select::{Clause, Facet, Selection};
use nubis_core::{DomainError, Instance, InstanceState, Step, StopMode};
use nubis_driver::Power;
use nubis_engine::{AttrChange, Command, IdKind};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// A server's own attributes as a request sets them (`PUT /servers/{id}`, `rebuild`,
/// `resize`'s disk config).
#[derive(Default)]
pub(super) struct ServerEdits {
    name: Option<String>,
    description: Option<String>,
    hostname: Option<String>,
    access_ipv4: Option<String>,
    access_ipv6: Option<String>,
    disk_config: Option<bool>,
}

impl ServerEdits {
    /// Only the disk config (a resize's `OS-DCF:diskConfig`).
    pub(super) fn disk_config(auto: bool) -> Self {
        Self {
            disk_config: Some(auto),
            ..Self::default()
        }
    }
}

/// Compiled size cap of a `name` filter: a hostile pattern is refused, not run.
const NAME_REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn query_fault(key: &str, v: &str, format: &str) -> Fault {
    let v = shown(v);
    Fault::bad_request(format!(
        "Invalid input for query parameters {key}. Value: {v}. '{v}' is not a '{format}'"
    ))
}

/// Nova's `name` filter: a regular expression searched anywhere in the name (its query
/// schema's `regex` format: one that does not compile is 400).
fn name_filter(pattern: &str) -> Result<regex::Regex, Fault> {
    regex::RegexBuilder::new(pattern)
        .size_limit(NAME_REGEX_SIZE_LIMIT)
        .dfa_size_limit(NAME_REGEX_SIZE_LIMIT)
        .build()
        .map_err(|_| query_fault("name", pattern, "regex"))
}

/// An ISO 8601 time as Nova's `date-time` query format takes it (oslo `parse_isotime`): a
/// date, optionally a time (`T` or a space; seconds and fractions optional) and a zone (`Z`
/// or ±hh[:mm]; none is UTC). Milliseconds since the epoch.
pub(super) fn parse_isotime(s: &str) -> Option<i64> {
    use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};
    let num = |t: &str| -> Option<u32> {
        (!t.is_empty() && t.len() <= 9 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next(), d.next());
    if d.next().is_some() || y.len() != 4 {
        return None;
    }
    let year = num(y)? as i32;
    let month = match mo {
        Some(m) if m.len() == 2 => num(m)? as u8,
        Some(_) => return None,
        None => 1,
    };
    let day = match da {
        Some(x) if x.len() == 2 => num(x)? as u8,
        Some(_) => return None,
        None => 1,
    };
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let (clock, offset) = match rest {
        None => ("", UtcOffset::UTC),
        Some(r) => {
            let (clock, zone) = match r.find(['Z', 'z', '+', '-']) {
                Some(i) => (&r[..i], &r[i..]),
                None => (r, ""),
            };
            let offset = match zone {
                "" | "Z" | "z" => UtcOffset::UTC,
                z => {
                    let sign: i8 = if z.starts_with('-') { -1 } else { 1 };
                    let body = &z[1..];
                    let (h, m) = match body.split_once(':') {
                        Some((h, m)) => (h, m),
                        None if body.len() == 4 => body.split_at(2),
                        None => (body, "00"),
                    };
                    if h.len() != 2 || m.len() != 2 {
                        return None;
                    }
                    UtcOffset::from_hms(sign * num(h)? as i8, sign * num(m)? as i8, 0).ok()?
                }
            };
            (clock, offset)
        }
    };
    let time = if clock.is_empty() {
        Time::MIDNIGHT
    } else {
        let (hms, frac) = match clock.split_once(['.', ',']) {
            Some((a, f)) => (a, Some(f)),
            None => (clock, None),
        };
        let mut t = hms.split(':');
        let h = t.next().filter(|x| x.len() == 2).and_then(num)?;
        let m = match t.next() {
            Some(x) if x.len() == 2 => num(x)?,
            Some(_) => return None,
            None => 0,
        };
        let sec = match t.next() {
            Some(x) if x.len() == 2 => num(x)?,
            Some(_) => return None,
            None => 0,
        };
        if t.next().is_some() {
            return None;
        }
        let nanos = match frac {
            None => 0,
            Some(f) => {
                let digits: String = f.chars().take(9).collect();
                let n = num(&digits)?;
                n * 10u32.pow(9 - digits.len() as u32)
            }
        };
        Time::from_hms_nano(h as u8, m as u8, sec as u8, nanos).ok()?
    };
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Nova<'_> {
    // -- servers ------------------------------------------------------------------------

    /// A server the caller may see, by UUID (unknown, malformed or gone → 404).
    pub(super) fn server(&self, id: &str) -> Result<Instance, Fault> {
        let uuid = self
            .api
            .engine
            .resolve(&self.p, IdKind::Uuid, &[id.to_string()])
            .map_err(|_| Fault::server_not_found(id))?[0];
        self.api
            .engine
            .instance(uuid)
            .filter(|i| i.region == region().id)
            .ok_or_else(|| Fault::server_not_found(id))
    }

    /// The caller's key pair by name (Nova: 400 "Invalid key_name provided.").
    pub(super) fn key_id(&self, name: &str) -> Result<String, Fault> {
        self.api
            .engine
            .key_pairs(&self.p)
            .into_iter()
            .find(|kp| kp.name == name && kp.account == self.p.account)
            .map(|kp| kp.id)
            .ok_or_else(|| Fault::bad_request("Invalid key_name provided."))
    }

    pub(super) fn key_names(&self) -> HashMap<String, String> {
        self.api.engine.key_pair_names(&self.p)
    }

    pub(super) async fn extra(&self, inst: &Instance) -> Extra {
        let hard_reboot = inst.state == InstanceState::Rebooting && self.hard_reboot(inst).await;
        let powered_on = matches!(
            inst.state,
            InstanceState::Terminating
                | InstanceState::Resizing
                | InstanceState::RevertingResize
                | InstanceState::SoftDeleting
                | InstanceState::Error
        )
        .then(|| self.api.engine.driver().facts(inst.uuid))
        .flatten()
        .map(|f| f.power == Power::On);
        let shelving_from = (inst.state == InstanceState::Shelving)
            .then(|| self.api.engine.driver().facts(inst.uuid))
            .flatten()
            .map(|f| f.power.observed(f.booted));
        Extra {
            lock: inst.lock.as_ref().map(|l| l.action),
            hard_reboot,
            powered_on,
            shelving_from,
        }
    }

    /// Is the reboot in progress a hard one? Known for reboots asked through Nova; for the
    /// others the operation record says (looked up once per operation).
    pub(super) async fn hard_reboot(&self, inst: &Instance) -> bool {
        let Some(rid) = inst.latest_op.as_ref().map(|o| o.request_id.clone()) else {
            return false;
        };
        if let Some(hard) = self.api.reboot_modes.lock().get(&rid) {
            return *hard;
        }
        let hard = self
            .api
            .engine
            .admin_operations_by_request(&rid)
            .await
            .unwrap_or_default()
            .iter()
            .filter(|op| op.instance == inst.uuid)
            .flat_map(|op| &op.steps)
            .any(|s| {
                matches!(
                    s,
                    Step::Reboot {
                        mode: StopMode::Hard
                    }
                )
            });
        remember_reboot(self.api, &rid, hard);
        hard
    }

    pub(super) async fn view(
        &self,
        inst: &Instance,
        keys: &HashMap<String, String>,
        show: bool,
    ) -> Value {
        let extra = self.extra(inst).await;
        let user_data = if render::shows_user_data(self.p.is_admin, self.v) {
            self.user_data(inst).await
        } else {
            None
        };
        render::server(
            inst,
            &ServerCtx {
                base: &self.base,
                version: self.v,
                admin: self.p.is_admin,
                extra,
                key_name: inst.key_ids.first().and_then(|k| keys.get(k).cloned()),
                show,
                user_data,
                host_zone: self.aggregate_zone_of(&super::hosts::host_of_zone(&inst.zone)),
                host_health: self.api.engine.host_health(inst),
                image_uuid: self.api.engine.image_uuid(&inst.image_id),
                image_properties: self
                    .v
                    .at_least(98)
                    .then(|| self.api.engine.image_record(&inst.image_id))
                    .flatten()
                    .map(|i| render::image_properties(&i)),
                scheduler_hints: inst
                    .attrs
                    .scheduler_hints
                    .as_deref()
                    .and_then(|h| serde_json::from_str(h).ok()),
            },
        )
    }

    pub(super) async fn list_servers(&self, detail: bool) -> Res {
        let q = self.req.query();
        if param(&q, "deleted").is_some_and(|d| d.eq_ignore_ascii_case("true")) {
            // Deleted servers are not kept.
            return Ok(Reply::json(200, &json!({"servers": []})));
        }
        let name = param(&q, "name").map(name_filter).transpose()?;
        let since = match param(&q, "changes-since") {
            None => None,
            Some(t) => {
                Some(parse_isotime(t).ok_or_else(|| query_fault("changes-since", t, "date-time"))?)
            }
        };
        let before = match param(&q, "changes-before").filter(|_| self.v.at_least(66)) {
            None => None,
            Some(t) => Some(
                parse_isotime(t).ok_or_else(|| query_fault("changes-before", t, "date-time"))?,
            ),
        };
        if let (Some(s), Some(b)) = (since, before)
            && b < s
        {
            return Err(Fault::bad_request(
                "The value of changes-since must be less than or equal to changes-before.",
            ));
        }
        let status = param(&q, "status").map(str::to_ascii_uppercase);
        let image =
            param(&q, "image").map(|i| self.api.engine.image(&self.p, i).ok().map(|x| x.id));
        let flavor = param(&q, "flavor").map(|f| f.rsplit('/').next().unwrap_or(f));
        let ip = param(&q, "ip");
        let tag_filters = if self.v.at_least(super::tags::MIN_MINOR) {
            super::tags::TagFilters::from_query(&q)
        } else {
            super::tags::TagFilters::default()
        };
        // `host` is one of the filters only the allow_all_filters rule (admins) may use; for
        // anyone else Nova drops it. It keeps the servers scheduled to that compute host:
        // each zone has one (`hosts.rs`); a server still building is on none.
        let host = param(&q, "host").filter(|_| {
            crate::routes::allowed(
                &self.api.nova_policy,
                self.token,
                "os_compute_api:servers:allow_all_filters",
                super::nova_target(self.token),
            )
        });
        let limit = int_param(&q, "limit")?;
        if limit.is_some_and(|l| l < 0) {
            return Err(Fault::bad_request("limit must be >= 0"));
        }
        // Nova lists the token's project; `all_tenants` (admins only: the get_all_tenants
        // rule) lists every project.
        let all_tenants = param(&q, "all_tenants").is_some_and(|v| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "off" | "no"
            )
        });
        if all_tenants {
            let rule = if detail {
                "os_compute_api:servers:detail:get_all_tenants"
            } else {
                "os_compute_api:servers:index:get_all_tenants"
            };
            if !crate::routes::allowed(
                &self.api.nova_policy,
                self.token,
                rule,
                super::nova_target(self.token),
            ) {
                return Err(Fault::new(
                    403,
                    format!("Policy doesn't allow {rule} to be performed."),
                ));
            }
        }
        // With all_tenants an admin may narrow to one project (`project_id` or `tenant_id`).
        let of_project = param(&q, "project_id")
            .or_else(|| param(&q, "tenant_id"))
            .filter(|_| all_tenants)
            .map(str::to_string);
        let lister = nubis_core::Principal {
            is_admin: self.p.is_admin && all_tenants,
            ..self.p.clone()
        };
        // Image and flavor from the indexes; the rest checked on each candidate, the walk
        // stopping one past the page.
        let mut sel = Selection::in_region(Some(region().id.to_string()));
        if let Some(m) = &image {
            sel.and(Clause::Facet(Facet::Image, m.iter().cloned().collect()));
        }
        if let Some(f) = flavor {
            sel.and(Clause::Facet(Facet::InstanceType, vec![f.to_string()]));
        }
        let marker = match param(&q, "marker") {
            None => None,
            // Not a UUID: no server has it.
            Some(m) => Some(Uuid::parse_str(m).map_err(|_| marker_not_found(m))?),
        };
        let limit = limit.map(|l| l as usize).unwrap_or(1000);
        let mut all = self
            .api
            .engine
            .select_after(
                &lister,
                &sel,
                Some(&|i: &Instance| {
                    of_project.as_deref().is_none_or(|p| {
                        i.project
                            .clone()
                            .unwrap_or_else(|| crate::ids::project_id(&i.account))
                            == p
                    }) && name.as_ref().is_none_or(|n| n.is_match(&i.name))
                        && since.is_none_or(|t| i.updated_ms() >= t)
                        && before.is_none_or(|t| i.updated_ms() <= t)
                        && image
                            .as_ref()
                            .is_none_or(|m| m.as_deref() == Some(i.image_id.as_str()))
                        && flavor.is_none_or(|f| f == i.instance_type)
                        && ip.is_none_or(|a| i.private_ip.contains(a))
                        && tag_filters.matches(i)
                        && host.is_none_or(|h| {
                            h == super::hosts::host_of_zone(&i.zone)
                                && crate::state::nova_state(i.state, Extra::default()).vm_state
                                    != "building"
                        })
                        && status.as_deref().is_none_or(|s| {
                            let extra = Extra {
                                lock: i.lock.as_ref().map(|l| l.action),
                                ..Extra::default()
                            };
                            let st = crate::state::nova_state(i.state, extra).status;
                            s == st || (s == "HARD_REBOOT" && st == "REBOOT")
                        })
                }),
                marker,
                limit.saturating_add(1),
            )
            .ok_or_else(|| marker_not_found(param(&q, "marker").unwrap_or_default()))?;
        let cut = all.len() > limit;
        all.truncate(limit);
        let keys = self.key_names();
        let mut servers = Vec::with_capacity(all.len());
        for inst in &all {
            servers.push(if detail {
                self.view(inst, &keys, false).await
            } else {
                render::server_brief(inst, &self.base)
            });
        }
        let path = if detail { "servers/detail" } else { "servers" };
        let next = all.last().filter(|_| cut).map(|i| i.uuid.to_string());
        listing(&self.base, "servers", path, servers, limit, next)
    }

    pub(super) async fn show_server(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        let keys = self.key_names();
        Ok(Reply::json(
            200,
            &json!({"server": self.view(&inst, &keys, true).await}),
        ))
    }

    pub(super) async fn submit(&self, inst: &Instance, cmd: Command) -> Result<(), Fault> {
        self.api
            .engine
            .submit(&self.p, self.request_id, &[inst.uuid], cmd, false)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))
    }

    /// Nova deletes a server in any state (an action in flight is superseded; a server being
    /// deleted is left to finish); a server locked by its owner only by an admin.
    pub(super) async fn delete_server(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        // With a reclaim interval Nova soft-deletes (core falls back to a delete where the
        // state does not allow it, as Nova does): docs/deferred-delete.md.
        let cmd = if self.api.deferred_delete {
            Command::SoftDelete {
                admin: self.admin_role,
            }
        } else {
            Command::Delete {
                admin: self.admin_role,
            }
        };
        self.submit(&inst, cmd).await?;
        Ok(Reply::empty(204))
    }

    pub(super) async fn update_server(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        let body = json_body(self.req.body)?;
        let s = body
            .get("server")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'server' is a required property"))?;
        // Nova's update schemas: 2.1, 2.19 (description), 2.90 (hostname).
        let mut allowed = vec!["name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"];
        if self.v.at_least(19) {
            allowed.push("description");
        }
        if self.v.at_least(90) {
            allowed.push("hostname");
        }
        check_keys(s, &allowed)?;
        let edits = self.server_edits(s)?;
        self.apply_edits(inst.uuid, edits)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        let now = self.server(id)?;
        Ok(Reply::json(
            200,
            &json!({"server": self.changed_view(&now, false).await}),
        ))
    }

    /// The attributes a server update and a rebuild both take, read and checked in Nova's
    /// order.
    pub(super) fn server_edits(&self, obj: &Map<String, Value>) -> Result<ServerEdits, Fault> {
        let name = opt_str(obj, "name")?.map(str::to_string);
        check_field(&SERVER_NAME, name.as_deref())?;
        let description = opt_str(obj, "description")?.map(str::to_string);
        check_field(&SERVER_DESCRIPTION, description.as_deref())?;
        Ok(ServerEdits {
            name,
            description,
            hostname: self.hostname_field(obj)?,
            access_ipv4: access_ip(obj, "accessIPv4")?,
            access_ipv6: access_ip(obj, "accessIPv6")?,
            disk_config: super::disk_config(obj)?,
        })
    }

    /// Writes [`ServerEdits`] in one commit; an absent attribute stays as it is.
    pub(super) async fn apply_edits(&self, id: Uuid, e: ServerEdits) -> Result<(), DomainError> {
        let ServerEdits {
            name,
            description,
            hostname,
            access_ipv4,
            access_ipv6,
            disk_config,
        } = e;
        self.api
            .engine
            .modify_with_attrs(
                &self.p,
                id,
                AttrChange {
                    name,
                    description,
                    host_name: hostname,
                },
                |a| {
                    if let Some(v4) = access_ipv4 {
                        a.access_ipv4 = Some(v4);
                    }
                    if let Some(v6) = access_ipv6 {
                        a.access_ipv6 = Some(v6);
                    }
                    if let Some(auto) = disk_config {
                        a.auto_disk_config = auto;
                    }
                },
            )
            .await
    }

    /// `hostname` (2.90+): a label of 2-63 characters; from 2.94 a dotted name up to 255.
    pub(super) fn hostname_field(&self, obj: &Map<String, Value>) -> Result<Option<String>, Fault> {
        let Some(h) = opt_str(obj, "hostname")? else {
            return Ok(None);
        };
        let label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let ok = if self.v.at_least(94) {
            h.len() <= 255 && h.split('.').all(label)
        } else {
            h.len() >= 2 && label(h)
        };
        if !ok {
            return Err(invalid_value("hostname", h));
        }
        Ok(Some(h.to_string()))
    }

    /// The server as PUT and rebuild answer: before 2.75 the basic view (with what 2.9, 2.19,
    /// 2.26, 2.63, 2.71 and 2.73 add; rebuild also 2.54's key_name and 2.57's user_data);
    /// from 2.75 the full show view (rebuild: `user_data` instead of the admin attribute).
    pub(super) async fn changed_view(&self, inst: &Instance, rebuild: bool) -> Value {
        let keys = self.key_names();
        let full = self.view(inst, &keys, true).await;
        let user_data = if rebuild && self.v.at_least(57) {
            self.user_data(inst).await
        } else {
            None
        };
        render::changed_server(full, user_data.as_deref(), self.v, rebuild)
    }

    /// The stored user data (None: none given, or the server is gone meanwhile).
    pub(super) async fn user_data(&self, inst: &Instance) -> Option<String> {
        self.api
            .engine
            .user_data(&self.p, inst.uuid)
            .await
            .ok()
            .flatten()
    }
}

/// Nova's answer to a listing marker that is none of the listed servers.
fn marker_not_found(marker: &str) -> Fault {
    Fault::bad_request(format!("marker [{marker}] not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn name_filters() {
        let m = |p: &str, n: &str| name_filter(p).unwrap().is_match(n);
        assert!(m("web", "my-web-1"));
        assert!(m("^my", "my-web-1"));
        assert!(!m("^web", "my-web-1"));
        assert!(m("^my-web-1$", "my-web-1"));
        assert!(m("web-[0-9]+$", "my-web-12"));
        assert!(!m("^my-web-[a-z]$", "my-web-1"));
        assert_eq!(name_filter("(").unwrap_err().status, 400);
        // A pattern whose automaton is huge is refused, not run.
        assert!(name_filter("(\\w{1000}){1000}").is_err());
    }

    #[test]
    pub(super) fn isotimes() {
        let t = |s: &str| parse_isotime(s);
        let base = t("2024-03-01T12:30:00Z").unwrap();
        assert_eq!(base, 1_709_296_200_000);
        assert_eq!(t("2024-03-01T12:30:00"), Some(base));
        assert_eq!(t("2024-03-01 12:30:00.000000"), Some(base));
        assert_eq!(t("2024-03-01T14:30:00+02:00"), Some(base));
        assert_eq!(t("2024-03-01T12:30Z"), Some(base));
        assert_eq!(t("2024-03-01T12:30:00.5Z"), Some(base + 500));
        assert_eq!(t("2024-03-01"), Some(base - 45_000_000));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-02-30",
            "2024-03-01T25:00",
            "24-03-01",
            "2024-03-01T12:30:00+2",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
