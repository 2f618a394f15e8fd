//! The catalogue: regions, zones, images, instance types.

use super::Out;
use super::obj;
use super::params::{Filter, check_filters};
use crate::errors::ApiError;
use crate::{Ctx, DOCUMENTED_REGIONS};
use nubis_core::catalog;
use nubis_core::hosts::Capacity;
use nubis_engine::{Engine, TypeViewer};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeRegionsReq {}

pub(super) async fn describe_regions(_: &Engine, _: &Ctx, _: DescribeRegionsReq) -> Out {
    let set: Vec<Value> = DOCUMENTED_REGIONS
        .iter()
        .map(|(r, name)| {
            let served = catalog::region_by_tencent(r).is_some();
            json!({"Region": r, "RegionName": name, "RegionState": if served { "AVAILABLE" } else { "UNAVAILABLE" }})
        })
        .collect();
    Ok(obj(json!({"TotalCount": set.len(), "RegionSet": set})))
}

pub(super) async fn describe_zones(_: &Engine, ctx: &Ctx, _: DescribeRegionsReq) -> Out {
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
pub(super) struct FiltersOnly {
    filters: Option<Vec<Filter>>,
}

pub(super) async fn describe_instance_type_configs(
    engine: &Engine,
    ctx: &Ctx,
    r: FiltersOnly,
) -> Out {
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
    // The built-in types and the public ones an operator created (docs/flavors.md).
    let types = engine.instance_types(TypeViewer::PUBLIC);
    let mut set = Vec::new();
    for z in region.zones {
        for t in &types {
            let ok = filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "zone" => v == z.tencent,
                    "instance-family" => *v == t.family,
                    _ => *v == t.name,
                })
            });
            if ok {
                set.push(json!({"Zone": z.tencent, "InstanceType": t.name, "InstanceFamily": t.family, "GPU": 0, "CPU": t.cpu, "Memory": t.memory_gib(), "FPGA": 0, "GpuCount": 0.0}));
            }
        }
    }
    Ok(obj(json!({"InstanceTypeConfigSet": set})))
}

/// The charge types RunInstances accepts (launch.rs), each with the unit its price is in.
const CHARGE_TYPES: &[(&str, &str)] = &[
    ("POSTPAID_BY_HOUR", "HOUR"),
    ("PREPAID", "MONTH"),
    ("SPOTPAID", "HOUR"),
    ("CDHPAID", "HOUR"),
    ("CDCPAID", "HOUR"),
];

/// DescribeZoneInstanceConfigInfos: every (zone, type, charge type) of the region with its
/// stock. A zone with agent hosts is sold out of a type none of its answering hosts has room
/// for (what RunInstances would refuse with `ResourceInsufficient.SpecifiedInstanceType`);
/// nubis charges nothing, so every price is 0 (docs/tencent-errors.md).
pub(super) async fn describe_zone_instance_config_infos(
    engine: &Engine,
    ctx: &Ctx,
    r: FiltersOnly,
) -> Out {
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if ![
            "zone",
            "instance-family",
            "instance-type",
            "instance-charge-type",
        ]
        .contains(&f.name.as_str())
        {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
        if f.name == "zone"
            && let Some(z) = f
                .values
                .iter()
                .find(|v| catalog::zone_by_tencent(v).is_none())
        {
            return Err(ApiError::new(
                "InvalidZone.MismatchRegion",
                format!("zone `{z}` does not exist in this region"),
            ));
        }
    }
    let region = ctx
        .region
        .as_deref()
        .and_then(catalog::region)
        .expect("region checked");
    let wanted = |name: &str, value: &str| {
        filters
            .iter()
            .filter(|f| f.name == name)
            .all(|f| f.values.iter().any(|v| v == value))
    };
    let types = engine.instance_types(TypeViewer::PUBLIC);
    let mut rows = Vec::new();
    for z in region.zones.iter().filter(|z| wanted("zone", z.tencent)) {
        for t in types
            .iter()
            .filter(|t| wanted("instance-family", &t.family) && wanted("instance-type", &t.name))
        {
            for (charge, unit) in CHARGE_TYPES
                .iter()
                .filter(|(c, _)| wanted("instance-charge-type", c))
            {
                rows.push((z, t, *charge, *unit));
            }
        }
    }
    let asks: Vec<(&str, Capacity)> = rows
        .iter()
        .map(|(z, t, _, _)| (z.id, Capacity::of_type(t)))
        .collect();
    let stock = engine.in_stock(&asks);
    let set: Vec<Value> = rows
        .iter()
        .zip(stock)
        .map(|((z, t, charge, unit), sell)| {
            json!({
                "Zone": z.tencent, "InstanceType": t.name, "InstanceChargeType": charge,
                "NetworkCard": 0, "Externals": {}, "Cpu": t.cpu, "Memory": t.memory_gib(),
                "InstanceFamily": t.family, "TypeName": t.family, "LocalDiskTypeList": [],
                "Status": if sell { "SELL" } else { "SOLD_OUT" },
                "StatusCategory": if sell { "EnoughStock" } else { "WithoutStock" },
                "SoldOutReason": if sell { "" } else { "no compute host of the zone has room" },
                "Price": {"UnitPrice": 0.0, "ChargeUnit": unit, "OriginalPrice": 0.0, "DiscountPrice": 0.0},
                "InstanceBandwidth": 0.0, "InstancePps": 0, "StorageBlockAmount": 0,
                "CpuType": "", "Gpu": 0, "GpuCount": 0.0, "Fpga": 0, "Frequency": "", "Remark": "",
            })
        })
        .collect();
    Ok(obj(json!({"InstanceTypeQuotaSet": set})))
}
