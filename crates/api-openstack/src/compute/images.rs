//! Nova's image proxy, `/images`, `/images/detail`, `/images/{id}` (nova/api/openstack/compute/
//! images.py and views/images.py), served up to microversion 2.35 and 404 from 2.36 as Nova
//! does. The images are the registry's, as Glance lists them to the caller
//! ([`render::image`]): list, detail and show render them as Nova's view (an image made from
//! a server links it under `server`); `DELETE` deletes the caller's own images and answers
//! what Glance answers for a protected or someone else's image (403).

use super::{Nova, Res, listing, skip_past};
use crate::errors::Fault;
use crate::{Reply, ids, render};
use nubis_core::images::Image;
use serde_json::{Map, Value, json};

/// Last microversion with the proxy APIs (api_version_request.MAX_PROXY_API_SUPPORT_VERSION).
pub(super) const MAX_PROXY_MINOR: u16 = 35;
/// Nova's `[api] max_limit`.
const MAX_LIMIT: usize = 1000;
/// The keys of a Glance image that are not custom properties (Nova's `metadata` holds the
/// others, glance.py `_extract_attributes`).
const GLANCE_BASE: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "tags",
    "created_at",
    "updated_at",
    "file",
    "self",
    "schema",
    "locations",
    "direct_url",
];

fn not_found() -> Fault {
    Fault::not_found("Image not found.")
}

/// Nova's query schema for `limit`, `page_size` and `offset` (parameter_types.positive_integer).
fn positive(q: &[(String, String)], key: &str) -> Result<Option<usize>, Fault> {
    let Some((_, v)) = q.iter().find(|(k, _)| k == key) else {
        return Ok(None);
    };
    let bad = |m: String| {
        Fault::bad_request(format!(
            "Invalid input for query parameters {key}. Value: {v}. {m}"
        ))
    };
    if !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("'{v}' does not match '^[0-9]*$'")));
    }
    if v.is_empty() {
        return Err(bad("'' should be non-empty".into()));
    }
    let n = v.trim_start_matches('0');
    if n.is_empty() {
        return Err(bad("0 is less than the minimum of 1".into()));
    }
    // Digits only: anything too long for usize is far above every cap.
    Ok(Some(n.parse::<usize>().unwrap_or(usize::MAX)))
}

/// A Glance image as Nova's views show it; `detail` false is the index's basic form.
fn view(i: &Image, base: &str, owner: &str, detail: bool) -> Value {
    let id = i.uuid.to_string();
    let glance = render::image(i, owner);
    let mut links = render::links(base, &format!("images/{id}"));
    if let Value::Array(l) = &mut links {
        l.push(
            json!({"rel": "alternate", "type": "application/vnd.openstack.image",
            "href": format!("{base}/image/images/{id}")}),
        );
    }
    if !detail {
        return json!({"id": id, "name": glance["name"], "links": links});
    }
    let metadata: Map<String, Value> = glance
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !GLANCE_BASE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let status = match glance["status"].as_str() {
        Some("active") => ("ACTIVE", 100),
        Some("queued") => ("SAVING", 25),
        Some("saving") => ("SAVING", 50),
        Some("deleted" | "pending_delete") => ("DELETED", 0),
        Some("killed") => ("ERROR", 0),
        _ => ("UNKNOWN", 0),
    };
    let mut out = json!({
        "id": id,
        "name": glance["name"],
        "minRam": glance["min_ram"],
        "minDisk": glance["min_disk"],
        "metadata": metadata,
        "created": glance["created_at"],
        "updated": glance["updated_at"],
        "status": status.0,
        "progress": status.1,
        "OS-EXT-IMG-SIZE:size": glance["size"],
        "links": links,
    });
    // Nova links the server a snapshot was made from (views/images.py `_get_server`).
    if let Some(server) = glance["instance_uuid"].as_str() {
        out["server"] =
            json!({"id": server, "links": render::links(base, &format!("servers/{server}"))});
    }
    out
}

/// Glance's image statuses (what its `status` filter accepts).
const GLANCE_STATUSES: &[&str] = &[
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "pending_delete",
    "deactivated",
    "uploading",
    "importing",
];

impl Nova<'_> {
    fn owner(&self) -> String {
        ids::project_id(&self.p.account)
    }

    /// The image `id` (a UUID) names, if the caller may see it.
    fn image_by_id(&self, id: &str) -> Result<Image, Fault> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(not_found());
        }
        self.api.engine.image(&self.p, id).map_err(|_| not_found())
    }

    pub(super) fn show_image(&self, id: &str) -> Res {
        let i = self.image_by_id(id)?;
        Ok(Reply::json(
            200,
            &json!({"image": view(&i, &self.base, &self.owner(), true)}),
        ))
    }

    /// Nova asks Glance to delete: the caller's own images go; a protected image, a
    /// built-in or someone else's is refused as Glance refuses it (403).
    pub(super) async fn delete_image(&self, id: &str) -> Res {
        self.image_by_id(id)?;
        match self.api.engine.delete_image(&self.p, id, false).await {
            Ok(_) => Ok(Reply::empty(204)),
            Err(nubis_core::DomainError::NotFound { .. }) => Err(not_found()),
            Err(_) => Err(Fault::new(403, "You are not allowed to delete the image.")),
        }
    }

    pub(super) fn list_images(&self, detail: bool) -> Res {
        let q = self.req.query();
        let limit = positive(&q, "limit")?;
        let page_size = positive(&q, "page_size")?;
        let offset = positive(&q, "offset")?.unwrap_or(0);
        let owner = self.owner();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        // What Glance's default listing shows the caller (hidden images aside).
        let mut images: Vec<Image> = self
            .api
            .engine
            .images(&self.p)
            .into_iter()
            .filter(|i| i.listed_to(&self.p) || self.p.is_admin)
            .filter(|i| i.properties.get("os_hidden").map(String::as_str) != Some("true"))
            .collect();
        if let Some(name) = get("name") {
            images.retain(|i| i.name == name);
        }
        if let Some(status) = get("status") {
            let status = status.to_ascii_lowercase();
            if !GLANCE_STATUSES.contains(&status.as_str()) {
                return Err(Fault::bad_request(format!(
                    "Invalid status value: {status}"
                )));
            }
            images.retain(|i| render::image(i, &owner)["status"].as_str() == Some(status.as_str()));
        }
        for (key, field) in [("minRam", "min_ram"), ("minDisk", "min_disk")] {
            if let Some(v) = get(key) {
                let min: u64 = v.parse().map_err(|_| {
                    Fault::bad_request(format!("Invalid {field} filter value: {v}"))
                })?;
                images.retain(|i| render::image(i, &owner)[field].as_u64().unwrap_or(0) >= min);
            }
        }
        if let Some(since) = get("changes-since") {
            let since = parse_time(since).ok_or_else(|| {
                Fault::bad_request(format!("Invalid changes-since value: {since}"))
            })?;
            images.retain(|i| {
                render::image(i, &owner)["updated_at"]
                    .as_str()
                    .and_then(parse_time)
                    .is_some_and(|t| t >= since)
            });
        }
        // Images made from a server (Nova's `server` and `type` filters are the properties
        // `instance_uuid` and `image_type`).
        if let Some(server) = get("server") {
            let server = server
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default();
            images.retain(|i| render::image(i, &owner)["instance_uuid"].as_str() == Some(server));
        }
        if let Some(kind) = get("type") {
            images.retain(|i| render::image(i, &owner)["image_type"].as_str() == Some(kind));
        }
        for (k, want) in q.iter().filter(|(k, _)| k.starts_with("property-")) {
            let prop = &k["property-".len()..];
            images.retain(|i| render::image(i, &owner)[prop].as_str() == Some(want.as_str()));
        }
        if let Some(marker) = get("marker")
            && !skip_past(&mut images, |i| i.uuid.to_string() == marker)
        {
            return Err(Fault::bad_request(format!(
                "marker could not be found: {marker}"
            )));
        }
        images.drain(..offset.min(images.len()));
        let limit = limit.or(page_size).unwrap_or(MAX_LIMIT).min(MAX_LIMIT);
        images.truncate(limit);
        let list: Vec<Value> = images
            .iter()
            .map(|i| view(i, &self.base, &owner, detail))
            .collect();
        let path = if detail { "images/detail" } else { "images" };
        // Nova links the next page whenever a page is full.
        let next = (images.last())
            .filter(|_| images.len() == limit)
            .map(|i| i.uuid.to_string());
        listing(&self.base, "images", path, list, limit, next)
    }
}

/// The last microversion with the image metadata API (deprecated in 2.39).
pub(super) const MAX_IMAGE_METADATA_MINOR: u16 = 38;

/// An image's Nova metadata: its Glance additional properties.
fn image_metadata(i: &Image, owner: &str) -> Map<String, Value> {
    render::image(i, owner)
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| !GLANCE_BASE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

impl Nova<'_> {
    /// `GET /images/{id}/metadata`.
    pub(super) fn image_metadata_list(&self, id: &str) -> Res {
        let i = self.image_by_id(id)?;
        Ok(Reply::json(
            200,
            &json!({"metadata": image_metadata(&i, &self.owner())}),
        ))
    }

    /// `GET /images/{id}/metadata/{key}`.
    pub(super) fn image_metadata_show(&self, id: &str, key: &str) -> Res {
        let i = self.image_by_id(id)?;
        let m = image_metadata(&i, &self.owner());
        match m.get(key) {
            Some(v) => Ok(Reply::json(200, &json!({"meta": {key: v}}))),
            None => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    /// Change image `id`'s properties as `change` says, with Nova's `metadata_items` quota;
    /// the owner's (Glance refuses anyone else: 403).
    async fn write_image_metadata(
        &self,
        id: &str,
        change: impl FnOnce(&mut std::collections::BTreeMap<String, String>) -> Option<Fault>,
    ) -> Result<Image, Fault> {
        self.image_by_id(id)?;
        let mut refused: Option<Fault> = None;
        let quota = self.metadata_quota();
        let result = self
            .api
            .engine
            .update_image(&self.p, id, |img| {
                let hidden = img.properties.remove("os_hidden");
                let fault = change(&mut img.properties)
                    .or_else(|| super::metadata::check_quota(img.properties.len(), quota).err());
                if let Some(h) = hidden {
                    img.properties.insert("os_hidden".into(), h);
                }
                match fault {
                    Some(f) => {
                        refused = Some(f);
                        Err(nubis_core::DomainError::InvalidParameter("metadata".into()))
                    }
                    None => Ok(()),
                }
            })
            .await;
        if let Some(f) = refused {
            return Err(f);
        }
        result.map_err(|e| match e {
            nubis_core::DomainError::NotFound { .. } => not_found(),
            nubis_core::DomainError::ImageNotOwned(_) => {
                Fault::new(403, "You are not allowed to update the image's metadata.")
            }
            other => crate::errors::map(other, None),
        })
    }

    /// `POST /images/{id}/metadata` (merge) and `PUT` (replace all).
    pub(super) async fn image_metadata_write(&self, id: &str, replace: bool) -> Res {
        let body = super::json_body(self.req.body)?;
        let meta = super::metadata::body_of(&body, "metadata")?;
        let items = super::metadata::parse("metadata", &meta)?;
        let img = self
            .write_image_metadata(id, |props| {
                if replace {
                    props.clear();
                }
                props.extend(items);
                None
            })
            .await?;
        let shown = if replace {
            meta
        } else {
            Value::Object(image_metadata(&img, &self.owner()))
        };
        Ok(Reply::json(200, &json!({ "metadata": shown })))
    }

    /// `PUT /images/{id}/metadata/{key}`.
    pub(super) async fn image_metadata_set(&self, id: &str, key: &str) -> Res {
        let body = super::json_body(self.req.body)?;
        let meta = super::metadata::body_of(&body, "meta")?;
        let items = super::metadata::parse("meta", &meta)?;
        if !items.iter().any(|(k, _)| k == key) {
            return Err(Fault::bad_request("Request body and URI mismatch"));
        }
        if items.len() > 1 {
            return Err(Fault::bad_request("Request body contains too many items"));
        }
        self.write_image_metadata(id, |props| {
            props.extend(items);
            None
        })
        .await?;
        Ok(Reply::json(200, &json!({ "meta": meta })))
    }

    /// `DELETE /images/{id}/metadata/{key}`.
    pub(super) async fn image_metadata_delete(&self, id: &str, key: &str) -> Res {
        let key = key.to_string();
        self.write_image_metadata(id, |props| {
            props
                .remove(&key)
                .is_none()
                .then(|| Fault::not_found("The resource could not be found."))
        })
        .await?;
        Ok(Reply::empty(204))
    }
}

/// `YYYY-MM-DDTHH:MM:SS` with an optional `Z`, fraction or UTC offset, as seconds since the
/// epoch (UTC).
fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    // Without a zone: UTC.
    time::OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_params_as_nova_checks_them() {
        let q = |v: &str| vec![("limit".to_string(), v.to_string())];
        assert_eq!(positive(&q("5"), "limit").unwrap(), Some(5));
        assert_eq!(
            positive(&q("abc"), "limit").unwrap_err().message,
            "Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'"
        );
        assert_eq!(
            positive(&q("0"), "limit").unwrap_err().message,
            "Invalid input for query parameters limit. Value: 0. 0 is less than the minimum of 1"
        );
        assert!(positive(&q(""), "limit").is_err());
        assert!(positive(&q("-1"), "limit").is_err());
        assert_eq!(
            positive(&q("99999999999999999999999"), "limit").unwrap(),
            Some(usize::MAX)
        );
    }

    #[test]
    fn view_fields() {
        let i = Image::builtin(
            nubis_core::catalog::IMAGES
                .iter()
                .find(|i| i.public)
                .unwrap(),
        );
        let v = view(&i, "http://h", "p", true);
        for k in [
            "id",
            "name",
            "minRam",
            "minDisk",
            "metadata",
            "created",
            "updated",
            "status",
            "progress",
            "OS-EXT-IMG-SIZE:size",
            "links",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert_eq!(v["status"], "ACTIVE");
        assert_eq!(v["progress"], 100);
        assert_eq!(v["metadata"]["nubis_image_id"], i.id);
        assert!(v["metadata"].get("owner").is_none());
        assert_eq!(v["links"].as_array().map(Vec::len), Some(3));
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(parse_time("2024-01-01T00:00:00"), Some(1_704_067_200));
        assert_eq!(parse_time("yesterday"), None);
    }
}
