//! Parsing helpers every action shares: strict deserialization, required values, IDs and
//! batches, filters, paging, stop modes.

use super::limits::{BATCH, FILTER_VALUES, FILTERS, LIMIT, OFFSET, check_count, check_int};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::{Bool, Int};
use nubis_core::{DomainError, ResourceKind, StopMode, WhenRunning, ids};
use nubis_engine::{Command, Engine, IdKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

/// Strict parsing: unknown names → UnknownParameter, absent required → MissingParameter,
/// wrong types → InvalidParameter.
pub(crate) fn parse<T: DeserializeOwned>(params: Map<String, Value>) -> Result<T, ApiError> {
    serde_json::from_value(Value::Object(params)).map_err(|e| {
        let m = e.to_string();
        let quoted = m.split('`').nth(1).unwrap_or("").to_string();
        if m.starts_with("unknown field") {
            ApiError::new(
                "UnknownParameter",
                format!("The parameter `{quoted}` is not recognized"),
            )
        } else if m.starts_with("missing field") {
            ApiError::new(
                "MissingParameter",
                format!("The parameter `{quoted}` is required"),
            )
        } else {
            ApiError::new("InvalidParameter", format!("Invalid parameter: {m}"))
        }
    })
}

pub(super) fn required<T>(v: Option<T>, name: &str) -> Result<T, ApiError> {
    v.ok_or_else(|| {
        ApiError::new(
            "MissingParameter",
            format!("The parameter `{name}` is required"),
        )
    })
}

pub(super) fn bad_value(name: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        "InvalidParameterValue",
        format!("The value of `{name}` is invalid: {why}"),
    )
}

pub(super) fn stop_mode(
    stop_type: Option<&str>,
    force: Option<Bool>,
) -> Result<StopMode, ApiError> {
    match (stop_type, force) {
        (Some(_), Some(_)) => Err(ApiError::new(
            "InvalidParameter",
            "`StopType` and `ForceStop` cannot be specified together",
        )),
        (Some("SOFT"), None) => Ok(StopMode::Soft),
        (Some("HARD"), None) => Ok(StopMode::Hard),
        (Some("SOFT_FIRST"), None) => Ok(StopMode::SoftFirst),
        (Some(other), None) => Err(bad_value(
            "StopType",
            format!("`{other}` is not one of SOFT, HARD, SOFT_FIRST"),
        )),
        // The deprecated boolean: true = try soft, then force.
        (None, Some(Bool(true))) => Ok(StopMode::SoftFirst),
        (None, Some(Bool(false))) | (None, None) => Ok(StopMode::Soft),
    }
}

/// Tencent's ForceStop: stop, change, start again; without it only stopped instances.
pub(super) fn when_running(force_stop: Option<Bool>) -> WhenRunning {
    if force_stop.is_some_and(|f| f.0) {
        WhenRunning::StopAndStart
    } else {
        WhenRunning::Refuse
    }
}

/// A Describe action takes IDs or Filters, never both (`ids_name`: the IDs parameter;
/// `code`: the action's code for the conflict).
pub(super) fn ids_or_filters(
    ids: &Option<Vec<String>>,
    ids_name: &str,
    filters: &Option<Vec<Filter>>,
    code: &'static str,
) -> Result<(), ApiError> {
    if ids.is_some() && filters.is_some() {
        return Err(ApiError::new(
            code,
            format!("`{ids_name}` and `Filters` cannot be specified together"),
        ));
    }
    Ok(())
}

pub(super) fn offset_limit(
    offset: Option<Int>,
    limit: Option<Int>,
) -> Result<(usize, usize), ApiError> {
    let offset = offset.map(|o| o.0).unwrap_or(0);
    let limit = limit.map(|l| l.0).unwrap_or(20);
    check_int(&OFFSET, "Offset", offset)?;
    check_int(&LIMIT, "Limit", limit)?;
    // Both non-negative by their rows.
    Ok((
        usize::try_from(offset).unwrap_or(usize::MAX),
        usize::try_from(limit).unwrap_or(1),
    ))
}

/// Check shape, batch size and existence (in this account, and in the region when the request
/// names one) of instance IDs.
pub(super) fn instances(
    engine: &Engine,
    ctx: &Ctx,
    ids_in: Option<Vec<String>>,
    name: &str,
) -> Result<Vec<Uuid>, ApiError> {
    let unique = id_batch(
        ctx,
        non_empty(ids_in, name)?,
        name,
        ResourceKind::Instance,
        ids::is_tencent_instance_id,
    )?;
    let uuids = engine
        .resolve(&ctx.principal, IdKind::Tencent, &unique)
        .map_err(|e| ctx.err(e))?;
    for (uuid, id) in uuids.iter().zip(&unique) {
        if engine
            .instance(*uuid)
            .is_none_or(|i| ctx.region.as_ref().is_some_and(|r| *r != i.region))
        {
            return Err(ctx.err(DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: id.clone(),
            }));
        }
    }
    Ok(uuids)
}

pub(super) fn key_ids(ctx: &Ctx, list: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    id_batch(
        ctx,
        non_empty(list, "KeyIds")?,
        "KeyIds",
        ResourceKind::KeyPair,
        ids::is_key_id,
    )
}

/// A required list parameter that must hold at least one value.
pub(super) fn non_empty(list: Option<Vec<String>>, name: &str) -> Result<Vec<String>, ApiError> {
    let list = required(list, name)?;
    if list.is_empty() {
        return Err(ApiError::new(
            "MissingParameter",
            format!("The parameter `{name}` must not be empty"),
        ));
    }
    Ok(list)
}

/// A batch of IDs: at most `limits::batch::INSTANCES`, each of the right shape; duplicates
/// dropped, order kept.
pub(super) fn id_batch(
    ctx: &Ctx,
    list: Vec<String>,
    name: &str,
    kind: ResourceKind,
    valid: fn(&str) -> bool,
) -> Result<Vec<String>, ApiError> {
    check_count(&BATCH, name, list.len())?;
    if let Some(bad) = list.iter().find(|i| !valid(i)) {
        return Err(ctx.err(DomainError::Malformed {
            kind,
            id: bad.clone(),
        }));
    }
    let mut unique: Vec<String> = Vec::with_capacity(list.len());
    for i in list {
        if !unique.contains(&i) {
            unique.push(i);
        }
    }
    Ok(unique)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Filter {
    pub(super) name: String,
    pub(super) values: Vec<String>,
}

pub(super) fn check_filters(filters: &[Filter]) -> Result<(), ApiError> {
    check_count(&FILTERS, "Filters", filters.len())?;
    for f in filters {
        check_count(&FILTER_VALUES, "Filters.N.Values", f.values.len())?;
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct Tag {
    pub(super) key: String,
    pub(super) value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct TagSpecification {
    pub(super) resource_type: String,
    pub(super) tags: Vec<Tag>,
}

/// Runs one command on every target for the actions whose answer is an empty body.
pub(super) async fn submit(
    engine: &Engine,
    ctx: &Ctx,
    targets: &[Uuid],
    cmd: Command,
) -> Result<Map<String, Value>, ApiError> {
    engine
        .submit(&ctx.principal, &ctx.request_id, targets, cmd, false)
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(Map::new())
}
