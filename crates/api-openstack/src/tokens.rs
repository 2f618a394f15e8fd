//! Keystone tokens: opaque random strings with their expiry. On SQLite (one process) they are
//! held in memory and do not survive a restart; clients re-authenticate on the 401 they then
//! get. On a shared store (PostgreSQL, several nodes) they live in the store's
//! `keystone_tokens` table (docs/postgres.md "Cluster-wide state"): valid on every node, kept
//! across restarts, and every lookup reads the store, so a revocation on one node holds on
//! every node at its next request (nothing is cached: any copy could go stale).
//!
//! Only the SHA-256 of a token ID is kept (the map key): a memory dump or a debug print shows
//! no usable token, and a lookup compares digests, not the secret itself. Each user holds at
//! most [`MAX_PER_USER`] live tokens: issuing one more (by password or by re-scoping) evicts
//! that user's oldest. A token also dies when its user's password changes or the user is
//! deleted (the `stamp` it was issued under no longer matches).

use base64::Engine as _;
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};

pub const TOKEN_TTL_SECS: i64 = 3600;
/// Live tokens per user; the oldest is evicted beyond it. (Keystone has no such bound; a
/// client needs one token per scope it uses, which is a handful, and 100 leaves room for
/// many parallel clients of one user.)
pub const MAX_PER_USER: usize = 100;
/// Above this many live tokens, expired ones are swept on the next issue.
const SWEEP_ABOVE: usize = 10_000;

/// What a token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    Unscoped,
    /// A project (see [`Token::project`]).
    Project,
    /// A domain (see [`Token::domain`]).
    Domain,
    /// The system (`{"system": {"all": true}}`).
    System,
}

/// A project as a token names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectRef {
    pub id: String,
    pub name: String,
    pub domain_id: String,
    pub domain_name: String,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Token {
    /// The account the token acts in: its project's (or domain's) domain's account; for an
    /// unscoped token, the user's domain's.
    pub account: String,
    pub user_id: String,
    pub user_name: String,
    pub user_domain_id: String,
    pub user_domain_name: String,
    /// Keystone role names on the scope, implied roles included.
    pub roles: Vec<String>,
    pub scope: Scope,
    pub project: Option<ProjectRef>,
    /// The domain of a domain-scoped token: (ID, name).
    pub domain: Option<(String, String)>,
    pub methods: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub audit_id: String,
    /// The user's credential stamp at issue (see `Engine::ks_stamp`).
    pub stamp: String,
    /// The application credential the token was issued for, if any: the token dies with it.
    pub app_cred: Option<String>,
    /// The trust a trust-scoped token was issued for: the token dies with it.
    #[serde(default)]
    pub trust: Option<String>,
}

impl Token {
    /// May this token change things? (Nova's default policy: member or admin.)
    pub fn can_write(&self) -> bool {
        self.roles.iter().any(|r| r == "admin" || r == "member")
    }

    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// The identity nubis-identity's oslo evaluation sees.
    pub fn identity(&self) -> nubis_identity::KeystoneIdentity {
        use nubis_identity::KeystoneScope;
        let scope = match (&self.scope, &self.project, &self.domain) {
            (Scope::Project, Some(p), _) => KeystoneScope::Project {
                id: p.id.clone(),
                domain_id: p.domain_id.clone(),
            },
            (Scope::Domain, _, Some((id, _))) => KeystoneScope::Domain { id: id.clone() },
            (Scope::System, _, _) => KeystoneScope::System,
            _ => KeystoneScope::Unscoped,
        };
        nubis_identity::KeystoneIdentity {
            user_id: self.user_id.clone(),
            user_domain_id: self.user_domain_id.clone(),
            scope,
            roles: self.roles.iter().map(|r| r.to_lowercase()).collect(),
        }
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

/// The key a token is stored under.
pub(crate) type Digest32 = [u8; 32];

pub(crate) fn digest(id: &str) -> Digest32 {
    Sha256::digest(id.as_bytes()).into()
}

#[derive(Default)]
struct Live {
    tokens: HashMap<Digest32, Token>,
    /// Each user's tokens, oldest first (may name tokens already revoked or expired).
    by_user: HashMap<String, VecDeque<Digest32>>,
}

#[derive(Default)]
pub struct Tokens {
    live: Mutex<Live>,
    /// The cluster's table, on a shared store: then `live` is unused.
    shared: Option<nubis_engine::Cluster>,
}

impl Tokens {
    /// Tokens kept in the cluster's store (see the module doc).
    pub fn shared(cluster: nubis_engine::Cluster) -> Self {
        Self {
            live: Mutex::default(),
            shared: Some(cluster),
        }
    }

    /// Issue a token; `expires_at` is capped by the caller (re-scoping keeps the original's).
    /// `None` when a shared store cannot record it.
    pub async fn issue(&self, mut token: Token) -> Option<(String, Token)> {
        let id = random_url_safe(32);
        token.audit_id = random_url_safe(16);
        let key = digest(&id);
        if let Some(cluster) = &self.shared {
            let data = serde_json::to_string(&token).ok()?;
            let issued_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or(0);
            return match cluster
                .put_keystone_token(
                    &hex::encode(key),
                    &token.user_name,
                    issued_ms,
                    token.expires_at,
                    &data,
                    now(),
                    MAX_PER_USER,
                )
                .await
            {
                Ok(()) => Some((id, token)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not store a Keystone token");
                    None
                }
            };
        }
        Some((id, self.issue_local(key, token)))
    }

    fn issue_local(&self, key: Digest32, token: Token) -> Token {
        let mut guard = self.live.lock();
        let live = &mut *guard;
        let t = now();
        if live.tokens.len() > SWEEP_ABOVE {
            live.tokens.retain(|_, tok| tok.expires_at > t);
            let tokens = &live.tokens;
            live.by_user.retain(|_, q| {
                q.retain(|k| tokens.contains_key(k));
                !q.is_empty()
            });
        }
        let queue = live.by_user.entry(token.user_name.clone()).or_default();
        queue.retain(|k| live.tokens.get(k).is_some_and(|tok| tok.expires_at > t));
        while queue.len() >= MAX_PER_USER {
            if let Some(old) = queue.pop_front() {
                live.tokens.remove(&old);
            }
        }
        queue.push_back(key);
        live.tokens.insert(key, token.clone());
        token
    }

    /// A live token, or None when unknown, revoked or expired.
    #[cfg(test)]
    pub async fn get(&self, id: &str) -> Option<Token> {
        self.get_digest(&digest(id)).await
    }

    /// A live token by digest; on a shared store, read from it (an unreadable store or
    /// record is no token: the client gets a 401).
    pub(crate) async fn get_digest(&self, key: &Digest32) -> Option<Token> {
        if let Some(cluster) = &self.shared {
            return match cluster.keystone_token(&hex::encode(key), now()).await {
                Ok(found) => found.and_then(|doc| serde_json::from_str(&doc).ok()),
                Err(e) => {
                    tracing::warn!(error = %e, "could not read a Keystone token");
                    None
                }
            };
        }
        let mut live = self.live.lock();
        match live.tokens.get(key) {
            Some(t) if t.expires_at > now() => Some(t.clone()),
            Some(_) => {
                live.tokens.remove(key);
                None
            }
            None => None,
        }
    }

    pub async fn revoke(&self, id: &str) -> bool {
        self.revoke_digest(&digest(id)).await
    }

    pub(crate) async fn revoke_digest(&self, key: &Digest32) -> bool {
        if let Some(cluster) = &self.shared {
            return match cluster.revoke_keystone_token(&hex::encode(key)).await {
                Ok(gone) => gone,
                Err(e) => {
                    tracing::warn!(error = %e, "could not revoke a Keystone token");
                    false
                }
            };
        }
        self.live.lock().tokens.remove(key).is_some()
    }

    /// Live tokens of `user` (for tests and metrics).
    pub async fn count_of(&self, user: &str) -> usize {
        if let Some(cluster) = &self.shared {
            return cluster
                .keystone_tokens_of(user, now())
                .await
                .unwrap_or_default();
        }
        let live = self.live.lock();
        let t = now();
        live.by_user.get(user).map_or(0, |q| {
            q.iter()
                .filter(|k| live.tokens.get(*k).is_some_and(|tok| tok.expires_at > t))
                .count()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(user: &str, expires_at: i64) -> Token {
        Token {
            account: "admin".into(),
            user_id: user.into(),
            user_name: user.into(),
            user_domain_id: "default".into(),
            user_domain_name: "Default".into(),
            roles: vec!["admin".into()],
            scope: Scope::Project,
            project: None,
            domain: None,
            methods: vec!["password".into()],
            issued_at: now(),
            expires_at,
            audit_id: String::new(),
            stamp: String::new(),
            app_cred: None,
            trust: None,
        }
    }

    #[tokio::test]
    async fn issue_get_expire_revoke() {
        let t = Tokens::default();
        let (a, issued) = t.issue(tok("admin", now() + 60)).await.unwrap();
        assert_eq!(issued.audit_id.len(), 22);
        assert!(t.get(&a).await.is_some());
        let (b, _) = t.issue(tok("admin", now() - 1)).await.unwrap();
        assert_ne!(a, b);
        assert!(t.get(&b).await.is_none(), "expired");
        assert!(t.revoke(&a).await);
        assert!(t.get(&a).await.is_none());
        assert!(!t.revoke(&a).await);
    }

    #[tokio::test]
    async fn only_digests_are_kept() {
        let t = Tokens::default();
        let (id, _) = t.issue(tok("admin", now() + 60)).await.unwrap();
        let live = t.live.lock();
        assert!(live.tokens.contains_key(&digest(&id)));
        assert_eq!(live.tokens.len(), 1);
        // The ID appears nowhere in what is stored.
        let dump = format!("{:?}", live.tokens.values().collect::<Vec<_>>());
        assert!(!dump.contains(&id));
    }

    #[tokio::test]
    async fn bounded_per_user_oldest_evicted() {
        let t = Tokens::default();
        let (first, _) = t.issue(tok("alice", now() + 60)).await.unwrap();
        let (bob, _) = t.issue(tok("bob", now() + 60)).await.unwrap();
        let mut last = String::new();
        for _ in 0..MAX_PER_USER {
            last = t.issue(tok("alice", now() + 60)).await.unwrap().0;
        }
        assert_eq!(t.count_of("alice").await, MAX_PER_USER);
        assert!(t.get(&first).await.is_none(), "the oldest was evicted");
        assert!(t.get(&last).await.is_some());
        assert!(t.get(&bob).await.is_some(), "other users are untouched");
        assert!(t.live.lock().tokens.len() <= MAX_PER_USER + 1);
    }
}
