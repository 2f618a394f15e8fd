//! Records of roles, virtual MFA devices, operation-protection flags and temporary
//! credentials (issue 13: STS and MFA). Stored as JSON next to their lookup columns
//! (migration 0004); secrets are sealed at rest like access-key secrets.

use serde::{Deserialize, Serialize};

/// A role of an account (Tencent CAM role, Alibaba RAM role), assumed through STS
/// `AssumeRole`. Its numeric ID is the CAM `RoleId` and (as a decimal string) the RAM
/// `RoleId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub id: u64,
    pub account: String,
    /// Unique within the account.
    pub name: String,
    /// The cloud whose API created it (its trust policy's grammar).
    pub grammar: crate::PolicyGrammar,
    /// The trust policy as given (who may assume the role).
    pub trust_policy: String,
    pub description: String,
    /// The longest session AssumeRole may ask for, in seconds.
    pub max_session_secs: u64,
    /// IDs of the account's policies attached to the role.
    #[serde(default)]
    pub policies: Vec<u64>,
    pub created_at_ms: i64,
    #[serde(default)]
    pub updated_at_ms: i64,
}

/// A virtual MFA device (TOTP, RFC 6238: SHA-1, 6 digits, 30 s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaDeviceRecord {
    /// Unique: the Alibaba serial, or `<Tencent serial>#<sub-user>`.
    pub id: String,
    /// Tencent `qcs::cam:uin/<owner>::mfa/softToken` (one per sub-user: the owner UIN, and
    /// the sub-user tells them apart) or Alibaba `acs:ram::<account>:mfa/<name>`.
    pub serial: String,
    pub account: String,
    /// The Base32 seed, sealed.
    pub sealed_seed: String,
    /// The sub-user it is bound to (`None`: created, not bound yet).
    pub user: Option<u64>,
    /// The TOTP step of the last accepted code: a code is accepted once.
    pub last_used_step: Option<u64>,
    pub created_at_ms: i64,
}

/// Tencent `SetMfaFlag` factors of one sub-user (0/1 each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFactors {
    pub phone: u8,
    pub stoken: u8,
    pub wechat: u8,
}

/// Login and operation-protection flags of a sub-user (`SetMfaFlag`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MfaFlags {
    pub user: u64,
    pub login: MfaFactors,
    pub action: MfaFactors,
}

/// A temporary credential issued by STS. Only what checking it needs is kept: the secret
/// (sealed), a SHA-256 of the session token (the token itself is never stored), the
/// principal it stands for, its expiry and its MFA time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TempCredentialRecord {
    /// `AKID…` (Tencent) or `STS.…` (Alibaba).
    pub id: String,
    pub account: String,
    pub sealed_secret: String,
    /// Hex SHA-256 of the session token.
    pub token_sha256: String,
    /// The sub-user it was issued to (GetSessionToken by a sub-user), if any.
    pub user: Option<u64>,
    /// The assumed role and session name, if any.
    pub role: Option<u64>,
    #[serde(default)]
    pub session_name: String,
    /// The session policy given to AssumeRole, if any.
    #[serde(default)]
    pub policy: Option<String>,
    pub expires_at_ms: i64,
    pub mfa_at_ms: Option<i64>,
    pub created_at_ms: i64,
}
