//! Accounts, access keys, Keystone users and the bootstrap admin.
//!
//! Access keys: the bootstrap key (given by `NUBIS_ADMIN_ACCESS_KEY_*`, or generated at first
//! start) and keys created through the admin API. A key may be disabled (every dialect
//! refuses it), enabled again, or deleted; the last enabled key of an admin account can be
//! neither disabled nor deleted, so the operator cannot lock themselves out. On each start the
//! environment rotates the bootstrap credentials: another key ID replaces (revokes) the
//! previous bootstrap key, another secret for the same ID replaces the secret, another
//! `NUBIS_ADMIN_PASSWORD` replaces the admin's Keystone password.

use crate::{Engine, now_ms, store_err};
use nubis_core::{AccessKey, Account, DomainError, KeyOrigin, Principal};
use nubis_store::{StoreError, Write};
use rand::Rng;
use thiserror::Error;

/// Credentials created at first start (those the operator did not give), to be shown once.
pub struct Generated {
    pub access_key: Option<(String, String)>,
    pub password: Option<String>,
}

pub const ADMIN_ACCOUNT: &str = "admin";
/// The Keystone user whose password is the admin account's bootstrap password.
pub const ADMIN_USER: &str = "admin";

pub(crate) fn random(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A fresh key pair: Tencent's SecretId shape (`AKID` + 32), a 32-character secret.
pub(crate) fn new_key_pair() -> (String, String) {
    (format!("AKID{}", random(32)), random(32))
}

/// What resolving an access key ID finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    Active(Box<Principal>, String),
    /// Stored but disabled.
    Disabled,
    Unknown,
}

/// An access key as the admin API lists it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: String,
    pub account: String,
    /// The sub-user's ID; `None`: the account root.
    pub user: Option<u64>,
    pub enabled: bool,
    pub origin: KeyOrigin,
    pub created_at_ms: i64,
}

impl From<&AccessKey> for KeyInfo {
    fn from(k: &AccessKey) -> Self {
        Self {
            id: k.id.clone(),
            account: k.account.clone(),
            user: k.user,
            enabled: k.enabled,
            origin: k.origin,
            created_at_ms: k.created_at_ms,
        }
    }
}

/// Why a credential change was refused.
#[derive(Debug, Error)]
pub enum CredentialError {
    #[error("{0} not found")]
    NotFound(String),
    /// The change would conflict with what exists (duplicate, last admin key).
    #[error("{0}")]
    Conflict(String),
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// A Keystone user of the admin account other than `admin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneUserInfo {
    pub name: String,
    pub roles: Vec<String>,
}

impl Engine {
    /// Start-up: create the admin account on first start (with the given key pair and Keystone
    /// password, or generated ones, returned so the caller can show them once); on later
    /// starts, rotate whatever the environment changed (see the module docs).
    pub async fn bootstrap(
        &self,
        key: Option<(String, String)>,
        password: Option<String>,
    ) -> Result<Option<Generated>, DomainError> {
        let first = self.inner.fleet.lock().accounts.is_empty();
        if first {
            match self.first_start(key.clone(), password.clone()).await {
                Ok(generated) => return Ok(Some(generated)),
                // Another node on the same database bootstrapped first (its admin account
                // is in): adopt what it stored, then rotate as on any later start.
                Err(StoreError::Conflict(m)) if self.inner.store.shared() => {
                    tracing::info!(reason = %m, "another node bootstrapped the admin account; adopting it");
                    self.sync().await?;
                }
                Err(e) => return Err(store_err(e)),
            }
        }
        if let Some((id, secret)) = key {
            self.rotate_bootstrap_key(&id, &secret).await?;
        }
        if let Some(pw) = password {
            let stored = self.inner.fleet.lock().admin_password_hash.clone();
            let same = {
                let pw = pw.clone();
                tokio::task::spawn_blocking(move || {
                    stored.is_some_and(|h| nubis_auth::password::verify(&pw, &h))
                })
                .await
                .unwrap_or(false)
            };
            if !same {
                let hash = tokio::task::spawn_blocking(move || nubis_auth::password::hash(&pw))
                    .await
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                self.commit_meta("admin_password_hash".into(), hash.clone())
                    .await?;
                self.inner.fleet.lock().admin_password_hash = Some(hash);
                tracing::warn!(
                    user = ADMIN_USER,
                    "NUBIS_ADMIN_PASSWORD changed: the admin Keystone password was replaced"
                );
            }
        }
        Ok(None)
    }

    /// The admin account, its key and password, committed in one batch; a
    /// [`StoreError::Conflict`] when another node's bootstrap is already stored.
    async fn first_start(
        &self,
        key: Option<(String, String)>,
        password: Option<String>,
    ) -> Result<Generated, StoreError> {
        let key_generated = key.is_none();
        let password_generated = password.is_none();
        let (id, secret) = key.unwrap_or_else(new_key_pair);
        let password = password.unwrap_or_else(|| random(20));
        let account = Account {
            id: ADMIN_ACCOUNT.into(),
            name: "admin".into(),
            is_admin: true,
            created_at_ms: now_ms(),
            ..Account::default()
        };
        let access = AccessKey {
            id: id.clone(),
            account: account.id.clone(),
            sealed_secret: self.inner.secrets.seal(&secret),
            enabled: true,
            origin: KeyOrigin::Bootstrap,
            created_at_ms: now_ms(),
            user: None,
        };
        let password_hash = nubis_auth::password::hash(&password);
        self.check_store()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.inner
            .store
            .commit(vec![
                Write::AccessKey(access.clone()),
                Write::Account(account.clone()),
                Write::Meta {
                    key: "admin_password_hash".into(),
                    value: password_hash.clone(),
                },
            ])
            .await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.accounts.insert(account.id.clone(), account);
        fleet
            .access_keys
            .insert(id.clone(), (access, secret.clone()));
        fleet.admin_password_hash = Some(password_hash);
        Ok(Generated {
            access_key: key_generated.then_some((id, secret)),
            password: password_generated.then_some(password),
        })
    }

    /// The environment names bootstrap key `id` with `secret`: store it (or its new secret),
    /// and revoke every other bootstrap key.
    async fn rotate_bootstrap_key(&self, id: &str, secret: &str) -> Result<(), DomainError> {
        let (current, stale) = {
            let fleet = self.inner.fleet.lock();
            let current = fleet.access_keys.get(id).cloned();
            let stale: Vec<String> = fleet
                .access_keys
                .values()
                .filter(|(k, _)| k.origin == KeyOrigin::Bootstrap && k.id != id)
                .map(|(k, _)| k.id.clone())
                .collect();
            (current, stale)
        };
        let mut writes = Vec::new();
        let mut record = None;
        match current {
            Some((k, old))
                if nubis_auth::ct_eq(old.as_bytes(), secret.as_bytes())
                    && k.enabled
                    && k.origin == KeyOrigin::Bootstrap => {}
            Some((mut k, old)) => {
                if !nubis_auth::ct_eq(old.as_bytes(), secret.as_bytes()) {
                    tracing::warn!(
                        access_key_id = id,
                        "NUBIS_ADMIN_ACCESS_KEY_SECRET changed: the key's secret was replaced"
                    );
                }
                if !k.enabled {
                    tracing::warn!(
                        access_key_id = id,
                        "the bootstrap access key was disabled; the environment enables it again"
                    );
                }
                k.sealed_secret = self.inner.secrets.seal(secret);
                k.enabled = true;
                k.origin = KeyOrigin::Bootstrap;
                writes.push(Write::AccessKey(k.clone()));
                record = Some(k);
            }
            None => {
                let k = AccessKey {
                    id: id.to_string(),
                    account: ADMIN_ACCOUNT.into(),
                    sealed_secret: self.inner.secrets.seal(secret),
                    enabled: true,
                    origin: KeyOrigin::Bootstrap,
                    created_at_ms: now_ms(),
                    user: None,
                };
                tracing::warn!(
                    access_key_id = id,
                    "NUBIS_ADMIN_ACCESS_KEY_ID changed: new bootstrap access key stored"
                );
                writes.push(Write::AccessKey(k.clone()));
                record = Some(k);
            }
        }
        for old in &stale {
            tracing::warn!(access_key_id = %old, replaced_by = id, "previous bootstrap access key revoked");
            writes.push(Write::DeleteAccessKey(old.clone()));
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.commit(writes).await?;
        let mut fleet = self.inner.fleet.lock();
        if let Some(k) = record {
            fleet
                .access_keys
                .insert(id.to_string(), (k, secret.to_string()));
        }
        for old in &stale {
            fleet.access_keys.remove(old);
        }
        Ok(())
    }

    /// Resolve an access key to its principal and secret (for signature checks). Disabled
    /// and unknown keys resolve to nothing.
    pub fn access_key(&self, id: &str) -> Option<(Principal, String)> {
        match self.lookup_access_key(id) {
            KeyLookup::Active(p, s) => Some((*p, s)),
            _ => None,
        }
    }

    /// Resolve an access key, telling a disabled key from an unknown one (Alibaba answers
    /// `InvalidAccessKeyId.Inactive` for the former).
    pub fn lookup_access_key(&self, id: &str) -> KeyLookup {
        let fleet = self.inner.fleet.lock();
        let Some((key, secret)) = fleet.access_keys.get(id) else {
            return KeyLookup::Unknown;
        };
        if !key.enabled {
            return KeyLookup::Disabled;
        }
        let Some(account) = fleet.accounts.get(&key.account) else {
            return KeyLookup::Unknown;
        };
        let principal = match key.user {
            None => Principal {
                account: account.id.clone(),
                user: account.name.clone(),
                is_admin: account.is_admin,
                sub_user: None,
                credential: id.to_string(),
                ..Default::default()
            },
            // A sub-user is never an admin, even in the admin account: policies decide.
            Some(id) => match self.inner.directory.read().users.get(&id) {
                Some(u) if u.account == account.id => Principal {
                    account: account.id.clone(),
                    user: u.name.clone(),
                    is_admin: false,
                    sub_user: Some(id),
                    credential: key.id.clone(),
                    ..Default::default()
                },
                _ => return KeyLookup::Unknown,
            },
        };
        KeyLookup::Active(Box::new(principal), secret.clone())
    }

    /// Every access key, oldest first (no secrets).
    pub fn access_keys(&self) -> Vec<KeyInfo> {
        let fleet = self.inner.fleet.lock();
        let mut keys: Vec<KeyInfo> = fleet
            .access_keys
            .values()
            .map(|(k, _)| KeyInfo::from(k))
            .collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Create an access key in the admin account; the secret is returned once, here.
    pub async fn create_access_key(&self) -> Result<(KeyInfo, String), CredentialError> {
        self.create_access_key_for(None, None).await
    }

    /// Create an access key for the root of `account` (`None`: the bootstrap admin) or for
    /// its sub-user `user`; the secret is returned once, here.
    pub async fn create_access_key_for(
        &self,
        account: Option<&str>,
        user: Option<&str>,
    ) -> Result<(KeyInfo, String), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let (account, user) = self.key_owner(account, user)?;
        Ok(self.new_key(&account, user).await?)
    }

    /// May `key` be disabled or deleted? Not if it is the last enabled root key of an admin
    /// account (only those open the admin API).
    pub(crate) fn may_remove(fleet: &crate::Fleet, key: &AccessKey) -> bool {
        Self::check_not_last_admin_key(fleet, key).is_ok()
    }

    /// Refuse to take away the last enabled key of an admin account.
    fn check_not_last_admin_key(
        fleet: &crate::Fleet,
        key: &AccessKey,
    ) -> Result<(), CredentialError> {
        let is_admin = |account: &str| fleet.accounts.get(account).is_some_and(|a| a.is_admin);
        // Only root keys of the admin account open the admin API.
        if !key.enabled || key.user.is_some() || !is_admin(&key.account) {
            return Ok(());
        }
        let others = fleet
            .access_keys
            .values()
            .filter(|(k, _)| {
                k.id != key.id && k.enabled && k.account == key.account && k.user.is_none()
            })
            .count();
        if others == 0 {
            return Err(CredentialError::Conflict(format!(
                "access key {} is the last enabled key of admin account {}: create or enable another first",
                key.id, key.account
            )));
        }
        Ok(())
    }

    pub async fn set_access_key_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<KeyInfo, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let updated = {
            let fleet = self.inner.fleet.lock();
            let (key, _) = fleet
                .access_keys
                .get(id)
                .ok_or_else(|| CredentialError::NotFound(format!("access key {id}")))?;
            if !enabled {
                Self::check_not_last_admin_key(&fleet, key)?;
            }
            AccessKey {
                enabled,
                ..key.clone()
            }
        };
        self.commit(vec![Write::AccessKey(updated.clone())]).await?;
        let mut fleet = self.inner.fleet.lock();
        if let Some(entry) = fleet.access_keys.get_mut(id) {
            entry.0.enabled = enabled;
        }
        tracing::info!(access_key_id = id, enabled, "access key updated");
        Ok(KeyInfo::from(&updated))
    }

    pub async fn delete_access_key(&self, id: &str) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        {
            let fleet = self.inner.fleet.lock();
            let (key, _) = fleet
                .access_keys
                .get(id)
                .ok_or_else(|| CredentialError::NotFound(format!("access key {id}")))?;
            Self::check_not_last_admin_key(&fleet, key)?;
        }
        self.commit(vec![Write::DeleteAccessKey(id.to_string())])
            .await?;
        self.inner.fleet.lock().access_keys.remove(id);
        tracing::info!(access_key_id = id, "access key deleted");
        Ok(())
    }

    /// Does `password` belong to the admin user? (Checked against the stored hash, off the
    /// async workers: SHA-512 crypt is deliberately slow. Without a stored hash the same
    /// work is done against a dummy.)
    pub async fn verify_admin_password(&self, password: &str) -> bool {
        let hash = self.inner.fleet.lock().admin_password_hash.clone();
        let pw = password.to_string();
        tokio::task::spawn_blocking(move || {
            nubis_auth::password::verify_or_dummy(&pw, hash.as_deref())
        })
        .await
        .unwrap_or(false)
    }

    /// Add a Keystone user of the admin account with the given roles (409 if it exists).
    pub async fn add_keystone_user(
        &self,
        name: &str,
        password: &str,
        roles: Vec<String>,
    ) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        check_user(name)?;
        if self.inner.fleet.lock().keystone_users.contains_key(name) {
            return Err(CredentialError::Conflict(format!(
                "keystone user {name} already exists"
            )));
        }
        self.store_keystone_user(name, password, roles).await
    }

    /// Change a Keystone user's password and/or roles.
    pub async fn update_keystone_user(
        &self,
        name: &str,
        password: Option<&str>,
        roles: Option<Vec<String>>,
    ) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let Some((hash, old_roles)) = self.inner.fleet.lock().keystone_users.get(name).cloned()
        else {
            return Err(CredentialError::NotFound(format!("keystone user {name}")));
        };
        let roles = roles.unwrap_or(old_roles);
        match password {
            Some(pw) => self.store_keystone_user(name, pw, roles).await,
            None => self.write_keystone_user(name, hash, roles).await,
        }
    }

    pub async fn delete_keystone_user(&self, name: &str) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        if !self.inner.fleet.lock().keystone_users.contains_key(name) {
            return Err(CredentialError::NotFound(format!("keystone user {name}")));
        }
        self.commit(vec![Write::DeleteMeta(format!("keystone_user:{name}"))])
            .await?;
        self.inner.fleet.lock().keystone_users.remove(name);
        tracing::info!(user = name, "keystone user deleted");
        Ok(())
    }

    pub fn keystone_users(&self) -> Vec<KeystoneUserInfo> {
        let mut users: Vec<KeystoneUserInfo> = self
            .inner
            .fleet
            .lock()
            .keystone_users
            .iter()
            .map(|(name, (_, roles))| KeystoneUserInfo {
                name: name.clone(),
                roles: roles.clone(),
            })
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    async fn store_keystone_user(
        &self,
        name: &str,
        password: &str,
        roles: Vec<String>,
    ) -> Result<(), CredentialError> {
        nubis_core::password::check_keystone_password(password).map_err(|reason| {
            CredentialError::Invalid {
                name: "password",
                reason,
            }
        })?;
        let pw = password.to_string();
        let hash = tokio::task::spawn_blocking(move || nubis_auth::password::hash(&pw))
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))?;
        self.write_keystone_user(name, hash, roles).await
    }

    async fn write_keystone_user(
        &self,
        name: &str,
        hash: String,
        roles: Vec<String>,
    ) -> Result<(), CredentialError> {
        if roles.is_empty()
            || roles
                .iter()
                .any(|r| !["admin", "member", "reader"].contains(&r.as_str()))
        {
            return Err(CredentialError::Invalid {
                name: "roles",
                reason: "one or more of admin, member, reader".into(),
            });
        }
        let value = serde_json::to_string(&(&hash, &roles)).expect("serializable");
        self.commit_meta(format!("keystone_user:{name}"), value)
            .await?;
        self.inner
            .fleet
            .lock()
            .keystone_users
            .insert(name.to_string(), (hash, roles));
        Ok(())
    }

    /// The roles of Keystone user `name` if `password` is theirs. An unknown user costs the
    /// same work as a wrong password.
    pub async fn verify_keystone_user(&self, name: &str, password: &str) -> Option<Vec<String>> {
        let user = self.inner.fleet.lock().keystone_users.get(name).cloned();
        let pw = password.to_string();
        let hash = user.as_ref().map(|(h, _)| h.clone());
        let ok = tokio::task::spawn_blocking(move || {
            nubis_auth::password::verify_or_dummy(&pw, hash.as_deref())
        })
        .await
        .unwrap_or(false);
        ok.then(|| user.map(|(_, roles)| roles)).flatten()
    }

    /// A stamp of user `name`'s current credential (admin included): it changes whenever the
    /// password is set, and is None once the user is gone. Tokens remember the stamp they were
    /// issued under and die with it.
    pub fn keystone_stamp(&self, name: &str) -> Option<String> {
        let fleet = self.inner.fleet.lock();
        let hash = if name == ADMIN_USER {
            fleet.admin_password_hash.as_ref()
        } else {
            fleet.keystone_users.get(name).map(|(h, _)| h)
        }?;
        use sha2::Digest;
        Some(hex::encode(&sha2::Sha256::digest(hash.as_bytes())[..16]))
    }
}

fn check_user(name: &str) -> Result<(), CredentialError> {
    if name == ADMIN_USER {
        return Err(CredentialError::Conflict(
            "keystone user admin is the bootstrap user (NUBIS_ADMIN_PASSWORD)".into(),
        ));
    }
    nubis_core::password::check_keystone_user_name(name).map_err(|reason| {
        CredentialError::Invalid {
            name: "name",
            reason,
        }
    })
}
