//! Instances: describe them and operate on them (power, password, rescue).

use super::params::*;
use super::{Out, Payload, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::render;
use crate::wire::{Bool, Int};
use nubis_core::allowance::{CountedOperation, allowance};
use nubis_core::select::{self, Clause, Facet, Lookup, NameMatch, Selection};
use nubis_core::{Instance, InstanceState, ResourceKind, catalog, ids};
use nubis_engine::{Command, Engine, IdKind};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeInstancesReq {
    instance_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

pub(super) const INSTANCE_FILTERS: &[&str] = &[
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
        "vpc-id" => v == render::VPC_ID,
        "subnet-id" => v == render::SUBNET_ID,
        "security-group-id" => i.security_group_ids.contains(v),
        name => name
            .strip_prefix("tag:")
            .is_some_and(|k| i.tags.iter().any(|(tk, tv)| tk == k && tv == v)),
    })
}

/// The index clause a filter stands for, if the fleet indexes it (the same meaning as
/// [`matches`]: canonical values whose Tencent spelling is the filter's); `None`: [`matches`]
/// checks it on each candidate.
fn clause(f: &Filter) -> Option<Clause> {
    let values = || f.values.clone();
    Some(match f.name.as_str() {
        "zone" => Clause::Facet(
            Facet::Zone,
            f.values
                .iter()
                .flat_map(|v| catalog::zones_spelled(v, |z| z.tencent))
                .collect(),
        ),
        "project-id" => Clause::Facet(Facet::Project, values()),
        "instance-state" => Clause::states(
            InstanceState::ALL
                .into_iter()
                .filter(|s| f.values.iter().any(|v| render::state(*s) == v)),
        ),
        "instance-charge-type" => Clause::Facet(Facet::ChargeType, values()),
        "instance-type" => Clause::Facet(Facet::InstanceType, values()),
        "image-id" => Clause::Facet(Facet::Image, values()),
        "private-ip-address" => Clause::Lookup(Lookup::PrivateIp, values()),
        "instance-name" => Clause::Name(
            f.values
                .iter()
                .map(|v| NameMatch::Contains(v.clone()))
                .collect(),
        ),
        "tag-key" => Clause::Lookup(Lookup::TagKey, values()),
        "tag-value" => Clause::Lookup(Lookup::TagValue, values()),
        "security-group-id" => Clause::Facet(Facet::SecurityGroup, values()),
        name => {
            let key = name.strip_prefix("tag:")?;
            Clause::Lookup(
                Lookup::Tag,
                f.values.iter().map(|v| select::tag_term(key, v)).collect(),
            )
        }
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
    ids_or_filters(&ids_in, "InstanceIds", &filters, "InvalidParameter")?;
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
    // No region, no instances (the pipeline always resolves one for this action).
    if region.is_none() {
        return Ok((0, Vec::new()));
    }
    let mut sel = Selection::in_region(region);
    let mut rest = Vec::new();
    for f in &filters {
        match f.name.as_str() {
            // Every instance is in the one VPC and subnet: the filter keeps all or none.
            "vpc-id" | "subnet-id" => {
                let id = if f.name == "vpc-id" {
                    render::VPC_ID
                } else {
                    render::SUBNET_ID
                };
                if !f.values.iter().any(|v| v == id) {
                    sel.and(Clause::Instances(Vec::new()));
                }
            }
            // Looked up by ID, as InstanceIds are (an unknown or hidden one matches nothing).
            "instance-id" | "uuid" => {
                let kind = if f.name == "uuid" {
                    IdKind::Uuid
                } else {
                    IdKind::Tencent
                };
                let found = f
                    .values
                    .iter()
                    .filter_map(|v| {
                        engine
                            .resolve(&ctx.principal, kind, std::slice::from_ref(v))
                            .ok()
                    })
                    .flatten()
                    .collect();
                sel.and(Clause::Instances(found));
            }
            _ => match clause(f) {
                Some(c) => {
                    sel.and(c);
                }
                None => rest.push(f),
            },
        }
    }
    let check = |i: &Instance| rest.iter().all(|f| matches(i, f));
    let rest: Option<&dyn Fn(&Instance) -> bool> = (!rest.is_empty()).then_some(&check);
    Ok(engine.select(&ctx.principal, &sel, rest, offset, limit))
}

pub(super) async fn describe_instances(
    engine: &Engine,
    ctx: &Ctx,
    r: DescribeInstancesReq,
) -> Result<Payload, ApiError> {
    let (total, page) = select(engine, ctx, r.instance_ids, r.filters, r.offset, r.limit)?;
    let groups = engine.placement_group_ids(IdKind::Tencent);
    let group_of = |i: &Instance| {
        i.placement_group
            .as_ref()
            .and_then(|g| groups.get(g))
            .map_or("", String::as_str)
    };
    let items: Vec<render::InstanceOut<'_>> = page
        .iter()
        .map(|i| render::instance(i, group_of(i)))
        .collect();
    // The envelope by hand: the set is rendered in slices (nubis_pipeline::page).
    let mut out = format!("{{\"TotalCount\":{total},\"InstanceSet\":");
    nubis_pipeline::page::push_array(&mut out, items).await;
    out.push('}');
    Ok(Payload::Json(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeStatusReq {
    instance_ids: Option<Vec<String>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

pub(super) async fn describe_instances_status(
    engine: &Engine,
    ctx: &Ctx,
    r: DescribeStatusReq,
) -> Out {
    let (total, page) = select(engine, ctx, r.instance_ids, None, r.offset, r.limit)?;
    let set: Vec<Value> = page
        .iter()
        .map(|i| json!({"InstanceId": i.tencent_id, "InstanceState": render::state(i.state)}))
        .collect();
    Ok(obj(json!({"TotalCount": total, "InstanceStatusSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct PowerReq {
    instance_ids: Option<Vec<String>>,
    stop_type: Option<String>,
    force_stop: Option<Bool>,
    force_reboot: Option<Bool>,
    stopped_mode: Option<String>,
    release_address: Option<Bool>,
    release_prepaid_data_disks: Option<Bool>,
}

/// The four power actions share [`PowerReq`]; each refuses its siblings' parameters.
#[derive(Clone, Copy)]
pub(super) enum Power {
    Start,
    Stop,
    Reboot,
    Terminate,
}

pub(super) async fn power(engine: &Engine, ctx: &Ctx, r: PowerReq, op: Power) -> Out {
    // Reject parameters that belong to a sibling action.
    let foreign = match op {
        Power::Start => [
            r.stop_type.is_some(),
            r.force_stop.is_some(),
            r.force_reboot.is_some(),
            r.stopped_mode.is_some(),
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        Power::Stop => [
            false,
            false,
            r.force_reboot.is_some(),
            false,
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        Power::Reboot => [
            false,
            r.force_stop.is_some(),
            false,
            r.stopped_mode.is_some(),
            r.release_address.is_some() || r.release_prepaid_data_disks.is_some(),
        ],
        Power::Terminate => [
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
    let cmd = match op {
        Power::Start => Command::Start,
        Power::Stop => {
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
        Power::Reboot => Command::Reboot {
            mode: stop_mode(r.stop_type.as_deref(), r.force_reboot)?,
        },
        Power::Terminate => Command::Terminate { force: true },
    };
    submit(engine, ctx, &targets, cmd).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ResetPasswordReq {
    instance_ids: Option<Vec<String>>,
    password: Option<String>,
    user_name: Option<String>,
    force_stop: Option<Bool>,
}

pub(super) async fn reset_password(engine: &Engine, ctx: &Ctx, r: ResetPasswordReq) -> Out {
    let password = required(r.password, "Password")?;
    if let Some(u) = &r.user_name {
        nubis_core::password::check_username_len("UserName", u).map_err(|e| ctx.err(e))?;
    }
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let cmd = Command::ResetPassword {
        user: r.user_name,
        password,
        when_running: when_running(r.force_stop),
        rule: nubis_core::password::PasswordRule::Complexity,
    };
    submit(engine, ctx, &targets, cmd).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct EnterRescueReq {
    instance_id: Option<String>,
    password: Option<String>,
    username: Option<String>,
    force_stop: Option<Bool>,
    stop_type: Option<String>,
}

pub(super) async fn enter_rescue(engine: &Engine, ctx: &Ctx, r: EnterRescueReq) -> Out {
    let id = required(r.instance_id, "InstanceId")?;
    let password = required(r.password, "Password")?;
    let mode = stop_mode(r.stop_type.as_deref(), r.force_stop)?;
    if let Some(u) = &r.username {
        nubis_core::password::check_username_len("Username", u).map_err(|e| ctx.err(e))?;
    }
    let targets = instances(engine, ctx, Some(vec![id]), "InstanceId")?;
    let cmd = Command::EnterRescue {
        user: r.username,
        password,
        mode,
        image_id: None,
        rule: nubis_core::password::PasswordRule::Complexity,
    };
    submit(engine, ctx, &targets, cmd).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ExitRescueReq {
    instance_id: Option<String>,
}

pub(super) async fn exit_rescue(engine: &Engine, ctx: &Ctx, r: ExitRescueReq) -> Out {
    let id = required(r.instance_id, "InstanceId")?;
    let targets = instances(engine, ctx, Some(vec![id]), "InstanceId")?;
    submit(engine, ctx, &targets, Command::ExitRescue).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ResetTypeReq {
    instance_ids: Option<Vec<String>>,
    instance_type: Option<String>,
    force_stop: Option<Bool>,
}

/// The longest instance type name taken (the longest CVM type names are under 32).
const INSTANCE_TYPE_MAX: usize = 64;

/// ResetInstancesType: one instance per call (as documented), stopped — or running with
/// ForceStop, which stops it (soft, then hard) first. The instance is started once its type
/// has changed, whatever its power before ("实例将自动显示为运行中").
pub(super) async fn reset_instances_type(engine: &Engine, ctx: &Ctx, r: ResetTypeReq) -> Out {
    let instance_type = required(r.instance_type, "InstanceType")?;
    let well_formed = (1..=INSTANCE_TYPE_MAX).contains(&instance_type.len())
        && instance_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !well_formed {
        return Err(ApiError::new(
            "InvalidInstanceType.Malformed",
            format!(
                "The instance type `{}` is malformed.",
                instance_type
                    .chars()
                    .take(INSTANCE_TYPE_MAX)
                    .collect::<String>()
            ),
        ));
    }
    if let Some(ids) = &r.instance_ids
        && ids.len() > 1
    {
        return Err(ctx.err(nubis_core::DomainError::TooMany {
            name: "InstanceIds".into(),
            max: 1,
            got: ids.len(),
        }));
    }
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let cmd = Command::Resize {
        instance_type,
        when_running: when_running(r.force_stop),
        then: nubis_core::ResizeEnd::Start,
    };
    submit(engine, ctx, &targets, cmd).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct OperationLimitReq {
    instance_ids: Option<Vec<String>>,
    operation: Option<String>,
}

/// DescribeInstancesOperationLimit: each instance's allowance of a counted operation. The
/// region is optional, as documented: without one, the account's instances in any region.
pub(super) async fn describe_operation_limit(
    engine: &Engine,
    ctx: &Ctx,
    r: OperationLimitReq,
) -> Out {
    let operation = required(r.operation, "Operation")?;
    let op = match operation.as_str() {
        "INSTANCE_DEGRADE" => CountedOperation::Degrade,
        "INTERNET_CHARGE_TYPE_CHANGE" => CountedOperation::InternetChargeTypeChange,
        other => {
            return Err(bad_value(
                "Operation",
                format!("`{other}` is not one of INSTANCE_DEGRADE, INTERNET_CHARGE_TYPE_CHANGE"),
            ));
        }
    };
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let set: Vec<Value> = targets
        .iter()
        .filter_map(|id| engine.instance(*id))
        .map(|i| render::operation_limit(&i, &operation, allowance(&i, op)))
        .collect();
    Ok(obj(json!({ "InstanceOperationLimitSet": set })))
}
