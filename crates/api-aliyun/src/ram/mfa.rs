//! RAM virtual MFA devices: CreateVirtualMFADevice, BindMFADevice. Binding matters for
//! console logins only (D9): API callers' `acs:MFAPresent` is false.

use super::{check_name, internal};
use crate::Ctx;
use crate::actions::{Out, obj};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_engine::{CredentialError, Engine};
use serde_json::json;

pub(crate) async fn create_virtual_mfa_device(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let name = p.required("VirtualMFADeviceName")?;
    check_name("VirtualMFADeviceName", &name, 64, b".-")?;
    let (serial, seed) = engine
        .create_virtual_mfa(&ctx.principal.account, &name)
        .await
        .map_err(|e| match e {
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.VirtualMFADevice",
                "The virtual MFA device does already EXIST.",
            ),
            CredentialError::Invalid { .. } => ApiError::new(
                409,
                "LimitExceeded.VirtualMFADevice",
                "The count of virtual MFA devices beyond the current limits.",
            ),
            e => internal(e),
        })?;
    // nubis draws no QR code: QRCodePNG is empty (the seed is what an app needs).
    Ok(obj(json!({"VirtualMFADevice": {
        "SerialNumber": serial,
        "Base32StringSeed": seed,
        "QRCodePNG": "",
    }})))
}

fn code(p: &Params, name: &str) -> Result<String, ApiError> {
    let c = p.required(name)?;
    if c.len() != 6 || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::new(
            400,
            "InvalidParameter.AuthenticationCode.Format",
            "The parameter - \"AuthenticationCode\" MUST be 6 numbers.",
        ));
    }
    Ok(c)
}

pub(crate) async fn bind_mfa_device(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let account = &ctx.principal.account;
    let serial = p.required("SerialNumber")?;
    let user = p.required("UserName")?;
    let c1 = code(p, "AuthenticationCode1")?;
    let c2 = code(p, "AuthenticationCode2")?;
    if engine.sub_user(account, &user).is_err() {
        return Err(ApiError::new(
            404,
            "EntityNotExist.User",
            "The user does not exist.",
        ));
    }
    engine
        .bind_virtual_mfa(account, &serial, &user, &c1, &c2)
        .await
        .map_err(|e| match e {
            CredentialError::NotFound(_) => ApiError::new(
                404,
                "EntityNotExist.VirtualMFADevice",
                "The virtual MFA device does not exist.",
            ),
            CredentialError::Conflict(m) if m.starts_with("user") => ApiError::new(
                409,
                "EntityAlreadyExists.User.MFADevice",
                "The user has already bound an MFA device.",
            ),
            CredentialError::Conflict(_) => ApiError::new(
                409,
                "EntityAlreadyExists.VirtualMFADevice.User",
                "The virtual MFA device has already been bound to a user.",
            ),
            CredentialError::Invalid { .. } => ApiError::new(
                403,
                "CheckAuthenticationCodeFail",
                "The parameter - \"AuthenticationCode\" is inccorrect.",
            ),
            e => internal(e),
        })?;
    Ok(Default::default())
}
