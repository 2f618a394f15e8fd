//! CAM custom policies: CreatePolicy, GetPolicy, ListPolicies, DeletePolicy,
//! AttachUserPolicy, DetachUserPolicy, ListAttachedUserPolicies.
//!
//! Only the account's own custom policies in CAM's grammar exist here (nubis has no preset
//! `QCS` policies; a RAM policy of the same account belongs to the Alibaba API). Attaching an
//! attached policy and detaching an unattached one succeed (the call is idempotent, as
//! CAM's error lists name no code for either). Deleting an attached policy detaches it.

use super::{Out, iam_err, id_param, owner_uin};
use crate::Ctx;
use crate::actions::obj;
use crate::actions::params::required;
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::{PolicyGrammar, PolicyRecord};
use nubis_engine::{Dependents, Engine, IamError};
use nubis_pipeline::shapes::{ascii_name, datetime};
use serde::Deserialize;
use serde_json::{Value, json};

const CAM: Option<PolicyGrammar> = Some(PolicyGrammar::Cam);

/// PolicyIds one DeletePolicy takes (`InvalidParameter.OperatePoliciesOverLimit` past it).
const MAX_DELETE: usize = 100;

fn check_name(name: &str) -> Result<(), ApiError> {
    if ascii_name(name, 1..=128, b"+=,.@_-") {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidParameter.PolicyNameError",
            format!(
                "The policy name `{name}` is invalid: 1-128 of A-Z, a-z, 0-9 and + = , . @ _ -"
            ),
        ))
    }
}

/// Page and Rp: 1–200 each (defaults 1 and 20).
pub(super) fn page(page: Option<Int>, rp: Option<Int>) -> Result<(usize, usize), ApiError> {
    let get = |v: Option<Int>, name: &str, default: i64| {
        let n = v.map_or(default, |i| i.0);
        if (1..=200).contains(&n) {
            Ok(n as usize)
        } else {
            Err(ApiError::new(
                "InvalidParameter.ParamError",
                format!("The value of `{name}` must be from 1 to 200, not {n}"),
            ))
        }
    };
    let page = get(page, "Page", 1)?;
    let rp = get(rp, "Rp", 20)?;
    Ok(((page - 1) * rp, rp))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Tag {
    #[allow(dead_code)] // checked for shape only: nubis keeps no policy tags
    key: String,
    #[allow(dead_code)]
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreatePolicyReq {
    policy_name: Option<String>,
    policy_document: Option<String>,
    description: Option<String>,
    tags: Option<Vec<Tag>>,
}

pub(super) async fn create_policy(engine: &Engine, ctx: &Ctx, r: CreatePolicyReq) -> Out {
    let name = required(r.policy_name, "PolicyName")?;
    let document = required(r.policy_document, "PolicyDocument")?;
    check_name(&name)?;
    let description = r.description.unwrap_or_default();
    if description.len() > 300 {
        return Err(ApiError::new(
            "InvalidParameter.DescriptionLengthOverlimit",
            "The policy description is longer than 300 bytes",
        ));
    }
    if r.tags.as_ref().is_some_and(|t| t.len() > 50) {
        return Err(ApiError::new(
            "InvalidParameter.ParamError",
            "At most 50 tags per policy",
        ));
    }
    let p = engine
        .iam_create_policy(
            &ctx.principal.account,
            &name,
            PolicyGrammar::Cam,
            &document,
            &description,
        )
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({ "PolicyId": p.id })))
}

/// A policy of the caller's account by ID; the code of an unknown one is
/// `ResourceNotFound.PolicyIdNotFound`.
fn policy(engine: &Engine, ctx: &Ctx, id: u64) -> Result<PolicyRecord, ApiError> {
    engine
        .iam_policy_by_id(&ctx.principal.account, id, CAM)
        .map_err(iam_err)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct GetPolicyReq {
    policy_id: Option<Int>,
}

pub(super) async fn get_policy(engine: &Engine, ctx: &Ctx, r: GetPolicyReq) -> Out {
    let id = id_param(r.policy_id, "PolicyId", "InvalidParameter.PolicyIdError")?;
    let p = policy(engine, ctx, id)?;
    let t = datetime(p.created_at_ms);
    Ok(obj(json!({
        "PolicyName": p.name,
        "Description": p.description,
        "Type": 1,
        "AddTime": t,
        "UpdateTime": t,
        "PolicyDocument": p.document,
        "PresetAlias": Value::Null,
        "IsServiceLinkedRolePolicy": 0,
        "Tags": [],
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListPoliciesReq {
    rp: Option<Int>,
    page: Option<Int>,
    scope: Option<String>,
    keyword: Option<String>,
}

pub(super) async fn list_policies(engine: &Engine, ctx: &Ctx, r: ListPoliciesReq) -> Out {
    let (offset, rp) = page(r.page, r.rp)?;
    let local = match r.scope.as_deref().unwrap_or("All") {
        "All" | "Local" => true,
        "QCS" => false,
        other => {
            return Err(ApiError::new(
                "InvalidParameter.ScopeError",
                format!("The value of `Scope` must be All, QCS or Local, not `{other}`"),
            ));
        }
    };
    if r.keyword.as_ref().is_some_and(|k| k.chars().count() > 128) {
        return Err(ApiError::new(
            "InvalidParameter.SearchKeywordLengthError",
            "The keyword is longer than 128 characters",
        ));
    }
    let all: Vec<PolicyRecord> = if local {
        engine
            .iam_policies(&ctx.principal.account, CAM)
            .map_err(iam_err)?
    } else {
        Vec::new()
    };
    let matching: Vec<&PolicyRecord> = all
        .iter()
        .filter(|p| r.keyword.as_deref().is_none_or(|k| p.name.contains(k)))
        .collect();
    let list: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(rp)
        .map(|p| {
            let n = engine.iam_attachment_count(p.id);
            let t = datetime(p.created_at_ms);
            json!({
                "PolicyId": p.id,
                "PolicyName": p.name,
                "AddTime": t,
                "UpdateTime": t,
                "Type": 1,
                "Description": p.description,
                "CreateMode": 2,
                "Attachments": n,
                "ServiceType": Value::Null,
                "IsAttached": u8::from(n > 0),
                "Deactived": 0,
                "DeactivedDetail": [],
                "IsServiceLinkedPolicy": 0,
                "AttachEntityCount": n,
                "AttachEntityBoundaryCount": 0,
            })
        })
        .collect();
    Ok(obj(json!({
        "TotalNum": matching.len(),
        "List": list,
        "ServiceTypeList": [],
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeletePolicyReq {
    policy_id: Option<Vec<Int>>,
}

/// All or nothing: an unknown ID refuses the batch (`ResourceNotFound.PolicyIdNotFound`).
pub(super) async fn delete_policy(engine: &Engine, ctx: &Ctx, r: DeletePolicyReq) -> Out {
    let ids = required(r.policy_id, "PolicyId")?;
    if ids.is_empty() {
        return Err(ApiError::new(
            "InvalidParameter.ParamError",
            "`PolicyId` must name at least one policy",
        ));
    }
    if ids.len() > MAX_DELETE {
        return Err(ApiError::new(
            "InvalidParameter.OperatePoliciesOverLimit",
            format!("At most {MAX_DELETE} policies per call"),
        ));
    }
    let ids: Vec<u64> = ids
        .into_iter()
        .map(|i| id_param(Some(i), "PolicyId", "InvalidParameter.PolicyIdError"))
        .collect::<Result<_, _>>()?;
    engine
        .iam_delete_policies(
            &ctx.principal.account,
            &ids,
            PolicyGrammar::Cam,
            Dependents::Remove,
        )
        .await
        .map_err(iam_err)?;
    Ok(obj(json!({})))
}

/// Attach or detach; idempotent (see the module docs).
async fn set_attached(engine: &Engine, ctx: &Ctx, policy: u64, uin: u64, on: bool) -> Out {
    match engine
        .iam_set_attached(&ctx.principal.account, uin, policy, CAM, on)
        .await
    {
        Ok(()) | Err(IamError::AlreadyAttached { .. } | IamError::NotAttached { .. }) => {
            Ok(obj(json!({})))
        }
        Err(e) => Err(iam_err(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct AttachUserPolicyReq {
    policy_id: Option<Int>,
    attach_uin: Option<Int>,
}

pub(super) async fn attach_user_policy(engine: &Engine, ctx: &Ctx, r: AttachUserPolicyReq) -> Out {
    let policy = id_param(r.policy_id, "PolicyId", "InvalidParameter.PolicyIdError")?;
    let uin = id_param(r.attach_uin, "AttachUin", "InvalidParameter.UserNotExist")?;
    set_attached(engine, ctx, policy, uin, true).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DetachUserPolicyReq {
    policy_id: Option<Int>,
    detach_uin: Option<Int>,
}

pub(super) async fn detach_user_policy(engine: &Engine, ctx: &Ctx, r: DetachUserPolicyReq) -> Out {
    let policy = id_param(r.policy_id, "PolicyId", "InvalidParameter.PolicyIdError")?;
    let uin = id_param(r.detach_uin, "DetachUin", "InvalidParameter.UserNotExist")?;
    set_attached(engine, ctx, policy, uin, false).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ListAttachedReq {
    target_uin: Option<Int>,
    page: Option<Int>,
    rp: Option<Int>,
}

pub(super) async fn list_attached_user_policies(
    engine: &Engine,
    ctx: &Ctx,
    r: ListAttachedReq,
) -> Out {
    let uin = id_param(r.target_uin, "TargetUin", "InvalidParameter.ParamError")?;
    let (offset, rp) = page(r.page, r.rp)?;
    let attached: Vec<PolicyRecord> = engine
        .iam_attached(&ctx.principal.account, uin)
        .map_err(iam_err)?
        .into_iter()
        .filter(|p| p.grammar == PolicyGrammar::Cam)
        .collect();
    let owner = owner_uin(engine, ctx).to_string();
    let list: Vec<Value> = attached
        .iter()
        .skip(offset)
        .take(rp)
        .map(|p| {
            let mut v = attached_policy(p);
            v["Remark"] = Value::from(p.description.as_str());
            v["OperateOwnerUin"] = Value::from(owner.as_str());
            v["OperateUin"] = Value::from(owner.as_str());
            v["OperateUinType"] = Value::from(0);
            v
        })
        .collect();
    Ok(obj(json!({ "TotalNum": attached.len(), "List": list })))
}

/// The fields a listing of attached policies shows for each (a user's, a role's): nubis's
/// policies are all custom ones (`PolicyType` User, `CreateMode` 2), never deactivated.
pub(super) fn attached_policy(p: &PolicyRecord) -> Value {
    json!({
        "PolicyId": p.id,
        "PolicyName": p.name,
        "AddTime": datetime(p.created_at_ms),
        "CreateMode": 2,
        "PolicyType": "User",
        "Deactived": 0,
        "DeactivedDetail": [],
    })
}
