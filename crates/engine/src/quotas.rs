//! Per-account quotas (docs/quotas.md). The limits are the configured defaults (the bootstrap
//! admin's: unlimited) with the account's stored overrides applied; the usage is counted from
//! the fleet (instances not terminated, key pairs) and the creates being committed
//! (`Fleet::pending_creates`, reserved under the fleet lock before their commit and released
//! after it). Core's rule ([`nubis_core::rules::quota`]) is asked under the same lock
//! hold that accepts the create, so two requests racing for the last slot cannot both pass.

use crate::accounts::CredentialError;
use crate::{Engine, Fleet};
use nubis_core::catalog::InstanceType;
use nubis_core::rules::quota;
use nubis_core::{AccountQuota, DomainError, QuotaLimits, QuotaOverrides, QuotaUsage};
use nubis_store::Write;

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

/// An account's quotas as the queries show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaView {
    pub account: String,
    /// What applies now: the defaults with the overrides.
    pub limits: QuotaLimits,
    /// The defaults the account falls back to.
    pub defaults: QuotaLimits,
    /// What the operator set for this account.
    pub overrides: QuotaOverrides,
    pub usage: QuotaUsage,
}

impl Fleet {
    /// The defaults `account` falls back to.
    pub(crate) fn quota_defaults_of(&self, account: &str) -> QuotaLimits {
        if self.accounts.get(account).is_some_and(|a| a.is_admin) {
            self.quota_defaults.admin
        } else {
            self.quota_defaults.accounts
        }
    }

    pub(crate) fn quota_limits_of(&self, account: &str) -> QuotaLimits {
        let defaults = self.quota_defaults_of(account);
        match self.quotas.get(account) {
            Some(o) => defaults.with(o),
            None => defaults,
        }
    }

    /// What `account` holds: instances not terminated (with their vCPUs and memory) and key
    /// pairs.
    pub(crate) fn quota_usage_of(&self, account: &str) -> QuotaUsage {
        let mut u = QuotaUsage::default();
        for i in self.instances.values().chain(&self.pending_creates) {
            if i.account == account && i.state.is_listed() {
                match i.type_facts() {
                    Some(t) => u.add_instance(t),
                    None => u.instances += 1,
                }
            }
        }
        u.key_pairs = self
            .key_pairs
            .values()
            .filter(|k| k.account == account)
            .count() as u64;
        u
    }

    /// May `account` launch `count` instances of type `t` now? (Usage is counted only when a
    /// limit applies: the unlimited admin pays nothing.)
    pub(crate) fn check_create_quota(
        &self,
        account: &str,
        t: &InstanceType,
        count: u32,
    ) -> Result<(), DomainError> {
        let limits = self.quota_limits_of(account);
        if limits == QuotaLimits::UNLIMITED {
            return Ok(());
        }
        quota::check_create(&limits, &self.quota_usage_of(account), t, count)
    }

    /// May `account` change one instance from type `from` to `to` now?
    pub(crate) fn check_resize_quota(
        &self,
        account: &str,
        from: &InstanceType,
        to: &InstanceType,
    ) -> Result<(), DomainError> {
        let limits = self.quota_limits_of(account);
        if limits == QuotaLimits::UNLIMITED {
            return Ok(());
        }
        quota::check_resize(&limits, &self.quota_usage_of(account), from, to)
    }

    /// May `account` add a key pair now?
    pub(crate) fn check_key_pair_quota(&self, account: &str) -> Result<(), DomainError> {
        let limits = self.quota_limits_of(account);
        if limits.key_pairs == quota::UNLIMITED {
            return Ok(());
        }
        quota::check_key_pair(&limits, &self.quota_usage_of(account))
    }

    fn quota_view(&self, account: &str) -> QuotaView {
        QuotaView {
            account: account.to_string(),
            limits: self.quota_limits_of(account),
            defaults: self.quota_defaults_of(account),
            overrides: self.quotas.get(account).cloned().unwrap_or_default(),
            usage: self.quota_usage_of(account),
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
        let fleet = self.inner.fleet.lock();
        if !fleet.accounts.contains_key(account) {
            return Err(CredentialError::NotFound(format!("account {account}")));
        }
        Ok(fleet.quota_view(account))
    }

    /// Change some of an account's limits (the fields `change` sets; -1 = unlimited). A limit
    /// below the current usage is accepted, as Nova's `force` and the admin API do: nothing
    /// is taken away, only further creates are refused.
    pub async fn set_quota(
        &self,
        account: &str,
        change: &QuotaOverrides,
    ) -> Result<QuotaView, CredentialError> {
        change.check()?;
        let _serial = self.inner.credentials.lock().await;
        let record = {
            let fleet = self.inner.fleet.lock();
            if !fleet.accounts.contains_key(account) {
                return Err(CredentialError::NotFound(format!("account {account}")));
            }
            AccountQuota {
                account: account.to_string(),
                overrides: fleet
                    .quotas
                    .get(account)
                    .cloned()
                    .unwrap_or_default()
                    .merged(change),
            }
        };
        self.commit(vec![Write::Quota(record.clone())]).await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.quotas.insert(record.account, record.overrides);
        Ok(fleet.quota_view(account))
    }

    /// Forget an account's overrides: the defaults apply again.
    pub async fn reset_quota(&self, account: &str) -> Result<QuotaView, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        self.check_account(account)?;
        self.commit(vec![Write::DeleteQuota(account.to_string())])
            .await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.quotas.remove(account);
        Ok(fleet.quota_view(account))
    }
}
