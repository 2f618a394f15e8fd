//! Temporary credentials (STS), roles, virtual MFA devices and operation-protection flags
//! (issue 13; docs/identity-wire.md §2–§4, §6, §7, D4–D9, D21).
//!
//! The store is the truth: every change is committed before memory changes and before the
//! client hears. Temporary credentials keep only what checking them needs (the secret sealed,
//! the session token as SHA-256, compared in constant time); they survive a restart and are
//! swept [`SWEEP_GRACE_MS`] after their expiry (until then an expired one answers the clouds'
//! "expired" codes rather than "unknown key").

use crate::accounts::CredentialError;
use crate::tenancy::Governed;
use crate::{Engine, now_ms};
use base64::Engine as _;
use nubis_core::{
    MfaDeviceRecord, MfaFactors, MfaFlags, PolicyGrammar, Principal, RoleRecord, RoleSession,
    Session, TempCredentialRecord,
};
use nubis_identity::totp::{self, TotpParams};
use nubis_identity::{CompiledPolicy, Decision};
use nubis_store::Write;
use rand::Rng;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::Arc;

/// How long an expired temporary credential is kept (answering "expired") before it is
/// swept: one hour.
pub const SWEEP_GRACE_MS: i64 = 3_600_000;
/// Roles per account (RAM's default quota; CAM documents 1000 too).
pub const MAX_ROLES: usize = 1000;
/// Policies attached to one role (RAM `LimitExceeded.Role.Policy`: 20 custom... CAM 200).
pub const MAX_ROLE_POLICIES: usize = 20;
/// Largest trust policy or session policy accepted, in bytes (CAM 4096, RAM 2048 for the
/// session policy; trust policies are stored, not evaluated, so one bound serves).
pub const MAX_POLICY_BYTES: usize = 6144;
/// Virtual MFA devices per account (RAM's default quota).
pub const MAX_MFA_DEVICES: usize = 1000;
/// The shortest STS DurationSeconds by default (Alibaba's documented minimum, used for
/// Tencent too; `NUBIS_STS_MIN_DURATION_SECS` lowers it for tests).
pub const DEFAULT_STS_MIN_DURATION_SECS: u64 = 900;
/// Prefix of every session token nubis issues (a token without it is malformed).
const TOKEN_PREFIX: &str = "nbs1";
/// Random bytes in a token (base64url: 64 characters).
const TOKEN_BYTES: usize = 48;

/// Which cloud's STS issues a credential: the key ID's shape differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuer {
    /// `AKID` + 32 (Tencent TmpSecretId).
    Tencent,
    /// `STS.` + 28 (Alibaba).
    Aliyun,
}

/// A credential just issued: the only time its secret and token are shown.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    pub id: String,
    pub secret: String,
    pub token: String,
    pub expires_at_ms: i64,
}

/// Why a temporary credential was refused (the dialects render D4 / D5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TempRefusal {
    /// No temporary credential has this ID (revoked, swept or never issued).
    Unknown,
    /// The request carries no session token.
    MissingToken,
    /// The token is not one nubis could have issued.
    Malformed,
    /// The token belongs to another key (or is unknown).
    Mismatch,
    /// The credential expired.
    Expired,
}

/// Why an MFA code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaRefusal {
    /// No device is bound to the caller under that serial.
    NoDevice,
    /// The code is wrong (or was already used).
    WrongCode,
}

/// Roles, MFA devices and flags, temporary credentials (memory mirror of the store).
#[derive(Default)]
pub(crate) struct Creds {
    pub roles: HashMap<u64, RoleRecord>,
    /// Device ID → (record, seed bytes).
    pub devices: HashMap<String, (MfaDeviceRecord, Vec<u8>)>,
    pub flags: HashMap<u64, MfaFlags>,
    /// Key ID → (record, secret in clear, compiled session policy).
    pub temps: HashMap<String, (TempCredentialRecord, String, Option<Arc<CompiledPolicy>>)>,
}

fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// RFC 4648 Base32 without padding (what authenticator apps and RAM's
/// `Base32StringSeed` use).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for b in bytes {
        buf = (buf << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The inverse of [`base32`]; `None` for a character outside the alphabet.
pub fn unbase32(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        buf = (buf << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

/// Tencent's soft-token serial of an owner UIN (D7).
pub fn tencent_serial(owner_uin: u64) -> String {
    format!("qcs::cam:uin/{owner_uin}::mfa/softToken")
}

fn invalid(name: &'static str, reason: impl Into<String>) -> CredentialError {
    CredentialError::Invalid {
        name,
        reason: reason.into(),
    }
}

fn compile_session(grammar: PolicyGrammar, doc: &str) -> Result<CompiledPolicy, CredentialError> {
    crate::tenancy::compile("session-policy", grammar, doc)
        .map_err(|e| invalid("Policy", e.to_string()))
}

impl Creds {
    pub(crate) fn load(
        roles: Vec<RoleRecord>,
        devices: Vec<MfaDeviceRecord>,
        flags: Vec<MfaFlags>,
        temps: Vec<TempCredentialRecord>,
        secrets: &nubis_auth::secret::SecretBox,
    ) -> Result<Self, nubis_core::DomainError> {
        let internal = nubis_core::DomainError::Internal;
        let mut c = Creds::default();
        for r in roles {
            c.roles.insert(r.id, r);
        }
        for d in devices {
            let seed = secrets
                .open(&d.sealed_seed)
                .ok()
                .and_then(|s| unbase32(&s))
                .ok_or_else(|| internal(format!("MFA device {}: seed unreadable", d.id)))?;
            c.devices.insert(d.id.clone(), (d, seed));
        }
        for f in flags {
            c.flags.insert(f.user, f);
        }
        let keep_after = now_ms() - SWEEP_GRACE_MS;
        let roles = &c.roles;
        for t in temps {
            if t.expires_at_ms < keep_after {
                continue;
            }
            let secret = secrets
                .open(&t.sealed_secret)
                .map_err(|e| internal(format!("temporary credential {}: {e}", t.id)))?;
            let grammar = t
                .role
                .and_then(|r| roles.get(&r))
                .map_or(PolicyGrammar::Cam, |r| r.grammar);
            let compiled = match &t.policy {
                Some(doc) => {
                    Some(Arc::new(compile_session(grammar, doc).map_err(|e| {
                        internal(format!("temporary credential {}: {e}", t.id))
                    })?))
                }
                None => None,
            };
            c.temps.insert(t.id.clone(), (t, secret, compiled));
        }
        Ok(c)
    }
}

/// A role's trust policy: a JSON object of at most [`MAX_POLICY_BYTES`] (who may assume
/// the role is read from it when a role is assumed, see [`Engine::may_assume`]).
fn check_trust_policy(doc: &str) -> Result<(), CredentialError> {
    if doc.len() > MAX_POLICY_BYTES
        || serde_json::from_str::<serde_json::Value>(doc).map_or(true, |v| !v.is_object())
    {
        return Err(invalid(
            "PolicyDocument",
            "the trust policy is not a JSON object of at most 6144 bytes",
        ));
    }
    Ok(())
}

/// What UpdateRole (RAM), UpdateAssumeRolePolicy and UpdateRoleDescription (CAM) change;
/// `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct RoleUpdate<'a> {
    pub trust_policy: Option<&'a str>,
    pub description: Option<&'a str>,
    pub max_session_secs: Option<u64>,
}

/// What AssumeRole asks for.
#[derive(Debug, Clone)]
pub struct AssumeRole<'a> {
    pub role: &'a RoleRecord,
    pub session_name: &'a str,
    pub duration_secs: u64,
    /// The session policy (already URL-decoded), in the role's grammar.
    pub policy: Option<&'a str>,
    pub mfa_at_ms: Option<i64>,
}

impl Engine {
    // ---------------------------------------------------------------- temporary credentials

    /// The shortest STS DurationSeconds accepted.
    pub fn sts_min_duration_secs(&self) -> u64 {
        self.inner
            .sts_min_duration_secs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Configure [`Engine::sts_min_duration_secs`] (server start-up).
    pub fn set_sts_min_duration_secs(&self, secs: u64) {
        self.inner
            .sts_min_duration_secs
            .store(secs, std::sync::atomic::Ordering::Relaxed);
    }

    /// Checks temporary credential `id` with the request's `token` at `now_ms`; on success
    /// its principal (with the session) and secret, for the signature check.
    pub fn temp_credential(
        &self,
        id: &str,
        token: Option<&str>,
        now_ms: i64,
    ) -> Result<(Principal, String), TempRefusal> {
        let creds = self.inner.creds.read();
        let (rec, secret, _) = creds.temps.get(id).ok_or(TempRefusal::Unknown)?;
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or(TempRefusal::MissingToken)?;
        if !token_well_formed(token) {
            return Err(TempRefusal::Malformed);
        }
        if !nubis_auth::ct_eq(sha256_hex(token).as_bytes(), rec.token_sha256.as_bytes()) {
            return Err(TempRefusal::Mismatch);
        }
        if now_ms >= rec.expires_at_ms {
            return Err(TempRefusal::Expired);
        }
        let principal = self
            .temp_principal(rec, &creds)
            .ok_or(TempRefusal::Unknown)?;
        Ok((principal, secret.clone()))
    }

    /// Whether `id` is a temporary credential nubis knows (issued and not swept).
    pub fn is_temp_credential(&self, id: &str) -> bool {
        self.inner.creds.read().temps.contains_key(id)
    }

    fn temp_principal(&self, rec: &TempCredentialRecord, creds: &Creds) -> Option<Principal> {
        let account = self.account(&rec.account)?;
        let role = match rec.role {
            Some(id) => {
                let r = creds.roles.get(&id).filter(|r| r.account == account.id)?;
                Some(RoleSession {
                    role_id: r.id,
                    role_name: r.name.clone(),
                    session_name: rec.session_name.clone(),
                    policy: rec.policy.clone(),
                })
            }
            None => None,
        };
        let (user, sub_user) = match (rec.user, &role) {
            (_, Some(r)) => (format!("{}/{}", r.role_name, r.session_name), None),
            (Some(uid), None) => {
                let dir = self.inner.directory.read();
                let u = dir.users.get(&uid).filter(|u| u.account == account.id)?;
                (u.name.clone(), Some(uid))
            }
            (None, None) => (account.name.clone(), None),
        };
        Some(Principal {
            account: account.id.clone(),
            user,
            is_admin: account.is_admin && sub_user.is_none() && role.is_none(),
            sub_user,
            credential: rec.id.clone(),
            session: Some(Box::new(Session {
                expires_at_ms: rec.expires_at_ms,
                mfa_at_ms: rec.mfa_at_ms,
                role,
            })),
            ..Default::default()
        })
    }

    /// Issues a temporary credential for `p` itself (Tencent GetSessionToken): a sub-user's
    /// or the root's session, with the MFA time if a code was checked.
    pub async fn issue_session_token(
        &self,
        p: &Principal,
        issuer: Issuer,
        duration_secs: u64,
        mfa_at_ms: Option<i64>,
    ) -> Result<IssuedCredential, CredentialError> {
        let rec =
            |id: String, sealed: String, token_sha256: String, now: i64| TempCredentialRecord {
                id,
                account: p.account.clone(),
                sealed_secret: sealed,
                token_sha256,
                user: p.sub_user,
                role: None,
                session_name: String::new(),
                policy: None,
                expires_at_ms: now + duration_secs as i64 * 1000,
                mfa_at_ms,
                created_at_ms: now,
            };
        self.issue(issuer, rec, None).await
    }

    /// Issues a role session's credential (STS AssumeRole). The caller checked who may
    /// assume the role ([`Engine::may_assume`]) and the duration bounds.
    pub async fn assume_role(
        &self,
        p: &Principal,
        issuer: Issuer,
        a: AssumeRole<'_>,
    ) -> Result<IssuedCredential, CredentialError> {
        let compiled = match a.policy {
            Some(doc) => {
                if doc.len() > MAX_POLICY_BYTES {
                    return Err(invalid("Policy", "the session policy is too long"));
                }
                Some(Arc::new(compile_session(a.role.grammar, doc)?))
            }
            None => None,
        };
        let role = a.role;
        let rec =
            |id: String, sealed: String, token_sha256: String, now: i64| TempCredentialRecord {
                id,
                account: role.account.clone(),
                sealed_secret: sealed,
                token_sha256,
                user: None,
                role: Some(role.id),
                session_name: a.session_name.to_string(),
                policy: a.policy.map(str::to_string),
                expires_at_ms: now + a.duration_secs as i64 * 1000,
                // A role session inherits the caller's MFA time (D9), or the code it was
                // assumed with.
                mfa_at_ms: a
                    .mfa_at_ms
                    .or_else(|| p.session.as_ref().and_then(|s| s.mfa_at_ms)),
                created_at_ms: now,
            };
        self.issue(issuer, rec, compiled).await
    }

    async fn issue(
        &self,
        issuer: Issuer,
        rec: impl FnOnce(String, String, String, i64) -> TempCredentialRecord,
        compiled: Option<Arc<CompiledPolicy>>,
    ) -> Result<IssuedCredential, CredentialError> {
        let now = now_ms();
        let id = loop {
            let id = match issuer {
                Issuer::Tencent => format!("AKID{}", random_alnum(32)),
                Issuer::Aliyun => format!("STS.{}", random_alnum(28)),
            };
            let taken = self.inner.creds.read().temps.contains_key(&id)
                || self.inner.fleet.lock().access_keys.contains_key(&id);
            if !taken {
                break id;
            }
        };
        let secret = random_alnum(32);
        let mut raw = [0u8; TOKEN_BYTES];
        rand::rng().fill(&mut raw[..]);
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let record = rec(
            id.clone(),
            self.inner.secrets.seal(&secret),
            sha256_hex(&token),
            now,
        );
        let expires_at_ms = record.expires_at_ms;
        let sweep_before = now - SWEEP_GRACE_MS;
        self.commit(vec![
            Write::TempCredential(record.clone()),
            Write::SweepTempCredentials(sweep_before),
        ])
        .await?;
        let mut creds = self.inner.creds.write();
        creds
            .temps
            .retain(|_, (t, _, _)| t.expires_at_ms >= sweep_before);
        creds
            .temps
            .insert(id.clone(), (record, secret.clone(), compiled));
        tracing::info!(access_key_id = %id, "temporary credential issued");
        Ok(IssuedCredential {
            id,
            secret,
            token,
            expires_at_ms,
        })
    }

    // ---------------------------------------------------------------- roles

    /// Create a role; the name is unique in the account (the dialect checked its shape).
    pub async fn create_role(
        &self,
        account: &str,
        name: &str,
        grammar: PolicyGrammar,
        trust_policy: &str,
        description: &str,
        max_session_secs: u64,
    ) -> Result<RoleRecord, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        self.check_account(account)?;
        check_trust_policy(trust_policy)?;
        let record = {
            let creds = self.inner.creds.read();
            let mine = creds.roles.values().filter(|r| r.account == account);
            if mine.clone().any(|r| r.name == name) {
                return Err(CredentialError::Conflict(format!(
                    "role {name} already exists in account {account}"
                )));
            }
            if mine.count() >= MAX_ROLES {
                return Err(CredentialError::Invalid {
                    name: "RoleFull",
                    reason: format!("an account has at most {MAX_ROLES} roles"),
                });
            }
            let mut rng = rand::rng();
            let id = loop {
                // A CAM RoleId's shape: a 19-digit number.
                let n = rng.random_range(4_611_686_018_400_000_000..=4_611_686_018_499_999_999u64);
                if !creds.roles.contains_key(&n) {
                    break n;
                }
            };
            let now = now_ms();
            RoleRecord {
                id,
                account: account.to_string(),
                name: name.to_string(),
                grammar,
                trust_policy: trust_policy.to_string(),
                description: description.to_string(),
                max_session_secs,
                policies: Vec::new(),
                created_at_ms: now,
                updated_at_ms: now,
            }
        };
        self.commit(vec![Write::Role(record.clone())]).await?;
        self.inner
            .creds
            .write()
            .roles
            .insert(record.id, record.clone());
        tracing::info!(account, role = name, "role created");
        Ok(record)
    }

    pub fn role_by_name(&self, account: &str, name: &str) -> Option<RoleRecord> {
        self.inner
            .creds
            .read()
            .roles
            .values()
            .find(|r| r.account == account && r.name == name)
            .cloned()
    }

    /// The account's roles, by name.
    pub fn roles_of(&self, account: &str) -> Vec<RoleRecord> {
        let mut v: Vec<RoleRecord> = self
            .inner
            .creds
            .read()
            .roles
            .values()
            .filter(|r| r.account == account)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn role_by_id(&self, account: &str, id: u64) -> Option<RoleRecord> {
        self.inner
            .creds
            .read()
            .roles
            .get(&id)
            .filter(|r| r.account == account)
            .cloned()
    }

    /// A policy of the account by ID or name (for role attachments): (ID, name).
    pub fn policy_ref(&self, account: &str, id: Option<u64>, name: Option<&str>) -> Option<u64> {
        let dir = self.inner.directory.read();
        dir.policies
            .values()
            .map(|(p, _)| p)
            .find(|p| {
                p.account == account
                    && id.is_none_or(|i| p.id == i)
                    && name.is_none_or(|n| p.name == n)
            })
            .map(|p| p.id)
    }

    /// Attach (`attach`) or detach policy `policy` (an ID of the account's) to or from role
    /// `role`. Attaching an attached policy is a conflict; detaching one that is not
    /// attached is not found, as is a role or policy that is not the account's.
    pub async fn set_role_policy(
        &self,
        account: &str,
        role: u64,
        policy: u64,
        attach: bool,
    ) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let mut r = self
            .role_by_id(account, role)
            .ok_or_else(|| CredentialError::NotFound(format!("role {role}")))?;
        if self.policy_ref(account, Some(policy), None).is_none() {
            return Err(CredentialError::NotFound(format!("policy {policy}")));
        }
        let at = r.policies.iter().position(|p| *p == policy);
        match (attach, at) {
            (true, Some(_)) => {
                return Err(CredentialError::Conflict(format!(
                    "policy {policy} is already attached to role {}",
                    r.name
                )));
            }
            (true, None) if r.policies.len() >= MAX_ROLE_POLICIES => {
                return Err(CredentialError::Invalid {
                    name: "AttachmentFull",
                    reason: format!("a role has at most {MAX_ROLE_POLICIES} policies"),
                });
            }
            (true, None) => r.policies.push(policy),
            (false, Some(at)) => {
                r.policies.remove(at);
            }
            (false, None) => {
                return Err(CredentialError::NotFound(format!(
                    "policy {policy} attached to role {}",
                    r.name
                )));
            }
        }
        let r = self.save_role(r).await?;
        tracing::info!(account, role = %r.name, policy, attach, "role policies changed");
        Ok(())
    }

    /// Commit a changed role (stamped now), then make it visible.
    async fn save_role(&self, mut r: RoleRecord) -> Result<RoleRecord, CredentialError> {
        r.updated_at_ms = now_ms();
        self.commit(vec![Write::Role(r.clone())]).await?;
        self.inner.creds.write().roles.insert(r.id, r.clone());
        Ok(r)
    }

    /// Delete role `role`. A role with attached policies is a conflict unless `detach`
    /// (CAM deletes the attachments with the role; RAM refuses). Its sessions stop working
    /// at once: a role session's principal is made from its role on every request.
    pub async fn delete_role(
        &self,
        account: &str,
        role: u64,
        detach: bool,
    ) -> Result<RoleRecord, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let r = self
            .role_by_id(account, role)
            .ok_or_else(|| CredentialError::NotFound(format!("role {role}")))?;
        if !detach && !r.policies.is_empty() {
            return Err(CredentialError::Conflict(format!(
                "role {} still has {} attached policies",
                r.name,
                r.policies.len()
            )));
        }
        self.commit(vec![Write::DeleteRole(r.id)]).await?;
        self.inner.creds.write().roles.remove(&r.id);
        tracing::info!(account, role = %r.name, "role deleted");
        Ok(r)
    }

    /// Change a role's trust policy, description or session ceiling (the dialect checked
    /// the description's and the duration's ranges).
    pub async fn update_role(
        &self,
        account: &str,
        role: u64,
        change: RoleUpdate<'_>,
    ) -> Result<RoleRecord, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let mut r = self
            .role_by_id(account, role)
            .ok_or_else(|| CredentialError::NotFound(format!("role {role}")))?;
        if let Some(doc) = change.trust_policy {
            check_trust_policy(doc)?;
            r.trust_policy = doc.to_string();
        }
        if let Some(d) = change.description {
            r.description = d.to_string();
        }
        if let Some(secs) = change.max_session_secs {
            r.max_session_secs = secs;
        }
        let r = self.save_role(r).await?;
        tracing::info!(account, role = %r.name, "role updated");
        Ok(r)
    }

    /// The names of the roles a policy is attached to (a policy attached to a role is not
    /// deleted under it).
    pub fn policy_roles(&self, policy: u64) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .creds
            .read()
            .roles
            .values()
            .filter(|r| r.policies.contains(&policy))
            .map(|r| r.name.clone())
            .collect();
        v.sort();
        v
    }

    /// May `p` assume `role`? The role must be of `p`'s account, or its trust policy must
    /// name `p`'s account (its owner UIN / Alibaba account ID) as a principal. (Whether `p`
    /// may call `sts:AssumeRole` at all is its policies' business, decided at the gate.)
    pub fn may_assume(&self, p: &Principal, role: &RoleRecord) -> bool {
        if role.account == p.account {
            return true;
        }
        let Some(acct) = self.account(&p.account) else {
            return false;
        };
        let Ok(trust) = serde_json::from_str::<serde_json::Value>(&role.trust_policy) else {
            return false;
        };
        let mut names = Vec::new();
        collect_principals(&trust, false, &mut names);
        names.iter().any(|n| {
            (acct.tencent_owner_uin != 0 && n.contains(&format!("uin/{}", acct.tencent_owner_uin)))
                || (!acct.aliyun_account_id.is_empty()
                    && (n == &acct.aliyun_account_id
                        || n.contains(&format!("::{}:", acct.aliyun_account_id))))
        })
    }

    // ---------------------------------------------------------------- MFA devices

    /// Bind a new Tencent soft token to sub-user `user` of `account` (admin API, D7): the
    /// Base32 seed is returned once. One device per sub-user.
    pub async fn bind_soft_token(
        &self,
        account: &str,
        user: &str,
    ) -> Result<(String, String), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let acct = self.found_account(account)?;
        let u = self.sub_user(account, user)?;
        if self.device_of(u.id).is_some() {
            return Err(CredentialError::Conflict(format!(
                "sub-user {user} already has an MFA device"
            )));
        }
        let serial = tencent_serial(acct.tencent_owner_uin);
        let seed = self
            .new_device(
                account,
                format!("{serial}#{}", u.id),
                serial.clone(),
                Some(u.id),
            )
            .await?;
        tracing::info!(account, user, "soft token bound");
        Ok((serial, seed))
    }

    /// Alibaba `CreateVirtualMFADevice`: serial `acs:ram::<account-id>:mfa/<name>`, seed
    /// returned once.
    pub async fn create_virtual_mfa(
        &self,
        account: &str,
        name: &str,
    ) -> Result<(String, String), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let acct = self.found_account(account)?;
        let serial = format!("acs:ram::{}:mfa/{name}", acct.aliyun_account_id);
        {
            let creds = self.inner.creds.read();
            if creds.devices.contains_key(&serial) {
                return Err(CredentialError::Conflict(format!(
                    "virtual MFA device {name} already exists"
                )));
            }
            if creds
                .devices
                .values()
                .filter(|(d, _)| d.account == account)
                .count()
                >= MAX_MFA_DEVICES
            {
                return Err(CredentialError::Invalid {
                    name: "LimitExceeded",
                    reason: format!("an account has at most {MAX_MFA_DEVICES} MFA devices"),
                });
            }
        }
        let seed = self
            .new_device(account, serial.clone(), serial.clone(), None)
            .await?;
        Ok((serial, seed))
    }

    async fn new_device(
        &self,
        account: &str,
        id: String,
        serial: String,
        user: Option<u64>,
    ) -> Result<String, CredentialError> {
        let mut seed = [0u8; 20];
        rand::rng().fill(&mut seed[..]);
        let b32 = base32(&seed);
        let record = MfaDeviceRecord {
            id: id.clone(),
            serial,
            account: account.to_string(),
            sealed_seed: self.inner.secrets.seal(&b32),
            user,
            last_used_step: None,
            created_at_ms: now_ms(),
        };
        self.commit(vec![Write::MfaDevice(record.clone())]).await?;
        self.inner
            .creds
            .write()
            .devices
            .insert(id, (record, seed.to_vec()));
        Ok(b32)
    }

    fn device_of(&self, user: u64) -> Option<MfaDeviceRecord> {
        self.inner
            .creds
            .read()
            .devices
            .values()
            .find(|(d, _)| d.user == Some(user))
            .map(|(d, _)| d.clone())
    }

    /// Alibaba `BindMFADevice`: two successive codes of the device bind it to `user`.
    pub async fn bind_virtual_mfa(
        &self,
        account: &str,
        serial: &str,
        user: &str,
        code1: &str,
        code2: &str,
    ) -> Result<(), CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let u = self.sub_user(account, user)?;
        let (mut rec, seed) = self
            .inner
            .creds
            .read()
            .devices
            .get(serial)
            .filter(|(d, _)| d.account == account)
            .cloned()
            .ok_or_else(|| CredentialError::NotFound(format!("virtual MFA device {serial}")))?;
        if rec.user.is_some() {
            return Err(CredentialError::Conflict(format!(
                "virtual MFA device {serial} is already bound"
            )));
        }
        if self.device_of(u.id).is_some() {
            return Err(CredentialError::Conflict(format!(
                "user {user} already has an MFA device"
            )));
        }
        let params = TotpParams::default();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Two successive codes: the first of the step before the second's.
        let s2 = totp::verify(&seed, &params, code2, now, None)
            .map_err(|_| invalid("AuthenticationCode", "the codes are not the device's"))?;
        let s1 = s2
            .checked_sub(1)
            .and_then(|s| totp::generate(&seed, &params, (s * params.period) as i64).ok());
        if !s1.is_some_and(|c| nubis_auth::ct_eq(c.as_bytes(), code1.as_bytes())) {
            return Err(invalid(
                "AuthenticationCode",
                "the codes are not the device's",
            ));
        }
        rec.user = Some(u.id);
        rec.last_used_step = Some(s2);
        self.commit(vec![Write::MfaDevice(rec.clone())]).await?;
        if let Some(entry) = self.inner.creds.write().devices.get_mut(serial) {
            entry.0 = rec;
        }
        tracing::info!(account, user, "virtual MFA device bound");
        Ok(())
    }

    /// Checks a TOTP `code` of the device bound to `p` under `serial` (Tencent: the
    /// sub-user's soft token; a code is accepted once). Returns the MFA time (ms).
    pub async fn verify_mfa_code(
        &self,
        p: &Principal,
        serial: &str,
        code: &str,
    ) -> Result<i64, MfaRefusal> {
        let _serial = self.inner.credentials.lock().await;
        let found = {
            let creds = self.inner.creds.read();
            p.sub_user.and_then(|u| {
                creds
                    .devices
                    .values()
                    .find(|(d, _)| {
                        d.user == Some(u) && d.account == p.account && d.serial == serial
                    })
                    .cloned()
            })
        };
        let (mut rec, seed) = found.ok_or(MfaRefusal::NoDevice)?;
        let now = time::OffsetDateTime::now_utc();
        let step = totp::verify(
            &seed,
            &TotpParams::default(),
            code,
            now.unix_timestamp(),
            rec.last_used_step,
        )
        .map_err(|_| MfaRefusal::WrongCode)?;
        rec.last_used_step = Some(step);
        self.commit(vec![Write::MfaDevice(rec.clone())])
            .await
            .map_err(|_| MfaRefusal::WrongCode)?;
        if let Some(entry) = self.inner.creds.write().devices.get_mut(&rec.id) {
            entry.0 = rec;
        }
        Ok(now_ms())
    }

    // ---------------------------------------------------------------- flags

    /// A sub-user's `SetMfaFlag` flags (all 0 when never set).
    pub fn mfa_flags(&self, user: u64) -> MfaFlags {
        self.inner
            .creds
            .read()
            .flags
            .get(&user)
            .copied()
            .unwrap_or(MfaFlags {
                user,
                ..Default::default()
            })
    }

    /// Set a sub-user's flags (`None` keeps the stored factors).
    pub async fn set_mfa_flags(
        &self,
        user: u64,
        login: Option<MfaFactors>,
        action: Option<MfaFactors>,
    ) -> Result<MfaFlags, CredentialError> {
        let _serial = self.inner.credentials.lock().await;
        let mut f = self.mfa_flags(user);
        if let Some(l) = login {
            f.login = l;
        }
        if let Some(a) = action {
            f.action = a;
        }
        self.commit(vec![Write::MfaFlags(f)]).await?;
        self.inner.creds.write().flags.insert(user, f);
        Ok(f)
    }

    // ---------------------------------------------------------------- authorization

    /// [`Engine::authorize`] with the service's operation protection (Tencent) and the
    /// credential's MFA time and role session: a role session is allowed what the role's
    /// attached policies allow, narrowed by its session policy.
    pub fn authorize_with(
        &self,
        p: &Principal,
        action: &str,
        resource: &str,
        mut context: nubis_identity::RequestContext,
        protection: Option<&nubis_identity::OperationProtection>,
    ) -> Decision {
        use nubis_identity::{Allowed, AuthzRequest, Denied};
        context.mfa_authenticated_at =
            p.session.as_ref().and_then(|s| s.mfa_at_ms).and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            });
        let ask = |policies: &[&CompiledPolicy], principal: &nubis_identity::Principal| {
            nubis_identity::evaluate(
                policies,
                &AuthzRequest {
                    principal,
                    action,
                    resource,
                    resource_account: None,
                    target: Default::default(),
                    context: context.clone(),
                    protection,
                },
            )
        };
        if p.is_root() {
            return Decision::Allow(Allowed::AccountRoot);
        }
        // Before the directory's lock (lock order).
        let protected = p.role().is_none()
            && p.sub_user
                .is_some_and(|u| self.mfa_flags(u).action.stoken == 1);
        self.with_policies(p, |g| {
            let principal = match g.who {
                Governed::Role { role, session, .. } => nubis_identity::Principal {
                    account: p.account.clone(),
                    kind: nubis_identity::PrincipalKind::RoleSession {
                        role: role.to_string(),
                        session: session.to_string(),
                    },
                    operation_protection: false,
                },
                Governed::User(user) => {
                    nubis_identity::Principal::user(p.account.clone(), user.to_string())
                        .with_operation_protection(protected)
                }
            };
            let by_attached = ask(&g.attached, &principal);
            match (&by_attached, g.session_policy()) {
                (Decision::Allow(_), Some(s)) => match ask(&[s], &principal) {
                    Decision::Allow(_) => by_attached,
                    denied => denied,
                },
                _ => by_attached,
            }
        })
        .unwrap_or(Decision::Deny(Denied::NoStatementAllowed))
    }

    /// Whether statement `s` of the principal's policies is a `Deny` (Alibaba renders a
    /// refusal by a `Deny … acs:MFAPresent false` statement as an explicit deny, D9).
    pub fn statement_is_deny(&self, p: &Principal, s: &nubis_identity::StatementRef) -> bool {
        let dir = self.inner.directory.read();
        dir.policies
            .values()
            .find(|(rec, c)| rec.account == p.account && c.name == s.policy)
            .and_then(|(_, c)| c.statements.get(s.statement))
            .is_some_and(|st| st.effect == nubis_identity::Effect::Deny)
    }
}

/// Every principal string in a trust policy's `principal` / `Principal` members.
fn collect_principals(v: &serde_json::Value, inside: bool, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if inside => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_principals(x, inside, out)),
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                collect_principals(x, inside || k.eq_ignore_ascii_case("principal"), out);
            }
        }
        _ => {}
    }
}

/// The shape of a token nubis issues.
fn token_well_formed(t: &str) -> bool {
    t.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == TOKEN_BYTES / 3 * 4
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_round_trips_rfc4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(unbase32("MZXW6YTBOI").as_deref(), Some(&b"foobar"[..]));
        let seed = [7u8; 20];
        assert_eq!(unbase32(&base32(&seed)).as_deref(), Some(&seed[..]));
        assert_eq!(unbase32("a1"), None);
    }

    #[test]
    fn tokens_have_one_shape() {
        let good = format!("{TOKEN_PREFIX}{}", "A".repeat(64));
        assert!(token_well_formed(&good));
        assert!(!token_well_formed("nbs1short"));
        assert!(!token_well_formed(&format!("xxxx{}", "A".repeat(64))));
        assert!(!token_well_formed(&format!(
            "{TOKEN_PREFIX}{}",
            "+".repeat(64)
        )));
    }

    #[test]
    fn trust_principals_are_collected() {
        let v: serde_json::Value = serde_json::from_str(
            r#"{"version":"2.0","statement":[{"action":"name/sts:AssumeRole","effect":"allow","principal":{"qcs":["qcs::cam::uin/100:root"]}}]}"#,
        )
        .unwrap();
        let mut out = Vec::new();
        collect_principals(&v, false, &mut out);
        assert_eq!(out, ["qcs::cam::uin/100:root"]);
    }
}
