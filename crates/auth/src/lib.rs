//! Authentication building blocks for the nubis cloud emulator.
//!
//! * [`aliyun`] — Alibaba Cloud ECS RPC request signatures (RPC v1 HMAC-SHA1 and
//!   ACS3-HMAC-SHA256): parsing, verification, signing and nonce replay protection.
//! * [`tencent`] — Tencent Cloud API 3.0 request signatures (TC3-HMAC-SHA256 and
//!   the legacy HmacSHA1/HmacSHA256 "v1" scheme): parsing, verification and signing.
//! * [`agent`] — signed requests between the control plane and host agents.
//! * [`secret`] — authenticated encryption of secrets at rest.
//! * [`ratelimit`] — per-(account, action) request rate limiting.
//! * [`bounds`] — shape limits checked before authentication, and [`bounds::ct_eq`].
//! * [`nonce`] — replay protection (nonces remembered for the timestamp window).
//! * [`login`] — throttling of failed logins per user and per source address.
//! * [`password`] — SHA-512-crypt (`$6$`) password hashes for guest `/etc/shadow`.

pub mod agent;
pub mod aliyun;
pub mod bounds;
pub use bounds::ct_eq;
pub mod nonce;

/// An HTTP request as the listener received it, untouched: what signatures are verified over
/// (Tencent TC3 and legacy) and what the dialects parse. A dialect's own request type
/// embeds it and adds what it needs (`now`, the peer address).
#[derive(Debug, Clone, Copy)]
pub struct HttpRequestParts<'a> {
    /// HTTP method exactly as received (`POST`, `GET`).
    pub method: &'a str,
    /// `Host` header exactly as received. The SDK copies its configured endpoint
    /// verbatim into it (quirk Q1: may even be `http://127.0.0.1:8080`), and signs
    /// that same string, so never reconstruct it.
    pub host: &'a str,
    /// Request path. TC3 always signs `/` (the SDKs hard-code it), so this is
    /// informational for TC3; the legacy scheme signs the path it is given.
    pub path: &'a str,
    /// Query string as sent, without the leading `?`, not decoded.
    pub raw_query: &'a str,
    /// Request headers; names lower-case (looked up case-insensitively anyway).
    pub headers: &'a [(String, String)],
    /// Raw request body.
    pub body: &'a [u8],
    /// The client's address as the listener saw it (None when unknown, as in-process tests
    /// drive the dialects): per-source login throttling, the audit trail.
    pub peer: Option<std::net::IpAddr>,
}

/// `Credential`, `SignedHeaders` and `Signature` of an `Authorization` value after its
/// algorithm name: TC3 and ACS3 share the layout.
pub(crate) struct AuthorizationFields<'a> {
    pub credential: Option<&'a str>,
    pub signed_headers: Option<&'a str>,
    pub signature: Option<&'a str>,
}

pub(crate) enum FieldsError {
    /// A part is not `key=value`.
    NotKeyValue,
    /// A field appears twice: ambiguous, refused rather than picking one.
    Duplicate,
}

pub(crate) fn authorization_fields(rest: &str) -> Result<AuthorizationFields<'_>, FieldsError> {
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, val) = part
            .trim()
            .split_once('=')
            .ok_or(FieldsError::NotKeyValue)?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue, // tolerate future additions
        };
        if slot.replace(val.trim()).is_some() {
            return Err(FieldsError::Duplicate);
        }
    }
    Ok(AuthorizationFields {
        credential,
        signed_headers,
        signature,
    })
}

/// First value of a request header, the name matched case-insensitively (HTTP header names
/// are case-insensitive; the HTTP layer hands them over lower-case). Shared by the signature
/// schemes and the dialects.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

mod hmacs;
pub mod login;
pub mod password;
pub mod ratelimit;
pub mod secret;
pub mod tencent;

/// The timestamp-window cases both clouds' `check_timestamp` must pass: inclusive at
/// `window` seconds either way, `expired` one second past it, and no overflow on absurd
/// inputs.
#[cfg(test)]
pub(crate) fn assert_timestamp_window<E: Clone + PartialEq + std::fmt::Debug>(
    check_timestamp: impl Fn(i64, i64) -> Result<(), E>,
    now: i64,
    window: i64,
    expired: E,
) {
    let cases = [
        (now, now, Ok(())),
        (now - window, now, Ok(())),
        (now + window, now, Ok(())),
        (now - window - 1, now, Err(expired.clone())),
        (now + window + 1, now, Err(expired.clone())),
        (i64::MIN, i64::MAX, Err(expired)),
    ];
    for (ts, now, want) in cases {
        assert_eq!(check_timestamp(ts, now), want, "ts {ts}, now {now}");
    }
}
