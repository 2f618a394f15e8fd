//! Key pairs: create, import, describe, delete, associate with instances.

use super::limits::{KEY_NAME, check_text};
use super::params::*;
use super::{Out, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::render;
use crate::wire::{Bool, Int};
use nubis_core::{DomainError, ResourceKind, ids};
use nubis_engine::{Command, Engine, IdKind};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // some fields are accepted for compatibility only
pub(super) struct CreateKeyPairReq {
    key_name: Option<String>,
    project_id: Option<Int>,
    public_key: Option<String>,
    tag_specification: Option<Vec<TagSpecification>>,
}

fn check_key_name(name: &str) -> Result<(), ApiError> {
    check_text(&KEY_NAME, "KeyName", Some(name))
}

/// CreateKeyPair and ImportKeyPair share [`CreateKeyPairReq`]; only an import takes PublicKey.
pub(super) async fn create_or_import(
    engine: &Engine,
    ctx: &Ctx,
    r: CreateKeyPairReq,
    import: bool,
) -> Out {
    if !import && r.public_key.is_some() {
        return Err(ApiError::new(
            "UnknownParameter",
            "The parameter `PublicKey` is not recognized",
        ));
    }
    let name = required(r.key_name, "KeyName")?;
    let project = required(r.project_id, "ProjectId")?.0;
    check_key_name(&name)?;
    let public = if import {
        Some(required(r.public_key, "PublicKey")?)
    } else {
        None
    };
    let created = engine
        .create_key_pair(&ctx.principal, &name, project, public.as_deref())
        .await
        .map_err(|e| match e {
            DomainError::InvalidValue { reason, .. } => ApiError::new(
                "InvalidPublicKey.Malformed",
                format!("invalid public key: {reason}"),
            ),
            e => ctx.err(e),
        })?;
    if import {
        return Ok(obj(json!({"KeyId": created.key_pair.id})));
    }
    let mut kp = render::key_pair(&created.key_pair, &[]);
    kp["PrivateKey"] = json!(created.private_key);
    Ok(obj(json!({"KeyPair": kp})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DescribeKeyPairsReq {
    key_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
}

pub(super) async fn describe_key_pairs(engine: &Engine, ctx: &Ctx, r: DescribeKeyPairsReq) -> Out {
    ids_or_filters(&r.key_ids, "KeyIds", &r.filters, "InvalidParameter")?;
    let (offset, limit) = offset_limit(r.offset, r.limit)?;
    if let Some(ids) = &r.key_ids
        && let Some(bad) = ids.iter().find(|k| !ids::is_key_id(k))
    {
        return Err(ctx.err(DomainError::Malformed {
            kind: ResourceKind::KeyPair,
            id: bad.clone(),
        }));
    }
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    for f in &filters {
        if !["project-id", "key-name", "key-id"].contains(&f.name.as_str())
            && !f.name.starts_with("tag")
        {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let associated = engine.key_pair_instances(&ctx.principal, IdKind::Tencent);
    let all: Vec<Value> = engine
        .key_pairs(&ctx.principal)
        .into_iter()
        .filter(|k| r.key_ids.as_ref().is_none_or(|ids| ids.contains(&k.id)))
        .filter(|k| {
            filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "project-id" => k.project_id.to_string() == *v,
                    "key-name" => k.name.contains(v.as_str()),
                    "key-id" => k.id == *v,
                    _ => false,
                })
            })
        })
        .map(|k| render::key_pair(&k, associated.get(&k.id).map_or(&[], Vec::as_slice)))
        .collect();
    let total = all.len();
    let set: Vec<Value> = all.into_iter().skip(offset).take(limit).collect();
    Ok(obj(json!({"TotalCount": total, "KeyPairSet": set})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteKeyPairsReq {
    key_ids: Option<Vec<String>>,
}

pub(super) async fn delete_key_pairs(engine: &Engine, ctx: &Ctx, r: DeleteKeyPairsReq) -> Out {
    let keys = key_ids(ctx, r.key_ids)?;
    engine
        .delete_key_pairs(&ctx.principal, &keys, true)
        .await
        .map_err(|e| ctx.err(e))?;
    Ok(Map::new())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct AssociateReq {
    instance_ids: Option<Vec<String>>,
    key_ids: Option<Vec<String>>,
    force_stop: Option<Bool>,
}

/// AssociateInstancesKeyPairs (`associate`) and DisassociateInstancesKeyPairs share
/// [`AssociateReq`].
pub(super) async fn associate(engine: &Engine, ctx: &Ctx, r: AssociateReq, associate: bool) -> Out {
    let targets = instances(engine, ctx, r.instance_ids, "InstanceIds")?;
    let keys = key_ids(ctx, r.key_ids)?;
    let when_running = when_running(r.force_stop);
    let cmd = if associate {
        Command::AssociateKeys {
            key_ids: keys,
            when_running,
        }
    } else {
        Command::DisassociateKeys {
            key_ids: keys,
            when_running,
        }
    };
    submit(engine, ctx, &targets, cmd).await
}
