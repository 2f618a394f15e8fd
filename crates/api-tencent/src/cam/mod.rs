//! Tencent CAM 2019-01-16 (docs/identity-wire.md §3): sub-users ([`users`]), their access
//! keys ([`keys`]) and policies ([`policies`]) of the caller's account. Region-less (D3):
//! any `X-TC-Region` is accepted and ignored. The caller is the account root or a sub-user
//! whose CAM policies allow the action (`cam:AddUser`, …), decided by the gate; the rules
//! (key limit, conflicts, cascades) are the engine's (`nubis_engine::iam`), rendered here.

mod keys;
mod mfa;
mod policies;
mod roles;
mod users;

use crate::Ctx;
use crate::actions::{Handler, action, global, global_write};
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::SubUser;
use nubis_engine::{Engine, IamError};
use nubis_pipeline::{ActionSpec, Registry};
use serde_json::{Map, Value};

/// The CAM API version; it names the service on the shared Tencent listener.
pub const VERSION: &str = "2019-01-16";

use keys::*;
use mfa::*;
use policies::*;
use roles::*;
use users::*;

const SPECS: &[ActionSpec<Handler>] = &[
    global_write(action!(cam: "AddUser", AddUserReq, add_user)),
    global(action!(cam: "GetUser", GetUserReq, get_user)),
    global(action!(cam: "ListUsers", ListUsersReq, list_users)),
    global_write(action!(cam: "DeleteUser", DeleteUserReq, delete_user)),
    global_write(action!(cam: "CreateAccessKey", CreateAccessKeyReq, create_access_key)),
    global(action!(cam: "ListAccessKeys", ListAccessKeysReq, list_access_keys)),
    global_write(action!(cam: "UpdateAccessKey", UpdateAccessKeyReq, update_access_key)),
    global_write(action!(cam: "DeleteAccessKey", DeleteAccessKeyReq, delete_access_key)),
    global_write(action!(cam: "CreatePolicy", CreatePolicyReq, create_policy)),
    global(action!(cam: "GetPolicy", GetPolicyReq, get_policy)),
    global(action!(cam: "ListPolicies", ListPoliciesReq, list_policies)),
    global_write(action!(cam: "DeletePolicy", DeletePolicyReq, delete_policy)),
    global_write(action!(cam: "AttachUserPolicy", AttachUserPolicyReq, attach_user_policy)),
    global_write(action!(cam: "DetachUserPolicy", DetachUserPolicyReq, detach_user_policy)),
    global(action!(cam: "ListAttachedUserPolicies", ListAttachedReq, list_attached_user_policies)),
    global_write(action!(cam: "CreateRole", roles::CreateRoleReq, create_role)),
    global(action!(cam: "GetRole", roles::GetRoleReq, get_role)),
    global(action!(cam: "DescribeRoleList", roles::DescribeRoleListReq, describe_role_list)),
    global_write(action!(cam: "DeleteRole", roles::DeleteRoleReq, delete_role)),
    global_write(
        action!(cam: "UpdateAssumeRolePolicy", roles::UpdateAssumeRolePolicyReq, update_assume_role_policy),
    ),
    global_write(
        action!(cam: "UpdateRoleDescription", roles::UpdateRoleDescriptionReq, update_role_description),
    ),
    global_write(action!(cam: "AttachRolePolicy", roles::AttachRolePolicyReq, attach_role_policy)),
    global_write(action!(cam: "DetachRolePolicy", roles::DetachRolePolicyReq, detach_role_policy)),
    global(
        action!(cam: "ListAttachedRolePolicies", roles::ListAttachedRolePoliciesReq, list_attached_role_policies),
    ),
    global_write(action!(cam: "SetMfaFlag", mfa::SetMfaFlagReq, set_mfa_flag)),
    global(
        action!(cam: "DescribeSafeAuthFlagColl", mfa::DescribeSafeAuthFlagCollReq, describe_safe_auth_flag_coll),
    ),
];

/// The CAM service's registry: dispatch, rate limits, labels, policy actions and
/// docs/catalogue/tencent-cam.md come from it.
pub static REGISTRY: Registry<Handler> = Registry::new("tencent", "cam", VERSION, SPECS);

type Out = Result<Map<String, Value>, ApiError>;

/// The caller's owner UIN (the account's Tencent number).
fn owner_uin(engine: &Engine, ctx: &Ctx) -> u64 {
    engine
        .account_numbers(&ctx.principal.account)
        .and_then(|n| n.tencent.parse().ok())
        .unwrap_or(0)
}

/// An engine refusal in CAM's codes (the action's documented lists, docs/identity-wire.md
/// §3; the policy document codes by [`nubis_identity`'s `PolicyError::kind`]).
fn iam_err(e: IamError) -> ApiError {
    let msg = e.to_string();
    let code = match &e {
        IamError::UserNotFound(_) => "ResourceNotFound.UserNotExist",
        IamError::PolicyNotFound(_) => "ResourceNotFound.PolicyIdNotFound",
        IamError::KeyNotFound(_) => "ResourceNotFound.SecretNotExist",
        IamError::UserExists(_) => "InvalidParameter.SubUserNameInUse",
        IamError::PolicyExists(_) => "FailedOperation.PolicyNameInUse",
        IamError::KeyLimit { .. } => "OperationDenied.AccessKeyOverLimit",
        IamError::UserLimit { .. } => "InvalidParameter.SubUserFull",
        IamError::PolicyLimit { .. } => "FailedOperation.PolicyFull",
        IamError::AttachmentLimit { .. } => "InvalidParameter.AttachmentFull",
        IamError::UserHasKeys { .. } => "OperationDenied.HaveKeys",
        IamError::LastAdminKey(_) => "FailedOperation.Accesskey",
        IamError::Document(d) => document_code(d.kind(), &msg),
        IamError::Invalid { .. } => "InvalidParameter.ParamError",
        IamError::UserHasPolicies { .. }
        | IamError::PolicyAttached { .. }
        | IamError::AlreadyAttached { .. }
        | IamError::NotAttached { .. }
        | IamError::Conflict(_) => "FailedOperation",
        IamError::AccountNotFound(_) | IamError::Domain(_) => "InternalError.SystemError",
    };
    ApiError::new(code, msg)
}

/// CreatePolicy's `InvalidParameter.*` code for a document the compiler refused.
fn document_code(kind: &str, msg: &str) -> &'static str {
    match kind {
        "TooLarge" => "InvalidParameter.PolicyDocumentLengthOverLimit",
        "InvalidVersion" => "InvalidParameter.VersionError",
        "InvalidEffect" => "InvalidParameter.EffectError",
        "InvalidAction" => "InvalidParameter.ActionError",
        "MissingField" if msg.contains("action") => "InvalidParameter.ActionMiss",
        "MissingField" if msg.contains("effect") => "InvalidParameter.EffectError",
        "InvalidResource" => "InvalidParameter.ResourceError",
        "UnknownConditionOperator" | "InvalidConditionKey" => "InvalidParameter.ConditionTypeError",
        "InvalidConditionValue" => "InvalidParameter.ConditionContentError",
        "Unsupported" if msg.contains("principal") => "InvalidParameter.PrincipalError",
        _ => "InvalidParameter.PolicyDocumentError",
    }
}

/// A required numeric ID (Uin, PolicyId): present and positive, else `code`.
fn id_param(v: Option<crate::wire::Int>, name: &str, code: &str) -> Result<u64, ApiError> {
    let v = crate::actions::params::required(v, name)?;
    u64::try_from(v.0)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::new(code, format!("The value of `{name}` is invalid: {}", v.0)))
}

// The role and MFA actions' helpers.

fn err(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// A CAM UIN parameter: a positive integer.
fn uin(v: Int, name: &str) -> Result<u64, ApiError> {
    u64::try_from(v.0).ok().filter(|n| *n > 0).ok_or_else(|| {
        err(
            "InvalidParameter.ParamError",
            format!("{name} must be a UIN"),
        )
    })
}

/// The caller's account's sub-user with UIN `uin` (another account's is not found).
fn sub_user(engine: &Engine, account: &str, uin: u64) -> Result<SubUser, ApiError> {
    engine
        .sub_users(account)
        .ok()
        .and_then(|us| us.into_iter().find(|u| u.id == uin))
        .ok_or_else(|| {
            err(
                "ResourceNotFound.UserNotExist",
                format!("sub-user {uin} does not exist"),
            )
        })
}
