//! One function per action: parse, call the engine, render. One file per resource:
//! [`catalogue`] (regions, zones, images, types), [`create`], [`instances`] (describe, modify,
//! attributes, user data, VNC), [`power`] (start, stop, reboot, delete), [`keypairs`].

mod catalogue;
mod create;
mod instances;
mod keypairs;
mod power;

use catalogue::{describe_images, describe_instance_types, describe_regions, describe_zones};
use create::create;
use instances::{
    describe_instance_attribute, describe_instance_status, describe_instance_vnc_url,
    describe_instances, describe_user_data, modify,
};
use keypairs::{attach, create_key_pair, delete_key_pairs, describe_key_pairs};
use power::{power_batch, power_one};

use crate::errors::{ApiError, map};
use crate::params::{self, Params};
use crate::render;
use crate::{Ctx, KNOWN_REGIONS};
use nubis_core::limits::{self, Constraint};
use nubis_core::{DomainError, Instance, ResourceKind, StopMode, WhenRunning, catalog};
use nubis_engine::{Command, CreateSpec, Engine, IdKind};
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
/// (core and the engine name them by Tencent, canonical or key-pair ID).
fn domain(engine: &Engine, ctx: &Ctx, e: DomainError) -> ApiError {
    map(e.map_ids(|kind, id| match kind {
        ResourceKind::Instance => {
            let uuid = Uuid::parse_str(id).ok().or_else(|| {
                engine
                    .resolve(&ctx.principal, IdKind::Tencent, &[id.to_string()])
                    .ok()
                    .and_then(|u| u.first().copied())
            })?;
            engine.instance(uuid).map(|i| i.aliyun_id)
        }
        ResourceKind::KeyPair => engine.key_pair_name(&ctx.principal, id),
        ResourceKind::Image | ResourceKind::InstanceType | ResourceKind::Zone => None,
    }))
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

/// PageNumber/PageSize within their rows (`size_row`: the action's PageSize limit).
fn page(p: &Params, size_row: &Constraint) -> Result<(usize, usize), ApiError> {
    let number = p.int(&params::PAGE_NUMBER, 1)?;
    let size = p.int(size_row, 10)?;
    // Both are positive by their rows; the product fits in 64 bits.
    let (number, size) = (number.max(1) as usize, size.max(1) as usize);
    Ok(((number - 1).saturating_mul(size), size))
}

fn wildcard(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}
