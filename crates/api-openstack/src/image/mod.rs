//! Glance v2 on the image registry (docs/images.md, "Glance"): images listed, created,
//! changed by JSON patch, deleted, their data uploaded (streamed to the image directory,
//! digests computed on the way) and downloaded, tags, members, deactivate/reactivate and the
//! schemas. The rules (who owns, who sees, which status allows what) are core's and the
//! engine's; this module parses, checks Glance's schema and renders.

mod metadef_schemas;
pub mod metadefs;
pub mod patch;
pub mod query;
mod schemas;
mod tasks;
pub mod upload;

use crate::identity::{UNAUTHORIZED, error as keystone_error};
use crate::render;
use crate::routes::{self, Found, Need, Route, Scope, op};
use crate::tokens::Token;
use crate::{OpenStackApi, RawRequest, Reply, ids};
use metadefs::Md;
use nubis_core::images::{
    Image, ImageStatus, MEMBERS_PER_IMAGE, Member, MemberStatus, PROPERTIES_PER_IMAGE,
    TAGS_PER_IMAGE, Visibility,
};
use nubis_core::metadefs::Kind;
use nubis_core::{DomainError, Principal};
use nubis_engine::NewImage;
use nubis_pipeline::{Refusal, Registry};
use serde_json::{Value, json};

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// A Glance error: webob's plain-text page.
pub(crate) fn fail(status: u16, message: &str) -> Reply {
    Reply::text(
        status,
        &crate::errors::glance_text(status, reason(status), message),
    )
}

fn not_found() -> Reply {
    fail(404, "The resource could not be found.")
}

fn version_list(base: &str) -> serde_json::Value {
    let v = |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": format!("{base}/image/v2/")}]});
    json!({"versions": [v("v2.15", "CURRENT"), v("v2.0", "SUPPORTED")]})
}

/// How a Glance operation is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glance {
    /// A version document, built from the public base URL.
    Versions(u16),
    List,
    Create,
    Show,
    Update,
    Delete,
    Upload,
    Download,
    TagAdd,
    TagDelete,
    Members,
    MemberAdd,
    MemberShow,
    MemberUpdate,
    MemberDelete,
    Deactivate,
    Reactivate,
    Schema(&'static str),
    ImportInfo,
    /// `GET /v2/images/{id}/tasks`: the image's import tasks (nubis runs none).
    Tasks,
    /// `/v2/tasks` (tasks.rs).
    TaskList,
    /// `PUT /v2/images/{id}/stage`: data for a later import.
    Stage,
    /// `POST /v2/images/{id}/import`.
    Import,
    TaskCreate,
    TaskShow,
    /// The metadata definitions (`/v2/metadefs/...`, metadefs.rs).
    Metadef(Md),
    /// `/v2/schemas/metadefs/{which}`.
    MetadefSchema(&'static str),
}

const NS: &str = "/image/v2/metadefs/namespaces";
const NS1: &str = "/image/v2/metadefs/namespaces/{id}";
const OBJECTS: &str = "/image/v2/metadefs/namespaces/{id}/objects";
const OBJECT: &str = "/image/v2/metadefs/namespaces/{id}/objects/{name}";
const PROPERTIES: &str = "/image/v2/metadefs/namespaces/{id}/properties";
const PROPERTY: &str = "/image/v2/metadefs/namespaces/{id}/properties/{name}";
const TAGS: &str = "/image/v2/metadefs/namespaces/{id}/tags";
const TAG: &str = "/image/v2/metadefs/namespaces/{id}/tags/{name}";
const ASSOCIATIONS: &str = "/image/v2/metadefs/namespaces/{id}/resource_types";
const ASSOCIATION: &str = "/image/v2/metadefs/namespaces/{id}/resource_types/{name}";

/// Every Glance operation, declared once (docs/catalogue/openstack-image.md); the policy
/// names are Glance's (`glance/policies/image.py`, `image_member.py`).
#[rustfmt::skip]
pub static REGISTRY: Registry<Route<Glance>> = Registry {
    cloud: "openstack",
    service: "image",
    version: "",
    actions: &[
        op("image.versions", "GET", "/image", Need::Public, "(none)", "—", Glance::Versions(300)),
        op("image.versions.list", "GET", "/image/versions", Need::Public, "(none)", "—", Glance::Versions(200)),
        op("image.list", "GET", "/image/v2/images", Need::Token, "get_images", "—", Glance::List),
        op("image.create", "POST", "/image/v2/images", Need::Token, "add_image",
            "id, name, visibility, protected, os_hidden, tags, disk_format, container_format, min_disk, min_ram, owner, any property", Glance::Create),
        op("image.show", "GET", "/image/v2/images/{id}", Need::Token, "get_image", "—", Glance::Show),
        op("image.update", "PATCH", "/image/v2/images/{id}", Need::Token, "modify_image",
            "JSON patch: add/replace/remove", Glance::Update),
        op("image.delete", "DELETE", "/image/v2/images/{id}", Need::Token, "delete_image", "—", Glance::Delete),
        op("image.upload", "PUT", "/image/v2/images/{id}/file", Need::Token, "upload_image", "—", Glance::Upload),
        op("image.download", "GET", "/image/v2/images/{id}/file", Need::Token, "download_image", "—", Glance::Download),
        op("image.tag.add", "PUT", "/image/v2/images/{id}/tags/{name}", Need::Token, "modify_image", "—", Glance::TagAdd),
        op("image.tag.delete", "DELETE", "/image/v2/images/{id}/tags/{name}", Need::Token, "modify_image", "—", Glance::TagDelete),
        op("image.member.list", "GET", "/image/v2/images/{id}/members", Need::Token, "get_members", "—", Glance::Members),
        op("image.member.create", "POST", "/image/v2/images/{id}/members", Need::Token, "add_member", "member", Glance::MemberAdd),
        op("image.member.show", "GET", "/image/v2/images/{id}/members/{name}", Need::Token, "get_member", "—", Glance::MemberShow),
        op("image.member.update", "PUT", "/image/v2/images/{id}/members/{name}", Need::Token, "modify_member", "status", Glance::MemberUpdate),
        op("image.member.delete", "DELETE", "/image/v2/images/{id}/members/{name}", Need::Token, "delete_member", "—", Glance::MemberDelete),
        op("image.deactivate", "POST", "/image/v2/images/{id}/actions/deactivate", Need::Token, "deactivate", "—", Glance::Deactivate),
        op("image.reactivate", "POST", "/image/v2/images/{id}/actions/reactivate", Need::Token, "reactivate", "—", Glance::Reactivate),
        op("image.schema.image", "GET", "/image/v2/schemas/image", Need::Token, "(none)", "—", Glance::Schema("image")),
        op("image.schema.images", "GET", "/image/v2/schemas/images", Need::Token, "(none)", "—", Glance::Schema("images")),
        op("image.schema.member", "GET", "/image/v2/schemas/member", Need::Token, "(none)", "—", Glance::Schema("member")),
        op("image.schema.members", "GET", "/image/v2/schemas/members", Need::Token, "(none)", "—", Glance::Schema("members")),
        op("image.info.import", "GET", "/image/v2/info/import", Need::Token, "(none)", "—", Glance::ImportInfo),
        op("image.tasks", "GET", "/image/v2/images/{id}/tasks", Need::Token, "get_image", "—", Glance::Tasks),
        op("image.stage", "PUT", "/image/v2/images/{id}/stage", Need::Token, "modify_image", "—", Glance::Stage),
        op("image.import", "POST", "/image/v2/images/{id}/import", Need::Token, "modify_image",
            "method.name (glance-direct), stores, all_stores, all_stores_must_succeed", Glance::Import),
        // Tasks (glance/policies/tasks.py: `tasks_api_access` is role:admin).
        op("image.task.list", "GET", "/image/v2/tasks", Need::Admin, "get_tasks", "—", Glance::TaskList),
        op("image.task.create", "POST", "/image/v2/tasks", Need::Admin, "add_task", "type, input", Glance::TaskCreate),
        op("image.task.show", "GET", "/image/v2/tasks/{id}", Need::Admin, "get_task", "—", Glance::TaskShow),
        // Metadata definitions (glance/policies/metadef.py): reads by any token (a private
        // namespace only by its project and admins), writes by admins.
        op("image.metadef.namespace.list", "GET", NS, Need::Token, "get_metadef_namespaces", "—", Glance::Metadef(Md::List)),
        op("image.metadef.namespace.create", "POST", NS, Need::Admin, "add_metadef_namespace",
            "namespace, display_name, description, visibility, protected, owner, resource_type_associations, properties, objects, tags", Glance::Metadef(Md::Create)),
        op("image.metadef.namespace.show", "GET", NS1, Need::Token, "get_metadef_namespace", "—", Glance::Metadef(Md::Show)),
        op("image.metadef.namespace.update", "PUT", NS1, Need::Admin, "modify_metadef_namespace",
            "namespace, display_name, description, visibility, protected, owner", Glance::Metadef(Md::Update)),
        op("image.metadef.namespace.delete", "DELETE", NS1, Need::Admin, "delete_metadef_namespace", "—", Glance::Metadef(Md::Delete)),
        op("image.metadef.object.list", "GET", OBJECTS, Need::Token, "get_metadef_objects", "—", Glance::Metadef(Md::Entries(Kind::Object))),
        op("image.metadef.object.create", "POST", OBJECTS, Need::Admin, "add_metadef_object",
            "name, description, required, properties", Glance::Metadef(Md::Add(Kind::Object))),
        op("image.metadef.object.delete_all", "DELETE", OBJECTS, Need::Admin, "delete_metadef_namespace", "—", Glance::Metadef(Md::Clear(Kind::Object))),
        op("image.metadef.object.show", "GET", OBJECT, Need::Token, "get_metadef_object", "—", Glance::Metadef(Md::EntryShow(Kind::Object))),
        op("image.metadef.object.update", "PUT", OBJECT, Need::Admin, "modify_metadef_object",
            "name, description, required, properties", Glance::Metadef(Md::EntryUpdate(Kind::Object))),
        op("image.metadef.object.delete", "DELETE", OBJECT, Need::Admin, "delete_metadef_object", "—", Glance::Metadef(Md::EntryDelete(Kind::Object))),
        op("image.metadef.property.list", "GET", PROPERTIES, Need::Token, "get_metadef_properties", "—", Glance::Metadef(Md::Entries(Kind::Property))),
        op("image.metadef.property.create", "POST", PROPERTIES, Need::Admin, "add_metadef_property",
            "name, title, type, description, enum, default, minimum, maximum, …", Glance::Metadef(Md::Add(Kind::Property))),
        op("image.metadef.property.delete_all", "DELETE", PROPERTIES, Need::Admin, "delete_metadef_namespace", "—", Glance::Metadef(Md::Clear(Kind::Property))),
        op("image.metadef.property.show", "GET", PROPERTY, Need::Token, "get_metadef_property", "—", Glance::Metadef(Md::EntryShow(Kind::Property))),
        op("image.metadef.property.update", "PUT", PROPERTY, Need::Admin, "modify_metadef_property",
            "name, title, type, description, enum, default, minimum, maximum, …", Glance::Metadef(Md::EntryUpdate(Kind::Property))),
        op("image.metadef.property.delete", "DELETE", PROPERTY, Need::Admin, "remove_metadef_property", "—", Glance::Metadef(Md::EntryDelete(Kind::Property))),
        op("image.metadef.tag.list", "GET", TAGS, Need::Token, "get_metadef_tags", "—", Glance::Metadef(Md::Entries(Kind::Tag))),
        op("image.metadef.tag.create_many", "POST", TAGS, Need::Admin, "add_metadef_tags", "tags", Glance::Metadef(Md::TagsCreate)),
        op("image.metadef.tag.delete_all", "DELETE", TAGS, Need::Admin, "delete_metadef_tags", "—", Glance::Metadef(Md::Clear(Kind::Tag))),
        op("image.metadef.tag.create", "POST", TAG, Need::Admin, "add_metadef_tag", "—", Glance::Metadef(Md::Add(Kind::Tag))),
        op("image.metadef.tag.show", "GET", TAG, Need::Token, "get_metadef_tag", "—", Glance::Metadef(Md::EntryShow(Kind::Tag))),
        op("image.metadef.tag.update", "PUT", TAG, Need::Admin, "modify_metadef_tag", "name", Glance::Metadef(Md::EntryUpdate(Kind::Tag))),
        op("image.metadef.tag.delete", "DELETE", TAG, Need::Admin, "delete_metadef_tag", "—", Glance::Metadef(Md::EntryDelete(Kind::Tag))),
        op("image.metadef.resource_type.list", "GET", "/image/v2/metadefs/resource_types", Need::Token, "list_metadef_resource_types", "—", Glance::Metadef(Md::ResourceTypes)),
        op("image.metadef.association.list", "GET", ASSOCIATIONS, Need::Token, "get_metadef_resource_type", "—", Glance::Metadef(Md::Entries(Kind::Association))),
        op("image.metadef.association.create", "POST", ASSOCIATIONS, Need::Admin, "add_metadef_resource_type_association",
            "name, prefix, properties_target", Glance::Metadef(Md::Add(Kind::Association))),
        op("image.metadef.association.delete", "DELETE", ASSOCIATION, Need::Admin, "remove_metadef_resource_type_association", "—", Glance::Metadef(Md::EntryDelete(Kind::Association))),
        op("image.schema.metadef.namespace", "GET", "/image/v2/schemas/metadefs/namespace", Need::Token, "(none)", "—", Glance::MetadefSchema("namespace")),
        op("image.schema.metadef.namespaces", "GET", "/image/v2/schemas/metadefs/namespaces", Need::Token, "(none)", "—", Glance::MetadefSchema("namespaces")),
        op("image.schema.metadef.object", "GET", "/image/v2/schemas/metadefs/object", Need::Token, "(none)", "—", Glance::MetadefSchema("object")),
        op("image.schema.metadef.objects", "GET", "/image/v2/schemas/metadefs/objects", Need::Token, "(none)", "—", Glance::MetadefSchema("objects")),
        op("image.schema.metadef.property", "GET", "/image/v2/schemas/metadefs/property", Need::Token, "(none)", "—", Glance::MetadefSchema("property")),
        op("image.schema.metadef.properties", "GET", "/image/v2/schemas/metadefs/properties", Need::Token, "(none)", "—", Glance::MetadefSchema("properties")),
        op("image.schema.metadef.tag", "GET", "/image/v2/schemas/metadefs/tag", Need::Token, "(none)", "—", Glance::MetadefSchema("tag")),
        op("image.schema.metadef.tags", "GET", "/image/v2/schemas/metadefs/tags", Need::Token, "(none)", "—", Glance::MetadefSchema("tags")),
        op("image.schema.metadef.resource_type", "GET", "/image/v2/schemas/metadefs/resource_type", Need::Token, "(none)", "—", Glance::MetadefSchema("resource_type")),
        op("image.schema.metadef.resource_types", "GET", "/image/v2/schemas/metadefs/resource_types", Need::Token, "(none)", "—", Glance::MetadefSchema("resource_types")),
    ],
};

pub(crate) fn not_allowed() -> Reply {
    fail(405, "The method is not allowed for this resource.")
}

/// A path segment as sent, percent-decoded (tags and member IDs may carry any character).
fn decode(seg: &str) -> String {
    let b = seg.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The authenticated, admitted Glance request: the caller and the path's `{…}` segments.
pub(crate) struct Ctx<'a> {
    pub(crate) api: &'a OpenStackApi,
    pub(crate) req: &'a RawRequest<'a>,
    pub(crate) p: Principal,
    /// The caller's project (what Glance shows as the owner of built-in images, as before).
    pub(crate) project: String,
    pub(crate) params: Vec<String>,
}

/// Authenticate and admit a Glance request: the operation and its context, or the refusal.
pub(crate) async fn admit<'a>(
    api: &'a OpenStackApi,
    req: &'a RawRequest<'a>,
    rest: &str,
) -> Result<(Glance, &'static str, Ctx<'a>), Reply> {
    let base = api.base_url();
    let path = rest.trim_end_matches('/');
    if path.is_empty() || path == "/versions" {
        let segs = routes::full_segments("image", path).unwrap_or_default();
        return Err(
            match routes::find(&REGISTRY, req.method, &segs, 0, Scope::Public) {
                Found::Op(spec, _) => match spec.handler.handler {
                    Glance::Versions(status) => {
                        Reply::json(status, &version_list(&base)).op(spec.name)
                    }
                    _ => not_found(),
                },
                Found::WrongMethod(label) => not_allowed().op(label),
                Found::Nothing => not_found(),
            },
        );
    }
    let Some(token) = api.request_token(req, "image", rest).await else {
        return Err(keystone_error(401, UNAUTHORIZED).header(
            "www-authenticate",
            format!("Keystone uri=\"{base}/identity\""),
        ));
    };
    let Some(segs) = crate::path_segments(path) else {
        return Err(not_found());
    };
    // Glance's routes have no trailing `/`: `/v2/images/` names no image (an empty ID).
    if rest.len() > path.len() && segs.starts_with(&["v2", "images"]) {
        return Err(not_found().op("image.show"));
    }
    let under_images = segs.starts_with(&["v2", "images"]);
    let segs: Vec<&str> = ["image"].into_iter().chain(segs).collect();
    let (spec, params) = match routes::find(&REGISTRY, req.method, &segs, 0, Scope::Authenticated) {
        Found::Op(spec, params) => (spec, params),
        Found::WrongMethod(label) => return Err(not_allowed().op(label)),
        // Anything else under /v2/images is a method Glance does not route.
        Found::Nothing if under_images => return Err(not_allowed().op("image")),
        Found::Nothing => return Err(not_found()),
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
                fail(429, "This request was rate-limited.").header("retry-after", "1")
            }
            Refusal::Denied(d) => fail(
                403,
                &format!("You are not authorized to {}.", d.policy_action),
            ),
            _ => not_found(),
        };
        return Err(reply.op(spec.name));
    }
    let project = project_of(&token);
    let ctx = Ctx {
        api,
        req,
        p: api.principal(&token),
        project,
        params: params.iter().map(|s| decode(s)).collect(),
    };
    Ok((spec.handler.handler, spec.name, ctx))
}

fn project_of(token: &Token) -> String {
    token
        .project
        .as_ref()
        .map_or_else(|| ids::project_id(&token.account), |p| p.id.clone())
}

/// Serve a Glance request; `upload`: an upload's body as the listener streams it (`None`:
/// the request's buffered body).
pub(crate) async fn handle<C: upload::Chunks>(
    api: &OpenStackApi,
    req: &RawRequest<'_>,
    rest: &str,
    upload: Option<&mut C>,
    request_id: &str,
) -> Reply {
    let (what, name, ctx) = match admit(api, req, rest).await {
        Ok(x) => x,
        Err(reply) => return reply,
    };
    let reply = match what {
        Glance::Versions(status) => Reply::json(status, &version_list(&api.base_url())),
        Glance::List => ctx.list(),
        Glance::Create => ctx.create().await,
        Glance::Show => ctx.show(),
        Glance::Update => ctx.update().await,
        Glance::Delete => ctx.delete().await,
        Glance::Upload => match upload {
            Some(body) => ctx.upload(body, false).await,
            None => ctx.upload_buffered(false).await,
        },
        Glance::Download => ctx.download().await,
        Glance::TagAdd => ctx.tag(true).await,
        Glance::TagDelete => ctx.tag(false).await,
        Glance::Members => ctx.members(),
        Glance::MemberAdd => ctx.member_add().await,
        Glance::MemberShow => ctx.member_show(),
        Glance::MemberUpdate => ctx.member_update().await,
        Glance::MemberDelete => ctx.member_delete().await,
        Glance::Deactivate => ctx.deactivate(true).await,
        Glance::Reactivate => ctx.deactivate(false).await,
        Glance::Schema(which) => Reply::json(200, &schemas::schema(which)),
        Glance::Tasks => ctx.image_tasks(),
        Glance::Stage => match upload {
            Some(body) => ctx.upload(body, true).await,
            None => ctx.upload_buffered(true).await,
        },
        Glance::Import => ctx.import(request_id).await,
        Glance::TaskList => ctx.tasks_list(),
        Glance::TaskCreate => ctx.task_create(),
        Glance::TaskShow => ctx.task_show(),
        Glance::Metadef(md) => ctx.metadef(md).await,
        Glance::MetadefSchema(which) => Reply::json(200, &metadef_schemas::schema(which)),
        Glance::ImportInfo => Reply::json(
            200,
            &json!({"import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": tasks::IMPORT_METHODS,
            }}),
        ),
    };
    reply.op(name)
}

/// A domain error in Glance's words; `id` is the UUID the request named.
pub(crate) fn domain(e: DomainError, id: &str) -> Reply {
    match e {
        DomainError::NotFound { .. } => fail(404, &format!("No image found with ID {id}")),
        DomainError::ImageNotOwned(_) => fail(403, "You are not permitted to modify this image."),
        DomainError::ImageProtected(_) => fail(
            403,
            &format!("Image {id} is protected and cannot be deleted."),
        ),
        DomainError::ImageState { status, .. } => fail(
            409,
            &format!(
                "Image {id} is {}: the operation is not allowed now.",
                status.glance()
            ),
        ),
        DomainError::PolicyDenied(action) => fail(
            403,
            &format!("You are not authorized to complete {action} action."),
        ),
        DomainError::ImageQuota { limit } => fail(
            413,
            &format!("The image quota was exceeded: at most {limit} images per account."),
        ),
        DomainError::ImageLimit { what, limit } => fail(
            413,
            &format!("Maximum number of {what} exceeded: at most {limit} are allowed."),
        ),
        DomainError::Conflict(m) => fail(409, &m),
        DomainError::Unavailable(m) => fail(503, &m),
        other => fail(500, &other.to_string()),
    }
}

// The error is the finished Glance answer, returned once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn body_object(body: &[u8]) -> Result<serde_json::Map<String, Value>, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(400, "Body expected in request."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(fail(
            400,
            "Provided object does not match schema 'image': the body must be an object",
        )),
        Err(_) => Err(fail(400, "Malformed JSON in request body.")),
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn refused((status, m): patch::Refused) -> Reply {
    fail(status, &m)
}

fn member_view(image: &Image, m: &Member) -> Value {
    json!({
        "image_id": image.uuid,
        "member_id": m.project,
        "status": m.status.glance(),
        "created_at": render::glance_time(m.created_ms),
        "updated_at": render::glance_time(m.updated_ms),
        "schema": "/v2/schemas/member",
    })
}

impl Ctx<'_> {
    fn id(&self) -> &str {
        self.params.first().map_or("", String::as_str)
    }

    fn second(&self) -> &str {
        self.params.get(1).map_or("", String::as_str)
    }

    fn render(&self, img: &Image) -> Value {
        render::image(img, &self.project)
    }

    /// The image the path names if the caller may see it. Glance names images by UUID only.
    // The error is the finished Glance answer, returned once per request: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn image(&self) -> Result<Image, Reply> {
        let id = self.id();
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(fail(404, &format!("No image found with ID {id}")));
        }
        self.api
            .engine
            .image(&self.p, id)
            .map_err(|e| domain(e, id))
    }

    fn caller_project(&self) -> Option<&str> {
        self.p.project.as_ref().map(|s| s.id.as_str())
    }

    fn membership(&self, img: &Image) -> Option<MemberStatus> {
        let project = self.caller_project()?;
        img.members
            .iter()
            .find(|m| m.project == project)
            .map(|m| m.status)
    }

    fn list(&self) -> Reply {
        let q = self.req.query();
        let query = match query::parse(&q) {
            Ok(l) => l,
            Err(m) => return fail(400, &m),
        };
        let admin = self.p.is_admin;
        let mut images: Vec<Image> = self
            .api
            .engine
            .images(&self.p)
            .into_iter()
            .filter(|i| {
                let seen = query::Seen {
                    image: i,
                    owner: render::image_owner(i, &self.project),
                    owned: !i.is_builtin() && i.owned_by(&self.p),
                    membership: self.membership(i),
                    os_hidden: i.properties.get(patch::OS_HIDDEN).map(String::as_str)
                        == Some("true"),
                };
                query.visible(&seen, admin) && query.keeps(&seen)
            })
            .collect();
        images.sort_by(|a, b| query.order(a, b));
        if let Some(marker) = &query.marker {
            match images.iter().position(|i| i.uuid.to_string() == *marker) {
                Some(at) => {
                    images.drain(..=at);
                }
                None => {
                    return fail(400, &format!("marker could not be found: {marker}"));
                }
            }
        }
        images.truncate(query.limit);
        let others: Vec<(String, String)> =
            q.iter().filter(|(k, _)| k != "marker").cloned().collect();
        let encode = |pairs: &[(String, String)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        };
        let first = if others.is_empty() {
            "/v2/images".to_string()
        } else {
            format!("/v2/images?{}", encode(&others))
        };
        let mut body = json!({
            "images": images.iter().map(|i| self.render(i)).collect::<Vec<_>>(),
            "first": first,
            "schema": "/v2/schemas/images",
        });
        // Glance links the next page whenever a page is full.
        if query.limit > 0
            && images.len() == query.limit
            && let Some(last) = images.last()
        {
            let mut next = others.clone();
            next.push(("marker".into(), last.uuid.to_string()));
            if !next.iter().any(|(k, _)| k == "limit") {
                next.push(("limit".into(), query.limit.to_string()));
            }
            body["next"] = json!(format!("/v2/images?{}", encode(&next)));
        }
        Reply::json(200, &body)
    }

    fn show(&self) -> Reply {
        match self.image() {
            Ok(i) => Reply::json(200, &self.render(&i)),
            Err(r) => r,
        }
    }

    async fn create(&self) -> Reply {
        let body = match body_object(self.req.body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        for k in patch::DISALLOWED {
            if body.contains_key(*k) {
                return fail(403, &format!("Attribute '{k}' is read-only."));
            }
        }
        for k in body.keys() {
            if k != "id" && patch::READ_ONLY.contains(&k.as_str()) {
                return fail(403, &format!("Attribute '{k}' is read-only."));
            }
            if patch::RESERVED.contains(&k.as_str()) || k.starts_with(patch::RESERVED_NS) {
                return fail(403, &format!("Attribute '{k}' is reserved."));
            }
        }
        let mut new = NewImage::named("");
        // Glance's default visibility (since Ocata): shared, seen by its members only.
        new.visibility = Visibility::Shared;
        let mut properties = 0;
        let mut owner: Option<String> = None;
        for (k, v) in &body {
            if k == "id" {
                match v.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()) {
                    Some(u) => new.uuid = Some(u),
                    None => {
                        return fail(
                            400,
                            &format!(
                                "Provided object does not match schema 'image': {v} is not a 'uuid'"
                            ),
                        );
                    }
                }
                continue;
            }
            if let Err(e) = patch::check_attribute(k, v) {
                return refused(e);
            }
            match k.as_str() {
                "name" => new.name = v.as_str().unwrap_or_default().to_string(),
                "visibility" => {
                    new.visibility = v
                        .as_str()
                        .and_then(Visibility::from_glance)
                        .unwrap_or(Visibility::Shared)
                }
                "protected" => new.protected = v.as_bool().unwrap_or(false),
                "os_hidden" => {
                    if v.as_bool() == Some(true) {
                        new.properties
                            .insert(patch::OS_HIDDEN.into(), "true".into());
                    }
                }
                "disk_format" => new.disk_format = v.as_str().map(str::to_string),
                "container_format" => new.container_format = v.as_str().map(str::to_string),
                "min_disk" => {
                    new.min_disk = v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
                }
                "min_ram" => {
                    new.min_ram = v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
                }
                "tags" => {
                    for t in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !new.tags.iter().any(|x| x == t) {
                            new.tags.push(t.to_string());
                        }
                    }
                }
                "owner" => {
                    owner = v
                        .as_str()
                        .filter(|o| *o != self.project)
                        .map(str::to_string);
                    if owner.is_some() && !self.p.is_admin {
                        return fail(
                            403,
                            &format!(
                                "You are not permitted to create images owned by '{}'.",
                                v.as_str().unwrap_or_default()
                            ),
                        );
                    }
                }
                "locations" => return fail(403, "The location API is not served."),
                _ => {
                    properties += 1;
                    new.properties
                        .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                }
            }
        }
        if properties > PROPERTIES_PER_IMAGE {
            return fail(
                413,
                &format!(
                    "Maximum number of properties exceeded: at most {PROPERTIES_PER_IMAGE} are allowed."
                ),
            );
        }
        if new.tags.len() > TAGS_PER_IMAGE {
            return fail(
                413,
                &format!("Maximum number of tags exceeded: at most {TAGS_PER_IMAGE} are allowed."),
            );
        }
        // Glance's default policy: only an administrator publicizes an image.
        if new.visibility == Visibility::Public && !self.p.is_admin {
            return fail(
                403,
                "You are not authorized to complete publicize_image action.",
            );
        }
        let id = new.uuid.map(|u| u.to_string()).unwrap_or_default();
        let created = match self.api.engine.create_image(&self.p, new).await {
            // An administrator made it for another project (Glance's `owner`).
            Ok(img) if owner.is_some() => {
                self.api
                    .engine
                    .update_image(&self.p, &img.id, |i| {
                        i.project = owner;
                        Ok(())
                    })
                    .await
            }
            other => other,
        };
        match created {
            Ok(img) => {
                let href = format!("{}/image/v2/images/{}", self.api.base_url(), img.uuid);
                // Glance names the import methods on a create, where clients (openstacksdk's
                // use_import) look for them.
                Reply::json(201, &self.render(&img))
                    .header("location", href)
                    .header(
                        "openstack-image-import-methods",
                        tasks::IMPORT_METHODS.join(","),
                    )
            }
            Err(DomainError::Conflict(_)) => {
                fail(409, &format!("Image with identifier {id} already exists!"))
            }
            Err(e) => domain(e, &id),
        }
    }

    async fn update(&self) -> Reply {
        let accepted = "application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch";
        let Some(draft) = self.req.header("content-type").and_then(patch::draft_of) else {
            return fail(
                415,
                &format!("Image PATCH expects Content-Type one of: {accepted}"),
            )
            .header("accept-patch", accepted);
        };
        let changes = match patch::parse(self.req.body, draft) {
            Ok(c) => c,
            Err(e) => return refused(e),
        };
        if let Err(r) = self.image() {
            return r;
        }
        let admin = self.p.is_admin;
        let publicize = changes.iter().any(|c| {
            c.path == "visibility" && c.value.as_ref().and_then(Value::as_str) == Some("public")
        });
        if publicize && !admin {
            return fail(
                403,
                "You are not authorized to complete publicize_image action.",
            );
        }
        let mut refusal: Option<patch::Refused> = None;
        let result = self
            .api
            .engine
            .update_image(&self.p, self.id(), |img| {
                patch::apply(img, &changes, admin).map_err(|e| {
                    refusal = Some(e);
                    DomainError::InvalidParameter("patch".into())
                })
            })
            .await;
        match (result, refusal) {
            (_, Some(e)) => refused(e),
            (Ok(img), None) => Reply::json(200, &self.render(&img)),
            (Err(DomainError::ImageNotOwned(_)), None) => {
                fail(403, "You are not permitted to modify this image.")
            }
            (Err(e), None) => domain(e, self.id()),
        }
    }

    async fn delete(&self) -> Reply {
        if let Err(r) = self.image() {
            return r;
        }
        match self
            .api
            .engine
            .delete_image(&self.p, self.id(), false)
            .await
        {
            Ok(_) => Reply::empty(204),
            Err(DomainError::ImageNotOwned(_)) => {
                fail(403, "You are not permitted to delete this image.")
            }
            Err(e) => domain(e, self.id()),
        }
    }

    async fn download(&self) -> Reply {
        let img = match self.image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        if img.status == ImageStatus::Deactivated && !self.p.is_admin {
            return fail(
                403,
                "The requested image has been deactivated. Image data download is forbidden.",
            );
        }
        let (Some(data), false) = (&img.data, img.is_builtin()) else {
            return Reply::empty(204);
        };
        if img.status != ImageStatus::Active && img.status != ImageStatus::Deactivated {
            return Reply::empty(204);
        }
        let Some(path) = self.api.engine.image_path(&img.id) else {
            return Reply::empty(204);
        };
        let mut reply = Reply::empty(200);
        reply.content_type = "application/octet-stream";
        reply.file = Some((path, data.size));
        reply
            .header("content-md5", data.md5.clone())
            .header("content-length", data.size.to_string())
    }

    async fn tag(&self, add: bool) -> Reply {
        if let Err(r) = self.image() {
            return r;
        }
        let tag = self.second().to_string();
        if add && tag.chars().count() > 255 {
            return fail(
                400,
                &format!("Provided object does not match schema 'image': '{tag}' is too long"),
            );
        }
        let mut missing = false;
        let result = self
            .api
            .engine
            .update_image(&self.p, self.id(), |img| {
                if add {
                    if !img.tags.contains(&tag) {
                        if img.tags.len() >= TAGS_PER_IMAGE {
                            return Err(DomainError::ImageLimit {
                                what: "tags",
                                limit: TAGS_PER_IMAGE,
                            });
                        }
                        img.tags.push(tag.clone());
                    }
                } else if let Some(at) = img.tags.iter().position(|t| *t == tag) {
                    img.tags.remove(at);
                } else {
                    missing = true;
                    return Err(DomainError::InvalidParameter("tag".into()));
                }
                Ok(())
            })
            .await;
        if missing {
            return fail(404, &format!("Tag {tag} not found."));
        }
        match result {
            Ok(_) => Reply::empty(204),
            Err(e) => domain(e, self.id()),
        }
    }

    /// The image, if it is a shared one (Glance: only shared images have members).
    // The error is the finished Glance answer, returned once per request: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn shared_image(&self) -> Result<Image, Reply> {
        let img = self.image()?;
        if img.visibility != Visibility::Shared {
            return Err(fail(403, "Only shared images have members."));
        }
        Ok(img)
    }

    fn members(&self) -> Reply {
        let img = match self.shared_image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        let owner = img.owned_by(&self.p);
        let me = self.caller_project().unwrap_or_default().to_string();
        let list: Vec<Value> = img
            .members
            .iter()
            .filter(|m| owner || m.project == me)
            .map(|m| member_view(&img, m))
            .collect();
        Reply::json(
            200,
            &json!({"members": list, "schema": "/v2/schemas/members"}),
        )
    }

    fn member_show(&self) -> Reply {
        let img = match self.shared_image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        let who = self.second();
        let mine = self.caller_project() == Some(who);
        match img.members.iter().find(|m| m.project == who) {
            Some(m) if mine || img.owned_by(&self.p) => Reply::json(200, &member_view(&img, m)),
            _ => fail(
                404,
                &format!(
                    "{who} not found in the member list of the image {}.",
                    img.uuid
                ),
            ),
        }
    }

    async fn member_add(&self) -> Reply {
        let body = match body_object(self.req.body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(member) = body
            .get("member")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return fail(400, "Member to be added not specified");
        };
        if member.is_empty() || member.chars().count() > 255 {
            return fail(
                400,
                "Provided object does not match schema 'member': member_id is not valid",
            );
        }
        if let Err(r) = self.shared_image() {
            return r;
        }
        let mut dup = false;
        let result = self
            .api
            .engine
            .update_image(&self.p, self.id(), |img| {
                if img.visibility != Visibility::Shared {
                    return Err(DomainError::InvalidParameter("visibility".into()));
                }
                if img.members.iter().any(|m| m.project == member) {
                    dup = true;
                    return Err(DomainError::Conflict(String::new()));
                }
                if img.members.len() >= MEMBERS_PER_IMAGE {
                    return Err(DomainError::ImageLimit {
                        what: "image members",
                        limit: MEMBERS_PER_IMAGE,
                    });
                }
                let now = now_ms();
                img.members.push(Member {
                    project: member.clone(),
                    status: MemberStatus::Pending,
                    created_ms: now,
                    updated_ms: now,
                });
                Ok(())
            })
            .await;
        if dup {
            return fail(
                409,
                &format!("Member {member} is duplicated for image {}", self.id()),
            );
        }
        match result {
            Ok(img) => match img.members.iter().find(|m| m.project == member) {
                Some(m) => Reply::json(200, &member_view(&img, m)),
                None => fail(500, "the member was not recorded"),
            },
            Err(DomainError::ImageNotOwned(_)) => {
                fail(403, "You are not permitted to add members to this image.")
            }
            Err(e) => domain(e, self.id()),
        }
    }

    async fn member_update(&self) -> Reply {
        let body = match body_object(self.req.body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(status) = body
            .get("status")
            .and_then(Value::as_str)
            .and_then(MemberStatus::from_glance)
        else {
            let got = body
                .get("status")
                .map_or_else(|| "None".into(), Value::to_string);
            return fail(
                400,
                &format!(
                    "Provided object does not match schema 'member': {got} is not one of ['pending', 'accepted', 'rejected']"
                ),
            );
        };
        let img = match self.shared_image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        let who = self.second().to_string();
        if !img.members.iter().any(|m| m.project == who) {
            return fail(
                404,
                &format!(
                    "{who} not found in the member list of the image {}.",
                    img.uuid
                ),
            );
        }
        if self.caller_project() != Some(who.as_str()) {
            return fail(
                403,
                "You are not permitted to modify 'status' on this image member.",
            );
        }
        let result = self
            .api
            .engine
            .update_image_as_member(&self.p, self.id(), |img, project| {
                let m = img
                    .members
                    .iter_mut()
                    .find(|m| m.project == project)
                    .ok_or_else(|| DomainError::NotFound {
                        kind: nubis_core::ResourceKind::Image,
                        id: project.to_string(),
                    })?;
                m.status = status;
                m.updated_ms = now_ms();
                Ok(())
            })
            .await;
        match result {
            Ok(img) => match img.members.iter().find(|m| m.project == who) {
                Some(m) => Reply::json(200, &member_view(&img, m)),
                None => not_found(),
            },
            Err(e) => domain(e, self.id()),
        }
    }

    async fn member_delete(&self) -> Reply {
        let img = match self.shared_image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        let who = self.second().to_string();
        if !img.owned_by(&self.p) {
            return fail(
                403,
                "You are not permitted to delete members of this image.",
            );
        }
        let mut missing = false;
        let result = self
            .api
            .engine
            .update_image(&self.p, self.id(), |img| {
                let before = img.members.len();
                img.members.retain(|m| m.project != who);
                if img.members.len() == before {
                    missing = true;
                    return Err(DomainError::InvalidParameter("member".into()));
                }
                Ok(())
            })
            .await;
        if missing {
            return fail(
                404,
                &format!(
                    "{who} not found in the member list of the image {}.",
                    img.uuid
                ),
            );
        }
        match result {
            Ok(_) => Reply::empty(204),
            Err(e) => domain(e, self.id()),
        }
    }

    async fn deactivate(&self, deactivated: bool) -> Reply {
        let img = match self.image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        match self
            .api
            .engine
            .set_image_deactivated(&self.p, self.id(), deactivated)
            .await
        {
            Ok(_) => Reply::empty(204),
            Err(DomainError::ImageState { status, .. }) => {
                let verb = if deactivated {
                    "deactivate"
                } else {
                    "reactivate"
                };
                fail(
                    400,
                    &format!(
                        "Not allowed to {verb} image in status '{}'",
                        status.glance()
                    ),
                )
            }
            Err(DomainError::ImageNotOwned(_)) => fail(
                403,
                &format!(
                    "Image {} is a built-in image: its status is not changed.",
                    img.uuid
                ),
            ),
            Err(e) => domain(e, self.id()),
        }
    }
}
