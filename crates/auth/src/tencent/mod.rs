//! Tencent Cloud API 3.0 request authentication (spec `tencent-cvm.md` §3).
//!
//! Two schemes are supported:
//! * **TC3-HMAC-SHA256** ([`parse_tc3`], [`verify_tc3`], [`sign_tc3`]) — used by the
//!   SDKs and `tccli` for POST+JSON and GET requests; credentials travel in the
//!   `Authorization` and `X-TC-Timestamp` headers.
//! * **Legacy v1** HmacSHA1/HmacSHA256 ([`parse_legacy`], [`verify_legacy`],
//!   [`sign_legacy`]) — credentials travel as ordinary request parameters.
//!
//! A server typically does: `parse_*` (which also applies [`validate_secret_id`]) →
//! look up the secret key by [`TencentAuth::secret_id`] (unknown →
//! [`AuthError::SecretIdNotFound`]) → [`check_timestamp`] → `verify_*`.

mod legacy;
mod tc3;

pub use legacy::{legacy_replay_key, parse_legacy, sign_legacy, verify_legacy};
pub use tc3::{SERVICE, parse_tc3, sign_tc3, verify_tc3, verify_tc3_for};

use time::OffsetDateTime;
use time::macros::format_description;

/// Maximum allowed |server time − request timestamp| in seconds (spec §3d).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

pub use crate::HttpRequestParts;

/// HMAC flavour of the legacy v1 signature (`SignatureMethod` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyMethod {
    /// `HmacSHA1` — the default when `SignatureMethod` is absent.
    HmacSha1,
    /// `HmacSHA256`.
    HmacSha256,
}

impl LegacyMethod {
    /// The wire name used in the `SignatureMethod` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HmacSHA1",
            Self::HmacSha256 => "HmacSHA256",
        }
    }

    pub(crate) fn hash(self) -> crate::hmacs::Hash {
        match self {
            Self::HmacSha1 => crate::hmacs::Hash::Sha1,
            Self::HmacSha256 => crate::hmacs::Hash::Sha256,
        }
    }
}

/// Parsed credentials of a request, before verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TencentAuth {
    /// From `Authorization: TC3-HMAC-SHA256 Credential=…` plus `X-TC-Timestamp`.
    Tc3 {
        secret_id: String,
        /// Credential scope date, `YYYY-MM-DD` as sent (checked by [`verify_tc3`]).
        date: String,
        /// Credential scope service as sent (`cvm`, or the first label of the Host: see [`verify_tc3`]).
        service: String,
        /// `SignedHeaders` entries in the order listed.
        signed_headers: Vec<String>,
        /// Hex signature as sent.
        signature: String,
        timestamp: i64,
    },
    /// From the `SecretId`/`Signature`/`Timestamp`/`Nonce`/`SignatureMethod` params.
    Legacy {
        secret_id: String,
        method: LegacyMethod,
        /// Base64 signature as sent (already URL-decoded).
        signature: String,
        timestamp: i64,
        nonce: String,
    },
}

impl TencentAuth {
    /// The SecretId to look the secret key up by.
    pub fn secret_id(&self) -> &str {
        match self {
            Self::Tc3 { secret_id, .. } | Self::Legacy { secret_id, .. } => secret_id,
        }
    }

    /// Request timestamp (unix seconds) to pass to [`check_timestamp`].
    pub fn timestamp(&self) -> i64 {
        match self {
            Self::Tc3 { timestamp, .. } | Self::Legacy { timestamp, .. } => *timestamp,
        }
    }
}

/// Authentication failures; [`AuthError::code`] gives the Tencent error code
/// (spec §4b) and `Display` a Tencent-style message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `Authorization` header present but malformed, or it names a wrong service.
    #[error("The request `Authorization` header does not conform to tencentcloud standards: {0}")]
    InvalidAuthorization(String),
    /// Neither an `Authorization` header nor legacy `Signature`/`SecretId` params.
    #[error(
        "The request is missing authentication information (`Authorization` header or `Signature` parameter)."
    )]
    MissingAuth,
    /// A specific authentication parameter (e.g. `X-TC-Timestamp`, `Nonce`) is absent.
    #[error("The request is missing a required parameter `{0}`.")]
    MissingParameter(&'static str),
    /// An authentication parameter has an unusable value (e.g. a non-numeric timestamp).
    #[error("The value of parameter `{0}` is invalid.")]
    InvalidParameterValue(&'static str),
    /// Timestamp differs from server time by more than [`MAX_CLOCK_SKEW_SECS`].
    #[error(
        "Signature expired. Timestamp must not differ from server time by more than five minutes."
    )]
    SignatureExpire,
    /// Signature mismatch (including a credential date that is not the timestamp's UTC date).
    #[error(
        "The provided credentials could not be validated. Please check your signature is correct."
    )]
    SignatureFailure,
    /// SecretId is malformed (see [`validate_secret_id`]).
    #[error("Invalid SecretId.")]
    InvalidSecretId,
    /// SecretId is well-formed but unknown; produced by the caller's key lookup.
    #[error("The SecretId is not found, please ensure that your SecretId is correct.")]
    SecretIdNotFound,
    /// The same legacy request (same signed parameters, `Timestamp` and `Nonce` included) was
    /// already accepted with this SecretId within the timestamp window: a replay
    /// (docs/hostile-input.md, [`legacy_replay_key`]).
    #[error(
        "The provided credentials could not be validated: this request (same Timestamp, Nonce and signature) was already received with this SecretId within the last 5 minutes."
    )]
    NonceUsed,
    /// The SecretId already holds its maximum of live legacy nonces.
    #[error("The request rate exceeds the limit: too many distinct Nonce values within 5 minutes.")]
    NonceLimitExceeded,
}

impl From<crate::nonce::NonceError> for AuthError {
    fn from(e: crate::nonce::NonceError) -> Self {
        match e {
            crate::nonce::NonceError::Used => Self::NonceUsed,
            crate::nonce::NonceError::Full => Self::NonceLimitExceeded,
        }
    }
}

/// Longest accepted legacy `Nonce`, in bytes. The SDKs send a random positive integer (at
/// most 19 digits); anything that is not 1 to 64 printable ASCII characters is refused.
pub const MAX_NONCE_LEN: usize = 64;

impl AuthError {
    /// Tencent error code for the response envelope (spec §4b).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidAuthorization(_) => "AuthFailure.InvalidAuthorization",
            // §4b has no AuthFailure code for "no credentials at all"; MissingParameter
            // is the listed code that describes it.
            Self::MissingAuth | Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidParameterValue(_) => "InvalidParameterValue",
            Self::SignatureExpire => "AuthFailure.SignatureExpire",
            Self::SignatureFailure => "AuthFailure.SignatureFailure",
            Self::InvalidSecretId => "AuthFailure.InvalidSecretId",
            Self::SecretIdNotFound => "AuthFailure.SecretIdNotFound",
            Self::NonceUsed => "AuthFailure.SignatureFailure",
            Self::NonceLimitExceeded => "RequestLimitExceeded",
        }
    }
}

/// Checks the shape of a SecretId.
///
/// Real SecretIds are `AKID` followed by alphanumerics, but we only reject what
/// cannot be one: a SecretId is valid when it is non-empty, at most 128 bytes
/// long and consists only of ASCII letters, digits, `_` and `-`. Anything else is
/// [`AuthError::InvalidSecretId`]. (Lenient on purpose so that emulator accounts
/// may use readable ids; strict enough that ids never contain the `/`, `,` or `=`
/// separators of the `Authorization` header.)
pub fn validate_secret_id(secret_id: &str) -> Result<(), AuthError> {
    let ok = !secret_id.is_empty()
        && secret_id.len() <= 128
        && secret_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidSecretId)
    }
}

/// Rejects timestamps more than [`MAX_CLOCK_SKEW_SECS`] away from `now` (both in
/// unix seconds) with [`AuthError::SignatureExpire`]; exactly 300 s is allowed.
pub fn check_timestamp(ts: i64, now: i64) -> Result<(), AuthError> {
    // abs_diff cannot overflow, unlike `(now - ts).abs()` for extreme inputs.
    if now.abs_diff(ts) > MAX_CLOCK_SKEW_SECS {
        Err(AuthError::SignatureExpire)
    } else {
        Ok(())
    }
}

/// UTC calendar date (`YYYY-MM-DD`) of a unix timestamp, as used in the TC3
/// credential scope; `None` when the timestamp is outside the supported range.
fn utc_date(ts: i64) -> Option<String> {
    let date = OffsetDateTime::from_unix_timestamp(ts).ok()?.date();
    date.format(format_description!("[year]-[month]-[day]"))
        .ok()
}

pub(crate) use crate::header;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_window_is_inclusive_300s() {
        crate::assert_timestamp_window(
            check_timestamp,
            1_551_113_065,
            300,
            AuthError::SignatureExpire,
        );
    }

    #[test]
    fn secret_id_rule() {
        assert!(validate_secret_id("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE").is_ok());
        assert!(validate_secret_id("dev_account-1").is_ok());
        assert!(validate_secret_id(&"A".repeat(128)).is_ok());
        for bad in ["", "AKID/x", "AKID x", "AKID=", "AKÍD", &"A".repeat(129)] {
            assert_eq!(
                validate_secret_id(bad),
                Err(AuthError::InvalidSecretId),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_codes_match_spec() {
        use AuthError::*;
        let cases = [
            (
                InvalidAuthorization(String::new()),
                "AuthFailure.InvalidAuthorization",
            ),
            (MissingAuth, "MissingParameter"),
            (MissingParameter("Nonce"), "MissingParameter"),
            (InvalidParameterValue("Timestamp"), "InvalidParameterValue"),
            (SignatureExpire, "AuthFailure.SignatureExpire"),
            (SignatureFailure, "AuthFailure.SignatureFailure"),
            (InvalidSecretId, "AuthFailure.InvalidSecretId"),
            (SecretIdNotFound, "AuthFailure.SecretIdNotFound"),
            (NonceUsed, "AuthFailure.SignatureFailure"),
            (NonceLimitExceeded, "RequestLimitExceeded"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn utc_date_formats_scope_date() {
        assert_eq!(utc_date(1_551_113_065).as_deref(), Some("2019-02-25"));
        assert_eq!(utc_date(0).as_deref(), Some("1970-01-01"));
        assert_eq!(utc_date(i64::MAX), None);
    }
}
