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
    NewUser, Patch, Project, Role, Target, User, UserPatch,
};
use nubis_identity::CompiledPolicy;
use nubis_identity::policy::oslo::{RuleDefault, compile};
use serde_json::{Map, Value, json};

/// Keystone's rules as nubis enforces them (a subset of Keystone's defaults, whose
/// system-scope alternatives nubis does not offer): `admin` for everything that reads or
/// changes the directory, a user's own record, projects, groups and application
/// credentials for the user, a project for its members.
pub const KEYSTONE_RULES: &[(&str, &str)] = &[
    ("admin_required", "role:admin"),
    ("owner", "user_id:%(target.user.id)s"),
    ("identity:validate_token", "@"),
    ("identity:revoke_token", "@"),
    ("identity:get_auth_projects", "@"),
    ("identity:get_auth_domains", "@"),
    ("identity:list_domains", "rule:admin_required"),
    (
        "identity:get_domain",
        "rule:admin_required or domain_id:%(target.domain.id)s or project_domain_id:%(target.domain.id)s",
    ),
    ("identity:create_domain", "rule:admin_required"),
    ("identity:update_domain", "rule:admin_required"),
    ("identity:delete_domain", "rule:admin_required"),
    ("identity:list_projects", "rule:admin_required"),
    (
        "identity:get_project",
        "rule:admin_required or project_id:%(target.project.id)s",
    ),
    ("identity:create_project", "rule:admin_required"),
    ("identity:update_project", "rule:admin_required"),
    ("identity:delete_project", "rule:admin_required"),
    ("identity:list_users", "rule:admin_required"),
    ("identity:get_user", "rule:admin_required or rule:owner"),
    ("identity:create_user", "rule:admin_required"),
    ("identity:update_user", "rule:admin_required"),
    ("identity:delete_user", "rule:admin_required"),
    ("identity:change_password", "rule:owner"),
    (
        "identity:list_user_projects",
        "rule:admin_required or rule:owner",
    ),
    (
        "identity:list_groups_for_user",
        "rule:admin_required or rule:owner",
    ),
    ("identity:list_groups", "rule:admin_required"),
    ("identity:get_group", "rule:admin_required"),
    ("identity:create_group", "rule:admin_required"),
    ("identity:update_group", "rule:admin_required"),
    ("identity:delete_group", "rule:admin_required"),
    ("identity:list_users_in_group", "rule:admin_required"),
    ("identity:add_user_to_group", "rule:admin_required"),
    ("identity:remove_user_from_group", "rule:admin_required"),
    ("identity:check_user_in_group", "rule:admin_required"),
    ("identity:list_roles", "rule:admin_required"),
    ("identity:get_role", "rule:admin_required"),
    ("identity:create_role", "rule:admin_required"),
    ("identity:update_role", "rule:admin_required"),
    ("identity:delete_role", "rule:admin_required"),
    ("identity:create_grant", "rule:admin_required"),
    ("identity:revoke_grant", "rule:admin_required"),
    ("identity:check_grant", "rule:admin_required"),
    ("identity:list_grants", "rule:admin_required"),
    ("identity:list_role_assignments", "rule:admin_required"),
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

fn done(r: Res) -> Reply {
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

fn list(c: &Ctx<'_>, collection: &str, items: Vec<Value>) -> Reply {
    let mut self_url = url(c, collection);
    if !c.req.raw_query.is_empty() {
        self_url = format!("{self_url}?{}", c.req.raw_query);
    }
    Reply::json(
        200,
        &json!({collection: items, "links": {"self": self_url, "previous": null, "next": null}}),
    )
}

fn domain_view(c: &Ctx<'_>, d: &Domain) -> Value {
    json!({"id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
        "tags": [], "options": {}, "links": {"self": url(c, &format!("domains/{}", d.id))}})
}

fn project_view(c: &Ctx<'_>, p: &Project) -> Value {
    json!({"id": p.id, "name": p.name, "description": p.description, "domain_id": p.domain_id,
        "enabled": p.enabled, "is_domain": false, "parent_id": p.domain_id, "tags": [],
        "options": {}, "links": {"self": url(c, &format!("projects/{}", p.id))}})
}

fn user_view(c: &Ctx<'_>, u: &User) -> Value {
    let mut v = json!({"id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
        "password_expires_at": null, "options": {},
        "links": {"self": url(c, &format!("users/{}", u.id))}});
    if let Some(p) = &u.default_project_id {
        v["default_project_id"] = json!(p);
    }
    if let Some(d) = &u.description {
        v["description"] = json!(d);
    }
    if let Some(e) = &u.email {
        v["email"] = json!(e);
    }
    v
}

fn group_view(c: &Ctx<'_>, g: &Group) -> Value {
    json!({"id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
        "links": {"self": url(c, &format!("groups/{}", g.id))}})
}

fn role_view(c: &Ctx<'_>, r: &Role) -> Value {
    json!({"id": r.id, "name": r.name, "domain_id": null, "description": r.description,
        "options": {}, "links": {"self": url(c, &format!("roles/{}", r.id))}})
}

fn one(status: u16, key: &str, v: Value) -> Reply {
    Reply::json(status, &json!({key: v}))
}

fn filter_name_domain<T>(
    qs: &[(String, String)],
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    domain: impl Fn(&T) -> Option<&str>,
    enabled: impl Fn(&T) -> Option<bool>,
) -> Vec<T> {
    items
        .into_iter()
        .filter(|x| q(qs, "name").is_none_or(|n| name(x) == n))
        .filter(|x| q(qs, "domain_id").is_none_or(|d| domain(x) == Some(d)))
        .filter(|x| q(qs, "enabled").is_none_or(|e| enabled(x).is_none_or(|v| v == truthy(e))))
        .collect()
}

// -- domains ------------------------------------------------------------------------------

pub(crate) async fn list_domains(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let items = filter_name_domain(
        &qs,
        c.api.engine.ks_domains(),
        |d| &d.name,
        |_| None,
        |d| Some(d.enabled),
    );
    let v = items.iter().map(|d| domain_view(c, d)).collect();
    list(c, "domains", v)
}

pub(crate) async fn get_domain(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_domain(param(c, 0)) {
        Ok(d) => one(200, "domain", domain_view(c, &d)),
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

pub(crate) async fn create_domain(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "domain")?;
            let name = req_str(&m, "name")?;
            let desc = opt_str(&m, "description")?.unwrap_or_default();
            let enabled = opt_bool(&m, "enabled")?.unwrap_or(true);
            let d = c
                .api
                .engine
                .ks_create_domain(&name, &desc, enabled)
                .await
                .map_err(ks_bad)?;
            Ok(one(201, "domain", domain_view(c, &d)))
        }
        .await,
    )
}

pub(crate) async fn update_domain(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let p = patch_of(&body_obj(c, "domain")?)?;
            let d = c
                .api
                .engine
                .ks_update_domain(param(c, 0), p)
                .await
                .map_err(ks_bad)?;
            Ok(one(200, "domain", domain_view(c, &d)))
        }
        .await,
    )
}

pub(crate) async fn delete_domain(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete_domain(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

// -- projects -----------------------------------------------------------------------------

pub(crate) async fn list_projects(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let items = filter_name_domain(
        &qs,
        c.api.engine.ks_projects(),
        |p| &p.name,
        |p| Some(&p.domain_id),
        |p| Some(p.enabled),
    );
    let items: Vec<Project> = items
        .into_iter()
        .filter(|p| q(&qs, "parent_id").is_none_or(|d| d == p.domain_id))
        .collect();
    let v = items.iter().map(|p| project_view(c, p)).collect();
    list(c, "projects", v)
}

pub(crate) async fn get_project(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_project(param(c, 0)) {
        Ok(p) => one(200, "project", project_view(c, &p)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn create_project(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "project")?;
            let name = req_str(&m, "name")?;
            if opt_bool(&m, "is_domain")? == Some(true) {
                return Err(bad(
                    400,
                    "Projects acting as domains are not supported: create a domain.",
                ));
            }
            // The token's domain when none is named (Keystone's rule).
            let domain = match opt_str(&m, "domain_id")? {
                Some(d) => d,
                None => c
                    .caller
                    .as_ref()
                    .and_then(|t| t.project.as_ref().map(|p| p.domain_id.clone()))
                    .unwrap_or_else(|| ks::DEFAULT_DOMAIN_ID.to_string()),
            };
            if let Some(parent) = opt_str(&m, "parent_id")?
                && parent != domain
            {
                return Err(bad(
                    400,
                    "Nested projects are not supported: parent_id must be the domain.",
                ));
            }
            let desc = opt_str(&m, "description")?.unwrap_or_default();
            let enabled = opt_bool(&m, "enabled")?.unwrap_or(true);
            let p = c
                .api
                .engine
                .ks_create_project(&name, &domain, &desc, enabled)
                .await
                .map_err(ks_bad)?;
            Ok(one(201, "project", project_view(c, &p)))
        }
        .await,
    )
}

pub(crate) async fn update_project(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let p = patch_of(&body_obj(c, "project")?)?;
            let p = c
                .api
                .engine
                .ks_update_project(param(c, 0), p)
                .await
                .map_err(ks_bad)?;
            Ok(one(200, "project", project_view(c, &p)))
        }
        .await,
    )
}

pub(crate) async fn delete_project(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete_project(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

// -- users --------------------------------------------------------------------------------

pub(crate) async fn list_users(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let items = filter_name_domain(
        &qs,
        c.api.engine.ks_users(),
        |u| &u.name,
        |u| Some(&u.domain_id),
        |u| Some(u.enabled),
    );
    let v = items.iter().map(|u| user_view(c, u)).collect();
    list(c, "users", v)
}

pub(crate) async fn get_user(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_user(param(c, 0)) {
        Ok(u) => one(200, "user", user_view(c, &u)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn create_user(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "user")?;
            let domain_id = match opt_str(&m, "domain_id")? {
                Some(d) => d,
                None => c
                    .caller
                    .as_ref()
                    .and_then(|t| t.project.as_ref().map(|p| p.domain_id.clone()))
                    .unwrap_or_else(|| ks::DEFAULT_DOMAIN_ID.to_string()),
            };
            let new = NewUser {
                name: req_str(&m, "name")?,
                domain_id,
                password: opt_str(&m, "password")?,
                enabled: opt_bool(&m, "enabled")?.unwrap_or(true),
                default_project_id: opt_str(&m, "default_project_id")?,
                description: opt_str(&m, "description")?,
                email: opt_str(&m, "email")?,
            };
            let u = c.api.engine.ks_create_user(new).await.map_err(ks_bad)?;
            Ok(one(201, "user", user_view(c, &u)))
        }
        .await,
    )
}

pub(crate) async fn update_user(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "user")?;
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
            };
            let u = c
                .api
                .engine
                .ks_update_user(param(c, 0), patch)
                .await
                .map_err(ks_bad)?;
            Ok(one(200, "user", user_view(c, &u)))
        }
        .await,
    )
}

pub(crate) async fn delete_user(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete_user(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn change_password(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "user")?;
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
        }
        .await,
    )
}

pub(crate) async fn user_projects(c: &Ctx<'_>) -> Reply {
    let user = param(c, 0);
    if let Err(e) = c.api.engine.ks_user(user) {
        return ks_err(e);
    }
    let v = c
        .api
        .engine
        .ks_user_projects(user)
        .iter()
        .map(|p| project_view(c, p))
        .collect();
    list(c, "projects", v)
}

pub(crate) async fn user_groups(c: &Ctx<'_>) -> Reply {
    let user = param(c, 0);
    if let Err(e) = c.api.engine.ks_user(user) {
        return ks_err(e);
    }
    let v = c
        .api
        .engine
        .ks_user_groups(user)
        .iter()
        .map(|g| group_view(c, g))
        .collect();
    list(c, "groups", v)
}

/// `GET /v3/auth/projects`: the projects the caller's user holds a role on.
pub(crate) async fn auth_projects(c: &Ctx<'_>) -> Reply {
    let user = c
        .caller
        .as_ref()
        .map(|t| t.user_id.clone())
        .unwrap_or_default();
    let v = c
        .api
        .engine
        .ks_user_projects(&user)
        .iter()
        .map(|p| project_view(c, p))
        .collect();
    list(c, "projects", v)
}

/// `GET /v3/auth/domains`: the domains the caller's user holds a role on.
pub(crate) async fn auth_domains(c: &Ctx<'_>) -> Reply {
    let user = c
        .caller
        .as_ref()
        .map(|t| t.user_id.clone())
        .unwrap_or_default();
    let v = c
        .api
        .engine
        .ks_user_domains(&user)
        .iter()
        .map(|d| domain_view(c, d))
        .collect();
    list(c, "domains", v)
}

// -- groups -------------------------------------------------------------------------------

pub(crate) async fn list_groups(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let items = filter_name_domain(
        &qs,
        c.api.engine.ks_groups(),
        |g| &g.name,
        |g| Some(&g.domain_id),
        |_| None,
    );
    let v = items.iter().map(|g| group_view(c, g)).collect();
    list(c, "groups", v)
}

pub(crate) async fn get_group(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_group(param(c, 0)) {
        Ok(g) => one(200, "group", group_view(c, &g)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn create_group(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "group")?;
            let name = req_str(&m, "name")?;
            let domain = opt_str(&m, "domain_id")?.unwrap_or_else(|| {
                c.caller
                    .as_ref()
                    .and_then(|t| t.project.as_ref().map(|p| p.domain_id.clone()))
                    .unwrap_or_else(|| ks::DEFAULT_DOMAIN_ID.to_string())
            });
            let desc = opt_str(&m, "description")?.unwrap_or_default();
            let g = c
                .api
                .engine
                .ks_create_group(&name, &domain, &desc)
                .await
                .map_err(ks_bad)?;
            Ok(one(201, "group", group_view(c, &g)))
        }
        .await,
    )
}

pub(crate) async fn update_group(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let p = patch_of(&body_obj(c, "group")?)?;
            let g = c
                .api
                .engine
                .ks_update_group(param(c, 0), p)
                .await
                .map_err(ks_bad)?;
            Ok(one(200, "group", group_view(c, &g)))
        }
        .await,
    )
}

pub(crate) async fn delete_group(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete_group(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn group_users(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_group_users(param(c, 0)) {
        Ok(users) => {
            let v = users.iter().map(|u| user_view(c, u)).collect();
            list(c, "users", v)
        }
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn add_member(c: &Ctx<'_>) -> Reply {
    match c
        .api
        .engine
        .ks_set_member(param(c, 0), param(c, 1), true)
        .await
    {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn remove_member(c: &Ctx<'_>) -> Reply {
    match c
        .api
        .engine
        .ks_set_member(param(c, 0), param(c, 1), false)
        .await
    {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn check_member(c: &Ctx<'_>) -> Reply {
    let (g, u) = (param(c, 0), param(c, 1));
    if let Err(e) = c.api.engine.ks_group(g).and(c.api.engine.ks_user(u)) {
        return ks_err(e);
    }
    if c.api.engine.ks_is_member(g, u) {
        Reply::empty(204)
    } else {
        err(404, &format!("Could not find user {u} in group {g}."))
    }
}

// -- roles --------------------------------------------------------------------------------

pub(crate) async fn list_roles(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let items = filter_name_domain(
        &qs,
        c.api.engine.ks_roles(),
        |r| &r.name,
        |_| None,
        |_| None,
    );
    let v = items.iter().map(|r| role_view(c, r)).collect();
    list(c, "roles", v)
}

pub(crate) async fn get_role(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_role(param(c, 0)) {
        Ok(r) => one(200, "role", role_view(c, &r)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn create_role(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "role")?;
            let name = req_str(&m, "name")?;
            if opt_str(&m, "domain_id")?.is_some() {
                return Err(bad(400, "Domain-specific roles are not supported."));
            }
            let desc = opt_str(&m, "description")?.unwrap_or_default();
            let r = c
                .api
                .engine
                .ks_create_role(&name, &desc)
                .await
                .map_err(ks_bad)?;
            Ok(one(201, "role", role_view(c, &r)))
        }
        .await,
    )
}

pub(crate) async fn update_role(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let p = patch_of(&body_obj(c, "role")?)?;
            let r = c
                .api
                .engine
                .ks_update_role(param(c, 0), p)
                .await
                .map_err(ks_bad)?;
            Ok(one(200, "role", role_view(c, &r)))
        }
        .await,
    )
}

pub(crate) async fn delete_role(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete_role(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

// -- grants -------------------------------------------------------------------------------

/// Which grant a path names: `/{projects|domains}/{t}/{users|groups}/{a}/roles[/{r}]`.
#[derive(Clone, Copy)]
pub(crate) enum On {
    ProjectUser,
    ProjectGroup,
    DomainUser,
    DomainGroup,
}

fn grant_parts(c: &Ctx<'_>, on: On) -> (Target, Actor) {
    let (t, a) = (param(c, 0).to_string(), param(c, 1).to_string());
    match on {
        On::ProjectUser => (Target::Project(t), Actor::User(a)),
        On::ProjectGroup => (Target::Project(t), Actor::Group(a)),
        On::DomainUser => (Target::Domain(t), Actor::User(a)),
        On::DomainGroup => (Target::Domain(t), Actor::Group(a)),
    }
}

fn grant_of(c: &Ctx<'_>, on: On) -> Assignment {
    let (target, actor) = grant_parts(c, on);
    Assignment {
        actor,
        target,
        role_id: param(c, 2).to_string(),
    }
}

pub(crate) async fn put_grant(c: &Ctx<'_>, on: On) -> Reply {
    match c.api.engine.ks_set_grant(grant_of(c, on), true).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn delete_grant(c: &Ctx<'_>, on: On) -> Reply {
    match c.api.engine.ks_set_grant(grant_of(c, on), false).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
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
    let (target, actor) = grant_parts(c, on);
    let mut f = AssignmentFilter::default();
    let checked = match (&target, &actor) {
        (Target::Project(p), _) => c.api.engine.ks_project(p).map(drop),
        (Target::Domain(d), _) => c.api.engine.ks_domain(d).map(drop),
    }
    .and(match &actor {
        Actor::User(u) => c.api.engine.ks_user(u).map(drop),
        Actor::Group(g) => c.api.engine.ks_group(g).map(drop),
    });
    if let Err(e) = checked {
        return ks_err(e);
    }
    match &target {
        Target::Project(p) => f.project = Some(p.clone()),
        Target::Domain(d) => f.domain = Some(d.clone()),
    }
    match &actor {
        Actor::User(u) => f.user = Some(u.clone()),
        Actor::Group(g) => f.group = Some(g.clone()),
    }
    let roles: Vec<Value> = c
        .api
        .engine
        .ks_assignments(&f)
        .iter()
        .filter_map(|a| c.api.engine.ks_role(&a.role_id).ok())
        .map(|r| role_view(c, &r))
        .collect();
    list(c, "roles", roles)
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
                Target::Project(p) => ("project", p),
                Target::Domain(d) => ("domain", d),
            };
            let mut scope = json!({"id": scope_id});
            if names {
                if let Ok(r) = e.ks_role(&a.role_id) {
                    role["name"] = json!(r.name);
                }
                let actor_named = match &a.actor {
                    Actor::User(u) => e.ks_user(u).ok().map(|u| (u.name, u.domain_id)),
                    Actor::Group(g) => e.ks_group(g).ok().map(|g| (g.name, g.domain_id)),
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
                }
            }
            let link = url(
                c,
                &format!(
                    "{scope_key}s/{scope_id}/{actor_key}s/{actor_id}/roles/{}",
                    a.role_id
                ),
            );
            json!({
                "role": role,
                actor_key: actor,
                "scope": {scope_key: scope},
                "links": {"assignment": link},
            })
        })
        .collect();
    list(c, "role_assignments", items)
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
        "access_rules": [],
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
    list(c, "application_credentials", v)
}

pub(crate) async fn get_app_cred(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_app_cred(param(c, 0), param(c, 1)) {
        Ok(a) => one(200, "application_credential", app_cred_view(c, &a, None)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn delete_app_cred(c: &Ctx<'_>) -> Reply {
    match c
        .api
        .engine
        .ks_delete_app_cred(param(c, 0), param(c, 1))
        .await
    {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn create_app_cred(c: &Ctx<'_>) -> Reply {
    done(
        async {
            let m = body_obj(c, "application_credential")?;
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
        }
        .await,
    )
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
