//! Key pairs, `/os-keypairs`: list, show, create (imported or generated), delete.

use super::{Nova, Res, check_keys, int_param, json_body, listing, opt_str, param, skip_past};
use crate::errors::{Fault, map};
use crate::{Reply, ids, render};
use nubis_core::{DomainError, ResourceKind};
use serde_json::{Value, json};

impl Nova<'_> {
    // -- key pairs ----------------------------------------------------------------------

    pub(super) fn own_keypairs(&self) -> Vec<nubis_core::KeyPair> {
        self.api
            .engine
            .key_pairs(&self.p)
            .into_iter()
            .filter(|k| k.account == self.p.account)
            .collect()
    }

    /// The Keystone user asking (Nova key pairs are per user); the account's own user ID
    /// for a caller without one.
    fn caller_user_id(&self) -> String {
        (self.p.keystone_user.clone()).unwrap_or_else(|| ids::user_id(&self.p.account))
    }

    pub(super) fn keypair_not_found(&self, name: &str) -> Fault {
        Fault::not_found(format!(
            "Keypair {name} not found for user {}",
            self.caller_user_id()
        ))
    }

    pub(super) fn list_keypairs(&self) -> Res {
        let q = self.req.query();
        let mut keys = self.own_keypairs();
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
        let k = self
            .own_keypairs()
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| self.keypair_not_found(name))?;
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
        if let Some(uid) = opt_str(kp, "user_id")?
            && uid != self.caller_user_id()
            && uid != ids::user_id(&self.p.account)
        {
            return Err(Fault::bad_request(format!(
                "User {uid} could not be found."
            )));
        }
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
            self.api.engine.create_x509_key_pair(&self.p, name).await
        } else {
            self.api
                .engine
                .create_key_pair(&self.p, name, 0, public_key)
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
        view.insert("user_id".into(), json!(self.caller_user_id()));
        if let Some(private) = created.private_key {
            view.insert("private_key".into(), json!(private));
        }
        let status = if self.v.at_least(2) { 201 } else { 200 };
        Ok(Reply::json(status, &json!({ "keypair": view })))
    }

    pub(super) async fn delete_keypair(&self, name: &str) -> Res {
        let k = self
            .own_keypairs()
            .into_iter()
            .find(|k| k.name == name)
            .ok_or_else(|| self.keypair_not_found(name))?;
        self.api
            .engine
            .delete_key_pairs(&self.p, std::slice::from_ref(&k.id))
            .await
            .map_err(|e| match e {
                DomainError::NotFound {
                    kind: ResourceKind::KeyPair,
                    ..
                } => self.keypair_not_found(name),
                DomainError::KeyPairInUse(_) => Fault::conflict(format!(
                    "Key pair {name} is still used by a server and cannot be deleted."
                )),
                other => map(other, None),
            })?;
        Ok(Reply::empty(if self.v.at_least(2) { 204 } else { 202 }))
    }
}
