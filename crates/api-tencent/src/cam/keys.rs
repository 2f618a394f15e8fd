//! CAM access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey.
//!
//! `TargetUin` names whose keys: absent, the caller's own; the owner UIN, the account root's
//! (refused to a sub-user: `OperationDenied.SubUin`); a sub-user's UIN, that sub-user's. A
//! key of anyone else does not exist here (`ResourceNotFound.SecretNotExist`). The limit of
//! two keys per principal is the engine's (`OperationDenied.AccessKeyOverLimit`, D15).
//! `Description` is checked (1–1024 of `[\w+=,.@:/-]`) but not kept: listings show none.

use super::{Out, iam_err, owner_uin};
use crate::Ctx;
use crate::actions::obj;
use crate::actions::params::required;
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_engine::{Engine, IamError, KeyInfo, Who};
use nubis_pipeline::shapes::{datetime, key_status};
use serde::Deserialize;
use serde_json::{Value, json};

/// Whose keys `TargetUin` names (see the module docs).
fn target(engine: &Engine, ctx: &Ctx, uin: Option<Int>) -> Result<Who, ApiError> {
    let Some(Int(uin)) = uin else {
        return Ok(Who::of(&ctx.principal));
    };
    let bad = || {
        ApiError::new(
            "InvalidParameter.UserNotExist",
            format!("The user with Uin {uin} does not exist"),
        )
    };
    let uin = u64::try_from(uin).map_err(|_| bad())?;
    if uin == owner_uin(engine, ctx) {
        if ctx.principal.sub_user.is_some() {
            return Err(ApiError::new(
                "OperationDenied.SubUin",
                "A sub-user cannot manage the access keys of the account root",
            ));
        }
        return Ok(Who::Root);
    }
    engine
        .iam_user_by_id(&ctx.principal.account, uin)
        .map(|u| Who::User(u.id))
        .map_err(|e| match e {
            IamError::UserNotFound(_) => bad(),
            e => iam_err(e),
        })
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "AccessKeyId": k.id,
        "Status": key_status(k.enabled),
        "CreateTime": datetime(k.created_at_ms),
        "Description": "",
    })
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    let Some(d) = d else { return Ok(()) };
    let ok = (1..=1024).contains(&d.chars().count())
        && d.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || "+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidParameter.ParamError",
            "The value of `Description` must be 1-1024 of letters, digits and _ + = , . @ : / -",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateAccessKeyReq {
    target_uin: Option<Int>,
    description: Option<String>,
}

pub(super) async fn create_access_key(engine: &Engine, ctx: &Ctx, r: CreateAccessKeyReq) -> Out {
    check_description(&r.description)?;
    let who = target(engine, ctx, r.target_uin)?;
    let (key, secret) = engine
        .iam_create_key(&ctx.principal.account, who)
        .await
        .map_err(iam_err)?;
    let mut k = key_json(&key);
    k["SecretAccessKey"] = json!(secret);
    k["Description"] = json!(r.description.unwrap_or_default());
    Ok(obj(json!({ "AccessKey": k })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListAccessKeysReq {
    target_uin: Option<Int>,
}

pub(super) async fn list_access_keys(engine: &Engine, ctx: &Ctx, r: ListAccessKeysReq) -> Out {
    let who = target(engine, ctx, r.target_uin)?;
    let keys = engine
        .iam_keys(&ctx.principal.account, who)
        .map_err(iam_err)?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(obj(json!({ "AccessKeys": list })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct UpdateAccessKeyReq {
    access_key_id: Option<String>,
    status: Option<String>,
    target_uin: Option<Int>,
}

pub(super) async fn update_access_key(engine: &Engine, ctx: &Ctx, r: UpdateAccessKeyReq) -> Out {
    let id = required(r.access_key_id, "AccessKeyId")?;
    let enabled = match required(r.status, "Status")?.as_str() {
        "Active" => true,
        "Inactive" => false,
        other => {
            return Err(ApiError::new(
                "InvalidParameter.ParamError",
                format!("The value of `Status` must be Active or Inactive, not `{other}`"),
            ));
        }
    };
    let who = target(engine, ctx, r.target_uin)?;
    engine
        .iam_set_key_enabled(&ctx.principal.account, who, &id, enabled)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteAccessKeyReq {
    access_key_id: Option<String>,
    target_uin: Option<Int>,
}

pub(super) async fn delete_access_key(engine: &Engine, ctx: &Ctx, r: DeleteAccessKeyReq) -> Out {
    let id = required(r.access_key_id, "AccessKeyId")?;
    let who = target(engine, ctx, r.target_uin)?;
    engine
        .iam_delete_key(&ctx.principal.account, who, &id)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}
