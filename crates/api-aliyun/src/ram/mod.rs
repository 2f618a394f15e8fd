//! Alibaba RAM 2015-05-01 (docs/identity-wire.md §6): this file holds the role and virtual
//! MFA actions ([`roles`], [`mfa`]); users, keys and policies are declared beside them.

mod mfa;
mod roles;

use crate::actions::{BoxFuture, Handler, Out};
use crate::errors::ApiError;
use nubis_pipeline::{ActionSpec, RegionUse, Registry};

pub const VERSION: &str = "2015-05-01";

/// RAM actions: policy `ram:<Action>`, 100 requests/s, region optional and ignored (D3).
macro_rules! ram {
    ($name:literal, $mutates:expr, $run:path) => {
        ActionSpec {
            name: $name,
            rate_limit: 100,
            mutates: $mutates,
            dry_run: false,
            policy: concat!("ram:", $name),
            params: concat!($name, "Request"),
            region: RegionUse::Optional,
            handler: Handler(|e, c, p| -> BoxFuture<'_, Out> { Box::pin($run(e, c, p)) }),
        }
    };
}

const SPECS: &[ActionSpec<Handler>] = &[
    ram!("CreateRole", true, roles::create_role),
    ram!("GetRole", false, roles::get_role),
    ram!("AttachPolicyToRole", true, roles::attach_policy_to_role),
    ram!(
        "CreateVirtualMFADevice",
        true,
        mfa::create_virtual_mfa_device
    ),
    ram!("BindMFADevice", true, mfa::bind_mfa_device),
];

/// Alibaba RAM, served beside ECS by version.
pub static REGISTRY: Registry<Handler> = Registry {
    cloud: "aliyun",
    service: "ram",
    version: VERSION,
    actions: SPECS,
};

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
