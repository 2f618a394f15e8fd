//! Key pairs, `/os-keypairs`: list, show, create (imported or generated), delete.

use super::{Nova, Res, check_keys, int_param, json_body, listing, opt_str, param, skip_past};
use crate::errors::{Fault, map};
use crate::{Reply, ids, render};
use nubis_core::{DomainError, Principal, ResourceKind};
use serde_json::{Value, json};

impl Nova<'_> {
    // -- key pairs ----------------------------------------------------------------------

    /// The key pairs Nova lists for `owner`: its own user's and the account's shared ones
    /// (made through another dialect) — an admin's listing too shows only its own.
    fn keypairs_of(&self, owner: &Principal) -> Vec<nubis_core::KeyPair> {
        self.api
            .engine
            .key_pairs(owner)
            .into_iter()
            .filter(|k| {
                k.account == owner.account
                    && (k.user_id.is_none() || k.user_id == owner.keystone_user)
            })
            .collect()
    }

    /// Whose key pairs a request is about: the caller's, or from 2.10 those of the user its
    /// `user_id` names (`given`, else the `user_id` query parameter) if the
    /// `os_compute_api:os-keypairs:<action>` rule allows it for that user (admins). The
    /// user's ID and, when nubis knows the user, its principal.
    fn keypair_owner(
        &self,
        action: &str,
        given: Option<&str>,
    ) -> Result<(String, Option<Principal>), Fault> {
        let q = self.req.query();
        let asked = given
            .map(str::to_string)
            .or_else(|| param(&q, "user_id").map(str::to_string))
            .filter(|_| self.v.at_least(10));
        let Some(user) = asked.filter(|u| *u != self.caller_user_id()) else {
            return Ok((self.caller_user_id(), Some(self.p.clone())));
        };
        let rule = format!("os_compute_api:os-keypairs:{action}");
        let mut target = super::nova_target(self.token);
        target.insert("user_id".into(), user.clone());
        if !crate::routes::allowed(&self.api.nova_policy, self.token, &rule, target) {
            return Err(Fault::new(
                403,
                format!("Policy doesn't allow {rule} to be performed."),
            ));
        }
        let owner = self.api.engine.key_pair_principal(&self.p, &user);
        Ok((user, owner))
    }

    /// The Keystone user asking (Nova key pairs are per user); the account's own user ID
    /// for a caller without one.
    fn caller_user_id(&self) -> String {
        (self.p.keystone_user.clone()).unwrap_or_else(|| ids::user_id(&self.p.account))
    }

    fn keypair_not_found(name: &str, user: &str) -> Fault {
        Fault::not_found(format!("Keypair {name} not found for user {user}"))
    }

    /// Key pair `name` of the request's owner ([`Self::keypair_owner`]).
    fn owned_keypair(&self, action: &str, name: &str) -> Result<nubis_core::KeyPair, Fault> {
        let (user, owner) = self.keypair_owner(action, None)?;
        owner
            .and_then(|o| self.keypairs_of(&o).into_iter().find(|k| k.name == name))
            .ok_or_else(|| Self::keypair_not_found(name, &user))
    }

    pub(super) fn list_keypairs(&self) -> Res {
        let q = self.req.query();
        let mut keys = match self.keypair_owner("index", None)? {
            (_, Some(owner)) => self.keypairs_of(&owner),
            (_, None) => Vec::new(),
        };
        keys.sort_by(|a, b| a.name.cmp(&b.name));
        let mut cut = false;
        let mut limit = usize::MAX;
        if self.v.at_least(35) {
            if let Some(marker) = param(&q, "marker")
                && !skip_past(&mut keys, |k| k.name == marker)
            {
                return Err(Fault::bad_request(format!("marker [{marker}] not found")));
            }
            if let Some(l) = int_param(&q, "limit")? {
                if l < 0 {
                    return Err(Fault::bad_request("limit must be >= 0"));
                }
                limit = l as usize;
                cut = keys.len() > limit;
                keys.truncate(limit);
            }
        }
        let list: Vec<Value> = keys
            .iter()
            .map(|k| json!({"keypair": render::key_pair(k, self.v)}))
            .collect();
        let next = keys.last().filter(|_| cut).map(|k| k.name.clone());
        listing(&self.base, "keypairs", "os-keypairs", list, limit, next)
    }

    pub(super) fn show_keypair(&self, name: &str) -> Res {
        let k = self.owned_keypair("show", name)?;
        Ok(Reply::json(
            200,
            &json!({"keypair": render::key_pair_detail(&k, self.v)}),
        ))
    }

    pub(super) async fn create_keypair(&self) -> Res {
        let body = json_body(self.req.body)?;
        let kp = body
            .get("keypair")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'keypair' is a required property"))?;
        let mut allowed = vec!["name", "public_key"];
        if self.v.at_least(2) {
            allowed.push("type");
        }
        if self.v.at_least(10) {
            allowed.push("user_id");
        }
        check_keys(kp, &allowed)?;
        let name = opt_str(kp, "name")?
            .ok_or_else(|| Fault::bad_request("'name' is a required property"))?;
        let extra_chars: &[char] = if self.v.at_least(92) {
            &[' ', '_', '-', '@', '.']
        } else {
            &[' ', '_', '-']
        };
        let n = name.chars().count();
        if n == 0
            || n > 255
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || extra_chars.contains(&c))
            || name.trim().is_empty()
        {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute name. Value: {name}."
            )));
        }
        let x509 = match opt_str(kp, "type")? {
            None | Some("ssh") => false,
            Some("x509") => true,
            Some(t) => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute type. Value: {t}. '{t}' is not one of ['ssh', 'x509']"
                )));
            }
        };
        // A caller without a Keystone user (account root) is the account's own user ID.
        let given = opt_str(kp, "user_id")?
            .filter(|u| self.p.keystone_user.is_some() || *u != ids::user_id(&self.p.account));
        let (user, owner) = self.keypair_owner("create", given)?;
        // nubis keeps a key pair in its user's account: a user it does not know has none.
        let owner =
            owner.ok_or_else(|| Fault::bad_request(format!("User {user} could not be found.")))?;
        let public_key = opt_str(kp, "public_key")?.map(str::trim);
        if public_key.is_none() && self.v.at_least(92) {
            return Err(Fault::bad_request("'public_key' is a required property"));
        }
        if public_key == Some("") {
            return Err(Fault::bad_request(
                "Keypair data is invalid: failed to generate fingerprint",
            ));
        }
        let created = if x509 && public_key.is_none() {
            self.api.engine.create_x509_key_pair(&owner, name).await
        } else {
            self.api
                .engine
                .create_key_pair(&owner, name, 0, public_key)
                .await
        };
        let created = created.map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => {
                Fault::bad_request(format!("Keypair data is invalid: {reason}"))
            }
            other => map(other, None),
        })?;
        let mut view = render::key_pair(&created.key_pair, self.v);
        if let Some(given) = public_key {
            view.insert("public_key".into(), json!(given));
        }
        view.insert("user_id".into(), json!(user));
        if let Some(private) = created.private_key {
            view.insert("private_key".into(), json!(private));
        }
        let status = if self.v.at_least(2) { 201 } else { 200 };
        Ok(Reply::json(status, &json!({ "keypair": view })))
    }

    pub(super) async fn delete_keypair(&self, name: &str) -> Res {
        let k = self.owned_keypair("delete", name)?;
        let user = k.user_id.clone().unwrap_or_else(|| self.caller_user_id());
        // Nova deletes a key pair servers still name (they keep their key).
        self.api
            .engine
            .delete_key_pairs(&self.p, std::slice::from_ref(&k.id), false)
            .await
            .map_err(|e| match e {
                DomainError::NotFound {
                    kind: ResourceKind::KeyPair,
                    ..
                } => Self::keypair_not_found(name, &user),
                other => map(other, None),
            })?;
        Ok(Reply::empty(if self.v.at_least(2) { 204 } else { 202 }))
    }
}
