//! The Keystone v3 directory (issue 13 item 5): domains, projects, users, groups and their
//! members, roles, role assignments and application credentials. Durable in
//! `keystone_objects` (migration 0006), held in memory, changed under the credentials lock
//! (check, commit, apply). Rules — name uniqueness, what may be deleted, who holds which roles
//! on a project — live here once; the Keystone dialect parses and renders.
//!
//! Tenancy: every domain is an account. The `default` domain is the bootstrap `admin` account;
//! a new domain creates account `ks-<domain id>`. A project is a scope inside its domain's
//! account: instances created through Nova carry the token's project, instances of the other
//! dialects belong to the account's default project (ID `default_project_id(account)`: for
//! the admin account the bootstrap `admin` project).
//!
//! Built in (never stored, not deletable): domain `default`, project `admin`, roles `admin`,
//! `member`, `reader`, user `admin` (password: `NUBIS_ADMIN_PASSWORD`) holding
//! `admin` on project `admin`, and the admin API's Keystone users (`keystone-users`), who hold
//! their roles on project `admin`.

use crate::accounts::{ADMIN_ACCOUNT, ADMIN_USER};
use crate::{Engine, now_ms};
use nubis_core::{Account, DomainError};
use nubis_store::Write;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use thiserror::Error;
use uuid::Uuid;

pub const DEFAULT_DOMAIN_ID: &str = "default";
pub const DEFAULT_DOMAIN_NAME: &str = "Default";
pub const ADMIN_PROJECT_NAME: &str = "admin";
/// The roles the bootstrap admin's tokens always carried. Keystone's `manager` (implied by
/// `admin`) is not built in: an operator who creates it gets it implied.
pub const BUILTIN_ROLES: &[&str] = &["admin", "member", "reader"];
/// Bounds (nubis): names as Keystone's schema (1–255 characters), descriptions, objects.
pub const MAX_NAME: usize = 255;
pub const MAX_DESCRIPTION: usize = 4096;
/// Objects of each kind in the directory; creating one more is refused (403, Keystone's
/// answer to a quota-like refusal is "Forbidden").
pub const MAX_OBJECTS: usize = 10_000;
/// Application credentials per user.
pub const MAX_APP_CREDS_PER_USER: usize = 100;

const NS: Uuid = Uuid::from_u128(0x6e75_6269_735f_4f53_8a00_0000_0000_0001);

/// The IDs the OpenStack dialect derives from nubis names (same namespace as its `ids`).
pub fn derived_id(kind: &str, name: &str) -> String {
    Uuid::new_v5(&NS, format!("{kind}:{name}").as_bytes())
        .simple()
        .to_string()
}

/// The project holding an account's instances that carry no project.
pub fn default_project_id(account: &str) -> String {
    derived_id("project", account)
}

pub fn admin_user_id() -> String {
    derived_id("user", ADMIN_ACCOUNT)
}

pub fn builtin_role_id(name: &str) -> String {
    derived_id("role", name)
}

/// The ID of an admin-API Keystone user (stable, from its name).
pub fn legacy_user_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("keystone-user:{name}")))[..32].to_string()
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub description: String,
    pub enabled: bool,
    /// The nubis account this domain is.
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
    pub enabled: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub enabled: bool,
    /// SHA-512 crypt; `None`: the user cannot log in with a password.
    pub password_hash: Option<String>,
    pub default_project_id: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("domain_id", &self.domain_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    User(String),
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Project(String),
    Domain(String),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
}

impl Assignment {
    fn key(&self) -> String {
        let (ak, a) = match &self.actor {
            Actor::User(u) => ("user", u),
            Actor::Group(g) => ("group", g),
        };
        let (tk, t) = match &self.target {
            Target::Project(p) => ("project", p),
            Target::Domain(d) => ("domain", d),
        };
        format!("{ak}:{a}:{tk}:{t}:{}", self.role_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Membership {
    group_id: String,
    user_id: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppCred {
    pub id: String,
    pub name: String,
    pub user_id: String,
    pub project_id: String,
    pub description: String,
    pub secret_hash: String,
    /// Role IDs (a subset of the user's roles on the project at creation).
    pub roles: Vec<String>,
    /// Unix microseconds; `None`: never.
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
}

impl std::fmt::Debug for AppCred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCred")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("project_id", &self.project_id)
            .finish_non_exhaustive()
    }
}

/// Why a directory change or lookup failed; the dialect renders Keystone's envelope.
#[derive(Debug, Error)]
pub enum KsError {
    /// 404 "Could not find <kind>: <id>."
    #[error("Could not find {0}: {1}.")]
    NotFound(&'static str, String),
    /// 409.
    #[error("{0}")]
    Conflict(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// The directory in memory.
#[derive(Default)]
pub(crate) struct KsDir {
    domains: BTreeMap<String, Domain>,
    projects: BTreeMap<String, Project>,
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    roles: BTreeMap<String, Role>,
    members: BTreeSet<(String, String)>,
    assignments: BTreeSet<Assignment>,
    app_creds: BTreeMap<String, AppCred>,
}

impl KsDir {
    /// The built-in objects, then the stored ones (`(kind, JSON)` rows).
    pub(crate) fn load(rows: &[(String, String)]) -> Result<Self, DomainError> {
        let mut d = Self::default();
        d.domains.insert(
            DEFAULT_DOMAIN_ID.into(),
            Domain {
                id: DEFAULT_DOMAIN_ID.into(),
                name: DEFAULT_DOMAIN_NAME.into(),
                description: "The default domain".into(),
                enabled: true,
                account: ADMIN_ACCOUNT.into(),
            },
        );
        d.projects.insert(
            default_project_id(ADMIN_ACCOUNT),
            Project {
                id: default_project_id(ADMIN_ACCOUNT),
                name: ADMIN_PROJECT_NAME.into(),
                domain_id: DEFAULT_DOMAIN_ID.into(),
                description: "Bootstrap project for initializing the cloud.".into(),
                enabled: true,
            },
        );
        for r in BUILTIN_ROLES {
            d.roles.insert(
                builtin_role_id(r),
                Role {
                    id: builtin_role_id(r),
                    name: (*r).into(),
                    description: String::new(),
                },
            );
        }
        let bad = |e: serde_json::Error| DomainError::Internal(format!("keystone object: {e}"));
        for (kind, data) in rows {
            match kind.as_str() {
                "domain" => {
                    let v: Domain = serde_json::from_str(data).map_err(bad)?;
                    d.domains.insert(v.id.clone(), v);
                }
                "project" => {
                    let v: Project = serde_json::from_str(data).map_err(bad)?;
                    d.projects.insert(v.id.clone(), v);
                }
                "user" => {
                    let v: User = serde_json::from_str(data).map_err(bad)?;
                    d.users.insert(v.id.clone(), v);
                }
                "group" => {
                    let v: Group = serde_json::from_str(data).map_err(bad)?;
                    d.groups.insert(v.id.clone(), v);
                }
                "role" => {
                    let v: Role = serde_json::from_str(data).map_err(bad)?;
                    d.roles.insert(v.id.clone(), v);
                }
                "membership" => {
                    let v: Membership = serde_json::from_str(data).map_err(bad)?;
                    d.members.insert((v.group_id, v.user_id));
                }
                "assignment" => {
                    let v: Assignment = serde_json::from_str(data).map_err(bad)?;
                    d.assignments.insert(v);
                }
                "app_cred" => {
                    let v: AppCred = serde_json::from_str(data).map_err(bad)?;
                    d.app_creds.insert(v.id.clone(), v);
                }
                other => {
                    return Err(DomainError::Internal(format!(
                        "unknown keystone object kind {other}"
                    )));
                }
            }
        }
        Ok(d)
    }
}

fn put<T: Serialize>(kind: &'static str, id: &str, name_key: String, v: &T) -> Write {
    Write::Keystone {
        kind,
        id: id.to_string(),
        name_key,
        data: serde_json::to_string(v).expect("serializable"),
    }
}

fn del(kind: &'static str, id: &str) -> Write {
    Write::DeleteKeystone {
        kind,
        id: id.to_string(),
    }
}

/// Keystone's schema: domain, project and group names at most 64 characters.
pub const MAX_SHORT_NAME: usize = 64;

fn check_name(name: &str) -> Result<(), KsError> {
    check_name_max(name, MAX_NAME)
}

fn check_name_max(name: &str, max: usize) -> Result<(), KsError> {
    let n = name.chars().count();
    if n == 0 || n > max || name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(KsError::Invalid(format!(
            "Invalid input for field 'name': the name must have 1 to {max} printable characters."
        )));
    }
    Ok(())
}

fn check_description(d: &str) -> Result<(), KsError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(KsError::Invalid(format!(
            "Invalid input for field 'description': at most {MAX_DESCRIPTION} characters."
        )));
    }
    Ok(())
}

fn conflict(kind: &str, name: &str, scope: Option<&str>) -> KsError {
    KsError::Conflict(match scope {
        Some(d) => format!(
            "Conflict occurred attempting to store {kind} - Duplicate entry found with name {name} at domain ID {d}."
        ),
        None => {
            format!(
                "Conflict occurred attempting to store {kind} - Duplicate entry found with name {name}."
            )
        }
    })
}

fn builtin(what: &str) -> KsError {
    KsError::Forbidden(format!(
        "{what} is built into nubis (the bootstrap admin) and cannot be changed or deleted."
    ))
}

/// A change to a domain, project, group or role (`None`: unchanged).
#[derive(Debug, Default, Clone)]
pub struct Patch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// A change to a user.
#[derive(Default, Clone)]
pub struct UserPatch {
    pub name: Option<String>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
    pub password: Option<String>,
    pub email: Option<String>,
    /// `Some(None)` clears it.
    pub default_project_id: Option<Option<String>>,
}

/// A new user.
#[derive(Default, Clone)]
pub struct NewUser {
    pub name: String,
    pub domain_id: String,
    pub password: Option<String>,
    pub enabled: bool,
    pub default_project_id: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
}

/// A new application credential.
#[derive(Default, Clone)]
pub struct NewAppCred {
    pub name: String,
    pub description: String,
    /// Generated when not given (returned once).
    pub secret: Option<String>,
    /// Role IDs; empty: every role the user holds on the project.
    pub roles: Vec<String>,
    /// Unix microseconds.
    pub expires_at: Option<i64>,
    pub unrestricted: bool,
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub user: Option<String>,
    pub group: Option<String>,
    pub role: Option<String>,
    pub project: Option<String>,
    pub domain: Option<String>,
    /// Group assignments expanded to their members (Keystone's `effective`).
    pub effective: bool,
}

/// How a user is named at login.
#[derive(Debug, Clone)]
pub enum UserRef {
    Id(String),
    /// Name in a domain given by ID or by name.
    Name {
        name: String,
        domain: DomainRef,
    },
}

#[derive(Debug, Clone)]
pub enum DomainRef {
    Id(String),
    Name(String),
}

fn now_us() -> i64 {
    now_ms() * 1000
}

impl Engine {
    pub(crate) fn ks(&self) -> parking_lot::RwLockReadGuard<'_, KsDir> {
        self.inner.keystone.read()
    }

    // -- reads ---------------------------------------------------------------------------

    pub fn ks_domains(&self) -> Vec<Domain> {
        self.ks().domains.values().cloned().collect()
    }

    pub fn ks_domain(&self, id: &str) -> Result<Domain, KsError> {
        self.ks()
            .domains
            .get(id)
            .cloned()
            .ok_or_else(|| KsError::NotFound("domain", id.into()))
    }

    pub fn ks_domain_by_ref(&self, d: &DomainRef) -> Option<Domain> {
        let dir = self.ks();
        match d {
            DomainRef::Id(id) => dir.domains.get(id).cloned(),
            DomainRef::Name(n) => dir.domains.values().find(|x| &x.name == n).cloned(),
        }
    }

    /// The domain that is `account` (the default domain for the admin account).
    pub fn ks_domain_of_account(&self, account: &str) -> Option<Domain> {
        self.ks()
            .domains
            .values()
            .find(|d| d.account == account)
            .cloned()
    }

    pub fn ks_projects(&self) -> Vec<Project> {
        self.ks().projects.values().cloned().collect()
    }

    pub fn ks_project(&self, id: &str) -> Result<Project, KsError> {
        self.ks()
            .projects
            .get(id)
            .cloned()
            .ok_or_else(|| KsError::NotFound("project", id.into()))
    }

    /// A project by name in a domain.
    pub fn ks_project_named(&self, name: &str, domain: &DomainRef) -> Option<Project> {
        let d = self.ks_domain_by_ref(domain)?;
        self.ks()
            .projects
            .values()
            .find(|p| p.name == name && p.domain_id == d.id)
            .cloned()
    }

    /// Every user: the built-in admin, the admin API's users, the directory's.
    pub fn ks_users(&self) -> Vec<User> {
        let mut v = vec![self.admin_ks_user()];
        for name in self
            .inner
            .fleet
            .lock()
            .keystone_users
            .keys()
            .cloned()
            .collect::<Vec<_>>()
        {
            v.push(legacy_user(&name));
        }
        v.extend(self.ks().users.values().cloned());
        v
    }

    fn admin_ks_user(&self) -> User {
        User {
            id: admin_user_id(),
            name: ADMIN_USER.into(),
            domain_id: DEFAULT_DOMAIN_ID.into(),
            enabled: true,
            password_hash: None,
            // None: an unscoped login stays unscoped, as it always was.
            default_project_id: None,
            description: Some("The bootstrap admin (NUBIS_ADMIN_PASSWORD)".into()),
            email: None,
        }
    }

    fn legacy_name(&self, id: &str) -> Option<String> {
        self.inner
            .fleet
            .lock()
            .keystone_users
            .keys()
            .find(|n| legacy_user_id(n) == id)
            .cloned()
    }

    /// Is `id` a user nubis manages elsewhere (bootstrap admin, admin API)?
    fn is_builtin_user(&self, id: &str) -> bool {
        id == admin_user_id() || self.legacy_name(id).is_some()
    }

    pub fn ks_user(&self, id: &str) -> Result<User, KsError> {
        if id == admin_user_id() {
            return Ok(self.admin_ks_user());
        }
        if let Some(n) = self.legacy_name(id) {
            return Ok(legacy_user(&n));
        }
        self.ks()
            .users
            .get(id)
            .cloned()
            .ok_or_else(|| KsError::NotFound("user", id.into()))
    }

    pub fn ks_groups(&self) -> Vec<Group> {
        self.ks().groups.values().cloned().collect()
    }

    pub fn ks_group(&self, id: &str) -> Result<Group, KsError> {
        self.ks()
            .groups
            .get(id)
            .cloned()
            .ok_or_else(|| KsError::NotFound("group", id.into()))
    }

    pub fn ks_roles(&self) -> Vec<Role> {
        self.ks().roles.values().cloned().collect()
    }

    pub fn ks_role(&self, id: &str) -> Result<Role, KsError> {
        self.ks()
            .roles
            .get(id)
            .cloned()
            .ok_or_else(|| KsError::NotFound("role", id.into()))
    }

    /// The groups `user` is a member of.
    pub fn ks_user_groups(&self, user: &str) -> Vec<Group> {
        let dir = self.ks();
        dir.members
            .iter()
            .filter(|(_, u)| u == user)
            .filter_map(|(g, _)| dir.groups.get(g).cloned())
            .collect()
    }

    pub fn ks_group_users(&self, group: &str) -> Result<Vec<User>, KsError> {
        self.ks_group(group)?;
        let ids: Vec<String> = self
            .ks()
            .members
            .iter()
            .filter(|(g, _)| g == group)
            .map(|(_, u)| u.clone())
            .collect();
        Ok(ids.iter().filter_map(|u| self.ks_user(u).ok()).collect())
    }

    pub fn ks_is_member(&self, group: &str, user: &str) -> bool {
        self.ks()
            .members
            .contains(&(group.to_string(), user.to_string()))
    }

    /// Every assignment, the built-in ones included (admin: `admin` on project `admin`; the
    /// admin API's users: their roles on project `admin`).
    fn all_assignments(&self) -> Vec<Assignment> {
        let admin_project = default_project_id(ADMIN_ACCOUNT);
        let mut v = vec![Assignment {
            actor: Actor::User(admin_user_id()),
            target: Target::Project(admin_project.clone()),
            role_id: builtin_role_id("admin"),
        }];
        for (name, (_, roles)) in self.inner.fleet.lock().keystone_users.iter() {
            for r in roles {
                v.push(Assignment {
                    actor: Actor::User(legacy_user_id(name)),
                    target: Target::Project(admin_project.clone()),
                    role_id: builtin_role_id(r),
                });
            }
        }
        v.extend(self.ks().assignments.iter().cloned());
        v
    }

    /// `GET /v3/role_assignments`.
    pub fn ks_assignments(&self, f: &AssignmentFilter) -> Vec<Assignment> {
        let mut all = self.all_assignments();
        if f.effective {
            let members: Vec<(String, String)> = self.ks().members.iter().cloned().collect();
            let mut expanded = Vec::new();
            for a in all {
                match &a.actor {
                    Actor::Group(g) => {
                        for (_, u) in members.iter().filter(|(mg, _)| mg == g) {
                            expanded.push(Assignment {
                                actor: Actor::User(u.clone()),
                                ..a.clone()
                            });
                        }
                    }
                    Actor::User(_) => expanded.push(a),
                }
            }
            expanded.sort();
            expanded.dedup();
            all = expanded;
        }
        all.retain(|a| {
            f.user
                .as_ref()
                .is_none_or(|u| a.actor == Actor::User(u.clone()))
                && f.group
                    .as_ref()
                    .is_none_or(|g| a.actor == Actor::Group(g.clone()))
                && f.role.as_ref().is_none_or(|r| &a.role_id == r)
                && f.project
                    .as_ref()
                    .is_none_or(|p| a.target == Target::Project(p.clone()))
                && f.domain
                    .as_ref()
                    .is_none_or(|d| a.target == Target::Domain(d.clone()))
        });
        all
    }

    /// The role names `user` holds on `target` (directly or through its groups), with the
    /// roles they imply.
    pub fn ks_roles_on(&self, user: &str, target: &Target) -> BTreeSet<String> {
        let groups: BTreeSet<String> = self
            .ks_user_groups(user)
            .into_iter()
            .map(|g| g.id)
            .collect();
        let all = self.all_assignments();
        let dir = self.ks();
        let names: BTreeSet<String> = all
            .into_iter()
            .filter(|a| &a.target == target)
            .filter(|a| match &a.actor {
                Actor::User(u) => u == user,
                Actor::Group(g) => groups.contains(g),
            })
            .filter_map(|a| dir.roles.get(&a.role_id).map(|r| r.name.to_lowercase()))
            .collect();
        // Implied roles that exist in the directory.
        nubis_identity::model::expand_implied(names)
            .into_iter()
            .filter(|n| dir.roles.values().any(|r| r.name.eq_ignore_ascii_case(n)))
            .collect()
    }

    /// The projects `user` holds a role on.
    pub fn ks_user_projects(&self, user: &str) -> Vec<Project> {
        let projects: BTreeSet<String> = self
            .ks_assignments(&AssignmentFilter {
                user: Some(user.into()),
                effective: true,
                ..Default::default()
            })
            .into_iter()
            .filter_map(|a| match a.target {
                Target::Project(p) => Some(p),
                Target::Domain(_) => None,
            })
            .collect();
        let dir = self.ks();
        projects
            .iter()
            .filter_map(|p| dir.projects.get(p).cloned())
            .collect()
    }

    /// The domains `user` holds a role on.
    pub fn ks_user_domains(&self, user: &str) -> Vec<Domain> {
        let domains: BTreeSet<String> = self
            .ks_assignments(&AssignmentFilter {
                user: Some(user.into()),
                effective: true,
                ..Default::default()
            })
            .into_iter()
            .filter_map(|a| match a.target {
                Target::Domain(d) => Some(d),
                Target::Project(_) => None,
            })
            .collect();
        let dir = self.ks();
        domains
            .iter()
            .filter_map(|d| dir.domains.get(d).cloned())
            .collect()
    }

    /// A stamp of the user's current credential and state: it changes when the password is
    /// set, and is `None` once the user (or its domain) is gone or disabled. Tokens remember
    /// the stamp they were issued under and die with it.
    pub fn ks_stamp(&self, user_id: &str) -> Option<String> {
        if user_id == admin_user_id() {
            return self.keystone_stamp(ADMIN_USER);
        }
        if let Some(n) = self.legacy_name(user_id) {
            return self.keystone_stamp(&n);
        }
        let dir = self.ks();
        let u = dir.users.get(user_id)?;
        if !u.enabled || !dir.domains.get(&u.domain_id).is_some_and(|d| d.enabled) {
            return None;
        }
        use sha2::Digest;
        let basis = format!("{}:{}", u.id, u.password_hash.as_deref().unwrap_or(""));
        Some(hex::encode(&sha2::Sha256::digest(basis.as_bytes())[..16]))
    }

    /// Does the application credential still exist (and not expired)?
    pub fn ks_app_cred_live(&self, id: &str) -> bool {
        self.ks()
            .app_creds
            .get(id)
            .is_some_and(|a| a.expires_at.is_none_or(|e| e > now_us()))
    }

    // -- authentication ------------------------------------------------------------------

    /// The user `who` names if `password` is theirs and the user and its domain are
    /// enabled. An unknown user costs the same work as a wrong password.
    pub async fn ks_authenticate(&self, who: &UserRef, password: &str) -> Option<User> {
        let found = match who {
            UserRef::Id(id) => self.ks_user(id).ok(),
            UserRef::Name { name, domain } => {
                let d = self.ks_domain_by_ref(domain);
                d.and_then(|d| {
                    self.ks_users()
                        .into_iter()
                        .find(|u| &u.name == name && u.domain_id == d.id)
                })
            }
        };
        let Some(user) = found else {
            self.verify_keystone_user("", password).await;
            return None;
        };
        let ok = if user.id == admin_user_id() {
            self.verify_admin_password(password).await
        } else if let Some(n) = self.legacy_name(&user.id) {
            self.verify_keystone_user(&n, password).await.is_some()
        } else {
            let hash = user.password_hash.clone();
            let pw = password.to_string();
            tokio::task::spawn_blocking(move || {
                nubis_auth::password::verify_or_dummy(&pw, hash.as_deref())
            })
            .await
            .unwrap_or(false)
                && user.password_hash.is_some()
        };
        (ok && self.ks_stamp(&user.id).is_some()).then_some(user)
    }

    /// The application credential `id` if `secret` is its own and it has not expired, and
    /// its user still exists.
    pub async fn ks_authenticate_app_cred(&self, id: &str, secret: &str) -> Option<AppCred> {
        let ac = self.ks().app_creds.get(id).cloned();
        let hash = ac.as_ref().map(|a| a.secret_hash.clone());
        let s = secret.to_string();
        let ok = tokio::task::spawn_blocking(move || {
            nubis_auth::password::verify_or_dummy(&s, hash.as_deref())
        })
        .await
        .unwrap_or(false);
        let ac = ac.filter(|_| ok)?;
        if ac.expires_at.is_some_and(|e| e <= now_us()) || self.ks_stamp(&ac.user_id).is_none() {
            return None;
        }
        Some(ac)
    }

    /// An application credential by name among `user`'s.
    pub fn ks_app_cred_named(&self, user: &str, name: &str) -> Option<AppCred> {
        self.ks()
            .app_creds
            .values()
            .find(|a| a.user_id == user && a.name == name)
            .cloned()
    }

    // -- writes --------------------------------------------------------------------------

    fn ks_bound(&self, n: usize, what: &str) -> Result<(), KsError> {
        if n >= MAX_OBJECTS {
            return Err(KsError::Forbidden(format!(
                "nubis holds at most {MAX_OBJECTS} {what}."
            )));
        }
        Ok(())
    }

    pub async fn ks_create_domain(
        &self,
        name: &str,
        description: &str,
        enabled: bool,
    ) -> Result<Domain, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name_max(name, MAX_SHORT_NAME)?;
        check_description(description)?;
        let d = {
            let dir = self.ks();
            self.ks_bound(dir.domains.len(), "domains")?;
            if dir.domains.values().any(|d| d.name == name) {
                return Err(conflict("domain", name, None));
            }
            let id = new_id();
            Domain {
                account: format!("ks-{id}"),
                id,
                name: name.into(),
                description: description.into(),
                enabled,
            }
        };
        let account = Account {
            id: d.account.clone(),
            name: d.account.clone(),
            is_admin: false,
            created_at_ms: now_ms(),
            ..Account::default()
        };
        self.commit(vec![
            Write::Account(account.clone()),
            put("domain", &d.id, d.name.clone(), &d),
        ])
        .await?;
        self.inner
            .fleet
            .lock()
            .accounts
            .insert(account.id.clone(), account);
        self.inner
            .keystone
            .write()
            .domains
            .insert(d.id.clone(), d.clone());
        tracing::info!(domain = %d.id, account = %d.account, "keystone domain created");
        Ok(d)
    }

    pub async fn ks_update_domain(&self, id: &str, p: Patch) -> Result<Domain, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if id == DEFAULT_DOMAIN_ID {
            return Err(builtin("Domain default"));
        }
        let mut d = self.ks_domain(id)?;
        if let Some(n) = &p.name {
            check_name_max(n, MAX_SHORT_NAME)?;
            if self
                .ks()
                .domains
                .values()
                .any(|x| &x.name == n && x.id != id)
            {
                return Err(conflict("domain", n, None));
            }
            d.name = n.clone();
        }
        if let Some(desc) = &p.description {
            check_description(desc)?;
            d.description = desc.clone();
        }
        if let Some(e) = p.enabled {
            d.enabled = e;
        }
        self.commit(vec![put("domain", &d.id, d.name.clone(), &d)])
            .await?;
        self.inner
            .keystone
            .write()
            .domains
            .insert(d.id.clone(), d.clone());
        Ok(d)
    }

    /// Delete a disabled domain (Keystone's rule) that holds no projects, users or groups
    /// and whose account holds no instances; its account goes with it.
    pub async fn ks_delete_domain(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        if id == DEFAULT_DOMAIN_ID {
            return Err(builtin("Domain default"));
        }
        let d = self.ks_domain(id)?;
        if d.enabled {
            return Err(KsError::Forbidden(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        {
            let dir = self.ks();
            if dir.projects.values().any(|p| p.domain_id == id)
                || dir.users.values().any(|u| u.domain_id == id)
                || dir.groups.values().any(|g| g.domain_id == id)
            {
                return Err(KsError::Conflict(format!(
                    "Domain {id} still holds projects, users or groups: delete them first."
                )));
            }
        }
        let busy = {
            let fleet = self.inner.fleet.lock();
            fleet.instances.values().any(|i| i.account == d.account)
                || fleet.key_pairs.values().any(|k| k.account == d.account)
                || fleet
                    .access_keys
                    .values()
                    .any(|(k, _)| k.account == d.account)
        };
        if busy {
            return Err(KsError::Conflict(format!(
                "Domain {id} (account {}) still holds instances, key pairs or access keys.",
                d.account
            )));
        }
        let grants: Vec<Assignment> = self
            .ks()
            .assignments
            .iter()
            .filter(|a| a.target == Target::Domain(id.into()))
            .cloned()
            .collect();
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.push(del("domain", id));
        writes.push(Write::DeleteAccount(d.account.clone()));
        self.commit(writes).await?;
        {
            let mut dir = self.inner.keystone.write();
            dir.domains.remove(id);
            for a in &grants {
                dir.assignments.remove(a);
            }
        }
        self.inner.fleet.lock().accounts.remove(&d.account);
        Ok(())
    }

    pub async fn ks_create_project(
        &self,
        name: &str,
        domain_id: &str,
        description: &str,
        enabled: bool,
    ) -> Result<Project, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name_max(name, MAX_SHORT_NAME)?;
        check_description(description)?;
        let p = {
            let dir = self.ks();
            self.ks_bound(dir.projects.len(), "projects")?;
            if !dir.domains.contains_key(domain_id) {
                return Err(KsError::NotFound("domain", domain_id.into()));
            }
            if dir
                .projects
                .values()
                .any(|p| p.name == name && p.domain_id == domain_id)
            {
                return Err(conflict("project", name, Some(domain_id)));
            }
            Project {
                id: new_id(),
                name: name.into(),
                domain_id: domain_id.into(),
                description: description.into(),
                enabled,
            }
        };
        self.commit(vec![put(
            "project",
            &p.id,
            format!("{}/{}", p.domain_id, p.name),
            &p,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .projects
            .insert(p.id.clone(), p.clone());
        Ok(p)
    }

    pub async fn ks_update_project(&self, id: &str, patch: Patch) -> Result<Project, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if id == default_project_id(ADMIN_ACCOUNT) {
            return Err(builtin("Project admin"));
        }
        let mut p = self.ks_project(id)?;
        if let Some(n) = &patch.name {
            check_name_max(n, MAX_SHORT_NAME)?;
            if self
                .ks()
                .projects
                .values()
                .any(|x| &x.name == n && x.domain_id == p.domain_id && x.id != id)
            {
                return Err(conflict("project", n, Some(&p.domain_id)));
            }
            p.name = n.clone();
        }
        if let Some(d) = &patch.description {
            check_description(d)?;
            p.description = d.clone();
        }
        if let Some(e) = patch.enabled {
            p.enabled = e;
        }
        self.commit(vec![put(
            "project",
            &p.id,
            format!("{}/{}", p.domain_id, p.name),
            &p,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .projects
            .insert(p.id.clone(), p.clone());
        Ok(p)
    }

    /// Delete a project with its role assignments and application credentials. Refused
    /// while instances carry it (they would be left to admins only).
    pub async fn ks_delete_project(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        if id == default_project_id(ADMIN_ACCOUNT) {
            return Err(builtin("Project admin"));
        }
        self.ks_project(id)?;
        let busy = self
            .inner
            .fleet
            .lock()
            .instances
            .values()
            .any(|i| i.state.is_listed() && i.project.as_deref() == Some(id));
        if busy {
            return Err(KsError::Conflict(format!(
                "Project {id} still holds servers: delete them first."
            )));
        }
        let (grants, creds) = {
            let dir = self.ks();
            let g: Vec<Assignment> = dir
                .assignments
                .iter()
                .filter(|a| a.target == Target::Project(id.into()))
                .cloned()
                .collect();
            let c: Vec<String> = dir
                .app_creds
                .values()
                .filter(|a| a.project_id == id)
                .map(|a| a.id.clone())
                .collect();
            (g, c)
        };
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.extend(creds.iter().map(|c| del("app_cred", c)));
        writes.push(del("project", id));
        self.commit(writes).await?;
        let mut dir = self.inner.keystone.write();
        dir.projects.remove(id);
        for a in &grants {
            dir.assignments.remove(a);
        }
        for c in &creds {
            dir.app_creds.remove(c);
        }
        Ok(())
    }

    async fn hash_password(&self, pw: &str) -> Result<String, KsError> {
        nubis_core::password::check_keystone_password(pw).map_err(|reason| {
            KsError::Invalid(format!("Invalid input for field 'password': {reason}"))
        })?;
        let pw = pw.to_string();
        tokio::task::spawn_blocking(move || nubis_auth::password::hash(&pw))
            .await
            .map_err(|e| KsError::Domain(DomainError::Internal(e.to_string())))
    }

    fn check_user_unique(&self, name: &str, domain: &str, except: &str) -> Result<(), KsError> {
        if self
            .ks_users()
            .iter()
            .any(|u| u.name == name && u.domain_id == domain && u.id != except)
        {
            return Err(conflict("user", name, Some(domain)));
        }
        Ok(())
    }

    pub async fn ks_create_user(&self, new: NewUser) -> Result<User, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name(&new.name)?;
        if let Some(d) = &new.description {
            check_description(d)?;
        }
        if new
            .email
            .as_ref()
            .is_some_and(|e| e.chars().count() > MAX_NAME)
        {
            return Err(KsError::Invalid(
                "Invalid input for field 'email': at most 255 characters.".into(),
            ));
        }
        {
            let dir = self.ks();
            self.ks_bound(dir.users.len(), "users")?;
            if !dir.domains.contains_key(&new.domain_id) {
                return Err(KsError::NotFound("domain", new.domain_id.clone()));
            }
            if let Some(p) = &new.default_project_id
                && !dir.projects.contains_key(p)
            {
                return Err(KsError::NotFound("project", p.clone()));
            }
        }
        self.check_user_unique(&new.name, &new.domain_id, "")?;
        let password_hash = match &new.password {
            Some(pw) => Some(self.hash_password(pw).await?),
            None => None,
        };
        let u = User {
            id: new_id(),
            name: new.name,
            domain_id: new.domain_id,
            enabled: new.enabled,
            password_hash,
            default_project_id: new.default_project_id,
            description: new.description,
            email: new.email,
        };
        self.commit(vec![put(
            "user",
            &u.id,
            format!("{}/{}", u.domain_id, u.name),
            &u,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .users
            .insert(u.id.clone(), u.clone());
        tracing::info!(user = %u.id, "keystone user created");
        Ok(u)
    }

    pub async fn ks_update_user(&self, id: &str, p: UserPatch) -> Result<User, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if self.is_builtin_user(id) {
            return Err(builtin(&format!("User {id}")));
        }
        let mut u = self.ks_user(id)?;
        if let Some(n) = &p.name {
            check_name(n)?;
            self.check_user_unique(n, &u.domain_id, id)?;
            u.name = n.clone();
        }
        if let Some(d) = &p.description {
            check_description(d)?;
            u.description = Some(d.clone());
        }
        if let Some(e) = p.enabled {
            u.enabled = e;
        }
        if let Some(e) = &p.email {
            u.email = Some(e.clone());
        }
        if let Some(dp) = &p.default_project_id {
            if let Some(pid) = dp {
                self.ks_project(pid)?;
            }
            u.default_project_id = dp.clone();
        }
        if let Some(pw) = &p.password {
            u.password_hash = Some(self.hash_password(pw).await?);
        }
        self.commit(vec![put(
            "user",
            &u.id,
            format!("{}/{}", u.domain_id, u.name),
            &u,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .users
            .insert(u.id.clone(), u.clone());
        Ok(u)
    }

    /// `POST /v3/users/{id}/password`: the original password must match.
    pub async fn ks_change_password(
        &self,
        id: &str,
        original: &str,
        new: &str,
    ) -> Result<(), KsError> {
        if self.is_builtin_user(id) {
            return Err(builtin(&format!("User {id}")));
        }
        let u = self.ks_user(id)?;
        if self
            .ks_authenticate(&UserRef::Id(u.id.clone()), original)
            .await
            .is_none()
        {
            return Err(KsError::Forbidden(
                "The original password is not correct.".into(),
            ));
        }
        self.ks_update_user(
            id,
            UserPatch {
                password: Some(new.to_string()),
                ..Default::default()
            },
        )
        .await
        .map(drop)
    }

    /// Delete a user with its memberships, role assignments and application credentials.
    pub async fn ks_delete_user(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        if self.is_builtin_user(id) {
            return Err(builtin(&format!("User {id}")));
        }
        self.ks_user(id)?;
        let (grants, members, creds) = {
            let dir = self.ks();
            let g: Vec<Assignment> = dir
                .assignments
                .iter()
                .filter(|a| a.actor == Actor::User(id.into()))
                .cloned()
                .collect();
            let m: Vec<(String, String)> = dir
                .members
                .iter()
                .filter(|(_, u)| u == id)
                .cloned()
                .collect();
            let c: Vec<String> = dir
                .app_creds
                .values()
                .filter(|a| a.user_id == id)
                .map(|a| a.id.clone())
                .collect();
            (g, m, c)
        };
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.extend(
            members
                .iter()
                .map(|(g, u)| del("membership", &format!("{g}:{u}"))),
        );
        writes.extend(creds.iter().map(|c| del("app_cred", c)));
        writes.push(del("user", id));
        self.commit(writes).await?;
        let mut dir = self.inner.keystone.write();
        dir.users.remove(id);
        for a in &grants {
            dir.assignments.remove(a);
        }
        for m in &members {
            dir.members.remove(m);
        }
        for c in &creds {
            dir.app_creds.remove(c);
        }
        Ok(())
    }

    pub async fn ks_create_group(
        &self,
        name: &str,
        domain_id: &str,
        description: &str,
    ) -> Result<Group, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name_max(name, MAX_SHORT_NAME)?;
        check_description(description)?;
        let g = {
            let dir = self.ks();
            self.ks_bound(dir.groups.len(), "groups")?;
            if !dir.domains.contains_key(domain_id) {
                return Err(KsError::NotFound("domain", domain_id.into()));
            }
            if dir
                .groups
                .values()
                .any(|g| g.name == name && g.domain_id == domain_id)
            {
                return Err(conflict("group", name, Some(domain_id)));
            }
            Group {
                id: new_id(),
                name: name.into(),
                domain_id: domain_id.into(),
                description: description.into(),
            }
        };
        self.commit(vec![put(
            "group",
            &g.id,
            format!("{}/{}", g.domain_id, g.name),
            &g,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .groups
            .insert(g.id.clone(), g.clone());
        Ok(g)
    }

    pub async fn ks_update_group(&self, id: &str, p: Patch) -> Result<Group, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let mut g = self.ks_group(id)?;
        if let Some(n) = &p.name {
            check_name_max(n, MAX_SHORT_NAME)?;
            if self
                .ks()
                .groups
                .values()
                .any(|x| &x.name == n && x.domain_id == g.domain_id && x.id != id)
            {
                return Err(conflict("group", n, Some(&g.domain_id)));
            }
            g.name = n.clone();
        }
        if let Some(d) = &p.description {
            check_description(d)?;
            g.description = d.clone();
        }
        self.commit(vec![put(
            "group",
            &g.id,
            format!("{}/{}", g.domain_id, g.name),
            &g,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .groups
            .insert(g.id.clone(), g.clone());
        Ok(g)
    }

    pub async fn ks_delete_group(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_group(id)?;
        let (grants, members) = {
            let dir = self.ks();
            let g: Vec<Assignment> = dir
                .assignments
                .iter()
                .filter(|a| a.actor == Actor::Group(id.into()))
                .cloned()
                .collect();
            let m: Vec<(String, String)> = dir
                .members
                .iter()
                .filter(|(g, _)| g == id)
                .cloned()
                .collect();
            (g, m)
        };
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.extend(
            members
                .iter()
                .map(|(g, u)| del("membership", &format!("{g}:{u}"))),
        );
        writes.push(del("group", id));
        self.commit(writes).await?;
        let mut dir = self.inner.keystone.write();
        dir.groups.remove(id);
        for a in &grants {
            dir.assignments.remove(a);
        }
        for m in &members {
            dir.members.remove(m);
        }
        Ok(())
    }

    /// Add (`on`) or remove a group member. Adding twice is accepted (Keystone's PUT);
    /// removing a non-member is 404.
    pub async fn ks_set_member(&self, group: &str, user: &str, on: bool) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_group(group)?;
        if self.is_builtin_user(user) {
            return Err(builtin(&format!("User {user}")));
        }
        self.ks_user(user)?;
        let key = (group.to_string(), user.to_string());
        let is = self.ks().members.contains(&key);
        let id = format!("{group}:{user}");
        match (on, is) {
            (true, true) => return Ok(()),
            (false, false) => {
                return Err(KsError::NotFound(
                    "membership",
                    format!("user {user} in group {group}"),
                ));
            }
            (true, false) => {
                let m = Membership {
                    group_id: group.into(),
                    user_id: user.into(),
                };
                self.commit(vec![put("membership", &id, id.clone(), &m)])
                    .await?;
                self.inner.keystone.write().members.insert(key);
            }
            (false, true) => {
                self.commit(vec![del("membership", &id)]).await?;
                self.inner.keystone.write().members.remove(&key);
            }
        }
        Ok(())
    }

    pub async fn ks_create_role(&self, name: &str, description: &str) -> Result<Role, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name(name)?;
        check_description(description)?;
        let r = {
            let dir = self.ks();
            self.ks_bound(dir.roles.len(), "roles")?;
            if dir
                .roles
                .values()
                .any(|r| r.name.eq_ignore_ascii_case(name))
            {
                return Err(conflict("role", name, None));
            }
            Role {
                id: new_id(),
                name: name.into(),
                description: description.into(),
            }
        };
        self.commit(vec![put("role", &r.id, r.name.to_lowercase(), &r)])
            .await?;
        self.inner
            .keystone
            .write()
            .roles
            .insert(r.id.clone(), r.clone());
        Ok(r)
    }

    fn is_builtin_role(id: &str) -> bool {
        BUILTIN_ROLES.iter().any(|r| builtin_role_id(r) == id)
    }

    pub async fn ks_update_role(&self, id: &str, p: Patch) -> Result<Role, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if Self::is_builtin_role(id) {
            return Err(builtin(&format!("Role {id}")));
        }
        let mut r = self.ks_role(id)?;
        if let Some(n) = &p.name {
            check_name(n)?;
            if self
                .ks()
                .roles
                .values()
                .any(|x| x.name.eq_ignore_ascii_case(n) && x.id != id)
            {
                return Err(conflict("role", n, None));
            }
            r.name = n.clone();
        }
        if let Some(d) = &p.description {
            check_description(d)?;
            r.description = d.clone();
        }
        self.commit(vec![put("role", &r.id, r.name.to_lowercase(), &r)])
            .await?;
        self.inner
            .keystone
            .write()
            .roles
            .insert(r.id.clone(), r.clone());
        Ok(r)
    }

    /// Delete a role with its assignments.
    pub async fn ks_delete_role(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        if Self::is_builtin_role(id) {
            return Err(builtin(&format!("Role {id}")));
        }
        self.ks_role(id)?;
        let grants: Vec<Assignment> = self
            .ks()
            .assignments
            .iter()
            .filter(|a| a.role_id == id)
            .cloned()
            .collect();
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.push(del("role", id));
        self.commit(writes).await?;
        let mut dir = self.inner.keystone.write();
        dir.roles.remove(id);
        for a in &grants {
            dir.assignments.remove(a);
        }
        Ok(())
    }

    fn check_grant_parts(&self, a: &Assignment) -> Result<(), KsError> {
        match &a.actor {
            Actor::User(u) => {
                self.ks_user(u)?;
            }
            Actor::Group(g) => {
                self.ks_group(g)?;
            }
        }
        match &a.target {
            Target::Project(p) => {
                self.ks_project(p)?;
            }
            Target::Domain(d) => {
                self.ks_domain(d)?;
            }
        }
        self.ks_role(&a.role_id)?;
        Ok(())
    }

    /// Is the assignment held (built-in ones included)?
    pub fn ks_has_grant(&self, a: &Assignment) -> Result<bool, KsError> {
        self.check_grant_parts(a)?;
        Ok(self.all_assignments().contains(a))
    }

    /// Grant (`on`) or revoke a role. Granting twice is accepted (Keystone's PUT); revoking
    /// an absent grant is 404; built-in grants cannot be revoked here.
    pub async fn ks_set_grant(&self, a: Assignment, on: bool) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.check_grant_parts(&a)?;
        if let Actor::User(u) = &a.actor
            && self.is_builtin_user(u)
        {
            return Err(builtin(&format!("User {u}")));
        }
        let is = self.ks().assignments.contains(&a);
        match (on, is) {
            (true, true) => {}
            (false, false) => {
                return Err(KsError::NotFound("role assignment", a.key()));
            }
            (true, false) => {
                self.ks_bound(self.ks().assignments.len(), "role assignments")?;
                self.commit(vec![put("assignment", &a.key(), a.key(), &a)])
                    .await?;
                self.inner.keystone.write().assignments.insert(a);
            }
            (false, true) => {
                self.commit(vec![del("assignment", &a.key())]).await?;
                self.inner.keystone.write().assignments.remove(&a);
            }
        }
        Ok(())
    }

    pub fn ks_app_creds(&self, user: &str) -> Vec<AppCred> {
        self.ks()
            .app_creds
            .values()
            .filter(|a| a.user_id == user)
            .cloned()
            .collect()
    }

    pub fn ks_app_cred(&self, user: &str, id: &str) -> Result<AppCred, KsError> {
        self.ks()
            .app_creds
            .get(id)
            .filter(|a| a.user_id == user)
            .cloned()
            .ok_or_else(|| KsError::NotFound("application credential", id.into()))
    }

    /// Create an application credential of `user` on `project` (the caller's token scope).
    /// Its roles must be a subset of the user's roles there (all of them when none are
    /// named); the secret is returned once.
    pub async fn ks_create_app_cred(
        &self,
        user: &str,
        project: &str,
        new: NewAppCred,
    ) -> Result<(AppCred, String), KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_name(&new.name)?;
        check_description(&new.description)?;
        if self.is_builtin_user(user) {
            return Err(KsError::Forbidden(
                "Application credentials need a user of the Keystone directory (the bootstrap users authenticate by password)."
                    .into(),
            ));
        }
        self.ks_user(user)?;
        self.ks_project(project)?;
        if new.expires_at.is_some_and(|e| e <= now_us()) {
            return Err(KsError::Invalid(
                "Invalid input for field 'expires_at': the expiration time is in the past.".into(),
            ));
        }
        let held: BTreeSet<String> = self.ks_roles_on(user, &Target::Project(project.into()));
        let dir_roles = self.ks_roles();
        let roles: Vec<String> = if new.roles.is_empty() {
            dir_roles
                .iter()
                .filter(|r| held.contains(&r.name.to_lowercase()))
                .map(|r| r.id.clone())
                .collect()
        } else {
            for r in &new.roles {
                let role = dir_roles
                    .iter()
                    .find(|x| &x.id == r)
                    .ok_or_else(|| KsError::NotFound("role", r.clone()))?;
                if !held.contains(&role.name.to_lowercase()) {
                    return Err(KsError::Forbidden(format!(
                        "Cannot create an application credential with a role ({}) the user does not hold on project {project}.",
                        role.name
                    )));
                }
            }
            new.roles.clone()
        };
        {
            let dir = self.ks();
            let mine = dir.app_creds.values().filter(|a| a.user_id == user);
            if mine.clone().count() >= MAX_APP_CREDS_PER_USER {
                return Err(KsError::Forbidden(format!(
                    "A user holds at most {MAX_APP_CREDS_PER_USER} application credentials."
                )));
            }
            if mine.clone().any(|a| a.name == new.name) {
                return Err(KsError::Conflict(format!(
                    "Conflict occurred attempting to store application_credential - Duplicate entry found with name {}.",
                    new.name
                )));
            }
        }
        let secret = match new.secret {
            Some(s) if !s.is_empty() && s.len() <= 1024 => s,
            Some(_) => {
                return Err(KsError::Invalid(
                    "Invalid input for field 'secret': 1 to 1024 characters.".into(),
                ));
            }
            None => {
                let mut b = [0u8; 48];
                rand::rng().fill_bytes(&mut b);
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
            }
        };
        let s = secret.clone();
        let secret_hash = tokio::task::spawn_blocking(move || nubis_auth::password::hash(&s))
            .await
            .map_err(|e| KsError::Domain(DomainError::Internal(e.to_string())))?;
        let ac = AppCred {
            id: new_id(),
            name: new.name,
            user_id: user.into(),
            project_id: project.into(),
            description: new.description,
            secret_hash,
            roles,
            expires_at: new.expires_at,
            unrestricted: new.unrestricted,
        };
        self.commit(vec![put(
            "app_cred",
            &ac.id,
            format!("{}/{}", ac.user_id, ac.name),
            &ac,
        )])
        .await?;
        self.inner
            .keystone
            .write()
            .app_creds
            .insert(ac.id.clone(), ac.clone());
        Ok((ac, secret))
    }

    pub async fn ks_delete_app_cred(&self, user: &str, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_app_cred(user, id)?;
        self.commit(vec![del("app_cred", id)]).await?;
        self.inner.keystone.write().app_creds.remove(id);
        Ok(())
    }
}

fn legacy_user(name: &str) -> User {
    User {
        id: legacy_user_id(name),
        name: name.into(),
        domain_id: DEFAULT_DOMAIN_ID.into(),
        enabled: true,
        password_hash: None,
        default_project_id: None,
        description: Some("Managed through the admin API (keystone-users)".into()),
        email: None,
    }
}
