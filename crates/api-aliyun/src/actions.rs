//! One function per action: parse, call the engine, render.

use crate::errors::{ApiError, map};
use crate::params::{self, Params};
use crate::render;
use crate::{Ctx, KNOWN_REGIONS};
use nubis_core::limits::{self, Constraint};
use nubis_core::{DomainError, Instance, ResourceKind, StopMode, WhenRunning, catalog};
use nubis_engine::{AttrChange, Batch, BatchMode, Command, CreateSpec, Engine, IdKind, KeyNaming};
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub const ACTIONS: &[&str] = &[
    "DescribeRegions",
    "DescribeZones",
    "DescribeImages",
    "DescribeInstanceTypes",
    "RunInstances",
    "CreateInstance",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "StartInstance",
    "StartInstances",
    "StopInstance",
    "StopInstances",
    "RebootInstance",
    "RebootInstances",
    "DeleteInstance",
    "DeleteInstances",
    "ModifyInstanceAttribute",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPairs",
    "AttachKeyPair",
    "DetachKeyPair",
    "DescribeInstanceAttribute",
    "DescribeUserData",
    "DescribeInstanceVncUrl",
];

type Out = Result<Map<String, Value>, ApiError>;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn region(ctx: &Ctx) -> Result<String, ApiError> {
    ctx.region.clone().ok_or_else(|| {
        ApiError::new(
            400,
            "MissingRegionId",
            "RegionId is mandatory for this action.",
        )
    })
}

/// Shape and existence of Alibaba instance IDs, in this account and region.
fn instances(
    engine: &Engine,
    ctx: &Ctx,
    ids_in: Vec<String>,
    name: &str,
) -> Result<Vec<Uuid>, ApiError> {
    if ids_in.is_empty() {
        return Err(ApiError::missing(name));
    }
    params::check_count(&params::INSTANCE_IDS, ids_in.len())?;
    let mut unique: Vec<String> = Vec::new();
    for i in ids_in {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    // A malformed ID can never exist: the real API answers NotFound for it too.
    let uuids = engine
        .resolve(&ctx.principal, IdKind::Aliyun, &unique)
        .map_err(|e| domain(engine, ctx, e))?;
    for (uuid, id) in uuids.iter().zip(&unique) {
        if engine
            .instance(*uuid)
            .is_none_or(|i| Some(&i.region) != ctx.region.as_ref())
        {
            return Err(map(DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: id.clone(),
            }));
        }
    }
    Ok(uuids)
}

fn one_instance(engine: &Engine, ctx: &Ctx, p: &Params) -> Result<Uuid, ApiError> {
    let id = p.required("InstanceId")?;
    // Single-instance actions take the region from the instance.
    let uuid = engine
        .resolve(&ctx.principal, IdKind::Aliyun, std::slice::from_ref(&id))
        .map_err(|e| domain(engine, ctx, e))?[0];
    if let Some(r) = &ctx.region
        && engine.instance(uuid).is_none_or(|i| &i.region != r)
    {
        return Err(map(DomainError::NotFound {
            kind: ResourceKind::Instance,
            id,
        }));
    }
    Ok(uuid)
}

/// A key pair's ID from its name; InvalidKeyPairName.NotFound when the caller has none.
fn key_id_by_name(engine: &Engine, ctx: &Ctx, name: &str) -> Result<String, ApiError> {
    engine
        .key_pair_by_name(&ctx.principal, name)
        .map(|k| k.id)
        .ok_or_else(|| {
            map(DomainError::NotFound {
                kind: ResourceKind::KeyPair,
                id: name.to_string(),
            })
        })
}

fn key_name_of(engine: &Engine, ctx: &Ctx, i: &Instance) -> String {
    let Some(first) = i.key_ids.first() else {
        return String::new();
    };
    engine
        .key_pair_name(&ctx.principal, first)
        .unwrap_or_default()
}

/// A domain error as Alibaba names things: instances by their `i-` ID, key pairs by name
/// (the engine names them by canonical ID and key-pair ID).
fn domain(engine: &Engine, ctx: &Ctx, e: DomainError) -> ApiError {
    map(e.render(&engine.names(&ctx.principal, IdKind::Aliyun, KeyNaming::Name)))
}

pub(crate) async fn dispatch(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    match ctx.action.as_str() {
        "DescribeRegions" => Ok(describe_regions()),
        "DescribeZones" => describe_zones(ctx),
        "DescribeImages" => describe_images(ctx, p),
        "DescribeInstanceTypes" => describe_instance_types(p),
        "RunInstances" | "CreateInstance" => create(engine, ctx, p).await,
        "DescribeInstances" => describe_instances(engine, ctx, p),
        "DescribeInstanceStatus" => describe_instance_status(engine, ctx, p),
        "StartInstance" | "StopInstance" | "RebootInstance" | "DeleteInstance" => {
            power_one(engine, ctx, p).await
        }
        "StartInstances" | "StopInstances" | "RebootInstances" | "DeleteInstances" => {
            power_batch(engine, ctx, p).await
        }
        "ModifyInstanceAttribute" => modify(engine, ctx, p).await,
        "CreateKeyPair" | "ImportKeyPair" => create_key_pair(engine, ctx, p).await,
        "DescribeKeyPairs" => describe_key_pairs(engine, ctx, p),
        "DeleteKeyPairs" => delete_key_pairs(engine, ctx, p).await,
        "AttachKeyPair" | "DetachKeyPair" => attach(engine, ctx, p).await,
        "DescribeInstanceAttribute" => describe_instance_attribute(engine, ctx, p),
        "DescribeUserData" => describe_user_data(engine, ctx, p).await,
        "DescribeInstanceVncUrl" => describe_instance_vnc_url(engine, ctx, p),
        other => Err(ApiError::new(
            404,
            "InvalidAction.NotFound",
            format!("Specified api `{other}` is not found"),
        )),
    }
}

fn describe_regions() -> Map<String, Value> {
    let regions: Vec<Value> = KNOWN_REGIONS
        .iter()
        .map(|(id, name)| {
            let served = catalog::region_by_aliyun(id).is_some();
            json!({"RegionId": id, "LocalName": name, "RegionEndpoint": format!("ecs.{id}.aliyuncs.com"), "Status": if served { "available" } else { "soldOut" }})
        })
        .collect();
    obj(json!({"Regions": {"Region": regions}}))
}

fn describe_zones(ctx: &Ctx) -> Out {
    let region = catalog::region(&region(ctx)?).expect("resolved region");
    let types: Vec<&str> = catalog::INSTANCE_TYPES.iter().map(|t| t.aliyun).collect();
    let zones: Vec<Value> = region
        .zones
        .iter()
        .map(|z| {
            json!({
                "ZoneId": z.aliyun,
                "LocalName": z.name,
                "ZoneType": if z.edge { "EdgeZone" } else { "AvailabilityZone" },
                "AvailableInstanceTypes": {"InstanceTypes": types},
                "AvailableDiskCategories": {"DiskCategories": ["cloud_essd", "cloud_efficiency"]},
                "AvailableResourceCreation": {"ResourceTypes": ["Instance", "Disk"]},
                "AvailableVolumeCategories": {"VolumeCategories": []},
                "DedicatedHostGenerations": {"DedicatedHostGeneration": []},
                "AvailableDedicatedHostTypes": {"DedicatedHostType": []},
                "AvailableResources": {"ResourcesInfo": []},
            })
        })
        .collect();
    Ok(obj(json!({"Zones": {"Zone": zones}})))
}

/// PageNumber/PageSize within their rows (`size_row`: the action's PageSize limit).
fn page(p: &Params, size_row: &Constraint) -> Result<(usize, usize), ApiError> {
    let number = p.int(&params::PAGE_NUMBER, 1)?;
    let size = p.int(size_row, 10)?;
    // Both are positive by their rows; the product fits in 64 bits.
    let (number, size) = (number.max(1) as usize, size.max(1) as usize);
    Ok(((number - 1).saturating_mul(size), size))
}

fn describe_images(ctx: &Ctx, p: &Params) -> Out {
    let region_name = catalog::region(&region(ctx)?)
        .map(|r| r.aliyun)
        .unwrap_or_default();
    let (offset, size) = page(p, &params::PAGE_SIZE_100)?;
    let ids: Option<Vec<String>> = p
        .opt("ImageId")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let os = p.opt("OSType");
    let name = p.opt("ImageName");
    let all: Vec<&catalog::Image> = catalog::IMAGES
        .iter()
        .filter(|m| m.public)
        .filter(|m| ids.as_ref().is_none_or(|ids| ids.iter().any(|i| i == m.id)))
        .filter(|m| {
            os.as_deref().is_none_or(|o| {
                o.eq_ignore_ascii_case(if m.os == nubis_core::OsFamily::Windows {
                    "windows"
                } else {
                    "linux"
                })
            })
        })
        .filter(|m| name.as_deref().is_none_or(|n| m.name.contains(n)))
        .collect();
    let images: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|m| {
            json!({
                "ImageId": m.id, "ImageName": m.name, "ImageOwnerAlias": "system", "OSName": m.os_name, "OSNameEn": m.os_name,
                "OSType": if m.os == nubis_core::OsFamily::Windows { "windows" } else { "linux" },
                "Platform": m.platform, "Architecture": "x86_64", "Size": m.size_gib, "Status": "Available",
                "CreationTime": "2024-01-01T00:00:00Z", "Description": m.name, "IsPublic": true, "Usage": "none",
                "ImageFamily": "", "BootMode": "BIOS", "IsSupportCloudinit": true, "IsSupportIoOptimized": true,
                "DiskDeviceMappings": {"DiskDeviceMapping": []}, "Tags": {"Tag": []},
            })
        })
        .collect();
    Ok(obj(
        json!({"Images": {"Image": images}, "TotalCount": all.len(), "PageNumber": offset / size + 1, "PageSize": size, "RegionId": region_name}),
    ))
}

fn describe_instance_types(p: &Params) -> Out {
    let wanted = p.list("InstanceTypes");
    let family = p.opt("InstanceTypeFamily");
    let types: Vec<Value> = catalog::INSTANCE_TYPES
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.aliyun))
        .filter(|t| {
            family
                .as_deref()
                .is_none_or(|f| t.aliyun.starts_with(&format!("{f}.")))
        })
        .map(|t| {
            json!({
                "InstanceTypeId": t.aliyun,
                "InstanceTypeFamily": t.aliyun.rsplit_once('.').map(|(f, _)| f).unwrap_or(t.aliyun),
                "CpuCoreCount": t.cpu,
                "MemorySize": f64::from(t.memory_gib),
                "CpuArchitecture": if t.arch == catalog::Arch::Arm64 { "ARM" } else { "X86" },
                "GPUAmount": 0, "GPUSpec": "", "LocalStorageAmount": 0, "EniQuantity": 2,
            })
        })
        .collect();
    Ok(obj(
        json!({"InstanceTypes": {"InstanceType": types}, "NextToken": ""}),
    ))
}

/// The OS a HostName is for: the image's (Linux rules when the image is unknown; the engine
/// then refuses the image).
fn host_name_rule(os: Option<nubis_core::OsFamily>) -> &'static Constraint {
    if os == Some(nubis_core::OsFamily::Windows) {
        &params::HOST_NAME_WINDOWS
    } else {
        &params::HOST_NAME_LINUX
    }
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
    let bounded = Constraint {
        rule: limits::Rule::Int {
            min: range.0,
            max: range.1,
        },
        ..*row
    };
    limits::check_int(&bounded, n).map_err(|e| params::reject(&bounded, name, e))?;
    u32::try_from(n).map_err(|_| params::reject(row, name, limits::Violation::TooSmall { min: 1 }))
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

async fn create(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = region(ctx)?;
    let run = ctx.action == "RunInstances";
    let image_id = p.required("ImageId")?;
    let type_name = p.required("InstanceType")?;
    // Parameter limits first: a bad value is reported before anything is looked up.
    let count = if run { p.int(&params::AMOUNT, 1)? } else { 1 };
    let image_os = catalog::image(&image_id).map(|i| i.os);
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
    let image_size = catalog::image(&image_id).map_or(0, |i| i64::from(i.size_gib));
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
    let ty = catalog::instance_type_by_aliyun(&type_name).ok_or_else(|| {
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
        internet_max_bandwidth_out: bandwidth_out,
    };
    let created = engine
        .create(&ctx.principal, &ctx.request_id, spec, p.bool("DryRun")?)
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

fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

fn describe_instances(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let ids = p.json_list("InstanceIds")?;
    params::check_count(&params::INSTANCE_IDS, ids.as_ref().map_or(0, Vec::len))?;
    let token_mode = p.str("NextToken").is_some() || p.str("MaxResults").is_some();
    if token_mode && (p.str("PageNumber").is_some() || p.str("PageSize").is_some()) {
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            "NextToken/MaxResults and PageNumber/PageSize cannot be used together.",
        ));
    }
    let (offset, size) = if token_mode {
        let size = p.int(&params::MAX_RESULTS, 10)?.max(1) as usize;
        let offset = match p.opt("NextToken") {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .map_err(|_| ApiError::invalid("NextToken", &t))?,
        };
        (offset, size)
    } else {
        page(p, &params::PAGE_SIZE_100)?
    };
    let zone = p.opt("ZoneId");
    let status = p.opt("Status");
    let name = p.opt("InstanceName");
    let image = p.opt("ImageId");
    let itype = p.opt("InstanceType");
    let lock = p.opt("LockReason");
    let key_name = p.opt("KeyPairName");
    let key_id = key_name
        .as_ref()
        .and_then(|n| engine.key_pair_by_name(&ctx.principal, n))
        .map(|k| k.id);
    params::check_count(&params::TAGS, p.max_index("Tag"))?;
    let tags: Vec<(String, Option<String>)> = p
        .groups("Tag")
        .into_iter()
        .filter_map(|g| Some((g.get("Key")?.clone(), g.get("Value").cloned())))
        .collect();
    let region = ctx.region.clone();
    let filter = |i: &Instance| {
        Some(&i.region) == region.as_ref()
            && ids.as_ref().is_none_or(|ids| ids.contains(&i.aliyun_id))
            && zone
                .as_deref()
                .is_none_or(|z| render::zone_name(&i.zone) == z)
            && status
                .as_deref()
                .is_none_or(|s| render::status(i.state) == s)
            && name.as_deref().is_none_or(|n| wildcard(n, &i.name))
            && image.as_deref().is_none_or(|m| i.image_id == m)
            && itype.as_deref().is_none_or(|t| {
                catalog::instance_type(&i.instance_type).is_some_and(|ty| ty.aliyun == t)
            })
            && (key_name.is_none() || key_id.as_ref().is_some_and(|k| i.key_ids.contains(k)))
    };
    let filter = |i: &Instance| {
        filter(i)
            && lock
                .as_deref()
                .is_none_or(|l| render::locks(i).iter().any(|x| x["LockReason"] == l))
            && tags.iter().all(|(k, v)| {
                i.tags
                    .iter()
                    .any(|(tk, tv)| tk == k && v.as_ref().is_none_or(|v| v == tv))
            })
    };
    let (total, page) = engine.query(&ctx.principal, filter, offset, size);
    let list: Vec<Value> = page
        .iter()
        .map(|i| render::instance(i, &key_name_of(engine, ctx, i)))
        .collect();
    let mut out = json!({"Instances": {"Instance": list}, "TotalCount": total});
    if token_mode {
        let next = offset + page.len();
        out["NextToken"] = json!(if next < total {
            next.to_string()
        } else {
            String::new()
        });
    } else {
        out["PageNumber"] = json!(offset / size + 1);
        out["PageSize"] = json!(size);
        out["NextToken"] = json!("");
    }
    Ok(obj(out))
}

fn describe_instance_status(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_50)?;
    let ids = p.list("InstanceId");
    params::check_count(&params::INSTANCE_IDS, ids.len())?;
    let zone = p.opt("ZoneId");
    let region = ctx.region.clone();
    let (total, page) = engine.query(
        &ctx.principal,
        |i| {
            Some(&i.region) == region.as_ref()
                && (ids.is_empty() || ids.contains(&i.aliyun_id))
                && zone
                    .as_deref()
                    .is_none_or(|z| render::zone_name(&i.zone) == z)
        },
        offset,
        size,
    );
    let list: Vec<Value> = page
        .iter()
        .map(|i| json!({"InstanceId": i.aliyun_id, "Status": render::status(i.state)}))
        .collect();
    Ok(obj(
        json!({"InstanceStatuses": {"InstanceStatus": list}, "TotalCount": total, "PageNumber": offset / size + 1, "PageSize": size}),
    ))
}

fn stopped_mode(p: &Params) -> Result<bool, ApiError> {
    match p.opt("StoppedMode").as_deref() {
        None | Some("KeepCharging") => Ok(false),
        Some("StopCharging") => Ok(true),
        Some(other) => Err(ApiError::invalid("StoppedMode", other)),
    }
}

fn command(ctx: &Ctx, p: &Params) -> Result<Command, ApiError> {
    let hard = |name: &str| -> Result<StopMode, ApiError> {
        Ok(if p.bool(name)? {
            StopMode::Hard
        } else {
            StopMode::SoftFirst
        })
    };
    Ok(match ctx.action.as_str() {
        "StartInstance" | "StartInstances" => Command::Start,
        "StopInstance" | "StopInstances" => Command::Stop {
            mode: hard("ForceStop")?,
            stop_charging: stopped_mode(p)?,
        },
        "RebootInstance" => Command::Reboot {
            mode: hard("ForceStop")?,
        },
        "RebootInstances" => Command::Reboot {
            mode: hard("ForceReboot")?,
        },
        _ => Command::Terminate {
            force: p.bool("Force")?,
        },
    })
}

async fn power_one(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let cmd = command(ctx, p)?;
    let uuid = one_instance(engine, ctx, p)?;
    engine
        .submit(
            &ctx.principal,
            &ctx.request_id,
            &[uuid],
            cmd,
            p.bool("DryRun")?,
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// Batch actions: `AllTogether` (default) is all or nothing; `SuccessFirst` acts on each
/// instance it can and reports per instance.
async fn power_batch(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let cmd = command(ctx, p)?;
    let ids = p.list("InstanceId");
    let targets = instances(engine, ctx, ids.clone(), "InstanceId")?;
    let dry = p.bool("DryRun")?;
    let before: Vec<&'static str> = targets
        .iter()
        .map(|u| {
            engine
                .instance(*u)
                .map(|i| render::status(i.state))
                .unwrap_or("")
        })
        .collect();
    let mode = match p.opt("BatchOptimization").as_deref() {
        None | Some("AllTogether") => BatchMode::AllOrNothing,
        Some("SuccessFirst") => BatchMode::SuccessFirst,
        Some(other) => return Err(ApiError::invalid("BatchOptimization", other)),
    };
    let batch = Batch {
        dry_run: dry,
        ..Batch::new(&targets, cmd, mode)
    };
    let results: Vec<(String, String)> = engine
        .submit_batch(&ctx.principal, &ctx.request_id, batch)
        .await
        .map_err(|e| domain(engine, ctx, e))?
        .into_iter()
        .map(|r| match r {
            Ok(()) => ("200".into(), "success".into()),
            Err(DomainError::DryRunOk) => (
                "DRYRUN.SUCCESS".into(),
                "Request validation has been passed with DryRun flag set.".into(),
            ),
            Err(e) => {
                let e = domain(engine, ctx, e);
                (e.code, e.message)
            }
        })
        .collect();
    let responses: Vec<Value> = targets
        .iter()
        .zip(&ids)
        .zip(before)
        .zip(results)
        .map(|(((uuid, id), prev), (code, message))| {
            let now = engine.instance(*uuid).map(|i| render::status(i.state)).unwrap_or("Stopping");
            json!({"InstanceId": id, "Code": code, "Message": message, "PreviousStatus": prev, "CurrentStatus": now})
        })
        .collect();
    Ok(obj(
        json!({"InstanceResponses": {"InstanceResponse": responses}}),
    ))
}

async fn modify(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    // Every limit before any change: a refused request changes nothing.
    let name = p.text(&params::INSTANCE_NAME)?;
    let description = p.text(&params::DESCRIPTION)?;
    p.text(&params::USER_DATA)?;
    let uuid = one_instance(engine, ctx, p)?;
    let host_name = p.opt("HostName");
    params::check_text(
        host_name_rule(engine.instance(uuid).map(|i| i.os)),
        "HostName",
        host_name.as_deref(),
    )?;
    if let Some(password) = p.opt("Password") {
        // Alibaba: the new password takes effect after the next restart; nothing restarts now.
        let cmd = Command::ResetPassword {
            user: None,
            password,
            when_running: WhenRunning::NextBoot,
            rule: nubis_core::password::PasswordRule::Complexity,
        };
        // The password and the attributes in one commit.
        let batch = Batch {
            attrs: AttrChange {
                name,
                description,
                host_name,
            },
            ..Batch::new(std::slice::from_ref(&uuid), cmd, BatchMode::AllOrNothing)
        };
        engine
            .submit_batch(&ctx.principal, &ctx.request_id, batch)
            .await
            .map_err(|e| domain(engine, ctx, e))?;
        return Ok(Map::new());
    }
    engine
        .modify(&ctx.principal, uuid, name, description, host_name)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

async fn create_key_pair(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let name = p.required("KeyPairName")?;
    params::check_text(&params::KEY_PAIR_NAME, "KeyPairName", Some(&name))?;
    let import = ctx.action == "ImportKeyPair";
    let public = if import {
        Some(p.required("PublicKeyBody")?)
    } else {
        None
    };
    let created = engine
        .create_key_pair(&ctx.principal, &name, 0, public.as_deref())
        .await
        .map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => ApiError::new(
                400,
                "InvalidKeyPair.PublicKeyBody",
                format!("The public key is not valid: {reason}"),
            ),
            e => domain(engine, ctx, e),
        })?;
    let fp = render::fingerprint(&created.key_pair.public_key);
    if import {
        // ImportKeyPair answers no KeyPairId (the API's and the SDKs' response models have
        // none; CreateKeyPair's have one).
        Ok(obj(json!({"KeyPairName": name, "KeyPairFingerPrint": fp})))
    } else {
        Ok(obj(
            json!({"KeyPairName": name, "KeyPairFingerPrint": fp, "KeyPairId": created.key_pair.id, "PrivateKeyBody": created.private_key}),
        ))
    }
}

fn describe_key_pairs(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_50)?;
    let name = p.opt("KeyPairName");
    let fp = p.opt("KeyPairFingerPrint");
    let include_public = p.bool("IncludePublicKey")?;
    let all: Vec<Value> = engine
        .key_pairs(&ctx.principal)
        .into_iter()
        .filter(|(k, _)| name.as_deref().is_none_or(|n| wildcard(n, &k.name)))
        .filter(|(k, _)| {
            fp.as_deref()
                .is_none_or(|f| render::fingerprint(&k.public_key) == f)
        })
        .map(|(k, _)| render::key_pair(&k, include_public))
        .collect();
    let total = all.len();
    let list: Vec<Value> = all.into_iter().skip(offset).take(size).collect();
    Ok(obj(
        json!({"KeyPairs": {"KeyPair": list}, "TotalCount": total, "PageNumber": offset / size + 1, "PageSize": size}),
    ))
}

async fn delete_key_pairs(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let names = p
        .json_list("KeyPairNames")?
        .ok_or_else(|| ApiError::missing("KeyPairNames"))?;
    if names.is_empty() {
        return Err(ApiError::invalid("KeyPairNames", "1 to 100 names"));
    }
    params::check_count(&params::KEY_PAIR_NAMES, names.len())?;
    let ids: Vec<String> = names
        .iter()
        .map(|n| key_id_by_name(engine, ctx, n))
        .collect::<Result<_, _>>()?;
    engine
        .delete_key_pairs(&ctx.principal, &ids)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// Attach/Detach report per instance (Results.Result); counts and Success are strings, as
/// the Tea models type them.
async fn attach(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let name = p.required("KeyPairName")?;
    let ids = p
        .json_list("InstanceIds")?
        .ok_or_else(|| ApiError::missing("InstanceIds"))?;
    if ids.is_empty() {
        return Err(ApiError::invalid("InstanceIds", "1 to 50 IDs"));
    }
    params::check_count(&params::KEY_PAIR_INSTANCE_IDS, ids.len())?;
    let key_id = key_id_by_name(engine, ctx, &name)?;
    // Each ID resolved on its own (an unknown one fails alone); the known ones are accepted
    // together, each that can be, in one commit.
    let resolved: Vec<Result<Uuid, ApiError>> = ids
        .iter()
        .map(|id| {
            engine
                .resolve(&ctx.principal, IdKind::Aliyun, std::slice::from_ref(id))
                .map_err(|e| domain(engine, ctx, e))
                .and_then(|u| {
                    u.first().copied().ok_or_else(|| {
                        map(DomainError::NotFound {
                            kind: ResourceKind::Instance,
                            id: id.clone(),
                        })
                    })
                })
        })
        .collect();
    let known: Vec<Uuid> = resolved
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .collect();
    let cmd = if ctx.action == "AttachKeyPair" {
        Command::AssociateKeys {
            key_ids: vec![key_id.clone()],
            when_running: WhenRunning::NextBoot,
        }
    } else {
        Command::DisassociateKeys {
            key_ids: vec![key_id.clone()],
            when_running: WhenRunning::NextBoot,
        }
    };
    let mut accepted = if known.is_empty() {
        Vec::new()
    } else {
        engine
            .submit_batch(
                &ctx.principal,
                &ctx.request_id,
                Batch::new(&known, cmd, BatchMode::SuccessFirst),
            )
            .await
            .map_err(|e| domain(engine, ctx, e))?
    }
    .into_iter();
    let mut results = Vec::new();
    let mut failed = 0;
    for (id, r) in ids.iter().zip(resolved) {
        let outcome = r.and_then(|_| {
            accepted
                .next()
                .unwrap_or(Ok(()))
                .map_err(|e| domain(engine, ctx, e))
        });
        match outcome {
            Ok(()) => results.push(json!({"InstanceId": id, "Success": "true", "Code": "200", "Message": "successful"})),
            Err(e) => {
                failed += 1;
                results.push(json!({"InstanceId": id, "Success": "false", "Code": e.code, "Message": e.message}));
            }
        }
    }
    Ok(obj(
        json!({"TotalCount": ids.len().to_string(), "FailCount": failed.to_string(), "KeyPairName": name, "Results": {"Result": results}}),
    ))
}

/// DescribeInstanceAttribute: one instance by ID (no RegionId), the fields of the Tea
/// model `DescribeInstanceAttributeResponseBody`.
fn describe_instance_attribute(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let uuid = one_instance(engine, ctx, p)?;
    let inst = engine.instance(uuid).ok_or_else(|| {
        map(DomainError::NotFound {
            kind: ResourceKind::Instance,
            id: p.opt("InstanceId").unwrap_or_default(),
        })
    })?;
    let full = render::instance(&inst, &key_name_of(engine, ctx, &inst));
    let mut out = Map::new();
    for field in [
        "InstanceId",
        "InstanceName",
        "Description",
        "HostName",
        "RegionId",
        "ZoneId",
        "InstanceType",
        "Cpu",
        "Memory",
        "Status",
        "OperationLocks",
        "ImageId",
        "CreationTime",
        "ExpiredTime",
        "InstanceChargeType",
        "InternetChargeType",
        "InternetMaxBandwidthIn",
        "InternetMaxBandwidthOut",
        "InstanceNetworkType",
        "VpcAttributes",
        "PublicIpAddress",
        "InnerIpAddress",
        "EipAddress",
        "SecurityGroupIds",
        "StoppedMode",
        "SerialNumber",
        "CreditSpecification",
        "ClusterId",
        "VlanId",
    ] {
        if let Some(v) = full.get(field) {
            out.insert(field.to_string(), v.clone());
        }
    }
    // Typed as a string here ("optimized" / "none"), a boolean in DescribeInstances.
    out.insert("IoOptimized".into(), json!("optimized"));
    out.insert(
        "DedicatedHostAttribute".into(),
        json!({"DedicatedHostId": "", "DedicatedHostName": ""}),
    );
    Ok(out)
}

/// DescribeUserData: the UserData given at create, base64 as given ("" when none).
async fn describe_user_data(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region_name = catalog::region(&region(ctx)?)
        .map(|r| r.aliyun)
        .unwrap_or_default();
    let uuid = one_instance(engine, ctx, p)?;
    let data = engine
        .user_data(&ctx.principal, uuid)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    let id = engine
        .instance(uuid)
        .map(|i| i.aliyun_id)
        .unwrap_or_default();
    Ok(obj(
        json!({"InstanceId": id, "RegionId": region_name, "UserData": data.unwrap_or_default()}),
    ))
}

/// DescribeInstanceVncUrl: a one-time WebSocket address under this server's `/console`
/// (docs/aliyun-errors.md "DescribeInstanceVncUrl"). The token is random per call and
/// recorded nowhere: the address grants nothing until the web console serves it.
fn describe_instance_vnc_url(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let uuid = one_instance(engine, ctx, p)?;
    let id = engine
        .instance(uuid)
        .map(|i| i.aliyun_id)
        .unwrap_or_default();
    let token: String = uuid::Uuid::new_v4().simple().to_string();
    // ws:// or wss:// beside the public http(s) URL (checked at start to be one of them).
    let base = ctx.public_url.trim_end_matches('/');
    let base = match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(base)),
    };
    let url = format!("{base}/console/vnc/{id}?s={token}");
    // Percent-encoded, as ECS returns it (the console page takes it as one query value).
    let encoded: String = url
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(obj(json!({"VncUrl": encoded})))
}
