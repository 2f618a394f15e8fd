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
use serde::de::DeserializeOwned;
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

pub mod access_rules;
pub mod catalog;
pub mod credentials;
pub mod domain_config;
pub mod trusts;
pub use access_rules::{AccessRule, RuleRef};
pub use catalog::{Endpoint, EndpointGroup, Policy, Region, Service};
pub use credentials::Credential;

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
    /// The parent project (`None`: the domain is the parent, a top-level project).
    #[serde(default)]
    pub parent_id: Option<String>,
    /// Keystone's project tags (see [`check_tags`]).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Keystone's bounds on project tags: at most 80 a project, each 1–255 characters without
/// `/` or `,`, no duplicates.
pub const MAX_PROJECT_TAGS: usize = 80;
pub const MAX_TAG: usize = 255;

pub fn check_tags(tags: &[String]) -> Result<(), KsError> {
    if tags.len() > MAX_PROJECT_TAGS {
        return Err(KsError::Invalid(format!(
            "Invalid input for field 'tags': a project holds at most {MAX_PROJECT_TAGS} tags."
        )));
    }
    for (i, t) in tags.iter().enumerate() {
        let n = t.chars().count();
        if n == 0 || n > MAX_TAG || t.contains(['/', ',']) {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'tags': '{t}' is not a tag (1 to {MAX_TAG} characters, no '/' or ',')."
            )));
        }
        if tags[..i].contains(t) {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'tags': '{t}' is given twice."
            )));
        }
    }
    Ok(())
}

impl Project {
    /// The parent as Keystone shows it: the parent project, else the domain.
    pub fn parent(&self) -> &str {
        self.parent_id.as_deref().unwrap_or(&self.domain_id)
    }
}

/// Keystone's `[DEFAULT] max_project_tree_depth`: a hierarchy at most 5 projects deep.
pub const MAX_PROJECT_DEPTH: usize = 5;

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
    /// Keystone keeps the attributes of a user it does not know and shows them back
    /// (`extra`), bounded by [`MAX_USER_EXTRA`] and [`MAX_USER_EXTRA_BYTES`].
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The hashes of its previous passwords, newest first (as many as
    /// [`SecurityCompliance::unique_last_password_count`] asks to remember, less one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub password_history: Vec<String>,
    /// Failed password logins in a row, and when the last one was (Unix µs): the lockout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_auth: Option<(u32, i64)>,
}

/// Why a password login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Wrong user or password (one answer for both).
    Refused,
    /// The user (by name) is locked out after too many failures (Keystone's lockout).
    Locked(String),
}

/// Keystone's `[security_compliance]` options nubis enforces (0: off, Keystone's defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecurityCompliance {
    /// `lockout_failure_attempts`: failed password logins in a row that lock the user.
    pub lockout_failure_attempts: u32,
    /// `lockout_duration` (seconds): how long a locked user stays locked.
    pub lockout_duration_secs: u64,
    /// `unique_last_password_count`: a new password may not be the current one or any of
    /// the last this-many-less-one (1 or 0: no history).
    pub unique_last_password_count: u32,
}

/// At most this many previous passwords are remembered (nubis).
pub const MAX_PASSWORD_HISTORY: u32 = 24;

/// Extra attributes per user (nubis).
pub const MAX_USER_EXTRA: usize = 32;
/// The extra attributes of a user, serialized (nubis).
pub const MAX_USER_EXTRA_BYTES: usize = 8192;

fn check_extra(extra: &BTreeMap<String, serde_json::Value>) -> Result<(), KsError> {
    let bytes = serde_json::to_string(extra).map_or(usize::MAX, |s| s.len());
    if extra.len() > MAX_USER_EXTRA || bytes > MAX_USER_EXTRA_BYTES {
        return Err(KsError::Invalid(format!(
            "A user holds at most {MAX_USER_EXTRA} extra attributes of {MAX_USER_EXTRA_BYTES} bytes in all."
        )));
    }
    Ok(())
}

/// `Debug` showing only the named fields (never a password or secret hash).
macro_rules! debug_fields {
    ($t:ident: $($field:ident),*) => {
        impl std::fmt::Debug for $t {
            fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                out.debug_struct(stringify!($t))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

debug_fields!(User: id, name, domain_id, enabled);

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
    /// A domain-specific role's domain (`None`: a global role). Domain-specific roles are
    /// never put in tokens: they only imply other roles.
    #[serde(default)]
    pub domain_id: Option<String>,
}

/// A role inference rule: holding `prior_role_id` implies holding `implied_role_id`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Implication {
    pub prior_role_id: String,
    pub implied_role_id: String,
}

impl Implication {
    fn key(&self) -> String {
        format!("{}:{}", self.prior_role_id, self.implied_role_id)
    }
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
    /// The whole deployment (Keystone's system scope, `{"system": {"all": true}}`).
    System,
}

impl Target {
    pub fn project(&self) -> Option<&String> {
        match self {
            Self::Project(p) => Some(p),
            Self::Domain(_) | Self::System => None,
        }
    }

    pub fn domain(&self) -> Option<&String> {
        match self {
            Self::Domain(d) => Some(d),
            Self::Project(_) | Self::System => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Assignment {
    pub actor: Actor,
    pub target: Target,
    pub role_id: String,
    /// OS-INHERIT: the role applies to the projects under the target (every project of a
    /// domain, the sub-projects of a project), not to the target itself.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inherited: bool,
}

impl Assignment {
    fn key(&self) -> String {
        let (ak, a) = match &self.actor {
            Actor::User(u) => ("user", u),
            Actor::Group(g) => ("group", g),
        };
        let (tk, t) = match &self.target {
            Target::Project(p) => ("project", p.as_str()),
            Target::Domain(d) => ("domain", d.as_str()),
            Target::System => ("system", "all"),
        };
        let inherited = if self.inherited { ":inherited" } else { "" };
        format!("{ak}:{a}:{tk}:{t}:{}{inherited}", self.role_id)
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
    /// The IDs of its access rules (`access_rules::AccessRule`); empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_rules: Vec<String>,
}

debug_fields!(AppCred: id, name, user_id, project_id);

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
pub struct KsDir {
    domains: BTreeMap<String, Domain>,
    projects: BTreeMap<String, Project>,
    users: BTreeMap<String, User>,
    groups: BTreeMap<String, Group>,
    roles: BTreeMap<String, Role>,
    members: BTreeSet<(String, String)>,
    assignments: BTreeSet<Assignment>,
    app_creds: BTreeMap<String, AppCred>,
    access_rules: BTreeMap<String, AccessRule>,
    /// Role inference rules created through the API (the built-in ones are not stored).
    implied: BTreeSet<Implication>,
    regions: BTreeMap<String, Region>,
    services: BTreeMap<String, Service>,
    endpoints: BTreeMap<String, Endpoint>,
    credentials: BTreeMap<String, Credential>,
    policies: BTreeMap<String, Policy>,
    endpoint_groups: BTreeMap<String, EndpointGroup>,
    domain_configs: BTreeMap<String, domain_config::DomainConfig>,
    consumers: BTreeMap<String, credentials::Consumer>,
    trusts: BTreeMap<String, trusts::Trust>,
}

/// What deleting an object may take with it.
pub enum Link<'a> {
    Grant(&'a Assignment),
    /// (group, user).
    Member(&'a (String, String)),
    Cred(&'a AppCred),
    Implied(&'a Implication),
}

/// A kind of directory object: where the directory keeps it, how it is stored and named,
/// and what is special about it (built-in objects, what deleting one checks and takes
/// along). The engine's reads and writes are written once over it.
pub trait Object: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Its kind in `keystone_objects`.
    const KIND: &'static str;
    /// Its name in "Could not find …".
    const NOUN: &'static str = Self::KIND;
    /// Its plural in the bound's refusal.
    const PLURAL: &'static str;
    /// The longest name (Keystone's schema).
    const MAX_NAME: usize = MAX_SHORT_NAME;
    #[doc(hidden)]
    fn table(dir: &KsDir) -> &BTreeMap<String, Self>;
    #[doc(hidden)]
    fn table_mut(dir: &mut KsDir) -> &mut BTreeMap<String, Self>;
    fn id(&self) -> &str;
    fn name(&self) -> &str;
    /// The domain its name is unique in (`None`: unique everywhere).
    fn domain(&self) -> Option<&str> {
        None
    }
    fn enabled(&self) -> Option<bool> {
        None
    }
    /// The enabled flag of a kind that has one, to patch.
    #[doc(hidden)]
    fn enabled_mut(&mut self) -> Option<&mut bool> {
        None
    }
    /// Does `name` clash with this object's name?
    fn same_name(&self, name: &str) -> bool {
        self.name() == name
    }
    /// The store's lookup column (unique per kind).
    fn name_key(&self) -> String {
        match self.domain() {
            Some(d) => format!("{d}/{}", self.name()),
            None => self.name().to_string(),
        }
    }
    /// `Some(what)` when `id` is built in: it cannot be changed or deleted.
    fn builtin(_e: &Engine, _id: &str) -> Option<String> {
        None
    }
    /// One object, the built-in ones included.
    fn find(e: &Engine, id: &str) -> Option<Self> {
        Self::table(&e.ks()).get(id).cloned()
    }
    /// Every object, the built-in ones included.
    fn all(e: &Engine) -> Vec<Self> {
        Self::table(&e.ks()).values().cloned().collect()
    }
    /// Does deleting object `id` take `link` with it?
    fn takes(_id: &str, _link: Link<'_>) -> bool {
        false
    }
    /// What deleting `v` checks beyond built-in and existence; the writes it adds.
    fn check_delete(_e: &Engine, _v: &Self) -> Result<Vec<Write>, KsError> {
        Ok(Vec::new())
    }
    /// After `v`'s deletion is committed and applied.
    fn after_delete(_e: &Engine, _v: &Self) {}
}

/// A kind changed by a `Patch` (domains, projects, groups, roles).
pub trait Patchable: Object {
    /// The name and the description, to patch.
    #[doc(hidden)]
    fn fields(&mut self) -> (&mut String, &mut String);
}

macro_rules! patchable {
    ($($t:ty),*) => {$(
        impl Patchable for $t {
            fn fields(&mut self) -> (&mut String, &mut String) {
                (&mut self.name, &mut self.description)
            }
        }
    )*};
}

patchable!(Domain, Project, Group, Role);

/// An `Object` impl: the table, the ID and name fields, then what is special.
macro_rules! object {
    ($t:ty, $table:ident, $kind:literal, $plural:literal; $($extra:tt)*) => {
        impl Object for $t {
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            fn table(dir: &KsDir) -> &BTreeMap<String, Self> {
                &dir.$table
            }
            fn table_mut(dir: &mut KsDir) -> &mut BTreeMap<String, Self> {
                &mut dir.$table
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.name
            }
            $($extra)*
        }
    };
}

/// An `Object` impl for a kind without a name of its own (credentials, trusts, …): its ID
/// stands for the name, no two clash; the store's name key is the ID unless given.
macro_rules! id_named {
    ($t:ty, $table:ident, $kind:literal, $noun:literal, $plural:literal $(, |$s:ident| $key:expr)?) => {
        impl $crate::keystone::Object for $t {
            const KIND: &'static str = $kind;
            const NOUN: &'static str = $noun;
            const PLURAL: &'static str = $plural;
            fn table(dir: &$crate::keystone::KsDir) -> &std::collections::BTreeMap<String, Self> {
                &dir.$table
            }
            fn table_mut(
                dir: &mut $crate::keystone::KsDir,
            ) -> &mut std::collections::BTreeMap<String, Self> {
                &mut dir.$table
            }
            fn id(&self) -> &str {
                &self.id
            }
            fn name(&self) -> &str {
                &self.id
            }
            fn same_name(&self, _name: &str) -> bool {
                false
            }
            fn name_key(&self) -> String {
                $(let $s = self; return $key;)?
                #[allow(unreachable_code)]
                self.id.clone()
            }
        }
    };
}
pub(crate) use id_named;

object! {
    Domain, domains, "domain", "domains";
    fn enabled(&self) -> Option<bool> {
        Some(self.enabled)
    }
    fn enabled_mut(&mut self) -> Option<&mut bool> {
        Some(&mut self.enabled)
    }
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        (id == DEFAULT_DOMAIN_ID).then(|| "Domain default".into())
    }
    fn takes(id: &str, link: Link<'_>) -> bool {
        matches!(link, Link::Grant(a) if a.target == Target::Domain(id.into()))
    }
    /// A disabled domain (Keystone's rule) whose account holds no instances; its account
    /// goes with it, and so does its content (Keystone cascades): its projects, users,
    /// groups and domain-specific roles with their grants, memberships, application
    /// credentials and role inference rules.
    fn check_delete(e: &Engine, d: &Self) -> Result<Vec<Write>, KsError> {
        let id = &d.id;
        if d.enabled {
            return Err(KsError::Forbidden(
                "Cannot delete a domain that is enabled, please disable it first.".into(),
            ));
        }
        let fleet = e.inner.fleet.lock();
        if fleet.instances.read().rows().any(|r| r.account() == d.account)
            || fleet.key_pairs.values().any(|k| k.account == d.account)
            || fleet.access_keys.values().any(|(k, _)| k.account == d.account)
        {
            return Err(KsError::Conflict(format!(
                "Domain {id} (account {}) still holds instances, key pairs or access keys.",
                d.account
            )));
        }
        drop(fleet);
        let mut writes = e.ks().content_of(id).writes();
        if e.ks().domain_configs.contains_key(id) {
            writes.push(del("domain_config", id));
        }
        writes.push(Write::DeleteAccount(d.account.clone()));
        Ok(writes)
    }
    fn after_delete(e: &Engine, d: &Self) {
        e.inner.fleet.lock().accounts.remove(&d.account);
        let mut dir = e.inner.keystone.write();
        let content = dir.content_of(&d.id);
        content.remove_from(&mut dir);
        dir.domain_configs.remove(&d.id);
    }
}

object! {
    Project, projects, "project", "projects";
    fn domain(&self) -> Option<&str> {
        Some(&self.domain_id)
    }
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        (id == default_project_id(ADMIN_ACCOUNT)).then(|| "Project admin".into())
    }
    fn enabled(&self) -> Option<bool> {
        Some(self.enabled)
    }
    fn enabled_mut(&mut self) -> Option<&mut bool> {
        Some(&mut self.enabled)
    }
    fn takes(id: &str, link: Link<'_>) -> bool {
        match link {
            Link::Grant(a) => a.target == Target::Project(id.into()),
            Link::Cred(c) => c.project_id == id,
            Link::Member(_) | Link::Implied(_) => false,
        }
    }
    /// Refused while instances carry the project (they would be left to admins only), and
    /// while it has sub-projects (Keystone: only a leaf is deleted).
    fn check_delete(e: &Engine, p: &Self) -> Result<Vec<Write>, KsError> {
        if e.ks().projects.values().any(|c| c.parent_id.as_ref() == Some(&p.id)) {
            return Err(KsError::Forbidden(format!(
                "Cannot delete the project {} since it is not a leaf in the hierarchy. Use the cascade option if you want to delete a whole subtree.",
                p.id
            )));
        }
        let busy = e.inner.fleet.lock().instances.read().rows().any(|r| {
            r.state().is_listed() && r.project() == Some(p.id.as_str())
        });
        if busy {
            return Err(KsError::Conflict(format!(
                "Project {} still holds servers: delete them first.",
                p.id
            )));
        }
        let dir = e.ks();
        let mut w = dir.credentials_where(|c| c.project_id.as_ref() == Some(&p.id)).1;
        w.extend(dir.trusts_where(|t| t.project_id.as_ref() == Some(&p.id)).1);
        Ok(w)
    }
    fn after_delete(e: &Engine, p: &Self) {
        let mut dir = e.inner.keystone.write();
        dir.credentials.retain(|_, c| c.project_id.as_ref() != Some(&p.id));
        dir.trusts.retain(|_, t| t.project_id.as_ref() != Some(&p.id));
    }
}

object! {
    User, users, "user", "users";
    const MAX_NAME: usize = MAX_NAME;
    /// Its credentials go with it.
    fn check_delete(e: &Engine, u: &Self) -> Result<Vec<Write>, KsError> {
        let dir = e.ks();
        let mut w = dir.credentials_where(|c| c.user_id == u.id).1;
        w.extend(dir.trusts_where(|t| t.trustor_user_id == u.id || t.trustee_user_id == u.id).1);
        w.extend(dir.access_rules_where(|r| r.user_id == u.id).1);
        Ok(w)
    }
    fn after_delete(e: &Engine, u: &Self) {
        let mut dir = e.inner.keystone.write();
        dir.credentials.retain(|_, c| c.user_id != u.id);
        dir.access_rules.retain(|_, r| r.user_id != u.id);
        dir.trusts.retain(|_, t| t.trustor_user_id != u.id && t.trustee_user_id != u.id);
    }
    fn domain(&self) -> Option<&str> {
        Some(&self.domain_id)
    }
    fn enabled(&self) -> Option<bool> {
        Some(self.enabled)
    }
    fn builtin(e: &Engine, id: &str) -> Option<String> {
        e.is_builtin_user(id).then(|| format!("User {id}"))
    }
    fn find(e: &Engine, id: &str) -> Option<Self> {
        if id == admin_user_id() {
            return Some(e.admin_ks_user());
        }
        if let Some(n) = e.legacy_name(id) {
            return Some(legacy_user(&n));
        }
        e.ks().users.get(id).cloned()
    }
    /// The built-in admin, the admin API's users, the directory's.
    fn all(e: &Engine) -> Vec<Self> {
        let mut v = vec![e.admin_ks_user()];
        let legacy: Vec<String> = e.inner.fleet.lock().keystone_users.keys().cloned().collect();
        v.extend(legacy.iter().map(|n| legacy_user(n)));
        v.extend(e.ks().users.values().cloned());
        v
    }
    fn takes(id: &str, link: Link<'_>) -> bool {
        match link {
            Link::Grant(a) => a.actor == Actor::User(id.into()),
            Link::Member((_, u)) => u == id,
            Link::Cred(c) => c.user_id == id,
            Link::Implied(_) => false,
        }
    }
}

object! {
    Group, groups, "group", "groups";
    fn domain(&self) -> Option<&str> {
        Some(&self.domain_id)
    }
    fn takes(id: &str, link: Link<'_>) -> bool {
        match link {
            Link::Grant(a) => a.actor == Actor::Group(id.into()),
            Link::Member((g, _)) => g == id,
            Link::Cred(_) | Link::Implied(_) => false,
        }
    }
}

object! {
    Role, roles, "role", "roles";
    const MAX_NAME: usize = MAX_NAME;
    fn same_name(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
    fn name_key(&self) -> String {
        match &self.domain_id {
            Some(d) => format!("{d}/{}", self.name.to_lowercase()),
            None => self.name.to_lowercase(),
        }
    }
    fn domain(&self) -> Option<&str> {
        self.domain_id.as_deref()
    }
    fn builtin(_e: &Engine, id: &str) -> Option<String> {
        BUILTIN_ROLES
            .iter()
            .any(|r| builtin_role_id(r) == id)
            .then(|| format!("Role {id}"))
    }
    fn takes(id: &str, link: Link<'_>) -> bool {
        match link {
            Link::Grant(a) => a.role_id == id,
            Link::Implied(i) => i.prior_role_id == id || i.implied_role_id == id,
            Link::Member(_) | Link::Cred(_) => false,
        }
    }
}

object! {
    AppCred, app_creds, "app_cred", "application credentials";
    const NOUN: &'static str = "application credential";
    const MAX_NAME: usize = MAX_NAME;
    fn name_key(&self) -> String {
        format!("{}/{}", self.user_id, self.name)
    }
}

/// What a domain holds, and what goes with it when the domain is deleted.
#[derive(Default)]
struct Content {
    projects: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    roles: Vec<String>,
    grants: Vec<Assignment>,
    members: Vec<(String, String)>,
    creds: Vec<String>,
    implied: Vec<Implication>,
    credentials: Vec<String>,
    trusts: Vec<String>,
    access_rules: Vec<String>,
}

impl Content {
    fn writes(&self) -> Vec<Write> {
        let mut w: Vec<Write> = self
            .grants
            .iter()
            .map(|a| del("assignment", &a.key()))
            .collect();
        w.extend(
            self.members
                .iter()
                .map(|(g, u)| del("membership", &format!("{g}:{u}"))),
        );
        w.extend(self.creds.iter().map(|c| del("app_cred", c)));
        w.extend(self.implied.iter().map(|i| del("implied_role", &i.key())));
        w.extend(self.credentials.iter().map(|c| del("credential", c)));
        w.extend(self.trusts.iter().map(|t| del("trust", t)));
        w.extend(self.access_rules.iter().map(|r| del("access_rule", r)));
        w.extend(self.projects.iter().map(|p| del("project", p)));
        w.extend(self.users.iter().map(|u| del("user", u)));
        w.extend(self.groups.iter().map(|g| del("group", g)));
        w.extend(self.roles.iter().map(|r| del("role", r)));
        w
    }

    fn remove_from(self, dir: &mut KsDir) {
        for a in &self.grants {
            dir.assignments.remove(a);
        }
        for m in &self.members {
            dir.members.remove(m);
        }
        for c in &self.creds {
            dir.app_creds.remove(c);
        }
        for i in &self.implied {
            dir.implied.remove(i);
        }
        for c in &self.credentials {
            dir.credentials.remove(c);
        }
        for t in &self.trusts {
            dir.trusts.remove(t);
        }
        for r in &self.access_rules {
            dir.access_rules.remove(r);
        }
        for p in &self.projects {
            dir.projects.remove(p);
        }
        for u in &self.users {
            dir.users.remove(u);
        }
        for g in &self.groups {
            dir.groups.remove(g);
        }
        for r in &self.roles {
            dir.roles.remove(r);
        }
    }
}

impl KsDir {
    /// Domain `id`'s content and everything linked to it.
    fn content_of(&self, id: &str) -> Content {
        let mine = |d: &String| d == id;
        let projects: BTreeSet<String> = (self.projects.values())
            .filter(|p| mine(&p.domain_id))
            .map(|p| p.id.clone())
            .collect();
        let users: BTreeSet<String> = (self.users.values())
            .filter(|u| mine(&u.domain_id))
            .map(|u| u.id.clone())
            .collect();
        let groups: BTreeSet<String> = (self.groups.values())
            .filter(|g| mine(&g.domain_id))
            .map(|g| g.id.clone())
            .collect();
        let roles: BTreeSet<String> = (self.roles.values())
            .filter(|r| r.domain_id.as_deref() == Some(id))
            .map(|r| r.id.clone())
            .collect();
        let grants = (self.assignments.iter())
            .filter(|a| {
                let actor = match &a.actor {
                    Actor::User(u) => users.contains(u),
                    Actor::Group(g) => groups.contains(g),
                };
                let target = match &a.target {
                    Target::Project(p) => projects.contains(p),
                    // Taken with the domain itself (`Domain::takes`).
                    Target::Domain(d) if d == id => return false,
                    Target::Domain(_) | Target::System => false,
                };
                actor || target || roles.contains(&a.role_id)
            })
            .cloned()
            .collect();
        let members = (self.members.iter())
            .filter(|(g, u)| groups.contains(g) || users.contains(u))
            .cloned()
            .collect();
        let creds = (self.app_creds.values())
            .filter(|c| users.contains(&c.user_id) || projects.contains(&c.project_id))
            .map(|c| c.id.clone())
            .collect();
        let implied = (self.implied.iter())
            .filter(|i| roles.contains(&i.prior_role_id) || roles.contains(&i.implied_role_id))
            .cloned()
            .collect();
        let credentials = self
            .credentials_where(|c| {
                users.contains(&c.user_id)
                    || c.project_id.as_ref().is_some_and(|p| projects.contains(p))
            })
            .0;
        let trusts = self
            .trusts_where(|t| {
                users.contains(&t.trustor_user_id)
                    || users.contains(&t.trustee_user_id)
                    || t.project_id.as_ref().is_some_and(|p| projects.contains(p))
            })
            .0;
        let access_rules = self.access_rules_where(|r| users.contains(&r.user_id)).0;
        Content {
            projects: projects.into_iter().collect(),
            users: users.into_iter().collect(),
            groups: groups.into_iter().collect(),
            roles: roles.into_iter().collect(),
            grants,
            members,
            creds,
            implied,
            credentials,
            trusts,
            access_rules,
        }
    }

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
                parent_id: None,
                tags: Vec::new(),
            },
        );
        for r in BUILTIN_ROLES {
            d.roles.insert(
                builtin_role_id(r),
                Role {
                    id: builtin_role_id(r),
                    name: (*r).into(),
                    description: String::new(),
                    domain_id: None,
                },
            );
        }
        d.load_catalog();
        for (kind, data) in rows {
            match kind.as_str() {
                "region" => d.load_one::<Region>(data),
                "service" => d.load_one::<Service>(data),
                "endpoint" => d.load_one::<Endpoint>(data),
                "credential" => d.load_one::<Credential>(data),
                "policy" => d.load_one::<Policy>(data),
                "endpoint_group" => d.load_one::<EndpointGroup>(data),
                "domain_config" => d.load_one::<domain_config::DomainConfig>(data),
                "oauth_consumer" => d.load_one::<credentials::Consumer>(data),
                "trust" => d.load_one::<trusts::Trust>(data),
                "domain" => d.load_one::<Domain>(data),
                "project" => d.load_one::<Project>(data),
                "user" => d.load_one::<User>(data),
                "group" => d.load_one::<Group>(data),
                "role" => d.load_one::<Role>(data),
                "app_cred" => d.load_one::<AppCred>(data),
                "access_rule" => d.load_one::<AccessRule>(data),
                "membership" => serde_json::from_str::<Membership>(data).map(|v| {
                    d.members.insert((v.group_id, v.user_id));
                }),
                "assignment" => serde_json::from_str::<Assignment>(data).map(|v| {
                    d.assignments.insert(v);
                }),
                "implied_role" => serde_json::from_str::<Implication>(data).map(|v| {
                    d.implied.insert(v);
                }),
                other => {
                    return Err(DomainError::Internal(format!(
                        "unknown keystone object kind {other}"
                    )));
                }
            }
            .map_err(|e| DomainError::Internal(format!("keystone object: {e}")))?;
        }
        Ok(d)
    }

    fn load_one<K: Object>(&mut self, data: &str) -> Result<(), serde_json::Error> {
        let v: K = serde_json::from_str(data)?;
        K::table_mut(self).insert(v.id().to_string(), v);
        Ok(())
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

/// Refused when another object of `v`'s kind holds its name where names are unique.
fn unique<'a, K: Object>(mut all: impl Iterator<Item = &'a K>, v: &K) -> Result<(), KsError> {
    if all.any(|x| x.id() != v.id() && x.domain() == v.domain() && x.same_name(v.name())) {
        return Err(conflict(K::KIND, v.name(), v.domain()));
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
    /// Extra attributes to set (a `null` value removes one).
    pub extra: BTreeMap<String, serde_json::Value>,
    /// The user changes its own password (`POST /v3/users/{id}/password`): the password
    /// history applies.
    pub self_service: bool,
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
    pub extra: BTreeMap<String, serde_json::Value>,
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
    /// The access rules tokens of it are held to (docs/keystone-v3.md).
    pub access_rules: Vec<RuleRef>,
}

/// Filters of `GET /v3/role_assignments`.
#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub user: Option<String>,
    pub group: Option<String>,
    pub role: Option<String>,
    pub project: Option<String>,
    pub domain: Option<String>,
    /// Only system assignments (`scope.system=all`).
    pub system: bool,
    /// Only inherited (`Some(true)`) or direct (`Some(false)`) assignments.
    pub inherited: Option<bool>,
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

    /// One object of kind `K`, the built-in ones included.
    pub fn ks_get<K: Object>(&self, id: &str) -> Result<K, KsError> {
        K::find(self, id).ok_or_else(|| KsError::NotFound(K::NOUN, id.into()))
    }

    /// Every object of kind `K`, the built-in ones included.
    pub fn ks_list<K: Object>(&self) -> Vec<K> {
        K::all(self)
    }

    pub fn ks_domain(&self, id: &str) -> Result<Domain, KsError> {
        self.ks_get(id)
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

    pub fn ks_project(&self, id: &str) -> Result<Project, KsError> {
        self.ks_get(id)
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
        self.ks_list()
    }

    /// A user by name in a domain given by ID or by name.
    pub fn ks_user_named(&self, name: &str, domain: &DomainRef) -> Option<User> {
        let d = self.ks_domain_by_ref(domain)?;
        self.ks_users()
            .into_iter()
            .find(|u| u.name == name && u.domain_id == d.id)
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
            extra: BTreeMap::new(),
            password_history: Vec::new(),
            failed_auth: None,
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
        self.ks_get(id)
    }

    pub fn ks_roles(&self) -> Vec<Role> {
        self.ks_list()
    }

    pub fn ks_role(&self, id: &str) -> Result<Role, KsError> {
        self.ks_get(id)
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
        self.ks_get::<Group>(group)?;
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
        let mut v = vec![
            Assignment {
                actor: Actor::User(admin_user_id()),
                target: Target::Project(admin_project.clone()),
                role_id: builtin_role_id("admin"),
                inherited: false,
            },
            // `keystone-manage bootstrap` gives the admin `admin` on the system as well.
            Assignment {
                actor: Actor::User(admin_user_id()),
                target: Target::System,
                role_id: builtin_role_id("admin"),
                inherited: false,
            },
        ];
        for (name, (_, roles)) in self.inner.fleet.lock().keystone_users.iter() {
            for r in roles {
                v.push(Assignment {
                    actor: Actor::User(legacy_user_id(name)),
                    target: Target::Project(admin_project.clone()),
                    role_id: builtin_role_id(r),
                    inherited: false,
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
            // Inherited assignments become assignments on the projects they apply to.
            let mut concrete = Vec::new();
            for a in all {
                if a.inherited {
                    for p in self.inheriting_projects(&a.target) {
                        concrete.push(Assignment {
                            target: Target::Project(p),
                            inherited: false,
                            ..a.clone()
                        });
                    }
                } else {
                    concrete.push(a);
                }
            }
            all = concrete;
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
            // Each assignment brings the roles its role implies; domain-specific roles
            // only imply (Keystone leaves them out of the effective list).
            let mut implied = Vec::new();
            for a in &expanded {
                for id in self.ks_implied_closure(BTreeSet::from([a.role_id.clone()])) {
                    if id != a.role_id {
                        implied.push(Assignment {
                            role_id: id,
                            ..a.clone()
                        });
                    }
                }
            }
            expanded.extend(implied);
            {
                let dir = self.ks();
                expanded.retain(|a| {
                    dir.roles
                        .get(&a.role_id)
                        .is_some_and(|r| r.domain_id.is_none())
                });
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
                && (!f.system || a.target == Target::System)
                && f.inherited.is_none_or(|i| a.inherited == i)
        });
        all
    }

    /// The role names `user` holds on `target` (directly or through its groups), with the
    /// roles they imply; domain-specific roles only imply (Keystone never puts them in a
    /// token).
    pub fn ks_roles_on(&self, user: &str, target: &Target) -> BTreeSet<String> {
        let groups: BTreeSet<String> = self
            .ks_user_groups(user)
            .into_iter()
            .map(|g| g.id)
            .collect();
        let sources = self.inherited_from(target);
        let assigned: BTreeSet<String> = self
            .all_assignments()
            .into_iter()
            .filter(|a| {
                if a.inherited {
                    sources.contains(&a.target)
                } else {
                    &a.target == target
                }
            })
            .filter(|a| match &a.actor {
                Actor::User(u) => u == user,
                Actor::Group(g) => groups.contains(g),
            })
            .map(|a| a.role_id)
            .collect();
        let held = self.ks_implied_closure(assigned);
        let dir = self.ks();
        held.iter()
            .filter_map(|id| dir.roles.get(id))
            .filter(|r| r.domain_id.is_none())
            .map(|r| r.name.to_lowercase())
            .collect()
    }

    /// The targets whose inherited assignments apply to `target`: for a project, its domain
    /// and its ancestors (OS-INHERIT); nothing for a domain or the system.
    fn inherited_from(&self, target: &Target) -> Vec<Target> {
        let Target::Project(p) = target else {
            return Vec::new();
        };
        let dir = self.ks();
        let Some(mut at) = dir.projects.get(p) else {
            return Vec::new();
        };
        let mut v = vec![Target::Domain(at.domain_id.clone())];
        while let Some(up) = at.parent_id.as_ref().and_then(|x| dir.projects.get(x)) {
            if v.len() > MAX_PROJECT_DEPTH + 1 {
                break;
            }
            v.push(Target::Project(up.id.clone()));
            at = up;
        }
        v
    }

    /// The projects an inherited assignment on `target` applies to.
    fn inheriting_projects(&self, target: &Target) -> Vec<String> {
        let ids: Vec<String> = self.ks().projects.keys().cloned().collect();
        ids.into_iter()
            .filter(|p| {
                self.inherited_from(&Target::Project(p.clone()))
                    .contains(target)
            })
            .collect()
    }

    /// Every role inference rule: the built-in ones (Keystone's bootstrap implications, see
    /// [`nubis_identity::model::IMPLIED_ROLES`], between roles that exist) and the created
    /// ones.
    pub fn ks_implications(&self) -> Vec<Implication> {
        let dir = self.ks();
        let id_of = |name: &str| {
            (dir.roles.values())
                .find(|r| r.domain_id.is_none() && r.name.eq_ignore_ascii_case(name))
                .map(|r| r.id.clone())
        };
        let mut all: BTreeSet<Implication> = nubis_identity::model::IMPLIED_ROLES
            .iter()
            .filter_map(|(p, i)| {
                Some(Implication {
                    prior_role_id: id_of(p)?,
                    implied_role_id: id_of(i)?,
                })
            })
            .collect();
        all.extend(dir.implied.iter().cloned());
        all.into_iter().collect()
    }

    /// Is `i` a built-in rule (not deletable)?
    fn is_builtin_implication(&self, i: &Implication) -> bool {
        let stored = self.ks().implied.contains(i);
        !stored && self.ks_implications().contains(i)
    }

    /// `roles` (IDs) and every role they imply, transitively.
    pub fn ks_implied_closure(&self, mut roles: BTreeSet<String>) -> BTreeSet<String> {
        let rules = self.ks_implications();
        loop {
            let before = roles.len();
            for r in &rules {
                if roles.contains(&r.prior_role_id) {
                    roles.insert(r.implied_role_id.clone());
                }
            }
            if roles.len() == before {
                return roles;
            }
        }
    }

    /// Does the rule exist (both roles must)?
    pub fn ks_has_implication(&self, i: &Implication) -> Result<bool, KsError> {
        self.ks_role(&i.prior_role_id)?;
        self.ks_role(&i.implied_role_id)?;
        Ok(self.ks_implications().contains(i))
    }

    /// Create (`on`) or delete a role inference rule. Keystone's rules: `admin` is never
    /// implied (`[assignment] prohibited_implied_role`), a global role never implies a
    /// domain-specific one, and no rule may close a cycle. Creating twice is accepted;
    /// deleting an absent rule is 404; the built-in rules cannot be deleted.
    pub async fn ks_set_implication(&self, i: Implication, on: bool) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        let prior = self.ks_role(&i.prior_role_id)?;
        let implied = self.ks_role(&i.implied_role_id)?;
        let is = self.ks_implications().contains(&i);
        if on && !is {
            if implied.domain_id.is_none() && implied.name.eq_ignore_ascii_case("admin") {
                return Err(KsError::Forbidden(format!(
                    "{} is not an allowed implied role.",
                    implied.id
                )));
            }
            if prior.domain_id.is_none() && implied.domain_id.is_some() {
                return Err(KsError::Forbidden(
                    "A global role cannot imply a domain-specific role.".into(),
                ));
            }
            let reach = self.ks_implied_closure(BTreeSet::from([implied.id.clone()]));
            if reach.contains(&prior.id) {
                return Err(KsError::Invalid(format!(
                    "Role {} implying role {} would create a circular inference.",
                    prior.id, implied.id
                )));
            }
            self.ks_bound(self.ks().implied.len(), "role inference rules")?;
        }
        if !on && is && self.is_builtin_implication(&i) {
            return Err(builtin(&format!(
                "Role inference rule {} -> {}",
                i.prior_role_id, i.implied_role_id
            )));
        }
        let key = i.key();
        let absent = || {
            KsError::NotFound(
                "implied role",
                format!("{} implied by {}", i.implied_role_id, i.prior_role_id),
            )
        };
        let apply = |dir: &mut KsDir, on| {
            if on {
                dir.implied.insert(i.clone());
            } else {
                dir.implied.remove(&i);
            }
        };
        self.ks_set_link(("implied_role", key, &i), (on, is), absent, apply)
            .await
    }

    /// The objects of kind `K` `user` holds a role on (directly or through its groups):
    /// the targets `on` picks of its assignments.
    fn ks_held<K: Object>(&self, user: &str, on: impl Fn(&Target) -> Option<&String>) -> Vec<K> {
        let f = AssignmentFilter {
            user: Some(user.into()),
            effective: true,
            ..Default::default()
        };
        let held: BTreeSet<String> = (self.ks_assignments(&f).iter())
            .filter_map(|a| on(&a.target).cloned())
            .collect();
        let dir = self.ks();
        (held.iter())
            .filter_map(|id| K::table(&dir).get(id).cloned())
            .collect()
    }

    /// The projects `user` holds a role on.
    pub fn ks_user_projects(&self, user: &str) -> Vec<Project> {
        self.ks_held(user, Target::project)
    }

    /// The domains `user` holds a role on.
    pub fn ks_user_domains(&self, user: &str) -> Vec<Domain> {
        self.ks_held(user, Target::domain)
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
        self.ks_login(who, password).await.ok()
    }

    /// A password login: the user, or why not — [`Login::Locked`] when Keystone's lockout
    /// holds the user (the password is not even checked), [`Login::Refused`] otherwise. A
    /// directory user's failures in a row are counted on its record (the lockout's
    /// `failed_auth`; a success clears them), so every API node sees the lockout.
    pub async fn ks_login(&self, who: &UserRef, password: &str) -> Result<User, Login> {
        let found = match who {
            UserRef::Id(id) => self.ks_user(id).ok(),
            UserRef::Name { name, domain } => self.ks_user_named(name, domain),
        };
        let Some(user) = found else {
            self.verify_keystone_user("", password).await;
            return Err(Login::Refused);
        };
        let sc = self.inner.security;
        let stored = !self.is_builtin_user(&user.id);
        let locked = |u: &User| {
            sc.lockout_failure_attempts > 0
                && u.failed_auth.is_some_and(|(n, at)| {
                    n >= sc.lockout_failure_attempts
                        && now_us() < at.saturating_add(sc.lockout_duration_secs as i64 * 1_000_000)
                })
        };
        if stored && locked(&user) {
            return Err(Login::Locked(user.name));
        }
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
        if stored && sc.lockout_failure_attempts > 0 {
            self.count_login(&user.id, ok).await;
        }
        if ok && self.ks_stamp(&user.id).is_some() {
            Ok(user)
        } else {
            Err(Login::Refused)
        }
    }

    /// Record a password login's outcome on user `id` for the lockout: a failure adds one to
    /// the failures in a row (a new run once the lockout has passed), a success after
    /// failures clears them. Best effort: a lost race with another node's write leaves the
    /// other count (the lockout counts at least that node's failures).
    async fn count_login(&self, id: &str, ok: bool) {
        let _serial = self.inner.credentials.lock().await;
        let Ok(mut u) = self.ks_user(id) else { return };
        let sc = self.inner.security;
        let now = now_us();
        let next = match (ok, u.failed_auth) {
            (true, None) => return,
            (true, Some(_)) => None,
            (false, Some((n, at)))
                if now < at.saturating_add(sc.lockout_duration_secs as i64 * 1_000_000)
                    || n < sc.lockout_failure_attempts =>
            {
                Some((n.saturating_add(1), now))
            }
            (false, _) => Some((1, now)),
        };
        u.failed_auth = next;
        let _ = self.ks_save(&u, Vec::new()).await;
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

    fn refuse_builtin<K: Object>(&self, id: &str) -> Result<(), KsError> {
        match K::builtin(self, id) {
            Some(what) => Err(builtin(&what)),
            None => Ok(()),
        }
    }

    /// Commit `v` (after `writes`) and put it in the directory.
    async fn ks_save<K: Object>(&self, v: &K, mut writes: Vec<Write>) -> Result<(), KsError> {
        writes.push(put(K::KIND, v.id(), v.name_key(), v));
        self.commit(writes).await?;
        K::table_mut(&mut self.inner.keystone.write()).insert(v.id().to_string(), v.clone());
        Ok(())
    }

    /// Create `v` (its description `description`) with `writes`: its name, its description,
    /// room for one more, its domain, a name unique where it must be. Under the serial lock.
    async fn ks_create<K: Object>(
        &self,
        v: K,
        description: &str,
        writes: Vec<Write>,
    ) -> Result<K, KsError> {
        check_name_max(v.name(), K::MAX_NAME)?;
        check_description(description)?;
        {
            let dir = self.ks();
            self.ks_bound(K::table(&dir).len(), K::PLURAL)?;
            if let Some(d) = v.domain()
                && !dir.domains.contains_key(d)
            {
                return Err(KsError::NotFound("domain", d.into()));
            }
            unique(K::table(&dir).values(), &v)?;
        }
        self.ks_save(&v, writes).await?;
        Ok(v)
    }

    /// Change a domain, project, group or role.
    pub async fn ks_update<K: Patchable>(&self, id: &str, p: Patch) -> Result<K, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<K>(id)?;
        let mut v: K = self.ks_get(id)?;
        if let Some(n) = p.name {
            check_name_max(&n, K::MAX_NAME)?;
            *v.fields().0 = n;
            unique(K::table(&self.ks()).values(), &v)?;
        }
        if let Some(d) = p.description {
            check_description(&d)?;
            *v.fields().1 = d;
        }
        if let (Some(e), Some(flag)) = (p.enabled, v.enabled_mut()) {
            *flag = e;
        }
        self.ks_save(&v, Vec::new()).await?;
        Ok(v)
    }

    /// Delete an object with what it takes along (role assignments, memberships,
    /// application credentials), once its kind's checks pass.
    pub async fn ks_delete<K: Object>(&self, id: &str) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<K>(id)?;
        let v: K = self.ks_get(id)?;
        let extra = K::check_delete(self, &v)?;
        let (grants, members, creds, implied) = {
            let dir = self.ks();
            let g: Vec<Assignment> = (dir.assignments.iter())
                .filter(|a| K::takes(id, Link::Grant(a)))
                .cloned()
                .collect();
            let m: Vec<(String, String)> = (dir.members.iter())
                .filter(|m| K::takes(id, Link::Member(m)))
                .cloned()
                .collect();
            let c: Vec<String> = (dir.app_creds.values())
                .filter(|a| K::takes(id, Link::Cred(a)))
                .map(|a| a.id.clone())
                .collect();
            let i: Vec<Implication> = (dir.implied.iter())
                .filter(|i| K::takes(id, Link::Implied(i)))
                .cloned()
                .collect();
            (g, m, c, i)
        };
        let mut writes: Vec<Write> = grants.iter().map(|a| del("assignment", &a.key())).collect();
        writes.extend(
            members
                .iter()
                .map(|(g, u)| del("membership", &format!("{g}:{u}"))),
        );
        writes.extend(creds.iter().map(|c| del("app_cred", c)));
        writes.extend(implied.iter().map(|i| del("implied_role", &i.key())));
        writes.push(del(K::KIND, id));
        writes.extend(extra);
        self.commit(writes).await?;
        {
            let mut dir = self.inner.keystone.write();
            K::table_mut(&mut dir).remove(id);
            for a in &grants {
                dir.assignments.remove(a);
            }
            for m in &members {
                dir.members.remove(m);
            }
            for c in &creds {
                dir.app_creds.remove(c);
            }
            for i in &implied {
                dir.implied.remove(i);
            }
        }
        K::after_delete(self, &v);
        Ok(())
    }

    /// A domain is an account (`ks-<domain id>`), created with it.
    pub async fn ks_create_domain(
        &self,
        name: &str,
        description: &str,
        enabled: bool,
    ) -> Result<Domain, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let id = new_id();
        let d = Domain {
            account: format!("ks-{id}"),
            id,
            name: name.into(),
            description: description.into(),
            enabled,
        };
        let account = Account {
            id: d.account.clone(),
            name: d.account.clone(),
            is_admin: false,
            created_at_ms: now_ms(),
            ..Account::default()
        };
        let d = self
            .ks_create(d, description, vec![Write::Account(account.clone())])
            .await?;
        self.inner
            .fleet
            .lock()
            .accounts
            .insert(account.id.clone(), account);
        tracing::info!(domain = %d.id, account = %d.account, "keystone domain created");
        Ok(d)
    }

    /// A project of `domain_id`, under `parent` (a project of the same domain; `None` or
    /// the domain's ID: top level).
    pub async fn ks_create_project(
        &self,
        name: &str,
        domain_id: &str,
        description: &str,
        enabled: bool,
        parent: Option<&str>,
        tags: Vec<String>,
    ) -> Result<Project, KsError> {
        let _serial = self.inner.credentials.lock().await;
        check_tags(&tags)?;
        let parent_id = match parent {
            None => None,
            Some(d) if d == domain_id => None,
            Some(pid) => {
                let dir = self.ks();
                let Some(mut up) = dir.projects.get(pid) else {
                    return Err(KsError::NotFound("project", pid.into()));
                };
                if up.domain_id != domain_id {
                    return Err(KsError::Invalid(
                        "Cannot create project, the parent and the new project must be in the same domain.".into(),
                    ));
                }
                // The new project's depth: its ancestors plus itself.
                let mut depth = 2;
                while let Some(next) = up.parent_id.as_ref().and_then(|x| dir.projects.get(x)) {
                    up = next;
                    depth += 1;
                    if depth > MAX_PROJECT_DEPTH {
                        break;
                    }
                }
                if depth > MAX_PROJECT_DEPTH {
                    return Err(KsError::Forbidden(format!(
                        "Max hierarchy depth reached for {pid} branch."
                    )));
                }
                Some(pid.to_string())
            }
        };
        let p = Project {
            id: new_id(),
            name: name.into(),
            domain_id: domain_id.into(),
            description: description.into(),
            enabled,
            parent_id,
            tags,
        };
        self.ks_create(p, description, Vec::new()).await
    }

    /// Change project `id`'s tags with `f` (which may refuse); the tags after.
    pub async fn ks_project_tags(
        &self,
        id: &str,
        f: impl FnOnce(&mut Vec<String>) -> Result<(), KsError>,
    ) -> Result<Vec<String>, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<Project>(id)?;
        let mut p: Project = self.ks_get(id)?;
        let before = p.tags.clone();
        f(&mut p.tags)?;
        check_tags(&p.tags)?;
        if p.tags != before {
            self.ks_save(&p, Vec::new()).await?;
        }
        Ok(p.tags)
    }

    pub async fn ks_create_group(
        &self,
        name: &str,
        domain_id: &str,
        description: &str,
    ) -> Result<Group, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let g = Group {
            id: new_id(),
            name: name.into(),
            domain_id: domain_id.into(),
            description: description.into(),
        };
        self.ks_create(g, description, Vec::new()).await
    }

    /// A global role, or a domain-specific one (`domain_id`).
    pub async fn ks_create_role(
        &self,
        name: &str,
        description: &str,
        domain_id: Option<String>,
    ) -> Result<Role, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let r = Role {
            id: new_id(),
            name: name.into(),
            description: description.into(),
            domain_id,
        };
        self.ks_create(r, description, Vec::new()).await
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
            self.ks_bound(dir.users.len(), User::PLURAL)?;
            if !dir.domains.contains_key(&new.domain_id) {
                return Err(KsError::NotFound("domain", new.domain_id.clone()));
            }
            if let Some(p) = &new.default_project_id
                && !dir.projects.contains_key(p)
            {
                return Err(KsError::NotFound("project", p.clone()));
            }
        }
        let mut u = User {
            id: new_id(),
            name: new.name,
            domain_id: new.domain_id,
            enabled: new.enabled,
            password_hash: None,
            default_project_id: new.default_project_id,
            description: new.description,
            email: new.email,
            extra: new.extra,
            password_history: Vec::new(),
            failed_auth: None,
        };
        check_extra(&u.extra)?;
        unique(self.ks_users().iter(), &u)?;
        if let Some(pw) = &new.password {
            u.password_hash = Some(self.hash_password(pw).await?);
        }
        self.ks_save(&u, Vec::new()).await?;
        tracing::info!(user = %u.id, "keystone user created");
        Ok(u)
    }

    pub async fn ks_update_user(&self, id: &str, p: UserPatch) -> Result<User, KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.refuse_builtin::<User>(id)?;
        let mut u = self.ks_user(id)?;
        if let Some(n) = &p.name {
            check_name(n)?;
            u.name = n.clone();
            unique(self.ks_users().iter(), &u)?;
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
        for (k, v) in &p.extra {
            if v.is_null() {
                u.extra.remove(k);
            } else {
                u.extra.insert(k.clone(), v.clone());
            }
        }
        check_extra(&u.extra)?;
        if let Some(dp) = &p.default_project_id {
            if let Some(pid) = dp {
                self.ks_project(pid)?;
            }
            u.default_project_id = dp.clone();
        }
        if let Some(pw) = &p.password {
            // The history binds the user's own changes only: an admin's reset is free
            // (Keystone's `unique_last_password_count` is checked on self-service changes).
            if p.self_service {
                self.check_history(&u, pw).await?;
            }
            let keep = self
                .inner
                .security
                .unique_last_password_count
                .min(MAX_PASSWORD_HISTORY)
                .saturating_sub(1) as usize;
            if let Some(old) = u.password_hash.take() {
                u.password_history.insert(0, old);
            }
            u.password_history.truncate(keep);
            u.password_hash = Some(self.hash_password(pw).await?);
            // A new password set by anyone ends a lockout (Keystone resets the count).
            u.failed_auth = None;
        }
        self.ks_save(&u, Vec::new()).await?;
        Ok(u)
    }

    /// Keystone's `unique_last_password_count`: `pw` may not be `u`'s current password nor
    /// one of the remembered previous ones (400).
    async fn check_history(&self, u: &User, pw: &str) -> Result<(), KsError> {
        if self.inner.security.unique_last_password_count < 2 {
            return Ok(());
        }
        let hashes: Vec<String> = u
            .password_hash
            .iter()
            .chain(&u.password_history)
            .cloned()
            .collect();
        let pw = pw.to_string();
        let reused = tokio::task::spawn_blocking(move || {
            hashes
                .iter()
                .any(|h| nubis_auth::password::verify_or_dummy(&pw, Some(h)))
        })
        .await
        .unwrap_or(false);
        if reused {
            return Err(KsError::Invalid(format!(
                "The new password cannot be identical to a previous password. The total number which includes the new password must be unique is {}.",
                self.inner.security.unique_last_password_count
            )));
        }
        Ok(())
    }

    /// `POST /v3/users/{id}/password`: the original password must match.
    pub async fn ks_change_password(
        &self,
        id: &str,
        original: &str,
        new: &str,
    ) -> Result<(), KsError> {
        self.refuse_builtin::<User>(id)?;
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
                self_service: true,
                ..Default::default()
            },
        )
        .await
        .map(drop)
    }

    /// Add (`on`) or remove a link kept in a set (a membership, a role assignment) under
    /// store ID `id`: adding twice is accepted (Keystone's PUT), removing an absent one is
    /// `absent`. `apply` changes the set once the change is committed.
    async fn ks_set_link<T: Serialize>(
        &self,
        (kind, id, v): (&'static str, String, &T),
        (on, is): (bool, bool),
        absent: impl FnOnce() -> KsError,
        apply: impl FnOnce(&mut KsDir, bool),
    ) -> Result<(), KsError> {
        let write = match (on, is) {
            (true, true) => return Ok(()),
            (false, false) => return Err(absent()),
            (true, false) => put(kind, &id, id.clone(), v),
            (false, true) => del(kind, &id),
        };
        self.commit(vec![write]).await?;
        apply(&mut self.inner.keystone.write(), on);
        Ok(())
    }

    /// Add (`on`) or remove a group member. Adding twice is accepted (Keystone's PUT);
    /// removing a non-member is 404.
    pub async fn ks_set_member(&self, group: &str, user: &str, on: bool) -> Result<(), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_get::<Group>(group)?;
        self.refuse_builtin::<User>(user)?;
        self.ks_user(user)?;
        let key = (group.to_string(), user.to_string());
        let is = self.ks().members.contains(&key);
        let m = Membership {
            group_id: group.into(),
            user_id: user.into(),
        };
        let absent = || KsError::NotFound("membership", format!("user {user} in group {group}"));
        let apply = |dir: &mut KsDir, on| {
            if on {
                dir.members.insert(key);
            } else {
                dir.members.remove(&key);
            }
        };
        let id = format!("{group}:{user}");
        self.ks_set_link(("membership", id, &m), (on, is), absent, apply)
            .await
    }

    /// Does the actor exist?
    pub fn ks_check_actor(&self, a: &Actor) -> Result<(), KsError> {
        match a {
            Actor::User(u) => self.ks_user(u).map(drop),
            Actor::Group(g) => self.ks_get::<Group>(g).map(drop),
        }
    }

    /// Does the target exist?
    pub fn ks_check_target(&self, t: &Target) -> Result<(), KsError> {
        match t {
            Target::Project(p) => self.ks_project(p).map(drop),
            Target::Domain(d) => self.ks_domain(d).map(drop),
            Target::System => Ok(()),
        }
    }

    fn check_grant_parts(&self, a: &Assignment) -> Result<(), KsError> {
        self.ks_check_actor(&a.actor)?;
        self.ks_check_target(&a.target)?;
        self.ks_role(&a.role_id).map(drop)
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
        if let Actor::User(u) = &a.actor {
            self.refuse_builtin::<User>(u)?;
        }
        let is = self.ks().assignments.contains(&a);
        if on && !is {
            self.ks_bound(self.ks().assignments.len(), "role assignments")?;
        }
        let key = a.key();
        let absent = || KsError::NotFound("role assignment", a.key());
        let apply = |dir: &mut KsDir, on| {
            if on {
                dir.assignments.insert(a.clone());
            } else {
                dir.assignments.remove(&a);
            }
        };
        self.ks_set_link(("assignment", key, &a), (on, is), absent, apply)
            .await
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
        let (rules, fresh) = self.ks().resolve_rules(user, &new.access_rules)?;
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
            access_rules: rules.iter().map(|r| r.id.clone()).collect(),
        };
        let writes = fresh
            .iter()
            .map(|r| put(AccessRule::KIND, &r.id, r.name_key(), r))
            .collect();
        self.ks_save(&ac, writes).await?;
        self.inner
            .keystone
            .write()
            .access_rules
            .extend(fresh.into_iter().map(|r| (r.id.clone(), r)));
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
        extra: BTreeMap::new(),
        password_history: Vec::new(),
        failed_auth: None,
    }
}
