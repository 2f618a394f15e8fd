//! Nova v2.1 under `/compute`: versions, servers and their actions, flavors, key pairs, and
//! the small supporting endpoints clients call (availability zones, limits).

use crate::errors::Fault;
use crate::microversion::{self, Version};
use crate::{OpenStackApi, RawRequest, Reply, ids};
use nubis_core::limits::{self as core_limits, Constraint, Rule};
use nubis_core::{Principal, catalog};
use serde_json::{Map, Value, json};

mod actions;
mod create;
mod flavors;
mod images;
mod keypairs;
mod limits;
mod metadata;
mod servers;

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
        Some(v) if core_limits::check_text(c, v).is_err() => {
            let shown: String = v
                .chars()
                .take(64)
                .filter(|c| core_limits::printable(*c))
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
        .filter(|c| core_limits::printable(*c))
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
            ["os-availability-zone"] if get => {
                ("availability_zone.list".into(), Ok(limits::zones()))
            }
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
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn every_row_at_its_boundaries() {
        for c in LIMITS {
            if let Rule::Count { max } = c.rule {
                assert!(core_limits::check_count(c, max).is_ok());
                assert!(core_limits::check_count(c, max + 1).is_err());
                continue;
            }
            for (value, ok) in core_limits::boundary_cases(c, "ab") {
                assert_eq!(
                    core_limits::check_text(c, &value).is_ok(),
                    ok,
                    "{} = {value:?}",
                    c.param
                );
                assert_eq!(check_field(c, Some(&value)).is_ok(), ok);
            }
        }
    }
}
