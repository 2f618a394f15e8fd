//! Nova v2.1 under `/compute`: versions, servers and their actions, flavors, key pairs, and
//! the small supporting endpoints clients call (availability zones, limits).

use crate::errors::{Fault, map};
use crate::microversion::{self, Version};
use crate::render::{self, ServerCtx};
use crate::state::Extra;
use crate::{OpenStackApi, RawRequest, Reply, ids};
use nubis_core::limits::{self, Constraint, Rule};
use nubis_core::{
    DomainError, Instance, InstanceState, Principal, ResourceKind, Step, StopMode, WhenRunning,
    catalog, password, password::PasswordRule,
};
use nubis_driver::Power;
use nubis_engine::{Command, CreateSpec, IdKind};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;

mod images;
mod metadata;

type Res = Result<Reply, Fault>;

fn version_entry(base: &str) -> Value {
    json!({
        "id": "v2.1",
        "status": "CURRENT",
        "version": Version::MAX.to_string(),
        "min_version": Version::MIN.to_string(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{base}/compute/v2.1/")}],
    })
}

/// Nova's default `max_request_body_size`.
const MAX_BODY: usize = 114_688;
/// Writes per second per account and resource (`POST servers`, `DELETE os-keypairs`, …).
const WRITE_LIMIT_PER_SECOND: u32 = 20;

fn fault(f: Fault) -> Reply {
    Reply::json(f.status, &f.body())
}

fn with_version(mut r: Reply, v: Version) -> Reply {
    r.headers
        .push(("openstack-api-version".into(), format!("compute {v}")));
    r.headers
        .push(("x-openstack-nova-api-version".into(), v.to_string()));
    r.headers.push((
        "vary".into(),
        "OpenStack-API-Version, X-OpenStack-Nova-API-Version".into(),
    ));
    r
}

pub(crate) async fn handle(
    api: &OpenStackApi,
    req: &RawRequest<'_>,
    rest: &str,
    request_id: &str,
) -> Reply {
    let base = api.base_url();
    let get = matches!(req.method, "GET" | "HEAD");
    let path = rest.trim_end_matches('/');
    if path.is_empty() {
        if !get {
            return fault(Fault::new(405, "The method is not allowed."));
        }
        let legacy = json!({"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
            "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": format!("{base}/compute/v2/")}]});
        return Reply::json(200, &json!({"versions": [legacy, version_entry(&base)]}))
            .op("compute.versions");
    }
    let Some(after) = path.strip_prefix("/v2.1") else {
        return fault(Fault::not_found("The resource could not be found."));
    };
    if after.is_empty() {
        if !get {
            return fault(Fault::new(405, "The method is not allowed."));
        }
        let mut v = version_entry(&base);
        v["media-types"] = json!([{"base": "application/json",
            "type": "application/vnd.openstack.compute+json;version=2.1"}]);
        v["links"] = json!([
            {"rel": "self", "href": format!("{base}/compute/v2.1/")},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ]);
        return Reply::json(200, &json!({"version": v})).op("compute.version");
    }
    let token = req.header("x-auth-token").unwrap_or_default();
    let Some(token) = api.token(token) else {
        return fault(Fault::new(
            401,
            "The request you have made requires authentication.",
        ))
        .header(
            "www-authenticate",
            format!("Keystone uri=\"{base}/identity\""),
        );
    };
    let v = match microversion::requested(|n| req.header(n)) {
        Ok(v) => v,
        Err(f) => return with_version(fault(f), Version::MIN),
    };
    let nova = Nova {
        api,
        req,
        base,
        v,
        p: api.admin_principal(),
        admin_role: token.is_admin(),
        request_id,
    };
    let Some(mut segs) = crate::path_segments(after) else {
        return with_version(
            fault(Fault::not_found("The resource could not be found.")),
            v,
        );
    };
    // The old `/v2.1/{project_id}/...` form.
    if segs.first() == Some(&ids::project_id(&token.account).as_str()) {
        segs.remove(0);
    }
    // Nova refuses bodies over max_request_body_size (112 KiB) before reading them.
    if req.body.len() > MAX_BODY {
        return with_version(fault(Fault::new(413, "Request is too large.")), v);
    }
    // Nova's default policy: readers may look, members and admins may change.
    if !get && !token.can_write() {
        let target = segs.iter().take(2).copied().collect::<Vec<_>>().join(":");
        return with_version(
            fault(Fault::new(
                403,
                format!("Policy doesn't allow os_compute_api:{target} to be performed."),
            )),
            v,
        );
    }
    // Writes are rate-limited per account and resource, counted before any work.
    if !get {
        let key = format!("{} {}", req.method, segs.first().copied().unwrap_or(""));
        if api
            .limiter
            .check(&token.account, &key, WRITE_LIMIT_PER_SECOND)
            .is_err()
        {
            return with_version(fault(Fault::new(429, "This request was rate-limited.")), v)
                .header("retry-after", "1".to_string());
        }
    }
    let (op, result) = nova.route(&segs).await;
    let reply = match result {
        Ok(r) => r,
        Err(f) => fault(f),
    };
    with_version(reply.op(op), v)
}

struct Nova<'a> {
    api: &'a OpenStackApi,
    req: &'a RawRequest<'a>,
    base: String,
    v: Version,
    p: Principal,
    /// The token carries the `admin` role (Nova's `context.is_admin`).
    admin_role: bool,
    request_id: &'a str,
}

fn bad_method() -> Fault {
    Fault::new(405, "The method is not allowed for the requested URL.")
}

/// Deepest request body accepted (Nova's deepest, `block_device_mapping_v2` in a server,
/// nests 4 levels); checked in one pass before serde_json (limit 128) parses.
pub(crate) const MAX_JSON_DEPTH: usize = 32;

fn json_body(body: &[u8]) -> Result<Value, Fault> {
    nubis_auth::bounds::check_json_depth(body, MAX_JSON_DEPTH).map_err(|_| Fault::malformed())?;
    serde_json::from_slice(body).map_err(|_| Fault::malformed())
}

// -- documented limits (Nova's request schemas) ------------------------------------------
//
// One row per parameter, checked by nubis_core::limits; docs/parameter-limits.md mirrors it.
// Nova answers every schema violation with 400 badRequest; metadata beyond the quota is 403.

/// Nova's `name` format: no leading or trailing whitespace (printable is checked for every row).
fn nova_name(s: &str) -> bool {
    s.trim() == s
}

const fn nova_text(
    param: &'static str,
    min: usize,
    max: usize,
    shape: Option<fn(&str) -> bool>,
) -> Constraint {
    Constraint {
        param,
        rule: Rule::Text { min, max, shape },
        code: "badRequest",
        code_high: None,
        code_low: None,
        status: 400,
    }
}

const SERVER_NAME: Constraint = nova_text("name", 1, 255, Some(nova_name));
const SERVER_DESCRIPTION: Constraint = nova_text("description", 0, 255, None);
/// `lock` action's `locked_reason` (2.73+).
const LOCKED_REASON: Constraint = nova_text("locked_reason", 0, 255, None);
const METADATA_KEY: Constraint = nova_text("metadata", 1, 255, None);
const METADATA_VALUE: Constraint = nova_text("metadata", 0, 255, None);
/// The default `metadata_items` quota.
const METADATA_ITEMS: Constraint = Constraint {
    param: "metadata",
    rule: Rule::Count { max: 128 },
    code: "forbidden",
    code_high: None,
    code_low: None,
    status: 403,
};

#[allow(dead_code)] // walked by the table tests; docs/parameter-limits.md mirrors it
const LIMITS: &[Constraint] = &[
    SERVER_NAME,
    SERVER_DESCRIPTION,
    LOCKED_REASON,
    METADATA_KEY,
    METADATA_VALUE,
    METADATA_ITEMS,
];

/// Nova's schema error for a text field.
fn check_field(c: &Constraint, value: Option<&str>) -> Result<(), Fault> {
    match value {
        Some(v) if limits::check_text(c, v).is_err() => {
            let shown: String = v
                .chars()
                .take(64)
                .filter(|c| limits::printable(*c))
                .collect();
            Err(Fault::new(
                c.status,
                format!(
                    "Invalid input for field/attribute {}. Value: {shown}.",
                    c.param
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn unexpected(key: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute. Additional properties are not allowed ('{key}' was unexpected)"
    ))
}

/// The value as a schema error shows it: at most 64 printable characters.
fn shown(v: &str) -> String {
    v.chars()
        .take(64)
        .filter(|c| limits::printable(*c))
        .collect()
}

fn invalid_value(key: &str, v: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {key}. Value: {}.",
        shown(v)
    ))
}

/// `accessIPv4` / `accessIPv6` (Nova's `ipv4` / `ipv6` formats), in canonical form.
fn access_ip(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Fault> {
    let format = if key == "accessIPv6" { "ipv6" } else { "ipv4" };
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let parsed = if format == "ipv6" {
                s.parse::<std::net::Ipv6Addr>().map(|a| a.to_string()).ok()
            } else {
                s.parse::<std::net::Ipv4Addr>().map(|a| a.to_string()).ok()
            };
            parsed.map(Some).ok_or_else(|| {
                let v = shown(s);
                Fault::bad_request(format!(
                    "Invalid input for field/attribute {key}. Value: {v}. '{v}' is not a '{format}'"
                ))
            })
        }
        Some(other) => {
            let v = shown(&other.to_string());
            Err(Fault::bad_request(format!(
                "Invalid input for field/attribute {key}. Value: {v}. {v} is not of type 'string'"
            )))
        }
    }
}

/// `user_data` (base64, at most 65535 characters; null clears it). Outer None: not given.
fn user_data_field(obj: &Map<String, Value>) -> Result<Option<Option<String>>, Fault> {
    use base64::Engine as _;
    match obj.get("user_data") {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s))
            if s.len() <= 65535
                && base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .is_ok() =>
        {
            Ok(Some(Some(s.clone())))
        }
        Some(other) => Err(invalid_value(
            "user_data",
            other.as_str().unwrap_or(&other.to_string()),
        )),
    }
}

fn check_keys(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), Fault> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(unexpected(k)),
        None => Ok(()),
    }
}

fn opt_str<'v>(obj: &'v Map<String, Value>, key: &str) -> Result<Option<&'v str>, Fault> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {key}. Value is not a string."
        ))),
    }
}

/// The region Nova serves (its OpenStack name is RegionOne by default).
fn region() -> &'static catalog::Region {
    &catalog::REGIONS[0]
}

/// A password that every OS's policy accepts (Nova generates 12 alphanumerics; ours is
/// longer so Windows' 12-character minimum is met too).
fn generate_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    loop {
        let pw: String = (0..16)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect();
        if password::validate(
            &pw,
            nubis_core::OsFamily::Windows,
            &["Administrator", "root"],
        )
        .is_ok()
        {
            return pw;
        }
    }
}

/// Nova hostnames come from the display name: lower-case letters, digits and hyphens.
fn hostname_of(name: &str) -> String {
    let mut h: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    h = h.trim_matches('-').chars().take(63).collect();
    if h.is_empty() { "server".into() } else { h }
}

fn int_param(q: &[(String, String)], key: &str) -> Result<Option<i64>, Fault> {
    match q.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) => v.parse::<i64>().map(Some).map_err(|_| {
            Fault::bad_request(format!(
                "Invalid input for query parameters {key}. Value: {v}. '{v}' is not an integer"
            ))
        }),
    }
}

fn param<'q>(q: &'q [(String, String)], key: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Compiled size cap of a `name` filter: a hostile pattern is refused, not run.
const NAME_REGEX_SIZE_LIMIT: usize = 1 << 20;

fn query_fault(key: &str, v: &str, format: &str) -> Fault {
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
fn parse_isotime(s: &str) -> Option<i64> {
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
    async fn route(&self, segs: &[&str]) -> (String, Res) {
        let m = self.req.method;
        let get = m == "GET" || m == "HEAD";
        match segs {
            ["servers"] => match m {
                _ if get => ("server.list".into(), self.list_servers(false).await),
                "POST" => ("server.create".into(), self.create_server().await),
                _ => ("server".into(), Err(bad_method())),
            },
            ["servers", "detail"] if get => ("server.list".into(), self.list_servers(true).await),
            ["servers", id] => match m {
                _ if get => ("server.show".into(), self.show_server(id).await),
                "DELETE" => ("server.delete".into(), self.delete_server(id).await),
                "PUT" => ("server.update".into(), self.update_server(id).await),
                _ => ("server".into(), Err(bad_method())),
            },
            ["servers", id, "action"] => {
                if m != "POST" {
                    return ("server.action".into(), Err(bad_method()));
                }
                let mut name = String::from("server.action");
                let r = self.action(id, &mut name).await;
                (name, r)
            }
            ["flavors"] if get => ("flavor.list".into(), self.list_flavors(false)),
            ["flavors", "detail"] if get => ("flavor.list".into(), self.list_flavors(true)),
            ["flavors", id] if get => ("flavor.show".into(), self.show_flavor(id)),
            ["flavors", id, "os-extra_specs"] if get => (
                "flavor.extra_specs".into(),
                self.show_flavor(id)
                    .map(|_| Reply::json(200, &json!({"extra_specs": {}}))),
            ),
            ["os-keypairs"] => match m {
                _ if get => ("keypair.list".into(), self.list_keypairs()),
                "POST" => ("keypair.create".into(), self.create_keypair().await),
                _ => ("keypair".into(), Err(bad_method())),
            },
            ["os-keypairs", name] => match m {
                _ if get => ("keypair.show".into(), self.show_keypair(name)),
                "DELETE" => ("keypair.delete".into(), self.delete_keypair(name).await),
                _ => ("keypair".into(), Err(bad_method())),
            },
            ["servers", id, "metadata"] => self.server_metadata(id, None).await,
            ["servers", id, "metadata", key] => self.server_metadata(id, Some(key)).await,
            ["images", ..] => self.images(segs),
            ["os-availability-zone"] if get => ("availability_zone.list".into(), Ok(zones())),
            ["limits"] if get => ("limits".into(), Ok(self.limits())),
            // A route that exists answers 405 to a method it lacks; any other path is 404.
            ["flavors"]
            | ["flavors", _]
            | ["flavors", _, "os-extra_specs"]
            | ["os-availability-zone"]
            | ["limits"] => ("unknown".into(), Err(bad_method())),
            _ => (
                "unknown".into(),
                Err(Fault::not_found("The resource could not be found.")),
            ),
        }
    }

    // -- servers ------------------------------------------------------------------------

    /// A server the caller may see, by UUID (unknown, malformed or gone → 404).
    fn server(&self, id: &str) -> Result<Instance, Fault> {
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
    fn key_id(&self, name: &str) -> Result<String, Fault> {
        self.api
            .engine
            .key_pairs(&self.p)
            .into_iter()
            .find(|(kp, _)| kp.name == name && kp.account == self.p.account)
            .map(|(kp, _)| kp.id)
            .ok_or_else(|| Fault::bad_request("Invalid key_name provided."))
    }

    fn key_names(&self) -> HashMap<String, String> {
        self.api.engine.key_pair_names(&self.p)
    }

    async fn extra(&self, inst: &Instance) -> Extra {
        let hard_reboot = inst.state == InstanceState::Rebooting && self.hard_reboot(inst).await;
        let powered_on = (inst.state == InstanceState::Terminating)
            .then(|| self.api.engine.driver().facts(inst.uuid))
            .flatten()
            .map(|f| f.power == Power::On);
        Extra {
            lock: inst.lock.as_ref().map(|l| l.action),
            hard_reboot,
            powered_on,
        }
    }

    /// Is the reboot in progress a hard one? Known for reboots asked through Nova; for the
    /// others the operation record says (looked up once per operation).
    async fn hard_reboot(&self, inst: &Instance) -> bool {
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

    async fn view(&self, inst: &Instance, keys: &HashMap<String, String>, show: bool) -> Value {
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
            },
        )
    }

    async fn list_servers(&self, detail: bool) -> Res {
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
        let image = param(&q, "image").map(|i| render::image_by_ref(i).map(|x| x.id));
        let flavor = param(&q, "flavor").map(|f| f.rsplit('/').next().unwrap_or(f));
        let ip = param(&q, "ip");
        let limit = int_param(&q, "limit")?;
        if limit.is_some_and(|l| l < 0) {
            return Err(Fault::bad_request("limit must be >= 0"));
        }
        let (_, mut all) = self.api.engine.query(
            &self.p,
            |i| {
                i.region == region().id
                    && name.as_ref().is_none_or(|n| n.is_match(&i.name))
                    && since.is_none_or(|t| i.updated_ms() >= t)
                    && before.is_none_or(|t| i.updated_ms() <= t)
                    && image.is_none_or(|m| m == Some(i.image_id.as_str()))
                    && flavor.is_none_or(|f| f == i.instance_type)
                    && ip.is_none_or(|a| i.private_ip.contains(a))
                    && status.as_deref().is_none_or(|s| {
                        let extra = Extra {
                            lock: i.lock.as_ref().map(|l| l.action),
                            ..Extra::default()
                        };
                        let st = crate::state::nova_state(i.state, extra).status;
                        s == st || (s == "HARD_REBOOT" && st == "REBOOT")
                    })
            },
            0,
            usize::MAX,
        );
        if let Some(marker) = param(&q, "marker") {
            match all.iter().position(|i| i.uuid.to_string() == marker) {
                Some(at) => {
                    all.drain(..=at);
                }
                None => {
                    return Err(Fault::bad_request(format!("marker [{marker}] not found")));
                }
            }
        }
        let limit = limit.map(|l| l as usize).unwrap_or(1000);
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
        let mut body = json!({ "servers": servers });
        if cut && let Some(last) = all.last() {
            let path = if detail { "servers/detail" } else { "servers" };
            body["servers_links"] = json!([{"rel": "next", "href": format!(
                "{}/compute/v2.1/{path}?limit={limit}&marker={}", self.base, last.uuid)}]);
        }
        Ok(Reply::json(200, &body))
    }

    async fn show_server(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        let keys = self.key_names();
        Ok(Reply::json(
            200,
            &json!({"server": self.view(&inst, &keys, true).await}),
        ))
    }

    async fn create_server(&self) -> Res {
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(
            top,
            &["server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"],
        )?;
        let s = top
            .get("server")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'server' is a required property"))?;
        check_keys(
            s,
            &[
                "name",
                "imageRef",
                "flavorRef",
                "adminPass",
                "key_name",
                "metadata",
                "availability_zone",
                "user_data",
                "min_count",
                "max_count",
                "return_reservation_id",
                "networks",
                "block_device_mapping",
                "block_device_mapping_v2",
                "security_groups",
                "description",
                "tags",
                "config_drive",
                "accessIPv4",
                "accessIPv6",
                "OS-DCF:diskConfig",
                "personality",
                "host",
                "hypervisor_hostname",
                "trusted_image_certificates",
                "hostname",
            ],
        )?;
        let name = opt_str(s, "name")?
            .ok_or_else(|| Fault::bad_request("'name' is a required property"))?;
        check_field(&SERVER_NAME, Some(name))?;
        // Flavor: an id or a URL ending in one.
        let flavor = match s.get("flavorRef") {
            Some(Value::String(f)) => f
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(Fault::bad_request("'flavorRef' is a required property")),
        };
        let flavor_type = catalog::instance_type(&flavor)
            .ok_or_else(|| Fault::bad_request(format!("Flavor {flavor} could not be found.")))?;
        // Image: imageRef, or the image of a boot_index 0 image mapping (the CLI sends both).
        let mut image_ref = opt_str(s, "imageRef")?.unwrap_or("").to_string();
        if image_ref.is_empty()
            && let Some(bdm) = s.get("block_device_mapping_v2").and_then(Value::as_array)
        {
            image_ref = bdm
                .iter()
                .find(|d| {
                    d.get("source_type").and_then(Value::as_str) == Some("image")
                        && d.get("boot_index")
                            .is_some_and(|b| b == &json!(0) || b == &json!("0"))
                })
                .and_then(|d| d.get("uuid").and_then(Value::as_str))
                .unwrap_or("")
                .to_string();
        }
        if image_ref.is_empty() {
            return Err(Fault::bad_request(
                "Booting from a volume is not supported: give imageRef",
            ));
        }
        let image = render::image_by_ref(&image_ref)
            .filter(|i| i.public)
            .ok_or_else(|| Fault::bad_request("Can not find requested image"))?;
        // Networks: there is one built-in network and no Neutron.
        match s.get("networks") {
            None if self.v.at_least(37) => {
                return Err(Fault::bad_request("'networks' is a required property"));
            }
            None | Some(Value::Null) => {}
            Some(Value::String(n)) if n == "auto" || n == "none" => {}
            Some(Value::Array(list)) => {
                for n in list {
                    if let Some(port) = n.get("port").and_then(Value::as_str) {
                        return Err(Fault::bad_request(format!(
                            "Port {port} could not be found."
                        )));
                    }
                    match n.get("uuid").and_then(Value::as_str) {
                        Some(u) if u == ids::network_uuid().to_string() => {}
                        Some(u) => {
                            return Err(Fault::bad_request(format!(
                                "Network {u} could not be found."
                            )));
                        }
                        None => {
                            return Err(Fault::bad_request(
                                "Bad networks format: network uuid is not in proper format",
                            ));
                        }
                    }
                }
            }
            Some(_) => return Err(Fault::bad_request("Bad networks format")),
        }
        let zone = match opt_str(s, "availability_zone")? {
            None => region()
                .zones
                .iter()
                .find(|z| !z.edge)
                .unwrap_or(&region().zones[0]),
            Some(az) => {
                let az = az.split(':').next().unwrap_or(az);
                region()
                    .zones
                    .iter()
                    .find(|z| z.openstack == az)
                    .ok_or_else(|| {
                        Fault::bad_request("The requested availability zone is not available")
                    })?
            }
        };
        let key_ids = match opt_str(s, "key_name")? {
            None => Vec::new(),
            Some(k) => vec![self.key_id(k)?],
        };
        let metadata = match s.get("metadata") {
            None => Vec::new(),
            Some(m) => metadata::parse("metadata", m)?,
        };
        metadata::check_quota(metadata.len())?;
        let count_of = |key: &str| -> Result<Option<u32>, Fault> {
            match s.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
                    .filter(|n| (1..=u64::from(limits::batch::LAUNCH)).contains(n))
                    .map(|n| Some(n as u32))
                    .ok_or_else(|| {
                        Fault::bad_request(format!(
                            "Invalid input for field/attribute {key}. Value: {v}."
                        ))
                    }),
            }
        };
        let min = count_of("min_count")?.unwrap_or(1);
        let max = count_of("max_count")?.unwrap_or(min);
        if max < min {
            return Err(Fault::bad_request("min_count must be <= max_count"));
        }
        let description = if self.v.at_least(19) {
            let d = opt_str(s, "description")?;
            check_field(&SERVER_DESCRIPTION, d)?;
            d.map(str::to_string)
        } else if s.contains_key("description") {
            return Err(unexpected("description"));
        } else {
            None
        };
        let access_ipv4 = access_ip(s, "accessIPv4")?;
        let access_ipv6 = access_ip(s, "accessIPv6")?;
        let user_data = user_data_field(s)?.flatten();
        let admin_pass = match opt_str(s, "adminPass")? {
            Some(p) => p.to_string(),
            None => generate_password(),
        };
        let spec = CreateSpec {
            region: region().id.to_string(),
            zone: zone.id.to_string(),
            instance_type: flavor_type.name.to_string(),
            image_id: image.id.to_string(),
            count: max,
            name: Some(name.to_string()),
            host_name: Some(hostname_of(name)),
            password: Some(admin_pass.clone()),
            key_ids,
            client_token: None,
            system_disk_gib: render::ROOT_DISK_GIB,
            system_disk_type: "CLOUD_PREMIUM".into(),
            data_disks: Vec::new(),
            project_id: 0,
            charge_type: "POSTPAID_BY_HOUR".into(),
            security_group_ids: Vec::new(),
            tags: metadata,
            description,
            start: true,
            attrs: nubis_core::UserAttrs {
                access_ipv4,
                access_ipv6,
            },
            rule: PasswordRule::Free,
            user_data,
            internet_max_bandwidth_out: 0,
        };
        let created = self
            .api
            .engine
            .create(&self.p, self.request_id, spec, false)
            .await
            .map_err(|e| map(e, None))?;
        let first = created
            .first()
            .ok_or_else(|| map(DomainError::Internal("nothing created".into()), None))?;
        if s.get("return_reservation_id") == Some(&json!(true)) {
            return Ok(Reply::json(
                202,
                &json!({"reservation_id": format!("r-{}", &first.uuid.simple().to_string()[..8])}),
            ));
        }
        let links = render::links(&self.base, &format!("servers/{}", first.uuid));
        let location = links[0]["href"].as_str().unwrap_or_default().to_string();
        Ok(Reply::json(
            202,
            &json!({"server": {
                "id": first.uuid,
                "links": links,
                "OS-DCF:diskConfig": "MANUAL",
                "security_groups": [{"name": "default"}],
                "adminPass": admin_pass,
            }}),
        )
        .header("location", location))
    }

    async fn submit(&self, inst: &Instance, cmd: Command) -> Result<(), Fault> {
        self.api
            .engine
            .submit(&self.p, self.request_id, &[inst.uuid], cmd, false)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))
    }

    /// Nova deletes a server in any state (an action in flight is superseded; a server being
    /// deleted is left to finish); a server locked by its owner only by an admin.
    async fn delete_server(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        self.submit(
            &inst,
            Command::Delete {
                admin: self.admin_role,
            },
        )
        .await?;
        Ok(Reply::empty(204))
    }

    async fn update_server(&self, id: &str) -> Res {
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
        let name = opt_str(s, "name")?.map(str::to_string);
        check_field(&SERVER_NAME, name.as_deref())?;
        let description = opt_str(s, "description")?.map(str::to_string);
        check_field(&SERVER_DESCRIPTION, description.as_deref())?;
        let hostname = self.hostname_field(s)?;
        let v4 = access_ip(s, "accessIPv4")?;
        let v6 = access_ip(s, "accessIPv6")?;
        self.api
            .engine
            .modify_with_attrs(&self.p, inst.uuid, name, description, hostname, |a| {
                if let Some(v4) = v4 {
                    a.access_ipv4 = Some(v4);
                }
                if let Some(v6) = v6 {
                    a.access_ipv6 = Some(v6);
                }
            })
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        let now = self.server(id)?;
        Ok(Reply::json(
            200,
            &json!({"server": self.changed_view(&now, false).await}),
        ))
    }

    /// `hostname` (2.90+): a label of 2-63 characters; from 2.94 a dotted name up to 255.
    fn hostname_field(&self, obj: &Map<String, Value>) -> Result<Option<String>, Fault> {
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
    async fn changed_view(&self, inst: &Instance, rebuild: bool) -> Value {
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
    async fn user_data(&self, inst: &Instance) -> Option<String> {
        self.api
            .engine
            .user_data(&self.p, inst.uuid)
            .await
            .ok()
            .flatten()
    }

    // -- actions ------------------------------------------------------------------------

    async fn action(&self, id: &str, op: &mut String) -> Res {
        let body = json_body(self.req.body)?;
        let obj = body.as_object().ok_or_else(Fault::malformed)?;
        let (name, arg) = match obj.iter().next() {
            Some(kv) if obj.len() == 1 => kv,
            _ => return Err(Fault::malformed()),
        };
        *op = format!("server.action.{name}");
        // 404 before any check of the body's content.
        let inst = self.server(id)?;
        let empty_ok = |arg: &Value| -> Result<(), Fault> {
            match arg {
                Value::Null => Ok(()),
                Value::Object(m) if m.is_empty() => Ok(()),
                Value::Object(m) => Err(unexpected(m.keys().next().map_or("", |k| k))),
                _ => Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute {name}."
                ))),
            }
        };
        match name.as_str() {
            "reboot" => {
                let m = arg.as_object().ok_or_else(|| {
                    Fault::bad_request("Invalid input for field/attribute reboot.")
                })?;
                check_keys(m, &["type"])?;
                let hard = match opt_str(m, "type")? {
                    Some(t) if t.eq_ignore_ascii_case("hard") => true,
                    Some(t) if t.eq_ignore_ascii_case("soft") => false,
                    Some(t) => {
                        return Err(Fault::bad_request(format!(
                            "Invalid input for field/attribute type. Value: {t}. '{t}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
                        )));
                    }
                    None => return Err(Fault::bad_request("'type' is a required property")),
                };
                // A soft reboot falls back to a hard one when the guest ignores ACPI (as
                // libvirt does after its timeout).
                let mode = if hard {
                    StopMode::Hard
                } else {
                    StopMode::SoftFirst
                };
                remember_reboot(self.api, self.request_id, hard);
                self.submit(&inst, Command::Reboot { mode }).await?;
                Ok(Reply::empty(202))
            }
            "os-start" => {
                empty_ok(arg)?;
                self.submit(&inst, Command::Start).await?;
                Ok(Reply::empty(202))
            }
            "os-stop" => {
                empty_ok(arg)?;
                self.submit(
                    &inst,
                    Command::Stop {
                        mode: StopMode::SoftFirst,
                        stop_charging: false,
                    },
                )
                .await?;
                Ok(Reply::empty(202))
            }
            "changePassword" => {
                let m = arg.as_object().ok_or_else(|| {
                    Fault::bad_request("Invalid input for field/attribute changePassword.")
                })?;
                check_keys(m, &["adminPass"])?;
                let pw = opt_str(m, "adminPass")?
                    .ok_or_else(|| Fault::bad_request("'adminPass' is a required property"))?;
                // Set live, without a restart (the guest agent's way).
                self.submit(
                    &inst,
                    Command::ResetPassword {
                        user: None,
                        password: pw.to_string(),
                        when_running: WhenRunning::Live,
                        rule: PasswordRule::Free,
                    },
                )
                .await?;
                Ok(Reply::empty(202))
            }
            "rescue" => {
                let mut image_id = None;
                let given = match arg {
                    Value::Null => None,
                    // The seed's form; it means "the server's own image".
                    Value::String(s) if s == "none" => None,
                    Value::Object(m) => {
                        check_keys(m, &["adminPass", "rescue_image_ref"])?;
                        if let Some(r) = opt_str(m, "rescue_image_ref")? {
                            if Uuid::parse_str(r).is_err() {
                                return Err(Fault::bad_request(format!(
                                    "Invalid input for field/attribute rescue_image_ref. Value: {r}. '{r}' is not a 'uuid'"
                                )));
                            }
                            let Some(image) = render::image_by_ref(r) else {
                                return Err(Fault::bad_request(format!(
                                    "Requested rescue image '{r}' is not supported"
                                )));
                            };
                            image_id = Some(image.id.to_string());
                        }
                        opt_str(m, "adminPass")?.map(str::to_string)
                    }
                    _ => {
                        return Err(Fault::bad_request(
                            "Invalid input for field/attribute rescue.",
                        ));
                    }
                };
                let pw = given.unwrap_or_else(generate_password);
                self.submit(
                    &inst,
                    Command::EnterRescue {
                        user: None,
                        password: pw.clone(),
                        mode: StopMode::SoftFirst,
                        image_id,
                        rule: PasswordRule::Free,
                    },
                )
                .await?;
                // 200, not 202: what Nova answers (shared/specs/openstack.md §2.5).
                Ok(Reply::json(200, &json!({"adminPass": pw})))
            }
            "lock" => {
                let reason = match arg {
                    Value::Null => String::new(),
                    Value::Object(m) => {
                        check_keys(m, &["locked_reason"])?;
                        let r = opt_str(m, "locked_reason")?;
                        check_field(&LOCKED_REASON, r)?;
                        r.unwrap_or("").to_string()
                    }
                    _ => {
                        return Err(Fault::bad_request(
                            "Invalid input for field/attribute lock.",
                        ));
                    }
                };
                self.api
                    .engine
                    .set_locked(&self.p, inst.uuid, Some(reason))
                    .await
                    .map_err(|e| map(e, Some(inst.uuid)))?;
                Ok(Reply::empty(202))
            }
            "unlock" => {
                empty_ok(arg)?;
                self.api
                    .engine
                    .set_locked(&self.p, inst.uuid, None)
                    .await
                    .map_err(|e| map(e, Some(inst.uuid)))?;
                Ok(Reply::empty(202))
            }
            "rebuild" => {
                let m = arg.as_object().ok_or_else(|| {
                    Fault::bad_request("Invalid input for field/attribute rebuild.")
                })?;
                // Nova's rebuild schemas by microversion.
                let mut allowed = vec![
                    "imageRef",
                    "adminPass",
                    "name",
                    "metadata",
                    "accessIPv4",
                    "accessIPv6",
                    "OS-DCF:diskConfig",
                    "preserve_ephemeral",
                ];
                for (key, from, until) in [
                    ("personality", 1, 57),
                    ("description", 19, u16::MAX),
                    ("key_name", 54, u16::MAX),
                    ("user_data", 57, u16::MAX),
                    ("trusted_image_certificates", 63, u16::MAX),
                    ("hostname", 90, u16::MAX),
                ] {
                    if self.v.at_least(from) && !self.v.at_least(until) {
                        allowed.push(key);
                    }
                }
                check_keys(m, &allowed)?;
                let image_ref = opt_str(m, "imageRef")?
                    .ok_or_else(|| Fault::bad_request("'imageRef' is a required property"))?;
                let name = opt_str(m, "name")?.map(str::to_string);
                check_field(&SERVER_NAME, name.as_deref())?;
                let description = opt_str(m, "description")?.map(str::to_string);
                check_field(&SERVER_DESCRIPTION, description.as_deref())?;
                let hostname = self.hostname_field(m)?;
                let v4 = access_ip(m, "accessIPv4")?;
                let v6 = access_ip(m, "accessIPv6")?;
                let user_data = user_data_field(m)?;
                if let Some(certs) = m.get("trusted_image_certificates")
                    && !certs.is_null()
                {
                    // No image is signed: Nova refuses certificates for unsigned images.
                    return Err(Fault::bad_request(
                        "Image certificate validation is not supported for this image.",
                    ));
                }
                // key_name (2.54+): a key pair of the caller, or null to remove the keys.
                let key_ids = match m.get("key_name") {
                    None => None,
                    Some(Value::Null) => Some(Vec::new()),
                    Some(Value::String(k)) => Some(vec![self.key_id(k)?]),
                    Some(other) => {
                        return Err(invalid_value("key_name", &other.to_string()));
                    }
                };
                let image = render::image_by_ref(image_ref).ok_or_else(|| {
                    Fault::bad_request(format!("Invalid imageRef provided: {image_ref}"))
                })?;
                let pw = opt_str(m, "adminPass")?
                    .map(str::to_string)
                    .unwrap_or_else(generate_password);
                // Given metadata replace the server's (quota checked before any work).
                let new_metadata = m
                    .get("metadata")
                    .map(|v| metadata::parse("metadata", v))
                    .transpose()?;
                if let Some(items) = &new_metadata {
                    metadata::check_quota(items.len())?;
                }
                self.submit(
                    &inst,
                    Command::Rebuild {
                        image_id: image.id.to_string(),
                        password: Some(pw.clone()),
                        rule: PasswordRule::Free,
                        key_ids,
                    },
                )
                .await?;
                if let Some(items) = new_metadata {
                    self.api
                        .engine
                        .update_tags(&self.p, inst.uuid, |_| Ok::<_, DomainError>(items))
                        .await
                        .map_err(|e| map(e, Some(inst.uuid)))?;
                }
                // The rebuild is accepted and committed; its attributes follow (a server
                // deleted meanwhile has none to change).
                let _ = self
                    .api
                    .engine
                    .modify_with_attrs(&self.p, inst.uuid, name, description, hostname, |a| {
                        if let Some(v4) = v4 {
                            a.access_ipv4 = Some(v4);
                        }
                        if let Some(v6) = v6 {
                            a.access_ipv6 = Some(v6);
                        }
                    })
                    .await;
                if let Some(u) = user_data {
                    match self.api.engine.set_user_data(&self.p, inst.uuid, u).await {
                        Ok(()) | Err(DomainError::NotFound { .. }) => {}
                        Err(e) => return Err(map(e, Some(inst.uuid))),
                    }
                }
                let now = self.api.engine.instance(inst.uuid).unwrap_or(inst.clone());
                let mut server = self.changed_view(&now, true).await;
                server["adminPass"] = json!(pw);
                Ok(Reply::json(202, &json!({ "server": server })))
            }
            "unrescue" => {
                empty_ok(arg)?;
                self.submit(&inst, Command::ExitRescue).await?;
                Ok(Reply::empty(202))
            }
            other => Err(Fault::bad_request(format!(
                "There is no such action: {other}"
            ))),
        }
    }

    // -- flavors ------------------------------------------------------------------------

    fn list_flavors(&self, detail: bool) -> Res {
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
        if let Some(marker) = param(&q, "marker") {
            match types.iter().position(|t| t.name == marker) {
                Some(at) => {
                    types.drain(..=at);
                }
                None => return Err(Fault::bad_request(format!("marker [{marker}] not found"))),
            }
        }
        let limit = limit.map(|l| l as usize).unwrap_or(1000);
        let cut = types.len() > limit;
        types.truncate(limit);
        let flavors: Vec<Value> = types
            .iter()
            .map(|t| render::flavor(t, self.v, &self.base, detail))
            .collect();
        let mut body = json!({ "flavors": flavors });
        if cut && let Some(last) = types.last() {
            let path = if detail { "flavors/detail" } else { "flavors" };
            body["flavors_links"] = json!([{"rel": "next", "href": format!(
                "{}/compute/v2.1/{path}?limit={limit}&marker={}", self.base, last.name)}]);
        }
        Ok(Reply::json(200, &body))
    }

    fn show_flavor(&self, id: &str) -> Res {
        let t = catalog::instance_type(id)
            .ok_or_else(|| Fault::not_found(format!("Flavor {id} could not be found.")))?;
        Ok(Reply::json(
            200,
            &json!({"flavor": render::flavor(t, self.v, &self.base, true)}),
        ))
    }

    // -- key pairs ----------------------------------------------------------------------

    fn own_keypairs(&self) -> Vec<nubis_core::KeyPair> {
        self.api
            .engine
            .key_pairs(&self.p)
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.account == self.p.account)
            .collect()
    }

    fn keypair_not_found(&self, name: &str) -> Fault {
        Fault::not_found(format!(
            "Keypair {name} not found for user {}",
            ids::user_id(&self.p.account)
        ))
    }

    fn list_keypairs(&self) -> Res {
        let q = self.req.query();
        let mut keys = self.own_keypairs();
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        let mut cut = false;
        let mut limit = usize::MAX;
        if self.v.at_least(35) {
            if let Some(marker) = param(&q, "marker") {
                match keys.iter().position(|k| k.name == marker) {
                    Some(at) => {
                        keys.drain(..=at);
                    }
                    None => {
                        return Err(Fault::bad_request(format!("marker [{marker}] not found")));
                    }
                }
            }
            if let Some(l) = int_param(&q, "limit")? {
                if l < 0 {
                    return Err(Fault::bad_request("limit must be >= 0"));
                }
                limit = l as usize;
                cut = keys.len() > limit;
                keys.truncate(limit);
            }
        }
        let list: Vec<Value> = keys
            .iter()
            .map(|k| json!({"keypair": render::key_pair(k, self.v)}))
            .collect();
        let mut body = json!({ "keypairs": list });
        if cut && let Some(last) = keys.last() {
            body["keypairs_links"] = json!([{"rel": "next", "href": format!(
                "{}/compute/v2.1/os-keypairs?limit={limit}&marker={}", self.base, last.name)}]);
        }
        Ok(Reply::json(200, &body))
    }

    fn show_keypair(&self, name: &str) -> Res {
        let k = self
            .own_keypairs()
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| self.keypair_not_found(name))?;
        Ok(Reply::json(
            200,
            &json!({"keypair": render::key_pair_detail(&k, self.v)}),
        ))
    }

    async fn create_keypair(&self) -> Res {
        let body = json_body(self.req.body)?;
        let kp = body
            .get("keypair")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'keypair' is a required property"))?;
        let mut allowed = vec!["name", "public_key"];
        if self.v.at_least(2) {
            allowed.push("type");
        }
        if self.v.at_least(10) {
            allowed.push("user_id");
        }
        check_keys(kp, &allowed)?;
        let name = opt_str(kp, "name")?
            .ok_or_else(|| Fault::bad_request("'name' is a required property"))?;
        let extra_chars: &[char] = if self.v.at_least(92) {
            &[' ', '_', '-', '@', '.']
        } else {
            &[' ', '_', '-']
        };
        let n = name.chars().count();
        if n == 0
            || n > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra_chars.contains(&c))
            || name.trim().is_empty()
        {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute name. Value: {name}."
            )));
        }
        let x509 = match opt_str(kp, "type")? {
            None | Some("ssh") => false,
            Some("x509") => true,
            Some(t) => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute type. Value: {t}. '{t}' is not one of ['ssh', 'x509']"
                )));
            }
        };
        if let Some(uid) = opt_str(kp, "user_id")?
            && uid != ids::user_id(&self.p.account)
        {
            return Err(Fault::bad_request(format!(
                "User {uid} could not be found."
            )));
        }
        let public_key = opt_str(kp, "public_key")?.map(str::trim);
        if public_key.is_none() && self.v.at_least(92) {
            return Err(Fault::bad_request("'public_key' is a required property"));
        }
        if public_key == Some("") {
            return Err(Fault::bad_request(
                "Keypair data is invalid: failed to generate fingerprint",
            ));
        }
        let created = if x509 && public_key.is_none() {
            self.api.engine.create_x509_key_pair(&self.p, name).await
        } else {
            self.api
                .engine
                .create_key_pair(&self.p, name, 0, public_key)
                .await
        };
        let created = created.map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => {
                Fault::bad_request(format!("Keypair data is invalid: {reason}"))
            }
            other => map(other, None),
        })?;
        let mut view = render::key_pair(&created.key_pair, self.v);
        if let Some(given) = public_key {
            view.insert("public_key".into(), json!(given));
        }
        view.insert("user_id".into(), json!(ids::user_id(&self.p.account)));
        if let Some(private) = created.private_key {
            view.insert("private_key".into(), json!(private));
        }
        let status = if self.v.at_least(2) { 201 } else { 200 };
        Ok(Reply::json(status, &json!({ "keypair": view })))
    }

    async fn delete_keypair(&self, name: &str) -> Res {
        let k = self
            .own_keypairs()
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| self.keypair_not_found(name))?;
        self.api
            .engine
            .delete_key_pairs(&self.p, std::slice::from_ref(&k.id))
            .await
            .map_err(|e| match e {
                DomainError::NotFound {
                    kind: ResourceKind::KeyPair,
                    ..
                } => self.keypair_not_found(name),
                DomainError::KeyPairInUse(_) => Fault::conflict(format!(
                    "Key pair {name} is still used by a server and cannot be deleted."
                )),
                other => map(other, None),
            })?;
        Ok(Reply::empty(if self.v.at_least(2) { 204 } else { 202 }))
    }

    // -- supporting endpoints -----------------------------------------------------------

    fn limits(&self) -> Reply {
        let (_, servers) =
            self.api
                .engine
                .query(&self.p, |i| i.account == self.p.account, 0, usize::MAX);
        let cores: u32 = servers
            .iter()
            .filter_map(|i| catalog::instance_type(&i.instance_type))
            .map(|t| t.cpu)
            .sum();
        let ram: u32 = servers
            .iter()
            .filter_map(|i| catalog::instance_type(&i.instance_type))
            .map(|t| t.memory_gib * 1024)
            .sum();
        let mut abs = json!({
            "maxServerMeta": 128,
            "maxImageMeta": 128,
            "maxTotalKeypairs": 100,
            "maxServerGroups": 10,
            "maxServerGroupMembers": 10,
            "maxTotalCores": 1000,
            "maxTotalInstances": 1000,
            "maxTotalRAMSize": 4_096_000,
            "totalCoresUsed": cores,
            "totalRAMUsed": ram,
            "totalInstancesUsed": servers.len(),
            "totalServerGroupsUsed": 0,
        });
        if !self.v.at_least(36) {
            for (k, n) in [
                ("maxSecurityGroupRules", 20),
                ("maxSecurityGroups", 10),
                ("maxTotalFloatingIps", 10),
                ("totalFloatingIpsUsed", 0),
                ("totalSecurityGroupsUsed", 0),
            ] {
                abs[k] = json!(n);
            }
        }
        if !self.v.at_least(57) {
            abs["maxPersonality"] = json!(5);
            abs["maxPersonalitySize"] = json!(10240);
        }
        Reply::json(200, &json!({"limits": {"rate": [], "absolute": abs}}))
    }
}

fn zones() -> Reply {
    let info: Vec<Value> = region()
        .zones
        .iter()
        .map(|z| json!({"zoneName": z.openstack, "zoneState": {"available": true}, "hosts": null}))
        .collect();
    Reply::json(200, &json!({"availabilityZoneInfo": info}))
}

fn remember_reboot(api: &OpenStackApi, request_id: &str, hard: bool) {
    let mut m = api.reboot_modes.lock();
    if m.len() > 10_000 {
        m.clear();
    }
    m.insert(request_id.to_string(), hard);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hostnames() {
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
        assert_eq!(hostname_of("My Server_1"), "my-server-1");
        assert_eq!(hostname_of("***"), "server");
    }

    #[test]
    fn isotimes() {
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

    #[test]
    fn generated_passwords_pass_every_policy() {
        for _ in 0..50 {
            let pw = generate_password();
            assert!(password::validate(&pw, nubis_core::OsFamily::Linux, &["root"]).is_ok());
            assert!(
                password::validate(&pw, nubis_core::OsFamily::Windows, &["Administrator"]).is_ok()
            );
        }
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn every_row_at_its_boundaries() {
        for c in LIMITS {
            if let Rule::Count { max } = c.rule {
                assert!(limits::check_count(c, max).is_ok());
                assert!(limits::check_count(c, max + 1).is_err());
                continue;
            }
            for (value, ok) in limits::boundary_cases(c, "ab") {
                assert_eq!(
                    limits::check_text(c, &value).is_ok(),
                    ok,
                    "{} = {value:?}",
                    c.param
                );
                assert_eq!(check_field(c, Some(&value)).is_ok(), ok);
            }
        }
    }
}
