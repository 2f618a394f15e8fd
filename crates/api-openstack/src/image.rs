//! Glance v2, minimal and read-only: the catalogue's public images.

use crate::compute::skip_past;
use crate::identity::{UNAUTHORIZED, error as keystone_error};
use crate::render;
use crate::routes::{self, Found, Need, Route, Scope, op};
use crate::{OpenStackApi, RawRequest, Reply, ids};
use nubis_core::catalog;
use nubis_pipeline::{Refusal, Registry};
use serde_json::json;

fn not_found() -> Reply {
    Reply::text(
        404,
        "404 Not Found\n\nThe resource could not be found.\n\n   ",
    )
}

fn version_list(base: &str) -> serde_json::Value {
    let v = |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]});
    json!({"versions": [v("v2.15", "CURRENT"), v("v2.0", "SUPPORTED")]})
}

/// How a Glance operation is answered.
pub enum Glance {
    /// A version document, built from the public base URL.
    Doc(fn(&str) -> Reply),
    /// The request, the caller's project and the path's `{…}` segments.
    Call(GlanceFn),
}

/// A handler of an authenticated Glance request.
pub struct GlanceFn(pub(crate) fn(&RawRequest<'_>, &str, &[&str]) -> Reply);

impl std::fmt::Debug for Glance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Doc(_) => "Doc",
            Self::Call(_) => "Call",
        })
    }
}

/// Every Glance operation, declared once (docs/catalogue/openstack-image.md); the policy
/// names are Glance's (`glance/policies/image.py`).
#[rustfmt::skip]
pub static REGISTRY: Registry<Route<Glance>> = Registry {
    cloud: "openstack",
    service: "image",
    version: "",
    actions: &[
        op("image.versions", "GET", "/image", Need::Public, "(none)", "—",
            Glance::Doc(|base| Reply::json(300, &version_list(base)))),
        op("image.versions.list", "GET", "/image/versions", Need::Public, "(none)", "—",
            Glance::Doc(|base| Reply::json(200, &version_list(base)))),
        op("image.list", "GET", "/image/v2/images", Need::Token, "get_images", "—",
            Glance::Call(GlanceFn(|req, owner, _| list(req, owner)))),
        op("image.show", "GET", "/image/v2/images/{id}", Need::Token, "get_image", "—",
            Glance::Call(GlanceFn(|_, owner, p| show(owner, p.first().copied().unwrap_or_default())))),
    ],
};

fn not_allowed() -> Reply {
    Reply::text(405, "405 Method Not Allowed")
}

pub(crate) async fn handle(api: &OpenStackApi, req: &RawRequest<'_>, rest: &str) -> Reply {
    let base = api.base_url();
    let path = rest.trim_end_matches('/');
    if path.is_empty() || path == "/versions" {
        let segs = routes::full_segments("image", path).unwrap_or_default();
        return match routes::find(&REGISTRY, req.method, &segs, 0, Scope::Public) {
            Found::Op(spec, _) => match &spec.handler.handler {
                Glance::Doc(doc) => doc(&base).op(spec.name),
                Glance::Call(_) => not_found(),
            },
            Found::WrongMethod(label) => not_allowed().op(label),
            Found::Nothing => not_found(),
        };
    }
    let token = req.header("x-auth-token").unwrap_or_default();
    let Some(token) = api.token(token).await else {
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
    let under_images = segs.starts_with(&["v2", "images"]);
    let segs: Vec<&str> = ["image"].into_iter().chain(segs).collect();
    let (spec, params) = match routes::find(&REGISTRY, req.method, &segs, 0, Scope::Authenticated) {
        Found::Op(spec, params) => (spec, params),
        Found::WrongMethod(label) => return not_allowed().op(label),
        // Anything else under /v2/images is a method Glance does not route.
        Found::Nothing if under_images => return not_allowed().op("image"),
        Found::Nothing => return not_found(),
    };
    if let Err(r) = routes::admit(
        &api.gate,
        &REGISTRY,
        &token,
        spec,
        &api.nova_policy,
        crate::compute::nova_target(&token),
    )
    .await
    {
        let reply = match r {
            Refusal::Throttled(_) => {
                Reply::text(429, "429 Too Many Requests").header("retry-after", "1")
            }
            Refusal::Denied(d) => Reply::text(
                403,
                &format!(
                    "403 Forbidden\n\nYou are not authorized to {}.\n\n   ",
                    d.policy_action
                ),
            ),
            _ => not_found(),
        };
        return reply.op(spec.name);
    }
    let reply = match &spec.handler.handler {
        Glance::Call(GlanceFn(call)) => call(req, &owner, &params),
        Glance::Doc(doc) => doc(&base),
    };
    reply.op(spec.name)
}

fn show(owner: &str, id: &str) -> Reply {
    match catalog::IMAGES
        .iter()
        .find(|i| i.public && ids::image_uuid(i.id).to_string() == id)
    {
        Some(i) => Reply::json(200, &render::image(i, owner)),
        None => not_found(),
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
    if let Some(marker) = get("marker")
        && !skip_past(&mut images, |i| ids::image_uuid(i.id).to_string() == marker)
    {
        return Reply::text(
            400,
            &format!("400 Bad Request\n\nmarker could not be found: {marker}\n\n   "),
        );
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
