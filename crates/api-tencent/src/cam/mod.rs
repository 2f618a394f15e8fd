//! Tencent CAM 2019-01-16 (docs/identity-wire.md §3): this file holds the role and MFA
//! actions ([`roles`], [`mfa`]); users, keys and policies are declared beside them.

mod mfa;
mod roles;

use crate::actions::{Handler, Payload, parse};
use crate::errors::{ApiError, Codes};
use crate::wire::Int;
use nubis_core::SubUser;
use nubis_engine::Engine;
use nubis_pipeline::{ActionSpec, RegionUse, Registry};
use serde_json::{Map, Value};

pub const VERSION: &str = "2019-01-16";

/// CAM actions: policy `cam:<Action>`, 20 requests/s, region optional (CAM is region-less,
/// D3).
macro_rules! cam {
    ($name:literal, $params:ty, $run:path, $mutates:expr) => {
        ActionSpec {
            name: $name,
            rate_limit: 20,
            mutates: $mutates,
            dry_run: false,
            policy: concat!("cam:", $name),
            params: stringify!($params),
            region: RegionUse::Optional,
            handler: Handler {
                run: |engine, ctx, params| {
                    Box::pin(async move {
                        let req: $params = parse(params)?;
                        $run(engine, ctx, req).await.map(Payload::from)
                    })
                },
                codes: Codes::DEFAULT,
            },
        }
    };
}

const SPECS: &[ActionSpec<Handler>] = &[
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

/// Tencent CAM, served beside CVM by version.
pub static REGISTRY: Registry<Handler> = Registry {
    cloud: "tencent",
    service: "cam",
    version: VERSION,
    actions: SPECS,
};

type Out = Result<Map<String, Value>, ApiError>;

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

/// CAM datetimes: `YYYY-MM-DD hh:mm:ss`, UTC (D17).
fn datetime(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .unwrap_or_default()
}
