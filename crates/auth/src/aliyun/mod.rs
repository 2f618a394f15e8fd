//! Alibaba Cloud ECS RPC request authentication (spec `aliyun-ecs.md` §3).
//!
//! Two schemes are supported:
//! * **RPC v1** HMAC-SHA1 ([`sign_v1`], [`verify_v1`]) — legacy
//!   `aliyun-python-sdk-core`, the Go SDK / `aliyun` CLI, the Java core and the
//!   Tea SDK's RPC mode. Credentials travel as ordinary request parameters
//!   (`AccessKeyId`, `Signature`, `SignatureMethod`, …). `HMAC-SHA256` is accepted
//!   too: the legacy PHP SDK (`aliyun-php-sdk-core`, `ShaHmac256Signer`) sends it.
//! * **ACS3-HMAC-SHA256** ([`sign_v3`], [`verify_v3`]) — the Tea/Darabonba SDKs'
//!   default; credentials travel in the `Authorization` header plus `x-acs-*`
//!   headers. **ACS3-HMAC-SM3** ([`sign_v3_with`]) is the same with SM3 for SHA-256,
//!   the SDKs' `signatureAlgorithm` option.
//!
//! A server typically does: [`parse`] → look the secret up by
//! [`AliyunAuth::access_key_id`] (unknown key → `InvalidAccessKeyId.NotFound`,
//! the caller's error) → [`parse_timestamp`] + [`check_timestamp`] on
//! [`AliyunAuth::timestamp`] → [`verify_v1`] / [`verify_v3`] →
//! [`NonceCache::is_used`] → the caller's rate limiter → [`NonceCache::check_and_insert`]
//! (only after the signature verified and the rate limiter passed, so that neither
//! unauthenticated nor throttled requests can fill the cache).

mod v1;
mod v3;

pub use crate::nonce::NonceCache;
pub use v1::{sign_v1, verify_v1};
pub use v3::{sign_v3, sign_v3_with, verify_v3};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Maximum allowed |server time − request timestamp| in seconds, and how long a
/// nonce is remembered (spec §3c: 15 minutes).
pub const MAX_CLOCK_SKEW_SECS: u64 = 900;

/// Longest accepted `SignatureNonce` / `x-acs-signature-nonce`, in bytes. The SDKs send 32 hex
/// digits (Tea, Go), a 36-character UUID (Python core) or a UUID followed by a millisecond
/// timestamp and a thread id (Java core, ~55); twice the longest leaves room for others.
pub const MAX_NONCE_LEN: usize = 128;

/// `Authorization` scheme of the v3 signature (the SDKs' default).
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The v3 signature algorithms nubis verifies: the SDKs' default and the one their
/// `signatureAlgorithm` option offers besides (`ACS3-RSA-SHA256`, which needs a registered
/// public key, is refused as `InvalidSignatureMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acs3Algorithm {
    /// `ACS3-HMAC-SHA256`: SHA-256 hashes, HMAC-SHA256.
    HmacSha256,
    /// `ACS3-HMAC-SM3`: SM3 (GB/T 32905) hashes, HMAC-SM3; the payload hash still travels
    /// in `x-acs-content-sha256`.
    HmacSm3,
}

impl Acs3Algorithm {
    /// The `Authorization` scheme name, also the first line of the StringToSign.
    pub fn name(self) -> &'static str {
        match self {
            Self::HmacSha256 => ACS3_ALGORITHM,
            Self::HmacSm3 => "ACS3-HMAC-SM3",
        }
    }

    /// The algorithm named exactly `name`, if nubis verifies it.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::HmacSha256, Self::HmacSm3]
            .into_iter()
            .find(|a| a.name() == name)
    }
}

/// Parsed credentials of a request, before verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliyunAuth {
    /// From the `AccessKeyId`/`Signature`/`SignatureMethod`/`SignatureVersion`/
    /// `SignatureNonce`/`Timestamp` request parameters.
    V1 {
        access_key_id: String,
        /// Base64 signature as sent (already URL-decoded).
        signature: String,
        /// `SignatureNonce`.
        nonce: String,
        /// `Timestamp` exactly as sent; see [`parse_timestamp`].
        timestamp: String,
        /// `SignatureMethod` as sent (`HMAC-SHA1` or `HMAC-SHA256`, any case).
        method: String,
        /// `SignatureVersion` as sent (always `1.0` once parsed).
        version: String,
    },
    /// From `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`
    /// (or `ACS3-HMAC-SM3 …`) plus the `x-acs-signature-nonce` and `x-acs-date` headers.
    V3 {
        /// The scheme of the `Authorization` header.
        algorithm: Acs3Algorithm,
        access_key_id: String,
        /// `SignedHeaders` entries in the order listed (as sent).
        signed_headers: Vec<String>,
        /// Hex signature as sent.
        signature: String,
        /// `x-acs-signature-nonce`.
        nonce: String,
        /// `x-acs-date` exactly as sent; see [`parse_timestamp`].
        date: String,
    },
}

impl AliyunAuth {
    /// The AccessKeyId to look the secret up by.
    pub fn access_key_id(&self) -> &str {
        match self {
            Self::V1 { access_key_id, .. } | Self::V3 { access_key_id, .. } => access_key_id,
        }
    }

    /// `SignatureNonce` (v1) or `x-acs-signature-nonce` (v3), for [`NonceCache`].
    pub fn nonce(&self) -> &str {
        match self {
            Self::V1 { nonce, .. } | Self::V3 { nonce, .. } => nonce,
        }
    }

    /// `Timestamp` (v1) or `x-acs-date` (v3) as sent, for [`parse_timestamp`].
    pub fn timestamp(&self) -> &str {
        match self {
            Self::V1 { timestamp, .. } => timestamp,
            Self::V3 { date, .. } => date,
        }
    }
}

/// Authentication failures. [`AuthError::code`] is the Alibaba Cloud error code,
/// [`AuthError::message`] (= `Display`) the `Message` of the error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `AccessKeyId` parameter nor an `Authorization` header.
    #[error(
        "The input parameter \"AccessKeyId\" that is mandatory for processing this request is not supplied."
    )]
    MissingAuth,
    /// A required authentication parameter or header is absent (or empty).
    #[error(
        "The input parameter \"{0}\" that is mandatory for processing this request is not supplied."
    )]
    MissingParameter(&'static str),
    /// `SignatureMethod` other than HMAC-SHA1/HMAC-SHA256, or an `ACS3-*`
    /// algorithm other than ACS3-HMAC-SHA256.
    #[error("Specified signature method is not supported.")]
    InvalidSignatureMethod,
    /// `Timestamp` / `x-acs-date` is not `YYYY-MM-DDThh:mm:ssZ` (RFC 3339).
    #[error("Specified time stamp or date value is not well formatted.")]
    InvalidTimeStampFormat,
    /// Timestamp more than [`MAX_CLOCK_SKEW_SECS`] away from server time.
    #[error("Specified time stamp or date value is expired.")]
    TimeStampExpired,
    /// The (AccessKeyId, nonce) pair was seen within the last 15 minutes.
    #[error("Specified signature nonce was used already.")]
    SignatureNonceUsed,
    /// The nonce is longer than [`MAX_NONCE_LEN`] or not printable ASCII.
    #[error(
        "The specified parameter SignatureNonce is not valid: it must be 1 to 128 printable ASCII characters."
    )]
    InvalidSignatureNonce,
    /// The AccessKeyId already holds [`NonceCache`]'s maximum of live nonces: refused
    /// (never evicting a live nonce) until some expire.
    #[error(
        "Request was denied due to request throttling: too many distinct signature nonces for this AccessKey within 15 minutes."
    )]
    NonceLimitExceeded,
    /// Signature mismatch. The message ends with `:` + the server's StringToSign
    /// (quirk Q1: the legacy Python core does `Message.split(':')[1]`).
    #[error(
        "Specified signature does not match our calculation. server string to sign is:{string_to_sign}"
    )]
    SignatureDoesNotMatch { string_to_sign: String },
    /// Authentication data present but structurally unusable (unparsable
    /// `Authorization`, unsupported `SignatureVersion`, duplicated auth
    /// parameters, unsigned `x-acs-*` headers, …); the payload says what.
    #[error("The request signature does not conform to Aliyun standards. {0}")]
    IncompleteSignature(String),
    /// `x-acs-content-sha256` is not the hex SHA-256 of the request body.
    #[error("The specified x-acs-content-sha256 does not match the SHA-256 of the request body.")]
    ContentSha256Mismatch,
}

impl AuthError {
    /// Alibaba Cloud error code for the response `Code` field.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuth | Self::MissingParameter(_) => "MissingParameter",
            Self::InvalidSignatureMethod => "InvalidSignatureMethod",
            Self::InvalidTimeStampFormat => "InvalidTimeStamp.Format",
            Self::TimeStampExpired => "InvalidTimeStamp.Expired",
            Self::SignatureNonceUsed => "SignatureNonceUsed",
            Self::InvalidSignatureNonce => "InvalidParameter",
            Self::NonceLimitExceeded => "Throttling",
            Self::SignatureDoesNotMatch { .. } => "SignatureDoesNotMatch",
            Self::IncompleteSignature(_) => "IncompleteSignature",
            Self::ContentSha256Mismatch => "InvalidParameter",
        }
    }

    /// HTTP status of the error response (all authentication errors are 400).
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The response `Message` field (same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Extracts credentials from a request.
///
/// `params` are the decoded query + form-body parameters in request order;
/// `headers` the request headers (names matched case-insensitively).
///
/// * `Authorization: ACS3-HMAC-SHA256 …` or `ACS3-HMAC-SM3 …` → [`AliyunAuth::V3`]; an unparsable
///   header is `IncompleteSignature`; missing `x-acs-signature-nonce` /
///   `x-acs-date` is `MissingParameter`.
/// * Otherwise, if `AccessKeyId` or `Signature` is among `params` →
///   [`AliyunAuth::V1`]. Each of `AccessKeyId`, `Signature`, `SignatureMethod`,
///   `SignatureVersion`, `SignatureNonce`, `Timestamp` must be present and
///   non-empty (`MissingParameter`) and appear once (`IncompleteSignature`);
///   `SignatureMethod` must be HMAC-SHA1 or HMAC-SHA256
///   (`InvalidSignatureMethod`), `SignatureVersion` must be `1.0`
///   (`IncompleteSignature`).
/// * Otherwise: another `ACS3-*` algorithm (RSA) → `InvalidSignatureMethod`;
///   any other `Authorization` scheme → `IncompleteSignature`; nothing at all →
///   [`AuthError::MissingAuth`].
///
/// The nonce must pass [`check_nonce`] (else `InvalidParameter`). The timestamp is returned
/// as sent; validate it with [`parse_timestamp`].
pub fn parse(
    params: &[(String, String)],
    headers: &[(String, String)],
) -> Result<AliyunAuth, AuthError> {
    let authorization = header(headers, "authorization").map(str::trim);
    let scheme = |v: &str| {
        v.split(char::is_whitespace)
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(value) = authorization.filter(|v| Acs3Algorithm::from_name(&scheme(v)).is_some()) {
        return v3::parse_authorization(value, headers).and_then(nonce_checked);
    }
    if params
        .iter()
        .any(|(k, _)| k == "AccessKeyId" || k == "Signature")
    {
        return v1::parse_params(params).and_then(nonce_checked);
    }
    match authorization {
        Some(value) if value.starts_with("ACS3-") => Err(AuthError::InvalidSignatureMethod),
        Some(_) => Err(AuthError::IncompleteSignature(
            "unsupported Authorization scheme; expected ACS3-HMAC-SHA256".to_owned(),
        )),
        None => Err(AuthError::MissingAuth),
    }
}

fn nonce_checked(auth: AliyunAuth) -> Result<AliyunAuth, AuthError> {
    check_nonce(auth.nonce())?;
    Ok(auth)
}

/// A nonce must be 1 to [`MAX_NONCE_LEN`] printable ASCII characters (no blanks, no
/// controls): anything else is [`AuthError::InvalidSignatureNonce`].
pub fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    if !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_LEN
        && nonce.bytes().all(|b| b.is_ascii_graphic())
    {
        Ok(())
    } else {
        Err(AuthError::InvalidSignatureNonce)
    }
}

impl From<crate::nonce::NonceError> for AuthError {
    fn from(e: crate::nonce::NonceError) -> Self {
        match e {
            crate::nonce::NonceError::Used => Self::SignatureNonceUsed,
            crate::nonce::NonceError::Full => Self::NonceLimitExceeded,
        }
    }
}

/// Parses a `Timestamp` / `x-acs-date` value into unix seconds.
///
/// Every SDK sends `YYYY-MM-DDThh:mm:ssZ` (UTC, whole seconds). Any RFC 3339
/// timestamp is accepted (fractional seconds are truncated, offsets such as
/// `+00:00` or `+08:00` are honoured); anything else is
/// [`AuthError::InvalidTimeStampFormat`].
pub fn parse_timestamp(s: &str) -> Result<i64, AuthError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| AuthError::InvalidTimeStampFormat)
}

/// Rejects timestamps more than [`MAX_CLOCK_SKEW_SECS`] (900 s) away from `now`
/// (both unix seconds) with [`AuthError::TimeStampExpired`]; exactly 900 s is
/// allowed, in either direction.
pub fn check_timestamp(ts: i64, now: i64) -> Result<(), AuthError> {
    // abs_diff cannot overflow, unlike `(now - ts).abs()` for extreme inputs.
    if now.abs_diff(ts) > MAX_CLOCK_SKEW_SECS {
        Err(AuthError::TimeStampExpired)
    } else {
        Ok(())
    }
}

/// RFC 3986 percent-encoding of the UTF-8 bytes of `s` (spec §3a step 2): keeps
/// `A–Z a–z 0–9 - _ . ~`, encodes every other byte as `%XX` (upper-case hex),
/// so a space is `%20` (never `+`) and `*` is `%2A`.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

pub(crate) use crate::header;

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn percent_encode_rfc3986() {
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("~"), "~");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
        assert_eq!(percent_encode("😀"), "%F0%9F%98%80");
        assert_eq!(
            percent_encode(r#"["i-bp1abc", "i-bp2def"]"#),
            "%5B%22i-bp1abc%22%2C%20%22i-bp2def%22%5D"
        );
        assert_eq!(percent_encode("a=b&c%d"), "a%3Db%26c%25d");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn timestamp_window_is_inclusive_900s() {
        crate::assert_timestamp_window(
            check_timestamp,
            1_704_110_400,
            900,
            AuthError::TimeStampExpired,
        );
    }

    #[test]
    fn timestamp_formats() {
        // 2024-01-01T12:00:00Z
        let t = 1_704_110_400;
        assert_eq!(parse_timestamp("2024-01-01T12:00:00Z"), Ok(t));
        assert_eq!(parse_timestamp("2024-01-01T12:00:00.123Z"), Ok(t));
        assert_eq!(parse_timestamp("2024-01-01T12:00:00+00:00"), Ok(t));
        assert_eq!(parse_timestamp("2024-01-01T20:00:00+08:00"), Ok(t));
        assert_eq!(parse_timestamp("2024-01-01T12:00:00.5+00:00"), Ok(t));
        // RFC 3339 §5.6 allows a space instead of `T`.
        assert_eq!(parse_timestamp("2024-01-01 12:00:00Z"), Ok(t));
        for bad in [
            "",
            "1704110400",
            "2024-01-01",
            "2024-01-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2024-02-30T12:00:00Z",
            "2024-01-01T25:00:00Z",
            "2024-01-01T12:00Z",
            " 2024-01-01T12:00:00Z",
            "Mon, 01 Jan 2024 12:00:00 GMT",
        ] {
            assert_eq!(
                parse_timestamp(bad),
                Err(AuthError::InvalidTimeStampFormat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_codes_statuses_and_messages() {
        use AuthError::*;
        let cases = [
            (MissingAuth, "MissingParameter"),
            (MissingParameter("SignatureNonce"), "MissingParameter"),
            (InvalidSignatureMethod, "InvalidSignatureMethod"),
            (InvalidTimeStampFormat, "InvalidTimeStamp.Format"),
            (TimeStampExpired, "InvalidTimeStamp.Expired"),
            (SignatureNonceUsed, "SignatureNonceUsed"),
            (InvalidSignatureNonce, "InvalidParameter"),
            (NonceLimitExceeded, "Throttling"),
            (
                SignatureDoesNotMatch {
                    string_to_sign: "GET&%2F&x".into(),
                },
                "SignatureDoesNotMatch",
            ),
            (IncompleteSignature("x".into()), "IncompleteSignature"),
            (ContentSha256Mismatch, "InvalidParameter"),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.http_status(), 400);
            assert!(!err.message().is_empty());
            assert_eq!(err.message(), err.to_string());
        }
        assert_eq!(
            MissingParameter("SignatureNonce").message(),
            "The input parameter \"SignatureNonce\" that is mandatory for processing this request is not supplied."
        );
    }

    #[test]
    fn signature_mismatch_message_is_q1_compatible() {
        let sts = "GET&%2F&AccessKeyId%3Dtestid%26Timestamp%3D2024-01-01T12%253A00%253A00Z";
        let err = AuthError::SignatureDoesNotMatch {
            string_to_sign: sts.into(),
        };
        assert_eq!(
            err.message(),
            format!(
                "Specified signature does not match our calculation. server string to sign is:{sts}"
            )
        );
        // What the legacy Python core does with it.
        assert_eq!(err.message().split(':').nth(1), Some(sts));
    }

    #[test]
    fn parse_dispatch() {
        assert_eq!(parse(&[], &[]), Err(AuthError::MissingAuth));
        assert_eq!(
            parse(&pairs(&[("Action", "DescribeRegions")]), &[]),
            Err(AuthError::MissingAuth)
        );
        assert_eq!(
            parse(
                &[],
                &pairs(&[(
                    "authorization",
                    "ACS3-RSA-SHA256 Credential=a,SignedHeaders=host,Signature=00"
                )])
            ),
            Err(AuthError::InvalidSignatureMethod)
        );
        // ACS3-HMAC-SM3 is a v3 request (here one without its nonce header).
        assert_eq!(
            parse(
                &[],
                &pairs(&[(
                    "authorization",
                    "ACS3-HMAC-SM3 Credential=a,SignedHeaders=host,Signature=00"
                )])
            ),
            Err(AuthError::MissingParameter("x-acs-signature-nonce"))
        );
        assert!(matches!(
            parse(
                &[],
                &pairs(&[("Authorization", "HmacSHA256 Credential=a,Signature=00")])
            ),
            Err(AuthError::IncompleteSignature(_))
        ));
        // A v1 request is recognised by its params even with a foreign Authorization.
        assert_eq!(
            parse(
                &pairs(&[("AccessKeyId", "testid")]),
                &pairs(&[("Authorization", "Basic eDp5")])
            ),
            Err(AuthError::MissingParameter("Signature"))
        );
    }

    #[test]
    fn nonce_shape() {
        assert_eq!(check_nonce("3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"), Ok(()));
        assert_eq!(check_nonce(&"a".repeat(MAX_NONCE_LEN)), Ok(()));
        for bad in [
            String::new(),
            "a".repeat(MAX_NONCE_LEN + 1),
            "a".repeat(1 << 20),
            "with space".into(),
            "ctl\u{1}".into(),
            "nonce-é".into(),
        ] {
            assert_eq!(check_nonce(&bad), Err(AuthError::InvalidSignatureNonce));
        }
        // Regression (issue 10): a 1 MB SignatureNonce used to be parsed and stored.
        let huge = "n".repeat(1 << 20);
        let params = pairs(&[
            ("AccessKeyId", "testid"),
            ("Signature", "x"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", &huge),
            ("Timestamp", "2024-01-01T12:00:00Z"),
        ]);
        assert_eq!(parse(&params, &[]), Err(AuthError::InvalidSignatureNonce));
        let headers = pairs(&[
            (
                "authorization",
                "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host,Signature=00",
            ),
            ("x-acs-signature-nonce", &huge),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
        ]);
        assert_eq!(parse(&[], &headers), Err(AuthError::InvalidSignatureNonce));
    }

    #[test]
    fn accessors() {
        let v1 = AliyunAuth::V1 {
            access_key_id: "ak".into(),
            signature: "sig".into(),
            nonce: "n1".into(),
            timestamp: "2024-01-01T12:00:00Z".into(),
            method: "HMAC-SHA1".into(),
            version: "1.0".into(),
        };
        assert_eq!(
            (v1.access_key_id(), v1.nonce(), v1.timestamp()),
            ("ak", "n1", "2024-01-01T12:00:00Z")
        );
        let v3 = AliyunAuth::V3 {
            algorithm: Acs3Algorithm::HmacSha256,
            access_key_id: "ak3".into(),
            signed_headers: vec!["host".into()],
            signature: "00".into(),
            nonce: "n3".into(),
            date: "2024-01-01T12:00:01Z".into(),
        };
        assert_eq!(
            (v3.access_key_id(), v3.nonce(), v3.timestamp()),
            ("ak3", "n3", "2024-01-01T12:00:01Z")
        );
    }

    proptest::proptest! {
        #[test]
        fn percent_encode_is_unreserved_and_reversible(s in "\\PC*") {
            let enc = percent_encode(&s);
            proptest::prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'_' | b'.' | b'~' | b'%')));
            // Decode back.
            let bytes = enc.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%' {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    proptest::prop_assert_eq!(hex, hex.to_ascii_uppercase());
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), s);
        }
    }
}
