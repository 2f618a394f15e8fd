//! Glance v2, minimal and read-only: the catalogue's public images.

use crate::identity::{UNAUTHORIZED, error as keystone_error};
use crate::render;
use crate::{OpenStackApi, RawRequest, Reply, ids};
use nubis_core::catalog;
use serde_json::json;

fn not_found() -> Reply {
    Reply::text(
        404,
        "404 Not Found\n\nThe resource could not be found.\n\n   ",
    )
}

pub(crate) async fn handle(api: &OpenStackApi, req: &RawRequest<'_>, rest: &str) -> Reply {
    let base = api.base_url();
    let get = matches!(req.method, "GET" | "HEAD");
    let path = rest.trim_end_matches('/');
    if path.is_empty() || path == "/versions" {
        if !get {
            return Reply::text(405, "405 Method Not Allowed");
        }
        let v = |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]});
        let versions = json!({"versions": [v("v2.15", "CURRENT"), v("v2.0", "SUPPORTED")]});
        let status = if path.is_empty() { 300 } else { 200 };
        return Reply::json(status, &versions).op("image.versions");
    }
    let token = req.header("x-auth-token").unwrap_or_default();
    let Some(token) = api.token(token) else {
        return keystone_error(401, UNAUTHORIZED).header(
            "www-authenticate",
            format!("Keystone uri=\"{base}/identity\""),
        );
    };
    let owner = ids::project_id(&token.account);
    let Some(segs) = crate::path_segments(path) else {
        return not_found();
    };
    // Glance's routes have no trailing `/`: `/v2/images/` names no image (an empty ID).
    if rest.len() > path.len() && segs.starts_with(&["v2", "images"]) {
        return not_found().op("image.show");
    }
    match segs.as_slice() {
        ["v2", "images"] if get => list(req, &owner).op("image.list"),
        ["v2", "images", id] if get => {
            match catalog::IMAGES
                .iter()
                .find(|i| i.public && ids::image_uuid(i.id).to_string() == *id)
            {
                Some(i) => Reply::json(200, &render::image(i, &owner)).op("image.show"),
                None => not_found().op("image.show"),
            }
        }
        ["v2", "images", ..] => Reply::text(405, "405 Method Not Allowed"),
        _ => not_found(),
    }
}

fn list(req: &RawRequest<'_>, owner: &str) -> Reply {
    let q = req.query();
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let mut images: Vec<&catalog::Image> = catalog::IMAGES.iter().filter(|i| i.public).collect();
    if let Some(name) = get("name") {
        images.retain(|i| i.name == name);
    }
    if let Some(ids_in) = get("id") {
        let wanted: Vec<&str> = ids_in
            .strip_prefix("in:")
            .unwrap_or(ids_in)
            .split(',')
            .map(str::trim)
            .collect();
        images.retain(|i| wanted.contains(&ids::image_uuid(i.id).to_string().as_str()));
    }
    if let Some(status) = get("status") {
        images.retain(|_| status == "active");
    }
    if let Some(vis) = get("visibility") {
        images.retain(|_| vis == "public" || vis == "all");
    }
    if let Some(marker) = get("marker") {
        match images
            .iter()
            .position(|i| ids::image_uuid(i.id).to_string() == marker)
        {
            Some(at) => images.drain(..=at).for_each(drop),
            None => {
                return Reply::text(
                    400,
                    &format!("400 Bad Request\n\nmarker could not be found: {marker}\n\n   "),
                );
            }
        }
    }
    let limit = match get("limit").map(str::parse::<usize>) {
        None => 25,
        Some(Ok(n)) => n.min(1000),
        Some(Err(_)) => {
            return Reply::text(
                400,
                "400 Bad Request\n\nlimit param must be an integer\n\n   ",
            );
        }
    };
    let cut = images.len() > limit;
    images.truncate(limit);
    let mut body = json!({
        "images": images.iter().map(|i| render::image(i, owner)).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if cut && let Some(last) = images.last() {
        body["next"] = json!(format!(
            "/v2/images?marker={}&limit={limit}",
            ids::image_uuid(last.id)
        ));
    }
    Reply::json(200, &body)
}
