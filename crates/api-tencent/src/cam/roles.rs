//! CAM roles (for STS AssumeRole): CreateRole, GetRole, DescribeRoleList, DeleteRole,
//! UpdateAssumeRolePolicy, UpdateRoleDescription, AttachRolePolicy, DetachRolePolicy,
//! ListAttachedRolePolicies. CAM deletes a role's policy attachments with it; the role's
//! sessions stop working at once (docs/identity-wire.md §3).

use super::{Out, err};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::{PolicyGrammar, PolicyRecord, RoleRecord};
use nubis_engine::{CredentialError, Engine, RoleUpdate};
use nubis_pipeline::shapes::datetime;
use serde::Deserialize;
use serde_json::{Value, json};

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

/// DeleteRole names its role as GetRole does.
pub(crate) type DeleteRoleReq = GetRoleReq;

impl GetRoleReq {
    /// The caller's role the request names.
    fn role(&self, engine: &Engine, account: &str) -> Result<RoleRecord, ApiError> {
        find_role(
            engine,
            account,
            self.role_id.as_deref(),
            self.role_name.as_deref(),
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct AttachRolePolicyReq {
    policy_id: Option<Int>,
    policy_name: Option<String>,
    attach_role_id: Option<String>,
    attach_role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct DetachRolePolicyReq {
    policy_id: Option<Int>,
    policy_name: Option<String>,
    detach_role_id: Option<String>,
    detach_role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // Tags is accepted, not used: nubis keeps no role tags
pub(crate) struct DescribeRoleListReq {
    page: Option<Int>,
    rp: Option<Int>,
    tags: Option<Vec<super::super::sts::TagRef>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct ListAttachedRolePoliciesReq {
    page: Option<Int>,
    rp: Option<Int>,
    role_id: Option<String>,
    role_name: Option<String>,
    policy_type: Option<String>,
    keyword: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct UpdateAssumeRolePolicyReq {
    policy_document: Option<String>,
    role_id: Option<String>,
    role_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct UpdateRoleDescriptionReq {
    description: Option<String>,
    role_id: Option<String>,
    role_name: Option<String>,
}

/// CAM's Description ceiling (characters).
const MAX_DESCRIPTION: usize = 300;

fn check_description(d: &str) -> Result<(), ApiError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(err(
            "InvalidParameter.DescriptionLengthOverlimit",
            "Description is longer than 300 characters",
        ));
    }
    Ok(())
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
    check_description(&description)?;
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
    let role = r.role(engine, account)?;
    let owner = engine.account(account).map_or(0, |a| a.tencent_owner_uin);
    Ok(super::super::actions::obj(
        json!({"RoleInfo": role_info(owner, &role)}),
    ))
}

/// A `RoleInfo` (GetRole, DescribeRoleList).
fn role_info(owner: u64, role: &RoleRecord) -> Value {
    json!({
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
    })
}

pub(crate) async fn describe_role_list(engine: &Engine, ctx: &Ctx, r: DescribeRoleListReq) -> Out {
    let account = &ctx.principal.account;
    // Page and Rp are required here (DescribeRoleList's parameter table).
    let (offset, rp) = required_page(r.page, r.rp)?;
    let owner = engine.account(account).map_or(0, |a| a.tencent_owner_uin);
    let roles = engine.roles_of(account);
    let list: Vec<Value> = roles
        .iter()
        .skip(offset)
        .take(rp)
        .map(|role| role_info(owner, role))
        .collect();
    Ok(super::super::actions::obj(
        json!({"List": list, "TotalNum": roles.len()}),
    ))
}

pub(crate) async fn delete_role(engine: &Engine, ctx: &Ctx, r: DeleteRoleReq) -> Out {
    let account = &ctx.principal.account;
    let role = r.role(engine, account)?;
    engine
        .delete_role(account, role.id, true)
        .await
        .map_err(role_err)?;
    Ok(Default::default())
}

pub(crate) async fn update_assume_role_policy(
    engine: &Engine,
    ctx: &Ctx,
    r: UpdateAssumeRolePolicyReq,
) -> Out {
    let doc = r
        .policy_document
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("PolicyDocument"))?;
    let change = RoleUpdate {
        trust_policy: Some(&doc),
        ..Default::default()
    };
    change_role(engine, ctx, (r.role_id, r.role_name), change).await
}

pub(crate) async fn update_role_description(
    engine: &Engine,
    ctx: &Ctx,
    r: UpdateRoleDescriptionReq,
) -> Out {
    let description = r.description.ok_or_else(|| missing("Description"))?;
    check_description(&description)?;
    let change = RoleUpdate {
        description: Some(&description),
        ..Default::default()
    };
    change_role(engine, ctx, (r.role_id, r.role_name), change).await
}

/// Apply `change` to the caller's role named by (RoleId, RoleName).
async fn change_role(
    engine: &Engine,
    ctx: &Ctx,
    (id, name): (Option<String>, Option<String>),
    change: RoleUpdate<'_>,
) -> Out {
    let account = &ctx.principal.account;
    let role = find_role(engine, account, id.as_deref(), name.as_deref())?;
    engine
        .update_role(account, role.id, change)
        .await
        .map_err(role_err)?;
    Ok(Default::default())
}

/// Page and Rp where both are required (DescribeRoleList, ListAttachedRolePolicies).
fn required_page(page: Option<Int>, rp: Option<Int>) -> Result<(usize, usize), ApiError> {
    if page.is_none() {
        return Err(missing("Page"));
    }
    if rp.is_none() {
        return Err(missing("Rp"));
    }
    super::policies::page(page, rp)
}

/// A role change the engine refused, in CAM's codes.
fn role_err(e: CredentialError) -> ApiError {
    match e {
        CredentialError::NotFound(_) => {
            err("InvalidParameter.RoleNotExist", "the role does not exist")
        }
        CredentialError::Invalid { reason, .. } => {
            err("InvalidParameter.PolicyDocumentError", reason)
        }
        e => err("InternalError", e.to_string()),
    }
}

pub(crate) async fn attach_role_policy(engine: &Engine, ctx: &Ctx, r: AttachRolePolicyReq) -> Out {
    let role = (r.attach_role_id, r.attach_role_name);
    set_role_policy(engine, ctx, role, (r.policy_id, r.policy_name), true).await
}

pub(crate) async fn detach_role_policy(engine: &Engine, ctx: &Ctx, r: DetachRolePolicyReq) -> Out {
    let role = (r.detach_role_id, r.detach_role_name);
    set_role_policy(engine, ctx, role, (r.policy_id, r.policy_name), false).await
}

/// Attach or detach the policy named by (PolicyId, PolicyName) to or from the role named
/// by (RoleId, RoleName).
async fn set_role_policy(
    engine: &Engine,
    ctx: &Ctx,
    (role_id, role_name): (Option<String>, Option<String>),
    (policy_id, policy_name): (Option<Int>, Option<String>),
    attach: bool,
) -> Out {
    let account = &ctx.principal.account;
    let role = find_role(engine, account, role_id.as_deref(), role_name.as_deref())?;
    let policy = find_policy(engine, account, policy_id, policy_name.as_deref())?;
    match engine
        .set_role_policy(account, role.id, policy.id, attach)
        .await
    {
        // Attaching an attached policy changes nothing.
        Ok(()) | Err(CredentialError::Conflict(_)) => Ok(Default::default()),
        Err(CredentialError::Invalid { reason, .. }) => {
            Err(err("InvalidParameter.AttachmentFull", reason))
        }
        // As DetachUserPolicy answers a policy that is not attached.
        Err(CredentialError::NotFound(m)) => Err(err("FailedOperation", m)),
        Err(e) => Err(err("InternalError", e.to_string())),
    }
}

pub(crate) async fn list_attached_role_policies(
    engine: &Engine,
    ctx: &Ctx,
    r: ListAttachedRolePoliciesReq,
) -> Out {
    let account = &ctx.principal.account;
    let (offset, rp) = required_page(r.page, r.rp)?;
    let role = find_role(
        engine,
        account,
        r.role_id.as_deref(),
        r.role_name.as_deref(),
    )?;
    // nubis has only custom ("User") policies: a filter on preset ("QCS") ones finds none.
    let kind_ok = match r.policy_type.as_deref() {
        None | Some("") | Some("User") => true,
        Some("QCS") => false,
        Some(other) => {
            return Err(err(
                "InvalidParameter.ParamError",
                format!("PolicyType must be User or QCS, not {other}"),
            ));
        }
    };
    let keyword = r.keyword.unwrap_or_default();
    let policies = engine.policies(account).unwrap_or_default();
    let attached: Vec<&PolicyRecord> = role
        .policies
        .iter()
        .filter_map(|id| policies.iter().find(|p| p.id == *id))
        .filter(|p| kind_ok && p.name.contains(keyword.as_str()))
        .collect();
    let list: Vec<Value> = attached
        .iter()
        .skip(offset)
        .take(rp)
        .map(|p| {
            let mut v = super::policies::attached_policy(p);
            v["Description"] = Value::from(p.description.as_str());
            v
        })
        .collect();
    Ok(super::super::actions::obj(
        json!({"List": list, "TotalNum": attached.len()}),
    ))
}

/// The account's CAM policy named by ID or name (only CAM policies govern the Tencent API).
fn find_policy(
    engine: &Engine,
    account: &str,
    policy_id: Option<Int>,
    policy_name: Option<&str>,
) -> Result<PolicyRecord, ApiError> {
    let id = match (policy_id, policy_name.filter(|s| !s.is_empty())) {
        (Some(Int(id)), _) => u64::try_from(id).ok(),
        (None, Some(_)) => None,
        (None, None) => {
            return Err(err(
                "InvalidParameter.ParamError",
                "one of PolicyId and PolicyName is required",
            ));
        }
    };
    let name = if policy_id.is_some() {
        None
    } else {
        policy_name
    };
    engine
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
        })
}
