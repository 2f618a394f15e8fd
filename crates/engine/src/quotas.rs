//! Quotas (docs/quotas.md) of four scopes: an account (with its default Keystone project),
//! another Keystone project of it, a Keystone user within a project, and Nova's quota
//! classes (`default`: the defaults of every account but the bootstrap admin). A scope's
//! limits are its defaults with its stored overrides applied; the usage is counted from the
//! fleet (instances not terminated, key pairs, placement groups) and the creates being
//! committed (`Fleet::pending_creates`, reserved under the fleet lock before their commit and
//! released after it). Core's rule ([`nubis_core::rules::quota`]) is asked under the same
//! lock hold that accepts the create, for every scope the request falls in, so two requests
//! racing for the last slot cannot both pass.

use crate::accounts::CredentialError;
use crate::{Engine, Fleet};
use nubis_core::catalog::InstanceType;
use nubis_core::rules::quota;
use nubis_core::{
    AccountQuota, DomainError, Instance, ItemQuota, Principal, QuotaLimits, QuotaOverrides,
    QuotaUsage,
};
use nubis_store::Write;

/// What a quota set belongs to. Stored in the `quotas` table under [`QuotaScope::key`]
/// (account IDs never hold a `:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaScope {
    /// An account and its default Keystone project: every dialect's instances.
    Account(String),
    /// A Keystone project other than its account's default: its Nova instances and groups.
    Project { account: String, project: String },
    /// A Keystone user within a project (the account's default project too).
    User {
        account: String,
        project: String,
        user: String,
    },
    /// A Nova quota class; `default` holds the defaults of every account but the admin.
    Class(String),
}

impl QuotaScope {
    pub fn key(&self) -> String {
        match self {
            Self::Account(a) => a.clone(),
            Self::Project { project, .. } => format!("project:{project}"),
            Self::User { project, user, .. } => format!("user:{project}:{user}"),
            Self::Class(c) => format!("class:{c}"),
        }
    }

    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Account(a) | Self::Project { account: a, .. } | Self::User { account: a, .. } => {
                Some(a)
            }
            Self::Class(_) => None,
        }
    }

    /// The project scope a user scope lies in.
    fn parent(&self) -> Option<Self> {
        match self {
            Self::User {
                account, project, ..
            } if *project == crate::keystone::default_project_id(account) => {
                Some(Self::Account(account.clone()))
            }
            Self::User {
                account, project, ..
            } => Some(Self::Project {
                account: account.clone(),
                project: project.clone(),
            }),
            _ => None,
        }
    }

    /// The scope of `project` in `account`: the account itself for its default project.
    pub fn project(account: &str, project: &str) -> Self {
        if project == crate::keystone::default_project_id(account) {
            Self::Account(account.to_string())
        } else {
            Self::Project {
                account: account.to_string(),
                project: project.to_string(),
            }
        }
    }

    /// Does `project` (an instance's or group's; `None`: the default one) of `account` lie
    /// in this scope?
    fn holds(&self, account: &str, project: Option<&str>, user: Option<&str>) -> bool {
        let in_project = |want: &str, a: &str| {
            project.map_or(want == crate::keystone::default_project_id(a), |p| {
                p == want
            })
        };
        match self {
            Self::Account(a) => a == account,
            Self::Project {
                account: a,
                project: want,
            } => a == account && project == Some(want),
            Self::User {
                account: a,
                project: want,
                user: u,
            } => a == account && in_project(want, a) && user == Some(u.as_str()),
            Self::Class(_) => false,
        }
    }
}

/// The configured default limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDefaults {
    /// Every account but the bootstrap admin.
    pub accounts: QuotaLimits,
    /// The bootstrap admin account.
    pub admin: QuotaLimits,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        Self {
            accounts: QuotaLimits::NOVA_DEFAULTS,
            admin: QuotaLimits::UNLIMITED,
        }
    }
}

/// A scope's quotas as the queries show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaView {
    /// The account (for a class: empty).
    pub account: String,
    pub scope: QuotaScope,
    /// What applies now: the defaults with the overrides.
    pub limits: QuotaLimits,
    /// The defaults the account falls back to.
    pub defaults: QuotaLimits,
    /// What the operator set for this account.
    pub overrides: QuotaOverrides,
    pub usage: QuotaUsage,
}

impl Fleet {
    /// The defaults `account` falls back to: the admin's, or the `default` quota class.
    pub(crate) fn quota_defaults_of(&self, account: &str) -> QuotaLimits {
        if self.accounts.get(account).is_some_and(|a| a.is_admin) {
            self.quota_defaults.admin
        } else {
            self.class_limits("default")
        }
    }

    fn overrides(&self, scope: &QuotaScope) -> Option<&QuotaOverrides> {
        self.quotas.get(&scope.key())
    }

    /// A quota class: the configured defaults with the `default` class's overrides, then
    /// the class's own (Nova's `get_class_quotas`).
    fn class_limits(&self, class: &str) -> QuotaLimits {
        let mut l = self.quota_defaults.accounts;
        for c in ["default", class] {
            if let Some(o) = self.overrides(&QuotaScope::Class(c.to_string())) {
                l = l.with(o);
            }
        }
        l
    }

    /// What `scope` falls back to when nothing is set for it.
    fn scope_defaults(&self, scope: &QuotaScope) -> QuotaLimits {
        match scope {
            QuotaScope::Account(a) | QuotaScope::Project { account: a, .. } => {
                self.quota_defaults_of(a)
            }
            QuotaScope::User { .. } => scope
                .parent()
                .map(|p| self.scope_limits(&p))
                .unwrap_or(QuotaLimits::UNLIMITED),
            QuotaScope::Class(c) if c == "default" => self.quota_defaults.accounts,
            QuotaScope::Class(_) => self.class_limits("default"),
        }
    }

    pub(crate) fn scope_limits(&self, scope: &QuotaScope) -> QuotaLimits {
        if let QuotaScope::Class(c) = scope {
            return self.class_limits(c);
        }
        let d = self.scope_defaults(scope);
        self.overrides(scope).map_or(d, |o| d.with(o))
    }

    /// What `scope` holds: instances not terminated (with their vCPUs and memory), key
    /// pairs (an account's all; a user's own; a project's none: Nova counts key pairs per
    /// user) and placement groups.
    pub(crate) fn scope_usage(&self, scope: &QuotaScope) -> QuotaUsage {
        // The committed instances as the table counts them (no scan of the fleet), then
        // those being made.
        let mut u = (self.instances.read()).usage(|a, p, user| scope.holds(a, p, user));
        for i in &self.pending_creates {
            let (account, project, user) = (&i.account, i.project.as_deref(), i.user_id.as_deref());
            if i.state.is_listed() && scope.holds(account, project, user) {
                u.count_instance(i.type_facts(), false);
            }
        }
        u.key_pairs = match scope {
            QuotaScope::Account(a) => self.key_pairs.values().filter(|k| k.account == *a).count(),
            QuotaScope::User { account, user, .. } => (self.key_pairs.values())
                .filter(|k| k.account == *account && k.user_id.as_deref() == Some(user))
                .count(),
            QuotaScope::Project { .. } | QuotaScope::Class(_) => 0,
        } as u64;
        u.server_groups = (self.placement_groups.values())
            .filter(|g| scope.holds(&g.account, g.project.as_deref(), g.user_id.as_deref()))
            .count() as u64;
        u
    }

    /// The scopes a request of `p` about something in `project` (`None`: the account's
    /// default project) falls in: its account, a Keystone project other than the default,
    /// and its user's quota in that project if one is set.
    fn scopes_of(
        &self,
        account: &str,
        project: Option<&str>,
        user: Option<&str>,
    ) -> Vec<QuotaScope> {
        let mut v = vec![QuotaScope::Account(account.to_string())];
        let project = project.map_or_else(
            || crate::keystone::default_project_id(account),
            str::to_string,
        );
        let in_project = QuotaScope::project(account, &project);
        if in_project != v[0] {
            v.push(in_project);
        }
        if let Some(user) = user {
            let u = QuotaScope::User {
                account: account.to_string(),
                project,
                user: user.to_string(),
            };
            if self.overrides(&u).is_some() {
                v.push(u);
            }
        }
        v
    }

    fn caller_scopes(&self, p: &Principal) -> Vec<QuotaScope> {
        let project = p.project.as_ref().map(|s| s.id.as_str());
        self.scopes_of(&p.account, project, p.keystone_user.as_deref())
    }

    /// May `p` launch `count` instances of type `t` now? Every scope it falls in must hold
    /// them. (Usage is counted only where a limit applies: the unlimited admin pays nothing.)
    pub(crate) fn check_create_quota(
        &self,
        p: &Principal,
        t: &InstanceType,
        count: u32,
    ) -> Result<(), DomainError> {
        for scope in self.caller_scopes(p) {
            let limits = self.scope_limits(&scope);
            if !limits.is_unlimited() {
                quota::check_create(&limits, &self.scope_usage(&scope), t, count)?;
            }
        }
        Ok(())
    }

    /// May `inst` change from type `from` to `to` now?
    pub(crate) fn check_resize_quota(
        &self,
        inst: &Instance,
        from: &InstanceType,
        to: &InstanceType,
    ) -> Result<(), DomainError> {
        let scopes = self.scopes_of(
            &inst.account,
            inst.project.as_deref(),
            inst.user_id.as_deref(),
        );
        for scope in scopes {
            let limits = self.scope_limits(&scope);
            if !limits.is_unlimited() {
                quota::check_resize(&limits, &self.scope_usage(&scope), from, to)?;
            }
        }
        Ok(())
    }

    /// May `p` add a key pair now? (The account's count, and its user's if a user quota is
    /// set; a project holds no key pairs.)
    pub(crate) fn check_key_pair_quota(&self, p: &Principal) -> Result<(), DomainError> {
        for scope in self.caller_scopes(p) {
            if matches!(scope, QuotaScope::Project { .. }) {
                continue;
            }
            let limits = self.scope_limits(&scope);
            if limits.key_pairs != quota::UNLIMITED {
                quota::check_key_pair(&limits, &self.scope_usage(&scope))?;
            }
        }
        Ok(())
    }

    /// May `p` make one more placement group? (Nova `server_groups`: the account's count
    /// over every API, its project's and its user's.) The refusal names the limit hit.
    pub(crate) fn check_group_quota(&self, p: &Principal) -> Result<(), DomainError> {
        for scope in self.caller_scopes(p) {
            let limit = self.scope_limits(&scope).items.get(ItemQuota::ServerGroups);
            if let Ok(limit) = u64::try_from(limit)
                && self.scope_usage(&scope).server_groups >= limit
            {
                return Err(DomainError::GroupQuota {
                    limit: u32::try_from(limit).unwrap_or(u32::MAX),
                });
            }
        }
        Ok(())
    }

    /// The limit of item quota `item` for something in `project` (`None`: the default one)
    /// of `account` that `user` asks for: its project's (the account's for the default
    /// one), lowered by the user's if set. `-1`: unlimited.
    pub(crate) fn item_limit(
        &self,
        account: &str,
        project: Option<&str>,
        user: Option<&str>,
        item: ItemQuota,
    ) -> i64 {
        let scopes = self.scopes_of(account, project, user);
        // The project's own scope (the last but a user's), then a user's.
        let project_scope = scopes
            .iter()
            .rfind(|s| !matches!(s, QuotaScope::User { .. }))
            .cloned()
            .unwrap_or_else(|| QuotaScope::Account(account.to_string()));
        let mut limit = self.scope_limits(&project_scope).items.get(item);
        if let Some(u) = scopes.iter().find(|s| matches!(s, QuotaScope::User { .. })) {
            let ul = self.scope_limits(u).items.get(item);
            if ul != quota::UNLIMITED && (limit == quota::UNLIMITED || ul < limit) {
                limit = ul;
            }
        }
        limit
    }

    fn quota_view(&self, scope: &QuotaScope) -> QuotaView {
        QuotaView {
            account: scope.account().unwrap_or_default().to_string(),
            scope: scope.clone(),
            limits: self.scope_limits(scope),
            defaults: self.scope_defaults(scope),
            overrides: self.overrides(scope).cloned().unwrap_or_default(),
            usage: self.scope_usage(scope),
        }
    }
}

impl Engine {
    /// Set the configured defaults (at start-up, before serving).
    pub fn set_quota_defaults(&self, d: QuotaDefaults) -> Result<(), DomainError> {
        d.accounts.check()?;
        d.admin.check()?;
        self.inner.fleet.lock().quota_defaults = d;
        Ok(())
    }

    /// The configured defaults.
    pub fn quota_defaults(&self) -> QuotaDefaults {
        self.inner.fleet.lock().quota_defaults
    }

    /// An account's limits, defaults, overrides and usage.
    pub fn quota(&self, account: &str) -> Result<QuotaView, CredentialError> {
        self.quota_of(&QuotaScope::Account(account.to_string()))
    }

    /// A scope's limits, defaults, overrides and usage.
    pub fn quota_of(&self, scope: &QuotaScope) -> Result<QuotaView, CredentialError> {
        let fleet = self.inner.fleet.lock();
        if let Some(account) = scope.account()
            && !fleet.accounts.contains_key(account)
        {
            return Err(CredentialError::NotFound(format!("account {account}")));
        }
        Ok(fleet.quota_view(scope))
    }

    /// The item quota `item` that applies to `p` acting in its project.
    pub fn item_limit(&self, p: &Principal, item: ItemQuota) -> i64 {
        let project = p.project.as_ref().map(|s| s.id.as_str());
        (self.inner.fleet.lock()).item_limit(&p.account, project, p.keystone_user.as_deref(), item)
    }

    /// Change some of an account's limits (the fields `change` sets; -1 = unlimited). A limit
    /// below the current usage is accepted, as Nova's `force` and the admin API do: nothing
    /// is taken away, only further creates are refused.
    pub async fn set_quota(
        &self,
        account: &str,
        change: &QuotaOverrides,
    ) -> Result<QuotaView, CredentialError> {
        self.set_quota_of(&QuotaScope::Account(account.to_string()), change)
            .await
    }

    /// Change some of a scope's limits (see [`Engine::set_quota`]).
    pub async fn set_quota_of(
        &self,
        scope: &QuotaScope,
        change: &QuotaOverrides,
    ) -> Result<QuotaView, CredentialError> {
        change.check()?;
        let _serial = self.inner.credentials.lock().await;
        let key = scope.key();
        let record = {
            let fleet = self.inner.fleet.lock();
            if let Some(account) = scope.account()
                && !fleet.accounts.contains_key(account)
            {
                return Err(CredentialError::NotFound(format!("account {account}")));
            }
            AccountQuota {
                account: key.clone(),
                overrides: (fleet.quotas.get(&key).cloned().unwrap_or_default()).merged(change),
            }
        };
        self.commit(vec![Write::Quota(record.clone())]).await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.quotas.insert(record.account, record.overrides);
        Ok(fleet.quota_view(scope))
    }

    /// Forget an account's overrides: the defaults apply again.
    pub async fn reset_quota(&self, account: &str) -> Result<QuotaView, CredentialError> {
        self.reset_quota_of(&QuotaScope::Account(account.to_string()))
            .await
    }

    /// Forget a scope's overrides.
    pub async fn reset_quota_of(&self, scope: &QuotaScope) -> Result<QuotaView, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        if let Some(account) = scope.account() {
            self.check_account(account)?;
        }
        self.commit(vec![Write::DeleteQuota(scope.key())]).await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.quotas.remove(&scope.key());
        Ok(fleet.quota_view(scope))
    }
}
