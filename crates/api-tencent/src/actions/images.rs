//! Images of the registry (docs/images.md): CreateImage from an instance's system disk, and
//! DescribeImages listing the public images with the account's own.

use super::limits::{TAG_KEY, TAG_VALUE, TAGS, check_count, check_text};
use super::params::{
    Filter, TagSpecification, bad_value, check_filters, ids_or_filters, instances, offset_limit,
    required,
};
use super::{Out, obj};
use crate::Ctx;
use crate::errors::ApiError;
use crate::wire::{Bool, Int};
use nubis_core::images::{Image, ImageStatus, Visibility};
use nubis_core::limits::Constraint;
use nubis_core::{DomainError, ids};
use nubis_engine::{Engine, NewImage};
use serde::Deserialize;
use serde_json::{Value, json};

/// ImageName: 1–60 characters ("最多支持60个字符").
pub(super) const IMAGE_NAME: Constraint =
    Constraint::text("ImageName", 1, 60, None, "InvalidParameterValue")
        .with_code_high("InvalidParameterValue.TooLong");
/// ImageDescription: at most 256 characters.
pub(super) const IMAGE_DESCRIPTION: Constraint =
    Constraint::text("ImageDescription", 0, 256, None, "InvalidParameterValue")
        .with_code_high("InvalidParameterValue.TooLong");
/// Image properties the Tencent fields are kept in.
const FAMILY: &str = "image_family";
const SYSPREP: &str = "sysprep";
const TAG_PREFIX: &str = "tag:";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct CreateImageReq {
    image_name: Option<String>,
    instance_id: Option<String>,
    image_description: Option<String>,
    force_poweroff: Option<String>,
    sysprep: Option<String>,
    data_disk_ids: Option<Vec<String>>,
    snapshot_ids: Option<Vec<String>>,
    dry_run: Option<Bool>,
    tag_specification: Option<Vec<TagSpecification>>,
    image_family: Option<String>,
}

/// `true` / `false` as Tencent's string switches take them (any case).
fn switch(name: &str, v: Option<&str>) -> Result<bool, ApiError> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_value(name, "must be `true` or `false`")),
    }
}

pub(super) async fn create_image(engine: &Engine, ctx: &Ctx, r: CreateImageReq) -> Out {
    let name = required(r.image_name, "ImageName")?;
    check_text(&IMAGE_NAME, "ImageName", Some(&name))?;
    check_text(
        &IMAGE_DESCRIPTION,
        "ImageDescription",
        r.image_description.as_deref(),
    )?;
    let stop_first = switch("ForcePoweroff", r.force_poweroff.as_deref())?;
    let sysprep = switch("Sysprep", r.sysprep.as_deref())?;
    if r.instance_id.is_some() && r.snapshot_ids.is_some() {
        return Err(ApiError::new(
            "InvalidParameter",
            "`InstanceId` and `SnapshotIds` cannot be specified together",
        ));
    }
    // nubis keeps no CBS snapshots: every snapshot ID is unknown.
    if let Some(snap) = r.snapshot_ids.as_ref().and_then(|s| s.first()) {
        return Err(ApiError::new(
            "InvalidSnapshotId.NotFound",
            format!("snapshot `{snap}` does not exist"),
        ));
    }
    let id = required(r.instance_id, "InstanceId")?;
    let mut props = std::collections::BTreeMap::new();
    if let Some(family) = r.image_family {
        check_text(&IMAGE_NAME, "ImageFamily", Some(&family))?;
        props.insert(FAMILY.to_string(), family);
    }
    if sysprep {
        props.insert(SYSPREP.to_string(), "true".to_string());
    }
    for spec in r.tag_specification.unwrap_or_default() {
        if spec.resource_type != "image" {
            return Err(bad_value(
                "TagSpecification.ResourceType",
                format!("`{}` is not `image`", spec.resource_type),
            ));
        }
        check_count(&TAGS, "TagSpecification.N.Tags", spec.tags.len())?;
        for t in spec.tags {
            check_text(&TAG_KEY, "Tags.Key", Some(&t.key))?;
            check_text(&TAG_VALUE, "Tags.Value", Some(&t.value))?;
            props.insert(format!("{TAG_PREFIX}{}", t.key), t.value);
        }
    }
    let targets = instances(engine, ctx, Some(vec![id.clone()]), "InstanceId")?;
    let inst = targets
        .first()
        .and_then(|u| engine.instance(*u))
        .ok_or_else(|| {
            ctx.err(DomainError::NotFound {
                kind: nubis_core::ResourceKind::Instance,
                id: id.clone(),
            })
        })?;
    // An image holds the system disk only: a whole-machine image (data disks) is refused
    // after each named disk is checked to be the instance's.
    if let Some(disks) = r.data_disk_ids.filter(|d| !d.is_empty()) {
        if let Some(bad) = disks
            .iter()
            .find(|d| !inst.data_disks.iter().any(|x| x.id == **d))
        {
            return Err(bad_value(
                "DataDiskIds",
                format!("`{bad}` is not a data disk of instance `{id}`"),
            ));
        }
        return Err(ApiError::new(
            "UnsupportedOperation",
            "images of data disks are not supported: an image holds the system disk",
        ));
    }
    let new = NewImage {
        description: r.image_description.unwrap_or_default(),
        properties: props,
        unique_name: true,
        ..NewImage::named(name)
    };
    let dry = r.dry_run.is_some_and(|d| d.0);
    let image = engine
        .create_image_from_instance(
            &ctx.principal,
            &ctx.request_id,
            inst.uuid,
            new,
            stop_first,
            dry,
        )
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(obj(json!({"ImageId": image.id})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
#[allow(dead_code)] // InstanceType is accepted for compatibility only: every image fits every type
pub(super) struct DescribeImagesReq {
    image_ids: Option<Vec<String>>,
    filters: Option<Vec<Filter>>,
    offset: Option<Int>,
    limit: Option<Int>,
    instance_type: Option<String>,
}

/// Tencent's image type of a registry image.
fn image_type(i: &Image) -> &'static str {
    match (i.is_builtin(), i.visibility) {
        (true, _) | (false, Visibility::Public | Visibility::Community) => "PUBLIC_IMAGE",
        (false, Visibility::Private) => "PRIVATE_IMAGE",
        (false, Visibility::Shared) => "SHARED_IMAGE",
    }
}

/// Tencent's ImageState: CREATING while it is made, NORMAL (USING when instances run it),
/// CREATEFAILED when making it failed.
fn image_state(i: &Image, in_use: bool) -> &'static str {
    match i.status {
        ImageStatus::Queued | ImageStatus::Saving | ImageStatus::Uploading => "CREATING",
        ImageStatus::Killed => "CREATEFAILED",
        ImageStatus::Active | ImageStatus::Deactivated if in_use && !i.is_builtin() => "USING",
        ImageStatus::Active | ImageStatus::Deactivated => "NORMAL",
        ImageStatus::Deleted => "DELETING",
    }
}

/// One ImageSet element.
pub(crate) fn render_image(i: &Image, in_use: bool) -> Value {
    let tags: Vec<Value> = i
        .properties
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(TAG_PREFIX)
                .map(|k| json!({"Key": k, "Value": v}))
        })
        .collect();
    let source = if i.is_builtin() {
        "OFFICIAL"
    } else if i.source_instance.is_some() {
        "CREATE_IMAGE"
    } else {
        "EXTERNAL_IMPORT"
    };
    json!({
        "ImageId": i.id,
        "OsName": i.os_name,
        "ImageType": image_type(i),
        "CreatedTime": if i.is_builtin() {
            "2024-01-01T00:00:00Z".to_string()
        } else {
            nubis_pipeline::shapes::iso_seconds(i.created_ms)
        },
        "ImageName": i.name,
        "ImageDescription": if i.is_builtin() { i.name.clone() } else { i.description.clone() },
        "ImageSize": i.size_gib,
        "Architecture": "x86_64",
        "ImageState": image_state(i, in_use),
        "Platform": i.platform,
        "ImageCreator": i.account.clone().unwrap_or_default(),
        "ImageSource": source,
        "SyncPercent": if i.status == ImageStatus::Active { 100 } else { 0 },
        "IsSupportCloudinit": i.os == nubis_core::OsFamily::Linux,
        // nubis keeps no CBS snapshots: an image's bytes are its own.
        "SnapshotSet": [],
        "Tags": tags,
        "LicenseType": "TencentCloud",
        "ImageFamily": i.properties.get(FAMILY).cloned().unwrap_or_default(),
        "ImageDeprecated": false,
    })
}

const FILTER_NAMES: [&str; 7] = [
    "image-id",
    "image-type",
    "image-name",
    "platform",
    "image-family",
    "image-state",
    "tag-key",
];

pub(super) async fn describe_images(engine: &Engine, ctx: &Ctx, r: DescribeImagesReq) -> Out {
    ids_or_filters(
        &r.image_ids,
        "ImageIds",
        &r.filters,
        "InvalidParameter.InvalidParameterCoexistImageIdsFilters",
    )?;
    let (offset, limit) = offset_limit(r.offset, r.limit)?;
    let filters = r.filters.unwrap_or_default();
    check_filters(&filters)?;
    if let Some(ids) = &r.image_ids
        && let Some(bad) = ids.iter().find(|i| !ids::is_image_id(i))
    {
        return Err(ApiError::new(
            "InvalidImageId.Malformed",
            format!("malformed image ID `{bad}`"),
        ));
    }
    for f in &filters {
        let tag = f.name.starts_with("tag:");
        if !tag && !FILTER_NAMES.contains(&f.name.as_str()) {
            return Err(ApiError::new(
                "InvalidFilter",
                format!("unknown filter `{}`", f.name),
            ));
        }
    }
    let p = &ctx.principal;
    let listed: Vec<(Image, bool)> = engine
        .images(p)
        .into_iter()
        .filter(|i| i.listed_to(p) && i.status != ImageStatus::Deleted)
        .map(|i| {
            let used = !i.is_builtin() && engine.image_in_use(&i.id) > 0;
            (i, used)
        })
        .collect();
    let matching: Vec<&(Image, bool)> = listed
        .iter()
        .filter(|(m, _)| r.image_ids.as_ref().is_none_or(|ids| ids.contains(&m.id)))
        .filter(|(m, used)| {
            filters.iter().all(|f| {
                f.values.iter().any(|v| match f.name.as_str() {
                    "image-id" => *v == m.id,
                    "image-type" => v == image_type(m),
                    "image-name" => m.name.contains(v.as_str()),
                    "platform" => *v == m.platform,
                    "image-family" => m.properties.get(FAMILY) == Some(v),
                    "image-state" => v == image_state(m, *used),
                    "tag-key" => m.properties.contains_key(&format!("{TAG_PREFIX}{v}")),
                    name => name
                        .strip_prefix("tag:")
                        .is_some_and(|k| m.properties.get(&format!("{TAG_PREFIX}{k}")) == Some(v)),
                })
            })
        })
        .collect();
    let set: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(m, used)| render_image(m, *used))
        .collect();
    Ok(obj(json!({"TotalCount": matching.len(), "ImageSet": set})))
}

/// DeleteImages: at most 10 a request ("单次请求最多10个").
pub(super) const DELETE_IMAGE_IDS: Constraint =
    Constraint::count("ImageIds", 10, "InvalidParameterValue.LimitExceeded");

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct DeleteImagesReq {
    image_ids: Option<Vec<String>>,
    /// nubis keeps no snapshots bound to an image: accepted, nothing more to delete.
    delete_binded_snap: Option<Bool>,
    dry_run: Option<Bool>,
}

/// The images `ids` names, each the caller's own (a built-in or another account's image is
/// not its to change), checked before anything is changed.
fn own_images(engine: &Engine, ctx: &Ctx, ids_in: &[String]) -> Result<Vec<Image>, ApiError> {
    let mut out = Vec::with_capacity(ids_in.len());
    for id in ids_in {
        if !ids::is_image_id(id) {
            return Err(ApiError::new(
                "InvalidImageId.Malformed",
                format!("malformed image ID `{id}`"),
            ));
        }
        let img = engine
            .image(&ctx.principal, id)
            .map_err(|e| ctx.domain(engine, e))?;
        if img.is_builtin() || !img.owned_by(&ctx.principal) {
            return Err(ctx.domain(engine, DomainError::ImageNotOwned(img.id)));
        }
        out.push(img);
    }
    Ok(out)
}

pub(super) async fn delete_images(engine: &Engine, ctx: &Ctx, r: DeleteImagesReq) -> Out {
    let ids_in = required(r.image_ids, "ImageIds")?;
    if ids_in.is_empty() {
        return Err(ApiError::new("MissingParameter", "`ImageIds` is empty"));
    }
    check_count(&DELETE_IMAGE_IDS, "ImageIds", ids_in.len())?;
    let _ = r.delete_binded_snap;
    let images = own_images(engine, ctx, &ids_in)?;
    // An image instances run, or one still being made, cannot be deleted.
    for img in &images {
        if engine.image_in_use(&img.id) > 0 {
            return Err(ctx.domain(engine, DomainError::ImageInUse(img.id.clone())));
        }
        if matches!(img.status, ImageStatus::Saving | ImageStatus::Uploading) {
            return Err(ctx.domain(
                engine,
                DomainError::ImageState {
                    id: img.id.clone(),
                    status: img.status,
                },
            ));
        }
    }
    if r.dry_run.is_some_and(|d| d.0) {
        return Err(ctx.domain(engine, DomainError::DryRunOk));
    }
    for img in images {
        engine
            .delete_image(&ctx.principal, &img.id, true)
            .await
            .map_err(|e| ctx.domain(engine, e))?;
    }
    Ok(obj(json!({})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub(super) struct ModifyImageAttributeReq {
    image_id: Option<String>,
    image_name: Option<String>,
    image_description: Option<String>,
}

pub(super) async fn modify_image_attribute(
    engine: &Engine,
    ctx: &Ctx,
    r: ModifyImageAttributeReq,
) -> Out {
    let id = required(r.image_id, "ImageId")?;
    check_text(&IMAGE_NAME, "ImageName", r.image_name.as_deref())?;
    check_text(
        &IMAGE_DESCRIPTION,
        "ImageDescription",
        r.image_description.as_deref(),
    )?;
    let img = own_images(engine, ctx, std::slice::from_ref(&id))?
        .pop()
        .ok_or_else(|| bad_value("ImageId", &id))?;
    if let Some(name) = &r.image_name
        && engine.images(&ctx.principal).iter().any(|i| {
            i.id != img.id && !i.is_builtin() && i.account == img.account && i.name == *name
        })
    {
        return Err(ctx.domain(engine, DomainError::ImageNameInUse(name.clone())));
    }
    engine
        .update_image(&ctx.principal, &img.id, |i| {
            if let Some(n) = r.image_name {
                i.name = n;
            }
            if let Some(d) = r.image_description {
                i.description = d;
            }
            Ok(())
        })
        .await
        .map_err(|e| ctx.domain(engine, e))?;
    Ok(obj(json!({})))
}
