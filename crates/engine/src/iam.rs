//! The rules of the identity APIs (Tencent CAM, Alibaba RAM and the admin API), once:
//! sub-users, access keys, policies and attachments of one account, with typed refusals that
//! each dialect maps to its own code (docs/identity.md "CAM and RAM").
//!
//! Every change is serialized with the other credential changes (check, commit, apply), and
//! the store's uniqueness constraints are the last word: a write that loses a race with
//! another node sharing the database is refused with the same conflict as the in-memory
//! check gives ([`IamError::UserExists`], …), never as an unavailable store.

use crate::accounts::{CredentialError, new_key_pair};
use crate::tenancy::{Directory, compile, fresh};
use crate::{Engine, KeyInfo, now_ms, store_err};
use nubis_core::{AccessKey, Attachment, DomainError, KeyOrigin, PolicyGrammar, PolicyRecord};
use nubis_core::{Principal, SubUser};
use nubis_identity::PolicyError;
use nubis_store::{StoreError, Write};
use std::sync::Arc;
use thiserror::Error;

/// Access keys per principal (CAM "每个账号最多支持两个AccessKey", RAM's limit of 2; D15).
/// The bootstrap admin account's root is exempt: the operator's own keys.
pub const MAX_ACCESS_KEYS: usize = 2;
/// Sub-users per account (CAM's and RAM's default quota of 1,000).
pub const MAX_USERS: usize = 1000;
/// Custom policies per account (CAM's and RAM's default quota of 1,500).
pub const MAX_POLICIES: usize = 1500;
/// Policies attached to one sub-user (CAM allows 200; RAM's default is lower, but nubis keeps
/// one rule for both clouds).
pub const MAX_ATTACHED: usize = 200;

/// Who in an account: its root, or one of its sub-users (by ID: CAM Uin, RAM UserId).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    Root,
    User(u64),
}

impl Who {
    /// The caller of a request.
    pub fn of(p: &Principal) -> Self {
        p.sub_user.map_or(Self::Root, Self::User)
    }

    fn key_user(self) -> Option<u64> {
        match self {
            Self::Root => None,
            Self::User(u) => Some(u),
        }
    }
}

/// What deleting a sub-user does with its access keys and attached policies: CAM deletes
/// keys with `Force` and detaches policies silently; RAM refuses both (D16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependents {
    Refuse,
    Remove,
}

/// Why an identity change or lookup was refused.
#[derive(Debug, Error)]
pub enum IamError {
    #[error("account {0} does not exist")]
    AccountNotFound(String),
    #[error("the user {0} does not exist")]
    UserNotFound(String),
    #[error("the policy {0} does not exist")]
    PolicyNotFound(String),
    #[error("the access key {0} does not exist")]
    KeyNotFound(String),
    #[error("the user {0} already exists")]
    UserExists(String),
    #[error("the policy {0} already exists")]
    PolicyExists(String),
    #[error("the principal already has {max} access keys, the most it may have")]
    KeyLimit { max: usize },
    #[error("the account already has {max} users, the most it may have")]
    UserLimit { max: usize },
    #[error("the account already has {max} policies, the most it may have")]
    PolicyLimit { max: usize },
    #[error("the user already has {max} attached policies, the most it may have")]
    AttachmentLimit { max: usize },
    #[error("the user {name} still has {count} access key(s): delete them first")]
    UserHasKeys { name: String, count: usize },
    #[error("the user {name} still has {count} attached policy(ies): detach them first")]
    UserHasPolicies { name: String, count: usize },
    #[error("the policy {name} is attached to {count} user(s): detach it first")]
    PolicyAttached { name: String, count: usize },
    #[error("the policy {policy} is already attached to the user {user}")]
    AlreadyAttached { user: String, policy: String },
    #[error("the policy {policy} is not attached to the user {user}")]
    NotAttached { user: String, policy: String },
    #[error(
        "access key {0} is the last enabled key of the admin account: create or enable another first"
    )]
    LastAdminKey(String),
    /// The document does not compile; [`PolicyError::kind`] tells the dialects which code.
    #[error("{0}")]
    Document(PolicyError),
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    /// The store refused a write for a uniqueness clash the in-memory check did not see (a
    /// node sharing the database got there first); turned into the specific conflict by
    /// [`IamError::clash`].
    #[error("conflicting write: {0}")]
    Conflict(String),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl IamError {
    /// A store-level clash reported as `specific` (the conflict the in-memory check gives).
    fn clash(self, specific: impl FnOnce() -> IamError) -> IamError {
        match self {
            Self::Conflict(_) => specific(),
            e => e,
        }
    }
}

/// The admin API's three answers (404, 409, 400) for the identity refusals.
impl From<IamError> for CredentialError {
    fn from(e: IamError) -> Self {
        use IamError::*;
        match e {
            AccountNotFound(_)
            | UserNotFound(_)
            | PolicyNotFound(_)
            | KeyNotFound(_)
            | NotAttached { .. } => CredentialError::NotFound(e.to_string()),
            Document(d) => CredentialError::Invalid {
                name: "document",
                reason: d.to_string(),
            },
            Invalid { name, reason } => CredentialError::Invalid { name, reason },
            Domain(d) => CredentialError::Domain(d),
            UserExists(_)
            | PolicyExists(_)
            | KeyLimit { .. }
            | UserLimit { .. }
            | PolicyLimit { .. }
            | AttachmentLimit { .. }
            | UserHasKeys { .. }
            | UserHasPolicies { .. }
            | PolicyAttached { .. }
            | AlreadyAttached { .. }
            | LastAdminKey(_)
            | Conflict(_) => CredentialError::Conflict(e.to_string()),
        }
    }
}

/// A name rule: 1 to `max` bytes of ASCII letters, digits and the `extra` punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRule {
    pub max: usize,
    pub extra: &'static [u8],
    /// The rule in words, for refusals.
    pub text: &'static str,
}

impl NameRule {
    pub fn allows(&self, name: &str) -> bool {
        (1..=self.max).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || self.extra.contains(&b))
    }

    fn check(&self, name: &str) -> Result<(), IamError> {
        if self.allows(name) {
            Ok(())
        } else {
            Err(IamError::Invalid {
                name: "name",
                reason: self.text.into(),
            })
        }
    }
}

/// A sub-user name valid in both clouds: RAM's UserName rule (1–64 of `A-Za-z0-9.@_-`) is
/// within CAM's (which also allows `+=,`).
pub const USER_NAME: NameRule = NameRule {
    max: 64,
    extra: b".@_-",
    text: "1-64 of A-Z, a-z, 0-9 and . @ _ -",
};

/// Policy names as each cloud's CreatePolicy takes them: CAM 1–128 of `A-Za-z0-9+=,.@_-`,
/// RAM 1–128 of letters, digits and `-`.
pub const fn policy_name(grammar: PolicyGrammar) -> NameRule {
    match grammar {
        PolicyGrammar::Cam => NameRule {
            max: 128,
            extra: b"+=,.@_-",
            text: "1-128 of A-Z, a-z, 0-9 and + = , . @ _ -",
        },
        PolicyGrammar::Ram => NameRule {
            max: 128,
            extra: b"-",
            text: "1-128 of A-Z, a-z, 0-9 and -",
        },
    }
}

/// A policy description: at most 1,024 characters (RAM's bound; CAM's is tighter and
/// checked by its dialect).
fn check_description(d: &str) -> Result<(), IamError> {
    if d.chars().count() <= 1024 {
        Ok(())
    } else {
        Err(IamError::Invalid {
            name: "description",
            reason: "at most 1024 characters".into(),
        })
    }
}

impl Engine {
    /// Commit identity writes: a uniqueness clash in the store is [`IamError::Conflict`].
    pub(crate) async fn commit_iam(&self, writes: Vec<Write>) -> Result<(), IamError> {
        self.check_store()?;
        match self.inner.store.commit(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::Conflict(m)) => Err(IamError::Conflict(m)),
            Err(e) => Err(IamError::Domain(store_err(e))),
        }
    }

    /// Commit a new record, then `apply` it to the directory. A clash in the store is
    /// `exists` (a node sharing the database created it first), the same conflict as the
    /// in-memory check gives.
    async fn commit_new(
        &self,
        write: Write,
        exists: impl FnOnce() -> IamError,
        apply: impl FnOnce(&mut Directory),
    ) -> Result<(), IamError> {
        self.commit_iam(vec![write])
            .await
            .map_err(|e| e.clash(exists))?;
        apply(&mut self.inner.directory.write());
        Ok(())
    }

    /// Whether `account` is the bootstrap admin account (refused: no such account).
    pub(crate) fn iam_account(&self, account: &str) -> Result<bool, IamError> {
        self.inner
            .fleet
            .lock()
            .accounts
            .get(account)
            .map(|a| a.is_admin)
            .ok_or_else(|| IamError::AccountNotFound(account.to_string()))
    }

    /// Create a sub-user; its ID (CAM Uin, RAM UserId) is generated, unique across accounts.
    pub async fn iam_create_user(&self, account: &str, name: &str) -> Result<SubUser, IamError> {
        let _serial = self.inner.credentials.lock().await;
        self.iam_account(account)?;
        USER_NAME.check(name)?;
        let exists = || IamError::UserExists(name.to_string());
        let user = {
            let dir = self.inner.directory.read();
            if dir.user(account, name).is_some() {
                return Err(exists());
            }
            if dir.users_of(account).count() >= MAX_USERS {
                return Err(IamError::UserLimit { max: MAX_USERS });
            }
            SubUser {
                // A CAM sub-account UIN's shape (12 digits).
                id: fresh(100_000_000_000..=999_999_999_999, |n| {
                    dir.users.contains_key(&n)
                }),
                account: account.to_string(),
                name: name.to_string(),
                created_at_ms: now_ms(),
            }
        };
        self.commit_new(Write::SubUser(user.clone()), exists, |dir| {
            dir.users.insert(user.id, user.clone());
        })
        .await?;
        tracing::info!(account, user = name, "sub-user created");
        Ok(user)
    }

    /// The sub-users of `account`, by name.
    pub fn iam_users(&self, account: &str) -> Result<Vec<SubUser>, IamError> {
        self.iam_account(account)?;
        let mut v: Vec<SubUser> = self
            .inner
            .directory
            .read()
            .users_of(account)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    pub fn iam_user(&self, account: &str, name: &str) -> Result<SubUser, IamError> {
        self.iam_account(account)?;
        self.inner
            .directory
            .read()
            .user(account, name)
            .cloned()
            .ok_or_else(|| IamError::UserNotFound(name.to_string()))
    }

    /// A sub-user of `account` by ID; another account's sub-user does not exist here.
    pub fn iam_user_by_id(&self, account: &str, id: u64) -> Result<SubUser, IamError> {
        self.iam_account(account)?;
        self.inner
            .directory
            .read()
            .users
            .get(&id)
            .filter(|u| u.account == account)
            .cloned()
            .ok_or_else(|| IamError::UserNotFound(id.to_string()))
    }

    /// Delete a sub-user. Its access keys and attached policies are removed with it, or the
    /// deletion is refused while it has any, as `keys` and `policies` say. Returns the
    /// number of keys deleted.
    pub async fn iam_delete_user(
        &self,
        account: &str,
        id: u64,
        keys: Dependents,
        policies: Dependents,
    ) -> Result<usize, IamError> {
        let _serial = self.inner.credentials.lock().await;
        let user = self.iam_user_by_id(account, id)?;
        let key_ids: Vec<String> = self
            .inner
            .fleet
            .lock()
            .access_keys
            .values()
            .filter(|(k, _)| k.user == Some(id))
            .map(|(k, _)| k.id.clone())
            .collect();
        if keys == Dependents::Refuse && !key_ids.is_empty() {
            return Err(IamError::UserHasKeys {
                name: user.name,
                count: key_ids.len(),
            });
        }
        let attached: Vec<u64> = self
            .inner
            .directory
            .read()
            .attached
            .get(&id)
            .into_iter()
            .flatten()
            .copied()
            .collect();
        if policies == Dependents::Refuse && !attached.is_empty() {
            return Err(IamError::UserHasPolicies {
                name: user.name,
                count: attached.len(),
            });
        }
        let mut writes: Vec<Write> = attached
            .iter()
            .map(|p| {
                Write::Detach(Attachment {
                    user: id,
                    policy: *p,
                })
            })
            .collect();
        writes.extend(key_ids.iter().map(|k| Write::DeleteAccessKey(k.clone())));
        writes.push(Write::DeleteSubUser(id));
        self.commit_iam(writes).await?;
        {
            let mut fleet = self.inner.fleet.lock();
            for k in &key_ids {
                fleet.access_keys.remove(k);
            }
        }
        let mut dir = self.inner.directory.write();
        dir.users.remove(&id);
        dir.attached.remove(&id);
        tracing::info!(account, user = %user.name, keys = key_ids.len(), "sub-user deleted");
        Ok(key_ids.len())
    }

    /// Create an access key for `who` of `account`; the secret is returned once, here.
    /// Refused past [`MAX_ACCESS_KEYS`] (except for the bootstrap admin account's root).
    pub async fn iam_create_key(
        &self,
        account: &str,
        who: Who,
    ) -> Result<(KeyInfo, String), IamError> {
        let _serial = self.inner.credentials.lock().await;
        if let Who::User(u) = who {
            self.iam_user_by_id(account, u)?;
        }
        self.new_key(account, who.key_user()).await
    }

    /// Store a new key (the caller holds the credential lock and checked the owner).
    pub(crate) async fn new_key(
        &self,
        account: &str,
        user: Option<u64>,
    ) -> Result<(KeyInfo, String), IamError> {
        let is_admin = self.iam_account(account)?;
        let held = self
            .inner
            .fleet
            .lock()
            .access_keys
            .values()
            .filter(|(k, _)| k.account == account && k.user == user)
            .count();
        if !(is_admin && user.is_none()) && held >= MAX_ACCESS_KEYS {
            return Err(IamError::KeyLimit {
                max: MAX_ACCESS_KEYS,
            });
        }
        let (id, secret) = new_key_pair();
        let key = AccessKey {
            id: id.clone(),
            account: account.to_string(),
            user,
            sealed_secret: self.inner.secrets.seal(&secret),
            enabled: true,
            origin: KeyOrigin::AdminApi,
            created_at_ms: now_ms(),
        };
        self.commit_iam(vec![Write::AccessKey(key.clone())]).await?;
        let info = KeyInfo::from(&key);
        self.inner
            .fleet
            .lock()
            .access_keys
            .insert(id.clone(), (key, secret.clone()));
        tracing::info!(access_key_id = %id, account, "access key created");
        Ok((info, secret))
    }

    /// The access keys of `who` of `account`, oldest first (no secrets).
    pub fn iam_keys(&self, account: &str, who: Who) -> Result<Vec<KeyInfo>, IamError> {
        if let Who::User(u) = who {
            self.iam_user_by_id(account, u)?;
        } else {
            self.iam_account(account)?;
        }
        let fleet = self.inner.fleet.lock();
        let mut v: Vec<KeyInfo> = fleet
            .access_keys
            .values()
            .filter(|(k, _)| k.account == account && k.user == who.key_user())
            .map(|(k, _)| KeyInfo::from(k))
            .collect();
        v.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        Ok(v)
    }

    /// The key `id` of `who`: a key of anyone else does not exist here.
    fn owned_key(&self, account: &str, who: Who, id: &str) -> Result<AccessKey, IamError> {
        if let Who::User(u) = who {
            self.iam_user_by_id(account, u)?;
        }
        self.inner
            .fleet
            .lock()
            .access_keys
            .get(id)
            .filter(|(k, _)| k.account == account && k.user == who.key_user())
            .map(|(k, _)| k.clone())
            .ok_or_else(|| IamError::KeyNotFound(id.to_string()))
    }

    /// Enable or disable a key of `who`; the last enabled key of the admin account stays.
    pub async fn iam_set_key_enabled(
        &self,
        account: &str,
        who: Who,
        id: &str,
        enabled: bool,
    ) -> Result<KeyInfo, IamError> {
        let _serial = self.inner.credentials.lock().await;
        let key = self.owned_key(account, who, id)?;
        if !enabled && !Self::may_remove(&self.inner.fleet.lock(), &key) {
            return Err(IamError::LastAdminKey(id.to_string()));
        }
        let updated = AccessKey { enabled, ..key };
        self.commit_iam(vec![Write::AccessKey(updated.clone())])
            .await?;
        if let Some(entry) = self.inner.fleet.lock().access_keys.get_mut(id) {
            entry.0.enabled = enabled;
        }
        tracing::info!(access_key_id = id, enabled, "access key updated");
        Ok(KeyInfo::from(&updated))
    }

    /// Delete a key of `who`; the last enabled key of the admin account stays.
    pub async fn iam_delete_key(&self, account: &str, who: Who, id: &str) -> Result<(), IamError> {
        let _serial = self.inner.credentials.lock().await;
        let key = self.owned_key(account, who, id)?;
        if !Self::may_remove(&self.inner.fleet.lock(), &key) {
            return Err(IamError::LastAdminKey(id.to_string()));
        }
        self.commit_iam(vec![Write::DeleteAccessKey(id.to_string())])
            .await?;
        self.inner.fleet.lock().access_keys.remove(id);
        tracing::info!(access_key_id = id, "access key deleted");
        Ok(())
    }

    /// Create a policy; the document is compiled now and refused with the parser's error.
    pub async fn iam_create_policy(
        &self,
        account: &str,
        name: &str,
        grammar: PolicyGrammar,
        document: &str,
        description: &str,
    ) -> Result<PolicyRecord, IamError> {
        let _serial = self.inner.credentials.lock().await;
        self.iam_account(account)?;
        policy_name(grammar).check(name)?;
        check_description(description)?;
        let compiled = compile(name, grammar, document).map_err(IamError::Document)?;
        let exists = || IamError::PolicyExists(name.to_string());
        let record = {
            let dir = self.inner.directory.read();
            if dir.policy(account, name).is_some() {
                return Err(exists());
            }
            if dir.policies_of(account).count() >= MAX_POLICIES {
                return Err(IamError::PolicyLimit { max: MAX_POLICIES });
            }
            PolicyRecord {
                // A CAM PolicyId's shape.
                id: fresh(10_000_000..=999_999_999, |n| dir.policies.contains_key(&n)),
                account: account.to_string(),
                name: name.to_string(),
                grammar,
                document: document.to_string(),
                description: description.to_string(),
                created_at_ms: now_ms(),
            }
        };
        self.commit_new(Write::Policy(record.clone()), exists, |dir| {
            dir.policies
                .insert(record.id, (record.clone(), Arc::new(compiled)));
        })
        .await?;
        tracing::info!(account, policy = name, "policy created");
        Ok(record)
    }

    /// The policies of `account` in `grammar` (every grammar: `None`), by name.
    pub fn iam_policies(
        &self,
        account: &str,
        grammar: Option<PolicyGrammar>,
    ) -> Result<Vec<PolicyRecord>, IamError> {
        self.iam_account(account)?;
        let mut v: Vec<PolicyRecord> = self
            .inner
            .directory
            .read()
            .policies_of(account)
            .filter(|p| grammar.is_none_or(|g| p.grammar == g))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }

    /// A policy of `account` by name, in `grammar` if given (a policy of the other cloud's
    /// grammar does not exist for that cloud's API).
    pub fn iam_policy(
        &self,
        account: &str,
        name: &str,
        grammar: Option<PolicyGrammar>,
    ) -> Result<PolicyRecord, IamError> {
        self.iam_account(account)?;
        self.inner
            .directory
            .read()
            .policy(account, name)
            .filter(|p| grammar.is_none_or(|g| p.grammar == g))
            .cloned()
            .ok_or_else(|| IamError::PolicyNotFound(name.to_string()))
    }

    /// A policy of `account` by ID (CAM PolicyId), in `grammar` if given.
    pub fn iam_policy_by_id(
        &self,
        account: &str,
        id: u64,
        grammar: Option<PolicyGrammar>,
    ) -> Result<PolicyRecord, IamError> {
        self.iam_account(account)?;
        self.inner
            .directory
            .read()
            .policies
            .get(&id)
            .map(|(p, _)| p)
            .filter(|p| p.account == account && grammar.is_none_or(|g| p.grammar == g))
            .cloned()
            .ok_or_else(|| IamError::PolicyNotFound(id.to_string()))
    }

    /// How many sub-users a policy is attached to.
    pub fn iam_attachment_count(&self, policy: u64) -> usize {
        self.inner
            .directory
            .read()
            .attached
            .values()
            .filter(|ps| ps.contains(&policy))
            .count()
    }

    /// Delete policies, all or nothing: every one must be a policy of `account` (else
    /// [`IamError::PolicyNotFound`] names the first that is not). An attached policy is
    /// detached first, or refused, as `attached` says.
    pub async fn iam_delete_policies(
        &self,
        account: &str,
        ids: &[u64],
        grammar: PolicyGrammar,
        attached: Dependents,
    ) -> Result<(), IamError> {
        let _serial = self.inner.credentials.lock().await;
        let mut writes = Vec::new();
        let mut records = Vec::new();
        for id in ids {
            let p = self.iam_policy_by_id(account, *id, Some(grammar))?;
            if records.iter().any(|r: &PolicyRecord| r.id == p.id) {
                continue;
            }
            let users: Vec<u64> = {
                let dir = self.inner.directory.read();
                dir.attached
                    .iter()
                    .filter(|(_, ps)| ps.contains(id))
                    .map(|(u, _)| *u)
                    .collect()
            };
            if attached == Dependents::Refuse && !users.is_empty() {
                return Err(IamError::PolicyAttached {
                    name: p.name,
                    count: users.len(),
                });
            }
            writes.extend(users.into_iter().map(|u| {
                Write::Detach(Attachment {
                    user: u,
                    policy: *id,
                })
            }));
            writes.push(Write::DeletePolicy(*id));
            records.push(p);
        }
        self.commit_iam(writes).await?;
        let mut dir = self.inner.directory.write();
        for p in &records {
            dir.policies.remove(&p.id);
            for set in dir.attached.values_mut() {
                set.remove(&p.id);
            }
            tracing::info!(account, policy = %p.name, "policy deleted");
        }
        Ok(())
    }

    /// Attach (`on`) or detach policy `policy` to sub-user `user`, both of `account`.
    pub async fn iam_set_attached(
        &self,
        account: &str,
        user: u64,
        policy: u64,
        grammar: Option<PolicyGrammar>,
        on: bool,
    ) -> Result<(), IamError> {
        let _serial = self.inner.credentials.lock().await;
        let u = self.iam_user_by_id(account, user)?;
        let p = self.iam_policy_by_id(account, policy, grammar)?;
        let (is, count) = {
            let dir = self.inner.directory.read();
            let set = dir.attached.get(&user);
            (
                set.is_some_and(|s| s.contains(&policy)),
                set.map_or(0, |s| s.len()),
            )
        };
        let link = Attachment { user, policy };
        match (on, is) {
            (true, true) => {
                return Err(IamError::AlreadyAttached {
                    user: u.name,
                    policy: p.name,
                });
            }
            (false, false) => {
                return Err(IamError::NotAttached {
                    user: u.name,
                    policy: p.name,
                });
            }
            (true, false) if count >= MAX_ATTACHED => {
                return Err(IamError::AttachmentLimit { max: MAX_ATTACHED });
            }
            (true, false) => self.commit_iam(vec![Write::Attach(link)]).await?,
            (false, true) => self.commit_iam(vec![Write::Detach(link)]).await?,
        }
        let mut dir = self.inner.directory.write();
        let set = dir.attached.entry(user).or_default();
        if on {
            set.insert(policy);
        } else {
            set.remove(&policy);
        }
        tracing::info!(account, user = %u.name, policy = %p.name, attached = on, "policy attachment changed");
        Ok(())
    }

    /// The policies attached to sub-user `user` of `account`, by name.
    pub fn iam_attached(&self, account: &str, user: u64) -> Result<Vec<PolicyRecord>, IamError> {
        self.iam_user_by_id(account, user)?;
        let dir = self.inner.directory.read();
        let mut v: Vec<PolicyRecord> = dir
            .attached
            .get(&user)
            .into_iter()
            .flatten()
            .filter_map(|p| dir.policies.get(p).map(|(p, _)| p.clone()))
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(v)
    }
}
