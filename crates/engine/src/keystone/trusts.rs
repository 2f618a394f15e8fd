//! OS-TRUST trusts (`/v3/OS-TRUST/trusts`): a trustor delegates some of its roles on a
//! project to a trustee, who gets trust-scoped tokens for it (acting as the trustor with
//! `impersonation`). Stored like the rest of the directory (`keystone_objects`, kind
//! `trust`). Keystone's rules live here: the trustor creates it, holds every delegated role
//! on the project, a trust expires and may be used a bounded number of times.

use super::{KsDir, KsError, Target, del, new_id, now_us};
use crate::Engine;
use nubis_store::Write;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Trusts per trustor (nubis).
pub const MAX_TRUSTS_PER_USER: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trust {
    pub id: String,
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    /// Unix microseconds; `None`: never.
    pub expires_at: Option<i64>,
    /// Role IDs delegated.
    pub roles: Vec<String>,
    /// Token issues left (`None`: unlimited).
    pub remaining_uses: Option<u32>,
}

impl Trust {
    pub fn live(&self) -> bool {
        self.expires_at.is_none_or(|e| e > now_us()) && self.remaining_uses != Some(0)
    }
}

super::id_named!(Trust, trusts, "trust", "trust", "trusts");

/// A new trust; roles by ID or by name.
#[derive(Debug, Clone, Default)]
pub struct NewTrust {
    pub trustor_user_id: String,
    pub trustee_user_id: String,
    pub project_id: Option<String>,
    pub impersonation: bool,
    pub expires_at: Option<i64>,
    pub role_ids: Vec<String>,
    pub role_names: Vec<String>,
    pub remaining_uses: Option<u32>,
}

impl KsDir {
    /// The trusts `pick` selects: their IDs and the writes deleting them.
    pub(super) fn trusts_where(&self, pick: impl Fn(&Trust) -> bool) -> (Vec<String>, Vec<Write>) {
        let ids: Vec<String> = (self.trusts.values())
            .filter(|t| pick(t))
            .map(|t| t.id.clone())
            .collect();
        let writes = ids.iter().map(|i| del("trust", i)).collect();
        (ids, writes)
    }
}

impl Engine {
    /// `creator` creates a trust: it must be the trustor (Keystone's
    /// `identity:create_trust`), and hold every delegated role on the project.
    pub async fn ks_create_trust(&self, creator: &str, new: NewTrust) -> Result<Trust, KsError> {
        let _serial = self.inner.credentials.lock().await;
        if creator != new.trustor_user_id {
            return Err(KsError::Forbidden(
                "The authenticated user should match the trustor.".into(),
            ));
        }
        self.ks_user(&new.trustor_user_id)?;
        self.ks_user(&new.trustee_user_id)?;
        if new.expires_at.is_some_and(|e| e <= now_us()) {
            return Err(KsError::Invalid(
                "Invalid input for field 'expires_at': the expiration time is in the past.".into(),
            ));
        }
        if new.remaining_uses == Some(0) {
            return Err(KsError::Invalid(
                "Invalid input for field 'remaining_uses': at least 1.".into(),
            ));
        }
        let mut roles: BTreeSet<String> = BTreeSet::new();
        for id in &new.role_ids {
            roles.insert(self.ks_role(id)?.id);
        }
        for name in &new.role_names {
            let r = (self.ks_roles().into_iter())
                .find(|r| r.domain_id.is_none() && r.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| KsError::NotFound("role", name.clone()))?;
            roles.insert(r.id);
        }
        match &new.project_id {
            Some(p) => {
                self.ks_project(p)?;
                let held = self.ks_roles_on(&new.trustor_user_id, &Target::Project(p.clone()));
                for id in &roles {
                    let name = self.ks_role(id)?.name.to_lowercase();
                    if !held.contains(&name) {
                        return Err(KsError::Forbidden(format!(
                            "User {} does not have role {id} on project {p}.",
                            new.trustor_user_id
                        )));
                    }
                }
            }
            None if !roles.is_empty() => {
                return Err(KsError::Invalid(
                    "A trust without a project delegates no role.".into(),
                ));
            }
            None => {}
        }
        {
            let dir = self.ks();
            let mine = (dir.trusts.values())
                .filter(|t| t.trustor_user_id == new.trustor_user_id)
                .count();
            if mine >= MAX_TRUSTS_PER_USER {
                return Err(KsError::Forbidden(format!(
                    "A user may create at most {MAX_TRUSTS_PER_USER} trusts."
                )));
            }
            self.ks_bound(dir.trusts.len(), "trusts")?;
        }
        let t = Trust {
            id: new_id(),
            trustor_user_id: new.trustor_user_id,
            trustee_user_id: new.trustee_user_id,
            project_id: new.project_id,
            impersonation: new.impersonation,
            expires_at: new.expires_at,
            roles: roles.into_iter().collect(),
            remaining_uses: new.remaining_uses,
        };
        self.ks_save(&t, Vec::new()).await?;
        Ok(t)
    }

    pub fn ks_trusts(&self) -> Vec<Trust> {
        self.ks().trusts.values().cloned().collect()
    }

    /// Do tokens issued for the trust still hold (it exists and has not expired; used-up
    /// uses do not end tokens already issued)?
    pub fn ks_trust_valid(&self, id: &str) -> bool {
        (self.ks().trusts.get(id)).is_some_and(|t| t.expires_at.is_none_or(|e| e > now_us()))
    }

    /// Use a trust once for a token: `trustee` must be its trustee; the roles the token
    /// carries are the delegated ones the trustor still holds on the project.
    pub async fn ks_use_trust(
        &self,
        id: &str,
        trustee: &str,
    ) -> Result<(Trust, BTreeSet<String>), KsError> {
        let _serial = self.inner.credentials.lock().await;
        let t: Trust = self.ks_get(id)?;
        if t.trustee_user_id != trustee || !t.live() {
            return Err(KsError::Forbidden("The trust cannot be used.".into()));
        }
        let Some(p) = &t.project_id else {
            return Err(KsError::Forbidden("The trust names no project.".into()));
        };
        if self.ks_stamp(&t.trustor_user_id).is_none() {
            return Err(KsError::Forbidden("The trustor is disabled.".into()));
        }
        let held = self.ks_roles_on(&t.trustor_user_id, &Target::Project(p.clone()));
        let delegated: BTreeSet<String> = (t.roles.iter())
            .filter_map(|r| self.ks_role(r).ok())
            .map(|r| r.name.to_lowercase())
            .collect();
        let roles: BTreeSet<String> = nubis_identity::model::expand_implied(delegated)
            .intersection(&held)
            .cloned()
            .collect();
        if roles.is_empty() {
            return Err(KsError::Forbidden(
                "The trustor no longer holds the delegated roles.".into(),
            ));
        }
        let mut used = t.clone();
        if let Some(n) = used.remaining_uses {
            used.remaining_uses = Some(n.saturating_sub(1));
            self.ks_save(&used, Vec::new()).await?;
        }
        Ok((used, roles))
    }
}
