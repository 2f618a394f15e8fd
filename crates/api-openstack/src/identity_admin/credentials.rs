//! Keystone credentials (`/v3/credentials`) and EC2 credentials
//! (`/v3/users/{user_id}/credentials/OS-EC2`). Who may see a credential is Keystone's
//! default rule `admin_or_system_reader_or_owner` (changes: admin or owner), checked here on
//! the credential's user since the path names only the credential.

use super::{bad, body_obj, err, ks_err, listing, one, opt_str, param, q, query, url};
use crate::Reply;
use crate::identity::Ctx;
use nubis_engine::keystone::Credential;
use nubis_engine::keystone::credentials::Consumer;
use nubis_engine::keystone::credentials::NewCredential;
use serde_json::{Value, json};

fn view(c: &Ctx<'_>, cr: &Credential) -> Value {
    json!({
        "id": cr.id,
        "user_id": cr.user_id,
        "project_id": cr.project_id,
        "type": cr.kind,
        "blob": cr.blob,
        "links": {"self": url(c, &format!("credentials/{}", cr.id))},
    })
}

/// The caller, and whether it is an admin or (for reads) a system reader.
fn caller(c: &Ctx<'_>, read: bool) -> (String, bool) {
    let Some(t) = c.caller.as_ref() else {
        return (String::new(), false);
    };
    let system_reader =
        t.scope == crate::tokens::Scope::System && t.roles.iter().any(|r| r == "reader");
    (t.user_id.clone(), t.is_admin() || (read && system_reader))
}

fn denied(action: &str) -> Reply {
    err(
        403,
        &format!("You are not authorized to perform the requested action: {action}."),
    )
}

/// The credential of the path, when the caller may act on it.
fn owned(c: &Ctx<'_>, read: bool, action: &str) -> Result<Credential, Box<Reply>> {
    let cr: Credential = c
        .api
        .engine
        .ks_get(param(c, 0))
        .map_err(|e| Box::new(ks_err(e)))?;
    let (me, privileged) = caller(c, read);
    if !privileged && cr.user_id != me {
        return Err(Box::new(denied(action)));
    }
    Ok(cr)
}

pub(crate) async fn list(c: &Ctx<'_>) -> Reply {
    let qs = query(c);
    let (me, privileged) = caller(c, true);
    let items: Vec<Value> = c
        .api
        .engine
        .ks_credentials()
        .iter()
        .filter(|cr| privileged || cr.user_id == me)
        .filter(|cr| q(&qs, "user_id").is_none_or(|u| cr.user_id == u))
        .filter(|cr| q(&qs, "type").is_none_or(|t| cr.kind == t))
        .map(|cr| view(c, cr))
        .collect();
    listing(c, "credentials", items)
}

pub(crate) async fn show(c: &Ctx<'_>) -> Reply {
    match owned(c, true, "identity:get_credential") {
        Ok(cr) => one(200, "credential", view(c, &cr)),
        Err(r) => *r,
    }
}

pub(crate) async fn create(c: &Ctx<'_>) -> Reply {
    let r = async {
        let m = body_obj(c, "credential")?;
        let new = NewCredential {
            user_id: opt_str(&m, "user_id")?
                .ok_or_else(|| bad(400, "Invalid input for field 'user_id': required."))?,
            project_id: opt_str(&m, "project_id")?,
            kind: opt_str(&m, "type")?
                .ok_or_else(|| bad(400, "Invalid input for field 'type': required."))?,
            blob: opt_str(&m, "blob")?
                .ok_or_else(|| bad(400, "Invalid input for field 'blob': required."))?,
        };
        let (me, admin) = caller(c, false);
        if !admin && new.user_id != me {
            return Err(Box::new(denied("identity:create_credential")));
        }
        let cr = (c.api.engine.ks_create_credential(new).await).map_err(|e| Box::new(ks_err(e)))?;
        Ok(one(201, "credential", view(c, &cr)))
    };
    r.await.unwrap_or_else(|e: Box<Reply>| *e)
}

pub(crate) async fn update(c: &Ctx<'_>) -> Reply {
    let r = async {
        let m = body_obj(c, "credential")?;
        let cr = owned(c, false, "identity:update_credential")?;
        // Keystone: the owner, type and project of a credential do not change.
        for (k, now) in [
            ("user_id", Some(cr.user_id.as_str())),
            ("type", Some(cr.kind.as_str())),
            ("project_id", cr.project_id.as_deref()),
        ] {
            if m.contains_key(k) && opt_str(&m, k)?.as_deref() != now {
                return Err(bad(
                    400,
                    &format!("Invalid input for field '{k}': it cannot be changed."),
                ));
            }
        }
        let blob = opt_str(&m, "blob")?;
        let cr = (c.api.engine.ks_update_credential(&cr.id, blob).await)
            .map_err(|e| Box::new(ks_err(e)))?;
        Ok(one(200, "credential", view(c, &cr)))
    };
    r.await.unwrap_or_else(|e: Box<Reply>| *e)
}

pub(crate) async fn delete(c: &Ctx<'_>) -> Reply {
    match owned(c, false, "identity:delete_credential") {
        Ok(cr) => match c.api.engine.ks_delete::<Credential>(&cr.id).await {
            Ok(()) => Reply::empty(204),
            Err(e) => ks_err(e),
        },
        Err(r) => *r,
    }
}

// -- OS-EC2 -------------------------------------------------------------------------------

/// An EC2 credential as Keystone's OS-EC2 shows it: the blob's keys spread out.
fn ec2_view(c: &Ctx<'_>, cr: &Credential) -> Value {
    let blob: Value = serde_json::from_str(&cr.blob).unwrap_or(Value::Null);
    let access = blob.get("access").cloned().unwrap_or(Value::Null);
    json!({
        "user_id": cr.user_id,
        "tenant_id": cr.project_id,
        "access": access,
        "secret": blob.get("secret").cloned().unwrap_or(Value::Null),
        "trust_id": blob.get("trust_id").cloned().unwrap_or(Value::Null),
        "links": {"self": url(c, &format!(
            "users/{}/credentials/OS-EC2/{}",
            cr.user_id,
            access.as_str().unwrap_or_default()
        ))},
    })
}

/// The user's EC2 credential with access key `access`.
fn ec2_of(c: &Ctx<'_>) -> Result<Credential, Box<Reply>> {
    let (user, access) = (param(c, 0), param(c, 1));
    let e = &c.api.engine;
    e.ks_user(user).map_err(|x| Box::new(ks_err(x)))?;
    e.ks_get::<Credential>(&nubis_engine::keystone::credentials::ec2_id(access))
        .ok()
        .filter(|cr| cr.user_id == user && cr.kind == "ec2")
        .ok_or_else(|| Box::new(err(404, "Could not find credential: ec2 credential.")))
}

pub(crate) async fn ec2_create(c: &Ctx<'_>) -> Reply {
    let r = async {
        let body: Value = serde_json::from_slice(c.req.body)
            .map_err(|_| bad(400, "Malformed request body: not JSON."))?;
        let Some(project) = body.get("tenant_id").and_then(Value::as_str) else {
            return Err(bad(400, "Expecting to find tenant_id in request body."));
        };
        let cr = (c.api.engine.ks_create_ec2(param(c, 0), project).await)
            .map_err(|e| Box::new(ks_err(e)))?;
        Ok(one(201, "credential", ec2_view(c, &cr)))
    };
    r.await.unwrap_or_else(|e: Box<Reply>| *e)
}

pub(crate) async fn ec2_list(c: &Ctx<'_>) -> Reply {
    let user = param(c, 0);
    if let Err(e) = c.api.engine.ks_user(user) {
        return ks_err(e);
    }
    let items: Vec<Value> = (c.api.engine.ks_credentials().iter())
        .filter(|cr| cr.user_id == user && cr.kind == "ec2")
        .map(|cr| ec2_view(c, cr))
        .collect();
    Reply::json(
        200,
        &json!({"credentials": items, "links": {
            "self": url(c, &format!("users/{user}/credentials/OS-EC2")),
            "previous": null, "next": null}}),
    )
}

pub(crate) async fn ec2_show(c: &Ctx<'_>) -> Reply {
    match ec2_of(c) {
        Ok(cr) => one(200, "credential", ec2_view(c, &cr)),
        Err(r) => *r,
    }
}

pub(crate) async fn ec2_delete(c: &Ctx<'_>) -> Reply {
    match ec2_of(c) {
        Ok(cr) => match c.api.engine.ks_delete::<Credential>(&cr.id).await {
            Ok(()) => Reply::empty(204),
            Err(e) => ks_err(e),
        },
        Err(r) => *r,
    }
}

// -- OS-OAUTH1 consumers -------------------------------------------------------------------

fn consumer_view(c: &Ctx<'_>, k: &Consumer) -> Value {
    json!({
        "id": k.id,
        "description": k.description,
        "links": {"self": url(c, &format!("OS-OAUTH1/consumers/{}", k.id))},
    })
}

/// The body's `consumer.description` (optional; a string).
fn consumer_description(c: &Ctx<'_>) -> Result<String, Box<Reply>> {
    let m = body_obj(c, "consumer")?;
    if let Some(k) = m.keys().find(|k| k.as_str() != "description") {
        return Err(bad(
            400,
            &format!("Invalid input for field '{k}': additional properties are not allowed."),
        ));
    }
    Ok(opt_str(&m, "description")?.unwrap_or_default())
}

pub(crate) async fn consumer_create(c: &Ctx<'_>) -> Reply {
    let d = match consumer_description(c) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match c.api.engine.ks_create_consumer(&d).await {
        Ok((k, secret)) => {
            let mut v = consumer_view(c, &k);
            v["secret"] = json!(secret);
            one(201, "consumer", v)
        }
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn consumer_update(c: &Ctx<'_>) -> Reply {
    let d = match consumer_description(c) {
        Ok(d) => d,
        Err(r) => return *r,
    };
    match c.api.engine.ks_update_consumer(param(c, 0), &d).await {
        Ok(k) => one(200, "consumer", consumer_view(c, &k)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn consumer_show(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_get::<Consumer>(param(c, 0)) {
        Ok(k) => one(200, "consumer", consumer_view(c, &k)),
        Err(e) => ks_err(e),
    }
}

pub(crate) async fn consumer_list(c: &Ctx<'_>) -> Reply {
    let items: Vec<Value> = (c.api.engine.ks_list::<Consumer>().iter())
        .map(|k| consumer_view(c, k))
        .collect();
    Reply::json(
        200,
        &json!({"consumers": items, "links": {
            "self": url(c, "OS-OAUTH1/consumers"), "previous": null, "next": null}}),
    )
}

pub(crate) async fn consumer_delete(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_delete::<Consumer>(param(c, 0)).await {
        Ok(()) => Reply::empty(204),
        Err(e) => ks_err(e),
    }
}
