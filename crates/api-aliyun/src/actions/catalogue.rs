//! Regions, zones, images and instance types: read from the catalogue, no engine state.
use super::*;
use nubis_core::hosts::Capacity;

pub(super) fn describe_regions() -> Map<String, Value> {
    let regions: Vec<Value> = KNOWN_REGIONS
        .iter()
        .map(|(id, name)| {
            let served = catalog::region_by_aliyun(id).is_some();
            json!({"RegionId": id, "LocalName": name, "RegionEndpoint": format!("ecs.{id}.aliyuncs.com"), "Status": if served { "available" } else { "soldOut" }})
        })
        .collect();
    obj(json!({"Regions": {"Region": regions}}))
}

pub(super) fn describe_zones(engine: &Engine, ctx: &Ctx) -> Out {
    let region = catalog::region(&region(ctx)?).expect("resolved region");
    let all = super::instance_types(engine);
    let types: Vec<&str> = all.iter().map(|t| t.aliyun.as_ref()).collect();
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

pub(super) fn describe_instance_types(engine: &Engine, p: &Params) -> Out {
    let wanted = p.list("InstanceTypes");
    let family = p.opt("InstanceTypeFamily");
    let types: Vec<Value> = super::instance_types(engine)
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| *w == t.aliyun))
        .filter(|t| {
            family
                .as_deref()
                .is_none_or(|f| t.aliyun.starts_with(&format!("{f}.")))
        })
        .map(|t| {
            json!({
                "InstanceTypeId": t.aliyun,
                "InstanceTypeFamily": family_of(t),
                "CpuCoreCount": t.cpu,
                "MemorySize": f64::from(t.memory_mib) / 1024.0,
                "CpuArchitecture": if t.arch == catalog::Arch::Arm64 { "ARM" } else { "X86" },
                "GPUAmount": 0, "GPUSpec": "", "LocalStorageAmount": 0, "EniQuantity": 2,
            })
        })
        .collect();
    Ok(obj(
        json!({"InstanceTypes": {"InstanceType": types}, "NextToken": ""}),
    ))
}

/// What DescribeAvailableResource can be asked about (`DestinationResource`).
const DESTINATIONS: &[&str] = &[
    "Zone",
    "IoOptimized",
    "InstanceType",
    "SystemDisk",
    "DataDisk",
    "Network",
];

/// The stock of an instance type in a zone: `(Status, StatusCategory)`.
fn stock_words(in_stock: bool) -> (&'static str, &'static str) {
    if in_stock {
        ("Available", "WithStock")
    } else {
        ("SoldOut", "WithoutStock")
    }
}

/// A disk category's sizes as DescribeAvailableResource shows them (`Min`, `Max`, `Unit`).
fn disk_resources(system: bool, wanted: Option<&str>) -> Vec<Value> {
    params::DISK_RANGES
        .iter()
        .filter(|r| !r.category.contains(':'))
        .filter(|r| wanted.is_none_or(|w| w == r.category))
        .filter_map(|r| {
            let (min, max) = if system { r.system? } else { r.data };
            Some(
                json!({"Value": r.category, "Status": "Available", "StatusCategory": "WithStock",
                "Min": min, "Max": max, "Unit": "GiB"}),
            )
        })
        .collect()
}

/// DescribeAvailableResource: per zone of the region (or the one `ZoneId`), what can be
/// created there now. The stock of an instance type is what RunInstances would find: a zone
/// served by agent hosts is sold out of a type none of its answering hosts has room for
/// (`OperationDenied.NoStock`); a zone without hosts runs on the embedded driver and never is.
pub(super) fn describe_available_resource(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = catalog::region(&region(ctx)?).expect("resolved region");
    let dest = p.opt("DestinationResource").ok_or_else(|| {
        ApiError::new(
            400,
            "Invalid.Param",
            "The input parameter DestinationResource that is mandatory for processing this request is not supplied.",
        )
    })?;
    if !DESTINATIONS.contains(&dest.as_str()) {
        return Err(ApiError::new(
            404,
            "Invalid.DestinationResource",
            "The specified DestinationResource is not valid.",
        ));
    }
    if let Some(c) = p.opt("InstanceChargeType")
        && c != "PrePaid"
        && c != "PostPaid"
    {
        return Err(ApiError::new(
            400,
            "Invalid.InstanceChargeType",
            "The specified InstanceChargeType is not valid.",
        ));
    }
    if let Some(r) = p.opt("ResourceType")
        && !["instance", "disk", "reservedinstance", "ddh"]
            .contains(&r.to_ascii_lowercase().as_str())
    {
        return Err(ApiError::new(
            404,
            "Invalid.ResourceType",
            "The ResourceType provided does not exist in our records.",
        ));
    }
    if let Some(io) = p.opt("IoOptimized")
        && io != "optimized"
        && io != "none"
    {
        return Err(ApiError::new(
            404,
            "Invalid.IoOptimized",
            "The specified IoOptimized is not valid.",
        ));
    }
    if let Some(net) = p.opt("NetworkCategory")
        && net != "vpc"
        && net != "classic"
    {
        return Err(ApiError::new(
            404,
            "Invalid.NetworkCategory",
            "The specified NetworkCategory is not valid.",
        ));
    }
    let ty = p.opt("InstanceType");
    let cores = p.opt("Cores");
    let memory = p.opt("Memory");
    if ty.is_some() && (cores.is_some() || memory.is_some()) {
        return Err(ApiError::new(
            403,
            "InvalidParam.TypeAndCpuMem.Conflict",
            "The specified 'InstanceType' and 'Cores','Memory' are not blank at the same time.",
        ));
    }
    let cores = cores
        .map(|c| c.parse::<u32>().map_err(|_| ApiError::invalid("Cores", c)))
        .transpose()?;
    let memory = memory
        .map(|m| m.parse::<f64>().map_err(|_| ApiError::invalid("Memory", m)))
        .transpose()?;
    if let Some(t) = &ty
        && super::instance_type_by_aliyun(engine, ctx, t).is_none()
    {
        return Err(ApiError::new(
            404,
            "InvalidResourceId.NotFound",
            "The specified ResourceId is not found in our records",
        ));
    }
    let zones: Vec<&catalog::Zone> = match p.opt("ZoneId") {
        Some(z) => vec![region.zones.iter().find(|x| x.aliyun == z).ok_or_else(|| {
            ApiError::new(
                404,
                "InvalidZoneId.NotFound",
                "The specified zone does not exist.",
            )
        })?],
        None => region.zones.iter().collect(),
    };
    let all = super::instance_types(engine);
    let types: Vec<&catalog::InstanceType> = all
        .iter()
        .filter(|t| ty.as_deref().is_none_or(|w| w == t.aliyun))
        .filter(|t| cores.is_none_or(|c| c == t.cpu))
        .filter(|t| {
            memory.is_none_or(|m| (m - f64::from(t.memory_mib) / 1024.0).abs() < f64::EPSILON)
        })
        .collect();
    let asks: Vec<(&str, Capacity)> = zones
        .iter()
        .flat_map(|z| types.iter().map(|t| (z.id, Capacity::of_type(t))))
        .collect();
    let stock = engine.in_stock(&asks);
    let mut stock = stock.chunks(types.len().max(1));
    let system_category = p.opt("SystemDiskCategory");
    let data_category = p.opt("DataDiskCategory");
    let mut out = Vec::new();
    for z in &zones {
        let row = stock.next().unwrap_or_default();
        let any = row.iter().any(|s| *s);
        let (status, category) = stock_words(any);
        let supported: Vec<Value> = match dest.as_str() {
            "Zone" => {
                vec![json!({"Value": z.aliyun, "Status": status, "StatusCategory": category})]
            }
            "IoOptimized" => {
                vec![json!({"Value": "optimized", "Status": status, "StatusCategory": category})]
            }
            "Network" => {
                vec![json!({"Value": "vpc", "Status": status, "StatusCategory": category})]
            }
            "InstanceType" => types
                .iter()
                .zip(row)
                .map(|(t, s)| {
                    let (st, cat) = stock_words(*s);
                    json!({"Value": t.aliyun, "Status": st, "StatusCategory": cat})
                })
                .collect(),
            "SystemDisk" => disk_resources(true, system_category.as_deref()),
            _ => disk_resources(false, data_category.as_deref()),
        };
        if supported.is_empty() {
            continue;
        }
        out.push(json!({
            "RegionId": region.aliyun, "ZoneId": z.aliyun, "Status": status, "StatusCategory": category,
            "AvailableResources": {"AvailableResource": [
                {"Type": dest, "SupportedResources": {"SupportedResource": supported}},
            ]},
        }));
    }
    Ok(obj(json!({"AvailableZones": {"AvailableZone": out}})))
}

/// Alibaba's `InstanceTypeFamily`: the name up to its last dot (`ecs.s5` of `ecs.s5.small2`;
/// a created type without a dot is its own family).
pub(super) fn family_of(t: &catalog::InstanceType) -> &str {
    t.aliyun
        .rsplit_once('.')
        .map(|(f, _)| f)
        .unwrap_or(&t.aliyun)
}
