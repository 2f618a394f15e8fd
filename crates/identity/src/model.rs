//! Accounts, principals, credentials and MFA devices: what the evaluation and the identity
//! APIs (CAM, RAM, STS, Keystone) talk about. Plain data; the store persists it later.

use crate::secret::Secret;
use crate::totp::{self, TotpError, TotpParams};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

/// nubis's own ID of an account (the tenant).
pub type AccountId = String;

/// A tenant, with the name each cloud gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Tencent: the owner UIN (`uin/<n>` in `qcs` resource names) and the AppId.
    pub tencent_owner_uin: u64,
    pub tencent_app_id: u64,
    /// Alibaba: the account ID (the 4th field of an `acs` resource name).
    pub aliyun_account_id: String,
    /// Keystone: the domain whose projects belong to this account.
    pub keystone_domain_id: String,
}

/// Who makes a request: an identity of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account: AccountId,
    pub kind: PrincipalKind,
    /// Tencent operation protection (`SetMfaFlag` ActionFlag): sensitive actions need a
    /// recent MFA authentication (see [`crate::eval::OperationProtection`]).
    pub operation_protection: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account itself (Tencent owner account, Alibaba root account): allowed everything
    /// in its own account without a policy.
    Root,
    /// A sub-user (CAM sub-account, RAM user): denied unless a policy allows.
    User { id: String, name: String },
    /// Temporary credentials of an assumed role.
    RoleSession { role: String, session: String },
    /// A Keystone user acting through a token (or application credential) with a scope.
    Keystone(KeystoneIdentity),
}

impl Principal {
    pub fn root(account: impl Into<AccountId>) -> Self {
        Self {
            account: account.into(),
            kind: PrincipalKind::Root,
            operation_protection: false,
        }
    }

    pub fn user(account: impl Into<AccountId>, id: impl Into<String>) -> Self {
        let id = id.into();
        Self {
            account: account.into(),
            kind: PrincipalKind::User {
                name: id.clone(),
                id,
            },
            operation_protection: false,
        }
    }

    pub fn with_operation_protection(mut self, on: bool) -> Self {
        self.operation_protection = on;
        self
    }

    pub fn is_root(&self) -> bool {
        matches!(self.kind, PrincipalKind::Root)
    }
}

/// What a Keystone token says about its user: the scope and the roles on it (implied roles
/// already expanded, as Keystone puts them in the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneIdentity {
    pub user_id: String,
    pub user_domain_id: String,
    pub scope: KeystoneScope,
    /// Lower-case role names on the scope.
    pub roles: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeystoneScope {
    Project { id: String, domain_id: String },
    Domain { id: String },
    System,
    Unscoped,
}

impl KeystoneScope {
    /// The oslo.policy `scope_types` name of this scope.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Project { .. } => "project",
            Self::Domain { .. } => "domain",
            Self::System => "system",
            Self::Unscoped => "unscoped",
        }
    }
}

/// Keystone's default role implications (`keystone-manage bootstrap`): admin implies member
/// and manager, manager implies member, member implies reader.
pub const IMPLIED_ROLES: &[(&str, &str)] = &[
    ("admin", "manager"),
    ("admin", "member"),
    ("manager", "member"),
    ("member", "reader"),
];

/// A Keystone user and its role assignments per project.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeystoneUser {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    /// project ID → assigned roles (lower-case).
    pub project_roles: BTreeMap<String, BTreeSet<String>>,
}

impl KeystoneUser {
    /// The identity a token scoped to `project` (of `project_domain_id`) carries: the
    /// assigned roles plus the roles they imply.
    pub fn scoped_to_project(&self, project: &str, project_domain_id: &str) -> KeystoneIdentity {
        let assigned = self.project_roles.get(project).cloned().unwrap_or_default();
        KeystoneIdentity {
            user_id: self.id.clone(),
            user_domain_id: self.domain_id.clone(),
            scope: KeystoneScope::Project {
                id: project.to_string(),
                domain_id: project_domain_id.to_string(),
            },
            roles: expand_implied(assigned),
        }
    }
}

/// `roles` plus every role they imply, transitively.
pub fn expand_implied(mut roles: BTreeSet<String>) -> BTreeSet<String> {
    loop {
        let before = roles.len();
        for (prior, implied) in IMPLIED_ROLES {
            if roles.contains(*prior) {
                roles.insert((*implied).to_string());
            }
        }
        if roles.len() == before {
            return roles;
        }
    }
}

/// What a request authenticates with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AccessKey(AccessKey),
    Temporary(TemporaryCredential),
    KeystoneToken(KeystoneToken),
    ApplicationCredential(ApplicationCredential),
}

/// A long-term key pair (Tencent SecretId/SecretKey, Alibaba AccessKeyId/Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub secret: Secret<String>,
    pub principal: Principal,
    pub enabled: bool,
}

/// STS credentials: a key pair plus a session token, valid until `expires_at`; carries the
/// time of the MFA authentication it was issued after, if any (Tencent GetSessionToken).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporaryCredential {
    pub access_key_id: String,
    pub secret: Secret<String>,
    pub session_token: Secret<String>,
    pub principal: Principal,
    pub expires_at: OffsetDateTime,
    pub mfa_authenticated_at: Option<OffsetDateTime>,
}

impl TemporaryCredential {
    /// Valid strictly before `expires_at`.
    pub fn is_valid_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeystoneToken {
    pub id: Secret<String>,
    pub identity: KeystoneIdentity,
    pub expires_at: OffsetDateTime,
}

/// A Keystone application credential: a secret bound to one project and a subset of the
/// user's roles there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationCredential {
    pub id: String,
    pub secret: Secret<String>,
    pub user_id: String,
    pub project_id: String,
    pub roles: BTreeSet<String>,
    pub expires_at: Option<OffsetDateTime>,
    /// May create further credentials (Keystone's `unrestricted`).
    pub unrestricted: bool,
}

/// A virtual MFA device (TOTP, RFC 6238).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDevice {
    pub serial: String,
    pub seed: Secret<Vec<u8>>,
    pub params: TotpParams,
    /// The time step of the last accepted code: a code is accepted once.
    pub last_used_step: Option<u64>,
}

impl MfaDevice {
    /// Checks `code` at `now` (±1 step); on success returns the step to store as
    /// `last_used_step`. Pure: the caller persists the step.
    pub fn verify(&self, code: &str, now: OffsetDateTime) -> Result<u64, TotpError> {
        totp::verify(
            self.seed.expose(),
            &self.params,
            code,
            now.unix_timestamp(),
            self.last_used_step,
        )
    }
}
