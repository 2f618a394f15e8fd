//! CAM sub-users: AddUser, GetUser, ListUsers, DeleteUser.
//!
//! nubis has no console, so a sub-user has no console login, password, phone or e-mail: the
//! parameters for them are checked for shape and not kept; the answers carry CAM's empty
//! values (ConsoleLogin 0, empty strings, Remark null). The sub-user's ID is both its Uin
//! and its Uid (D17).

use super::{Out, iam_err};
use crate::Ctx;
use crate::actions::obj;
use crate::actions::params::required;
use crate::errors::ApiError;
use crate::wire::{Bool, Int};
use nubis_core::SubUser;
use nubis_engine::{Dependents, Engine, Who};
use nubis_pipeline::shapes::{ascii_name, datetime};
use serde::Deserialize;
use serde_json::{Value, json};

/// CAM's user name rule (`[\w+=,.@-]`, 1–64) narrowed to what both clouds accept: RAM's
/// `[A-Za-z0-9.@_-]` (a sub-user is one principal for both APIs).
fn check_name(name: &str) -> Result<(), ApiError> {
    if ascii_name(name, 1..=64, b".@_-") {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidParameter.UserNameIllegal",
            format!("The user name `{name}` is illegal: 1-64 of A-Z, a-z, 0-9 and . @ _ -"),
        ))
    }
}

/// A 0/1 flag parameter.
fn flag(v: Option<Int>, name: &str) -> Result<bool, ApiError> {
    match v.map(|i| i.0) {
        None | Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(other) => Err(ApiError::new(
            "InvalidParameter.ParamError",
            format!("The value of `{name}` must be 0 or 1, not {other}"),
        )),
    }
}

/// A free-text parameter of at most `max` characters.
fn text(v: &Option<String>, name: &str, max: usize) -> Result<(), ApiError> {
    match v {
        Some(s) if s.chars().count() > max => Err(ApiError::new(
            "InvalidParameter.ParamError",
            format!("The value of `{name}` is longer than {max} characters"),
        )),
        _ => Ok(()),
    }
}

fn user_json(u: &SubUser) -> Value {
    json!({
        "Uin": u.id,
        "Name": u.name,
        "Uid": u.id,
        "Remark": Value::Null,
        "ConsoleLogin": 0,
        "PhoneNum": "",
        "CountryCode": "",
        "Email": "",
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct AddUserReq {
    name: Option<String>,
    remark: Option<String>,
    console_login: Option<Int>,
    use_api: Option<Int>,
    password: Option<String>,
    need_reset_password: Option<Int>,
    phone_num: Option<String>,
    country_code: Option<String>,
    email: Option<String>,
}

pub(super) async fn add_user(engine: &Engine, ctx: &Ctx, r: AddUserReq) -> Out {
    let name = required(r.name, "Name")?;
    check_name(&name)?;
    flag(r.console_login, "ConsoleLogin")?;
    flag(r.need_reset_password, "NeedResetPassword")?;
    let use_api = flag(r.use_api, "UseApi")?;
    text(&r.remark, "Remark", 1024)?;
    text(&r.password, "Password", 128)?;
    text(&r.phone_num, "PhoneNum", 32)?;
    text(&r.country_code, "CountryCode", 8)?;
    text(&r.email, "Email", 256)?;
    let account = &ctx.principal.account;
    let user = engine
        .iam_create_user(account, &name)
        .await
        .map_err(iam_err)?;
    let mut out = json!({"Uin": user.id, "Name": user.name, "Uid": user.id});
    if use_api {
        let (key, secret) = engine
            .iam_create_key(account, Who::User(user.id))
            .await
            .map_err(iam_err)?;
        out["SecretId"] = json!(key.id);
        out["SecretKey"] = json!(secret);
    }
    Ok(obj(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct GetUserReq {
    name: Option<String>,
}

pub(super) async fn get_user(engine: &Engine, ctx: &Ctx, r: GetUserReq) -> Out {
    let name = required(r.name, "Name")?;
    let user = engine
        .iam_user(&ctx.principal.account, &name)
        .map_err(iam_err)?;
    let mut out = user_json(&user);
    out["RecentlyLoginIP"] = json!("");
    out["RecentlyLoginTime"] = json!("");
    Ok(obj(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListUsersReq {}

pub(super) async fn list_users(engine: &Engine, ctx: &Ctx, _: ListUsersReq) -> Out {
    let users = engine.iam_users(&ctx.principal.account).map_err(iam_err)?;
    let data: Vec<Value> = users
        .iter()
        .map(|u| {
            let mut v = user_json(u);
            v["CreateTime"] = json!(datetime(u.created_at_ms));
            v["NickName"] = json!(u.name);
            v
        })
        .collect();
    Ok(obj(json!({ "Data": data })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteUserReq {
    name: Option<String>,
    force: Option<Bool>,
}

/// `Force=1` deletes the user's keys with it; without it a user with keys is refused
/// (`OperationDenied.HaveKeys`). Attached policies are detached either way (D16).
pub(super) async fn delete_user(engine: &Engine, ctx: &Ctx, r: DeleteUserReq) -> Out {
    let name = required(r.name, "Name")?;
    let account = &ctx.principal.account;
    let user = engine.iam_user(account, &name).map_err(iam_err)?;
    let keys = if r.force.is_some_and(|f| f.0) {
        Dependents::Remove
    } else {
        Dependents::Refuse
    };
    engine
        .iam_delete_user(account, user.id, keys, Dependents::Remove)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}
