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
use crate::actions::{Out, action};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_engine::IamError;
use nubis_pipeline::{ActionSpec, Registry, shapes};
use serde_json::Value;

/// The RAM API version; it names the service on the shared Alibaba listener.
pub const VERSION: &str = "2015-05-01";

use keys::*;
use mfa::*;
use policies::*;
use roles::*;
use users::*;

const SPECS: &[ActionSpec<Handler>] = &[
    action!(ram write "CreateUser", create_user),
    action!(ram read "GetUser", get_user),
    action!(ram read "ListUsers", list_users),
    action!(ram write "DeleteUser", delete_user),
    action!(ram write "CreateAccessKey", create_access_key),
    action!(ram read "ListAccessKeys", list_access_keys),
    action!(ram write "UpdateAccessKey", update_access_key),
    action!(ram write "DeleteAccessKey", delete_access_key),
    action!(ram write "CreatePolicy", create_policy),
    action!(ram read "GetPolicy", get_policy),
    action!(ram read "ListPolicies", list_policies),
    action!(ram write "DeletePolicy", delete_policy),
    action!(ram write "AttachPolicyToUser", attach_policy_to_user),
    action!(ram write "DetachPolicyFromUser", detach_policy_from_user),
    action!(ram read "ListPoliciesForUser", list_policies_for_user),
    action!(ram write "CreateRole", create_role),
    action!(ram read "GetRole", get_role),
    action!(ram read "ListRoles", list_roles),
    action!(ram write "UpdateRole", update_role),
    action!(ram write "DeleteRole", delete_role),
    action!(ram write "AttachPolicyToRole", attach_policy_to_role),
    action!(ram write "DetachPolicyFromRole", detach_policy_from_role),
    action!(ram read "ListPoliciesForRole", list_policies_for_role),
    action!(ram write "CreateVirtualMFADevice", create_virtual_mfa_device),
    action!(ram write "BindMFADevice", bind_mfa_device),
];

/// The RAM service's registry: dispatch, rate limits, labels, policy actions and
/// docs/catalogue/aliyun-ram.md come from it.
pub static REGISTRY: Registry<Handler> = Registry::new("aliyun", "ram", VERSION, SPECS);

/// A text parameter: `InvalidParameter.<Name>.Length` outside `min..=max` characters,
/// `.InvalidChars` when a character fails `ok` (RAM's error list and messages).
fn check_text(
    value: &str,
    name: &str,
    min: usize,
    max: usize,
    ok: impl Fn(char) -> bool,
) -> Result<(), ApiError> {
    let length = (min..=max).contains(&value.chars().count());
    refuse_text(name, length, length && value.chars().all(ok))
}

/// A name (RoleName, VirtualMFADeviceName): 1–`max` bytes of ASCII letters, digits and
/// `extra`, refused as [`check_text`] refuses.
fn check_name(param: &str, v: &str, max: usize, extra: &[u8]) -> Result<(), ApiError> {
    let length = (1..=max).contains(&v.len());
    refuse_text(param, length, shapes::ascii_name(v, 1..=max, extra))
}

/// RAM's refusal of a text parameter whose `length` or characters (`chars`) are wrong.
fn refuse_text(name: &str, length: bool, chars: bool) -> Result<(), ApiError> {
    let (suffix, what) = match (length, chars) {
        (false, _) => ("Length", "beyond the length limit"),
        (true, false) => ("InvalidChars", "contains invalid chars"),
        (true, true) => return Ok(()),
    };
    Err(ApiError::new(
        400,
        format!("InvalidParameter.{name}.{suffix}"),
        format!("The parameter - \"{name}\" {what}."),
    ))
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

/// An engine refusal in RAM's codes, statuses and messages (§6 error table; `None`: the
/// engine's own words).
fn iam_err(e: IamError) -> ApiError {
    #[rustfmt::skip]
    let (status, code, msg): (u16, &str, Option<&str>) = match &e {
        IamError::UserNotFound(_) => (404, "EntityNotExist.User", Some("The user does not exist.")),
        IamError::PolicyNotFound(_) => (404, "EntityNotExist.Policy", Some("The policy does not exist.")),
        IamError::KeyNotFound(_) => (404, "EntityNotExist.User.AccessKey", Some("The user access key does not exist.")),
        IamError::UserExists(_) => (409, "EntityAlreadyExists.User", Some("The user does already EXIST.")),
        IamError::PolicyExists(_) => (409, "EntityAlreadyExists.Policy", Some("The policy does already EXIST.")),
        IamError::KeyLimit { .. } => (409, "LimitExceeded.User.AccessKey", Some("The count of access keys of the user beyond the current limits.")),
        IamError::UserLimit { .. } => (409, "LimitExceeded.User", Some("The count of users beyond the current limits.")),
        IamError::PolicyLimit { .. } => (409, "LimitExceeded.Policy", Some("The count of policies beyond the current limits.")),
        IamError::AttachmentLimit { .. } => (409, "LimitExceeded.User.Policy", Some("The count of policies attached to the user beyond the current limits.")),
        IamError::UserHasKeys { .. } => (409, "DeleteConflict.User.AccessKey", Some("The user CAN NOT has any access key while deleting the user.")),
        IamError::UserHasPolicies { .. } => (409, "DeleteConflict.User.Policy", Some("The user CAN NOT be attached with any policy while deleting the user.")),
        IamError::PolicyAttached { .. } => (409, "DeleteConflict.Policy.User", Some("The policy CAN NOT be attached to any user while deleting the policy.")),
        IamError::AlreadyAttached { .. } => (409, "EntityAlreadyExists.User.Policy", Some("The policy does already attached to the user.")),
        IamError::NotAttached { .. } => (404, "EntityNotExist.User.Policy", Some("The policy is not attached to the user.")),
        IamError::LastAdminKey(_) => (409, "DeleteConflict.User.AccessKey", None),
        IamError::Document(d) if d.kind() == "TooLarge" => (400, "InvalidParameter.PolicyDocument.Length", Some("The parameter - \"PolicyDocument\" beyond the length limit.")),
        IamError::Document(_) => (400, "MalformedPolicyDocument", None),
        IamError::Invalid { .. } => (400, "InvalidParameter", None),
        IamError::Conflict(_) => (409, "EntityAlreadyExists", None),
        IamError::AccountNotFound(_) | IamError::Domain(_) => (500, "InternalError", Some("An internal error occurred.")),
    };
    let msg = msg.map_or_else(|| e.to_string(), str::to_string);
    ApiError::new(status, code, msg)
}

fn internal(e: nubis_engine::CredentialError) -> ApiError {
    ApiError::new(500, "InternalError", e.to_string())
}
