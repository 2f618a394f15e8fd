//! Accounts beyond the bootstrap admin, their sub-users, policies and attachments, and the
//! authorization of a principal's action against them (`nubis_identity::evaluate`).
//!
//! The store is the truth (unique constraints included); memory holds what was committed,
//! with every policy compiled on write and again on load, so a sub-user's request is
//! evaluated without touching the database.

use crate::accounts::{ADMIN_ACCOUNT, CredentialError};
use crate::iam::{Dependents, IamError};
use crate::{Engine, now_ms};
use nubis_core::{Account, Attachment, PolicyGrammar, PolicyRecord, Principal, SubUser};
use nubis_identity::{CompiledPolicy, Decision};
use nubis_store::Write;
use rand::Rng;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Sub-users, policies (with their compiled form) and attachments of every account.
#[derive(Default)]
pub(crate) struct Directory {
    pub users: HashMap<u64, SubUser>,
    pub policies: HashMap<u64, (PolicyRecord, Arc<CompiledPolicy>)>,
    /// Sub-user ID → the IDs of its attached policies.
    pub attached: HashMap<u64, BTreeSet<u64>>,
    /// Account ID → its cloud numbers, for the authorizer (which would otherwise clone the
    /// whole account under the fleet lock on every sub-user request).
    pub numbers: HashMap<String, Numbers>,
}

/// An account's numbers as the clouds' resource names spell them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbers {
    /// The Tencent owner UIN, in decimal (`uin/<n>`).
    pub tencent: Arc<str>,
    /// The Alibaba account ID.
    pub aliyun: Arc<str>,
}

impl Numbers {
    fn of(a: &Account) -> Self {
        Self {
            tencent: a.tencent_owner_uin.to_string().into(),
            aliyun: a.aliyun_account_id.as_str().into(),
        }
    }
}

impl Directory {
    pub(crate) fn user(&self, account: &str, name: &str) -> Option<&SubUser> {
        self.users
            .values()
            .find(|u| u.account == account && u.name == name)
    }

    pub(crate) fn policy(&self, account: &str, name: &str) -> Option<&PolicyRecord> {
        self.policies
            .values()
            .map(|(p, _)| p)
            .find(|p| p.account == account && p.name == name)
    }

    /// The sub-users of `account`.
    pub(crate) fn users_of<'a>(&'a self, account: &'a str) -> impl Iterator<Item = &'a SubUser> {
        self.users.values().filter(move |u| u.account == account)
    }

    /// The policies of `account`.
    pub(crate) fn policies_of<'a>(
        &'a self,
        account: &'a str,
    ) -> impl Iterator<Item = &'a PolicyRecord> {
        self.policies
            .values()
            .map(|(p, _)| p)
            .filter(move |p| p.account == account)
    }

    /// The compiled form of policy `id`.
    pub(crate) fn compiled(&self, id: &u64) -> Option<&CompiledPolicy> {
        self.policies.get(id).map(|(_, c)| c.as_ref())
    }
}

/// The compiled policies that govern a role session or a sub-user ([`Engine::with_policies`]).
pub(crate) struct Governing<'a> {
    /// The assumed role's attached policies, or the sub-user's.
    pub attached: Vec<&'a CompiledPolicy>,
    pub who: Governed<'a>,
}

/// Whom [`Governing`]'s policies govern.
pub(crate) enum Governed<'a> {
    /// A role session: the role's name, the session's, and its session policy, which narrows
    /// the role's.
    Role {
        role: &'a str,
        session: &'a str,
        policy: Option<&'a CompiledPolicy>,
    },
    /// A sub-user, by ID.
    User(u64),
}

impl<'a> Governing<'a> {
    /// A role session's session policy.
    pub fn session_policy(&self) -> Option<&'a CompiledPolicy> {
        match self.who {
            Governed::Role { policy, .. } => policy,
            Governed::User(_) => None,
        }
    }
}

/// Compile a stored or submitted document with its grammar's parser.
pub(crate) fn compile(
    name: &str,
    grammar: PolicyGrammar,
    document: &str,
) -> Result<CompiledPolicy, nubis_identity::PolicyError> {
    match grammar {
        PolicyGrammar::Cam => nubis_identity::policy::cam::compile(name, document),
        PolicyGrammar::Ram => nubis_identity::policy::ram::compile(name, document),
    }
}

/// What the admin API asks for when it creates an account; absent numbers are generated.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub name: String,
    pub tencent_owner_uin: Option<u64>,
    pub tencent_app_id: Option<u64>,
    pub aliyun_account_id: Option<String>,
}

/// Largest number nubis hands out or accepts as a UIN, AppId or ID: stored as SQLite
/// INTEGER (i64), and far above any real one.
const MAX_NUMBER: u64 = 999_999_999_999_999;

fn invalid(name: &'static str, reason: impl Into<String>) -> CredentialError {
    CredentialError::Invalid {
        name,
        reason: reason.into(),
    }
}

fn not_found(what: String) -> CredentialError {
    CredentialError::NotFound(what)
}

/// A lookup of the identity rules ([`Engine::iam_user`], …) in the admin API's words:
/// "account X", "sub-user N of account X", "policy N of account X" are not found.
fn admin_lookup<T>(account: &str, found: Result<T, IamError>) -> Result<T, CredentialError> {
    found.map_err(|e| match e {
        IamError::AccountNotFound(_) => not_found(format!("account {account}")),
        IamError::UserNotFound(name) => not_found(format!("sub-user {name} of account {account}")),
        IamError::PolicyNotFound(name) => not_found(format!("policy {name} of account {account}")),
        e => e.into(),
    })
}

/// Refused as an invalid `name` unless `ok`: `rule` says what it must be.
fn require(ok: bool, name: &'static str, rule: &str) -> Result<(), CredentialError> {
    if ok { Ok(()) } else { Err(invalid(name, rule)) }
}

/// Account names are their IDs: 1–64 of lower-case letters, digits and `-`, starting with a
/// letter or digit (safe in URLs, logs and resource names).
fn check_account_name(name: &str) -> Result<(), CredentialError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    require(ok, "name", "1-64 of a-z, 0-9 and -, not starting with -")
}

fn check_number(name: &'static str, n: u64) -> Result<u64, CredentialError> {
    let rule = format!("a number from 1 to {MAX_NUMBER}");
    require((1..=MAX_NUMBER).contains(&n), name, &rule).map(|()| n)
}

fn check_aliyun_id(id: &str) -> Result<(), CredentialError> {
    let ok = (1..=20).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && !id.starts_with('0');
    require(
        ok,
        "aliyun_account_id",
        "1-20 decimal digits, not starting with 0",
    )
}

/// A random number in `range` that `taken` does not hold.
pub(crate) fn fresh(range: std::ops::RangeInclusive<u64>, taken: impl Fn(u64) -> bool) -> u64 {
    let mut rng = rand::rng();
    loop {
        let n = rng.random_range(range.clone());
        if !taken(n) {
            return n;
        }
    }
}

impl Engine {
    /// The cloud numbers of `account` (cheap: shared strings, no fleet lock).
    pub fn account_numbers(&self, account: &str) -> Option<Numbers> {
        self.inner.directory.read().numbers.get(account).cloned()
    }

    /// Every account, by ID.
    pub fn accounts(&self) -> Vec<Account> {
        let mut v: Vec<Account> = self.inner.fleet.lock().accounts.values().cloned().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub fn account(&self, id: &str) -> Option<Account> {
        self.inner.fleet.lock().accounts.get(id).cloned()
    }

    /// Create an account; its cloud numbers are the given ones (each unique) or generated.
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        check_account_name(&new.name)?;
        let uin = new
            .tencent_owner_uin
            .map(|n| check_number("tencent_owner_uin", n))
            .transpose()?;
        let app = new
            .tencent_app_id
            .map(|n| check_number("tencent_app_id", n))
            .transpose()?;
        if let Some(id) = &new.aliyun_account_id {
            check_aliyun_id(id)?;
        }
        let account = {
            let fleet = self.inner.fleet.lock();
            if fleet.accounts.contains_key(&new.name) {
                return Err(CredentialError::Conflict(format!(
                    "account {} already exists",
                    new.name
                )));
            }
            let taken = |f: &dyn Fn(&Account) -> bool| fleet.accounts.values().any(f);
            if let Some(n) = uin
                && taken(&|a| a.tencent_owner_uin == n)
            {
                return Err(CredentialError::Conflict(format!(
                    "tencent_owner_uin {n} belongs to another account"
                )));
            }
            if let Some(n) = app
                && taken(&|a| a.tencent_app_id == n)
            {
                return Err(CredentialError::Conflict(format!(
                    "tencent_app_id {n} belongs to another account"
                )));
            }
            if let Some(id) = &new.aliyun_account_id
                && taken(&|a| &a.aliyun_account_id == id)
            {
                return Err(CredentialError::Conflict(format!(
                    "aliyun_account_id {id} belongs to another account"
                )));
            }
            // Shapes of the real numbers: 12-digit UINs, 10-digit AppIds, 16-digit Alibaba IDs.
            let uin = uin.unwrap_or_else(|| {
                fresh(100_000_000_000..=999_999_999_999, |n| {
                    taken(&|a| a.tencent_owner_uin == n)
                })
            });
            let app = app.unwrap_or_else(|| {
                fresh(1_250_000_000..=1_399_999_999, |n| {
                    taken(&|a| a.tencent_app_id == n)
                })
            });
            let ali = new.aliyun_account_id.clone().unwrap_or_else(|| {
                fresh(1_000_000_000_000_000..=1_999_999_999_999_999, |n| {
                    taken(&|a| a.aliyun_account_id == n.to_string())
                })
                .to_string()
            });
            Account {
                id: new.name.clone(),
                name: new.name.clone(),
                is_admin: false,
                tencent_owner_uin: uin,
                tencent_app_id: app,
                aliyun_account_id: ali,
                created_at_ms: now_ms(),
            }
        };
        self.commit_iam(vec![Write::Account(account.clone())])
            .await
            .map_err(CredentialError::from)?;
        self.inner
            .fleet
            .lock()
            .accounts
            .insert(account.id.clone(), account.clone());
        self.inner
            .directory
            .write()
            .numbers
            .insert(account.id.clone(), Numbers::of(&account));
        tracing::info!(account = %account.id, "account created");
        Ok(account)
    }

    /// Delete an account with its sub-users, policies and attachments. Refused for the
    /// bootstrap admin and while the account owns instances, key pairs or access keys.
    pub async fn delete_account(&self, id: &str) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let mut writes = vec![
            Write::DeleteAccount(id.to_string()),
            Write::DeleteQuota(id.to_string()),
        ];
        {
            let fleet = self.inner.fleet.lock();
            let account = fleet
                .accounts
                .get(id)
                .ok_or_else(|| not_found(format!("account {id}")))?;
            if account.is_admin {
                return Err(CredentialError::Conflict(format!(
                    "account {id} is the bootstrap admin account"
                )));
            }
            let owns = |what: &str, n: usize| {
                if n == 0 {
                    Ok(())
                } else {
                    Err(CredentialError::Conflict(format!(
                        "account {id} still owns {n} {what}: delete them first"
                    )))
                }
            };
            owns(
                "instance(s)",
                fleet
                    .instances
                    .read()
                    .rows()
                    .filter(|r| r.account() == id && r.state().is_listed())
                    .count(),
            )?;
            owns(
                "key pair(s)",
                fleet.key_pairs.values().filter(|k| k.account == id).count(),
            )?;
            owns(
                "access key(s)",
                fleet
                    .access_keys
                    .values()
                    .filter(|(k, _)| k.account == id)
                    .count(),
            )?;
            let dir = self.inner.directory.read();
            for u in dir.users_of(id) {
                for p in dir.attached.get(&u.id).into_iter().flatten() {
                    writes.push(Write::Detach(Attachment {
                        user: u.id,
                        policy: *p,
                    }));
                }
                writes.push(Write::DeleteSubUser(u.id));
            }
            for p in dir.policies_of(id) {
                writes.push(Write::DeletePolicy(p.id));
            }
        }
        self.commit(writes).await?;
        {
            let mut fleet = self.inner.fleet.lock();
            fleet.accounts.remove(id);
            fleet.quotas.remove(id);
        }
        let mut dir = self.inner.directory.write();
        let users: Vec<u64> = dir
            .users
            .values()
            .filter(|u| u.account == id)
            .map(|u| u.id)
            .collect();
        for u in users {
            dir.users.remove(&u);
            dir.attached.remove(&u);
        }
        dir.policies.retain(|_, (p, _)| p.account != id);
        dir.numbers.remove(id);
        tracing::info!(account = id, "account deleted");
        Ok(())
    }

    /// Refused with the admin API's not found unless `account` exists.
    pub(crate) fn check_account(&self, account: &str) -> Result<(), CredentialError> {
        admin_lookup(account, self.iam_account(account).map(drop))
    }

    /// Account `id`, or the admin API's not found.
    pub(crate) fn found_account(&self, id: &str) -> Result<Account, CredentialError> {
        self.account(id)
            .ok_or_else(|| not_found(format!("account {id}")))
    }

    /// A sub-user of `account`; its ID is generated (unique across accounts).
    pub async fn create_sub_user(
        &self,
        account: &str,
        name: &str,
    ) -> Result<SubUser, CredentialError> {
        Ok(self.iam_create_user(account, name).await?)
    }

    /// The sub-users of `account`, by name.
    pub fn sub_users(&self, account: &str) -> Result<Vec<SubUser>, CredentialError> {
        admin_lookup(account, self.iam_users(account))
    }

    pub fn sub_user(&self, account: &str, name: &str) -> Result<SubUser, CredentialError> {
        admin_lookup(account, self.iam_user(account, name))
    }

    /// Delete a sub-user; its policies are detached with it. Refused while it has access
    /// keys (as RAM refuses; deleting a key is the operator's explicit choice).
    pub async fn delete_sub_user(&self, account: &str, name: &str) -> Result<(), CredentialError> {
        let user = self.sub_user(account, name)?;
        self.iam_delete_user(account, user.id, Dependents::Refuse, Dependents::Remove)
            .await?;
        Ok(())
    }

    /// Create a policy; the document is compiled now and refused with the parser's error.
    pub async fn create_policy(
        &self,
        account: &str,
        name: &str,
        grammar: PolicyGrammar,
        document: &str,
    ) -> Result<PolicyRecord, CredentialError> {
        Ok(self
            .iam_create_policy(account, name, grammar, document, "")
            .await?)
    }

    /// The policies of `account` (every grammar), by name.
    pub fn policies(&self, account: &str) -> Result<Vec<PolicyRecord>, CredentialError> {
        admin_lookup(account, self.iam_policies(account, None))
    }

    pub fn policy(&self, account: &str, name: &str) -> Result<PolicyRecord, CredentialError> {
        admin_lookup(account, self.iam_policy(account, name, None))
    }

    /// The sub-users a policy is attached to (their names).
    pub fn policy_users(&self, policy: &PolicyRecord) -> Vec<String> {
        let dir = self.inner.directory.read();
        let mut v: Vec<String> = dir
            .attached
            .iter()
            .filter(|(_, ps)| ps.contains(&policy.id))
            .filter_map(|(u, _)| dir.users.get(u).map(|u| u.name.clone()))
            .collect();
        v.sort();
        v
    }

    /// Delete a policy; refused while it is attached (as RAM refuses).
    pub async fn delete_policy(&self, account: &str, name: &str) -> Result<(), CredentialError> {
        let policy = self.policy(account, name)?;
        let roles = self.policy_roles(policy.id);
        if !roles.is_empty() {
            // A role's policy: refused like a user's (RAM `DeleteConflict.Policy.*`).
            return Err(CredentialError::Conflict(format!(
                "policy {name} is attached to role(s) {}: detach it first",
                roles
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.iam_delete_policies(account, &[policy.id], policy.grammar, Dependents::Refuse)
            .await?;
        Ok(())
    }

    /// The policies attached to a sub-user, by name.
    pub fn attached_policies(
        &self,
        account: &str,
        user: &str,
    ) -> Result<Vec<PolicyRecord>, CredentialError> {
        let user = self.sub_user(account, user)?;
        admin_lookup(account, self.iam_attached(account, user.id))
    }

    /// Attach (`on`) or detach a policy of the account to one of its sub-users. Attaching an
    /// attached policy is a conflict, detaching an unattached one not found (RAM's
    /// `EntityAlreadyExists.User.Policy` / `EntityNotExist.User.Policy`).
    pub async fn set_attached(
        &self,
        account: &str,
        user: &str,
        policy: &str,
        on: bool,
    ) -> Result<(), CredentialError> {
        let u = self.sub_user(account, user)?;
        let p = self.policy(account, policy)?;
        Ok(self.iam_set_attached(account, u.id, p.id, None, on).await?)
    }

    /// May `p` perform `action` (the registry's policy name, `cvm:RebootInstances`)? The
    /// bootstrap admin and an account root may do anything (tenancy is
    /// [`Principal::sees`]'s, checked when resources are touched); a sub-user needs an
    /// attached policy whose statement allows the action on `resource`, and no matching
    /// deny.
    pub fn authorize(
        &self,
        p: &Principal,
        action: &str,
        resource: &str,
        context: nubis_identity::RequestContext,
    ) -> Decision {
        self.authorize_with(p, action, resource, context, None)
    }

    /// Do `p`'s policies name particular resources for `action`, so that the decision about
    /// `service_resource` alone is not final ([`nubis_identity::names_resources`])? False for
    /// roots.
    pub fn names_resources(&self, p: &Principal, action: &str, service_resource: &str) -> bool {
        let names = |policies: &[&CompiledPolicy]| {
            nubis_identity::names_resources(policies, action, service_resource)
        };
        !p.is_root()
            && self
                .with_policies(p, |g| {
                    names(&g.attached) || g.session_policy().is_some_and(|s| names(&[s]))
                })
                .unwrap_or(false)
    }

    /// `f` over the compiled policies that govern `p`, who is not a root: an assumed role's
    /// (with the session policy) or the sub-user's attached ones (None: no such role or
    /// sub-user in `p`'s account, or a root). The one place that collects them, for
    /// [`Engine::authorize_with`] and [`Engine::names_resources`].
    pub(crate) fn with_policies<R>(
        &self,
        p: &Principal,
        f: impl FnOnce(&Governing<'_>) -> R,
    ) -> Option<R> {
        // Lock order: the credentials before the directory.
        let creds;
        let role = match p.role() {
            Some(session) => {
                creds = self.inner.creds.read();
                let r = creds
                    .roles
                    .get(&session.role_id)
                    .filter(|r| r.account == p.account)?;
                let policy = creds.temps.get(&p.credential).and_then(|t| t.2.as_deref());
                Some((r, session, policy))
            }
            None => None,
        };
        let dir = self.inner.directory.read();
        let governing = match role {
            Some((r, session, policy)) => Governing {
                attached: r
                    .policies
                    .iter()
                    .filter_map(|id| dir.compiled(id))
                    .collect(),
                who: Governed::Role {
                    role: &r.name,
                    session: &session.session_name,
                    policy,
                },
            },
            None => {
                let user = p.sub_user?;
                if dir.users.get(&user).is_none_or(|u| u.account != p.account) {
                    return None;
                }
                Governing {
                    attached: dir
                        .attached
                        .get(&user)
                        .into_iter()
                        .flatten()
                        .filter_map(|id| dir.compiled(id))
                        .collect(),
                    who: Governed::User(user),
                }
            }
        };
        Some(f(&governing))
    }

    /// The account a new key goes to (`None`: the bootstrap admin) and its sub-user.
    pub(crate) fn key_owner(
        &self,
        account: Option<&str>,
        user: Option<&str>,
    ) -> Result<(String, Option<u64>), CredentialError> {
        let account = account.unwrap_or(ADMIN_ACCOUNT);
        self.check_account(account)?;
        match user {
            None => Ok((account.to_string(), None)),
            Some(name) => Ok((account.to_string(), Some(self.sub_user(account, name)?.id))),
        }
    }

    /// Start-up: sub-users, policies (recompiled) and attachments from the store.
    pub(crate) fn load_directory(
        accounts: &HashMap<String, Account>,
        snap_users: Vec<SubUser>,
        snap_policies: Vec<PolicyRecord>,
        snap_attachments: Vec<Attachment>,
    ) -> Result<Directory, nubis_core::DomainError> {
        let mut dir = Directory::default();
        for a in accounts.values() {
            dir.numbers.insert(a.id.clone(), Numbers::of(a));
        }
        for u in snap_users {
            dir.users.insert(u.id, u);
        }
        for p in snap_policies {
            // A document that compiled on write and no longer does is a parser change that
            // must not silently drop (or widen) a sub-user's permissions: refuse to start.
            let c = compile(&p.name, p.grammar, &p.document).map_err(|e| {
                nubis_core::DomainError::Internal(format!(
                    "stored policy {} of account {} no longer compiles: {e}",
                    p.name, p.account
                ))
            })?;
            dir.policies.insert(p.id, (p, Arc::new(c)));
        }
        for a in snap_attachments {
            dir.attached.entry(a.user).or_default().insert(a.policy);
        }
        Ok(dir)
    }
}
