//! Spread placement groups (CVM "DisasterRecoverGroup"): create, describe, modify, delete,
//! quota. One resource with Nova's server groups and Alibaba's deployment sets
//! (docs/placement-groups.md).

use super::limits::*;
use super::params::*;
use super::{Out, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::Int;
use nubis_core::groups::{self, Flavour, PlacementGroup};
use nubis_core::{DomainError, ResourceKind};
use nubis_engine::{Engine, GroupChange, IdKind, Member, NewGroup};
use nubis_pipeline::shapes::iso_seconds;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // TagSpecification is accepted for compatibility only
pub(super) struct CreateGroupReq {
    name: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    client_token: Option<String>,
    affinity: Option<Int>,
    strategy: Option<String>,
    partition_count: Option<Int>,
    tag_specification: Option<Vec<TagSpecification>>,
}

fn flavour(kind: &str) -> Option<Flavour> {
    match kind {
        "HOST" => Some(Flavour::TencentHost),
        "SW" => Some(Flavour::TencentSwitch),
        "RACK" => Some(Flavour::TencentRack),
        _ => None,
    }
}

/// A group's ID, checked for shape.
fn group_id(ctx: &Ctx, id: &str) -> Result<(), ApiError> {
    if groups::is_tencent_id(id) {
        Ok(())
    } else {
        Err(ctx.err(DomainError::Malformed {
            kind: ResourceKind::PlacementGroup,
            id: id.to_string(),
        }))
    }
}

/// The group `p` sees under a `ps-` ID.
pub(super) fn resolve_group(
    engine: &Engine,
    ctx: &Ctx,
    id: &str,
) -> Result<PlacementGroup, ApiError> {
    group_id(ctx, id)?;
    engine
        .placement_group(&ctx.principal, IdKind::Tencent, id)
        .ok_or_else(|| {
            ctx.err(DomainError::NotFound {
                kind: ResourceKind::PlacementGroup,
                id: id.to_string(),
            })
        })
}

fn render(g: &PlacementGroup, members: &[Member]) -> Value {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    json!({
        "DisasterRecoverGroupId": g.tencent_id,
        "Name": g.name,
        "Type": g.flavour.tencent_type(),
        "CvmQuotaTotal": g.max_members(),
        "CurrentNum": ids.len(),
        "InstanceIds": ids,
        "CreateTime": iso_seconds(g.created_at_ms),
        "Affinity": g.max_per_host,
        "Strategy": "SPREAD",
        "PartitionCount": null,
        "Tags": [],
    })
}

pub(super) async fn create_group(engine: &Engine, ctx: &Ctx, r: CreateGroupReq) -> Out {
    let name = required(r.name, "Name")?;
    check_text(&GROUP_NAME, "Name", Some(&name))?;
    let kind = required(r.kind, "Type")?;
    let flavour = flavour(&kind).ok_or_else(|| bad_value("Type", &kind))?;
    check_text(&CLIENT_TOKEN, "ClientToken", r.client_token.as_deref())?;
    let affinity = r.affinity.map_or(1, |a| a.0);
    check_int(&GROUP_AFFINITY, "Affinity", affinity)?;
    match r.strategy.as_deref() {
        None | Some("SPREAD") => {}
        // Partition placement groups are in Tencent's grey release: not served.
        Some(other) => return Err(bad_value("Strategy", other)),
    }
    if r.partition_count.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            "`PartitionCount` applies only to the PARTITION strategy",
        ));
    }
    let g = engine
        .create_placement_group(
            &ctx.principal,
            NewGroup {
                name,
                description: String::new(),
                policy: groups::Policy::AntiAffinity,
                flavour,
                // 1..=10 by GROUP_AFFINITY.
                max_per_host: u32::try_from(affinity).unwrap_or(1),
                group_count: 0,
                on_unable_to_redeploy: String::new(),
                client_token: r.client_token,
            },
        )
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    let members = engine.placement_group_members(IdKind::Tencent);
    let shown = render(&g, members.get(&g.id).map_or(&[], Vec::as_slice));
    let mut out = obj(shown);
    out.retain(|k, _| {
        [
            "DisasterRecoverGroupId",
            "Type",
            "Name",
            "CvmQuotaTotal",
            "CurrentNum",
            "CreateTime",
            "Strategy",
            "PartitionCount",
        ]
        .contains(&k.as_str())
    });
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeGroupsReq {
    disaster_recover_group_ids: Option<Vec<String>>,
    name: Option<String>,
    offset: Option<Int>,
    limit: Option<Int>,
    filters: Option<Vec<Filter>>,
}

pub(super) async fn describe_groups(engine: &Engine, ctx: &Ctx, r: DescribeGroupsReq) -> Out {
    if let Some(ids) = &r.disaster_recover_group_ids {
        check_count(&GROUP_IDS, "DisasterRecoverGroupIds", ids.len())?;
        for id in ids {
            group_id(ctx, id)?;
        }
    }
    check_text(&GROUP_NAME_FILTER, "Name", r.name.as_deref())?;
    let (offset, limit) = offset_limit(r.offset, r.limit)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if !["tag-key", "tag-value"].contains(&f.name.as_str()) && !f.name.starts_with("tag:") {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let members = engine.placement_group_members(IdKind::Tencent);
    let all: Vec<Value> = engine
        .placement_groups(&ctx.principal)
        .into_iter()
        .filter(|g| g.account == ctx.principal.account)
        .filter(|g| {
            r.disaster_recover_group_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&g.tencent_id))
        })
        .filter(|g| r.name.as_ref().is_none_or(|n| g.name.contains(n.as_str())))
        // Groups carry no tags: a tag filter matches none.
        .filter(|_| filters.is_empty())
        .map(|g| render(&g, members.get(&g.id).map_or(&[], Vec::as_slice)))
        .collect();
    let total = all.len();
    let set: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(obj(
        json!({"DisasterRecoverGroupSet": set, "TotalCount": total}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteGroupsReq {
    disaster_recover_group_ids: Option<Vec<String>>,
}

pub(super) async fn delete_groups(engine: &Engine, ctx: &Ctx, r: DeleteGroupsReq) -> Out {
    let ids = non_empty(r.disaster_recover_group_ids, "DisasterRecoverGroupIds")?;
    check_count(&GROUP_IDS, "DisasterRecoverGroupIds", ids.len())?;
    let mut canonical = Vec::with_capacity(ids.len());
    for id in &ids {
        let g = resolve_group(engine, ctx, id)?;
        if !canonical.contains(&g.id) {
            canonical.push(g.id);
        }
    }
    engine
        .delete_placement_groups(&ctx.principal, &canonical, false)
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ModifyGroupReq {
    disaster_recover_group_id: Option<String>,
    name: Option<String>,
    affinity: Option<Int>,
}

pub(super) async fn modify_group(engine: &Engine, ctx: &Ctx, r: ModifyGroupReq) -> Out {
    let id = required(r.disaster_recover_group_id, "DisasterRecoverGroupId")?;
    check_text(&GROUP_NAME, "Name", r.name.as_deref())?;
    let affinity = match r.affinity {
        Some(a) => {
            check_int(&GROUP_AFFINITY, "Affinity", a.0)?;
            Some(u32::try_from(a.0).unwrap_or(1))
        }
        None => None,
    };
    let g = resolve_group(engine, ctx, &id)?;
    // "调整只能从小调到大": the affinity may only grow.
    if let Some(a) = affinity
        && a < g.max_per_host
    {
        return Err(bad_value(
            "Affinity",
            format!("it can only be raised (now {})", g.max_per_host),
        ));
    }
    engine
        .update_placement_group(
            &ctx.principal,
            &g.id,
            GroupChange {
                name: r.name,
                description: None,
                max_per_host: affinity,
            },
        )
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GroupQuotaReq {}

pub(super) async fn describe_group_quota(engine: &Engine, ctx: &Ctx, _r: GroupQuotaReq) -> Out {
    let used = engine
        .placement_groups(&ctx.principal)
        .iter()
        .filter(|g| g.account == ctx.principal.account)
        .count();
    // The account's `server_groups` quota (docs/quotas.md); unlimited shows as the
    // largest value, as DescribeAccountQuota does.
    let limit = engine
        .quota(&ctx.principal.account)
        .map(|q| q.limits.items.get(nubis_core::ItemQuota::ServerGroups))
        .unwrap_or(groups::GROUPS_PER_ACCOUNT.into());
    let limit = if limit < 0 {
        i64::from(i32::MAX)
    } else {
        limit
    };
    Ok(obj(json!({
        "GroupQuota": limit,
        "CurrentNum": used,
        "CvmInHostGroupQuota": groups::TENCENT_HOST_MEMBERS,
        "CvmInSwGroupQuota": groups::TENCENT_SWITCH_MEMBERS,
        "CvmInRackGroupQuota": groups::TENCENT_RACK_MEMBERS,
        "CvmInSwitchGroupQuota": groups::TENCENT_SWITCH_MEMBERS,
    })))
}
