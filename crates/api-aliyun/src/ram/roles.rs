//! RAM roles: CreateRole, GetRole, AttachPolicyToRole (for STS AssumeRole).

use super::{check_name, internal};
use crate::Ctx;
use crate::actions::{Out, obj};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::{PolicyGrammar, RoleRecord};
use nubis_engine::{CredentialError, Engine};
use nubis_pipeline::shapes::iso_seconds;
use serde_json::json;

fn role_json(engine: &Engine, r: &RoleRecord) -> serde_json::Value {
    let acct = engine
        .account(&r.account)
        .map(|a| a.aliyun_account_id)
        .unwrap_or_default();
    json!({
        "RoleId": r.id.to_string(),
        "RoleName": r.name,
        "Arn": format!("acs:ram::{acct}:role/{}", r.name.to_lowercase()),
        "Description": r.description,
        "AssumeRolePolicyDocument": r.trust_policy,
        "MaxSessionDuration": r.max_session_secs,
        "CreateDate": iso_seconds(r.created_at_ms),
        "UpdateDate": iso_seconds(r.updated_at_ms.max(r.created_at_ms)),
        "IsServiceLinkedRole": false,
        "AllowConsoleLogin": false,
    })
}

fn role_not_found() -> ApiError {
    ApiError::new(404, "EntityNotExist.Role", "The specified Role not exists.")
}

pub(crate) async fn create_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    check_name("RoleName", &name, 64, b".-")?;
    let doc = p.required("AssumeRolePolicyDocument")?;
    let description = p.opt("Description").unwrap_or_default();
    if description.chars().count() > 1024 {
        return Err(ApiError::new(
            400,
            "InvalidParameter.Description.Length",
            "The parameter - \"Description\" beyond the length limit.",
        ));
    }
    let secs = match p.opt("MaxSessionDuration") {
        None => 3600,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (3600..=43200).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidParameter.MaxSessionDuration",
                    "MaxSessionDuration must be between 3600 and 43200.",
                )
            })?,
    };
    let role = engine
        .create_role(
            &ctx.principal.account,
            &name,
            PolicyGrammar::Ram,
            &doc,
            &description,
            secs,
        )
        .await
        .map_err(|e| match e {
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.Role",
                "The role does already EXIST.",
            ),
            CredentialError::Invalid {
                name: "RoleFull", ..
            } => ApiError::new(
                409,
                "LimitExceeded.Role",
                "The count of roles beyond the current limits.",
            ),
            CredentialError::Invalid { reason, .. } => {
                ApiError::new(400, "MalformedPolicyDocument", reason)
            }
            e => internal(e),
        })?;
    let mut out = role_json(engine, &role);
    if let Some(m) = out.as_object_mut() {
        m.remove("UpdateDate");
        m.remove("IsServiceLinkedRole");
    }
    Ok(obj(json!({ "Role": out })))
}

pub(crate) async fn get_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    let role = engine
        .roles_of(&ctx.principal.account)
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case(&name))
        .ok_or_else(role_not_found)?;
    Ok(obj(json!({ "Role": role_json(engine, &role) })))
}

pub(crate) async fn attach_policy_to_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let account = &ctx.principal.account;
    let kind = p.required("PolicyType")?;
    let name = p.required("PolicyName")?;
    let role_name = p.required("RoleName")?;
    if kind != "System" && kind != "Custom" {
        return Err(ApiError::new(
            400,
            "InvalidParameter.PolicyType",
            "The parameter - \"PolicyType\" is incorrect.",
        ));
    }
    let role = engine
        .roles_of(account)
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case(&role_name))
        .ok_or_else(role_not_found)?;
    // nubis has no system policies: only the account's RAM (custom) policies exist.
    let policy = engine
        .policies(account)
        .ok()
        .and_then(|ps| {
            ps.into_iter()
                .find(|x| x.name == name && x.grammar == PolicyGrammar::Ram)
        })
        .filter(|_| kind == "Custom")
        .ok_or_else(|| ApiError::new(404, "EntityNotExist.Policy", "The policy does not exist."))?;
    engine
        .attach_role_policy(account, role.id, policy.id)
        .await
        .map_err(|e| match e {
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.Role.Policy",
                "The policy has already been attached to the role.",
            ),
            CredentialError::Invalid { .. } => ApiError::new(
                409,
                "LimitExceeded.Role.Policy",
                "The count of policies attached to the role beyond the current limits.",
            ),
            e => internal(e),
        })?;
    Ok(Default::default())
}
