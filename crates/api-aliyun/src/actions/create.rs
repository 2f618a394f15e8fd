//! RunInstances and CreateInstance: every parameter limit, then one engine create.
use super::*;

/// The OS a HostName is for: the image's (Linux rules when the image is unknown; the engine
/// then refuses the image).
pub(super) fn host_name_rule(os: Option<nubis_core::OsFamily>) -> &'static Constraint {
    limits::host_name_row(os, &params::HOST_NAME_LINUX, &params::HOST_NAME_WINDOWS)
}

/// A disk's category key in [`params::DISK_RANGES`] (ESSD by performance level) and its range.
fn disk_range(
    category: &str,
    level: Option<&str>,
    level_param: &str,
    category_code: &'static str,
    category_param: &str,
) -> Result<&'static nubis_core::limits::DiskRange, ApiError> {
    let key = match (category, level) {
        ("cloud_essd", Some(pl)) => {
            if !["PL0", "PL1", "PL2", "PL3"].contains(&pl) {
                return Err(ApiError::invalid(level_param, pl));
            }
            format!("cloud_essd:{pl}")
        }
        (c, _) => c.to_string(),
    };
    limits::disk_range(params::DISK_RANGES, &key).ok_or_else(|| {
        ApiError::new(
            400,
            category_code,
            format!("The specified parameter \"{category_param}\" is not valid."),
        )
    })
}

/// A disk size: an integer in the category's range (`range`), else the row's code.
fn disk_size(
    row: &Constraint,
    name: &str,
    raw: Option<&str>,
    default: i64,
    range: (i64, i64),
) -> Result<u32, ApiError> {
    let n = match raw {
        None | Some("") => default,
        Some(v) => limits::check_int_str(row, v).map_err(|e| params::reject(row, name, e))?,
    };
    limits::check_disk_size(row, n, range).map_err(|e| params::reject(row, name, e))
}

/// Tag.N.Key / Tag.N.Value: at most 20, each within its limits.
fn tags(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let groups = p.groups("Tag");
    params::check_count(&params::TAGS, groups.len().max(p.max_index("Tag")))?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let Some(key) = g.get("Key").filter(|k| !k.is_empty()) else {
            if g.contains_key("Value") {
                return Err(ApiError::new(
                    400,
                    "InvalidTag.Mismatch",
                    "The specified Tag.n.Key and Tag.n.Value are not match.",
                ));
            }
            continue;
        };
        params::check_text(&params::TAG_KEY, "Tag.N.Key", Some(key))?;
        let value = g.get("Value").cloned().unwrap_or_default();
        params::check_text(&params::TAG_VALUE, "Tag.N.Value", Some(&value))?;
        out.push((key.clone(), value));
    }
    Ok(out)
}

/// `run`: RunInstances (started, a batch) rather than CreateInstance (one, stopped).
pub(super) async fn create(engine: &Engine, ctx: &Ctx, p: &Params, run: bool) -> Out {
    let region = region(ctx)?;
    let image_id = p.required("ImageId")?;
    let type_name = p.required("InstanceType")?;
    // Parameter limits first: a bad value is reported before anything is looked up.
    let count = if run { p.int(&params::AMOUNT, 1)? } else { 1 };
    let image = engine.image(&ctx.principal, &image_id).ok();
    let image_os = image.as_ref().map(|i| i.os);
    let name = p.text(&params::INSTANCE_NAME)?;
    let host_name = p.opt("HostName");
    params::check_text(host_name_rule(image_os), "HostName", host_name.as_deref())?;
    let description = p.text(&params::DESCRIPTION)?;
    let client_token = p.text(&params::CLIENT_TOKEN)?;
    let user_data = p.text(&params::USER_DATA)?;
    // 0..=100 by its row.
    let bandwidth_out = u32::try_from(p.int(&params::BANDWIDTH_OUT, 0)?).unwrap_or(0);
    let tags = tags(p)?;
    let disks = p.groups("DataDisk");
    params::check_count(
        &params::DATA_DISKS,
        disks.len().max(p.max_index("DataDisk")),
    )?;
    let mut data_disks = Vec::with_capacity(disks.len());
    for (n, g) in disks.iter().enumerate() {
        let category = g
            .get("Category")
            .filter(|c| !c.is_empty())
            .cloned()
            .unwrap_or_else(|| "cloud_essd".into());
        let range = disk_range(
            &category,
            g.get("PerformanceLevel")
                .map(String::as_str)
                .filter(|l| !l.is_empty()),
            &format!("DataDisk.{}.PerformanceLevel", n + 1),
            "InvalidDataDiskCategory.ValueNotSupported",
            &format!("DataDisk.{}.Category", n + 1),
        )?;
        let size = disk_size(
            &params::DATA_DISK_SIZE,
            &format!("DataDisk.{}.Size", n + 1),
            g.get("Size").map(String::as_str),
            40,
            range.data,
        )?;
        data_disks.push((size, category));
    }
    let system_category = p
        .opt("SystemDisk.Category")
        .unwrap_or_else(|| "cloud_essd".into());
    let system_range = disk_range(
        &system_category,
        p.opt("SystemDisk.PerformanceLevel").as_deref(),
        "SystemDisk.PerformanceLevel",
        "InvalidSystemDiskCategory.ValueNotSupported",
        "SystemDisk.Category",
    )?
    .system
    .ok_or_else(|| {
        ApiError::new(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            "The specified parameter \"SystemDisk.Category\" is not valid.",
        )
    })?;
    let image_size = image.as_ref().map_or(0, |i| i64::from(i.size_gib));
    let system_disk_gib = disk_size(
        &params::SYSTEM_DISK_SIZE,
        "SystemDisk.Size",
        p.str("SystemDisk.Size"),
        image_size.max(40),
        system_range,
    )?;
    if i64::from(system_disk_gib) < image_size {
        return Err(ApiError::new(
            404,
            "InvalidSystemDiskSize.LessThanImageSize",
            "The specified parameter SystemDisk.Size is less than the image size.",
        ));
    }
    let ty = super::instance_type_by_aliyun(engine, ctx, &type_name).ok_or_else(|| {
        ApiError::new(
            404,
            "InvalidInstanceType.NotFound",
            format!("The specified InstanceType `{type_name}` does not exist."),
        )
    })?;
    let zone = match p.opt("ZoneId") {
        Some(z) => catalog::zone_by_aliyun(&z)
            .filter(|zone| {
                catalog::region(&region).is_some_and(|r| r.zones.iter().any(|rz| rz.id == zone.id))
            })
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidZoneId.NotFound",
                    format!("The specified zone `{z}` does not exist."),
                )
            })?,
        None => catalog::region(&region)
            .and_then(|r| r.zones.first())
            .ok_or_else(|| map(DomainError::UnsupportedRegion(region.clone())))?,
    };
    let key_ids = match p.opt("KeyPairName") {
        Some(name) => vec![key_id_by_name(engine, ctx, &name)?],
        None => Vec::new(),
    };
    let set = super::groups::launch_set(engine, ctx, p)?;
    let spec = CreateSpec {
        region,
        zone: zone.id.to_string(),
        instance_type: ty.name.to_string(),
        image_id,
        // 1..=100 by the AMOUNT row.
        count: u32::try_from(count).unwrap_or(1),
        name,
        host_name,
        password: p.opt("Password"),
        key_ids,
        client_token,
        system_disk_gib,
        system_disk_type: system_category,
        data_disks,
        project_id: 0,
        charge_type: "POSTPAID_BY_HOUR".into(),
        security_group_ids: p.opt("SecurityGroupId").into_iter().collect(),
        tags,
        description,
        start: run,
        attrs: Default::default(),
        rule: nubis_core::password::PasswordRule::Complexity,
        user_data,
        files: Vec::new(),
        internet_max_bandwidth_out: bandwidth_out,
    };
    let created = engine
        .create_in(
            &ctx.principal,
            &ctx.request_id,
            spec,
            p.bool("DryRun")?,
            nubis_engine::SoldOut::Refuse,
            set.as_deref(),
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    if run {
        let ids: Vec<&str> = created.iter().map(|i| i.aliyun_id.as_str()).collect();
        Ok(obj(
            json!({"InstanceIdSets": {"InstanceIdSet": ids}, "OrderId": "", "TradePrice": 0.0}),
        ))
    } else {
        // The engine never answers an empty list; should it, that is our fault, not a panic.
        let first = created.first().ok_or_else(|| {
            map(DomainError::Internal(
                "instance creation returned no instance".into(),
            ))
        })?;
        Ok(obj(
            json!({"InstanceId": first.aliyun_id, "OrderId": "", "TradePrice": 0.0}),
        ))
    }
}
