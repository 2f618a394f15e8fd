//! Tencent STS 2018-08-13 (docs/identity-wire.md §4, D6, D7, D14): `GetSessionToken` (an MFA
//! session), `AssumeRole` (a role session), `GetCallerIdentity`. Parse strictly, call the
//! engine, render; who may assume a role and how codes are checked live in the engine.

use crate::Ctx;
use crate::actions::{Handler, action, global, global_write};
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::Principal;
use nubis_engine::{AssumeRole, Engine, IssuedCredential, Issuer, MfaRefusal};
use nubis_pipeline::{ActionSpec, Registry, shapes};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const VERSION: &str = "2018-08-13";

const SPECS: &[ActionSpec<Handler>] = &[
    global_write(action!(sts: "GetSessionToken", GetSessionTokenReq, get_session_token)),
    global_write(action!(sts: "AssumeRole", AssumeRoleReq, assume_role)),
    global(action!(sts: "GetCallerIdentity", GetCallerIdentityReq, get_caller_identity)),
];

/// Tencent STS, served beside CVM by version.
pub static REGISTRY: Registry<Handler> = Registry::new("tencent", "sts", VERSION, SPECS);

type Out = Result<Map<String, Value>, ApiError>;

fn err(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(code, message)
}

/// GetSessionToken's DurationSeconds ceiling: root 7200 s, sub-user 129600 s.
const ROOT_MAX_SESSION: u64 = 7200;
const USER_MAX_SESSION: u64 = 129_600;
/// AssumeRole's DurationSeconds ceiling.
const ROLE_MAX_SESSION: u64 = 43_200;
/// Session policy length (STS: "PolicyTooLong").
const MAX_SESSION_POLICY: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(crate) struct GetSessionTokenReq {
    serial_number: Option<String>,
    token_code: Option<String>,
    duration_seconds: Option<Int>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // accepted, not used: ExternalId, Tags, SourceIdentity
pub(crate) struct AssumeRoleReq {
    role_arn: Option<String>,
    role_session_name: Option<String>,
    duration_seconds: Option<Int>,
    policy: Option<String>,
    external_id: Option<String>,
    tags: Option<Vec<TagRef>>,
    source_identity: Option<String>,
    serial_number: Option<String>,
    token_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)]
pub(crate) struct TagRef {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetCallerIdentityReq {}

/// A required string: present and not empty.
fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    crate::actions::params::required(v.filter(|s| !s.is_empty()), name)
}

/// The MFA serial `qcs::cam:uin/<uin>::mfa/<type>`: the UIN must be the owner's or the
/// caller's own; the type must be `softToken` (D7). Returns the canonical serial (the
/// owner's).
fn check_serial(engine: &Engine, p: &Principal, serial: &str) -> Result<String, ApiError> {
    let parsed = serial
        .strip_prefix("qcs::cam:uin/")
        .and_then(|rest| rest.split_once("::mfa/"))
        .and_then(|(uin, kind)| uin.parse::<u64>().ok().map(|u| (u, kind)));
    let Some((uin, kind)) = parsed else {
        return Err(err(
            "InvalidParameter.ParamError",
            "SerialNumber must be qcs::cam:uin/<uin>::mfa/softToken",
        ));
    };
    let owner = engine
        .account(&p.account)
        .map_or(0, |a| a.tencent_owner_uin);
    if uin != owner && Some(uin) != p.sub_user {
        return Err(err(
            "InvalidParameter.AccountNotAvaliable",
            format!("uin {uin} in SerialNumber is neither the owner's nor the caller's"),
        ));
    }
    if kind != "softToken" {
        return Err(err(
            "FailedOperation.MFATypeNotSupported",
            format!("MFA type `{kind}` is not supported: only softToken"),
        ));
    }
    Ok(nubis_engine::tencent_serial(owner))
}

async fn check_code(
    engine: &Engine,
    p: &Principal,
    serial: &str,
    code: &str,
) -> Result<i64, ApiError> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(
            "FailedOperation.CheckMFAError",
            "TokenCode must be the 6 digits of the soft token",
        ));
    }
    engine
        .verify_mfa_code(p, serial, code)
        .await
        .map_err(|e| match e {
            MfaRefusal::NoDevice => err(
                "FailedOperation.CheckMFAError",
                "no soft token is bound to the caller",
            ),
            MfaRefusal::WrongCode => err(
                "FailedOperation.CheckMFAError",
                "the TokenCode is wrong or was already used",
            ),
        })
}

fn duration(d: Option<Int>, default: u64, min: u64, max: u64) -> Result<u64, ApiError> {
    let Some(Int(n)) = d else {
        return Ok(default);
    };
    u64::try_from(n)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            err(
                "InvalidParameter.OverTimeError",
                format!("DurationSeconds must be between {min} and {max}"),
            )
        })
}

fn credentials(c: &IssuedCredential) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "Credentials".into(),
        json!({"Token": c.token, "TmpSecretId": c.id, "TmpSecretKey": c.secret}),
    );
    m.insert("ExpiredTime".into(), json!(c.expires_at_ms / 1000));
    m.insert(
        "Expiration".into(),
        json!(shapes::iso_seconds(c.expires_at_ms)),
    );
    m
}

fn failed(e: nubis_engine::CredentialError) -> ApiError {
    err("InternalError", e.to_string())
}

async fn get_session_token(engine: &Engine, ctx: &Ctx, r: GetSessionTokenReq) -> Out {
    let p = &ctx.principal;
    if p.session.is_some() {
        return Err(err(
            "FailedOperation.TempKeyNotAllowed",
            "GetSessionToken cannot be called with a temporary credential",
        ));
    }
    let serial = required(r.serial_number, "SerialNumber")?;
    let code = required(r.token_code, "TokenCode")?;
    let max = if p.sub_user.is_some() {
        USER_MAX_SESSION
    } else {
        ROOT_MAX_SESSION
    };
    let secs = duration(
        r.duration_seconds,
        1800,
        engine.sts_min_duration_secs().min(1800),
        max,
    )?;
    let serial = check_serial(engine, p, &serial)?;
    let mfa_at = check_code(engine, p, &serial, &code).await?;
    let issued = engine
        .issue_session_token(p, Issuer::Tencent, secs, Some(mfa_at))
        .await
        .map_err(failed)?;
    Ok(credentials(&issued))
}

/// `qcs::cam::uin/<owner>:roleName/<name>` or `qcs::cam::uin/<owner>:role/<id>`.
fn parse_role_arn(arn: &str) -> Option<(u64, Result<u64, &str>)> {
    let rest = arn.strip_prefix("qcs::cam::uin/")?;
    let (uin, what) = rest.split_once(':')?;
    let uin = uin.parse().ok()?;
    if let Some(name) = what.strip_prefix("roleName/") {
        return (!name.is_empty()).then_some((uin, Err(name)));
    }
    let id = what.strip_prefix("role/")?.parse().ok()?;
    Some((uin, Ok(id)))
}

/// `%XX` sequences decoded (anything else kept as is: a document sent unencoded passes);
/// invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b.get(i),
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn assume_role(engine: &Engine, ctx: &Ctx, r: AssumeRoleReq) -> Out {
    let p = &ctx.principal;
    let arn = required(r.role_arn, "RoleArn")?;
    let session = required(r.role_session_name, "RoleSessionName")?;
    if !shapes::ascii_name(&session, 2..=128, b"+=,.@_-") {
        return Err(err(
            "InvalidParameter.ParamError",
            "RoleSessionName must be 2-128 of A-Z a-z 0-9 + = , . @ _ -",
        ));
    }
    if r.external_id
        .as_ref()
        .is_some_and(|e| !(2..=128).contains(&e.len()))
        || r.tags.as_ref().is_some_and(|t| {
            t.len() > 50 || t.iter().any(|t| t.key.len() > 128 || t.value.len() > 256)
        })
        || r.source_identity.as_ref().is_some_and(|s| s.len() > 128)
    {
        return Err(err(
            "InvalidParameter.ParamError",
            "ExternalId (2-128), Tags (at most 50; keys 128, values 256) or SourceIdentity (128) out of range",
        ));
    }
    let Some((uin, which)) = parse_role_arn(&arn) else {
        return Err(err(
            "InvalidParameter.ResouceError",
            "RoleArn must be qcs::cam::uin/<uin>:roleName/<name> or qcs::cam::uin/<uin>:role/<id>",
        ));
    };
    let not_found = || {
        err(
            "ResourceNotFound.RoleNotFound",
            format!("role {arn} does not exist"),
        )
    };
    let account = engine
        .accounts()
        .into_iter()
        .find(|a| a.tencent_owner_uin == uin)
        .ok_or_else(not_found)?;
    let role = match which {
        Ok(id) => engine.role_by_id(&account.id, id),
        Err(name) => engine.role_by_name(&account.id, name),
    }
    .ok_or_else(not_found)?;
    if !engine.may_assume(p, &role) {
        return Err(err(
            "UnauthorizedOperation",
            format!(
                "the trust policy of role {} does not allow the caller",
                role.name
            ),
        ));
    }
    let ceiling = match role.max_session_secs {
        0 => ROLE_MAX_SESSION,
        n => n.min(ROLE_MAX_SESSION),
    };
    let min = engine.sts_min_duration_secs().min(ceiling);
    let secs = duration(r.duration_seconds, 7200.min(ceiling), min, ceiling)?;
    let policy = match r.policy {
        Some(raw) if !raw.is_empty() => {
            // The SDK sends it URL-encoded (the server decodes it).
            let decoded = percent_decode(&raw);
            if decoded.len() > MAX_SESSION_POLICY {
                return Err(err(
                    "InvalidParameter.PolicyTooLong",
                    format!("Policy is longer than {MAX_SESSION_POLICY} characters"),
                ));
            }
            Some(decoded)
        }
        _ => None,
    };
    let mfa_at = match (r.serial_number, r.token_code) {
        (Some(serial), Some(code)) => {
            let serial = check_serial(engine, p, &serial)?;
            Some(check_code(engine, p, &serial, &code).await?)
        }
        (None, None) => None,
        _ => {
            return Err(err(
                "InvalidParameter.ParamError",
                "SerialNumber and TokenCode go together",
            ));
        }
    };
    let issued = engine
        .assume_role(
            p,
            Issuer::Tencent,
            AssumeRole {
                role: &role,
                session_name: &session,
                duration_secs: secs,
                policy: policy.as_deref(),
                mfa_at_ms: mfa_at,
            },
        )
        .await
        .map_err(|e| match e {
            nubis_engine::CredentialError::Invalid { reason, .. } => {
                err("InvalidParameter.StrategyFormatError", reason)
            }
            e => failed(e),
        })?;
    Ok(credentials(&issued))
}

async fn get_caller_identity(engine: &Engine, ctx: &Ctx, _: GetCallerIdentityReq) -> Out {
    let p = &ctx.principal;
    let owner = engine
        .account(&p.account)
        .map_or(0, |a| a.tencent_owner_uin);
    let (arn, user, kind) = match (p.role(), p.sub_user) {
        (Some(r), _) => (
            format!(
                "qcs::sts:{owner}:assumed-role/{}/{}",
                r.role_id, r.session_name
            ),
            format!("{}:{}", r.role_id, r.session_name),
            "CAMRole",
        ),
        (None, Some(uin)) => (
            format!("qcs::cam::uin/{owner}:uin/{uin}"),
            uin.to_string(),
            "CAMUser",
        ),
        (None, None) => (
            format!("qcs::cam::uin/{owner}:uin/{owner}"),
            owner.to_string(),
            "RootAccount",
        ),
    };
    Ok(crate::actions::obj(json!({
        "Arn": arn,
        "AccountId": owner.to_string(),
        "UserId": user,
        "PrincipalId": user,
        "Type": kind,
    })))
}
