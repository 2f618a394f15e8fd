//! CAM operation protection: SetMfaFlag and DescribeSafeAuthFlagColl (D21). Binding a soft
//! token has no CAM API: the admin API does it (D7).

use super::{Out, err, sub_user, uin};
use crate::Ctx;
use crate::wire::Int;
use nubis_core::MfaFactors;
use nubis_engine::Engine;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct SetMfaFlagReq {
    op_uin: Option<Int>,
    login_flag: Option<Flag>,
    action_flag: Option<Flag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct Flag {
    phone: Option<Int>,
    stoken: Option<Int>,
    wechat: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct DescribeSafeAuthFlagCollReq {
    sub_uin: Option<Int>,
}

fn bit(v: Option<Int>, name: &str) -> Result<u8, crate::errors::ApiError> {
    match v {
        None | Some(Int(0)) => Ok(0),
        Some(Int(1)) => Ok(1),
        Some(_) => Err(err(
            "InvalidParameter.ParamError",
            format!("{name} must be 0 or 1"),
        )),
    }
}

/// The flag's factors; Phone or Wechat = 1 cannot be honoured (nubis has neither, D21).
fn factors(f: Option<Flag>) -> Result<Option<MfaFactors>, crate::errors::ApiError> {
    let Some(f) = f else { return Ok(None) };
    let out = MfaFactors {
        phone: bit(f.phone, "Phone")?,
        stoken: bit(f.stoken, "Stoken")?,
        wechat: bit(f.wechat, "Wechat")?,
    };
    if out.phone == 1 {
        return Err(err(
            "FailedOperation.UserNotBindPhone",
            "the user has no bound phone",
        ));
    }
    if out.wechat == 1 {
        return Err(err(
            "FailedOperation.UserNotBindWechat",
            "the user has no bound WeChat",
        ));
    }
    Ok(Some(out))
}

pub(crate) async fn set_mfa_flag(engine: &Engine, ctx: &Ctx, r: SetMfaFlagReq) -> Out {
    let p = &ctx.principal;
    let target = match r.op_uin {
        Some(v) => uin(v, "OpUin")?,
        // Absent: the caller (a sub-user; the root has no flags of its own).
        None => p.sub_user.ok_or_else(|| {
            err(
                "ResourceNotFound.UserNotExist",
                "OpUin is required when the caller is not a sub-user",
            )
        })?,
    };
    let user = sub_user(engine, &p.account, target)?;
    let login = factors(r.login_flag)?;
    let action = factors(r.action_flag)?;
    engine
        .set_mfa_flags(user.id, login, action)
        .await
        .map_err(|e| err("InternalError", e.to_string()))?;
    Ok(Default::default())
}

fn flag_out(f: MfaFactors) -> serde_json::Value {
    json!({
        "Phone": f.phone, "Token": 0, "Stoken": f.stoken, "Wechat": f.wechat,
        "Custom": 0, "Mail": 0, "U2FToken": 0, "Passkey": 0,
    })
}

pub(crate) async fn describe_safe_auth_flag_coll(
    engine: &Engine,
    ctx: &Ctx,
    r: DescribeSafeAuthFlagCollReq,
) -> Out {
    let target = uin(
        r.sub_uin
            .ok_or_else(|| err("MissingParameter", "The parameter `SubUin` is required"))?,
        "SubUin",
    )?;
    let user = sub_user(engine, &ctx.principal.account, target)?;
    let f = engine.mfa_flags(user.id);
    Ok(crate::actions::obj(json!({
        "LoginFlag": flag_out(f.login),
        "ActionFlag": flag_out(f.action),
        "OffsiteFlag": {"VerifyFlag": 0, "NotifyPhone": 0, "NotifyEmail": 0, "NotifyWechat": 0, "Tips": 0},
        "PromptTrust": 0,
    })))
}
