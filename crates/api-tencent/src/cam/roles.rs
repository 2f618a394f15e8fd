//! CAM roles: CreateRole, GetRole, AttachRolePolicy (for STS AssumeRole).

use super::{Out, err};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::{PolicyGrammar, RoleRecord};
use nubis_engine::{CredentialError, Engine};
use nubis_pipeline::shapes::datetime;
use serde::Deserialize;
use serde_json::json;

/// CAM's SessionDuration ceiling (seconds).
const MAX_SESSION: i64 = 43_200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // ConsoleLogin and Tags are accepted, not used
pub(crate) struct CreateRoleReq {
    role_name: Option<String>,
    policy_document: Option<String>,
    description: Option<String>,
    console_login: Option<Int>,
    session_duration: Option<Int>,
    tags: Option<Vec<super::super::sts::TagRef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct GetRoleReq {
    role_id: Option<String>,
    role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct AttachRolePolicyReq {
    policy_id: Option<Int>,
    policy_name: Option<String>,
    attach_role_id: Option<String>,
    attach_role_name: Option<String>,
}

fn role_name_ok(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

fn missing(name: &str) -> ApiError {
    err(
        "MissingParameter",
        format!("The parameter `{name}` is required"),
    )
}

pub(crate) async fn create_role(engine: &Engine, ctx: &Ctx, r: CreateRoleReq) -> Out {
    let name = r
        .role_name
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("RoleName"))?;
    let doc = r
        .policy_document
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("PolicyDocument"))?;
    if !role_name_ok(&name) {
        return Err(err(
            "InvalidParameter.RoleNameError",
            "RoleName must be 1-128 of A-Z a-z 0-9 + = , . @ _ -",
        ));
    }
    let description = r.description.unwrap_or_default();
    if description.chars().count() > 300 {
        return Err(err(
            "InvalidParameter.DescriptionLengthOverlimit",
            "Description is longer than 300 characters",
        ));
    }
    let secs = match r.session_duration {
        None => MAX_SESSION,
        Some(Int(n)) if (0..=MAX_SESSION).contains(&n) => n,
        Some(_) => {
            return Err(err(
                "InvalidParameter.ParamError",
                "SessionDuration must be between 0 and 43200",
            ));
        }
    };
    let role = engine
        .create_role(
            &ctx.principal.account,
            &name,
            PolicyGrammar::Cam,
            &doc,
            &description,
            secs as u64,
        )
        .await
        .map_err(|e| match e {
            CredentialError::Conflict(m) => err("InvalidParameter.RoleNameInUse", m),
            CredentialError::Invalid {
                name: "RoleFull",
                reason,
            } => err("InvalidParameter.RoleFull", reason),
            CredentialError::Invalid { reason, .. } => {
                err("InvalidParameter.PolicyDocumentError", reason)
            }
            e => err("InternalError", e.to_string()),
        })?;
    Ok(super::super::actions::obj(
        json!({"RoleId": role.id.to_string()}),
    ))
}

fn find_role(
    engine: &Engine,
    account: &str,
    id: Option<&str>,
    name: Option<&str>,
) -> Result<RoleRecord, ApiError> {
    let not_found = || err("InvalidParameter.RoleNotExist", "the role does not exist");
    match (id.filter(|s| !s.is_empty()), name.filter(|s| !s.is_empty())) {
        (Some(id), _) => id
            .parse()
            .ok()
            .and_then(|id| engine.role_by_id(account, id))
            .ok_or_else(not_found),
        (None, Some(name)) => engine.role_by_name(account, name).ok_or_else(not_found),
        (None, None) => Err(err(
            "InvalidParameter.ParamError",
            "one of RoleId and RoleName is required",
        )),
    }
}

pub(crate) async fn get_role(engine: &Engine, ctx: &Ctx, r: GetRoleReq) -> Out {
    let account = &ctx.principal.account;
    let role = find_role(
        engine,
        account,
        r.role_id.as_deref(),
        r.role_name.as_deref(),
    )?;
    let owner = engine.account(account).map_or(0, |a| a.tencent_owner_uin);
    Ok(super::super::actions::obj(json!({"RoleInfo": {
        "RoleId": role.id.to_string(),
        "RoleName": role.name,
        "PolicyDocument": role.trust_policy,
        "Description": role.description,
        "AddTime": datetime(role.created_at_ms),
        "UpdateTime": datetime(role.updated_at_ms.max(role.created_at_ms)),
        "ConsoleLogin": 0,
        "RoleType": "user",
        "SessionDuration": role.max_session_secs,
        "DeletionTaskId": null,
        "Tags": [],
        "RoleArn": format!("qcs::cam::uin/{owner}:roleName/{}", role.name),
    }})))
}

pub(crate) async fn attach_role_policy(engine: &Engine, ctx: &Ctx, r: AttachRolePolicyReq) -> Out {
    let account = &ctx.principal.account;
    let role = find_role(
        engine,
        account,
        r.attach_role_id.as_deref(),
        r.attach_role_name.as_deref(),
    )?;
    let id = match (
        r.policy_id,
        r.policy_name.as_deref().filter(|s| !s.is_empty()),
    ) {
        (Some(Int(id)), _) => u64::try_from(id).ok(),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(err(
                "InvalidParameter.ParamError",
                "one of PolicyId and PolicyName is required",
            ));
        }
    };
    let name = if r.policy_id.is_some() {
        None
    } else {
        r.policy_name.as_deref()
    };
    // Only CAM policies govern the Tencent API.
    let policy = engine
        .policies(account)
        .ok()
        .and_then(|ps| {
            ps.into_iter().find(|p| {
                p.grammar == PolicyGrammar::Cam
                    && id.is_none_or(|i| p.id == i)
                    && name.is_none_or(|n| p.name == n)
                    && (id.is_some() || name.is_some())
            })
        })
        .ok_or_else(|| {
            err(
                "InvalidParameter.PolicyIdNotExist",
                "the policy does not exist",
            )
        })?;
    match engine.attach_role_policy(account, role.id, policy.id).await {
        // Attaching an attached policy changes nothing.
        Ok(()) | Err(CredentialError::Conflict(_)) => Ok(Default::default()),
        Err(CredentialError::Invalid { reason, .. }) => {
            Err(err("InvalidParameter.AttachmentFull", reason))
        }
        Err(e) => Err(err("InternalError", e.to_string())),
    }
}
