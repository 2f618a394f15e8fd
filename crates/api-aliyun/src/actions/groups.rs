//! Deployment sets: create, describe, modify, delete. One resource with Nova's server groups
//! and Tencent's spread placement groups (docs/placement-groups.md).
use super::*;
use nubis_core::groups::{Flavour, PlacementGroup, Policy};
use nubis_engine::{GroupChange, Member, NewGroup};
use nubis_pipeline::shapes::iso_seconds;

fn flavour(strategy: &str) -> Option<Flavour> {
    match strategy {
        "Availability" => Some(Flavour::AliyunAvailability),
        "AvailabilityGroup" => Some(Flavour::AliyunAvailabilityGroup),
        "LowLatency" => Some(Flavour::AliyunLowLatency),
        _ => None,
    }
}

/// The deployment set `p` sees under a `ds-` ID (a malformed one is as unknown as a missing
/// one, as ECS answers).
pub(super) fn resolve_set(
    engine: &Engine,
    ctx: &Ctx,
    id: &str,
) -> Result<PlacementGroup, ApiError> {
    engine
        .placement_group(&ctx.principal, IdKind::Aliyun, id)
        .ok_or_else(|| {
            map(DomainError::NotFound {
                kind: ResourceKind::PlacementGroup,
                id: id.to_string(),
            })
        })
}

fn render(g: &PlacementGroup, members: &[Member]) -> Value {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    // Per zone the set holds members in: what it has and what it may still take.
    let mut zones: Vec<&str> = members.iter().map(|m| m.zone.as_str()).collect();
    zones.dedup();
    zones.sort_unstable();
    zones.dedup();
    let capacities: Vec<Value> = zones
        .iter()
        .map(|z| {
            let used = members.iter().filter(|m| m.zone == *z).count();
            json!({
                "ZoneId": render::zone_name(z),
                "UsedAmount": used,
                "AvailableAmount": (g.max_members() as usize).saturating_sub(used),
            })
        })
        .collect();
    let strategy = g.flavour.aliyun_strategy(g.policy);
    json!({
        "DeploymentSetId": g.aliyun_id,
        "DeploymentSetName": g.name,
        "DeploymentSetDescription": g.description,
        "DeploymentStrategy": strategy,
        "Strategy": strategy,
        "Domain": "Default",
        "Granularity": "Host",
        "Type": "host",
        "GroupCount": g.group_count,
        "Affinity": g.max_per_host,
        "InstanceAmount": ids.len(),
        "InstanceIds": {"InstanceId": ids},
        "CreationTime": iso_seconds(g.created_at_ms),
        "Capacities": {"Capacity": capacities},
    })
}

pub(super) async fn create_deployment_set(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let name = p.text(&params::DEPLOYMENT_SET_NAME)?.unwrap_or_default();
    let description = p.text(&params::DESCRIPTION)?.unwrap_or_default();
    let token = p.text(&params::CLIENT_TOKEN)?;
    let strategy = p.opt("Strategy").unwrap_or_else(|| "Availability".into());
    let flavour = flavour(&strategy).ok_or_else(|| ApiError::invalid("Strategy", &strategy))?;
    let group_count = match flavour {
        Flavour::AliyunAvailabilityGroup => p.int(&params::GROUP_COUNT, 3)?,
        _ => 0,
    };
    let affinity = p.int(&params::DEPLOYMENT_AFFINITY, 1)?;
    match p.opt("Type").as_deref() {
        None | Some("host" | "sw" | "rack") => {}
        Some(other) => return Err(ApiError::invalid("Type", other)),
    }
    let on_unable = p
        .opt("OnUnableToRedeployFailedInstance")
        .unwrap_or_else(|| "CancelMembershipAndStart".into());
    if !["CancelMembershipAndStart", "KeepStopped"].contains(&on_unable.as_str()) {
        return Err(ApiError::invalid(
            "OnUnableToRedeployFailedInstance",
            &on_unable,
        ));
    }
    let g = engine
        .create_placement_group(
            &ctx.principal,
            NewGroup {
                name,
                description,
                policy: flavour.policy().unwrap_or(Policy::AntiAffinity),
                flavour,
                // 1..=10 by DEPLOYMENT_AFFINITY; 1..=7 by GROUP_COUNT.
                max_per_host: u32::try_from(affinity).unwrap_or(1),
                group_count: u32::try_from(group_count).unwrap_or(0),
                on_unable_to_redeploy: on_unable,
                client_token: token,
            },
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(obj(json!({"DeploymentSetId": g.aliyun_id})))
}

pub(super) fn describe_deployment_sets(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region = region(ctx)?;
    let (offset, size) = page(p, &params::PAGE_SIZE_50)?;
    let ids = p.json_list("DeploymentSetIds")?;
    if let Some(ids) = &ids {
        params::check_count(&params::DEPLOYMENT_SET_IDS, ids.len())?;
    }
    let name = p.opt("DeploymentSetName");
    let strategy = p.opt("Strategy");
    let members = engine.placement_group_members(IdKind::Aliyun);
    let all: Vec<Value> = engine
        .placement_groups(&ctx.principal)
        .into_iter()
        .filter(|g| g.account == ctx.principal.account)
        .filter(|g| ids.as_ref().is_none_or(|ids| ids.contains(&g.aliyun_id)))
        .filter(|g| name.as_ref().is_none_or(|n| *n == g.name))
        .filter(|g| {
            strategy
                .as_deref()
                .is_none_or(|s| s == g.flavour.aliyun_strategy(g.policy))
        })
        .map(|g| render(&g, members.get(&g.id).map_or(&[], Vec::as_slice)))
        .collect();
    let total = all.len();
    let list: Vec<Value> = all.into_iter().skip(offset).take(size).collect();
    Ok(obj(json!({
        "RegionId": region,
        "TotalCount": total,
        "PageNumber": offset / size + 1,
        "PageSize": size,
        "DeploymentSets": {"DeploymentSet": list},
    })))
}

pub(super) async fn modify_deployment_set(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let id = p.required("DeploymentSetId")?;
    let name = p.text(&params::DEPLOYMENT_SET_NAME)?;
    let description = p.text(&params::DESCRIPTION)?;
    let g = resolve_set(engine, ctx, &id)?;
    engine
        .update_placement_group(
            &ctx.principal,
            &g.id,
            GroupChange {
                name,
                description,
                max_per_host: None,
            },
        )
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

pub(super) async fn delete_deployment_set(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let id = p.required("DeploymentSetId")?;
    let g = resolve_set(engine, ctx, &id)?;
    engine
        .delete_placement_groups(&ctx.principal, std::slice::from_ref(&g.id), false)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(Map::new())
}

/// The canonical ID of the set RunInstances / CreateInstance name (`DeploymentSetId`).
pub(super) fn launch_set(
    engine: &Engine,
    ctx: &Ctx,
    p: &Params,
) -> Result<Option<String>, ApiError> {
    match p.opt("DeploymentSetId") {
        Some(id) => Ok(Some(resolve_set(engine, ctx, &id)?.id)),
        None => Ok(None),
    }
}
