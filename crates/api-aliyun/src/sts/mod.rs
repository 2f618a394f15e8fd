//! Alibaba STS 2015-04-01 (docs/identity-wire.md §7): `AssumeRole` and `GetCallerIdentity`.
//! STS has no MFA parameters: a role session inherits its caller's MFA (none for an
//! AccessKey caller, D9).

use crate::Ctx;
use crate::actions::{Handler, Out, action};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::Account;
use nubis_engine::{AssumeRole, Engine, Issuer};
use nubis_pipeline::{ActionSpec, Registry, shapes};
use serde_json::json;

pub const VERSION: &str = "2015-04-01";

/// STS's quota: 100 requests/s per account, every action.
const fn sts(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        rate_limit: 100,
        ..spec
    }
}

const SPECS: &[ActionSpec<Handler>] = &[
    sts(action!(sts write "AssumeRole", assume_role)),
    sts(action!(sts read "GetCallerIdentity", get_caller_identity)),
];

/// Alibaba STS, served beside ECS by version.
pub static REGISTRY: Registry<Handler> = Registry::new("aliyun", "sts", VERSION, SPECS);

fn bad(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(400, code, message)
}

/// `acs:ram::<account-id>:role/<name>`: the account and the role name.
fn parse_arn(arn: &str) -> Option<(&str, &str)> {
    let (acct, name) = arn.strip_prefix("acs:ram::")?.split_once(":role/")?;
    (!acct.is_empty() && acct.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
        .then_some((acct, name))
}

fn account_of(engine: &Engine, id: &str) -> Option<Account> {
    engine
        .accounts()
        .into_iter()
        .find(|a| a.aliyun_account_id == id)
}

async fn assume_role(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let arn = p.required("RoleArn")?;
    let session = p.required("RoleSessionName")?;
    if !shapes::ascii_name(&session, 2..=64, b".@-_") {
        return Err(bad(
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName is wrongly formed: 2-64 of letters, digits, . @ - _",
        ));
    }
    let (acct_id, role_name) = parse_arn(&arn).ok_or_else(|| {
        bad(
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is wrongly formed.",
        )
    })?;
    let not_found = || ApiError::new(404, "EntityNotExist.Role", "The specified Role not exists.");
    let account = account_of(engine, acct_id).ok_or_else(not_found)?;
    // RAM role names are case-insensitive in ARNs.
    let role = engine
        .role_by_name(&account.id, role_name)
        .or_else(|| {
            engine
                .roles_of(&account.id)
                .into_iter()
                .find(|r| r.name.eq_ignore_ascii_case(role_name))
        })
        .ok_or_else(not_found)?;
    if !engine.may_assume(&ctx.principal, &role) {
        return Err(ApiError::new(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        ));
    }
    let max = role.max_session_secs.max(1);
    let min = engine.sts_min_duration_secs().min(max);
    let secs = match p.opt("DurationSeconds") {
        None => 3600.min(max),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                bad(
                    "InvalidParameter.DurationSeconds",
                    format!("The Min/Max value of DurationSeconds is {min}s/{max}s."),
                )
            })?,
    };
    let policy = p.opt("Policy");
    if policy.as_ref().is_some_and(|d| d.len() > 2048) {
        return Err(bad(
            "InvalidParameter.PolicySize",
            "The size of Policy must be smaller than 2048 bytes.",
        ));
    }
    if p.opt("ExternalId")
        .is_some_and(|e| !(2..=1224).contains(&e.len()))
    {
        return Err(bad(
            "InvalidParameter.ExternalId",
            "ExternalId is 2-1224 characters.",
        ));
    }
    let issued = engine
        .assume_role(
            &ctx.principal,
            Issuer::Aliyun,
            AssumeRole {
                role: &role,
                session_name: &session,
                duration_secs: secs,
                policy: policy.as_deref(),
                mfa_at_ms: None,
            },
        )
        .await
        .map_err(|e| match e {
            nubis_engine::CredentialError::Invalid { reason, .. } => {
                bad("InvalidParameter.PolicyGrammar", reason)
            }
            e => ApiError::new(500, "InternalError", e.to_string()),
        })?;
    let lower = role.name.to_lowercase();
    Ok(crate::actions::obj(json!({
        "Credentials": {
            "AccessKeyId": issued.id,
            "AccessKeySecret": issued.secret,
            "SecurityToken": issued.token,
            "Expiration": shapes::iso_seconds(issued.expires_at_ms),
        },
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{}:role/{lower}/{session}", account.aliyun_account_id),
            "AssumedRoleId": format!("{}:{session}", role.id),
        },
    })))
}

async fn get_caller_identity(engine: &Engine, ctx: &Ctx, _: &Params) -> Out {
    let p = &ctx.principal;
    let acct = engine
        .account(&p.account)
        .map(|a| a.aliyun_account_id)
        .unwrap_or_default();
    let mut out = json!({"AccountId": acct});
    match (p.role(), p.sub_user) {
        (Some(r), _) => {
            out["IdentityType"] = json!("AssumedRoleUser");
            out["RoleId"] = json!(r.role_id.to_string());
            out["PrincipalId"] = json!(format!("{}:{}", r.role_id, r.session_name));
            out["Arn"] = json!(format!(
                "acs:ram::{acct}:assumed-role/{}/{}",
                r.role_name.to_lowercase(),
                r.session_name
            ));
        }
        (None, Some(uid)) => {
            out["IdentityType"] = json!("RAMUser");
            out["UserId"] = json!(uid.to_string());
            out["PrincipalId"] = json!(uid.to_string());
            out["Arn"] = json!(format!("acs:ram::{acct}:user/{}", p.user));
        }
        (None, None) => {
            out["IdentityType"] = json!("Account");
            out["UserId"] = json!(acct);
            out["PrincipalId"] = json!(acct);
            out["Arn"] = json!(format!("acs:ram::{acct}:root"));
        }
    }
    Ok(crate::actions::obj(out))
}
