//! OS-TRUST trusts (`/v3/OS-TRUST/trusts`): parse, call the engine
//! (`nubis_engine::keystone::trusts`), render Keystone's shapes. Who may see a trust is
//! Keystone's default: its trustor, its trustee, an admin or a system reader (checked here
//! on the trust: the path names only the trust).

use super::{bad, body_obj, err, expires_text, ks_err, one, param, parse_expiry, q, query, url};
use crate::Reply;
use crate::identity::Ctx;
use nubis_engine::keystone::trusts::{NewTrust, Trust};
use serde_json::{Value, json};

fn role_view(c: &Ctx<'_>, id: &str) -> Value {
    let name = c.api.engine.ks_role(id).map(|r| r.name).ok();
    json!({"id": id, "name": name, "domain_id": null,
        "links": {"self": url(c, &format!("roles/{id}"))}})
}

fn view(c: &Ctx<'_>, t: &Trust, with_roles: bool) -> Value {
    let mut v = json!({
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": t.expires_at.map(|e| format!("{}Z", expires_text(e))),
        "remaining_uses": t.remaining_uses,
        "allow_redelegation": false,
        "redelegation_count": 0,
        "redelegated_trust_id": null,
        "links": {"self": url(c, &format!("OS-TRUST/trusts/{}", t.id))},
    });
    if with_roles {
        v["roles"] = json!(t.roles.iter().map(|r| role_view(c, r)).collect::<Vec<_>>());
        v["roles_links"] = json!({"self": null, "previous": null, "next": null});
    }
    v
}

/// The caller, and whether it is an admin or a system reader.
fn caller(c: &Ctx<'_>) -> (String, bool) {
    let Some(t) = c.caller.as_ref() else {
        return (String::new(), false);
    };
    let system_reader =
        t.scope == crate::tokens::Scope::System && t.roles.iter().any(|r| r == "reader");
    (t.user_id.clone(), t.is_admin() || system_reader)
}

fn denied(action: &str) -> Reply {
    err(
        403,
        &format!("You are not authorized to perform the requested action: {action}."),
    )
}

/// The path's trust when the caller may see it (trustor, trustee, admin, system reader).
fn visible(c: &Ctx<'_>, action: &str) -> Result<Trust, Box<Reply>> {
    let t: Trust = (c.api.engine.ks_get(param(c, 0))).map_err(|e| Box::new(ks_err(e)))?;
    let (me, privileged) = caller(c);
    if !(privileged || me == t.trustor_user_id || me == t.trustee_user_id) {
        return Err(Box::new(denied(action)));
    }
    Ok(t)
}

pub(crate) async fn create(c: &Ctx<'_>) -> Reply {
    let r = async {
        let m = body_obj(c, "trust")?;
        let req_s = |k: &str| -> Result<String, Box<Reply>> {
            match m.get(k) {
                Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                _ => Err(bad(
                    400,
                    &format!("Invalid input for field '{k}': required string."),
                )),
            }
        };
        let trustor = req_s("trustor_user_id")?;
        let trustee = req_s("trustee_user_id")?;
        let Some(Value::Bool(impersonation)) = m.get("impersonation") else {
            return Err(bad(
                400,
                "Invalid input for field 'impersonation': required boolean.",
            ));
        };
        let project_id = match m.get("project_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad(400, "Invalid input for field 'project_id': a string.")),
        };
        let expires_at = match m.get("expires_at") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(parse_expiry(s).ok_or_else(|| {
                bad(
                    400,
                    &format!("Invalid input for field 'expires_at': {s} is not a date-time."),
                )
            })?),
            Some(_) => return Err(bad(400, "Invalid input for field 'expires_at': a string.")),
        };
        let remaining_uses = match m.get("remaining_uses") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad(400, "Invalid input for field 'remaining_uses'."))?,
            ),
        };
        let (mut role_ids, mut role_names) = (Vec::new(), Vec::new());
        match m.get("roles") {
            None | Some(Value::Null) => {}
            Some(Value::Array(a)) if a.len() <= 64 => {
                for r in a {
                    match (r.get("id"), r.get("name")) {
                        (Some(Value::String(id)), _) => role_ids.push(id.clone()),
                        (None, Some(Value::String(n))) => role_names.push(n.clone()),
                        _ => return Err(bad(400, "Invalid input for field 'roles'.")),
                    }
                }
            }
            Some(_) => return Err(bad(400, "Invalid input for field 'roles': a list.")),
        }
        let new = NewTrust {
            trustor_user_id: trustor,
            trustee_user_id: trustee,
            project_id,
            impersonation: *impersonation,
            expires_at,
            role_ids,
            role_names,
            remaining_uses,
        };
        let (me, _) = caller(c);
        let t = (c.api.engine.ks_create_trust(&me, new).await).map_err(|e| Box::new(ks_err(e)))?;
        Ok(one(201, "trust", view(c, &t, true)))
    };
    r.await.unwrap_or_else(|e: Box<Reply>| *e)
}

/// `GET /v3/OS-TRUST/trusts`: by trustor or trustee (the caller's own), or all for an
/// admin or a system reader (Keystone).
pub(crate) async fn list(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let (me, privileged) = caller(c);
    let (trustor, trustee) = (q(&qs, "trustor_user_id"), q(&qs, "trustee_user_id"));
    if !privileged && trustor.is_none_or(|x| x != me) && trustee.is_none_or(|x| x != me) {
        return denied("identity:list_trusts");
    }
    let items: Vec<Value> = (c.api.engine.ks_trusts().iter())
        .filter(|t| trustor.is_none_or(|x| t.trustor_user_id == x))
        .filter(|t| trustee.is_none_or(|x| t.trustee_user_id == x))
        .map(|t| view(c, t, false))
        .collect();
    Reply::json(
        200,
        &json!({"trusts": items, "links": {"self": url(c, "OS-TRUST/trusts"),
            "previous": null, "next": null}}),
    )
}

pub(crate) async fn show(c: &Ctx<'_>) -> Reply {
    match visible(c, "identity:get_trust") {
        Ok(t) => one(200, "trust", view(c, &t, true)),
        Err(r) => *r,
    }
}

/// `DELETE`: the trustor or an admin.
pub(crate) async fn delete(c: &Ctx<'_>) -> Reply {
    let t: Trust = match c.api.engine.ks_get(param(c, 0)) {
        Ok(t) => t,
        Err(e) => return ks_err(e),
    };
    let (me, _) = caller(c);
    let admin = c.caller.as_ref().is_some_and(|x| x.is_admin());
    if !(admin || me == t.trustor_user_id) {
        return denied("identity:delete_trust");
    }
    match c.api.engine.ks_delete::<Trust>(&t.id).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn roles(c: &Ctx<'_>) -> Reply {
    match visible(c, "identity:list_roles_for_trust") {
        Ok(t) => Reply::json(
            200,
            &json!({"roles": t.roles.iter().map(|r| role_view(c, r)).collect::<Vec<_>>(),
                "links": {"self": url(c, &format!("OS-TRUST/trusts/{}/roles", t.id)),
                    "previous": null, "next": null}}),
        ),
        Err(r) => *r,
    }
}

/// `GET`/`HEAD /v3/OS-TRUST/trusts/{id}/roles/{role_id}`: 200 with the role.
pub(crate) async fn role(c: &Ctx<'_>) -> Reply {
    match visible(c, "identity:get_role_for_trust") {
        Ok(t) => {
            let rid = param(c, 1);
            if t.roles.iter().any(|r| r == rid) {
                one(200, "role", role_view(c, rid))
            } else {
                err(404, &format!("Could not find role: {rid}."))
            }
        }
        Err(r) => *r,
    }
}
