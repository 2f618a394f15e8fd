//! Regions, zones, images and instance types: read from the catalogue, no engine state.
use super::*;

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

pub(super) fn describe_zones(ctx: &Ctx) -> Out {
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

pub(super) fn describe_images(ctx: &Ctx, p: &Params) -> Out {
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

pub(super) fn describe_instance_types(p: &Params) -> Out {
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
