//! RunInstances: every documented limit checked before the engine creates anything.

use super::limits::*;
use super::params::*;
use super::{Out, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::{Bool, Int};
use nubis_core::limits::{self, Violation};
use nubis_core::{catalog, ids};
use nubis_engine::{CreateSpec, Engine, SoldOut};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
pub(super) struct Placement {
    zone: Option<String>,
    project_id: Option<Int>,
    host_ids: Option<Vec<String>>,
    host_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
pub(super) struct SystemDisk {
    pub(super) disk_type: Option<String>,
    pub(super) disk_id: Option<String>,
    pub(super) disk_size: Option<Int>,
    pub(super) cdc_id: Option<String>,
    pub(super) disk_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct DataDisk {
    disk_size: Option<Int>,
    disk_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct LoginSettings {
    pub(super) password: Option<String>,
    pub(super) key_ids: Option<Vec<String>>,
    pub(super) keep_image_login: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // accepted for compatibility; nubis has no use for them yet
pub(super) struct RunInstancesReq {
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

pub(super) async fn run_instances(engine: &Engine, ctx: &Ctx, r: RunInstancesReq) -> Out {
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
    let image_os = engine.image(&ctx.principal, &image_id).ok().map(|i| i.os);
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
    let group = match r.disaster_recover_group_ids.as_deref() {
        None | Some([]) => None,
        Some(ids) => {
            check_count(&LAUNCH_GROUP_IDS, "DisasterRecoverGroupIds", ids.len())?;
            let id = ids.first().map(String::as_str).unwrap_or_default();
            Some(super::groups::resolve_group(engine, ctx, id)?.id)
        }
    };
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
        files: Vec::new(),
        internet_max_bandwidth_out: 0,
    };
    let dry = r.dry_run.is_some_and(|d| d.0);
    let created = engine
        .create_in(
            &ctx.principal,
            &ctx.request_id,
            spec,
            dry,
            SoldOut::Refuse,
            group.as_deref(),
        )
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    let ids: Vec<&str> = created.iter().map(|i| i.tencent_id.as_str()).collect();
    Ok(obj(json!({"InstanceIdSet": ids})))
}
