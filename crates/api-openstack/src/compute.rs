//! Nova v2.1 under `/compute`: versions, servers and their actions, flavors, key pairs, and
//! the small supporting endpoints clients call (availability zones, limits).

use crate::errors::Fault;
use crate::microversion::{self, Version};
use crate::routes::{self, Found, Scope, Spec};
use crate::tokens::Token;
use crate::{OpenStackApi, RawRequest, Reply};
use nubis_core::limits::{self as core_limits, Constraint};
use nubis_core::{Principal, catalog};
use nubis_pipeline::Refusal;
use serde_json::{Map, Value, json};

pub use declared::{Compute, NovaFn, REGISTRY};
pub(crate) use hosts::{Operator, host_of_zone};

mod actions;
mod aggregates;
mod audit_log;
mod create;
mod declared;
mod flavors;
mod hosts;
mod hypervisors;
mod images;
mod instance_actions;
mod keypairs;
mod limits;
mod metadata;
mod migrations;
mod os_hosts;
mod personality;
mod quotas;
mod server_groups;
mod server_info;
mod servers;
mod services;
mod shares;
mod tags;
mod usage;

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

/// `GET /compute`: the version list.
fn versions(base: &str) -> Reply {
    let legacy = json!({"id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
        "updated": "2025-07-04T12:00:00Z", "links": [{"rel": "self", "href": format!("{base}/compute/v2/")}]});
    Reply::json(200, &json!({"versions": [legacy, version_entry(base)]}))
}

/// `GET /compute/v2`: the legacy v2.0 API's document (Nova serves v2.0 requests with the v2.1
/// code; nubis lists it so that clients walking the version list find every link live, and
/// routes nothing under it).
fn version_v2(base: &str) -> Reply {
    Reply::json(
        200,
        &json!({"version": {
            "id": "v2.0", "status": "DEPRECATED", "version": "", "min_version": "",
            "updated": "2025-07-04T12:00:00Z",
            "media-types": [{"base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2"}],
            "links": [
                {"rel": "self", "href": format!("{base}/compute/v2/")},
                {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            ],
        }}),
    )
}

/// `GET /compute/v2.1`: the version document.
fn version(base: &str) -> Reply {
    let mut v = version_entry(base);
    v["media-types"] = json!([{"base": "application/json",
        "type": "application/vnd.openstack.compute+json;version=2.1"}]);
    v["links"] = json!([
        {"rel": "self", "href": format!("{base}/compute/v2.1/")},
        {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
    ]);
    Reply::json(200, &json!({"version": v}))
}

fn not_found() -> Fault {
    Fault::not_found("The resource could not be found.")
}

/// The steps of a Nova request: the version documents need no token; everything else under
/// `/v2.1` is authenticated (401), versioned (the microversion headers), bounded (404 for a
/// path too deep, 413 for a body too large), routed by the registry (404, 405), admitted by
/// the gate (429 over the write limit, 403 by policy) and handled.
pub(crate) async fn handle(
    api: &OpenStackApi,
    req: &RawRequest<'_>,
    rest: &str,
    request_id: &str,
) -> Reply {
    let base = api.base_url();
    let path = rest.trim_end_matches('/');
    if path.is_empty() || path == "/v2.1" || path == "/v2" {
        let segs: Vec<&str> = ["compute"].into_iter().chain(path.get(1..)).collect();
        return match routes::find(&REGISTRY, req.method, &segs, 1, Scope::Public) {
            Found::Op(spec, _) => match spec.handler.handler {
                Compute::Doc(doc) => doc(&base).op(spec.name),
                Compute::Nova(_) => fault(not_found()),
            },
            Found::WrongMethod(label) => {
                fault(Fault::new(405, "The method is not allowed.")).op(label)
            }
            Found::Nothing => fault(not_found()),
        };
    }
    let Some(after) = path.strip_prefix("/v2.1") else {
        return fault(not_found());
    };
    let Some(token) = api.request_token(req, "compute", rest).await else {
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
    let Some(mut segs) = crate::path_segments(after) else {
        return with_version(fault(not_found()), v);
    };
    // Nova's routes have no trailing `/` below the version root: `/images/` or
    // `/os-simple-tenant-usage/` name no resource (an empty ID), which Nova answers 404.
    if rest.len() > path.len() {
        return with_version(fault(not_found()), v);
    }
    // The old `/v2.1/{project_id}/...` form.
    if token
        .project
        .as_ref()
        .is_some_and(|p| segs.first() == Some(&p.id.as_str()))
    {
        segs.remove(0);
    }
    // Nova refuses bodies over max_request_body_size (112 KiB) before reading them.
    if req.body.len() > MAX_BODY {
        return with_version(fault(Fault::new(413, "Request is too large.")), v);
    }
    let segs: Vec<&str> = ["compute", "v2.1"].into_iter().chain(segs).collect();
    let nova = Nova {
        api,
        req,
        base,
        v,
        p: api.principal(&token),
        admin_role: token.is_admin(),
        token: &token,
        request_id,
    };
    let (label, result) = nova.dispatch(&token, &segs).await;
    let reply = result.unwrap_or_else(fault);
    with_version(reply.op(label), v)
}

pub(crate) struct Nova<'a> {
    api: &'a OpenStackApi,
    req: &'a RawRequest<'a>,
    base: String,
    v: Version,
    p: Principal,
    /// The token carries the `admin` role (Nova's `context.is_admin`).
    admin_role: bool,
    token: &'a Token,
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
    Constraint::text(param, min, max, shape, "badRequest").with_status(400)
}

const SERVER_NAME: Constraint = nova_text("name", 1, 255, Some(nova_name));
const SERVER_DESCRIPTION: Constraint = nova_text("description", 0, 255, None);
/// `lock` action's `locked_reason` (2.73+).
const LOCKED_REASON: Constraint = nova_text("locked_reason", 0, 255, None);
/// `unshelve` action's `availability_zone` (2.77+; Nova's `parameter_types.name`).
const UNSHELVE_AZ: Constraint = nova_text("availability_zone", 1, 255, Some(nova_name));
/// `unshelve` action's `host` (2.91+): Nova's schema leaves it unbounded; nubis bounds it as
/// a host name.
const UNSHELVE_HOST: Constraint = nova_text("host", 1, 255, None);
const METADATA_KEY: Constraint = nova_text("metadata", 1, 255, None);
const METADATA_VALUE: Constraint = nova_text("metadata", 0, 255, None);
/// The most metadata items nubis keeps on one server or image, whatever the
/// `metadata_items` quota allows (the quota, 128 by default, applies below it).
const METADATA_ITEMS: Constraint =
    Constraint::count("metadata", 1024, "forbidden").with_status(403);

#[allow(dead_code)] // walked by the table tests; docs/parameter-limits.md mirrors it
const LIMITS: &[Constraint] = &[
    SERVER_NAME,
    SERVER_DESCRIPTION,
    LOCKED_REASON,
    UNSHELVE_AZ,
    UNSHELVE_HOST,
    METADATA_KEY,
    METADATA_VALUE,
    METADATA_ITEMS,
    server_groups::GROUP_NAME,
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

/// `OS-DCF:diskConfig` of a create, update, rebuild or resize body: AUTO (true), MANUAL
/// (false), absent (`None`); anything else is Nova's schema error.
fn disk_config(obj: &Map<String, Value>) -> Result<Option<bool>, Fault> {
    match obj.get("OS-DCF:diskConfig") {
        None => Ok(None),
        Some(Value::String(d)) if d == "AUTO" => Ok(Some(true)),
        Some(Value::String(d)) if d == "MANUAL" => Ok(Some(false)),
        Some(other) => {
            let shown = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_string);
            Err(Fault::bad_request(format!(
                "Invalid input for field/attribute OS-DCF:diskConfig. Value: {shown}. '{shown}' is not one of ['AUTO', 'MANUAL']"
            )))
        }
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

/// Drops the listing up to and including the marker (paging resumes after it); false when
/// no entry is the marker, which every listing refuses in its own words.
pub(crate) fn skip_past<T>(list: &mut Vec<T>, is_marker: impl Fn(&T) -> bool) -> bool {
    match list.iter().position(is_marker) {
        Some(at) => {
            list.drain(..=at);
            true
        }
        None => false,
    }
}

/// A listing's reply: `{"<collection>": items}` and, when the page ends before the listing
/// does (`next`: the marker, the last item shown), `<collection>_links` with the next page's
/// URL (`path` under /compute/v2.1, the same `limit`).
fn listing(
    base: &str,
    collection: &str,
    path: &str,
    items: Vec<Value>,
    limit: usize,
    next: Option<String>,
) -> Res {
    let mut body = serde_json::Map::new();
    body.insert(collection.to_string(), Value::Array(items));
    if let Some(marker) = next {
        let href = format!("{base}/compute/v2.1/{path}?limit={limit}&marker={marker}");
        body.insert(
            format!("{collection}_links"),
            json!([{"rel": "next", "href": href}]),
        );
    }
    Ok(Reply::json(200, &Value::Object(body)))
}

fn param<'q>(q: &'q [(String, String)], key: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl Nova<'_> {
    /// A route that exists from microversion 2.`minor`: before it Nova answers 404
    /// (`VersionNotFoundForAPIMethod`).
    fn since(&self, minor: u16) -> Result<(), Fault> {
        if self.v.at_least(minor) {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// The operation the request names, through the gate, to its handler; with its label.
    async fn dispatch(&self, token: &Token, segs: &[&str]) -> (&'static str, Res) {
        let minor = self.v.1;
        let found = routes::find(
            &REGISTRY,
            self.req.method,
            segs,
            minor,
            Scope::Authenticated,
        );
        let (spec, params) = match found {
            Found::Op(spec, params) => (spec, params),
            Found::WrongMethod(label) => return (label, Err(bad_method())),
            Found::Nothing => return (routes::UNKNOWN, Err(not_found())),
        };
        let mut arg = Value::Null;
        let spec = if spec.handler.action.is_some() {
            match self.named_action(
                spec.handler.path,
                params.first().copied().unwrap_or_default(),
            ) {
                Ok((spec, a)) => {
                    arg = a;
                    spec
                }
                Err(f) => return (routes::family(spec.name), Err(f)),
            }
        } else {
            spec
        };
        if let Err(refusal) = routes::admit(
            &self.api.gate,
            &REGISTRY,
            token,
            spec,
            &self.api.nova_policy,
            nova_target(token),
        )
        .await
        {
            let throttled = matches!(refusal, Refusal::Throttled(_));
            let reply = fault(refused(refusal));
            return (
                spec.name,
                Ok(if throttled {
                    reply.header("retry-after", "1")
                } else {
                    reply
                }),
            );
        }
        let result = match &spec.handler.handler {
            Compute::Nova(NovaFn(call)) => call(self, &params, &arg).await,
            Compute::Doc(doc) => Ok(doc(&self.base)),
        };
        (spec.name, result)
    }

    /// `POST /servers/{id}/action` (or another resource's `…/{id}/action`, `path`): the
    /// declared action of that path the body's one key names, and its argument. An unknown
    /// server is 404 before an unknown action is 400.
    fn named_action(&self, path: &str, id: &str) -> Result<(&'static Spec<Compute>, Value), Fault> {
        let body = json_body(self.req.body)?;
        let Value::Object(obj) = body else {
            return Err(Fault::malformed());
        };
        let mut items = obj.into_iter();
        let (Some((name, arg)), None) = (items.next(), items.next()) else {
            return Err(Fault::malformed());
        };
        let spec = REGISTRY
            .actions
            .iter()
            .find(|s| s.handler.path == path && s.handler.action == Some(name.as_str()));
        match spec {
            Some(spec) => Ok((spec, arg)),
            None => {
                if path == routes::ACTION_PATH {
                    self.server(id)?;
                }
                Err(Fault::bad_request(format!(
                    "There is no such action: {name}"
                )))
            }
        }
    }
}

/// The oslo target of a Nova request before any server is looked at: the token's own project
/// and user (Nova's default target). A server of another project is then not found for
/// anyone but an admin (the engine's project visibility), as Nova's project-filtered lookups
/// answer.
pub(crate) fn nova_target(token: &Token) -> std::collections::BTreeMap<String, String> {
    let mut t = std::collections::BTreeMap::new();
    if let Some(p) = &token.project {
        t.insert("project_id".to_string(), p.id.clone());
    }
    t.insert("user_id".to_string(), token.user_id.clone());
    t
}

/// The gate's refusal as Nova words it.
fn refused(r: Refusal) -> Fault {
    match r {
        Refusal::Throttled(_) => Fault::new(429, "This request was rate-limited."),
        Refusal::Denied(d) => Fault::new(
            403,
            format!("Policy doesn't allow {} to be performed.", d.policy_action),
        ),
        Refusal::UnknownAction(_)
        | Refusal::UnknownVersion(_)
        | Refusal::MissingRegion
        | Refusal::UnknownRegion(_) => not_found(),
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Every row at its boundaries, refused with the fault its code names; Nova's schema
    /// check of a field agrees with the row.
    #[test]
    fn every_row_at_its_boundaries() {
        nubis_testkit::limits::every_row_at_its_boundaries(
            LIMITS,
            |_| "ab",
            |c, _| crate::errors::fault_name(c.status).to_string(),
        );
        for c in LIMITS {
            for (value, ok) in core_limits::boundary_cases(c, "ab") {
                assert_eq!(
                    check_field(c, Some(&value)).is_ok(),
                    ok,
                    "{} = {value:?}",
                    c.param
                );
            }
        }
    }
}
