//! TagResources, UntagResources, ListTagResources on instances (ResourceType `instance`): the
//! instance's tags, the same records Tencent shows as tags and Nova as metadata and server
//! tags (docs/tags.md). Each instance's change is one committed record change before the
//! answer ([`Engine::update_tags`]).
use super::*;

/// The resource types ECS tags; nubis has instances only, so IDs of the others are unknown.
const RESOURCE_TYPES: &[&str] = &[
    "instance",
    "disk",
    "snapshot",
    "image",
    "securitygroup",
    "volume",
    "eni",
    "ddh",
    "ddhcluster",
    "keypair",
    "launchtemplate",
    "reservedinstance",
    "snapshotpolicy",
    "elasticityassurance",
    "capacityreservation",
    "command",
    "invocation",
    "activation",
    "managedinstance",
];

/// How ListTagResources names an instance's type.
const INSTANCE_TYPE: &str = "ALIYUN::ECS::INSTANCE";

/// Tags an instance may carry (ECS's tag limit per resource).
pub(crate) const TAGS_PER_INSTANCE: usize = 20;

/// Items per ListTagResources page (ECS returns 50).
const PAGE: usize = 50;

/// ResourceType: required, one of ECS's types.
fn resource_type(p: &Params) -> Result<String, ApiError> {
    let t = p.opt("ResourceType").ok_or_else(|| {
        ApiError::new(
            400,
            "MissingParameter.ResourceType",
            "The input parameter \"ResourceType\" that is mandatory for processing this request is not supplied.",
        )
    })?;
    if !RESOURCE_TYPES.contains(&t.as_str()) {
        return Err(ApiError::new(
            404,
            "InvalidResourceType.NotFound",
            "The ResourceType provided does not exist in our records.",
        ));
    }
    Ok(t)
}

fn resource_not_found() -> ApiError {
    ApiError::new(
        404,
        "InvalidResourceId.NotFound",
        "The specified ResourceIds are not found in our records.",
    )
}

/// ResourceId.N: 1 to 50 (`required`), each an instance of this account and region (only
/// instances carry tags here), duplicates dropped.
fn resources(
    engine: &Engine,
    ctx: &Ctx,
    p: &Params,
    kind: &str,
    required: bool,
) -> Result<Vec<(String, Uuid)>, ApiError> {
    let ids = p.list("ResourceId");
    if ids.is_empty() && required {
        return Err(ApiError::new(
            400,
            "MissingParameter.ResourceIds",
            "The input parameter \"ResourceId\" that is mandatory for processing this request is not supplied.",
        ));
    }
    params::check_count(
        &params::TAG_RESOURCE_IDS,
        ids.len().max(p.max_index("ResourceId")),
    )?;
    let mut out: Vec<(String, Uuid)> = Vec::with_capacity(ids.len());
    for id in ids {
        if out.iter().any(|(o, _)| *o == id) {
            continue;
        }
        if kind != "instance" {
            return Err(resource_not_found());
        }
        let uuid = match engine.resolve(&ctx.principal, IdKind::Aliyun, std::slice::from_ref(&id)) {
            Ok(u) => u.first().copied().ok_or_else(resource_not_found)?,
            Err(DomainError::NotFound { .. }) => return Err(resource_not_found()),
            Err(e) => return Err(domain(engine, ctx, e)),
        };
        if engine
            .instance(uuid)
            .is_none_or(|i| Some(&i.region) != ctx.region.as_ref())
        {
            return Err(resource_not_found());
        }
        out.push((id, uuid));
    }
    Ok(out)
}

/// Tag.N.Key/Tag.N.Value to set: 1 to 20, keys non-empty and unique, each within its limits.
fn tags_to_set(p: &Params) -> Result<Vec<(String, String)>, ApiError> {
    let groups = p.groups("Tag");
    if groups.is_empty() {
        return Err(ApiError::new(
            400,
            "MissingParameter.Tags",
            "The input parameter \"Tag\" that is mandatory for processing this request is not supplied.",
        ));
    }
    params::check_count(&params::TAGS, groups.len().max(p.max_index("Tag")))?;
    let mut out: Vec<(String, String)> = Vec::with_capacity(groups.len());
    for g in groups {
        let Some(key) = g.get("Key").filter(|k| !k.is_empty()) else {
            return Err(ApiError::new(
                400,
                "MissingParameter.TagKey",
                "The input parameter \"Tag.n.Key\" that is mandatory for processing this request is not supplied.",
            ));
        };
        params::check_text(&params::TAG_KEY, "Tag.N.Key", Some(key))?;
        let value = g.get("Value").cloned().unwrap_or_default();
        params::check_text(&params::TAG_VALUE, "Tag.N.Value", Some(&value))?;
        if out.iter().any(|(k, _)| k == key) {
            return Err(ApiError::new(
                400,
                "Duplicate.TagKey",
                "The Tag.N.Key contain duplicate key.",
            ));
        }
        out.push((key.clone(), value));
    }
    Ok(out)
}

/// `current` with `given` set: a key already there takes the new value, new keys are
/// appended in the order given.
pub(crate) fn merge(
    current: &[(String, String)],
    given: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = current.to_vec();
    for (k, v) in given {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

fn too_many_tags(id: &str) -> ApiError {
    ApiError::new(
        400,
        "InvalidTagCount",
        format!(
            "The specified tags are beyond the permitted range: resource {id} would carry more than {TAGS_PER_INSTANCE} tags."
        ),
    )
}

/// Write each instance's new tags (`f` of its current ones), one commit per instance. Every
/// instance is checked against the limit first, so a request over it changes nothing.
async fn write_each(
    engine: &Engine,
    ctx: &Ctx,
    targets: &[(String, Uuid)],
    f: impl Fn(&[(String, String)]) -> Vec<(String, String)>,
) -> Result<(), ApiError> {
    for (id, uuid) in targets {
        if let Some(i) = engine.instance(*uuid)
            && f(&i.tags).len() > TAGS_PER_INSTANCE
        {
            return Err(too_many_tags(id));
        }
    }
    for (id, uuid) in targets {
        engine
            .update_tags(&ctx.principal, *uuid, |i: &Instance| {
                let tags = f(&i.tags);
                if tags.len() > TAGS_PER_INSTANCE {
                    return Err(Refusal::Api(too_many_tags(id)));
                }
                Ok(tags)
            })
            .await
            .map_err(|e| match e {
                Refusal::Api(e) => e,
                Refusal::Domain(DomainError::NotFound { .. }) => resource_not_found(),
                Refusal::Domain(e) => domain(engine, ctx, e),
            })?;
    }
    Ok(())
}

/// Why a tag write was refused.
enum Refusal {
    Api(ApiError),
    Domain(DomainError),
}

impl From<DomainError> for Refusal {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

pub(super) async fn tag_resources(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let kind = resource_type(p)?;
    let tags = tags_to_set(p)?;
    let targets = resources(engine, ctx, p, &kind, true)?;
    write_each(engine, ctx, &targets, |cur| merge(cur, &tags)).await?;
    Ok(Map::new())
}

pub(super) async fn untag_resources(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let kind = resource_type(p)?;
    let keys = p.list("TagKey");
    params::check_count(&params::TAG_KEYS, keys.len().max(p.max_index("TagKey")))?;
    for k in &keys {
        params::check_text(&params::TAG_KEY, "TagKey.N", Some(k))?;
    }
    // All takes effect only without TagKey.N; with neither, nothing is removed.
    let all = p.bool("All")? && keys.is_empty();
    let targets = resources(engine, ctx, p, &kind, true)?;
    if keys.is_empty() && !all {
        return Ok(Map::new());
    }
    write_each(engine, ctx, &targets, |cur| {
        if all {
            Vec::new()
        } else {
            cur.iter()
                .filter(|(k, _)| !keys.contains(k))
                .cloned()
                .collect()
        }
    })
    .await?;
    Ok(Map::new())
}

/// The Tag.N filters of ListTagResources: a key, and a value to match if given.
fn tag_filters(p: &Params) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let groups = p.groups("Tag");
    params::check_count(&params::TAGS, groups.len().max(p.max_index("Tag")))?;
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let Some(key) = g.get("Key").filter(|k| !k.is_empty()) else {
            return Err(ApiError::new(
                400,
                "InvalidParameter.TagValue",
                "The specified Tag.n.Value is given without its Tag.n.Key.",
            ));
        };
        params::check_text(&params::TAG_KEY, "Tag.N.Key", Some(key))?;
        let value = g.get("Value").cloned();
        if let Some(v) = &value {
            params::check_text(&params::TAG_VALUE, "Tag.N.Value", Some(v))?;
        }
        out.push((key.clone(), value));
    }
    Ok(out)
}

/// NextToken: where the previous page stopped (the token nubis handed out).
fn next_token(p: &Params) -> Result<usize, ApiError> {
    match p.opt("NextToken") {
        None => Ok(0),
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("NextToken", t)),
    }
}

pub(super) fn list_tag_resources(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let kind = resource_type(p)?;
    if p.max_index("TagFilter") > 0 {
        // In invitational preview at ECS: not offered.
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            "The specified parameter \"TagFilter\" is not available for use.",
        ));
    }
    let filters = tag_filters(p)?;
    let from = next_token(p)?;
    let targets = resources(engine, ctx, p, &kind, false)?;
    let region = ctx.region.clone();
    let matches = |i: &Instance| {
        filters.iter().all(|(k, v)| {
            i.shown_tags()
                .any(|(tk, tv)| tk == k && v.as_ref().is_none_or(|v| v == tv))
        })
    };
    let insts: Vec<Instance> = if targets.is_empty() {
        engine
            .query(
                &ctx.principal,
                |i| Some(&i.region) == region.as_ref() && matches(i),
                0,
                usize::MAX,
            )
            .1
    } else {
        let uuids: Vec<Uuid> = targets.iter().map(|(_, u)| *u).collect();
        engine
            .instances_by_id(&ctx.principal, &uuids)
            .into_iter()
            .filter(|i| matches(i))
            .collect()
    };
    // With Tag.N filters, the matching tags of each instance; without, all its tags.
    let items: Vec<Value> = if kind == "instance" {
        insts
            .iter()
            .flat_map(|i| {
                i.shown_tags()
                    .filter(|(k, _)| filters.is_empty() || filters.iter().any(|(fk, _)| fk == k))
                    .map(|(k, v)| {
                        json!({"ResourceId": i.aliyun_id, "ResourceType": INSTANCE_TYPE, "TagKey": k, "TagValue": v})
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    } else {
        Vec::new()
    };
    let page: Vec<Value> = items.iter().skip(from).take(PAGE).cloned().collect();
    let next = if from.saturating_add(PAGE) < items.len() {
        (from + PAGE).to_string()
    } else {
        String::new()
    };
    Ok(obj(
        json!({"NextToken": next, "TagResources": {"TagResource": page}}),
    ))
}
