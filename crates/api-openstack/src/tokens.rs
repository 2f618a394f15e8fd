//! Keystone tokens: opaque random strings held in memory with their expiry. They do not
//! survive a restart; clients re-authenticate on the 401 they then get.

use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;
use std::collections::HashMap;

pub const TOKEN_TTL_SECS: i64 = 3600;
/// Above this many live tokens, expired ones are swept on the next issue.
const SWEEP_ABOVE: usize = 10_000;

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Unscoped,
    /// Project of an account.
    Project,
    /// The Default domain.
    Domain,
}

#[derive(Debug, Clone)]
pub struct Token {
    /// The account whose user authenticated.
    pub account: String,
    pub user_name: String,
    /// Keystone roles on the project (`admin`, `member`, `reader`).
    pub roles: Vec<String>,
    pub scope: Scope,
    pub methods: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_id: String,
}

impl Token {
    /// May this token change things? (Nova's default policy: member or admin.)
    pub fn can_write(&self) -> bool {
        self.roles.iter().any(|r| r == "admin" || r == "member")
    }
}

fn random_url_safe(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Default)]
pub struct Tokens {
    live: Mutex<HashMap<String, Token>>,
}

impl Tokens {
    /// Issue a token; `expires_at` is capped by the caller (re-scoping keeps the original's).
    pub fn issue(&self, mut token: Token) -> (String, Token) {
        let id = random_url_safe(32);
        token.audit_id = random_url_safe(16);
        let mut live = self.live.lock();
        if live.len() > SWEEP_ABOVE {
            let t = now();
            live.retain(|_, tok| tok.expires_at > t);
        }
        live.insert(id.clone(), token.clone());
        (id, token)
    }

    /// A live token, or None when unknown, revoked or expired.
    pub fn get(&self, id: &str) -> Option<Token> {
        let mut live = self.live.lock();
        match live.get(id) {
            Some(t) if t.expires_at > now() => Some(t.clone()),
            Some(_) => {
                live.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn revoke(&self, id: &str) -> bool {
        self.live.lock().remove(id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(expires_at: i64) -> Token {
        Token {
            account: "admin".into(),
            user_name: "admin".into(),
            roles: vec!["admin".into()],
            scope: Scope::Project,
            methods: vec!["password".into()],
            issued_at: now(),
            expires_at,
            audit_id: String::new(),
        }
    }

    #[test]
    fn issue_get_expire_revoke() {
        let t = Tokens::default();
        let (a, issued) = t.issue(tok(now() + 60));
        assert_eq!(issued.audit_id.len(), 22);
        assert!(t.get(&a).is_some());
        let (b, _) = t.issue(tok(now() - 1));
        assert_ne!(a, b);
        assert!(t.get(&b).is_none(), "expired");
        assert!(t.revoke(&a));
        assert!(t.get(&a).is_none());
        assert!(!t.revoke(&a));
    }
}
