//! Keystone v3 identity admin API: domains, projects, users, groups and members, roles,
//! grants, role assignments, application credentials, the caller's projects and domains.
//! Thin: parse the body strictly enough, call the engine's directory (`nubis_engine::
//! keystone`), render Keystone's shapes. Who may call what is the Keystone policy below,
//! evaluated by nubis-identity's oslo.policy evaluation at the gate (docs/identity.md).

use crate::Reply;
use crate::errors::keystone_body;
use crate::identity::Ctx;
use nubis_engine::keystone::{
    self as ks, Actor, AppCred, Assignment, AssignmentFilter, Domain, Group, KsError, NewAppCred,
    NewUser, Object, Patch, Patchable, Project, Role, Target, User, UserPatch,
};
use nubis_identity::CompiledPolicy;
use nubis_identity::policy::oslo::{RuleDefault, compile};
use serde_json::{Map, Value, json};
use std::future::Future;

pub(crate) mod catalog;
pub(crate) mod credentials;
pub(crate) mod domain_config;
pub(crate) mod trusts;

/// Keystone's rules as nubis enforces them (a subset of Keystone's defaults): `admin` (on any
/// scope) for everything that changes the directory, `admin` or a system reader
/// (`role:reader and system_scope:all`) for what reads it, a user's own record, projects, groups and application
/// credentials for the user, a project for its members.
pub const KEYSTONE_RULES: &[(&str, &str)] = &[
    ("admin_required", "role:admin"),
    ("system_reader", "role:reader and system_scope:all"),
    (
        "admin_or_system_reader",
        "rule:admin_required or rule:system_reader",
    ),
    ("owner", "user_id:%(target.user.id)s"),
    ("identity:validate_token", "@"),
    ("identity:revoke_token", "@"),
    ("identity:get_auth_projects", "@"),
    ("identity:get_auth_domains", "@"),
    ("identity:list_domains", "rule:admin_or_system_reader"),
    (
        "identity:get_domain",
        "rule:admin_or_system_reader or domain_id:%(target.domain.id)s or project_domain_id:%(target.domain.id)s",
    ),
    ("identity:create_domain", "rule:admin_required"),
    ("identity:update_domain", "rule:admin_required"),
    ("identity:delete_domain", "rule:admin_required"),
    ("identity:list_projects", "rule:admin_or_system_reader"),
    (
        "identity:get_project",
        "rule:admin_or_system_reader or project_id:%(target.project.id)s",
    ),
    ("identity:create_project", "rule:admin_required"),
    ("identity:update_project", "rule:admin_required"),
    (
        "identity:list_project_tags",
        "rule:admin_or_system_reader or project_id:%(target.project.id)s",
    ),
    (
        "identity:get_project_tag",
        "rule:admin_or_system_reader or project_id:%(target.project.id)s",
    ),
    ("identity:update_project_tags", "rule:admin_required"),
    ("identity:create_project_tag", "rule:admin_required"),
    ("identity:delete_project_tags", "rule:admin_required"),
    ("identity:delete_project_tag", "rule:admin_required"),
    ("identity:delete_project", "rule:admin_required"),
    ("identity:list_users", "rule:admin_or_system_reader"),
    (
        "identity:get_user",
        "rule:admin_or_system_reader or rule:owner",
    ),
    ("identity:create_user", "rule:admin_required"),
    ("identity:update_user", "rule:admin_required"),
    ("identity:delete_user", "rule:admin_required"),
    // Keystone does not enforce a rule here: the original password is the proof.
    ("identity:change_password", "@"),
    (
        "identity:list_user_projects",
        "rule:admin_or_system_reader or rule:owner",
    ),
    (
        "identity:list_groups_for_user",
        "rule:admin_or_system_reader or rule:owner",
    ),
    ("identity:list_groups", "rule:admin_or_system_reader"),
    ("identity:get_group", "rule:admin_or_system_reader"),
    ("identity:create_group", "rule:admin_required"),
    ("identity:update_group", "rule:admin_required"),
    ("identity:delete_group", "rule:admin_required"),
    (
        "identity:list_users_in_group",
        "rule:admin_or_system_reader",
    ),
    ("identity:add_user_to_group", "rule:admin_required"),
    ("identity:remove_user_from_group", "rule:admin_required"),
    (
        "identity:check_user_in_group",
        "rule:admin_or_system_reader",
    ),
    ("identity:list_roles", "rule:admin_or_system_reader"),
    ("identity:get_role", "rule:admin_or_system_reader"),
    ("identity:create_role", "rule:admin_required"),
    ("identity:update_role", "rule:admin_required"),
    ("identity:delete_role", "rule:admin_required"),
    ("identity:create_grant", "rule:admin_required"),
    ("identity:revoke_grant", "rule:admin_required"),
    ("identity:check_grant", "rule:admin_or_system_reader"),
    ("identity:list_grants", "rule:admin_or_system_reader"),
    (
        "identity:list_role_assignments",
        "rule:admin_or_system_reader",
    ),
    ("identity:get_auth_system", "@"),
    ("identity:create_grant_inherited", "rule:admin_required"),
    ("identity:revoke_grant_inherited", "rule:admin_required"),
    (
        "identity:check_grant_inherited",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:list_grants_inherited",
        "rule:admin_or_system_reader",
    ),
    ("identity:get_auth_catalog", "@"),
    // Trusts: their trustor, trustee, an admin or a system reader, checked by the handlers
    // on the trust (the path names only the trust).
    ("identity:create_trust", "@"),
    ("identity:list_trusts", "@"),
    ("identity:get_trust", "@"),
    ("identity:delete_trust", "@"),
    ("identity:list_roles_for_trust", "@"),
    ("identity:get_role_for_trust", "@"),
    ("identity:list_consumers", "rule:admin_or_system_reader"),
    ("identity:get_consumer", "rule:admin_or_system_reader"),
    ("identity:create_consumer", "rule:admin_required"),
    ("identity:update_consumer", "rule:admin_required"),
    ("identity:delete_consumer", "rule:admin_required"),
    ("identity:create_domain_config", "rule:admin_required"),
    ("identity:get_domain_config", "rule:admin_or_system_reader"),
    ("identity:update_domain_config", "rule:admin_required"),
    ("identity:delete_domain_config", "rule:admin_required"),
    (
        "identity:get_domain_config_default",
        "rule:admin_or_system_reader",
    ),
    ("identity:list_policies", "rule:admin_or_system_reader"),
    ("identity:get_policy", "rule:admin_or_system_reader"),
    ("identity:create_policy", "rule:admin_required"),
    ("identity:update_policy", "rule:admin_required"),
    ("identity:delete_policy", "rule:admin_required"),
    (
        "identity:list_endpoint_groups",
        "rule:admin_or_system_reader",
    ),
    ("identity:get_endpoint_group", "rule:admin_or_system_reader"),
    ("identity:create_endpoint_group", "rule:admin_required"),
    ("identity:update_endpoint_group", "rule:admin_required"),
    ("identity:delete_endpoint_group", "rule:admin_required"),
    // Credentials: admin, a system reader (reads) or the credential's owner, checked by the
    // handlers on the credential's user (the path names only the credential).
    ("identity:list_credentials", "@"),
    ("identity:get_credential", "@"),
    ("identity:create_credential", "@"),
    ("identity:update_credential", "@"),
    ("identity:delete_credential", "@"),
    (
        "identity:ec2_list_credentials",
        "rule:admin_or_system_reader or rule:owner",
    ),
    (
        "identity:ec2_get_credential",
        "rule:admin_or_system_reader or rule:owner",
    ),
    (
        "identity:ec2_create_credential",
        "rule:admin_required or rule:owner",
    ),
    (
        "identity:ec2_delete_credential",
        "rule:admin_required or rule:owner",
    ),
    ("identity:list_regions", "@"),
    ("identity:get_region", "@"),
    ("identity:create_region", "rule:admin_required"),
    ("identity:update_region", "rule:admin_required"),
    ("identity:delete_region", "rule:admin_required"),
    ("identity:list_services", "rule:admin_or_system_reader"),
    ("identity:get_service", "rule:admin_or_system_reader"),
    ("identity:create_service", "rule:admin_required"),
    ("identity:update_service", "rule:admin_required"),
    ("identity:delete_service", "rule:admin_required"),
    ("identity:list_endpoints", "rule:admin_or_system_reader"),
    ("identity:get_endpoint", "rule:admin_or_system_reader"),
    ("identity:create_endpoint", "rule:admin_required"),
    ("identity:update_endpoint", "rule:admin_required"),
    ("identity:delete_endpoint", "rule:admin_required"),
    ("identity:create_implied_role", "rule:admin_required"),
    ("identity:delete_implied_role", "rule:admin_required"),
    ("identity:get_implied_role", "rule:admin_or_system_reader"),
    ("identity:list_implied_roles", "rule:admin_or_system_reader"),
    (
        "identity:list_role_inference_rules",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:list_system_grants_for_user",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:check_system_grant_for_user",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:create_system_grant_for_user",
        "rule:admin_required",
    ),
    (
        "identity:revoke_system_grant_for_user",
        "rule:admin_required",
    ),
    (
        "identity:list_system_grants_for_group",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:check_system_grant_for_group",
        "rule:admin_or_system_reader",
    ),
    (
        "identity:create_system_grant_for_group",
        "rule:admin_required",
    ),
    (
        "identity:revoke_system_grant_for_group",
        "rule:admin_required",
    ),
    (
        "identity:get_application_credential",
        "rule:admin_required or rule:owner",
    ),
    (
        "identity:list_application_credentials",
        "rule:admin_required or rule:owner",
    ),
    ("identity:create_application_credential", "rule:owner"),
    (
        "identity:delete_application_credential",
        "rule:admin_required or rule:owner",
    ),
    (
        "identity:list_access_rules",
        "rule:admin_or_system_reader or rule:owner",
    ),
    (
        "identity:get_access_rule",
        "rule:admin_or_system_reader or rule:owner",
    ),
    (
        "identity:delete_access_rule",
        "rule:admin_required or rule:owner",
    ),
];

pub(crate) fn policy() -> CompiledPolicy {
    let rules: Vec<RuleDefault> = KEYSTONE_RULES
        .iter()
        .map(|(n, c)| RuleDefault {
            name: (*n).into(),
            check: (*c).into(),
            scope_types: Vec::new(),
        })
        .collect();
    compile("keystone", &rules, false).expect("Keystone's rules compile")
}

/// The oslo target of an admin request, from its path's `{…}` names and values.
pub(crate) fn target(path: &str, params: &[&str]) -> std::collections::BTreeMap<String, String> {
    let names = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')));
    let mut t = std::collections::BTreeMap::new();
    for (name, value) in names.zip(params) {
        let key = match name {
            "domain_id" => "target.domain.id",
            "project_id" => "target.project.id",
            "user_id" => "target.user.id",
            "group_id" => "target.group.id",
            "role_id" => "target.role.id",
            "credential_id" => "target.application_credential.id",
            "access_rule_id" => "target.access_rule.id",
            _ => continue,
        };
        t.insert(key.to_string(), (*value).to_string());
    }
    t
}

type Res = Result<Reply, Box<Reply>>;

fn err(status: u16, message: &str) -> Reply {
    Reply::json(status, &keystone_body(status, message))
}

fn ks_err(e: KsError) -> Reply {
    let status = match &e {
        KsError::NotFound(..) => 404,
        KsError::Conflict(_) => 409,
        KsError::Invalid(_) => 400,
        KsError::Forbidden(_) => 403,
        KsError::Domain(nubis_core::DomainError::Unavailable(_)) => 503,
        KsError::Domain(_) => 500,
    };
    if status >= 500 {
        tracing::warn!(error = %e, "keystone directory change failed");
        return err(
            status,
            "An unexpected error prevented the server from fulfilling your request.",
        );
    }
    err(status, &e.to_string())
}

/// A request with a JSON body: its object under `key` (or Keystone's 400), then `f`'s reply
/// or refusal.
async fn with_body<F, Fut>(c: &Ctx<'_>, key: &str, f: F) -> Reply
where
    F: FnOnce(Map<String, Value>) -> Fut,
    Fut: Future<Output = Res>,
{
    let r = match body_obj(c, key) {
        Ok(m) => f(m).await,
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| *e)
}

/// An error reply as the body parsers return it.
fn bad(status: u16, message: &str) -> Box<Reply> {
    Box::new(err(status, message))
}

fn ks_bad(e: KsError) -> Box<Reply> {
    Box::new(ks_err(e))
}

fn param<'a>(c: &'a Ctx<'_>, i: usize) -> &'a str {
    c.params.get(i).copied().unwrap_or_default()
}

/// The body's one object under `key`.
fn body_obj(c: &Ctx<'_>, key: &str) -> Result<Map<String, Value>, Box<Reply>> {
    let v: Value = serde_json::from_slice(c.req.body)
        .map_err(|_| bad(400, "Malformed request body: not JSON."))?;
    match v.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        _ => Err(bad(
            400,
            &format!("Expecting to find {key} in request body."),
        )),
    }
}

fn opt_str(m: &Map<String, Value>, key: &str) -> Result<Option<String>, Box<Reply>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(
            400,
            &format!("Invalid input for field '{key}': it is not a string."),
        )),
    }
}

fn opt_bool(m: &Map<String, Value>, key: &str) -> Result<Option<bool>, Box<Reply>> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(bad(
            400,
            &format!("Invalid input for field '{key}': it is not a boolean."),
        )),
    }
}

fn req_str(m: &Map<String, Value>, key: &str) -> Result<String, Box<Reply>> {
    opt_str(m, key)?.ok_or_else(|| bad(400, &format!("'{key}' is a required property.")))
}

/// D19: Keystone's boolean query values.
fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "" | "true" | "1" | "yes" | "on"
    )
}

fn query(c: &Ctx<'_>) -> Vec<(String, String)> {
    c.req.query()
}

fn q<'a>(qs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    qs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn url(c: &Ctx<'_>, rest: &str) -> String {
    format!("{}/identity/v3/{rest}", c.base)
}

fn listing(c: &Ctx<'_>, collection: &str, items: Vec<Value>) -> Reply {
    let mut self_url = url(c, collection);
    if !c.req.raw_query.is_empty() {
        self_url = format!("{self_url}?{}", c.req.raw_query);
    }
    Reply::json(
        200,
        &json!({collection: items, "links": {"self": self_url, "previous": null, "next": null}}),
    )
}

fn one(status: u16, key: &str, v: Value) -> Reply {
    Reply::json(status, &json!({key: v}))
}

/// 204, or the directory's refusal.
fn no_content(r: Result<(), KsError>) -> Reply {
    match r {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

/// A kind the admin API lists, shows and deletes the same way (domains, projects, users,
/// groups, roles): its JSON key is its `Object::KIND`, its collection its `PLURAL`.
pub(crate) trait Kind: Object {
    /// Keystone's fields of `v` but its links.
    fn fields(v: &Self) -> Value;
    /// A list filter of the kind's own (`name`, `domain_id`, `enabled` are common).
    fn listed(_qs: &[(String, String)], _v: &Self) -> bool {
        true
    }
    /// Puts what depends on the listener's base URL in `j` (built-in endpoints' URLs).
    fn rebase(_j: &mut Value, _v: &Self, _base: &str) {}
}

impl Kind for Domain {
    fn fields(d: &Self) -> Value {
        json!({"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": [], "options": {}})
    }
}

impl Kind for Project {
    fn fields(p: &Self) -> Value {
        json!({"id": p.id, "name": p.name, "description": p.description, "domain_id": p.domain_id,
            "enabled": p.enabled, "is_domain": false, "parent_id": p.parent(), "tags": p.tags,
            "options": {}})
    }
    /// `parent_id`, and Keystone's tag filters: `tags` (all of), `tags-any`, `not-tags`
    /// (not all of), `not-tags-any` (none of); each a comma-separated list.
    fn listed(qs: &[(String, String)], p: &Self) -> bool {
        let has = |t: &str| p.tags.iter().any(|x| x == t);
        let list = |k: &str| q(qs, k).map(|v| v.split(',').collect::<Vec<_>>());
        q(qs, "parent_id").is_none_or(|d| d == p.parent())
            && list("tags").is_none_or(|v| v.iter().all(|t| has(t)))
            && list("tags-any").is_none_or(|v| v.iter().any(|t| has(t)))
            && list("not-tags").is_none_or(|v| !v.iter().all(|t| has(t)))
            && list("not-tags-any").is_none_or(|v| !v.iter().any(|t| has(t)))
    }
}

impl Kind for User {
    fn fields(u: &Self) -> Value {
        let mut v = json!({"id": u.id, "name": u.name, "domain_id": u.domain_id,
            "enabled": u.enabled, "password_expires_at": null, "options": {}});
        if let Some(p) = &u.default_project_id {
            v["default_project_id"] = json!(p);
        }
        if let Some(d) = &u.description {
            v["description"] = json!(d);
        }
        if let Some(e) = &u.email {
            v["email"] = json!(e);
        }
        for (k, x) in &u.extra {
            v[k] = x.clone();
        }
        v
    }
}

impl Kind for Group {
    fn fields(g: &Self) -> Value {
        json!({"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description})
    }
}

impl Kind for Role {
    fn fields(r: &Self) -> Value {
        json!({"id": r.id, "name": r.name, "domain_id": r.domain_id, "description": r.description,
            "options": {}})
    }
    /// Without `domain_id`, only the global roles (Keystone).
    fn listed(qs: &[(String, String)], r: &Self) -> bool {
        q(qs, "domain_id").is_some() || r.domain_id.is_none()
    }
}

/// `v` as Keystone shows it, with its link.
fn view<K: Kind>(c: &Ctx<'_>, v: &K) -> Value {
    let mut j = K::fields(v);
    K::rebase(&mut j, v, c.base);
    j["links"] = json!({"self": url(c, &format!("{}/{}", K::PLURAL, v.id()))});
    j
}

fn listing_of<K: Kind>(c: &Ctx<'_>, items: &[K]) -> Reply {
    let v = items.iter().map(|x| view(c, x)).collect();
    listing(c, K::PLURAL, v)
}

/// `GET /v3/<kind>s` with Keystone's filters.
pub(crate) async fn list<K: Kind>(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let mut items = c.api.engine.ks_list::<K>();
    items.retain(|x| {
        q(&qs, "name").is_none_or(|n| x.name() == n)
            && q(&qs, "domain_id").is_none_or(|d| x.domain() == Some(d))
            && q(&qs, "enabled").is_none_or(|e| x.enabled().is_none_or(|v| v == truthy(e)))
            && K::listed(&qs, x)
    });
    listing_of(c, &items)
}

/// `GET /v3/<kind>s/{id}`.
pub(crate) async fn show<K: Kind>(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_get::<K>(param(c, 0)) {
        Ok(v) => one(200, K::KIND, view(c, &v)),
        Err(e) => ks_err(e),
    }
}

fn patch_of(m: &Map<String, Value>) -> Result<Patch, Box<Reply>> {
    Ok(Patch {
        name: opt_str(m, "name")?,
        description: opt_str(m, "description")?,
        enabled: opt_bool(m, "enabled")?,
    })
}

/// A body's `tags`: a list of strings.
fn opt_tags(m: &Map<String, Value>) -> Result<Option<Vec<String>>, Box<Reply>> {
    match m.get("tags") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.len() <= ks::MAX_PROJECT_TAGS => a
            .iter()
            .map(|t| {
                t.as_str().map(str::to_string).ok_or_else(|| {
                    bad(
                        400,
                        "Invalid input for field 'tags': a tag is not a string.",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad(
            400,
            &format!(
                "Invalid input for field 'tags': a list of at most {} strings.",
                ks::MAX_PROJECT_TAGS
            ),
        )),
    }
}

/// `PATCH /v3/projects/{id}`: the common fields, and `tags` replaced when given.
pub(crate) async fn update_project(c: &Ctx<'_>) -> Reply {
    with_body(c, "project", |m| async move {
        let p = patch_of(&m)?;
        let tags = opt_tags(&m)?;
        let engine = &c.api.engine;
        let id = param(c, 0);
        if let Some(d) = domain_project(c, id) {
            if tags.is_some() {
                return Err(bad(
                    400,
                    "A project acting as a domain has no tags in nubis.",
                ));
            }
            let d = engine.ks_update::<Domain>(&d.id, p).await.map_err(ks_bad)?;
            return Ok(one(200, "project", domain_as_project(c, &d)));
        }
        if let Some(t) = tags {
            ks::check_tags(&t).map_err(ks_bad)?;
            engine.ks_get::<Project>(id).map_err(ks_bad)?;
            engine
                .ks_project_tags(id, |x| {
                    *x = t;
                    Ok(())
                })
                .await
                .map_err(ks_bad)?;
        }
        let v = engine.ks_update::<Project>(id, p).await;
        Ok(one(200, "project", view(c, &v.map_err(ks_bad)?)))
    })
    .await
}

fn tags_reply(status: u16, r: Result<Vec<String>, KsError>) -> Reply {
    match r {
        Ok(t) => Reply::json(status, &json!({"tags": t})),
        Err(e) => ks_err(e),
    }
}

/// `GET /v3/projects/{id}/tags`.
pub(crate) async fn list_tags(c: &Ctx<'_>) -> Reply {
    tags_reply(
        200,
        c.api.engine.ks_get::<Project>(param(c, 0)).map(|p| p.tags),
    )
}

/// `PUT /v3/projects/{id}/tags`: replace them all.
pub(crate) async fn put_tags(c: &Ctx<'_>) -> Reply {
    let tags = match body_obj_any(c).and_then(|m| {
        opt_tags(&m)?.ok_or_else(|| bad(400, "Expecting to find tags in request body."))
    }) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let r = c
        .api
        .engine
        .ks_project_tags(param(c, 0), |x| {
            *x = tags;
            Ok(())
        })
        .await;
    tags_reply(200, r)
}

/// `DELETE /v3/projects/{id}/tags`.
pub(crate) async fn delete_tags(c: &Ctx<'_>) -> Reply {
    let r = c
        .api
        .engine
        .ks_project_tags(param(c, 0), |x| {
            x.clear();
            Ok(())
        })
        .await;
    no_content(r.map(drop))
}

/// `GET /v3/projects/{id}/tags/{tag}`: 204 when the project has it.
pub(crate) async fn check_tag(c: &Ctx<'_>) -> Reply {
    let tag = param(c, 1);
    match c.api.engine.ks_get::<Project>(param(c, 0)) {
        Ok(p) if p.tags.iter().any(|t| t == tag) => Reply::empty(204),
        Ok(_) => err(404, &format!("Could not find tag: {tag}.")),
        Err(e) => ks_err(e),
    }
}

/// `PUT /v3/projects/{id}/tags/{tag}`: 201 (adding a tag it has is accepted).
pub(crate) async fn add_tag(c: &Ctx<'_>) -> Reply {
    let tag = param(c, 1).to_string();
    let r = c
        .api
        .engine
        .ks_project_tags(param(c, 0), |x| {
            if !x.contains(&tag) {
                x.push(tag.clone());
            }
            Ok(())
        })
        .await;
    match r {
        Ok(_) => Reply::empty(201).header(
            "location",
            url(c, &format!("projects/{}/tags/{}", param(c, 0), param(c, 1))),
        ),
        Err(e) => ks_err(e),
    }
}

/// `DELETE /v3/projects/{id}/tags/{tag}`: 404 when the project does not have it.
pub(crate) async fn delete_tag(c: &Ctx<'_>) -> Reply {
    let tag = param(c, 1).to_string();
    let r = c
        .api
        .engine
        .ks_project_tags(param(c, 0), |x| {
            let before = x.len();
            x.retain(|t| t != &tag);
            if x.len() == before {
                return Err(KsError::NotFound("tag", tag.clone()));
            }
            Ok(())
        })
        .await;
    no_content(r.map(drop))
}

/// The body's top-level object.
fn body_obj_any(c: &Ctx<'_>) -> Result<Map<String, Value>, Box<Reply>> {
    match serde_json::from_slice::<Value>(c.req.body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad(400, "Malformed request body: not a JSON object.")),
    }
}

/// `PATCH /v3/<kind>s/{id}` of a domain, project, group or role.
pub(crate) async fn update<K: Kind + Patchable>(c: &Ctx<'_>) -> Reply {
    with_body(c, K::KIND, |m| async move {
        let p = patch_of(&m)?;
        let engine = &c.api.engine;
        let v = engine.ks_update::<K>(param(c, 0), p).await;
        Ok(one(200, K::KIND, view(c, &v.map_err(ks_bad)?)))
    })
    .await
}

/// `DELETE /v3/<kind>s/{id}`.
pub(crate) async fn delete<K: Kind>(c: &Ctx<'_>) -> Reply {
    no_content(c.api.engine.ks_delete::<K>(param(c, 0)).await)
}

/// 201 with the new object.
fn created<K: Kind>(c: &Ctx<'_>, v: Result<K, KsError>) -> Res {
    Ok(one(201, K::KIND, view(c, &v.map_err(ks_bad)?)))
}

/// The body's `domain_id`, else the token's domain (Keystone's rule).
fn domain_or_token(c: &Ctx<'_>, m: &Map<String, Value>) -> Result<String, Box<Reply>> {
    Ok(opt_str(m, "domain_id")?.unwrap_or_else(|| {
        c.caller
            .as_ref()
            .and_then(|t| t.project.as_ref().map(|p| p.domain_id.clone()))
            .unwrap_or_else(|| ks::DEFAULT_DOMAIN_ID.to_string())
    }))
}

// -- domains ------------------------------------------------------------------------------

pub(crate) async fn create_domain(c: &Ctx<'_>) -> Reply {
    with_body(c, "domain", |m| async move {
        let name = req_str(&m, "name")?;
        let desc = opt_str(&m, "description")?.unwrap_or_default();
        let enabled = opt_bool(&m, "enabled")?.unwrap_or(true);
        created(
            c,
            c.api.engine.ks_create_domain(&name, &desc, enabled).await,
        )
    })
    .await
}

// -- projects -----------------------------------------------------------------------------

/// A domain seen as a project (Keystone's `is_domain` project: a domain is a project acting
/// as one): no domain, no parent.
fn domain_as_project(c: &Ctx<'_>, d: &Domain) -> Value {
    json!({"id": d.id, "name": d.name, "description": d.description, "domain_id": null,
        "enabled": d.enabled, "is_domain": true, "parent_id": null, "tags": [], "options": {},
        "links": {"self": url(c, &format!("projects/{}", d.id))}})
}

/// `GET /v3/projects`: `is_domain=true` lists the domains as projects; otherwise (Keystone's
/// default, `is_domain` false) the projects.
pub(crate) async fn list_projects(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    if !q(&qs, "is_domain").is_some_and(truthy) {
        return list::<Project>(c).await;
    }
    let v = (c.api.engine.ks_list::<Domain>().iter())
        .filter(|d| {
            q(&qs, "name").is_none_or(|n| d.name == n)
                && q(&qs, "enabled").is_none_or(|e| d.enabled == truthy(e))
        })
        .map(|d| domain_as_project(c, d))
        .collect();
    listing(c, "projects", v)
}

/// The domain `id` names when it names no project (a project acting as a domain).
fn domain_project(c: &Ctx<'_>, id: &str) -> Option<Domain> {
    if c.api.engine.ks_get::<Project>(id).is_ok() {
        return None;
    }
    c.api.engine.ks_get::<Domain>(id).ok()
}

/// `GET /v3/projects/{id}`: a project, or a domain as one.
pub(crate) async fn show_project(c: &Ctx<'_>) -> Reply {
    match domain_project(c, param(c, 0)) {
        Some(d) => one(200, "project", domain_as_project(c, &d)),
        None => show::<Project>(c).await,
    }
}

/// `DELETE /v3/projects/{id}`: a project, or a domain acting as one (disabled first).
pub(crate) async fn delete_project(c: &Ctx<'_>) -> Reply {
    match domain_project(c, param(c, 0)) {
        Some(d) => no_content(c.api.engine.ks_delete::<Domain>(&d.id).await),
        None => delete::<Project>(c).await,
    }
}

pub(crate) async fn create_project(c: &Ctx<'_>) -> Reply {
    with_body(c, "project", |m| async move {
        let name = req_str(&m, "name")?;
        if opt_bool(&m, "is_domain")? == Some(true) {
            // A project acting as a domain is a domain (its own account): no domain, no
            // parent (Keystone's rule for is_domain projects).
            if opt_str(&m, "parent_id")?.is_some() || opt_str(&m, "domain_id")?.is_some() {
                return Err(bad(
                    400,
                    "A project acting as a domain has no domain_id or parent_id.",
                ));
            }
            let desc = opt_str(&m, "description")?.unwrap_or_default();
            let enabled = opt_bool(&m, "enabled")?.unwrap_or(true);
            let d = c
                .api
                .engine
                .ks_create_domain(&name, &desc, enabled)
                .await
                .map_err(ks_bad)?;
            return Ok(one(201, "project", domain_as_project(c, &d)));
        }
        let parent = opt_str(&m, "parent_id")?;
        let tags = opt_tags(&m)?.unwrap_or_default();
        // Without a domain, a sub-project is in its parent's domain (Keystone).
        let domain = match (opt_str(&m, "domain_id")?, &parent) {
            (None, Some(p)) => match c.api.engine.ks_project(p) {
                Ok(p) => p.domain_id,
                Err(_) => domain_or_token(c, &m)?,
            },
            _ => domain_or_token(c, &m)?,
        };
        let desc = opt_str(&m, "description")?.unwrap_or_default();
        let enabled = opt_bool(&m, "enabled")?.unwrap_or(true);
        let engine = &c.api.engine;
        created(
            c,
            engine
                .ks_create_project(&name, &domain, &desc, enabled, parent.as_deref(), tags)
                .await,
        )
    })
    .await
}

// -- users --------------------------------------------------------------------------------

pub(crate) async fn create_user(c: &Ctx<'_>) -> Reply {
    with_body(c, "user", |m| async move {
        let new = NewUser {
            domain_id: domain_or_token(c, &m)?,
            name: req_str(&m, "name")?,
            password: opt_str(&m, "password")?,
            enabled: opt_bool(&m, "enabled")?.unwrap_or(true),
            default_project_id: opt_str(&m, "default_project_id")?,
            description: opt_str(&m, "description")?,
            email: opt_str(&m, "email")?,
            extra: user_extra(&m),
        };
        created(c, c.api.engine.ks_create_user(new).await)
    })
    .await
}

/// The user attributes Keystone models (or computes); every other one is kept as `extra`.
const USER_FIELDS: &[&str] = &[
    "id",
    "name",
    "domain_id",
    "password",
    "enabled",
    "default_project_id",
    "description",
    "email",
    "options",
    "federated",
    "links",
    "password_expires_at",
];

fn user_extra(m: &Map<String, Value>) -> std::collections::BTreeMap<String, Value> {
    m.iter()
        .filter(|(k, _)| !USER_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) async fn update_user(c: &Ctx<'_>) -> Reply {
    with_body(c, "user", |m| async move {
        let patch = UserPatch {
            name: opt_str(&m, "name")?,
            description: opt_str(&m, "description")?,
            enabled: opt_bool(&m, "enabled")?,
            password: opt_str(&m, "password")?,
            email: opt_str(&m, "email")?,
            default_project_id: match m.get("default_project_id") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(_) => Some(opt_str(&m, "default_project_id")?),
            },
            extra: user_extra(&m),
            // An update through PATCH is an admin's (or the policy's) reset.
            self_service: false,
        };
        let u = c.api.engine.ks_update_user(param(c, 0), patch).await;
        Ok(one(200, "user", view(c, &u.map_err(ks_bad)?)))
    })
    .await
}

pub(crate) async fn change_password(c: &Ctx<'_>) -> Reply {
    with_body(c, "user", |m| async move {
        let original = req_str(&m, "original_password")?;
        let new = req_str(&m, "password")?;
        c.api
            .engine
            .ks_change_password(param(c, 0), &original, &new)
            .await
            .map_err(|e| match e {
                // Keystone answers a wrong original password with 401.
                KsError::Forbidden(m) => err(401, &m),
                e => ks_err(e),
            })?;
        Ok(Reply::empty(204))
    })
    .await
}

/// `GET /v3/users/{id}/projects` and `…/groups`: the user must exist.
async fn of_user<K: Kind>(c: &Ctx<'_>, items: impl FnOnce(&str) -> Vec<K>) -> Reply {
    let user = param(c, 0);
    match c.api.engine.ks_user(user) {
        Ok(_) => listing_of(c, &items(user)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn user_projects(c: &Ctx<'_>) -> Reply {
    of_user(c, |u| c.api.engine.ks_user_projects(u)).await
}

pub(crate) async fn user_groups(c: &Ctx<'_>) -> Reply {
    of_user(c, |u| c.api.engine.ks_user_groups(u)).await
}

/// The caller's user.
fn caller_user(c: &Ctx<'_>) -> String {
    c.caller
        .as_ref()
        .map(|t| t.user_id.clone())
        .unwrap_or_default()
}

/// `GET /v3/auth/projects`: the projects the caller's user holds a role on.
pub(crate) async fn auth_projects(c: &Ctx<'_>) -> Reply {
    listing_of(c, &c.api.engine.ks_user_projects(&caller_user(c)))
}

/// `GET /v3/auth/domains`: the domains the caller's user holds a role on.
pub(crate) async fn auth_domains(c: &Ctx<'_>) -> Reply {
    listing_of(c, &c.api.engine.ks_user_domains(&caller_user(c)))
}

/// `GET /v3/auth/system`: the system, when the caller's user holds a role on it.
pub(crate) async fn auth_system(c: &Ctx<'_>) -> Reply {
    let held = !(c.api.engine)
        .ks_roles_on(&caller_user(c), &Target::System)
        .is_empty();
    let system: Vec<Value> = if held {
        vec![json!({"all": true})]
    } else {
        Vec::new()
    };
    Reply::json(
        200,
        &json!({"system": system, "links": {"self": url(c, "auth/system"), "previous": null, "next": null}}),
    )
}

// -- groups -------------------------------------------------------------------------------

pub(crate) async fn create_group(c: &Ctx<'_>) -> Reply {
    with_body(c, "group", |m| async move {
        let name = req_str(&m, "name")?;
        let domain = domain_or_token(c, &m)?;
        let desc = opt_str(&m, "description")?.unwrap_or_default();
        created(c, c.api.engine.ks_create_group(&name, &domain, &desc).await)
    })
    .await
}

pub(crate) async fn group_users(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_group_users(param(c, 0)) {
        Ok(users) => listing_of(c, &users),
        Err(e) => ks_err(e),
    }
}

/// `PUT` (`on`) or `DELETE /v3/groups/{group}/users/{user}`.
pub(crate) async fn set_member(c: &Ctx<'_>, on: bool) -> Reply {
    let (g, u) = (param(c, 0), param(c, 1));
    no_content(c.api.engine.ks_set_member(g, u, on).await)
}

pub(crate) async fn check_member(c: &Ctx<'_>) -> Reply {
    let (g, u) = (param(c, 0), param(c, 1));
    if let Err(e) = c.api.engine.ks_get::<Group>(g).and(c.api.engine.ks_user(u)) {
        return ks_err(e);
    }
    if c.api.engine.ks_is_member(g, u) {
        Reply::empty(204)
    } else {
        err(404, &format!("Could not find user {u} in group {g}."))
    }
}

// -- roles --------------------------------------------------------------------------------

pub(crate) async fn create_role(c: &Ctx<'_>) -> Reply {
    with_body(c, "role", |m| async move {
        let name = req_str(&m, "name")?;
        let domain = opt_str(&m, "domain_id")?;
        let desc = opt_str(&m, "description")?.unwrap_or_default();
        created(c, c.api.engine.ks_create_role(&name, &desc, domain).await)
    })
    .await
}

// -- implied roles (role inference rules) --------------------------------------------------

/// A role as a rule shows it: ID, name, link.
fn rule_role(c: &Ctx<'_>, id: &str) -> Value {
    let name = c.api.engine.ks_role(id).map(|r| r.name).ok();
    json!({"id": id, "name": name, "links": {"self": url(c, &format!("roles/{id}"))}})
}

fn implication(c: &Ctx<'_>) -> ks::Implication {
    ks::Implication {
        prior_role_id: param(c, 0).to_string(),
        implied_role_id: param(c, 1).to_string(),
    }
}

fn inference_body(c: &Ctx<'_>, i: &ks::Implication) -> Value {
    json!({
        "role_inference": {
            "prior_role": rule_role(c, &i.prior_role_id),
            "implies": rule_role(c, &i.implied_role_id),
        },
        "links": {"self": url(c, &format!("roles/{}/implies/{}", i.prior_role_id, i.implied_role_id))},
    })
}

/// `PUT /v3/roles/{prior}/implies/{implied}`: 201 with the rule.
pub(crate) async fn create_implied(c: &Ctx<'_>) -> Reply {
    let i = implication(c);
    match c.api.engine.ks_set_implication(i.clone(), true).await {
        Ok(()) => Reply::json(201, &inference_body(c, &i)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn delete_implied(c: &Ctx<'_>) -> Reply {
    no_content(c.api.engine.ks_set_implication(implication(c), false).await)
}

/// `GET` (200 with the rule) or `HEAD` (204) `/v3/roles/{prior}/implies/{implied}`.
pub(crate) async fn get_implied(c: &Ctx<'_>) -> Reply {
    let i = implication(c);
    match c.api.engine.ks_has_implication(&i) {
        Ok(true) if c.req.method == "HEAD" => Reply::empty(204),
        Ok(true) => Reply::json(200, &inference_body(c, &i)),
        Ok(false) => err(
            404,
            &format!(
                "Could not find implied role: {} implied by {}.",
                i.implied_role_id, i.prior_role_id
            ),
        ),
        Err(e) => ks_err(e),
    }
}

/// The rules of one prior role, as `GET /v3/roles/{prior}/implies` and
/// `GET /v3/role_inferences` show them.
fn inferences_of(c: &Ctx<'_>, prior: &str, rules: &[ks::Implication]) -> Value {
    let implies: Vec<Value> = (rules.iter())
        .filter(|r| r.prior_role_id == prior)
        .map(|r| rule_role(c, &r.implied_role_id))
        .collect();
    json!({"prior_role": rule_role(c, prior), "implies": implies})
}

/// `GET /v3/roles/{prior}/implies`: the roles `prior` implies directly.
pub(crate) async fn list_implied(c: &Ctx<'_>) -> Reply {
    let prior = param(c, 0);
    if let Err(e) = c.api.engine.ks_role(prior) {
        return ks_err(e);
    }
    let rules = c.api.engine.ks_implications();
    Reply::json(
        200,
        &json!({
            "role_inference": inferences_of(c, prior, &rules),
            "links": {"self": url(c, &format!("roles/{prior}/implies"))},
        }),
    )
}

/// `GET /v3/role_inferences`: every rule, grouped by prior role.
pub(crate) async fn role_inferences(c: &Ctx<'_>) -> Reply {
    let rules = c.api.engine.ks_implications();
    let priors: std::collections::BTreeSet<&str> =
        rules.iter().map(|r| r.prior_role_id.as_str()).collect();
    let all: Vec<Value> = priors
        .into_iter()
        .map(|p| inferences_of(c, p, &rules))
        .collect();
    Reply::json(
        200,
        &json!({"role_inferences": all, "links": {"self": url(c, "role_inferences")}}),
    )
}

// -- grants -------------------------------------------------------------------------------

/// Which grant a path names: `/{projects|domains}/{t}/{users|groups}/{a}/roles[/{r}]` or
/// `/system/{users|groups}/{a}/roles[/{r}]`.
#[derive(Clone, Copy)]
pub(crate) enum On {
    ProjectUser,
    ProjectGroup,
    DomainUser,
    DomainGroup,
    SystemUser,
    SystemGroup,
}

/// The target, the actor and the index of the role's path parameter.
fn grant_parts(c: &Ctx<'_>, on: On) -> (Target, Actor, usize) {
    let (t, a) = (param(c, 0).to_string(), param(c, 1).to_string());
    match on {
        On::ProjectUser => (Target::Project(t), Actor::User(a), 2),
        On::ProjectGroup => (Target::Project(t), Actor::Group(a), 2),
        On::DomainUser => (Target::Domain(t), Actor::User(a), 2),
        On::DomainGroup => (Target::Domain(t), Actor::Group(a), 2),
        On::SystemUser => (Target::System, Actor::User(t), 1),
        On::SystemGroup => (Target::System, Actor::Group(t), 1),
    }
}

fn grant_of(c: &Ctx<'_>, on: On) -> Assignment {
    let (target, actor, role) = grant_parts(c, on);
    Assignment {
        actor,
        target,
        role_id: param(c, role).to_string(),
        inherited: false,
    }
}

/// An OS-INHERIT grant: `/OS-INHERIT/{domains|projects}/{t}/{users|groups}/{a}/roles/{r}/
/// inherited_to_projects`.
fn inherited_of(c: &Ctx<'_>, on: On) -> Assignment {
    Assignment {
        inherited: true,
        ..grant_of(c, on)
    }
}

pub(crate) async fn set_inherited(c: &Ctx<'_>, on: On, grant: bool) -> Reply {
    no_content(c.api.engine.ks_set_grant(inherited_of(c, on), grant).await)
}

pub(crate) async fn check_inherited(c: &Ctx<'_>, on: On) -> Reply {
    let a = inherited_of(c, on);
    match c.api.engine.ks_has_grant(&a) {
        Ok(true) => Reply::empty(204),
        Ok(false) => err(
            404,
            &format!("Could not find role assignment with role: {}.", a.role_id),
        ),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn list_inherited(c: &Ctx<'_>, on: On) -> Reply {
    list_grants_of(c, on, true).await
}

/// `PUT` (`grant`) or `DELETE` a grant.
pub(crate) async fn set_grant(c: &Ctx<'_>, on: On, grant: bool) -> Reply {
    no_content(c.api.engine.ks_set_grant(grant_of(c, on), grant).await)
}

pub(crate) async fn check_grant(c: &Ctx<'_>, on: On) -> Reply {
    let a = grant_of(c, on);
    match c.api.engine.ks_has_grant(&a) {
        Ok(true) => Reply::empty(204),
        Ok(false) => err(
            404,
            &format!("Could not find role assignment with role: {}.", a.role_id),
        ),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn list_grants(c: &Ctx<'_>, on: On) -> Reply {
    list_grants_of(c, on, false).await
}

async fn list_grants_of(c: &Ctx<'_>, on: On, inherited: bool) -> Reply {
    let (target, actor, _) = grant_parts(c, on);
    let e = &c.api.engine;
    if let Err(missing) = e.ks_check_target(&target).and(e.ks_check_actor(&actor)) {
        return ks_err(missing);
    }
    let mut f = AssignmentFilter {
        inherited: Some(inherited),
        ..Default::default()
    };
    match target {
        Target::Project(p) => f.project = Some(p),
        Target::Domain(d) => f.domain = Some(d),
        Target::System => f.system = true,
    }
    match actor {
        Actor::User(u) => f.user = Some(u),
        Actor::Group(g) => f.group = Some(g),
    }
    let roles: Vec<Role> = (e.ks_assignments(&f).iter())
        .filter_map(|a| e.ks_role(&a.role_id).ok())
        .collect();
    listing_of(c, &roles)
}

// -- role assignments ---------------------------------------------------------------------

pub(crate) async fn role_assignments(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let get = |k: &str| q(&qs, k).map(str::to_string);
    let f = AssignmentFilter {
        user: get("user.id"),
        group: get("group.id"),
        role: get("role.id"),
        project: get("scope.project.id"),
        domain: get("scope.domain.id"),
        system: q(&qs, "scope.system").is_some(),
        inherited: q(&qs, "scope.OS-INHERIT:inherited_to").map(|_| true),
        effective: qs.iter().any(|(k, v)| k == "effective" && truthy(v)),
    };
    let names = qs.iter().any(|(k, v)| k == "include_names" && truthy(v));
    let e = &c.api.engine;
    let domain_of = |id: &str| -> Value {
        match e.ks_domain(id) {
            Ok(d) => json!({"id": d.id, "name": d.name}),
            Err(_) => json!({"id": id}),
        }
    };
    let items: Vec<Value> = e
        .ks_assignments(&f)
        .iter()
        .map(|a| {
            let mut role = json!({"id": a.role_id});
            let (actor_key, actor_id) = match &a.actor {
                Actor::User(u) => ("user", u),
                Actor::Group(g) => ("group", g),
            };
            let mut actor = json!({"id": actor_id});
            let (scope_key, scope_id) = match &a.target {
                Target::Project(p) => ("project", p.as_str()),
                Target::Domain(d) => ("domain", d.as_str()),
                Target::System => ("system", "all"),
            };
            let mut scope = match &a.target {
                Target::System => json!({"all": true}),
                _ => json!({"id": scope_id}),
            };
            let inherited_to = a.inherited.then(|| json!("projects"));
            if names {
                if let Ok(r) = e.ks_role(&a.role_id) {
                    role["name"] = json!(r.name);
                }
                let actor_named = match &a.actor {
                    Actor::User(u) => e.ks_user(u).ok().map(|u| (u.name, u.domain_id)),
                    Actor::Group(g) => e.ks_get::<Group>(g).ok().map(|g| (g.name, g.domain_id)),
                };
                if let Some((n, d)) = actor_named {
                    actor["name"] = json!(n);
                    actor["domain"] = domain_of(&d);
                }
                match &a.target {
                    Target::Project(p) => {
                        if let Ok(p) = e.ks_project(p) {
                            scope["name"] = json!(p.name);
                            scope["domain"] = domain_of(&p.domain_id);
                        }
                    }
                    Target::Domain(d) => {
                        if let Ok(d) = e.ks_domain(d) {
                            scope["name"] = json!(d.name);
                        }
                    }
                    Target::System => {}
                }
            }
            let path = match &a.target {
                Target::System => format!("system/{actor_key}s/{actor_id}/roles/{}", a.role_id),
                _ if a.inherited => format!(
                    "OS-INHERIT/{scope_key}s/{scope_id}/{actor_key}s/{actor_id}/roles/{}/inherited_to_projects",
                    a.role_id
                ),
                _ => format!(
                    "{scope_key}s/{scope_id}/{actor_key}s/{actor_id}/roles/{}",
                    a.role_id
                ),
            };
            let link = url(c, &path);
            let mut scope_obj = json!({scope_key: scope});
            if let Some(to) = inherited_to {
                scope_obj["OS-INHERIT:inherited_to"] = to;
            }
            json!({
                "role": role,
                actor_key: actor,
                "scope": scope_obj,
                "links": {"assignment": link},
            })
        })
        .collect();
    listing(c, "role_assignments", items)
}

// -- application credentials --------------------------------------------------------------

fn app_cred_view(c: &Ctx<'_>, a: &AppCred, secret: Option<&str>) -> Value {
    let roles: Vec<Value> = a
        .roles
        .iter()
        .filter_map(|r| c.api.engine.ks_role(r).ok())
        .map(|r| json!({"id": r.id, "name": r.name, "domain_id": null}))
        .collect();
    let mut v = json!({
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "roles": roles,
        "expires_at": a.expires_at.map(expires_text),
        "unrestricted": a.unrestricted,
        "access_rules": c.api.engine.ks_app_cred_rules(&a.id).iter().map(access_rule_fields).collect::<Vec<_>>(),
        "links": {"self": url(c, &format!("users/{}/application_credentials/{}", a.user_id, a.id))},
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

/// Keystone prints an application credential's expiry with microseconds, no zone.
fn expires_text(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        us.rem_euclid(1_000_000)
    )
}

/// D18: `YYYY-MM-DDThh:mm:ss[.ffffff][Z|±hh:mm]`; without a zone, UTC. Unix microseconds.
pub(crate) fn parse_expiry(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, da) = (
        d.next()?.parse::<i32>().ok()?,
        d.next()?.parse::<u8>().ok()?,
        d.next()?.parse::<u8>().ok()?,
    );
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = rest.rfind(['+', '-']).filter(|i| *i >= 8) {
        let (c, off) = rest.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off.get(1..)?.split_once(':')?;
        let off = h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60;
        (c, sign * off)
    } else {
        (rest, 0)
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let micros: i64 = format!("{fraction:0<6}").get(..6)?.parse().ok()?;
    let mut t = clock.splitn(3, ':');
    let (h, mi, se) = (
        t.next()?.parse::<u8>().ok()?,
        t.next()?.parse::<u8>().ok()?,
        t.next().unwrap_or("0").parse::<u8>().ok()?,
    );
    let date = time::Date::from_calendar_date(y, time::Month::try_from(mo).ok()?, da).ok()?;
    let time = time::Time::from_hms(h, mi, se).ok()?;
    let secs = time::PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp()
        - offset_secs;
    Some(secs * 1_000_000 + micros)
}

pub(crate) async fn list_app_creds(c: &Ctx<'_>) -> Reply {
    let user = param(c, 0);
    if let Err(e) = c.api.engine.ks_user(user) {
        return ks_err(e);
    }
    let qs = query(c);
    let v = c
        .api
        .engine
        .ks_app_creds(user)
        .iter()
        .filter(|a| q(&qs, "name").is_none_or(|n| n == a.name))
        .map(|a| app_cred_view(c, a, None))
        .collect();
    listing(c, "application_credentials", v)
}

pub(crate) async fn get_app_cred(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_app_cred(param(c, 0), param(c, 1)) {
        Ok(a) => one(200, "application_credential", app_cred_view(c, &a, None)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn delete_app_cred(c: &Ctx<'_>) -> Reply {
    let (user, id) = (param(c, 0), param(c, 1));
    no_content(c.api.engine.ks_delete_app_cred(user, id).await)
}

/// An access rule as Keystone shows it inside an application credential or a token.
pub(crate) fn access_rule_fields(r: &ks::AccessRule) -> Value {
    json!({"id": r.id, "service": r.service, "method": r.method, "path": r.path})
}

fn access_rule_view(c: &Ctx<'_>, r: &ks::AccessRule) -> Value {
    let mut v = access_rule_fields(r);
    v["links"] = json!({"self": url(c, &format!("users/{}/access_rules/{}", r.user_id, r.id))});
    v
}

/// `GET /v3/users/{user_id}/access_rules`.
pub(crate) async fn list_access_rules(c: &Ctx<'_>) -> Reply {
    let user = param(c, 0);
    if let Err(e) = c.api.engine.ks_user(user) {
        return ks_err(e);
    }
    let v = (c.api.engine.ks_access_rules(user).iter())
        .map(|r| access_rule_view(c, r))
        .collect();
    listing(c, "access_rules", v)
}

/// `GET /v3/users/{user_id}/access_rules/{access_rule_id}`.
pub(crate) async fn get_access_rule(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_access_rule(param(c, 0), param(c, 1)) {
        Ok(r) => one(200, "access_rule", access_rule_view(c, &r)),
        Err(e) => ks_err(e),
    }
}

/// `DELETE /v3/users/{user_id}/access_rules/{access_rule_id}`: 403 while a credential uses it.
pub(crate) async fn delete_access_rule(c: &Ctx<'_>) -> Reply {
    let (user, id) = (param(c, 0), param(c, 1));
    no_content(c.api.engine.ks_delete_access_rule(user, id).await)
}

/// An application credential's `access_rules` (Keystone's schema): each `{"id"}` of an
/// existing rule of the user, or `{"service", "method", "path"}`; nothing else.
fn access_rule_refs(m: &Map<String, Value>) -> Result<Vec<ks::RuleRef>, Box<Reply>> {
    let items = match m.get("access_rules") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) if a.len() <= ks::access_rules::MAX_RULES_PER_APP_CRED => a,
        Some(_) => {
            return Err(bad(
                400,
                &format!(
                    "Invalid input for field 'access_rules': a list of at most {} rules.",
                    ks::access_rules::MAX_RULES_PER_APP_CRED
                ),
            ));
        }
    };
    let field = |r: &Map<String, Value>, k: &str| -> Result<Option<String>, Box<Reply>> {
        match r.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(
                400,
                &format!("Invalid input for field 'access_rules': {k} is not a string."),
            )),
        }
    };
    items
        .iter()
        .map(|item| {
            let Value::Object(r) = item else {
                return Err(bad(400, "Invalid input for field 'access_rules': a rule is not an object."));
            };
            if let Some(k) = r.keys().find(|k| !["id", "service", "method", "path"].contains(&k.as_str())) {
                return Err(bad(
                    400,
                    &format!("Invalid input for field 'access_rules': Additional properties are not allowed ('{k}' was unexpected)."),
                ));
            }
            match (field(r, "id")?, field(r, "service")?, field(r, "method")?, field(r, "path")?) {
                (Some(id), None, None, None) => Ok(ks::RuleRef::Id(id)),
                (None, Some(service), Some(method), Some(path)) => {
                    Ok(ks::RuleRef::New { service, method, path })
                }
                _ => Err(bad(
                    400,
                    "Invalid input for field 'access_rules': a rule is an id, or a service, method and path.",
                )),
            }
        })
        .collect()
}

pub(crate) async fn create_app_cred(c: &Ctx<'_>) -> Reply {
    with_body(c, "application_credential", |m| async move {
        let Some(project) = c.caller.as_ref().and_then(|t| t.project.clone()) else {
            return Err(bad(
                400,
                "Application credentials need a project-scoped token.",
            ));
        };
        if c.caller.as_ref().is_some_and(|t| t.app_cred.is_some()) {
            return Err(bad(
                403,
                "Using an application credential to create another is not allowed.",
            ));
        }
        let name = req_str(&m, "name")?;
        let mut roles = Vec::new();
        match m.get("roles") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                if items.len() > 64 {
                    return Err(bad(400, "Invalid input for field 'roles': at most 64."));
                }
                for r in items {
                    let by_id = r.get("id").and_then(Value::as_str);
                    let by_name = r.get("name").and_then(Value::as_str);
                    let found = c.api.engine.ks_roles().into_iter().find(|x| {
                        by_id.is_some_and(|i| i == x.id)
                            || by_name.is_some_and(|n| n.eq_ignore_ascii_case(&x.name))
                    });
                    match found {
                        Some(x) => roles.push(x.id),
                        None => {
                            let shown = by_id.or(by_name).unwrap_or("?");
                            return Err(bad(404, &format!("Could not find role: {shown}.")));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(bad(400, "Invalid input for field 'roles': not a list."));
            }
        }
        let expires_at = match opt_str(&m, "expires_at")? {
            None => None,
            Some(s) => Some(parse_expiry(&s).ok_or_else(|| {
                err(
                    400,
                    &format!("Invalid input for field 'expires_at': {s} is not a date-time."),
                )
            })?),
        };
        let new = NewAppCred {
            name,
            description: opt_str(&m, "description")?.unwrap_or_default(),
            secret: opt_str(&m, "secret")?,
            roles,
            expires_at,
            unrestricted: opt_bool(&m, "unrestricted")?.unwrap_or(false),
            access_rules: access_rule_refs(&m)?,
        };
        let (a, secret) = c
            .api
            .engine
            .ks_create_app_cred(param(c, 0), &project.id, new)
            .await
            .map_err(ks_bad)?;
        Ok(one(
            201,
            "application_credential",
            app_cred_view(c, &a, Some(&secret)),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_utc_without_a_zone() {
        let base = parse_expiry("2027-01-01T00:00:00").unwrap();
        assert_eq!(base, 1_798_761_600_000_000);
        assert_eq!(parse_expiry("2027-01-01T00:00:00Z"), Some(base));
        assert_eq!(
            parse_expiry("2027-01-01T00:00:00.123456"),
            Some(base + 123_456)
        );
        assert_eq!(parse_expiry("2027-01-01T00:00:00.5"), Some(base + 500_000));
        assert_eq!(expires_text(base + 123_456), "2027-01-01T00:00:00.123456");
        assert_eq!(parse_expiry("2027-01-01T01:00:00+01:00"), Some(base));
        assert_eq!(parse_expiry("2026-12-31T23:00:00-01:00"), Some(base));
        assert_eq!(parse_expiry("2027-13-01T00:00:00"), None);
        assert_eq!(parse_expiry("yesterday"), None);
        assert_eq!(expires_text(base), "2027-01-01T00:00:00.000000");
    }

    #[test]
    fn keystone_rules_compile_and_name_targets() {
        let p = policy();
        assert!(crate::routes::has_rule(&p, "identity:create_user"));
        let t = target(
            "/identity/v3/users/{user_id}/application_credentials/{credential_id}",
            &["u", "c"],
        );
        assert_eq!(t.get("target.user.id").map(String::as_str), Some("u"));
        assert_eq!(
            t.get("target.application_credential.id")
                .map(String::as_str),
            Some("c")
        );
    }
}
