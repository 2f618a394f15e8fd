//! Keystone v3: version documents and password tokens (issue, validate, revoke).
//!
//! One user exists: `admin` in domain `Default`, member of project `admin`, with the roles
//! admin, member and reader. Its password is the admin account's Keystone password.

use crate::ids::{self, DEFAULT_DOMAIN_ID, DEFAULT_DOMAIN_NAME};
use crate::render::keystone_time;
use crate::routes::{self, Found, Need, Route, no_limit, op};
use crate::tokens::{Scope, TOKEN_TTL_SECS, Token, digest, now};
use crate::{OpenStackApi, RawRequest, Reply};
use nubis_pipeline::{Refusal, Registry};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;

const ADMIN_USER: &str = "admin";
const ADMIN_PROJECT: &str = "admin";

/// Keystone's error envelope (one title table: `errors::keystone_body`).
pub(crate) fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, &crate::errors::keystone_body(status, message))
}

pub(crate) const UNAUTHORIZED: &str = "The request you have made requires authentication.";

fn unauthorized(base: &str) -> Reply {
    error(401, UNAUTHORIZED).header(
        "www-authenticate",
        format!("Keystone uri=\"{base}/identity\""),
    )
}

fn v3(base: &str) -> Value {
    json!({
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{base}/identity/v3/")}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

/// `GET /identity`: the version list (300 Multiple Choices, as Keystone answers).
fn versions(base: &str) -> Reply {
    Reply::json(300, &json!({"versions": {"values": [v3(base)]}}))
}

/// `GET /identity/v3`.
fn version(base: &str) -> Reply {
    Reply::json(200, &json!({"version": v3(base)}))
}

/// How a Keystone operation is answered.
pub enum Keystone {
    /// A version document, built from the public base URL.
    Doc(fn(&str) -> Reply),
    Call(KeystoneFn),
}

type KeystoneCall = for<'a> fn(&'a Ctx<'a>) -> Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

/// A handler of a Keystone request.
pub struct KeystoneFn(pub(crate) KeystoneCall);

impl std::fmt::Debug for Keystone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Doc(_) => "Doc",
            Self::Call(_) => "Call",
        })
    }
}

/// A Keystone request: the caller's token when the operation needs one.
pub(crate) struct Ctx<'a> {
    api: &'a OpenStackApi,
    req: &'a RawRequest<'a>,
    base: &'a str,
    caller: Option<Token>,
}

use Need::{Public, Token as AnyToken};

/// Every Keystone operation, declared once (docs/catalogue/openstack-identity.md). Keystone
/// has no rate limit of its own: failed logins are throttled per user and source instead.
#[rustfmt::skip]
pub static REGISTRY: Registry<Route<Keystone>> = Registry {
    cloud: "openstack",
    service: "identity",
    version: "",
    actions: &[
        op("identity.versions", "GET", "/identity", Public, NO_RULE, "—", Keystone::Doc(versions)),
        op("identity.version", "GET", "/identity/v3", Public, NO_RULE, "—", Keystone::Doc(version)),
        op("identity.token.issue", "POST", "/identity/v3/auth/tokens", Public, NO_RULE, "{\"auth\"}",
            Keystone::Call(KeystoneFn(|c| Box::pin(issue(c.api, c.req, c.base))))),
        op("identity.token.validate", "GET", "/identity/v3/auth/tokens", AnyToken, "identity:validate_token", "—",
            Keystone::Call(KeystoneFn(|c| Box::pin(std::future::ready(validate(c)))))),
        no_limit(op("identity.token.revoke", "DELETE", "/identity/v3/auth/tokens", AnyToken,
            "identity:revoke_token", "—", Keystone::Call(KeystoneFn(|c| Box::pin(std::future::ready(revoke(c))))))),
    ],
};

/// The policy column of operations without a rule (Keystone checks none to issue a token).
const NO_RULE: &str = "(none)";

pub(crate) async fn handle(api: &OpenStackApi, req: &RawRequest<'_>, rest: &str) -> Reply {
    let base = api.base_url();
    let path = rest.trim_end_matches('/');
    let Some(segs) = routes::full_segments("identity", path) else {
        return error(404, "The resource could not be found.");
    };
    let spec = match routes::find(&REGISTRY, req.method, &segs, 0, routes::Scope::All) {
        Found::Op(spec, _) => spec,
        Found::WrongMethod(label) => {
            return error(405, "The method is not allowed for the requested URL.").op(label);
        }
        Found::Nothing => return error(404, "The resource could not be found."),
    };
    let caller = if spec.handler.need == Public {
        None
    } else {
        let Some(caller) = api.token(req.header("x-auth-token").unwrap_or_default()) else {
            return unauthorized(&base).op(spec.name);
        };
        if let Err(r) = routes::admit(&api.gate, &REGISTRY, &caller, spec) {
            return refused(r).op(spec.name);
        }
        Some(caller)
    };
    let reply = match &spec.handler.handler {
        Keystone::Doc(doc) => doc(&base),
        Keystone::Call(KeystoneFn(call)) => {
            let ctx = Ctx {
                api,
                req,
                base: &base,
                caller,
            };
            call(&ctx).await
        }
    };
    reply.op(spec.name)
}

/// The gate's refusal in Keystone's envelope.
fn refused(r: Refusal) -> Reply {
    match r {
        Refusal::Throttled(_) => error(429, "Too many requests.").header("retry-after", "1"),
        Refusal::Denied(d) => error(
            403,
            &format!(
                "You are not authorized to perform the requested action: {}.",
                d.policy_action
            ),
        ),
        Refusal::UnknownAction(_)
        | Refusal::UnknownVersion(_)
        | Refusal::MissingRegion
        | Refusal::UnknownRegion(_) => error(404, "The resource could not be found."),
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

/// `{"id": "default"}` or `{"name": "Default"}` names the one domain.
fn is_default_domain(d: &Value) -> bool {
    match (d.get("id"), d.get("name")) {
        (Some(Value::String(id)), _) => id == DEFAULT_DOMAIN_ID,
        (None, Some(Value::String(name))) => name == DEFAULT_DOMAIN_NAME,
        _ => false,
    }
}

fn malformed(what: &str) -> Reply {
    error(
        400,
        &format!("Expecting to find {what} in the request body."),
    )
}

async fn issue(api: &OpenStackApi, req: &RawRequest<'_>, base: &str) -> Reply {
    let Ok(body) = serde_json::from_slice::<Value>(req.body) else {
        return error(400, "Malformed request body: not JSON.");
    };
    let Some(auth) = body.get("auth").filter(|a| a.is_object()) else {
        return malformed("auth");
    };
    let Some(identity) = auth.get("identity").filter(|a| a.is_object()) else {
        return malformed("identity");
    };
    let methods: Vec<String> = match identity.get("methods").and_then(Value::as_array) {
        Some(m) if !m.is_empty() && m.iter().all(Value::is_string) => m
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => return malformed("methods"),
    };
    // Who: a password, or an existing token (re-scoping keeps its expiry).
    let (account, expires_at, user_name, roles, stamp) = if methods.iter().any(|m| m == "password")
    {
        let Some(user) = identity
            .get("password")
            .and_then(|p| p.get("user"))
            .filter(|u| u.is_object())
        else {
            return malformed("password.user");
        };
        let Some(password) = user.get("password").and_then(Value::as_str) else {
            return malformed("password.user.password");
        };
        // Who is named: `admin` by ID, or a user of the Default domain by name. Anyone else
        // (an unknown ID, another domain) is answered like a wrong password, after the same work.
        let (throttle_key, name) = match (user.get("id"), user.get("name")) {
            (Some(Value::String(id)), _) => (
                format!("id:{id}"),
                (*id == ids::user_id(ids::ADMIN_ACCOUNT)).then(|| ADMIN_USER.to_string()),
            ),
            (Some(_), _) => return malformed("password.user.id"),
            (None, Some(Value::String(name))) => {
                let Some(domain) = user.get("domain") else {
                    return malformed("password.user.domain");
                };
                (
                    format!("name:{name}"),
                    is_default_domain(domain).then(|| name.clone()),
                )
            }
            _ => return malformed("password.user.id or name"),
        };
        // One throttle record per user however it is named (ID or name).
        let throttle_key = name.clone().unwrap_or(throttle_key);
        if let Err(wait) = api.logins.attempt(&throttle_key, req.peer) {
            return too_many(wait.0);
        }
        // `admin` holds every role; other users (admin API `keystone-users`) the ones given.
        let verified = match name.as_deref() {
            Some(ADMIN_USER) => api
                .check_admin_password(password)
                .await
                .then(|| ids::ROLES.iter().map(|r| r.to_string()).collect()),
            Some(other) => api.engine.verify_keystone_user(other, password).await,
            None => {
                // Same work as a wrong password.
                api.engine.verify_keystone_user("", password).await
            }
        };
        let (Some(name), Some(roles)) = (name, verified) else {
            let shown: String = throttle_key.chars().take(64).collect();
            tracing::info!(user = %shown, peer = ?req.peer, "keystone password login failed");
            return unauthorized(base);
        };
        api.logins.succeed(&throttle_key, req.peer);
        let stamp = api.engine.keystone_stamp(&name).unwrap_or_default();
        (
            ids::ADMIN_ACCOUNT.to_string(),
            now() + TOKEN_TTL_SECS,
            name,
            roles,
            stamp,
        )
    } else if methods.iter().any(|m| m == "token") {
        let Some(id) = str_at(identity, &["token", "id"]) else {
            return malformed("token.id");
        };
        match api.token(id) {
            Some(t) => (t.account, t.expires_at, t.user_name, t.roles, t.stamp),
            None => return unauthorized(base),
        }
    } else {
        return unauthorized(base);
    };
    // What for.
    let scope = match auth.get("scope") {
        None | Some(Value::Null) => Scope::Unscoped,
        Some(Value::String(s)) if s == "unscoped" => Scope::Unscoped,
        Some(s @ Value::Object(_)) => {
            if let Some(p) = s.get("project") {
                let ok = match (p.get("id"), p.get("name")) {
                    (Some(Value::String(id)), _) => *id == ids::project_id(&account),
                    (None, Some(Value::String(name))) => {
                        name == ADMIN_PROJECT && p.get("domain").is_some_and(is_default_domain)
                    }
                    _ => return malformed("scope.project.id or name"),
                };
                if !ok {
                    return unauthorized(base);
                }
                Scope::Project
            } else if let Some(d) = s.get("domain") {
                if !is_default_domain(d) {
                    return unauthorized(base);
                }
                Scope::Domain
            } else {
                // System scope and anything else: not offered.
                return unauthorized(base);
            }
        }
        Some(_) => return malformed("scope"),
    };
    let (id, token) = api.tokens.issue(Token {
        account: account.clone(),
        user_name,
        roles,
        scope,
        methods,
        issued_at: now(),
        expires_at,
        audit_id: String::new(),
        stamp,
    });
    let catalog = !req.query().iter().any(|(k, _)| k == "nocatalog");
    Reply::json(201, &token_body(&token, base, catalog)).header("x-subject-token", id)
}

/// The caller's own token must be valid; the subject token is the one looked at. A token may
/// be looked at (or revoked) by itself, by another token of the same user, or by an admin —
/// Keystone's `identity:validate_token` / `revoke_token` default rule (`token_subject` or
/// admin); anyone else gets 403.
fn subject(c: &Ctx<'_>, action: &str) -> Result<(String, Token), Box<Reply>> {
    let Some(caller) = c.caller.as_ref() else {
        return Err(Box::new(unauthorized(c.base)));
    };
    let Some(id) = c.req.header("x-subject-token") else {
        return Err(Box::new(error(404, "Could not find token.")));
    };
    let Some(t) = c.api.token_digest(&digest(id)) else {
        return Err(Box::new(error(404, "Could not find token.")));
    };
    if !(caller.is_admin() || caller.user_name == t.user_name) {
        return Err(Box::new(error(
            403,
            &format!("You are not authorized to perform the requested action: {action}."),
        )));
    }
    Ok((id.to_string(), t))
}

/// 429 in Keystone's envelope, with the wait in `Retry-After` (whole seconds).
fn too_many(wait: std::time::Duration) -> Reply {
    let secs = wait.as_secs().max(1);
    error(
        429,
        &format!("Too many failed authentication attempts; retry after {secs} seconds."),
    )
    .header("retry-after", secs.to_string())
}

fn validate(c: &Ctx<'_>) -> Reply {
    match subject(c, "identity:validate_token") {
        Ok((id, token)) => {
            let catalog = !c.req.query().iter().any(|(k, _)| k == "nocatalog");
            Reply::json(200, &token_body(&token, c.base, catalog)).header("x-subject-token", id)
        }
        Err(r) => *r,
    }
}

fn revoke(c: &Ctx<'_>) -> Reply {
    match subject(c, "identity:revoke_token") {
        Ok((id, _)) => {
            c.api.tokens.revoke(&id);
            Reply::empty(204)
        }
        Err(r) => *r,
    }
}

fn domain() -> Value {
    json!({"id": DEFAULT_DOMAIN_ID, "name": DEFAULT_DOMAIN_NAME})
}

pub(crate) fn catalog(base: &str) -> Value {
    let region = nubis_core::catalog::REGIONS
        .first()
        .map(|r| r.openstack)
        .unwrap_or("RegionOne");
    let entry = |ty: &str, name: &str, url: String| {
        let endpoints: Vec<Value> = ["public", "internal", "admin"]
            .iter()
            .map(|interface| {
                json!({
                    "id": ids::endpoint_id(name, interface),
                    "interface": interface,
                    "region_id": region,
                    "region": region,
                    "url": url,
                })
            })
            .collect();
        json!({"type": ty, "name": name, "id": ids::service_id(name), "endpoints": endpoints})
    };
    json!([
        entry("compute", "nova", format!("{base}/compute/v2.1")),
        entry("image", "glance", format!("{base}/image")),
        entry("identity", "keystone", format!("{base}/identity")),
    ])
}

pub(crate) fn token_body(t: &Token, base: &str, with_catalog: bool) -> Value {
    let mut tok = json!({
        "methods": t.methods,
        "user": {
            "id": if t.user_name == ADMIN_USER { ids::user_id(&t.account) } else { other_user_id(&t.user_name) },
            "name": t.user_name,
            "domain": domain(),
            "password_expires_at": null,
        },
        "audit_ids": [t.audit_id],
        "issued_at": keystone_time(t.issued_at),
        "expires_at": keystone_time(t.expires_at),
    });
    let roles: Vec<Value> = t
        .roles
        .iter()
        .map(|r| json!({"id": ids::role_id(r), "name": r}))
        .collect();
    match t.scope {
        Scope::Unscoped => {}
        Scope::Project => {
            tok["project"] = json!({
                "id": ids::project_id(&t.account),
                "name": ADMIN_PROJECT,
                "domain": domain(),
            });
            tok["is_domain"] = json!(false);
            tok["roles"] = json!(roles);
        }
        Scope::Domain => {
            tok["domain"] = domain();
            tok["roles"] = json!(roles);
        }
    }
    if t.scope != Scope::Unscoped && with_catalog {
        tok["catalog"] = catalog(base);
    }
    json!({"token": tok})
}

/// A stable ID for a Keystone user other than `admin`.
fn other_user_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("keystone-user:{name}")))[..32].to_string()
}
