//! RAM roles (for STS AssumeRole): CreateRole, GetRole, ListRoles, UpdateRole, DeleteRole,
//! AttachPolicyToRole, DetachPolicyFromRole, ListPoliciesForRole. A role with attached
//! policies is not deleted (`DeleteConflict.Role.Policy`); a deleted role's sessions stop
//! working at once (docs/identity-wire.md §6).

use super::{check_name, internal, page, paging};
use crate::Ctx;
use crate::actions::{Out, obj};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::{PolicyGrammar, PolicyRecord, RoleRecord};
use nubis_engine::{CredentialError, Engine, RoleUpdate};
use nubis_pipeline::shapes::iso_seconds;
use serde_json::{Value, json};

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

/// A description (Description, NewDescription): at most 1024 characters.
fn description(p: &Params, name: &str) -> Result<Option<String>, ApiError> {
    let d = p.opt(name);
    if d.as_ref().is_some_and(|d| d.chars().count() > 1024) {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{name}.Length"),
            format!("The parameter - \"{name}\" beyond the length limit."),
        ));
    }
    Ok(d)
}

/// A session ceiling (MaxSessionDuration, NewMaxSessionDuration): 3600–43200 seconds.
fn max_session(p: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    p.opt(name)
        .map(|v| {
            v.parse::<u64>()
                .ok()
                .filter(|n| (3600..=43200).contains(n))
                .ok_or_else(|| {
                    ApiError::new(
                        400,
                        format!("InvalidParameter.{name}"),
                        format!("{name} must be between 3600 and 43200."),
                    )
                })
        })
        .transpose()
}

/// The caller's role named by the required `RoleName` (names compare case-insensitively).
fn named_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Result<RoleRecord, ApiError> {
    let name = p.required("RoleName")?;
    check_name("RoleName", &name, 64, b".-")?;
    engine
        .roles_of(&ctx.principal.account)
        .into_iter()
        .find(|r| r.name.eq_ignore_ascii_case(&name))
        .ok_or_else(role_not_found)
}

pub(crate) async fn create_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("RoleName")?;
    check_name("RoleName", &name, 64, b".-")?;
    let doc = p.required("AssumeRolePolicyDocument")?;
    let description = description(p, "Description")?.unwrap_or_default();
    let secs = max_session(p, "MaxSessionDuration")?.unwrap_or(3600);
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
    let role = named_role(engine, ctx, p)?;
    Ok(obj(json!({ "Role": role_json(engine, &role) })))
}

pub(crate) async fn list_roles(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let (roles, next) = page(p, engine.roles_of(&ctx.principal.account), |r| {
        r.name.as_str()
    })?;
    let list: Vec<Value> = roles
        .iter()
        .map(|r| {
            // The listing leaves out the trust policy (GetRole shows it).
            let mut v = role_json(engine, r);
            if let Some(m) = v.as_object_mut() {
                m.remove("AssumeRolePolicyDocument");
            }
            v
        })
        .collect();
    let mut out = json!({ "Roles": { "Role": list } });
    paging(&mut out, next);
    Ok(obj(out))
}

pub(crate) async fn update_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let role = named_role(engine, ctx, p)?;
    let doc = p.opt("NewAssumeRolePolicyDocument");
    let description = description(p, "NewDescription")?;
    let change = RoleUpdate {
        trust_policy: doc.as_deref(),
        description: description.as_deref(),
        max_session_secs: max_session(p, "NewMaxSessionDuration")?,
    };
    let role = engine
        .update_role(&ctx.principal.account, role.id, change)
        .await
        .map_err(|e| match e {
            CredentialError::NotFound(_) => role_not_found(),
            CredentialError::Invalid { reason, .. } => {
                ApiError::new(400, "MalformedPolicyDocument", reason)
            }
            e => internal(e),
        })?;
    Ok(obj(json!({ "Role": role_json(engine, &role) })))
}

pub(crate) async fn delete_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let role = named_role(engine, ctx, p)?;
    engine
        .delete_role(&ctx.principal.account, role.id, false)
        .await
        .map_err(|e| match e {
            CredentialError::NotFound(_) => role_not_found(),
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "DeleteConflict.Role.Policy",
                "The role cannot have any attached policies when you delete it.",
            ),
            e => internal(e),
        })?;
    Ok(Default::default())
}

pub(crate) async fn list_policies_for_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let role = named_role(engine, ctx, p)?;
    let policies = engine.policies(&ctx.principal.account).unwrap_or_default();
    let list: Vec<Value> = role
        .policies
        .iter()
        .filter_map(|id| policies.iter().find(|x| x.id == *id))
        .map(|x| {
            json!({
                "PolicyName": x.name,
                "PolicyType": "Custom",
                "Description": x.description,
                "DefaultVersion": "v1",
                "AttachDate": iso_seconds(role.updated_at_ms.max(x.created_at_ms)),
            })
        })
        .collect();
    Ok(obj(json!({ "Policies": { "Policy": list } })))
}

/// The role and the policy of AttachPolicyToRole and DetachPolicyFromRole (PolicyType,
/// PolicyName, RoleName).
fn role_and_policy(
    engine: &Engine,
    ctx: &Ctx,
    p: &Params,
) -> Result<(RoleRecord, PolicyRecord), ApiError> {
    let kind = p.required("PolicyType")?;
    let name = p.required("PolicyName")?;
    if kind != "System" && kind != "Custom" {
        return Err(ApiError::new(
            400,
            "InvalidParameter.PolicyType",
            "The parameter - \"PolicyType\" is incorrect.",
        ));
    }
    let role = named_role(engine, ctx, p)?;
    // nubis has no system policies: only the account's RAM (custom) policies exist.
    let policy = engine
        .policies(&ctx.principal.account)
        .ok()
        .and_then(|ps| {
            ps.into_iter()
                .find(|x| x.name == name && x.grammar == PolicyGrammar::Ram)
        })
        .filter(|_| kind == "Custom")
        .ok_or_else(|| ApiError::new(404, "EntityNotExist.Policy", "The policy does not exist."))?;
    Ok((role, policy))
}

pub(crate) async fn detach_policy_from_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let (role, policy) = role_and_policy(engine, ctx, p)?;
    engine
        .set_role_policy(&ctx.principal.account, role.id, policy.id, false)
        .await
        .map_err(|e| match e {
            CredentialError::NotFound(_) => ApiError::new(
                404,
                "EntityNotExist.Role.Policy",
                "The policy is not attached to the role.",
            ),
            e => internal(e),
        })?;
    Ok(Default::default())
}

pub(crate) async fn attach_policy_to_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let account = &ctx.principal.account;
    let (role, policy) = role_and_policy(engine, ctx, p)?;
    engine
        .set_role_policy(account, role.id, policy.id, true)
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
