//! Authentication building blocks for the nubis cloud emulator.
//!
//! * [`tencent`] — Tencent Cloud API 3.0 request signatures (TC3-HMAC-SHA256 and
//!   the legacy HmacSHA1/HmacSHA256 "v1" scheme): parsing, verification and signing.
//! * [`secret`] — authenticated encryption of secrets at rest.
//! * [`ratelimit`] — per-(account, action) request rate limiting.
//! * [`password`] — SHA-512-crypt (`$6$`) password hashes for guest `/etc/shadow`.

pub mod password;
pub mod ratelimit;
pub mod secret;
pub mod tencent;
