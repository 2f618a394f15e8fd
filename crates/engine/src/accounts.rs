//! Accounts and the bootstrap admin.

use crate::Engine;
use nubis_core::{AccessKey, Account, DomainError};
use nubis_store::Write;
use rand::Rng;

/// Credentials created at first start (those the operator did not give), to be shown once.
pub struct Generated {
    pub access_key: Option<(String, String)>,
    pub password: Option<String>,
}

pub const ADMIN_ACCOUNT: &str = "admin";

fn random(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

impl Engine {
    /// On first start (no accounts), create the admin account with the given key pair and
    /// Keystone password, or generated ones (returned so the caller can show them once).
    /// A given key that is not yet stored is added to the admin account on later starts too.
    pub async fn bootstrap(
        &self,
        key: Option<(String, String)>,
        password: Option<String>,
    ) -> Result<Option<Generated>, DomainError> {
        let (first, known) = {
            let fleet = self.inner.fleet.lock();
            let known = key
                .as_ref()
                .is_some_and(|(id, _)| fleet.access_keys.contains_key(id));
            (fleet.accounts.is_empty(), known)
        };
        if !first && (key.is_none() || known) {
            return Ok(None);
        }
        let key_generated = key.is_none();
        let password_generated = first && password.is_none();
        let (id, secret) = key.unwrap_or_else(|| (format!("AKID{}", random(32)), random(32)));
        let password = password.unwrap_or_else(|| random(20));
        let account = Account {
            id: ADMIN_ACCOUNT.into(),
            name: "admin".into(),
            is_admin: true,
        };
        let access = AccessKey {
            id: id.clone(),
            account: account.id.clone(),
            sealed_secret: self.inner.secrets.seal(&secret),
        };
        let mut writes = vec![Write::AccessKey(access.clone())];
        let password_hash = nubis_auth::password::hash(&password);
        if first {
            writes.push(Write::Account(account.clone()));
            writes.push(Write::Meta {
                key: "admin_password_hash".into(),
                value: password_hash.clone(),
            });
        }
        self.commit(writes).await?;
        let mut fleet = self.inner.fleet.lock();
        fleet.accounts.entry(account.id.clone()).or_insert(account);
        fleet
            .access_keys
            .insert(id.clone(), (access, secret.clone()));
        if first {
            fleet.admin_password_hash = Some(password_hash);
        }
        Ok((key_generated || password_generated).then_some(Generated {
            access_key: key_generated.then_some((id, secret)),
            password: password_generated.then_some(password),
        }))
    }
}
