//! Images of the registry (docs/images.md): CreateImage from an instance's system disk, and
//! DescribeImages listing the system images with the account's own (ImageOwnerAlias).
use super::*;
use nubis_core::images::{Image, ImageStatus};
use nubis_engine::NewImage;

/// CreateImage ImageName: 2–128, starts with a letter, letters/digits/`.`/`_`/`:`/`-`.
pub const IMAGE_NAME: Constraint = Constraint::text(
    "ImageName",
    2,
    128,
    Some(limits::aliyun_name),
    "InvalidImageName.Malformed",
)
.with_status(400);
/// ImageFamily: 2–128, the name's shape.
pub const IMAGE_FAMILY: Constraint = Constraint::text(
    "ImageFamily",
    2,
    128,
    Some(limits::aliyun_name),
    "InvalidImageFamily.Malformed",
)
.with_status(400);
/// Image properties the Alibaba fields are kept in.
const FAMILY: &str = "image_family";
const TAG_PREFIX: &str = "tag:";
const PLATFORMS: &[&str] = &[
    "CentOS",
    "Ubuntu",
    "SUSE",
    "OpenSUSE",
    "RedHat",
    "Debian",
    "CoreOS",
    "Aliyun",
    "Windows Server 2012",
    "Windows 7",
    "Customized Linux",
    "Others Linux",
];
const ARCHITECTURES: &[&str] = &["i386", "x86_64", "arm64"];

pub(super) async fn create_image(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let dry = p.bool("DryRun")?;
    // nubis keeps no disk snapshots: an image is made from an instance.
    let snapshot = p.opt("SnapshotId").or_else(|| {
        p.groups("DiskDeviceMapping")
            .into_iter()
            .find_map(|m| m.get("SnapshotId").cloned())
    });
    if let Some(s) = snapshot {
        return Err(ApiError::new(
            404,
            "InvalidSnapshotId.NotFound",
            format!("The specified SnapshotId {s} does not exist."),
        ));
    }
    let name = p.text(&IMAGE_NAME)?;
    let description = p.opt("Description");
    params::check_text(&params::DESCRIPTION, "Description", description.as_deref())?;
    let token = p.opt("ClientToken");
    params::check_text(&params::CLIENT_TOKEN, "ClientToken", token.as_deref())?;
    let family = p.text(&IMAGE_FAMILY)?;
    // Platform and Architecture describe a snapshot's system; checked, then the instance's
    // own facts win (ECS: "takes effect only when you create an image from a snapshot").
    if let Some(pl) = p.opt("Platform")
        && !PLATFORMS.contains(&pl.as_str())
    {
        return Err(ApiError::invalid("Platform", pl));
    }
    if let Some(a) = p.opt("Architecture")
        && !ARCHITECTURES.contains(&a.as_str())
    {
        return Err(ApiError::invalid("Architecture", a));
    }
    let tags = p.groups("Tag");
    params::check_count(&params::TAGS, p.max_index("Tag"))?;
    let mut props = std::collections::BTreeMap::new();
    for t in &tags {
        let key = t.get("Key").cloned().unwrap_or_default();
        params::check_text(&params::TAG_KEY, "Tag.N.Key", Some(&key))?;
        let value = t.get("Value").cloned().unwrap_or_default();
        if !value.is_empty() {
            params::check_text(&params::TAG_VALUE, "Tag.N.Value", Some(&value))?;
        }
        props.insert(format!("{TAG_PREFIX}{key}"), value);
    }
    if let Some(f) = family {
        props.insert(FAMILY.to_string(), f);
    }
    let uuid = one_instance(engine, ctx, p)?;
    let new = NewImage {
        description: description.unwrap_or_default(),
        properties: props,
        unique_name: name.is_some(),
        client_token: token,
        ..NewImage::named(name.unwrap_or_default())
    };
    let image = engine
        .create_image_from_instance(&ctx.principal, &ctx.request_id, uuid, new, false, dry)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    // No ImageName: ECS names the image itself; nubis by its ID.
    let image = if image.name.is_empty() {
        let id = image.id.clone();
        engine
            .update_image(&ctx.principal, &id, |i| {
                i.name.clone_from(&i.id);
                Ok(())
            })
            .await
            .unwrap_or(image)
    } else {
        image
    };
    Ok(obj(json!({ "ImageId": image.id })))
}

/// ECS's image status.
fn status(i: &Image) -> &'static str {
    match i.status {
        ImageStatus::Queued | ImageStatus::Saving | ImageStatus::Uploading => "Creating",
        ImageStatus::Active => "Available",
        ImageStatus::Killed => "CreateFailed",
        ImageStatus::Deactivated => "Deprecated",
        ImageStatus::Deleted => "UnAvailable",
    }
}

fn owner_alias(i: &Image) -> &'static str {
    if i.is_builtin() { "system" } else { "self" }
}

fn render_image(i: &Image, in_use: bool) -> Value {
    let tags: Vec<Value> = i
        .properties
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix(TAG_PREFIX)
                .map(|k| json!({"TagKey": k, "TagValue": v}))
        })
        .collect();
    let created = if i.is_builtin() {
        "2024-01-01T00:00:00Z".to_string()
    } else {
        nubis_pipeline::shapes::iso_minutes(i.created_ms)
    };
    json!({
        "ImageId": i.id, "ImageName": i.name, "ImageOwnerAlias": owner_alias(i),
        "OSName": i.os_name, "OSNameEn": i.os_name,
        "OSType": if i.os == nubis_core::OsFamily::Windows { "windows" } else { "linux" },
        "Platform": i.platform, "Architecture": "x86_64", "Size": i.size_gib,
        "Status": status(i),
        "Progress": if i.status == ImageStatus::Active { "100%" } else { "0%" },
        "CreationTime": created,
        "Description": if i.is_builtin() { i.name.clone() } else { i.description.clone() },
        "IsPublic": i.is_builtin(),
        "IsSelfShared": "",
        "Usage": if in_use { "instance" } else { "none" },
        "ImageFamily": i.properties.get(FAMILY).cloned().unwrap_or_default(),
        "BootMode": "BIOS", "IsSupportCloudinit": true, "IsSupportIoOptimized": true,
        "DiskDeviceMappings": {"DiskDeviceMapping": [{
            "Type": "system", "Size": i.size_gib.to_string(), "Device": "/dev/xvda",
            "Format": i.disk_format.clone().unwrap_or_default(), "SnapshotId": "",
        }]},
        "Tags": {"Tag": tags},
    })
}

const STATUSES: &[&str] = &[
    "Creating",
    "Waiting",
    "Available",
    "UnAvailable",
    "CreateFailed",
    "Deprecated",
];
const OWNER_ALIASES: &[&str] = &["system", "self", "others", "marketplace"];

pub(super) fn describe_images(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let region_name = catalog::region(&region(ctx)?)
        .map(|r| r.aliyun)
        .unwrap_or_default();
    let (offset, size) = page(p, &params::PAGE_SIZE_100)?;
    let ids: Option<Vec<String>> = p
        .opt("ImageId")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect());
    let os = p.opt("OSType");
    let name = p.opt("ImageName");
    let family = p.opt("ImageFamily");
    // Default: Available only (ECS).
    let statuses: Vec<String> = p
        .opt("Status")
        .map(|s| s.split(',').map(|x| x.trim().to_string()).collect())
        .unwrap_or_else(|| vec!["Available".to_string()]);
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::invalid("Status", bad.clone()));
    }
    let owner = p.opt("ImageOwnerAlias");
    if let Some(o) = &owner
        && !OWNER_ALIASES.contains(&o.as_str())
    {
        return Err(ApiError::invalid("ImageOwnerAlias", o.clone()));
    }
    let usage = p.opt("Usage");
    let pr = &ctx.principal;
    let all: Vec<(Image, bool)> = engine
        .images(pr)
        .into_iter()
        .filter(|i| i.listed_to(pr) && i.status != ImageStatus::Deleted)
        .filter(|m| ids.as_ref().is_none_or(|ids| ids.contains(&m.id)))
        .filter(|m| {
            os.as_deref().is_none_or(|o| {
                o.eq_ignore_ascii_case(if m.os == nubis_core::OsFamily::Windows {
                    "windows"
                } else {
                    "linux"
                })
            })
        })
        .filter(|m| name.as_deref().is_none_or(|n| wildcard_or_sub(n, &m.name)))
        .filter(|m| {
            family
                .as_deref()
                .is_none_or(|f| m.properties.get(FAMILY).is_some_and(|x| x == f))
        })
        .filter(|m| statuses.iter().any(|s| s == status(m)))
        .filter(|m| owner.as_deref().is_none_or(|o| o == owner_alias(m)))
        .map(|m| {
            let used = engine.image_in_use(&m.id) > 0;
            (m, used)
        })
        .filter(|(_, used)| {
            usage.as_deref().is_none_or(|u| match u {
                "instance" => *used,
                "none" => !*used,
                _ => false,
            })
        })
        .collect();
    let images: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(size)
        .map(|(m, used)| render_image(m, *used))
        .collect();
    Ok(obj(
        json!({"Images": {"Image": images}, "TotalCount": all.len(), "PageNumber": offset / size + 1, "PageSize": size, "RegionId": region_name}),
    ))
}

/// ImageName filter: ECS matches a `*` wildcard; nubis also a plain substring.
fn wildcard_or_sub(pattern: &str, value: &str) -> bool {
    if pattern.contains('*') {
        wildcard(pattern, value)
    } else {
        value.contains(pattern)
    }
}

/// The caller's own image `id` (a built-in or another account's image answers as unknown).
fn own_image(engine: &Engine, ctx: &Ctx, id: &str) -> Result<Image, ApiError> {
    let img = engine
        .image(&ctx.principal, id)
        .map_err(|e| domain(engine, ctx, e))?;
    if img.is_builtin() || !img.owned_by(&ctx.principal) {
        return Err(domain(engine, ctx, DomainError::ImageNotOwned(img.id)));
    }
    Ok(img)
}

pub(super) async fn delete_image(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let id = p.required("ImageId")?;
    let force = p.bool("Force")?;
    let img = own_image(engine, ctx, &id)?;
    // Without Force an image instances run is refused; with it they keep running.
    engine
        .delete_image(&ctx.principal, &img.id, !force)
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(obj(json!({})))
}

pub(super) async fn modify_image_attribute(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    region(ctx)?;
    let id = p.required("ImageId")?;
    let name = p.text(&IMAGE_NAME)?;
    let description = p.opt("Description");
    params::check_text(&params::DESCRIPTION, "Description", description.as_deref())?;
    let family = p.text(&IMAGE_FAMILY)?;
    let status = p.opt("Status");
    if let Some(s) = &status
        && !["Deprecated", "Available"].contains(&s.as_str())
    {
        return Err(ApiError::invalid("Status", s));
    }
    let img = own_image(engine, ctx, &id)?;
    if let Some(n) = &name
        && engine
            .images(&ctx.principal)
            .iter()
            .any(|i| i.id != img.id && !i.is_builtin() && i.account == img.account && i.name == *n)
    {
        return Err(domain(engine, ctx, DomainError::ImageNameInUse(n.clone())));
    }
    engine
        .update_image(&ctx.principal, &img.id, |i| {
            if let Some(n) = name {
                i.name = n;
            }
            if let Some(d) = description {
                i.description = d;
            }
            if let Some(f) = family {
                i.properties.insert(FAMILY.to_string(), f);
            }
            match status.as_deref() {
                Some("Deprecated") if i.status == ImageStatus::Active => {
                    i.status = ImageStatus::Deactivated;
                }
                Some("Available") if i.status == ImageStatus::Deactivated => {
                    i.status = ImageStatus::Active;
                }
                Some("Deprecated" | "Available")
                    if !matches!(i.status, ImageStatus::Active | ImageStatus::Deactivated) =>
                {
                    return Err(DomainError::ImageState {
                        id: i.id.clone(),
                        status: i.status,
                    });
                }
                _ => {}
            }
            Ok(())
        })
        .await
        .map_err(|e| domain(engine, ctx, e))?;
    Ok(obj(json!({})))
}
