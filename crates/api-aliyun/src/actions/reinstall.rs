//! ReplaceSystemDisk: reinstall a stopped instance's system disk from an image (core's
//! rebuild, refused on a running instance).
use super::*;

/// Parameters ECS documents as deprecated or "not available for use": refused, as ECS refuses
/// them, rather than silently ignored.
const UNAVAILABLE: &[&str] = &["Architecture", "Platform", "EncryptAlgorithm"];

/// Values of SecurityEnhancementStrategy.
const SECURITY_STRATEGIES: &[&str] = &["Active", "Deactive"];

pub(super) async fn replace_system_disk(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let uuid = one_instance(engine, ctx, p)?;
    let image_id = p.required("ImageId")?;
    for name in UNAVAILABLE {
        if p.opt(name).is_some() {
            return Err(ApiError::new(
                400,
                "InvalidParameter",
                format!("The specified parameter \"{name}\" is not available for use."),
            ));
        }
    }
    if p.max_index("Arn") > 0 {
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            "The specified parameter \"Arn\" is not available for use.",
        ));
    }
    params::check_text(
        &params::CLIENT_TOKEN,
        "ClientToken",
        p.opt("ClientToken").as_deref(),
    )?;
    if let Some(s) = p.opt("SecurityEnhancementStrategy")
        && !SECURITY_STRATEGIES.contains(&s.as_str())
    {
        return Err(ApiError::invalid("SecurityEnhancementStrategy", s));
    }
    p.bool("UseAdditionalService")?;
    // The disks stay as they are: unencrypted (nubis has no KMS keys to encrypt with).
    if p.bool("Encrypted")? || p.opt("KMSKeyId").is_some() {
        return Err(ApiError::new(
            403,
            "InvalidParameter.Encrypted.KmsNotEnabled",
            "The encrypted disk need enable KMS.",
        ));
    }
    let password = p.opt("Password");
    let inherit = p.bool("PasswordInherit")?;
    if inherit && password.is_some() {
        return Err(ApiError::new(
            400,
            "InvalidParameter.Conflict",
            "The specified parameter \"Password\" conflicts with \"PasswordInherit\".",
        ));
    }
    let key_name = p.opt("KeyPairName");
    if let Some(k) = &key_name {
        params::check_text(&params::KEY_PAIR_NAME, "KeyPairName", Some(k))?;
    }
    let inst = engine.instance(uuid).ok_or_else(|| {
        map(DomainError::NotFound {
            kind: ResourceKind::Instance,
            id: p.opt("InstanceId").unwrap_or_default(),
        })
    })?;
    // DiskId (deprecated) may name only this instance's system disk.
    if let Some(d) = p.opt("DiskId")
        && d != inst.system_disk.id
    {
        return Err(ApiError::new(
            404,
            "InvalidDiskId.NotFound",
            "The specified disk does not exist.",
        ));
    }
    // SystemDisk.Size: the disk grows or keeps its size, within its category's range.
    let system_disk_gib = match p.str("SystemDisk.Size").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => {
            let row = &params::SYSTEM_DISK_SIZE;
            let size = limits::check_int_str(row, raw)
                .map_err(|e| params::reject(row, "SystemDisk.Size", e))?;
            if size < i64::from(inst.system_disk.size_gib) {
                return Err(ApiError::new(
                    400,
                    "InvalidSystemDiskSize.LessThanDiskSize",
                    format!(
                        "The specified parameter \"SystemDisk.Size\" ({size}) is less than the current system disk size ({}).",
                        inst.system_disk.size_gib
                    ),
                ));
            }
            let range = limits::disk_range(params::DISK_RANGES, &inst.system_disk.disk_type)
                .and_then(|r| r.system)
                .unwrap_or((1, 2048));
            Some(
                limits::check_disk_size(row, size, range)
                    .map_err(|e| params::reject(row, "SystemDisk.Size", e))?,
            )
        }
    };
    let key_ids = match &key_name {
        Some(k) => Some(vec![key_id_by_name(engine, ctx, k)?]),
        None => None,
    };
    let cmd = Command::Rebuild {
        image: image_id,
        password,
        rule: nubis_core::password::PasswordRule::Complexity,
        key_ids,
        when_running: WhenRunning::Refuse,
        system_disk_gib,
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &[uuid], cmd, false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(obj(json!({ "DiskId": inst.system_disk.id })))
}
