//! RAM custom policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! AttachPolicyToUser, DetachPolicyFromUser, ListPoliciesForUser.
//!
//! Only the account's custom policies in RAM's grammar exist (`PolicyType` `Custom`; nubis
//! has no `System` policies, so one named with `System` does not exist); one default
//! version, `v1`. A CAM policy of the same account belongs to the Tencent API. Deleting an
//! attached policy is refused (`DeleteConflict.Policy.User`).

use super::{Out, check_text, iam_err, page, paging};
use crate::Ctx;
use crate::actions::obj;
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::{PolicyGrammar, PolicyRecord};
use nubis_engine::{Dependents, Engine, IamError};
use nubis_pipeline::shapes::iso_seconds;
use serde_json::{Value, json};

const RAM: Option<PolicyGrammar> = Some(PolicyGrammar::Ram);

/// `PolicyName`: 1–128 of letters, digits and `-`.
fn check_name(name: &str) -> Result<(), ApiError> {
    check_text(name, "PolicyName", 1, 128, |c| {
        c.is_ascii_alphanumeric() || c == '-'
    })
}

/// `PolicyType`, required where RAM requires it: `Custom` (true) or `System` (false).
fn policy_type(p: &Params, required: bool) -> Result<Option<bool>, ApiError> {
    let v = if required {
        Some(p.required("PolicyType")?)
    } else {
        p.opt("PolicyType")
    };
    match v.as_deref() {
        None => Ok(None),
        Some("Custom") => Ok(Some(true)),
        Some("System") => Ok(Some(false)),
        Some(_) => Err(ApiError::new(
            400,
            "InvalidParameter.PolicyType",
            "The parameter - \"PolicyType\" is incorrect.",
        )),
    }
}

/// The custom policy named `PolicyName` (of type `PolicyType`) of the caller's account.
fn named(engine: &Engine, ctx: &Ctx, p: &Params) -> Result<PolicyRecord, ApiError> {
    let name = p.required("PolicyName")?;
    if policy_type(p, true)? == Some(false) {
        return Err(iam_err(IamError::PolicyNotFound(name)));
    }
    engine
        .iam_policy(&ctx.principal.account, &name, RAM)
        .map_err(iam_err)
}

fn policy_json(engine: &Engine, p: &PolicyRecord) -> Value {
    json!({
        "PolicyName": p.name,
        "PolicyType": "Custom",
        "Description": p.description,
        "DefaultVersion": "v1",
        "AttachmentCount": engine.iam_attachment_count(p.id),
        "CreateDate": iso_seconds(p.created_at_ms),
        "UpdateDate": iso_seconds(p.created_at_ms),
    })
}

pub(super) async fn create_policy(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("PolicyName")?;
    check_name(&name)?;
    let document = p.required("PolicyDocument")?;
    check_text(&document, "PolicyDocument", 1, 6144, |_| true)?;
    let description = p.opt("Description").unwrap_or_default();
    if !description.is_empty() {
        check_text(&description, "Description", 1, 1024, |_| true)?;
    }
    let rec = engine
        .iam_create_policy(
            &ctx.principal.account,
            &name,
            PolicyGrammar::Ram,
            &document,
            &description,
        )
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({"Policy": {
        "PolicyName": rec.name,
        "PolicyType": "Custom",
        "Description": rec.description,
        "DefaultVersion": "v1",
        "CreateDate": iso_seconds(rec.created_at_ms),
    }})))
}

pub(super) async fn get_policy(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let rec = named(engine, ctx, p)?;
    let mut policy = policy_json(engine, &rec);
    policy["PolicyDocument"] = json!(rec.document);
    Ok(obj(json!({
        "Policy": policy,
        "DefaultPolicyVersion": {
            "VersionId": "v1",
            "IsDefaultVersion": true,
            "PolicyDocument": rec.document,
            "CreateDate": iso_seconds(rec.created_at_ms),
        },
    })))
}

pub(super) async fn list_policies(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let custom = policy_type(p, false)?.unwrap_or(true);
    let all = if custom {
        engine
            .iam_policies(&ctx.principal.account, RAM)
            .map_err(iam_err)?
    } else {
        Vec::new()
    };
    let (page, next) = page(p, all, |r| r.name.as_str())?;
    let list: Vec<Value> = page
        .iter()
        .map(|r| {
            let mut v = policy_json(engine, r);
            v["Tags"] = json!({ "Tag": [] });
            v
        })
        .collect();
    let mut out = json!({ "Policies": { "Policy": list } });
    paging(&mut out, next);
    Ok(obj(out))
}

pub(super) async fn delete_policy(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("PolicyName")?;
    let rec = engine
        .iam_policy(&ctx.principal.account, &name, RAM)
        .map_err(iam_err)?;
    engine
        .iam_delete_policies(
            &ctx.principal.account,
            &[rec.id],
            PolicyGrammar::Ram,
            Dependents::Refuse,
        )
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}

async fn set_attached(engine: &Engine, ctx: &Ctx, p: &Params, on: bool) -> Out {
    let rec = named(engine, ctx, p)?;
    let user = engine
        .iam_user(&ctx.principal.account, &p.required("UserName")?)
        .map_err(iam_err)?;
    engine
        .iam_set_attached(&ctx.principal.account, user.id, rec.id, RAM, on)
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}

pub(super) async fn attach_policy_to_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    set_attached(engine, ctx, p, true).await
}

pub(super) async fn detach_policy_from_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    set_attached(engine, ctx, p, false).await
}

pub(super) async fn list_policies_for_user(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let user = engine
        .iam_user(&ctx.principal.account, &p.required("UserName")?)
        .map_err(iam_err)?;
    let list: Vec<Value> = engine
        .iam_attached(&ctx.principal.account, user.id)
        .map_err(iam_err)?
        .iter()
        .filter(|r| r.grammar == PolicyGrammar::Ram)
        .map(|r| {
            json!({
                "PolicyName": r.name,
                "PolicyType": "Custom",
                "Description": r.description,
                "DefaultVersion": "v1",
                "AttachDate": iso_seconds(r.created_at_ms),
            })
        })
        .collect();
    Ok(obj(json!({ "Policies": { "Policy": list } })))
}
