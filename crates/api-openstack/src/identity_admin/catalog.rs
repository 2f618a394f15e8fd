//! Keystone catalog management: regions, services, endpoints (`/v3/regions`,
//! `/v3/services`, `/v3/endpoints`). Parse, call the engine (`nubis_engine::keystone::
//! catalog`), render Keystone's shapes; the token catalog is built from the same objects.

use super::{Kind, bad, body_obj, ks_bad, one, opt_bool, opt_str, param, q, url, view};
use crate::Reply;
use crate::identity::Ctx;
use nubis_engine::keystone::catalog::{
    ENDPOINT_GROUP_FILTERS, EndpointFields, EndpointGroupFields, NewRegion, PolicyFields,
    RegionPatch, ServiceFields,
};
use nubis_engine::keystone::{Endpoint, EndpointGroup, Policy, Region, Service};
use serde_json::{Map, Value, json};

impl Kind for Region {
    fn fields(r: &Self) -> Value {
        json!({"id": r.id, "description": r.description, "parent_region_id": r.parent_region_id})
    }
    fn listed(qs: &[(String, String)], r: &Self) -> bool {
        q(qs, "parent_region_id").is_none_or(|p| r.parent_region_id.as_deref() == Some(p))
    }
}

impl Kind for Service {
    fn fields(s: &Self) -> Value {
        json!({"id": s.id, "type": s.kind, "name": s.name, "description": s.description,
            "enabled": s.enabled})
    }
    fn listed(qs: &[(String, String)], s: &Self) -> bool {
        q(qs, "type").is_none_or(|t| s.kind == t)
    }
}

impl Kind for Endpoint {
    fn fields(e: &Self) -> Value {
        json!({"id": e.id, "interface": e.interface, "region_id": e.region_id,
            "region": e.region_id, "service_id": e.service_id, "url": e.url,
            "enabled": e.enabled})
    }
    fn listed(qs: &[(String, String)], e: &Self) -> bool {
        q(qs, "interface").is_none_or(|i| e.interface == i)
            && q(qs, "service_id").is_none_or(|s| e.service_id == s)
            && q(qs, "region_id").is_none_or(|r| e.region_id.as_deref() == Some(r))
    }
    fn rebase(j: &mut Value, e: &Self, base: &str) {
        j["url"] = json!(e.url_at(base));
    }
}

type Res = Result<Reply, Box<Reply>>;

/// A body field that may be `null` (to clear it): `Some(None)`.
fn nullable_str(m: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, Box<Reply>> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(bad(
            400,
            &format!("Invalid input for field '{key}': it is not a string."),
        )),
    }
}

fn answer<K: Kind>(c: &Ctx<'_>, status: u16, r: Result<K, nubis_engine::keystone::KsError>) -> Res {
    Ok(one(status, K::KIND, view(c, &r.map_err(ks_bad)?)))
}

async fn run(c: &Ctx<'_>, key: &str, f: impl AsyncFnOnce(Map<String, Value>) -> Res) -> Reply {
    let r = match body_obj(c, key) {
        Ok(m) => f(m).await,
        Err(e) => Err(e),
    };
    r.unwrap_or_else(|e| *e)
}

// -- regions ------------------------------------------------------------------------------

fn region_fields(m: &Map<String, Value>) -> Result<(String, Option<String>), Box<Reply>> {
    Ok((
        opt_str(m, "description")?.unwrap_or_default(),
        opt_str(m, "parent_region_id")?,
    ))
}

/// `POST /v3/regions` (the ID from the body or generated).
pub(crate) async fn create_region(c: &Ctx<'_>) -> Reply {
    run(c, "region", async |m| {
        let id = opt_str(&m, "id")?;
        let (description, parent_region_id) = region_fields(&m)?;
        let new = NewRegion {
            id,
            description,
            parent_region_id,
        };
        answer(c, 201, c.api.engine.ks_create_region(new).await)
    })
    .await
}

/// `PUT /v3/regions/{region_id}`: create with this ID (a body `id` must match).
pub(crate) async fn put_region(c: &Ctx<'_>) -> Reply {
    run(c, "region", async |m| {
        let id = param(c, 0).to_string();
        if opt_str(&m, "id")?.is_some_and(|b| b != id) {
            return Err(bad(
                400,
                "The region ID in the body does not match the ID in the URL.",
            ));
        }
        let (description, parent_region_id) = region_fields(&m)?;
        let new = NewRegion {
            id: Some(id),
            description,
            parent_region_id,
        };
        answer(c, 201, c.api.engine.ks_create_region(new).await)
    })
    .await
}

pub(crate) async fn update_region(c: &Ctx<'_>) -> Reply {
    run(c, "region", async |m| {
        if m.contains_key("id") {
            return Err(bad(
                400,
                "Invalid input for field 'id': it cannot be changed.",
            ));
        }
        let p = RegionPatch {
            description: opt_str(&m, "description")?,
            parent_region_id: nullable_str(&m, "parent_region_id")?,
        };
        answer(c, 200, c.api.engine.ks_update_region(param(c, 0), p).await)
    })
    .await
}

// -- services -----------------------------------------------------------------------------

fn service_fields(m: &Map<String, Value>) -> Result<ServiceFields, Box<Reply>> {
    Ok(ServiceFields {
        kind: opt_str(m, "type")?,
        name: opt_str(m, "name")?,
        description: opt_str(m, "description")?,
        enabled: opt_bool(m, "enabled")?,
    })
}

pub(crate) async fn create_service(c: &Ctx<'_>) -> Reply {
    run(c, "service", async |m| {
        let f = service_fields(&m)?;
        answer(c, 201, c.api.engine.ks_create_service(f).await)
    })
    .await
}

pub(crate) async fn update_service(c: &Ctx<'_>) -> Reply {
    run(c, "service", async |m| {
        let f = service_fields(&m)?;
        answer(c, 200, c.api.engine.ks_update_service(param(c, 0), f).await)
    })
    .await
}

// -- endpoints ----------------------------------------------------------------------------

/// `region_id`, else the legacy `region` (a region it names is created when missing).
fn endpoint_fields(m: &Map<String, Value>) -> Result<EndpointFields, Box<Reply>> {
    let (region_id, legacy_region) = match nullable_str(m, "region_id")? {
        Some(r) => (Some(r), false),
        None => (nullable_str(m, "region")?, true),
    };
    Ok(EndpointFields {
        service_id: opt_str(m, "service_id")?,
        interface: opt_str(m, "interface")?,
        region_id,
        legacy_region,
        url: opt_str(m, "url")?,
        enabled: opt_bool(m, "enabled")?,
    })
}

pub(crate) async fn create_endpoint(c: &Ctx<'_>) -> Reply {
    run(c, "endpoint", async |m| {
        let f = endpoint_fields(&m)?;
        answer(c, 201, c.api.engine.ks_create_endpoint(f).await)
    })
    .await
}

pub(crate) async fn update_endpoint(c: &Ctx<'_>) -> Reply {
    run(c, "endpoint", async |m| {
        let f = endpoint_fields(&m)?;
        answer(
            c,
            200,
            c.api.engine.ks_update_endpoint(param(c, 0), f).await,
        )
    })
    .await
}

/// The catalog a token carries (`GET /v3/auth/catalog` too): every enabled service with its
/// enabled endpoints.
pub(crate) fn token_catalog(c_engine: &nubis_engine::Engine, base: &str) -> Value {
    let items: Vec<Value> = c_engine
        .ks_catalog()
        .into_iter()
        .map(|(s, eps)| {
            let endpoints: Vec<Value> = eps
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id,
                        "interface": e.interface,
                        "region_id": e.region_id,
                        "region": e.region_id,
                        "url": e.url_at(base),
                    })
                })
                .collect();
            json!({"type": s.kind, "name": s.name, "id": s.id, "endpoints": endpoints})
        })
        .collect();
    json!(items)
}

/// `GET /v3/auth/catalog`.
pub(crate) async fn auth_catalog(c: &Ctx<'_>) -> Reply {
    let catalog = token_catalog(&c.api.engine, c.base);
    Reply::json(
        200,
        &json!({"catalog": catalog, "links": {"self": url(c, "auth/catalog"), "previous": null, "next": null}}),
    )
}

// -- policies and endpoint groups ----------------------------------------------------------

impl Kind for Policy {
    fn fields(p: &Self) -> Value {
        json!({"id": p.id, "type": p.kind, "blob": p.blob})
    }
    fn listed(qs: &[(String, String)], p: &Self) -> bool {
        q(qs, "type").is_none_or(|t| p.kind == t)
    }
}

impl Kind for EndpointGroup {
    fn fields(g: &Self) -> Value {
        json!({"id": g.id, "name": g.name, "description": g.description, "filters": g.filters})
    }
}

fn policy_fields(m: &Map<String, Value>) -> Result<PolicyFields, Box<Reply>> {
    Ok(PolicyFields {
        kind: opt_str(m, "type")?,
        blob: opt_str(m, "blob")?,
    })
}

pub(crate) async fn create_policy(c: &Ctx<'_>) -> Reply {
    run(c, "policy", async |m| {
        let f = policy_fields(&m)?;
        answer(c, 201, c.api.engine.ks_save_policy(None, f).await)
    })
    .await
}

pub(crate) async fn update_policy(c: &Ctx<'_>) -> Reply {
    run(c, "policy", async |m| {
        let f = policy_fields(&m)?;
        answer(
            c,
            200,
            c.api.engine.ks_save_policy(Some(param(c, 0)), f).await,
        )
    })
    .await
}

fn group_fields(m: &Map<String, Value>) -> Result<EndpointGroupFields, Box<Reply>> {
    let filters = match m.get("filters") {
        None | Some(Value::Null) => None,
        Some(Value::Object(f)) if f.len() <= ENDPOINT_GROUP_FILTERS.len() => Some(
            f.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(bad(
                        400,
                        "Invalid input for field 'filters': values are strings.",
                    )),
                })
                .collect::<Result<std::collections::BTreeMap<_, _>, _>>()?,
        ),
        Some(_) => {
            return Err(bad(
                400,
                "Invalid input for field 'filters': an object of service_id, region_id, interface.",
            ));
        }
    };
    Ok(EndpointGroupFields {
        name: opt_str(m, "name")?,
        description: opt_str(m, "description")?,
        filters,
    })
}

/// An endpoint group with its OS-EP-FILTER link.
fn group_view(c: &Ctx<'_>, g: &EndpointGroup) -> Value {
    let mut j = EndpointGroup::fields(g);
    j["links"] = json!({"self": url(c, &format!("OS-EP-FILTER/endpoint_groups/{}", g.id))});
    j
}

fn group_answer(
    c: &Ctx<'_>,
    status: u16,
    r: Result<EndpointGroup, nubis_engine::keystone::KsError>,
) -> Res {
    Ok(one(
        status,
        "endpoint_group",
        group_view(c, &r.map_err(ks_bad)?),
    ))
}

pub(crate) async fn create_endpoint_group(c: &Ctx<'_>) -> Reply {
    run(c, "endpoint_group", async |m| {
        let f = group_fields(&m)?;
        group_answer(c, 201, c.api.engine.ks_save_endpoint_group(None, f).await)
    })
    .await
}

pub(crate) async fn update_endpoint_group(c: &Ctx<'_>) -> Reply {
    run(c, "endpoint_group", async |m| {
        let f = group_fields(&m)?;
        group_answer(
            c,
            200,
            c.api
                .engine
                .ks_save_endpoint_group(Some(param(c, 0)), f)
                .await,
        )
    })
    .await
}

pub(crate) async fn show_endpoint_group(c: &Ctx<'_>) -> Reply {
    match c.api.engine.ks_get::<EndpointGroup>(param(c, 0)) {
        Ok(g) => one(200, "endpoint_group", group_view(c, &g)),
        Err(e) => super::ks_err(e),
    }
}

pub(crate) async fn list_endpoint_groups(c: &Ctx<'_>) -> Reply {
    let qs = super::query(c);
    let items: Vec<Value> = c
        .api
        .engine
        .ks_list::<EndpointGroup>()
        .iter()
        .filter(|g| q(&qs, "name").is_none_or(|n| g.name == n))
        .map(|g| group_view(c, g))
        .collect();
    Reply::json(
        200,
        &json!({"endpoint_groups": items, "links": {
            "self": url(c, "OS-EP-FILTER/endpoint_groups"), "previous": null, "next": null}}),
    )
}
