//! Signed requests between the control plane and its host agents (docs/agents.md): both
//! directions carry the host's ID, the time, a nonce and an HMAC-SHA256 over the request made
//! with the host's credential, the secret the operator got when registering the host. The
//! receiver checks shape and sizes first, then the time window, then the MAC in constant
//! time; the agent also refuses a nonce it has seen within the window.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

pub const HOST_HEADER: &str = "x-nubis-host";
pub const DATE_HEADER: &str = "x-nubis-date";
pub const NONCE_HEADER: &str = "x-nubis-nonce";
pub const SIGNATURE_HEADER: &str = "x-nubis-signature";
/// How far a request's time may be from the receiver's clock.
pub const WINDOW_MS: i64 = 60_000;
const SCHEME: &str = "NUBIS1-HMAC-SHA256";

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AgentAuthError {
    #[error("header `{0}` is missing")]
    Missing(&'static str),
    #[error("header `{0}` is malformed")]
    Malformed(&'static str),
    #[error("the request time is outside the {WINDOW_MS} ms window")]
    Expired,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the nonce was used before")]
    Replayed,
}

/// A request's signature headers, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    pub host: &'a str,
    pub date_ms: i64,
    pub nonce: &'a str,
    signature: [u8; 32],
}

fn field<'a>(
    header: &impl Fn(&str) -> Option<&'a str>,
    name: &'static str,
    max: usize,
    ok: impl Fn(u8) -> bool,
) -> Result<&'a str, AgentAuthError> {
    let v = header(name).ok_or(AgentAuthError::Missing(name))?;
    if v.is_empty() || v.len() > max || !v.bytes().all(ok) {
        return Err(AgentAuthError::Malformed(name));
    }
    Ok(v)
}

/// Reads the four headers through `header` (a case-insensitive lookup), bounding each.
pub fn parse<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<Signed<'a>, AgentAuthError> {
    let host = field(&header, HOST_HEADER, 63, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
    })?;
    let date = field(&header, DATE_HEADER, 15, |b| b.is_ascii_digit())?;
    let date_ms = date
        .parse::<i64>()
        .map_err(|_| AgentAuthError::Malformed(DATE_HEADER))?;
    let nonce = field(&header, NONCE_HEADER, 64, |b| {
        b.is_ascii_alphanumeric() || b == b'-'
    })?;
    if nonce.len() < 16 {
        return Err(AgentAuthError::Malformed(NONCE_HEADER));
    }
    let sig = field(&header, SIGNATURE_HEADER, 64, |b| b.is_ascii_hexdigit())?;
    let mut signature = [0u8; 32];
    hex::decode_to_slice(sig, &mut signature)
        .map_err(|_| AgentAuthError::Malformed(SIGNATURE_HEADER))?;
    Ok(Signed {
        host,
        date_ms,
        nonce,
        signature,
    })
}

fn mac(
    secret: &str,
    method: &str,
    path: &str,
    host: &str,
    date_ms: i64,
    nonce: &str,
    body: &[u8],
) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    let body_hash = hex::encode(Sha256::digest(body));
    m.update(
        format!("{SCHEME}\n{method}\n{path}\n{host}\n{date_ms}\n{nonce}\n{body_hash}").as_bytes(),
    );
    m
}

/// The headers for a request of `host` (name, value), signed with `secret` at `now_ms`.
pub fn sign(
    secret: &str,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
    now_ms: i64,
) -> Vec<(&'static str, String)> {
    let nonce = uuid_like();
    let sig = mac(secret, method, path, host, now_ms, &nonce, body)
        .finalize()
        .into_bytes();
    vec![
        (HOST_HEADER, host.to_string()),
        (DATE_HEADER, now_ms.to_string()),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, hex::encode(sig)),
    ]
}

fn uuid_like() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

impl Signed<'_> {
    /// Checks the time window, then the MAC (constant time).
    pub fn verify(
        &self,
        secret: &str,
        method: &str,
        path: &str,
        body: &[u8],
        now_ms: i64,
    ) -> Result<(), AgentAuthError> {
        if (now_ms.saturating_sub(self.date_ms)).abs() > WINDOW_MS {
            return Err(AgentAuthError::Expired);
        }
        mac(
            secret,
            method,
            path,
            self.host,
            self.date_ms,
            self.nonce,
            body,
        )
        .verify_slice(&self.signature)
        .map_err(|_| AgentAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(h: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| h.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let h = sign("s3cret", "host-1", "POST", "/v1/execute", b"{}", 1_000_000);
        let s = parse(lookup(&h)).unwrap();
        assert_eq!(s.host, "host-1");
        s.verify("s3cret", "POST", "/v1/execute", b"{}", 1_000_000)
            .unwrap();
        let bad = Err(AgentAuthError::BadSignature);
        assert_eq!(
            s.verify("other", "POST", "/v1/execute", b"{}", 1_000_000),
            bad
        );
        assert_eq!(
            s.verify("s3cret", "GET", "/v1/execute", b"{}", 1_000_000),
            bad
        );
        assert_eq!(
            s.verify("s3cret", "POST", "/v1/stage", b"{}", 1_000_000),
            bad
        );
        assert_eq!(
            s.verify("s3cret", "POST", "/v1/execute", b"{ }", 1_000_000),
            bad
        );
        assert_eq!(
            s.verify(
                "s3cret",
                "POST",
                "/v1/execute",
                b"{}",
                1_000_000 + WINDOW_MS + 1
            ),
            Err(AgentAuthError::Expired)
        );
        assert_eq!(
            s.verify(
                "s3cret",
                "POST",
                "/v1/execute",
                b"{}",
                1_000_000 - WINDOW_MS - 1
            ),
            Err(AgentAuthError::Expired)
        );
    }

    #[test]
    fn headers_are_bounded_before_anything_is_computed() {
        let good = sign("k", "h", "POST", "/", b"", 5);
        // Each is refused as malformed in the header it spoils.
        for (name, value) in [
            (HOST_HEADER, "H".to_string()),
            (HOST_HEADER, "h".repeat(64)),
            (DATE_HEADER, "-5".into()),
            (DATE_HEADER, "9".repeat(16)),
            (NONCE_HEADER, "short".into()),
            (NONCE_HEADER, "n".repeat(65)),
            (SIGNATURE_HEADER, "ab".into()),
            (SIGNATURE_HEADER, "zz".repeat(32)),
            (SIGNATURE_HEADER, String::new()),
        ] {
            let h: Vec<_> = good
                .iter()
                .map(|(k, v)| (*k, if *k == name { value.clone() } else { v.clone() }))
                .collect();
            let want = AgentAuthError::Malformed(name);
            assert_eq!(parse(lookup(&h)), Err(want), "{name}={value}");
        }
        for missing in [HOST_HEADER, DATE_HEADER, NONCE_HEADER, SIGNATURE_HEADER] {
            let h: Vec<_> = good
                .iter()
                .filter(|(k, _)| *k != missing)
                .cloned()
                .collect();
            assert_eq!(parse(lookup(&h)), Err(AgentAuthError::Missing(missing)));
        }
    }
}
