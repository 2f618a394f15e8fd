//! ResetInstance: reinstall an instance's system disk from an image (core's rebuild).

use super::launch::{LoginSettings, SystemDisk};
use super::limits::*;
use super::params::*;
use super::{Out, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::Bool;
use nubis_core::{DomainError, WhenRunning, ids, limits as core_limits};
use nubis_engine::{AttrChange, Batch, BatchMode, Command, Engine, RebuildGuest};
use serde::Deserialize;
use serde_json::json;

/// One switch of EnhancedService (`{"Enabled": true}`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // accepted: nubis runs no security or monitoring agent
pub(super) struct Service {
    enabled: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // accepted: nubis runs no security or monitoring agent
pub(super) struct EnhancedService {
    security_service: Option<Service>,
    monitor_service: Option<Service>,
    automation_service: Option<Service>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ResetInstanceReq {
    instance_id: Option<String>,
    image_id: Option<String>,
    system_disk: Option<SystemDisk>,
    login_settings: Option<LoginSettings>,
    #[allow(dead_code)] // parsed strictly, then accepted as documented
    enhanced_service: Option<EnhancedService>,
    host_name: Option<String>,
    user_data: Option<String>,
}

/// Longest SystemDisk.DiskName (the console's limit).
const DISK_NAME_MAX: usize = 128;

/// How the reinstalled system is logged into: a password (given, or generated as Tencent
/// does and sent nowhere: nubis has no message centre), key pairs, or the image's own login.
/// Whatever the login, the instance's former key pairs are replaced.
fn login(
    ctx: &Ctx,
    login: Option<LoginSettings>,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let Some(l) = login else {
        return Ok((Some(generated_password()), Vec::new()));
    };
    let given = [
        l.password.is_some(),
        l.key_ids.as_ref().is_some_and(|k| !k.is_empty()),
        l.keep_image_login.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::new(
            "InvalidParameter",
            "`LoginSettings` takes only one of Password, KeyIds, KeepImageLogin",
        ));
    }
    match (l.password, l.key_ids, l.keep_image_login.as_deref()) {
        (Some(pw), _, _) => Ok((Some(pw), Vec::new())),
        (None, Some(k), _) if !k.is_empty() => Ok((None, key_ids(ctx, Some(k))?)),
        (None, _, Some("TRUE")) => Ok((None, Vec::new())),
        (None, _, Some("FALSE")) | (None, _, None) => Ok((Some(generated_password()), Vec::new())),
        (None, _, Some(other)) => Err(bad_value(
            "LoginSettings.KeepImageLogin",
            format!("`{other}` is not one of TRUE, FALSE"),
        )),
    }
}

/// A random password that passes every OS's rules (Tencent mails one when none is given).
fn generated_password() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("Nb{}!7x", id.get(..14).unwrap_or("0123456789abcd"))
}

pub(super) async fn reset_instance(engine: &Engine, ctx: &Ctx, r: ResetInstanceReq) -> Out {
    let id = required(r.instance_id, "InstanceId")?;
    if let Some(image) = &r.image_id
        && !ids::is_image_id(image)
    {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("malformed image ID `{image}`"),
        ));
    }
    check_text(&USER_DATA, "UserData", r.user_data.as_deref())?;
    let (password, keys) = login(ctx, r.login_settings)?;
    let targets = instances(engine, ctx, Some(vec![id.clone()]), "InstanceId")?;
    let inst = targets
        .first()
        .and_then(|u| engine.instance(*u))
        .ok_or_else(|| {
            ctx.err(DomainError::NotFound {
                kind: nubis_core::ResourceKind::Instance,
                id: id.clone(),
            })
        })?;
    // No ImageId: the image the instance runs.
    let image_id = r.image_id.unwrap_or_else(|| inst.image_id.clone());
    let image_os = engine.image(&ctx.principal, &image_id).ok().map(|i| i.os);
    check_text(host_name_rule(image_os), "HostName", r.host_name.as_deref())?;
    // Only the size of the system disk may change, and only upwards (core checks the
    // direction against the instance).
    let mut system_disk_gib = None;
    if let Some(d) = r.system_disk {
        if let Some(t) = &d.disk_type
            && *t != inst.system_disk.disk_type
        {
            return Err(bad_value(
                "SystemDisk.DiskType",
                format!(
                    "a reinstall keeps the system disk's type ({})",
                    inst.system_disk.disk_type
                ),
            ));
        }
        if let Some(disk) = &d.disk_id
            && *disk != inst.system_disk.id
        {
            return Err(bad_value(
                "SystemDisk.DiskId",
                format!("`{disk}` is not this instance's system disk"),
            ));
        }
        if d.cdc_id.is_some() {
            return Err(bad_value(
                "SystemDisk.CdcId",
                "the instance is not in a dedicated cluster",
            ));
        }
        if d.disk_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > DISK_NAME_MAX)
        {
            return Err(bad_value(
                "SystemDisk.DiskName",
                format!("longer than {DISK_NAME_MAX} characters"),
            ));
        }
        if let Some(size) = d.disk_size {
            let range = core_limits::disk_range(DISK_RANGES, &inst.system_disk.disk_type)
                .and_then(|r| r.system)
                .ok_or_else(|| bad_value("SystemDisk.DiskType", &inst.system_disk.disk_type))?;
            system_disk_gib = Some(disk_size(
                &SYSTEM_DISK_SIZE,
                "SystemDisk.DiskSize",
                size.0,
                range,
            )?);
        }
    }
    let cmd = Command::Rebuild {
        image: image_id,
        password,
        rule: nubis_core::password::PasswordRule::Complexity,
        key_ids: Some(keys),
        when_running: WhenRunning::StopAndStart,
        system_disk_gib,
    };
    let batch = Batch {
        attrs: AttrChange {
            host_name: r.host_name,
            ..AttrChange::default()
        },
        // The user data is written with the acceptance: the reinstall gives it to the guest.
        guest: RebuildGuest {
            user_data: r.user_data.map(Some),
            files: Vec::new(),
        },
        ..Batch::new(&targets, cmd, BatchMode::AllOrNothing)
    };
    engine
        .submit_batch(&ctx.principal, &ctx.request_id, batch)
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(obj(json!({})))
}
