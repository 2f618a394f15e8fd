//! One function per action: parse strictly, call the engine, render. Split by resource:
//! [`catalogue`] (regions, zones, images, instance types), [`launch`] (RunInstances),
//! [`instances`] (describe and operate), [`keypairs`]; [`limits`] holds the documented
//! parameter limits and [`params`] the parsing helpers they share.

mod catalogue;
mod instances;
mod keypairs;
mod launch;
mod limits;
mod params;

use crate::Ctx;
use crate::errors::ApiError;
use catalogue::*;
use instances::*;
use keypairs::*;
use launch::*;
use nubis_engine::Engine;
use serde_json::{Map, Value};

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

pub(super) type Out = Result<Map<String, Value>, ApiError>;

/// An action's answer: fields to put next to RequestId, or (for large pages) a JSON object
/// already serialized.
pub(crate) enum Payload {
    Map(Map<String, Value>),
    Json(String),
}

pub(super) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
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
