//! RAM access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey.
//!
//! `UserName` names whose keys: absent, the caller's own (the account root's, or the calling
//! RAM user's); a user of the account, that user's. A key of anyone else does not exist
//! here (`EntityNotExist.User.AccessKey`). Two keys per principal (`LimitExceeded.User.AccessKey`,
//! D15). Key IDs are nubis's one shape for both clouds (`AKID…`), not `LTAI…`.

use super::{Out, iam_err};
use crate::Ctx;
use crate::actions::obj;
use crate::errors::ApiError;
use crate::params::Params;
use nubis_engine::{Engine, KeyInfo, Who};
use nubis_pipeline::shapes::{iso_seconds, key_status};
use serde_json::{Value, json};

fn target(engine: &Engine, ctx: &Ctx, p: &Params) -> Result<Who, ApiError> {
    match p.opt("UserName") {
        None => Ok(Who::of(&ctx.principal)),
        Some(name) => engine
            .iam_user(&ctx.principal.account, &name)
            .map(|u| Who::User(u.id))
            .map_err(iam_err),
    }
}

fn key_json(k: &KeyInfo) -> Value {
    json!({
        "AccessKeyId": k.id,
        "Status": key_status(k.enabled),
        "CreateDate": iso_seconds(k.created_at_ms),
    })
}

pub(super) async fn create_access_key(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let who = target(engine, ctx, p)?;
    let (key, secret) = engine
        .iam_create_key(&ctx.principal.account, who)
        .await
        .map_err(iam_err)?;
    let mut k = key_json(&key);
    k["AccessKeySecret"] = json!(secret);
    Ok(obj(json!({ "AccessKey": k })))
}

pub(super) async fn list_access_keys(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let who = target(engine, ctx, p)?;
    let keys = engine
        .iam_keys(&ctx.principal.account, who)
        .map_err(iam_err)?;
    let list: Vec<Value> = keys.iter().map(key_json).collect();
    Ok(obj(json!({ "AccessKeys": { "AccessKey": list } })))
}

pub(super) async fn update_access_key(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let id = p.required("UserAccessKeyId")?;
    let enabled = match p.required("Status")?.as_str() {
        "Active" => true,
        "Inactive" => false,
        _ => {
            return Err(ApiError::new(
                400,
                "InvalidParameter.Status",
                "The parameter - \"Status\" must be Active or Inactive.",
            ));
        }
    };
    let who = target(engine, ctx, p)?;
    engine
        .iam_set_key_enabled(&ctx.principal.account, who, &id, enabled)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}

pub(super) async fn delete_access_key(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let id = p.required("UserAccessKeyId")?;
    let who = target(engine, ctx, p)?;
    engine
        .iam_delete_key(&ctx.principal.account, who, &id)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}
