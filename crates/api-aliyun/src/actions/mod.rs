//! One function per action: parse, call the engine, render. One file per resource:
//! [`catalogue`] (regions, zones, images, types), [`create`], [`instances`] (describe, modify,
//! attributes, user data, VNC), [`power`] (start, stop, reboot, delete), [`keypairs`].

mod account;
mod catalogue;
mod create;
mod events;
mod groups;
mod images;
mod instances;
mod keypairs;
mod power;
mod reinstall;
mod spec;
mod tags;

use account::describe_account_attributes;
use catalogue::{
    describe_available_resource, describe_instance_types, describe_regions, describe_zones,
};
use create::create;
use groups::{
    create_deployment_set, delete_deployment_set, describe_deployment_sets, modify_deployment_set,
};
use instances::{
    describe_instance_attribute, describe_instance_status, describe_instance_vnc_url,
    describe_instances, describe_instances_full_status, describe_user_data,
    get_instance_console_output, modify,
};
use keypairs::{KeyChange, attach, create_key_pair, delete_key_pairs, describe_key_pairs};
use nubis_core::select::wildcard;
use power::{Power, power_batch, power_one};
use reinstall::replace_system_disk;
use spec::modify_instance_spec;
use tags::{list_tag_resources, tag_resources, untag_resources};

use crate::errors::{ApiError, map};
use crate::params::{self, Params};
use crate::render;
use crate::{Ctx, KNOWN_REGIONS};
use nubis_core::limits::{self, Constraint};
use nubis_core::{DomainError, Instance, ResourceKind, StopMode, WhenRunning, catalog};
use nubis_engine::{AttrChange, Batch, BatchMode, Command, CreateSpec, Engine, IdKind, KeyNaming};
use nubis_pipeline::{ActionSpec, Registry, Services, spec_names};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Per-account, per-action quotas (requests per second; docs/aliyun-errors.md): reads get
/// twice the budget of writes.
pub(crate) const READ_LIMIT: u32 = 40;
pub(crate) const WRITE_LIMIT: u32 = 20;

/// How an action runs: the engine, the request's context, its parameters.
pub(crate) type HandlerFn = for<'a> fn(&'a Engine, &'a Ctx, &'a Params) -> BoxFuture<'a, Out>;
pub(crate) type BoxFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// An action's handler in [`REGISTRY`].
#[derive(Clone, Copy)]
pub struct Handler(pub(crate) HandlerFn);

impl Handler {
    pub(crate) fn run<'a>(
        &self,
        engine: &'a Engine,
        ctx: &'a Ctx,
        p: &'a Params,
    ) -> BoxFuture<'a, Out> {
        (self.0)(engine, ctx, p)
    }
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

/// A handler that answers without waiting.
fn ready<'a>(out: Out) -> BoxFuture<'a, Out> {
    Box::pin(std::future::ready(out))
}

/// One declaration per action: `action!(read|write Name, <region>, [dry_run,] handler)`.
/// The policy action is `ecs:<Name>` and the parameter type the official SDKs'
/// `<Name>Request` model (the dialect reads parameters as a flat map and, like ECS, does not
/// refuse unknown ones). `<region>`: `RequiredByAction` (the handler answers
/// `MissingRegionId` after the rate limit, as ECS orders it) or `Optional`.
macro_rules! action {
    (@spec $service:ident $name:literal, $limit:expr, $mutates:expr, $dry:expr, $region:ident, $h:expr) => {
        ::nubis_pipeline::ActionSpec {
            name: $name,
            rate_limit: $limit,
            mutates: $mutates,
            dry_run: $dry,
            policy: concat!(stringify!($service), ":", $name),
            per_resource: false,
            params: concat!($name, "Request"),
            region: ::nubis_pipeline::RegionUse::$region,
            handler: $crate::actions::Handler($h),
        }
    };
    (read $name:literal, $region:ident, $h:expr) => {
        action!(@spec ecs $name, READ_LIMIT, false, false, $region, $h)
    };
    (write $name:literal, $region:ident, dry_run, $h:expr) => {
        action!(@spec ecs $name, WRITE_LIMIT, true, true, $region, $h)
    };
    (write $name:literal, $region:ident, $h:expr) => {
        action!(@spec ecs $name, WRITE_LIMIT, true, false, $region, $h)
    };
    // A global service's action (RAM, STS, ActionTrail): `<service>:<Name>`, region optional
    // (and ignored, D3), the parameters read by `$run` (an async handler).
    ($service:ident read $name:literal, $run:path) => {
        action!(@spec $service $name, $crate::actions::READ_LIMIT, false, false, Optional, |e, c, p| Box::pin($run(e, c, p)))
    };
    ($service:ident write $name:literal, $run:path) => {
        action!(@spec $service $name, $crate::actions::WRITE_LIMIT, true, false, Optional, |e, c, p| Box::pin($run(e, c, p)))
    };
}
pub(crate) use action;

/// An action on instances the request names or lists: policies naming particular instances
/// decide it per instance (the engine asks the principal's guard).
const fn per_instance(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        per_resource: true,
        ..spec
    }
}

const SPECS: &[ActionSpec<Handler>] = &[
    action!(read "DescribeRegions", Optional, |_, _, _| ready(Ok(describe_regions()))),
    action!(read "DescribeZones", RequiredByAction, |e, c, _| ready(describe_zones(e, c))),
    action!(read "DescribeImages", RequiredByAction, |e, c, p| ready(images::describe_images(e, c, p))),
    per_instance(
        action!(write "CreateImage", Optional, dry_run, |e, c, p| Box::pin(images::create_image(e, c, p))),
    ),
    action!(write "DeleteImage", RequiredByAction, |e, c, p| Box::pin(images::delete_image(e, c, p))),
    action!(write "ModifyImageAttribute", RequiredByAction, |e, c, p| Box::pin(images::modify_image_attribute(e, c, p))),
    action!(read "DescribeInstanceTypes", Optional, |e, _, p| ready(describe_instance_types(e, p))),
    action!(read "DescribeAvailableResource", RequiredByAction, |e, c, p| ready(describe_available_resource(e, c, p))),
    action!(write "RunInstances", RequiredByAction, dry_run, |e, c, p| Box::pin(create(e, c, p, true))),
    action!(write "CreateInstance", RequiredByAction, dry_run, |e, c, p| Box::pin(create(e, c, p, false))),
    per_instance(
        action!(read "DescribeInstances", RequiredByAction, |e, c, p| ready(describe_instances(e, c, p))),
    ),
    per_instance(
        action!(read "DescribeInstanceStatus", RequiredByAction, |e, c, p| ready(describe_instance_status(e, c, p))),
    ),
    per_instance(
        action!(write "StartInstance", Optional, dry_run, |e, c, p| Box::pin(power_one(e, c, p, Power::Start))),
    ),
    per_instance(
        action!(write "StartInstances", RequiredByAction, dry_run, |e, c, p| Box::pin(power_batch(e, c, p, Power::Start))),
    ),
    per_instance(
        action!(write "StopInstance", Optional, dry_run, |e, c, p| Box::pin(power_one(e, c, p, Power::Stop))),
    ),
    per_instance(
        action!(write "StopInstances", RequiredByAction, dry_run, |e, c, p| Box::pin(power_batch(e, c, p, Power::Stop))),
    ),
    per_instance(
        action!(write "RebootInstance", Optional, dry_run, |e, c, p| Box::pin(power_one(e, c, p, Power::Reboot { force: "ForceStop" }))),
    ),
    per_instance(
        action!(write "RebootInstances", RequiredByAction, dry_run, |e, c, p| Box::pin(power_batch(e, c, p, Power::Reboot { force: "ForceReboot" }))),
    ),
    per_instance(
        action!(write "DeleteInstance", Optional, dry_run, |e, c, p| Box::pin(power_one(e, c, p, Power::Delete))),
    ),
    per_instance(
        action!(write "DeleteInstances", RequiredByAction, dry_run, |e, c, p| Box::pin(power_batch(e, c, p, Power::Delete))),
    ),
    per_instance(
        action!(write "ModifyInstanceAttribute", Optional, |e, c, p| Box::pin(modify(e, c, p))),
    ),
    per_instance(
        action!(write "ModifyInstanceSpec", Optional, dry_run, |e, c, p| Box::pin(modify_instance_spec(e, c, p))),
    ),
    action!(write "CreateKeyPair", RequiredByAction, |e, c, p| Box::pin(create_key_pair(e, c, p, false))),
    action!(write "ImportKeyPair", RequiredByAction, |e, c, p| Box::pin(create_key_pair(e, c, p, true))),
    action!(read "DescribeKeyPairs", RequiredByAction, |e, c, p| ready(describe_key_pairs(e, c, p))),
    action!(write "DeleteKeyPairs", RequiredByAction, |e, c, p| Box::pin(delete_key_pairs(e, c, p))),
    per_instance(
        action!(write "AttachKeyPair", RequiredByAction, |e, c, p| Box::pin(attach(e, c, p, KeyChange::Attach))),
    ),
    per_instance(
        action!(write "DetachKeyPair", RequiredByAction, |e, c, p| Box::pin(attach(e, c, p, KeyChange::Detach))),
    ),
    per_instance(
        action!(read "DescribeInstanceAttribute", Optional, |e, c, p| ready(describe_instance_attribute(e, c, p))),
    ),
    per_instance(
        action!(read "DescribeUserData", RequiredByAction, |e, c, p| Box::pin(describe_user_data(e, c, p))),
    ),
    per_instance(
        action!(read "DescribeInstancesFullStatus", RequiredByAction, |e, c, p| Box::pin(describe_instances_full_status(e, c, p))),
    ),
    per_instance(
        action!(read "DescribeInstanceVncUrl", RequiredByAction, |e, c, p| ready(describe_instance_vnc_url(e, c, p))),
    ),
    per_instance(
        action!(read "GetInstanceConsoleOutput", RequiredByAction, |e, c, p| ready(get_instance_console_output(e, c, p))),
    ),
    per_instance(
        action!(write "CreateSimulatedSystemEvents", RequiredByAction, |e, c, p| Box::pin(events::create_simulated_system_events(e, c, p))),
    ),
    action!(write "CancelSimulatedSystemEvents", RequiredByAction, |e, c, p| Box::pin(events::cancel_simulated_system_events(e, c, p))),
    action!(read "DescribeInstanceHistoryEvents", RequiredByAction, |e, c, p| Box::pin(events::describe_instance_history_events(e, c, p))),
    action!(read "DescribeAccountAttributes", RequiredByAction, |e, c, p| ready(describe_account_attributes(e, c, p))),
    per_instance(
        action!(write "ReplaceSystemDisk", Optional, |e, c, p| Box::pin(replace_system_disk(e, c, p))),
    ),
    per_instance(
        action!(write "TagResources", RequiredByAction, |e, c, p| Box::pin(tag_resources(e, c, p))),
    ),
    per_instance(
        action!(write "UntagResources", RequiredByAction, |e, c, p| Box::pin(untag_resources(e, c, p))),
    ),
    per_instance(
        action!(read "ListTagResources", RequiredByAction, |e, c, p| ready(list_tag_resources(e, c, p))),
    ),
    action!(write "CreateDeploymentSet", RequiredByAction, |e, c, p| Box::pin(create_deployment_set(e, c, p))),
    action!(read "DescribeDeploymentSets", RequiredByAction, |e, c, p| ready(describe_deployment_sets(e, c, p))),
    action!(write "ModifyDeploymentSetAttribute", RequiredByAction, |e, c, p| Box::pin(modify_deployment_set(e, c, p))),
    action!(write "DeleteDeploymentSet", RequiredByAction, |e, c, p| Box::pin(delete_deployment_set(e, c, p))),
];

/// Every ECS action this server answers: dispatch, rate limits, metrics labels, policy
/// actions and docs/catalogue/aliyun-ecs.md come from here.
pub static REGISTRY: Registry<Handler> = Registry::new("aliyun", "ecs", crate::VERSION, SPECS);

/// The Alibaba Cloud RPC services on this listener (RPC v1 and ACS3 signatures), told apart
/// by version: ECS, ActionTrail (RAM and STS join them).
pub static SERVICES: Services<Handler> = Services {
    cloud: "aliyun",
    registries: &[
        &REGISTRY,
        &crate::ram::REGISTRY,
        &crate::sts::REGISTRY,
        &crate::actiontrail::REGISTRY,
    ],
};

/// The declared action names, in declaration order (derived from [`REGISTRY`]).
pub const ACTIONS: &[&str] = &spec_names::<_, { SPECS.len() }>(SPECS);

pub(crate) type Out = Result<Map<String, Value>, ApiError>;

pub(crate) fn obj(v: Value) -> Map<String, Value> {
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

/// PageNumber/PageSize within their rows (`size_row`: the action's PageSize limit).
fn page(p: &Params, size_row: &Constraint) -> Result<(usize, usize), ApiError> {
    let number = p.int(&params::PAGE_NUMBER, 1)?;
    let size = p.int(size_row, 10)?;
    // Both are positive by their rows; the product fits in 64 bits.
    let (number, size) = (number.max(1) as usize, size.max(1) as usize);
    Ok(((number - 1).saturating_mul(size), size))
}

/// The instance types Alibaba lists: the built-in catalogue and the public types an operator
/// created (docs/flavors.md).
pub(super) fn instance_types(e: &Engine) -> Vec<nubis_core::catalog::InstanceType> {
    e.instance_types(nubis_engine::TypeViewer::PUBLIC)
}

/// The type the caller may use under its Alibaba name (a private created type too, for the
/// administrator's account).
pub(super) fn instance_type_by_aliyun(
    e: &Engine,
    ctx: &Ctx,
    name: &str,
) -> Option<nubis_core::catalog::InstanceType> {
    e.instance_types(nubis_engine::TypeViewer::of(&ctx.principal))
        .into_iter()
        .find(|t| t.aliyun == name)
}
