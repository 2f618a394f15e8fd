//! One function per action: parse strictly, call the engine, render.

use crate::errors::{ApiError, map};
use crate::render;
use crate::wire::{Bool, Int};
use crate::{Ctx, DOCUMENTED_REGIONS};
use nubis_core::limits::{self, Constraint, DiskRange, Rule, Violation};
use nubis_core::{DomainError, Instance, ResourceKind, StopMode, WhenRunning, catalog, ids};
use nubis_engine::{Command, CreateSpec, Engine, IdKind, KeyNaming};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use uuid::Uuid;

pub const ACTIONS: &[&str] = &[
    "DescribeRegions",
    "DescribeZones",
    "DescribeImages",
    "DescribeInstanceTypeConfigs",
    "RunInstances",
    "DescribeInstances",
    "DescribeInstancesStatus",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "ResetInstancesPassword",
    "EnterRescueMode",
    "ExitRescueMode",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPairs",
    "AssociateInstancesKeyPairs",
    "DisassociateInstancesKeyPairs",
];

// -- documented limits -------------------------------------------------------------------
//
// Every limit of the dialect as data: one row per parameter (checked by nubis_core::limits),
// the table docs/parameter-limits.md mirrors. Codes are CVM's.

const fn text(
    param: &'static str,
    min: usize,
    max: usize,
    shape: Option<fn(&str) -> bool>,
    code: &'static str,
    code_high: Option<&'static str>,
) -> Constraint {
    Constraint {
        param,
        rule: Rule::Text { min, max, shape },
        code,
        code_high,
        code_low: None,
        status: 0,
    }
}

const fn int(param: &'static str, min: i64, max: i64, code: &'static str) -> Constraint {
    Constraint {
        param,
        rule: Rule::Int { min, max },
        code,
        code_high: None,
        code_low: None,
        status: 0,
    }
}

const fn count(param: &'static str, max: usize, code: &'static str) -> Constraint {
    Constraint {
        param,
        rule: Rule::Count { max },
        code,
        code_high: None,
        code_low: None,
        status: 0,
    }
}

fn key_name_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RunInstances InstanceName: at most 128 characters (the current reference; the error code's
/// text still says 60 bytes).
const INSTANCE_NAME: Constraint = text(
    "InstanceName",
    1,
    128,
    None,
    "InvalidParameterValue",
    Some("InvalidInstanceName.TooLong"),
);
/// HostName of a Linux (non-Windows) instance: 2–60, dot-separated segments.
const HOST_NAME_LINUX: Constraint = text(
    "HostName",
    2,
    60,
    Some(limits::linux_host_name),
    "InvalidParameter.HostNameIllegal",
    None,
);
/// HostName of a Windows instance: 2–15, no dots, not all digits.
const HOST_NAME_WINDOWS: Constraint = text(
    "HostName",
    2,
    15,
    Some(limits::windows_host_name),
    "InvalidParameter.HostNameIllegal",
    None,
);
const CLIENT_TOKEN: Constraint = text(
    "ClientToken",
    1,
    64,
    Some(limits::ascii),
    "InvalidParameterValue",
    Some("InvalidClientToken.TooLong"),
);
/// CreateKeyPair/ImportKeyPair KeyName: 1–25 letters, digits, `_`, a code per violation.
const KEY_NAME: Constraint = Constraint {
    param: "KeyName",
    rule: Rule::Text {
        min: 1,
        max: 25,
        shape: Some(key_name_chars),
    },
    code: "InvalidKeyPairNameIncludeIllegalChar",
    code_high: Some("InvalidKeyPairNameTooLong"),
    code_low: Some("InvalidKeyPairNameEmpty"),
    status: 0,
};
/// TagSpecification.N.Tags.N.Key / .Value (Tencent Cloud tag rules).
const TAG_KEY: Constraint = text("Tags.N.Key", 1, 127, None, "InvalidParameterValue", None);
const TAG_VALUE: Constraint = text("Tags.N.Value", 0, 255, None, "InvalidParameterValue", None);
const INSTANCE_COUNT: Constraint = int(
    "InstanceCount",
    1,
    limits::batch::TENCENT_LAUNCH as i64,
    "InvalidParameterValue.Range",
);
/// MinCount: a positive integer not above InstanceCount (checked against it too).
const MIN_COUNT: Constraint = int(
    "MinCount",
    1,
    500,
    "InvalidParameterValue.InvalidParameterMinCount",
);
/// UserData: base64 of at most 16 KiB.
fn user_data_shape(s: &str) -> bool {
    limits::base64_decoded_len(s).is_some_and(|n| n <= 16 * 1024)
}
const USER_DATA: Constraint = text(
    "UserData",
    0,
    limits::base64_len(16 * 1024),
    Some(user_data_shape),
    "InvalidParameterValue.InvalidUserDataFormat",
    Some("InvalidParameterValue.TooLong"),
);
/// Codes and parse bounds of disk sizes; the range itself is the disk type's (DISK_RANGES).
const SYSTEM_DISK_SIZE: Constraint = int(
    "SystemDisk.DiskSize",
    1,
    32000,
    "InvalidParameterValue.Range",
);
const DATA_DISK_SIZE: Constraint = int(
    "DataDisks.N.DiskSize",
    1,
    32000,
    "InvalidParameterValue.Range",
);
/// At most 21 data disks: up to 20 cloud disks and 1 local disk.
const DATA_DISKS: Constraint = count("DataDisks", 21, "InvalidParameterValue.LimitExceeded");
const CLOUD_DATA_DISKS: Constraint = count(
    "DataDisks (cloud)",
    20,
    "InvalidParameterValue.LimitExceeded",
);
const TAGS: Constraint = count("Tags", 50, "InvalidParameterValue.LimitExceeded");
const LIMIT: Constraint = int("Limit", 1, 100, "InvalidParameterValue");
const OFFSET: Constraint = int("Offset", 0, i64::MAX, "InvalidParameterValue");
/// InstanceIds / KeyIds of one request.
const BATCH: Constraint = count(
    "InstanceIds",
    limits::batch::INSTANCES,
    "InvalidParameterValue.LimitExceeded",
);
const FILTERS: Constraint = count("Filters", 10, "InvalidFilterValue.LimitExceeded");
const FILTER_VALUES: Constraint = count("Filters.N.Values", 5, "InvalidFilterValue.LimitExceeded");

/// Every limit of the dialect.
#[allow(dead_code)] // walked by the table tests; docs/parameter-limits.md mirrors it
pub(crate) const LIMITS: &[Constraint] = &[
    INSTANCE_NAME,
    HOST_NAME_LINUX,
    HOST_NAME_WINDOWS,
    CLIENT_TOKEN,
    KEY_NAME,
    TAG_KEY,
    TAG_VALUE,
    INSTANCE_COUNT,
    MIN_COUNT,
    USER_DATA,
    SYSTEM_DISK_SIZE,
    DATA_DISK_SIZE,
    DATA_DISKS,
    CLOUD_DATA_DISKS,
    TAGS,
    LIMIT,
    OFFSET,
    BATCH,
    FILTERS,
    FILTER_VALUES,
];

/// Cloud disk sizes (GiB) by type (CVM storage overview). Local disks depend on the instance
/// type, and no type in the catalogue has them: they are refused.
pub(crate) const DISK_RANGES: &[DiskRange] = &[
    DiskRange {
        category: "CLOUD_BASIC",
        data: (10, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_PREMIUM",
        data: (10, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_SSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_BSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_HSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_TSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
];

const LOCAL_DISK_TYPES: &[&str] = &["LOCAL_BASIC", "LOCAL_SSD", "LOCAL_NVME", "LOCAL_PRO"];

fn reject(c: &Constraint, name: &str, v: Violation) -> ApiError {
    ApiError::new(
        c.code_for(&v),
        format!("The value of `{name}` is invalid: it {v}"),
    )
}

fn check_text(c: &Constraint, name: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) => limits::check_text(c, v).map_err(|e| reject(c, name, e)),
        None => Ok(()),
    }
}

fn check_int(c: &Constraint, name: &str, value: i64) -> Result<(), ApiError> {
    limits::check_int(c, value).map_err(|e| reject(c, name, e))
}

fn check_count(c: &Constraint, name: &str, got: usize) -> Result<(), ApiError> {
    limits::check_count(c, got).map_err(|e| reject(c, name, e))
}

/// A disk size within its type's range (`range`), else the row's code.
fn disk_size(row: &Constraint, name: &str, size: i64, range: (i64, i64)) -> Result<u32, ApiError> {
    let bounded = Constraint {
        rule: Rule::Int {
            min: range.0,
            max: range.1,
        },
        ..*row
    };
    check_int(&bounded, name, size)?;
    u32::try_from(size).map_err(|_| reject(row, name, Violation::TooSmall { min: range.0 }))
}

fn host_name_rule(os: Option<nubis_core::OsFamily>) -> &'static Constraint {
    if os == Some(nubis_core::OsFamily::Windows) {
        &HOST_NAME_WINDOWS
    } else {
        &HOST_NAME_LINUX
    }
}

type Out = Result<Map<String, Value>, ApiError>;

/// An action's answer: fields to put next to RequestId, or (for large pages) a JSON object
/// already serialized.
pub(crate) enum Payload {
    Map(Map<String, Value>),
    Json(String),
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Strict parsing: unknown names → UnknownParameter, absent required → MissingParameter,
/// wrong types → InvalidParameter.
fn parse<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params)).map_err(|e| {
        let m = e.to_string();
        let quoted = m.split('`').nth(1).unwrap_or("").to_string();
        if m.starts_with("unknown field") {
            ApiError::new(
                "UnknownParameter",
                format!("The parameter `{quoted}` is not recognized"),
            )
        } else if m.starts_with("missing field") {
            ApiError::new(
                "MissingParameter",
                format!("The parameter `{quoted}` is required"),
            )
        } else {
            ApiError::new("InvalidParameter", format!("Invalid parameter: {m}"))
        }
    })
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| {
        ApiError::new(
            "MissingParameter",
            format!("The parameter `{name}` is required"),
        )
    })
}

fn bad_value(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        format!("The value of `{name}` is invalid: {why}"),
    )
}

fn stop_mode(stop_type: Option<&str>, force: Option<Bool>) -> Result<StopMode, ApiError> {
    match (stop_type, force) {
        (Some(_), Some(_)) => Err(ApiError::new(
            "InvalidParameter",
            "`StopType` and `ForceStop` cannot be specified together",
        )),
        (Some("SOFT"), None) => Ok(StopMode::Soft),
        (Some("HARD"), None) => Ok(StopMode::Hard),
        (Some("SOFT_FIRST"), None) => Ok(StopMode::SoftFirst),
        (Some(other), None) => Err(bad_value(
            "StopType",
            format!("`{other}` is not one of SOFT, HARD, SOFT_FIRST"),
        )),
        // The deprecated boolean: true = try soft, then force.
        (None, Some(Bool(true))) => Ok(StopMode::SoftFirst),
        (None, Some(Bool(false))) | (None, None) => Ok(StopMode::Soft),
    }
}

/// Tencent's ForceStop: stop, change, start again; without it only stopped instances.
fn when_running(force_stop: Option<Bool>) -> WhenRunning {
    if force_stop.is_some_and(|f| f.0) {
        WhenRunning::StopAndStart
    } else {
        WhenRunning::Refuse
    }
}

fn offset_limit(offset: Option<Int>, limit: Option<Int>) -> Result<(usize, usize), ApiError> {
    let offset = offset.map(|o| o.0).unwrap_or(0);
    let limit = limit.map(|l| l.0).unwrap_or(20);
    check_int(&OFFSET, "Offset", offset)?;
    check_int(&LIMIT, "Limit", limit)?;
    // Both non-negative by their rows.
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(1),
    ))
}

/// Check shape, batch size and existence (in this account and region) of instance IDs.
fn instances(
    engine: &Engine,
    ctx: &Ctx,
    ids_in: Option<Vec<String>>,
    name: &str,
) -> Result<Vec<Uuid>, ApiError> {
    let unique = id_batch(
        ctx,
        non_empty(ids_in, name)?,
        name,
        ResourceKind::Instance,
        ids::is_tencent_instance_id,
    )?;
    let uuids = engine
        .resolve(&ctx.principal, IdKind::Tencent, &unique)
        .map_err(|e| map(&ctx.action, e))?;
    for (uuid, id) in uuids.iter().zip(&unique) {
        if engine
            .instance(*uuid)
            .is_none_or(|i| Some(&i.region) != ctx.region.as_ref())
        {
            return Err(map(
                &ctx.action,
                DomainError::NotFound {
                    kind: ResourceKind::Instance,
                    id: id.clone(),
                },
            ));
        }
    }
    Ok(uuids)
}

fn key_ids(ctx: &Ctx, list: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    id_batch(
        ctx,
        non_empty(list, "KeyIds")?,
        "KeyIds",
        ResourceKind::KeyPair,
        ids::is_key_id,
    )
}

/// A required list parameter that must hold at least one value.
fn non_empty(list: Option<Vec<String>>, name: &str) -> Result<Vec<String>, ApiError> {
    let list = required(list, name)?;
    if list.is_empty() {
        return Err(ApiError::new(
            "MissingParameter",
            format!("The parameter `{name}` must not be empty"),
        ));
    }
    Ok(list)
}

/// A batch of IDs: at most 100, each of the right shape; duplicates dropped, order kept.
fn id_batch(
    ctx: &Ctx,
    list: Vec<String>,
    name: &str,
    kind: ResourceKind,
    valid: fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    check_count(&BATCH, name, list.len())?;
    if let Some(bad) = list.iter().find(|i| !valid(i)) {
        return Err(map(
            &ctx.action,
            DomainError::Malformed {
                kind,
                id: bad.clone(),
            },
        ));
    }
    let mut unique: Vec<String> = Vec::with_capacity(list.len());
    for i in list {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    Ok(unique)
}

/// A domain error from the engine as Tencent names things: instances by their `ins-` ID, key
/// pairs by ID (the engine names instances by canonical ID).
fn domain(engine: &Engine, ctx: &Ctx, e: DomainError) -> ApiError {
    map(
        &ctx.action,
        e.render(&engine.names(&ctx.principal, IdKind::Tencent, KeyNaming::Id)),
    )
}

pub(crate) async fn dispatch(
    engine: &Engine,
    ctx: &Ctx,
    params: Map<String, Value>,
) -> Result<Payload, ApiError> {
    if ctx.action == "DescribeInstances" {
        return describe_instances(engine, ctx, params);
    }
    let out = match ctx.action.as_str() {
        "DescribeRegions" => describe_regions(params),
        "DescribeZones" => describe_zones(ctx, params),
        "DescribeImages" => describe_images(params),
        "DescribeInstanceTypeConfigs" => describe_instance_type_configs(ctx, params),
        "RunInstances" => run_instances(engine, ctx, params).await,
        "DescribeInstancesStatus" => describe_instances_status(engine, ctx, params),
        "StartInstances" | "StopInstances" | "RebootInstances" | "TerminateInstances" => {
            power(engine, ctx, params).await
        }
        "ResetInstancesPassword" => reset_password(engine, ctx, params).await,
        "EnterRescueMode" => enter_rescue(engine, ctx, params).await,
        "ExitRescueMode" => exit_rescue(engine, ctx, params).await,
        "CreateKeyPair" | "ImportKeyPair" => create_key_pair(engine, ctx, params).await,
        "DescribeKeyPairs" => describe_key_pairs(engine, ctx, params),
        "DeleteKeyPairs" => delete_key_pairs(engine, ctx, params).await,
        "AssociateInstancesKeyPairs" | "DisassociateInstancesKeyPairs" => {
            associate(engine, ctx, params).await
        }
        other => Err(ApiError::new(
            "InvalidAction",
            format!("the action `{other}` does not exist"),
        )),
    };
    out.map(Payload::Map)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Filter {
    name: String,
    values: Vec<String>,
}

fn check_filters(filters: &[Filter]) -> Result<(), ApiError> {
    check_count(&FILTERS, "Filters", filters.len())?;
    for f in filters {
        check_count(&FILTER_VALUES, "Filters.N.Values", f.values.len())?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DescribeRegionsReq {}

fn describe_regions(params: Map<String, Value>) -> Out {
    let _: DescribeRegionsReq = parse(params)?;
    let set: Vec<Value> = DOCUMENTED_REGIONS
        .iter()
        .map(|(r, name)| {
            let served = catalog::region_by_tencent(r).is_some();
            json!({"Region": r, "RegionName": name, "RegionState": if served { "AVAILABLE" } else { "UNAVAILABLE" }})
        })
        .collect();
    Ok(obj(json!({"TotalCount": set.len(), "RegionSet": set})))
}

fn describe_zones(ctx: &Ctx, params: Map<String, Value>) -> Out {
    let _: DescribeRegionsReq = parse(params)?;
    let region = ctx
        .region
        .as_deref()
        .and_then(catalog::region)
        .expect("region checked");
    let set: Vec<Value> = region
        .zones
        .iter()
        .map(|z| json!({"Zone": z.tencent, "ZoneName": z.name, "ZoneId": z.tencent_zone_id, "ZoneState": "AVAILABLE"}))
        .collect();
    Ok(obj(json!({"TotalCount": set.len(), "ZoneSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
struct DescribeImagesReq {
    image_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
    instance_type: Option<String>,
}

fn describe_images(params: Map<String, Value>) -> Out {
    let r: DescribeImagesReq = parse(params)?;
    if r.image_ids.is_some() && r.filters.is_some() {
        return Err(ApiError::new(
            "InvalidParameter.InvalidParameterCoexistImageIdsFilters",
            "`ImageIds` and `Filters` cannot be specified together",
        ));
    }
    let (offset, limit) = offset_limit(r.offset, r.limit)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    if let Some(ids) = &r.image_ids
        && let Some(bad) = ids.iter().find(|i| !ids::is_image_id(i))
    {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("malformed image ID `{bad}`"),
        ));
    }
    for f in &filters {
        if ![
            "image-id",
            "image-type",
            "image-name",
            "platform",
            "image-family",
            "image-state",
        ]
        .contains(&f.name.as_str())
        {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let matching: Vec<&catalog::Image> = catalog::IMAGES
        .iter()
        .filter(|m| m.public)
        .filter(|m| {
            r.image_ids
                .as_ref()
                .is_none_or(|ids| ids.iter().any(|i| i == m.id))
        })
        .filter(|m| {
            filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "image-id" => v == m.id,
                    "image-type" => v == "PUBLIC_IMAGE",
                    "image-name" => m.name.contains(v.as_str()),
                    "platform" => v == m.platform,
                    "image-state" => v == "NORMAL",
                    _ => false,
                })
            })
        })
        .collect();
    let set: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| render::image(m))
        .collect();
    Ok(obj(json!({"TotalCount": matching.len(), "ImageSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FiltersOnly {
    filters: Option<Vec<Filter>>,
}

fn describe_instance_type_configs(ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: FiltersOnly = parse(params)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if !["zone", "instance-family", "instance-type"].contains(&f.name.as_str()) {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let region = ctx
        .region
        .as_deref()
        .and_then(catalog::region)
        .expect("region checked");
    let mut set = Vec::new();
    for z in region.zones {
        for t in catalog::INSTANCE_TYPES {
            let ok = filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "zone" => v == z.tencent,
                    "instance-family" => v == t.family,
                    _ => v == t.name,
                })
            });
            if ok {
                set.push(json!({"Zone": z.tencent, "InstanceType": t.name, "InstanceFamily": t.family, "GPU": 0, "CPU": t.cpu, "Memory": t.memory_gib, "FPGA": 0, "GpuCount": 0.0}));
            }
        }
    }
    Ok(obj(json!({"InstanceTypeConfigSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
struct Placement {
    zone: Option<String>,
    project_id: Option<Int>,
    host_ids: Option<Vec<String>>,
    host_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
struct SystemDisk {
    disk_type: Option<String>,
    disk_id: Option<String>,
    disk_size: Option<Int>,
    cdc_id: Option<String>,
    disk_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataDisk {
    disk_size: Option<Int>,
    disk_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct LoginSettings {
    password: Option<String>,
    key_ids: Option<Vec<String>>,
    keep_image_login: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct TagSpecification {
    resource_type: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // accepted for compatibility; nubis has no use for them yet
struct RunInstancesReq {
    instance_charge_type: Option<String>,
    instance_charge_prepaid: Option<Value>,
    placement: Option<Placement>,
    instance_type: Option<String>,
    image_id: Option<String>,
    system_disk: Option<SystemDisk>,
    data_disks: Option<Vec<DataDisk>>,
    virtual_private_cloud: Option<Value>,
    internet_accessible: Option<Value>,
    instance_count: Option<Int>,
    min_count: Option<Int>,
    instance_name: Option<String>,
    login_settings: Option<LoginSettings>,
    security_group_ids: Option<Vec<String>>,
    enhanced_service: Option<Value>,
    client_token: Option<String>,
    host_name: Option<String>,
    action_timer: Option<Value>,
    disaster_recover_group_ids: Option<Vec<String>>,
    tag_specification: Option<Vec<TagSpecification>>,
    instance_market_options: Option<Value>,
    user_data: Option<String>,
    metadata: Option<Value>,
    dry_run: Option<Bool>,
    cpu_topology: Option<Value>,
    cam_role_name: Option<String>,
    hpc_cluster_id: Option<String>,
    launch_template: Option<Value>,
    dedicated_cluster_id: Option<String>,
    chc_ids: Option<Vec<String>>,
    disable_api_termination: Option<Bool>,
    enable_jumbo_frame: Option<Bool>,
}

async fn run_instances(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: RunInstancesReq = parse(params)?;
    let placement = required(r.placement, "Placement")?;
    let zone_name = required(placement.zone, "Placement.Zone")?;
    let image_id = required(r.image_id, "ImageId")?;
    let region = ctx.region.clone().expect("region checked");
    let zone = catalog::zone_by_tencent(&zone_name)
        .filter(|z| {
            catalog::region(&region).is_some_and(|reg| reg.zones.iter().any(|rz| rz.id == z.id))
        })
        .ok_or_else(|| {
            ApiError::new(
                "InvalidZone.MismatchRegion",
                format!("the zone `{zone_name}` does not exist in this region"),
            )
        })?;
    if !ids::is_image_id(&image_id) {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("malformed image ID `{image_id}`"),
        ));
    }
    // Documented limits, before anything is looked up.
    let count = r.instance_count.map(|c| c.0).unwrap_or(1);
    check_int(&INSTANCE_COUNT, "InstanceCount", count)?;
    if let Some(min) = r.min_count.map(|m| m.0) {
        check_int(&MIN_COUNT, "MinCount", min)?;
        if min > count {
            return Err(reject(
                &MIN_COUNT,
                "MinCount",
                Violation::TooLarge { max: count },
            ));
        }
    }
    check_text(&USER_DATA, "UserData", r.user_data.as_deref())?;
    check_text(&INSTANCE_NAME, "InstanceName", r.instance_name.as_deref())?;
    let image_os = catalog::image(&image_id).map(|i| i.os);
    check_text(host_name_rule(image_os), "HostName", r.host_name.as_deref())?;
    check_text(&CLIENT_TOKEN, "ClientToken", r.client_token.as_deref())?;
    let charge = r
        .instance_charge_type
        .unwrap_or_else(|| "POSTPAID_BY_HOUR".into());
    if ![
        "PREPAID",
        "POSTPAID_BY_HOUR",
        "SPOTPAID",
        "CDHPAID",
        "CDCPAID",
    ]
    .contains(&charge.as_str())
    {
        return Err(bad_value("InstanceChargeType", &charge));
    }
    let login = r.login_settings.unwrap_or(LoginSettings {
        password: None,
        key_ids: None,
        keep_image_login: None,
    });
    let given = [
        login.password.is_some(),
        login.key_ids.as_ref().is_some_and(|k| !k.is_empty()),
        login.keep_image_login.is_some(),
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(ApiError::new(
            "InvalidParameter",
            "`LoginSettings` takes only one of Password, KeyIds, KeepImageLogin",
        ));
    }
    let key_ids = match login.key_ids {
        Some(k) if !k.is_empty() => key_ids(ctx, Some(k))?,
        _ => Vec::new(),
    };
    let system = r.system_disk.unwrap_or(SystemDisk {
        disk_type: None,
        disk_id: None,
        disk_size: None,
        cdc_id: None,
        disk_name: None,
    });
    let system_type = system.disk_type.unwrap_or_else(|| "CLOUD_PREMIUM".into());
    let system_range = limits::disk_range(DISK_RANGES, &system_type)
        .and_then(|d| d.system)
        .ok_or_else(|| bad_value("SystemDisk.DiskType", &system_type))?;
    let system_disk_gib = disk_size(
        &SYSTEM_DISK_SIZE,
        "SystemDisk.DiskSize",
        system.disk_size.map(|s| s.0).unwrap_or(50),
        system_range,
    )?;
    let disks = r.data_disks.unwrap_or_default();
    check_count(&DATA_DISKS, "DataDisks", disks.len())?;
    let mut data_disks = Vec::with_capacity(disks.len());
    for (n, d) in disks.into_iter().enumerate() {
        let ty = d.disk_type.unwrap_or_else(|| "CLOUD_PREMIUM".into());
        if LOCAL_DISK_TYPES.contains(&ty.as_str()) {
            return Err(ApiError::new(
                "InvalidParameter.LocalDataDiskNotSupport",
                format!("`DataDisks.{n}.DiskType` {ty}: no instance type here has local disks"),
            ));
        }
        let range = limits::disk_range(DISK_RANGES, &ty)
            .ok_or_else(|| bad_value(&format!("DataDisks.{n}.DiskType"), &ty))?;
        let size = disk_size(
            &DATA_DISK_SIZE,
            &format!("DataDisks.{n}.DiskSize"),
            d.disk_size.map(|s| s.0).unwrap_or(50),
            range.data,
        )?;
        data_disks.push((size, ty));
    }
    check_count(&CLOUD_DATA_DISKS, "DataDisks", data_disks.len())?;
    let mut tags = Vec::new();
    for spec in r.tag_specification.unwrap_or_default() {
        if spec.resource_type == "instance" {
            tags.extend(spec.tags.into_iter().map(|t| (t.key, t.value)));
        }
    }
    check_count(&TAGS, "TagSpecification.N.Tags", tags.len())?;
    for (k, v) in &tags {
        check_text(&TAG_KEY, "Tags.N.Key", Some(k))?;
        check_text(&TAG_VALUE, "Tags.N.Value", Some(v))?;
    }
    let spec = CreateSpec {
        region,
        zone: zone.id.to_string(),
        instance_type: r
            .instance_type
            .unwrap_or_else(|| catalog::DEFAULT_INSTANCE_TYPE.into()),
        image_id,
        // 1..=500 by INSTANCE_COUNT.
        count: u32::try_from(count).unwrap_or(1),
        name: r.instance_name,
        host_name: r.host_name,
        password: login.password,
        key_ids,
        client_token: r.client_token,
        system_disk_gib,
        system_disk_type: system_type,
        data_disks,
        project_id: placement.project_id.map(|p| p.0).unwrap_or(0),
        charge_type: charge,
        security_group_ids: r.security_group_ids.unwrap_or_default(),
        tags,
        description: None,
        start: true,
        attrs: Default::default(),
        rule: nubis_core::password::PasswordRule::Complexity,
        user_data: None,
        internet_max_bandwidth_out: 0,
    };
    let dry = r.dry_run.is_some_and(|d| d.0);
    let created = engine
        .create(&ctx.principal, &ctx.request_id, spec, dry)
        .await
        .map_err(|e| map(&ctx.action, e))?;
    let ids: Vec<&str> = created.iter().map(|i| i.tencent_id.as_str()).collect();
    Ok(obj(json!({"InstanceIdSet": ids})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DescribeInstancesReq {
    instance_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

const INSTANCE_FILTERS: &[&str] = &[
    "zone",
    "project-id",
    "instance-id",
    "uuid",
    "instance-name",
    "instance-state",
    "instance-charge-type",
    "private-ip-address",
    "instance-type",
    "image-id",
    "tag-key",
    "tag-value",
    "vpc-id",
    "subnet-id",
    "security-group-id",
];

fn matches(i: &Instance, f: &Filter) -> bool {
    f.values.iter().any(|v| match f.name.as_str() {
        "zone" => render::zone_name(&i.zone) == v,
        "project-id" => i.project_id.to_string() == *v,
        "instance-id" => i.tencent_id == *v,
        "uuid" => i.uuid.to_string() == *v,
        "instance-name" => i.name.contains(v.as_str()),
        "instance-state" => render::state(i.state) == v,
        "instance-charge-type" => i.charge_type == *v,
        "private-ip-address" => i.private_ip == *v,
        "instance-type" => i.instance_type == *v,
        "image-id" => i.image_id == *v,
        "tag-key" => i.tags.iter().any(|(k, _)| k == v),
        "tag-value" => i.tags.iter().any(|(_, tv)| tv == v),
        "vpc-id" => v == "vpc-nubis000",
        "subnet-id" => v == "subnet-nubis000",
        "security-group-id" => i.security_group_ids.contains(v),
        name => name
            .strip_prefix("tag:")
            .is_some_and(|k| i.tags.iter().any(|(tk, tv)| tk == k && tv == v)),
    })
}

/// DescribeInstances / DescribeInstancesStatus share their selection rules.
fn select(
    engine: &Engine,
    ctx: &Ctx,
    ids_in: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
) -> Result<(usize, Vec<Instance>), ApiError> {
    if ids_in.is_some() && filters.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            "`InstanceIds` and `Filters` cannot be specified together",
        ));
    }
    let (offset, limit) = offset_limit(offset, limit)?;
    let region = ctx.region.clone();
    if let Some(list) = ids_in {
        let list = id_batch(
            ctx,
            list,
            "InstanceIds",
            ResourceKind::Instance,
            ids::is_tencent_instance_id,
        )?;
        // Unknown IDs are simply absent, as the real API does.
        let found: Vec<Uuid> = list
            .iter()
            .filter_map(|id| {
                engine
                    .resolve(&ctx.principal, IdKind::Tencent, std::slice::from_ref(id))
                    .ok()
            })
            .flatten()
            .collect();
        let mut all: Vec<Instance> = engine.instances_by_id(&ctx.principal, &found);
        all.retain(|i| Some(&i.region) == region.as_ref());
        let total = all.len();
        return Ok((total, all.into_iter().skip(offset).take(limit).collect()));
    }
    let filters = filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if !INSTANCE_FILTERS.contains(&f.name.as_str()) && !f.name.starts_with("tag:") {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    Ok(engine.query(
        &ctx.principal,
        |i| Some(&i.region) == region.as_ref() && filters.iter().all(|f| matches(i, f)),
        offset,
        limit,
    ))
}

fn describe_instances(
    engine: &Engine,
    ctx: &Ctx,
    params: Map<String, Value>,
) -> Result<Payload, ApiError> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Page<'a> {
        total_count: usize,
        instance_set: Vec<render::InstanceOut<'a>>,
    }
    let r: DescribeInstancesReq = parse(params)?;
    let (total, page) = select(engine, ctx, r.instance_ids, r.filters, r.offset, r.limit)?;
    let out = Page {
        total_count: total,
        instance_set: page.iter().map(render::instance).collect(),
    };
    Ok(Payload::Json(
        serde_json::to_string(&out).expect("serializable"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DescribeStatusReq {
    instance_ids: Option<Vec<String>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

fn describe_instances_status(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: DescribeStatusReq = parse(params)?;
    let (total, page) = select(engine, ctx, r.instance_ids, None, r.offset, r.limit)?;
    let set: Vec<Value> = page
        .iter()
        .map(|i| json!({"InstanceId": i.tencent_id, "InstanceState": render::state(i.state)}))
        .collect();
    Ok(obj(json!({"TotalCount": total, "InstanceStatusSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct PowerReq {
    instance_ids: Option<Vec<String>>,
    stop_type: Option<String>,
    force_stop: Option<Bool>,
    force_reboot: Option<Bool>,
    stopped_mode: Option<String>,
    release_address: Option<Bool>,
    release_prepaid_data_disks: Option<Bool>,
}

async fn power(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: PowerReq = parse(params)?;
    // Reject parameters that belong to a sibling action.
    let foreign = match ctx.action.as_str() {
        "StartInstances" => [
            r.stop_type.is_some(),
            r.force_stop.is_some(),
            r.force_reboot.is_some(),
            r.stopped_mode.is_some(),
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        "StopInstances" => [
            false,
            false,
            r.force_reboot.is_some(),
            false,
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        "RebootInstances" => [
            false,
            r.force_stop.is_some(),
            false,
            r.stopped_mode.is_some(),
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        _ => [
            r.stop_type.is_some(),
            r.force_stop.is_some(),
            r.force_reboot.is_some(),
            r.stopped_mode.is_some(),
            false,
        ],
    };
    if foreign.iter().any(|f| *f) {
        return Err(ApiError::new(
            "UnknownParameter",
            format!("a parameter is not recognized by {}", ctx.action),
        ));
    }
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let cmd = match ctx.action.as_str() {
        "StartInstances" => Command::Start,
        "StopInstances" => {
            let stop_charging = match r.stopped_mode.as_deref() {
                None | Some("KEEP_CHARGING") => false,
                Some("STOP_CHARGING") => true,
                Some(other) => return Err(bad_value("StoppedMode", other)),
            };
            Command::Stop {
                mode: stop_mode(r.stop_type.as_deref(), r.force_stop)?,
                stop_charging,
            }
        }
        "RebootInstances" => Command::Reboot {
            mode: stop_mode(r.stop_type.as_deref(), r.force_reboot)?,
        },
        _ => Command::Terminate { force: true },
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &targets, cmd, false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResetPasswordReq {
    instance_ids: Option<Vec<String>>,
    password: Option<String>,
    user_name: Option<String>,
    force_stop: Option<Bool>,
}

async fn reset_password(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: ResetPasswordReq = parse(params)?;
    let password = required(r.password, "Password")?;
    if let Some(u) = &r.user_name {
        nubis_core::password::check_username_len("UserName", u).map_err(|e| map(&ctx.action, e))?;
    }
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let cmd = Command::ResetPassword {
        user: r.user_name,
        password,
        when_running: when_running(r.force_stop),
        rule: nubis_core::password::PasswordRule::Complexity,
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &targets, cmd, false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct EnterRescueReq {
    instance_id: Option<String>,
    password: Option<String>,
    username: Option<String>,
    force_stop: Option<Bool>,
    stop_type: Option<String>,
}

async fn enter_rescue(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: EnterRescueReq = parse(params)?;
    let id = required(r.instance_id, "InstanceId")?;
    let password = required(r.password, "Password")?;
    let mode = stop_mode(r.stop_type.as_deref(), r.force_stop)?;
    if let Some(u) = &r.username {
        nubis_core::password::check_username_len("Username", u).map_err(|e| map(&ctx.action, e))?;
    }
    let targets = instances(engine, ctx, Some(vec![id]), "InstanceId")?;
    let cmd = Command::EnterRescue {
        user: r.username,
        password,
        mode,
        image_id: None,
        rule: nubis_core::password::PasswordRule::Complexity,
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &targets, cmd, false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ExitRescueReq {
    instance_id: Option<String>,
}

async fn exit_rescue(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: ExitRescueReq = parse(params)?;
    let id = required(r.instance_id, "InstanceId")?;
    let targets = instances(engine, ctx, Some(vec![id]), "InstanceId")?;
    engine
        .submit(
            &ctx.principal,
            &ctx.request_id,
            &targets,
            Command::ExitRescue,
            false,
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
struct CreateKeyPairReq {
    key_name: Option<String>,
    project_id: Option<Int>,
    public_key: Option<String>,
    tag_specification: Option<Vec<TagSpecification>>,
}

fn check_key_name(name: &str) -> Result<(), ApiError> {
    check_text(&KEY_NAME, "KeyName", Some(name))
}

async fn create_key_pair(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: CreateKeyPairReq = parse(params)?;
    let import = ctx.action == "ImportKeyPair";
    if !import && r.public_key.is_some() {
        return Err(ApiError::new(
            "UnknownParameter",
            "The parameter `PublicKey` is not recognized",
        ));
    }
    let name = required(r.key_name, "KeyName")?;
    let project = required(r.project_id, "ProjectId")?.0;
    check_key_name(&name)?;
    let public = if import {
        Some(required(r.public_key, "PublicKey")?)
    } else {
        None
    };
    let created = engine
        .create_key_pair(&ctx.principal, &name, project, public.as_deref())
        .await
        .map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => ApiError::new(
                "InvalidPublicKey.Malformed",
                format!("invalid public key: {reason}"),
            ),
            e => map(&ctx.action, e),
        })?;
    if import {
        return Ok(obj(json!({"KeyId": created.key_pair.id})));
    }
    let mut kp = render::key_pair(&created.key_pair, &[]);
    kp["PrivateKey"] = json!(created.private_key);
    Ok(obj(json!({"KeyPair": kp})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DescribeKeyPairsReq {
    key_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

fn describe_key_pairs(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: DescribeKeyPairsReq = parse(params)?;
    if r.key_ids.is_some() && r.filters.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            "`KeyIds` and `Filters` cannot be specified together",
        ));
    }
    let (offset, limit) = offset_limit(r.offset, r.limit)?;
    if let Some(ids) = &r.key_ids
        && let Some(bad) = ids.iter().find(|k| !ids::is_key_id(k))
    {
        return Err(map(
            &ctx.action,
            DomainError::Malformed {
                kind: ResourceKind::KeyPair,
                id: bad.clone(),
            },
        ));
    }
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if !["project-id", "key-name", "key-id"].contains(&f.name.as_str())
            && !f.name.starts_with("tag")
        {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let all: Vec<Value> = engine
        .key_pairs(&ctx.principal)
        .into_iter()
        .filter(|(k, _)| r.key_ids.as_ref().is_none_or(|ids| ids.contains(&k.id)))
        .filter(|(k, _)| {
            filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "project-id" => k.project_id.to_string() == *v,
                    "key-name" => k.name.contains(v.as_str()),
                    "key-id" => k.id == *v,
                    _ => false,
                })
            })
        })
        .map(|(k, insts)| render::key_pair(&k, &insts))
        .collect();
    let total = all.len();
    let set: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(obj(json!({"TotalCount": total, "KeyPairSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct DeleteKeyPairsReq {
    key_ids: Option<Vec<String>>,
}

async fn delete_key_pairs(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: DeleteKeyPairsReq = parse(params)?;
    let keys = key_ids(ctx, r.key_ids)?;
    engine
        .delete_key_pairs(&ctx.principal, &keys)
        .await
        .map_err(|e| map(&ctx.action, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct AssociateReq {
    instance_ids: Option<Vec<String>>,
    key_ids: Option<Vec<String>>,
    force_stop: Option<Bool>,
}

async fn associate(engine: &Engine, ctx: &Ctx, params: Map<String, Value>) -> Out {
    let r: AssociateReq = parse(params)?;
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let keys = key_ids(ctx, r.key_ids)?;
    let when_running = when_running(r.force_stop);
    let cmd = if ctx.action == "AssociateInstancesKeyPairs" {
        Command::AssociateKeys {
            key_ids: keys,
            when_running,
        }
    } else {
        Command::DisassociateKeys {
            key_ids: keys,
            when_running,
        }
    };
    engine
        .submit(&ctx.principal, &ctx.request_id, &targets, cmd, false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Every row at its boundaries: min−1, min, max, max+1 and a control character, with the
    /// row's own codes.
    #[test]
    fn every_row_at_its_boundaries() {
        for c in LIMITS {
            if let Rule::Count { max } = c.rule {
                assert!(check_count(c, c.param, max).is_ok());
                let e = check_count(c, c.param, max + 1).unwrap_err();
                assert_eq!(e.code, c.code, "{}", c.param);
                continue;
            }
            if c.param == "UserData" {
                continue; // base64: its own test below
            }
            let cases = limits::boundary_cases(c, "ab");
            assert!(!cases.is_empty());
            for (value, ok) in cases {
                let got = match c.rule {
                    Rule::Text { .. } => limits::check_text(c, &value).map(|_| ()),
                    _ => limits::check_int_str(c, &value).map(|_| ()),
                };
                assert_eq!(got.is_ok(), ok, "{} = {value:?}: {got:?}", c.param);
                if let Err(v) = got {
                    let e = reject(c, c.param, v);
                    assert!(
                        [Some(c.code), c.code_high, c.code_low].contains(&Some(e.code.as_str())),
                        "{}",
                        c.param
                    );
                }
            }
        }
    }

    #[test]
    fn documented_codes() {
        let code = |c: &Constraint, v: &str| {
            reject(c, c.param, limits::check_text(c, v).unwrap_err()).code
        };
        assert_eq!(
            code(&INSTANCE_NAME, &"n".repeat(129)),
            "InvalidInstanceName.TooLong"
        );
        assert_eq!(code(&INSTANCE_NAME, "a\u{1b}b"), "InvalidParameterValue");
        assert_eq!(
            code(&CLIENT_TOKEN, &"t".repeat(65)),
            "InvalidClientToken.TooLong"
        );
        assert_eq!(code(&CLIENT_TOKEN, "tök"), "InvalidParameterValue");
        assert_eq!(code(&KEY_NAME, ""), "InvalidKeyPairNameEmpty");
        assert_eq!(
            code(&KEY_NAME, &"k".repeat(26)),
            "InvalidKeyPairNameTooLong"
        );
        assert_eq!(
            code(&KEY_NAME, "a-b"),
            "InvalidKeyPairNameIncludeIllegalChar"
        );
        assert_eq!(
            code(&HOST_NAME_LINUX, "a..b"),
            "InvalidParameter.HostNameIllegal"
        );
        assert_eq!(
            code(&HOST_NAME_WINDOWS, "web.1"),
            "InvalidParameter.HostNameIllegal"
        );
        assert_eq!(
            code(&HOST_NAME_LINUX, &"h".repeat(61)),
            "InvalidParameter.HostNameIllegal"
        );
        assert!(limits::check_text(&HOST_NAME_LINUX, &"h".repeat(60)).is_ok());
        assert!(limits::check_text(&HOST_NAME_WINDOWS, &"h".repeat(16)).is_err());
    }

    #[test]
    fn user_data_is_base64_of_at_most_16_kib() {
        // 16 KiB = 5461 groups of 3 bytes and 1 byte more: 21,846 characters and "==".
        let full = format!("{}==", "A".repeat(limits::base64_len(16 * 1024) - 2));
        assert!(limits::check_text(&USER_DATA, &full).is_ok());
        let code = |v: &str| {
            reject(
                &USER_DATA,
                "UserData",
                limits::check_text(&USER_DATA, v).unwrap_err(),
            )
            .code
        };
        assert_eq!(
            code(&format!("{full}AAAA")),
            "InvalidParameterValue.TooLong"
        );
        // One byte more fits the length but not the size.
        let over = "A".repeat(limits::base64_len(16 * 1024));
        assert_eq!(code(&over), "InvalidParameterValue.InvalidUserDataFormat");
        assert_eq!(
            code("not base64!"),
            "InvalidParameterValue.InvalidUserDataFormat"
        );
        assert!(limits::check_text(&USER_DATA, "aGk=").is_ok());
    }

    #[test]
    fn disk_ranges_fit_the_parse_bounds() {
        for d in DISK_RANGES {
            assert!(d.data.0 >= 1 && d.data.1 <= 32000, "{}", d.category);
            let (lo, hi) = d.system.unwrap();
            assert!(lo >= 1 && hi <= 32000, "{}", d.category);
        }
    }
}
