//! SSH key pairs.

use crate::{Engine, IdKind, now_ms};
use base64::Engine as _;
use nubis_core::keys::INJECTABLE;
use nubis_core::select::Facet;
use nubis_core::{DomainError, KeyPair, KeyType, Principal, ResourceKind, ids};
use nubis_store::Write;
use std::collections::{HashMap, HashSet};

/// What CreateKeyPair returns once: the private key is never stored.
pub struct NewKeyPair {
    pub key_pair: KeyPair,
    pub private_key: Option<String>,
}

/// Key types we accept for import besides those guests take ([`nubis_core::keys::INJECTABLE`]):
/// ssh-dss is refused later, on association, as the clouds do.
const IMPORT_ONLY: &[&str] = &["ssh-dss"];

/// Check an OpenSSH public key line: `<type> <base64 blob> [comment]`, with the blob's own
/// type string matching. Returns the normalised `<type> <blob>` text.
pub fn parse_public_key(text: &str) -> Result<String, String> {
    let mut parts = text.split_whitespace();
    let (Some(ty), Some(blob)) = (parts.next(), parts.next()) else {
        return Err("expected \"<type> <base64>\"".into());
    };
    if !(INJECTABLE.contains(&ty) || IMPORT_ONLY.contains(&ty)) {
        return Err(format!("unsupported key type {ty}"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "key is not valid base64".to_string())?;
    let inner = raw
        .get(0..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .and_then(|n| raw.get(4..4 + n))
        .ok_or("truncated key")?;
    if inner != ty.as_bytes() {
        return Err("key type does not match its data".into());
    }
    Ok(format!("{ty} {blob}"))
}

impl Engine {
    /// Generate an X.509 key pair (self-signed certificate as the public part, PEM).
    pub async fn create_x509_key_pair(
        &self,
        p: &Principal,
        name: &str,
    ) -> Result<NewKeyPair, DomainError> {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["nubis-keypair".to_string()])
                .map_err(|e| DomainError::Internal(e.to_string()))?;
        let kp = self
            .store_key_pair(p, name, 0, cert.pem(), KeyType::X509)
            .await?;
        Ok(NewKeyPair {
            key_pair: kp,
            private_key: Some(key_pair.serialize_pem()),
        })
    }

    async fn store_key_pair(
        &self,
        p: &Principal,
        name: &str,
        project_id: i64,
        public_key: String,
        key_type: KeyType,
    ) -> Result<KeyPair, DomainError> {
        let kp = {
            let mut fleet = self.inner.fleet.lock();
            // Names are unique within the caller's own account (an admin's too): ownership,
            // not visibility.
            if fleet
                .key_pairs
                .values()
                .any(|k| k.account == p.account && k.name == name)
            {
                return Err(DomainError::DuplicateKeyName(name.to_string()));
            }
            fleet.check_key_pair_quota(p)?;
            let mut id = ids::new_key_id();
            while fleet.key_pairs.contains_key(&id) {
                id = ids::new_key_id();
            }
            let kp = KeyPair {
                id,
                key_type,
                account: p.account.clone(),
                name: name.to_string(),
                project_id,
                description: String::new(),
                public_key,
                created_at_ms: now_ms(),
                user_id: p.keystone_user.clone(),
            };
            // In the fleet before the commit (taken out again if it fails), so a concurrent
            // create of the same name or of the last key pair the quota allows sees it.
            fleet.key_pairs.insert(kp.id.clone(), kp.clone());
            kp
        };
        if let Err(e) = self.commit(vec![Write::KeyPair(kp.clone())]).await {
            self.inner.fleet.lock().key_pairs.remove(&kp.id);
            return Err(e);
        }
        Ok(kp)
    }

    /// Create (generate) or import a key pair.
    pub async fn create_key_pair(
        &self,
        p: &Principal,
        name: &str,
        project_id: i64,
        public_key: Option<&str>,
    ) -> Result<NewKeyPair, DomainError> {
        let (public_key, private_key) = match public_key {
            Some(text) => (
                parse_public_key(text).map_err(|r| DomainError::invalid("PublicKey", r))?,
                None,
            ),
            None => {
                let key = ssh_key::PrivateKey::random(
                    &mut ssh_key::rand_core::OsRng,
                    ssh_key::Algorithm::Ed25519,
                )
                .map_err(|e| DomainError::Internal(e.to_string()))?;
                let private = key
                    .to_openssh(ssh_key::LineEnding::LF)
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                let public = key
                    .public_key()
                    .to_openssh()
                    .map_err(|e| DomainError::Internal(e.to_string()))?;
                (public, Some(private.to_string()))
            }
        };
        let kp = self
            .store_key_pair(p, name, project_id, public_key, KeyType::Ssh)
            .await?;
        Ok(NewKeyPair {
            key_pair: kp,
            private_key,
        })
    }

    /// The caller's key pairs, oldest first: the canonical records, named by each dialect its
    /// own way (Tencent by `skey-` ID, Alibaba and Nova by name).
    pub fn key_pairs(&self, p: &Principal) -> Vec<KeyPair> {
        let fleet = self.inner.fleet.lock();
        let mut out: Vec<KeyPair> = fleet
            .key_pairs
            .values()
            .filter(|k| p.sees_key_pair(k))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        out
    }

    /// Key pair ID → the listed instances associated with it, oldest first, by their IDs in
    /// `kind` (the dialect's namespace); for the key pairs `p` sees, absent when none is.
    pub fn key_pair_instances(&self, p: &Principal, kind: IdKind) -> HashMap<String, Vec<String>> {
        let fleet = self.inner.fleet.lock();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        // Only instances `p` sees: an admin may put one account's key on another account's
        // instance, which must not show that instance's ID to the key's owner.
        let table = fleet.instances.read();
        let seen = (table.rows())
            .filter(|r| r.state().is_listed() && r.has_key_pairs() && p.sees(r.account()));
        for inst in seen.map(|r| r.instance()) {
            // A key named twice on one instance is one association.
            let keys: HashSet<&String> = inst.key_ids.iter().collect();
            for key in keys {
                if fleet.key_pairs.get(key).is_some_and(|k| p.sees_key_pair(k)) {
                    out.entry(key.clone()).or_default().push(kind.id_of(&inst));
                }
            }
        }
        out
    }

    /// The key pair `p` sees under `name` (the oldest, as in [`Self::key_pairs`]'s order, if
    /// several share it), without building the whole listing with its instance scan.
    pub fn key_pair_by_name(&self, p: &Principal, name: &str) -> Option<KeyPair> {
        let fleet = self.inner.fleet.lock();
        fleet
            .key_pairs
            .values()
            .filter(|k| p.sees_key_pair(k) && k.name == name)
            .min_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)))
            .cloned()
    }

    /// ID → name of every key pair `p` sees (for rendering instances; no instance scan).
    pub fn key_pair_names(&self, p: &Principal) -> HashMap<String, String> {
        let fleet = self.inner.fleet.lock();
        fleet
            .key_pairs
            .values()
            .filter(|k| p.sees_key_pair(k))
            .map(|k| (k.id.clone(), k.name.clone()))
            .collect()
    }

    /// Who Keystone user `user_id`'s key pairs are made and read as (Nova 2.10's `user_id`,
    /// which the caller's policy allowed): that user in its domain's account. `None`: no such
    /// user, or `p` is neither that user nor an admin.
    pub fn key_pair_principal(&self, p: &Principal, user_id: &str) -> Option<Principal> {
        if p.keystone_user.as_deref() == Some(user_id) {
            return Some(p.clone());
        }
        if !p.is_admin {
            return None;
        }
        let user = self.ks_user(user_id).ok()?;
        let domain = self.ks_domain(&user.domain_id).ok()?;
        Some(Principal {
            account: domain.account,
            user: user.name,
            keystone_user: Some(user.id),
            ..Principal::default()
        })
    }

    /// The name of a key pair `p` sees, by ID.
    pub fn key_pair_name(&self, p: &Principal, id: &str) -> Option<String> {
        let fleet = self.inner.fleet.lock();
        fleet
            .key_pairs
            .get(id)
            .filter(|k| p.sees_key_pair(k))
            .map(|k| k.name.clone())
    }

    /// Delete key pairs, all or nothing. With `refuse_in_use` (Tencent, Alibaba) a key still
    /// associated with an instance stays; Nova deletes it anyway (the guest keeps the key, the
    /// server its `key_name`; docs/images.md "Key pairs deleted while in use").
    pub async fn delete_key_pairs(
        &self,
        p: &Principal,
        key_ids: &[String],
        refuse_in_use: bool,
    ) -> Result<(), DomainError> {
        {
            let fleet = self.inner.fleet.lock();
            for id in key_ids {
                if !fleet.key_pairs.get(id).is_some_and(|k| p.sees_key_pair(k)) {
                    return Err(DomainError::NotFound {
                        kind: ResourceKind::KeyPair,
                        id: id.clone(),
                    });
                }
                // The key-pair index holds listed instances only: one lookup, no walk.
                if refuse_in_use && fleet.instances.read().uses(Facet::KeyPair, id) {
                    return Err(DomainError::KeyPairInUse(id.clone()));
                }
            }
        }
        self.commit(
            key_ids
                .iter()
                .map(|id| Write::DeleteKeyPair(id.clone()))
                .collect(),
        )
        .await?;
        let mut fleet = self.inner.fleet.lock();
        for id in key_ids {
            fleet.key_pairs.remove(id);
        }
        Ok(())
    }
}

/// MD5 of an OpenSSH public key's blob, colon-separated hex (`ssh-keygen -E md5 -l`): the
/// fingerprint Alibaba and Nova show.
pub fn md5_fingerprint(public_key: &str) -> String {
    use base64::Engine as _;
    use md5::Digest as _;
    let blob = public_key
        .split_whitespace()
        .nth(1)
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    colon_hex(&md5::Md5::digest(&blob))
}

/// A digest as fingerprints show it: lower-case hex bytes joined by `:`.
pub fn colon_hex(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::keys::injectable;

    #[test]
    fn public_key_parsing() {
        let ed = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host";
        assert_eq!(
            parse_public_key(ed).unwrap(),
            ed.rsplit_once(' ').unwrap().0
        );
        assert!(
            parse_public_key(
                "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
            )
            .is_err()
        );
        assert!(parse_public_key("garbage").is_err());
        assert!(parse_public_key("ssh-ed25519 !!!!").is_err());
        assert!(injectable(ed));
        assert!(!injectable("ssh-dss AAAA"));
    }
}
