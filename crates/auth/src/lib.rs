//! Authentication building blocks for the nubis cloud emulator.
//!
//! * [`aliyun`] — Alibaba Cloud ECS RPC request signatures (RPC v1 HMAC-SHA1 and
//!   ACS3-HMAC-SHA256): parsing, verification, signing and nonce replay protection.
//! * [`tencent`] — Tencent Cloud API 3.0 request signatures (TC3-HMAC-SHA256 and
//!   the legacy HmacSHA1/HmacSHA256 "v1" scheme): parsing, verification and signing.
//! * [`secret`] — authenticated encryption of secrets at rest.
//! * [`ratelimit`] — per-(account, action) request rate limiting.
//! * [`password`] — SHA-512-crypt (`$6$`) password hashes for guest `/etc/shadow`.

pub mod aliyun;

/// First value of a request header, the name matched case-insensitively (HTTP header names
/// are case-insensitive; the HTTP layer hands them over lower-case). Shared by the signature
/// schemes and the dialects.
pub fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

pub mod password;
pub mod ratelimit;
pub mod secret;
pub mod tencent;
