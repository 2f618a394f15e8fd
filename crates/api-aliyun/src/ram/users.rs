//! RAM users: CreateUser, GetUser, ListUsers, DeleteUser.
//!
//! A RAM user is the account's sub-user (the same principal as the CAM sub-user); its ID is
//! the `UserId` (a numeric string, D17). nubis keeps no display name, phone, e-mail or
//! comments: the parameters are checked for shape and not kept, and the answers show the
//! user name as `DisplayName` and empty strings for the rest.

use super::{Out, check_text, check_user_name, iam_err, page, paging};
use crate::Ctx;
use crate::actions::obj;
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::SubUser;
use nubis_engine::{Dependents, Engine};
use nubis_pipeline::shapes::iso_seconds;
use serde_json::{Value, json};

fn user_json(u: &SubUser) -> Value {
    json!({
        "UserId": u.id.to_string(),
        "UserName": u.name,
        "DisplayName": u.name,
        "MobilePhone": "",
        "Email": "",
        "Comments": "",
        "CreateDate": iso_seconds(u.created_at_ms),
        "UpdateDate": iso_seconds(u.created_at_ms),
    })
}

pub(super) async fn create_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("UserName")?;
    check_user_name(&name)?;
    if let Some(d) = p.opt("DisplayName") {
        check_text(&d, "DisplayName", 1, 128, |c| !c.is_control())?;
    }
    if let Some(c) = p.opt("Comments") {
        check_text(&c, "Comments", 1, 128, |c| !c.is_control())?;
    }
    if let Some(m) = p.opt("MobilePhone") {
        let ok = m.split_once('-').is_some_and(|(cc, n)| {
            !cc.is_empty()
                && !n.is_empty()
                && cc.len() <= 4
                && n.len() <= 20
                && (cc.bytes().chain(n.bytes())).all(|b| b.is_ascii_digit())
        });
        if !ok {
            return Err(ApiError::new(
                400,
                "InvalidParameter.MobilePhone.Format",
                "The format of the parameter - \"MobilePhone\" is incorrect.",
            ));
        }
    }
    if let Some(e) = p.opt("Email") {
        let ok = e.len() <= 128
            && e.split_once('@')
                .is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
        if !ok {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Email.Format",
                "The format of the parameter - \"Email\" is incorrect.",
            ));
        }
    }
    let user = engine
        .iam_create_user(&ctx.principal.account, &name)
        .await
        .map_err(iam_err)?;
    let mut u = user_json(&user);
    if let Value::Object(m) = &mut u {
        m.remove("UpdateDate");
    }
    Ok(obj(json!({ "User": u })))
}

pub(super) async fn get_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("UserName")?;
    let user = engine
        .iam_user(&ctx.principal.account, &name)
        .map_err(iam_err)?;
    let mut u = user_json(&user);
    u["LastLoginDate"] = json!("");
    Ok(obj(json!({ "User": u })))
}

pub(super) async fn list_users(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let users = engine.iam_users(&ctx.principal.account).map_err(iam_err)?;
    let (users, next) = page(p, users, |u| u.name.as_str())?;
    let list: Vec<Value> = users.iter().map(user_json).collect();
    let mut out = json!({ "Users": { "User": list } });
    paging(&mut out, next);
    Ok(obj(out))
}

/// Refused while the user has access keys or attached policies (D16: RAM never cascades).
pub(super) async fn delete_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("UserName")?;
    let account = &ctx.principal.account;
    let user = engine.iam_user(account, &name).map_err(iam_err)?;
    engine
        .iam_delete_user(account, user.id, Dependents::Refuse, Dependents::Refuse)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}
