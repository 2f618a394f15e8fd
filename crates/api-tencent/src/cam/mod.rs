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
use crate::actions::{Handler, Payload};
use crate::errors::{ApiError, Codes};
use crate::wire::Int;
use nubis_core::SubUser;
use nubis_engine::{Engine, IamError};
use nubis_pipeline::{ActionSpec, RegionUse, Registry};
use serde_json::{Map, Value};

/// The CAM API version; it names the service on the shared Tencent listener.
pub const VERSION: &str = "2019-01-16";

/// One CAM action: policy `cam:<Action>`, region optional (and ignored), 20 requests/s per
/// account (CAM's default API quota), parameters parsed strictly into `$params`.
macro_rules! cam {
    ($name:literal, $params:ty, $run:path, $mutates:expr) => {
        ActionSpec {
            name: $name,
            rate_limit: 20,
            mutates: $mutates,
            dry_run: false,
            policy: concat!("cam:", $name),
            per_resource: false,
            params: stringify!($params),
            region: RegionUse::Optional,
            handler: Handler {
                run: |engine, ctx, params| {
                    Box::pin(async move {
                        let req: $params = crate::actions::params::parse(params)?;
                        $run(engine, ctx, req).await.map(Payload::from)
                    })
                },
                codes: Codes::DEFAULT,
            },
        }
    };
}

use keys::*;
use policies::*;
use users::*;

const SPECS: &[ActionSpec<Handler>] = &[
    cam!("AddUser", AddUserReq, add_user, true),
    cam!("GetUser", GetUserReq, get_user, false),
    cam!("ListUsers", ListUsersReq, list_users, false),
    cam!("DeleteUser", DeleteUserReq, delete_user, true),
    cam!(
        "CreateAccessKey",
        CreateAccessKeyReq,
        create_access_key,
        true
    ),
    cam!("ListAccessKeys", ListAccessKeysReq, list_access_keys, false),
    cam!(
        "UpdateAccessKey",
        UpdateAccessKeyReq,
        update_access_key,
        true
    ),
    cam!(
        "DeleteAccessKey",
        DeleteAccessKeyReq,
        delete_access_key,
        true
    ),
    cam!("CreatePolicy", CreatePolicyReq, create_policy, true),
    cam!("GetPolicy", GetPolicyReq, get_policy, false),
    cam!("ListPolicies", ListPoliciesReq, list_policies, false),
    cam!("DeletePolicy", DeletePolicyReq, delete_policy, true),
    cam!(
        "AttachUserPolicy",
        AttachUserPolicyReq,
        attach_user_policy,
        true
    ),
    cam!(
        "DetachUserPolicy",
        DetachUserPolicyReq,
        detach_user_policy,
        true
    ),
    cam!(
        "ListAttachedUserPolicies",
        ListAttachedReq,
        list_attached_user_policies,
        false
    ),
    cam!("CreateRole", roles::CreateRoleReq, roles::create_role, true),
    cam!("GetRole", roles::GetRoleReq, roles::get_role, false),
    cam!(
        "AttachRolePolicy",
        roles::AttachRolePolicyReq,
        roles::attach_role_policy,
        true
    ),
    cam!("SetMfaFlag", mfa::SetMfaFlagReq, mfa::set_mfa_flag, true),
    cam!(
        "DescribeSafeAuthFlagColl",
        mfa::DescribeSafeAuthFlagCollReq,
        mfa::describe_safe_auth_flag_coll,
        false
    ),
];

/// The CAM service's registry: dispatch, rate limits, labels, policy actions and
/// docs/catalogue/tencent-cam.md come from it.
pub static REGISTRY: Registry<Handler> = Registry {
    cloud: "tencent",
    service: "cam",
    version: VERSION,
    actions: SPECS,
};

type Out = Result<Map<String, Value>, ApiError>;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// CAM's datetime: `YYYY-MM-DD hh:mm:ss`, in UTC (D17).
fn cam_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]"
    ))
    .unwrap_or_default()
}

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

/// CAM datetimes (D17), as the role and MFA actions name it.
fn datetime(ms: i64) -> String {
    cam_time(ms)
}
