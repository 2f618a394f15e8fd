//! The console's session: a cookie sealed with the server's secrets key (every node of a
//! cluster holds the same, so any node behind the balancer reads it), naming the credential
//! the user signed in with. Nothing else is kept: each request checks that credential again
//! (a Keystone token revoked or expired, an access key disabled or deleted ends the session
//! at once).

use base64::Engine as _;
use nubis_engine::Engine;
use serde::{Deserialize, Serialize};

/// The session cookie's name.
pub const COOKIE: &str = "nubis_console";
/// Longest cookie value opened: anything longer is refused unread (hostile input).
const MAX_COOKIE: usize = 4096;
/// What the sealed text starts with, so that no other sealed value of the server (a stored
/// secret) can pass as a session.
const PURPOSE: &str = "nubis-console-session-v1\n";
/// An access key session's lifetime (a Keystone session lives as long as its token).
pub const KEY_SESSION_SECS: i64 = 3600;

/// How the user signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A Keystone user and password: `cred` is the token; the console acts through Nova.
    Keystone,
    /// An access key pair: `cred` is the key ID; the console acts through Tencent CVM.
    AccessKey,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub kind: Kind,
    /// The Keystone token, or the access key ID.
    pub cred: String,
    /// Every form's CSRF token.
    pub csrf: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
}

impl Session {
    pub fn new(kind: Kind, cred: String, expires_ms: i64) -> Self {
        let mut raw = [0u8; 24];
        rand::fill(&mut raw);
        Self {
            kind,
            cred,
            csrf: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
            expires_ms,
        }
    }

    /// The cookie's value.
    pub fn seal(&self, engine: &Engine) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        engine.seal(&format!("{PURPOSE}{json}"))
    }

    /// The session a cookie value holds, if it is one of ours and has not expired.
    pub fn open(engine: &Engine, value: &str, now_ms: i64) -> Option<Self> {
        if value.is_empty() || value.len() > MAX_COOKIE {
            return None;
        }
        let text = engine.unseal(value)?;
        let json = text.strip_prefix(PURPOSE)?;
        let s: Self = serde_json::from_str(json).ok()?;
        (s.expires_ms > now_ms).then_some(s)
    }

    /// Whether `given` is this session's CSRF token (constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        !given.is_empty() && bool::from(self.csrf.as_bytes().ct_eq(given.as_bytes()))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a session (`secure` when the console is served over https).
pub fn set_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age_secs.max(0)
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn clear_cookie(secure: bool) -> String {
    set_cookie("", 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sealed_sessions_open_only_unexpired_and_untouched() {
        let (engine, _dir) = nubis_testkit::engine().await;
        let s = Session::new(Kind::AccessKey, "AKID1".into(), 2_000);
        let v = s.seal(&engine);
        let back = Session::open(&engine, &v, 1_000).unwrap();
        assert_eq!((back.kind, back.cred.as_str()), (Kind::AccessKey, "AKID1"));
        assert!(back.csrf_ok(&s.csrf) && !back.csrf_ok("") && !back.csrf_ok("x"));
        assert!(Session::open(&engine, &v, 2_000).is_none(), "expired");
        let mut bad = v.clone().into_bytes();
        bad[30] ^= 1;
        assert!(Session::open(&engine, &String::from_utf8_lossy(&bad), 1_000).is_none());
        assert!(Session::open(&engine, &"A".repeat(5000), 0).is_none());
        // Another sealed value of the server is not a session.
        assert!(Session::open(&engine, &engine.seal("{\"kind\":\"keystone\"}"), 0).is_none());
        let c = format!("a=b; {COOKIE}={v}; c=d");
        assert_eq!(cookie(&c, COOKIE), Some(v.as_str()));
        assert_eq!(cookie("a=b", COOKIE), None);
    }
}
