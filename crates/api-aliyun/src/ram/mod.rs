//! Alibaba RAM 2015-05-01 (docs/identity-wire.md §6): users ([`users`]), their access keys
//! ([`keys`]) and custom policies ([`policies`]) of the caller's account. Global: `RegionId`
//! is optional and ignored (D3). The caller is the account root or a RAM user whose RAM
//! policies allow the action (`ram:CreateUser`, …), decided by the gate (a refusal is
//! `NoPermission` 403 with `AccessDeniedDetail`, D11); the rules are the engine's
//! (`nubis_engine::iam`), rendered here with RAM's codes, statuses and messages.

mod keys;
mod mfa;
mod policies;
mod roles;
mod users;

use crate::Handler;
use crate::errors::ApiError;
use crate::params::Params;
use nubis_engine::IamError;
use nubis_pipeline::{ActionSpec, RegionUse, Registry};
use serde_json::{Map, Value};

/// The RAM API version; it names the service on the shared Alibaba listener.
pub const VERSION: &str = "2015-05-01";

/// One RAM action: policy `ram:<Action>`, region optional (and ignored), 20 requests/s per
/// account (reads 40), parameters read from the flat map by the handler.
macro_rules! ram {
    ($name:literal, $limit:expr, $mutates:expr, $h:path) => {
        ActionSpec {
            name: $name,
            rate_limit: $limit,
            mutates: $mutates,
            dry_run: false,
            policy: concat!("ram:", $name),
            per_resource: false,
            params: concat!($name, "Request"),
            region: RegionUse::Optional,
            handler: Handler(|e, c, p| Box::pin($h(e, c, p))),
        }
    };
}

const READ: u32 = 40;
const WRITE: u32 = 20;

use keys::*;
use policies::*;
use users::*;

const SPECS: &[ActionSpec<Handler>] = &[
    ram!("CreateUser", WRITE, true, create_user),
    ram!("GetUser", READ, false, get_user),
    ram!("ListUsers", READ, false, list_users),
    ram!("DeleteUser", WRITE, true, delete_user),
    ram!("CreateAccessKey", WRITE, true, create_access_key),
    ram!("ListAccessKeys", READ, false, list_access_keys),
    ram!("UpdateAccessKey", WRITE, true, update_access_key),
    ram!("DeleteAccessKey", WRITE, true, delete_access_key),
    ram!("CreatePolicy", WRITE, true, create_policy),
    ram!("GetPolicy", READ, false, get_policy),
    ram!("ListPolicies", READ, false, list_policies),
    ram!("DeletePolicy", WRITE, true, delete_policy),
    ram!("AttachPolicyToUser", WRITE, true, attach_policy_to_user),
    ram!("DetachPolicyFromUser", WRITE, true, detach_policy_from_user),
    ram!("ListPoliciesForUser", READ, false, list_policies_for_user),
    ram!("CreateRole", WRITE, true, roles::create_role),
    ram!("GetRole", READ, false, roles::get_role),
    ram!(
        "AttachPolicyToRole",
        WRITE,
        true,
        roles::attach_policy_to_role
    ),
    ram!(
        "CreateVirtualMFADevice",
        WRITE,
        true,
        mfa::create_virtual_mfa_device
    ),
    ram!("BindMFADevice", WRITE, true, mfa::bind_mfa_device),
];

/// The RAM service's registry: dispatch, rate limits, labels, policy actions and
/// docs/catalogue/aliyun-ram.md come from it.
pub static REGISTRY: Registry<Handler> = Registry {
    cloud: "aliyun",
    service: "ram",
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

/// RAM's time: `YYYY-MM-DDThh:mm:ssZ`, UTC.
fn ram_time(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// A text parameter: `InvalidParameter.<Name>.Length` outside `min..=max` characters,
/// `.InvalidChars` when a character fails `ok` (RAM's error list and messages).
fn check_text(
    value: &str,
    name: &str,
    min: usize,
    max: usize,
    ok: impl Fn(char) -> bool,
) -> Result<(), ApiError> {
    if !(min..=max).contains(&value.chars().count()) {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{name}.Length"),
            format!("The parameter - \"{name}\" beyond the length limit."),
        ));
    }
    if !value.chars().all(ok) {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{name}.InvalidChars"),
            format!("The parameter - \"{name}\" contains invalid chars."),
        ));
    }
    Ok(())
}

/// `UserName`: 1–64 of `A-Za-z0-9.@_-`.
fn check_user_name(name: &str) -> Result<(), ApiError> {
    check_text(name, "UserName", 1, 64, |c| {
        c.is_ascii_alphanumeric() || ".@_-".contains(c)
    })
}

/// Marker and MaxItems of a listing (MaxItems 1–1000, default 100): the page of `items`
/// (sorted by `key`) from the item named by the marker, and the next marker if truncated.
fn page<T>(
    p: &Params,
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let max = match p.opt("MaxItems") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::new(
                    400,
                    "InvalidParameter.MaxItems",
                    "The parameter - \"MaxItems\" must be from 1 to 1000.",
                )
            })?,
    };
    let marker = p.opt("Marker");
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| marker.as_deref().is_none_or(|m| key(i) >= m))
        .collect();
    let next = rest.get(max).map(|i| key(i).to_string());
    rest.truncate(max);
    Ok((rest, next))
}

/// The listing envelope's paging fields.
fn paging(out: &mut Value, next: Option<String>) {
    out["IsTruncated"] = Value::Bool(next.is_some());
    if let Some(m) = next {
        out["Marker"] = Value::String(m);
    }
}

/// An engine refusal in RAM's codes, statuses and messages (§6 error table).
fn iam_err(e: IamError) -> ApiError {
    let detail = e.to_string();
    let (status, code, msg): (u16, &str, String) = match &e {
        IamError::UserNotFound(_) => (
            404,
            "EntityNotExist.User",
            "The user does not exist.".into(),
        ),
        IamError::PolicyNotFound(_) => (
            404,
            "EntityNotExist.Policy",
            "The policy does not exist.".into(),
        ),
        IamError::KeyNotFound(_) => (
            404,
            "EntityNotExist.User.AccessKey",
            "The user access key does not exist.".into(),
        ),
        IamError::UserExists(_) => (
            409,
            "EntityAlreadyExists.User",
            "The user does already EXIST.".into(),
        ),
        IamError::PolicyExists(_) => (
            409,
            "EntityAlreadyExists.Policy",
            "The policy does already EXIST.".into(),
        ),
        IamError::KeyLimit { .. } => (
            409,
            "LimitExceeded.User.AccessKey",
            "The count of access keys of the user beyond the current limits.".into(),
        ),
        IamError::UserLimit { .. } => (
            409,
            "LimitExceeded.User",
            "The count of users beyond the current limits.".into(),
        ),
        IamError::PolicyLimit { .. } => (
            409,
            "LimitExceeded.Policy",
            "The count of policies beyond the current limits.".into(),
        ),
        IamError::AttachmentLimit { .. } => (
            409,
            "LimitExceeded.User.Policy",
            "The count of policies attached to the user beyond the current limits.".into(),
        ),
        IamError::UserHasKeys { .. } => (
            409,
            "DeleteConflict.User.AccessKey",
            "The user CAN NOT has any access key while deleting the user.".into(),
        ),
        IamError::UserHasPolicies { .. } => (
            409,
            "DeleteConflict.User.Policy",
            "The user CAN NOT be attached with any policy while deleting the user.".into(),
        ),
        IamError::PolicyAttached { .. } => (
            409,
            "DeleteConflict.Policy.User",
            "The policy CAN NOT be attached to any user while deleting the policy.".into(),
        ),
        IamError::AlreadyAttached { .. } => (
            409,
            "EntityAlreadyExists.User.Policy",
            "The policy does already attached to the user.".into(),
        ),
        IamError::NotAttached { .. } => (
            404,
            "EntityNotExist.User.Policy",
            "The policy is not attached to the user.".into(),
        ),
        IamError::LastAdminKey(_) => (409, "DeleteConflict.User.AccessKey", detail),
        IamError::Document(d) if d.kind() == "TooLarge" => (
            400,
            "InvalidParameter.PolicyDocument.Length",
            "The parameter - \"PolicyDocument\" beyond the length limit.".into(),
        ),
        IamError::Document(_) => (400, "MalformedPolicyDocument", detail),
        IamError::Invalid { .. } => (400, "InvalidParameter", detail),
        IamError::Conflict(_) => (409, "EntityAlreadyExists", detail),
        IamError::AccountNotFound(_) | IamError::Domain(_) => {
            (500, "InternalError", "An internal error occurred.".into())
        }
    };
    ApiError::new(status, code, msg)
}

/// RAM's name rule failures: `InvalidParameter.<Param>.Length` / `.InvalidChars` (400).
fn check_name(param: &str, v: &str, max: usize, extra: &[u8]) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > max {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{param}.Length"),
            format!("The parameter - \"{param}\" beyond the length limit."),
        ));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    {
        return Err(ApiError::new(
            400,
            format!("InvalidParameter.{param}.InvalidChars"),
            format!("The parameter - \"{param}\" contains invalid chars."),
        ));
    }
    Ok(())
}

fn internal(e: nubis_engine::CredentialError) -> ApiError {
    ApiError::new(500, "InternalError", e.to_string())
}
