//! Keystone credentials (`/v3/credentials`) and the EC2 credentials built on them
//! (`/v3/users/{user_id}/credentials/OS-EC2`). A credential is a blob a user keeps with
//! Keystone for another service (`ec2`, `cert`, `totp`, …); Keystone only stores and returns
//! it. Stored like the rest of the directory (`keystone_objects`, kind `credential`); the
//! blob is kept as given (Keystone encrypts it with its credential keys; nubis's store is
//! the operator's to protect, as it already holds every other secret's hash or value).

use super::{KsDir, KsError, del, new_id};
use crate::Engine;
use nubis_store::Write;
use serde::{Deserialize, Serialize};

/// Keystone's `[credential] user_limit`.
pub const MAX_CREDENTIALS_PER_USER: usize = 500;
/// A blob's size (nubis).
pub const MAX_BLOB: usize = 8192;
/// A type's length (Keystone's schema: 255).
pub const MAX_TYPE: usize = 255;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: String,
    pub user_id: String,
    pub project_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub blob: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("type", &self.kind)
            .finish_non_exhaustive()
    }
}

super::id_named!(
    Credential,
    credentials,
    "credential",
    "credential",
    "credentials"
);

/// An EC2 credential's ID: the SHA-256 of its access key, in hex (Keystone).
pub fn ec2_id(access: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(access.as_bytes()))
}

/// The access key of an `ec2` blob (a JSON object with a string `access`).
fn ec2_access(blob: &str) -> Result<String, KsError> {
    let v: serde_json::Value = serde_json::from_str(blob).map_err(|_| {
        KsError::Invalid("Invalid blob in credential: an ec2 blob is a JSON object.".into())
    })?;
    v.get("access")
        .and_then(|a| a.as_str())
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .ok_or_else(|| KsError::Invalid("Credential blob is missing 'access'.".into()))
}

/// A new credential.
#[derive(Clone, Default)]
pub struct NewCredential {
    pub user_id: String,
    pub project_id: Option<String>,
    pub kind: String,
    pub blob: String,
}

impl KsDir {
    /// The writes deleting the credentials `pick` selects, and their IDs.
    pub(super) fn credentials_where(
        &self,
        pick: impl Fn(&Credential) -> bool,
    ) -> (Vec<String>, Vec<Write>) {
        let ids: Vec<String> = (self.credentials.values())
            .filter(|c| pick(c))
            .map(|c| c.id.clone())
            .collect();
        let writes = ids.iter().map(|i| del("credential", i)).collect();
        (ids, writes)
    }
}

impl Engine {
    pub fn ks_credentials(&self) -> Vec<Credential> {
        self.ks().credentials.values().cloned().collect()
    }

    fn check_blob(blob: &str) -> Result<(), KsError> {
        if blob.len() > MAX_BLOB {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'blob': at most {MAX_BLOB} bytes."
            )));
        }
        Ok(())
    }

    /// Keystone's rules: a type and a blob; the user exists; an `ec2` credential names a
    /// project and an access key, and its ID is the access key's hash.
    pub async fn ks_create_credential(&self, new: NewCredential) -> Result<Credential, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if new.kind.is_empty() || new.kind.chars().count() > MAX_TYPE {
            return Err(KsError::Invalid(format!(
                "Invalid input for field 'type': 1 to {MAX_TYPE} characters."
            )));
        }
        Self::check_blob(&new.blob)?;
        self.ks_user(&new.user_id)?;
        if let Some(p) = &new.project_id {
            self.ks_project(p)?;
        }
        let id = if new.kind == "ec2" {
            if new.project_id.is_none() {
                return Err(KsError::Invalid(
                    "Invalid input for field 'project_id': an ec2 credential names a project."
                        .into(),
                ));
            }
            ec2_id(&ec2_access(&new.blob)?)
        } else {
            new_id()
        };
        {
            let dir = self.ks();
            if dir.credentials.contains_key(&id) {
                return Err(KsError::Conflict(format!(
                    "Conflict occurred attempting to store credential - Duplicate ID, {id}."
                )));
            }
            let mine = (dir.credentials.values())
                .filter(|c| c.user_id == new.user_id)
                .count();
            if mine >= MAX_CREDENTIALS_PER_USER {
                return Err(KsError::Forbidden(format!(
                    "Unable to create additional credentials, maximum of {MAX_CREDENTIALS_PER_USER} already exceeded for user."
                )));
            }
            self.ks_bound(dir.credentials.len(), "credentials")?;
        }
        let c = Credential {
            id,
            user_id: new.user_id,
            project_id: new.project_id,
            kind: new.kind,
            blob: new.blob,
        };
        self.ks_save(&c, Vec::new()).await?;
        Ok(c)
    }

    /// Replace a credential's blob (the only field Keystone lets change in practice; an
    /// `ec2` blob must still hold an access key).
    pub async fn ks_update_credential(
        &self,
        id: &str,
        blob: Option<String>,
    ) -> Result<Credential, KsError> {
        let _serial = self.inner.credentials.lock().await;
        let mut c: Credential = self.ks_get(id)?;
        if let Some(b) = blob {
            Self::check_blob(&b)?;
            if c.kind == "ec2" {
                ec2_access(&b)?;
            }
            c.blob = b;
        }
        self.ks_save(&c, Vec::new()).await?;
        Ok(c)
    }

    /// A new EC2 key pair of `user` for `project`: access and secret are random.
    pub async fn ks_create_ec2(&self, user: &str, project: &str) -> Result<Credential, KsError> {
        let blob = serde_json::json!({
            "access": new_id(),
            "secret": new_id(),
            "trust_id": null,
            "app_cred_id": null,
            "access_token_id": null,
        })
        .to_string();
        self.ks_create_credential(NewCredential {
            user_id: user.into(),
            project_id: Some(project.into()),
            kind: "ec2".into(),
            blob,
        })
        .await
    }
}

/// An OS-OAUTH1 consumer: an application that may be delegated a user's roles through
/// OAuth 1.0a. nubis keeps consumers (their secret shown once, stored hashed); the
/// delegation flow itself (request and access tokens) is not offered (docs/keystone-v3.md).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub description: String,
    pub secret_hash: String,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

super::id_named!(
    Consumer,
    consumers,
    "oauth_consumer",
    "consumer",
    "consumers"
);

impl Engine {
    /// A new consumer and its secret (returned once).
    pub async fn ks_create_consumer(
        &self,
        description: &str,
    ) -> Result<(Consumer, String), KsError> {
        let _serial = self.inner.credentials.lock().await;
        super::check_description(description)?;
        self.ks_bound(self.ks().consumers.len(), "consumers")?;
        let secret = new_id();
        let s = secret.clone();
        let secret_hash = tokio::task::spawn_blocking(move || nubis_auth::password::hash(&s))
            .await
            .map_err(|e| KsError::Domain(nubis_core::DomainError::Internal(e.to_string())))?;
        let c = Consumer {
            id: new_id(),
            description: description.into(),
            secret_hash,
        };
        self.ks_save(&c, Vec::new()).await?;
        Ok((c, secret))
    }

    pub async fn ks_update_consumer(
        &self,
        id: &str,
        description: &str,
    ) -> Result<Consumer, KsError> {
        let _serial = self.inner.credentials.lock().await;
        super::check_description(description)?;
        let mut c: Consumer = self.ks_get(id)?;
        c.description = description.into();
        self.ks_save(&c, Vec::new()).await?;
        Ok(c)
    }
}
