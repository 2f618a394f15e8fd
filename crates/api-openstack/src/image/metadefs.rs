//! Glance's metadata definitions API (`/v2/metadefs/...`, docs/images.md "Metadata
//! definitions"): namespaces and the objects, properties, tags and resource-type associations
//! defined in them, and the resource types. This module checks Glance's schemas and renders;
//! who sees a namespace, names, protection and limits are `nubis_core::metadefs`', the
//! conditional writes the engine's.

use super::{Ctx, fail};
use crate::Reply;
use crate::render::glance_time;
use nubis_core::metadefs::{
    Entry, Kind, MetadefError, NAME_MAX, Namespace, NsVisibility, check_name,
};
use serde_json::{Map, Value, json};

/// A metadefs operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md {
    List,
    Create,
    Show,
    Update,
    Delete,
    /// The definitions of a kind in a namespace.
    Entries(Kind),
    /// Add one (`POST .../objects`, `.../properties`, `.../resource_types`, `.../tags/{tag}`).
    Add(Kind),
    /// Delete every one of a kind.
    Clear(Kind),
    EntryShow(Kind),
    EntryUpdate(Kind),
    EntryDelete(Kind),
    /// `POST .../tags`: several tags at once.
    TagsCreate,
    ResourceTypes,
}

type Refusal = Box<Reply>;

fn error(e: MetadefError) -> Reply {
    match e {
        MetadefError::NotFound(m) => fail(404, &m),
        MetadefError::Conflict(m) => fail(409, &m),
        MetadefError::Protected(m) | MetadefError::Forbidden(m) => fail(403, &m),
        MetadefError::TooMany(m) => fail(413, &m),
        MetadefError::Invalid(m) => fail(400, &m),
        MetadefError::Unavailable(m) => fail(503, &m),
    }
}

fn bad(m: impl AsRef<str>) -> Refusal {
    Box::new(fail(400, m.as_ref()))
}

fn object(body: &[u8], schema: &str) -> Result<Map<String, Value>, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("Body expected in request."));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad(format!(
            "Provided object does not match schema '{schema}': the body must be an object"
        ))),
        Err(_) => Err(bad("Malformed JSON in request body.")),
    }
}

/// Attributes Glance shows but ignores when sent back.
const READ_ONLY: &[&str] = &["created_at", "updated_at", "schema", "self"];

/// Refuses keys outside `allowed` (read-only ones dropped) like Glance's jsonschema check.
fn only(m: &mut Map<String, Value>, schema: &str, allowed: &[&str]) -> Result<(), Refusal> {
    m.retain(|k, _| !READ_ONLY.contains(&k.as_str()));
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!(
            "Provided object does not match schema '{schema}': Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(())
}

fn string(
    m: &Map<String, Value>,
    key: &str,
    schema: &str,
    max: usize,
) -> Result<Option<String>, Refusal> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(bad(format!(
            "Provided object does not match schema '{schema}': '{key}' is too long (at most {max} characters)"
        ))),
        Some(v) => Err(bad(format!(
            "Provided object does not match schema '{schema}': {v} is not of type 'string'"
        ))),
    }
}

fn required(
    m: &Map<String, Value>,
    key: &str,
    schema: &str,
    max: usize,
) -> Result<String, Refusal> {
    string(m, key, schema, max)?.ok_or_else(|| {
        bad(format!(
            "Provided object does not match schema '{schema}': '{key}' is a required property"
        ))
    })
}

const PROPERTY_KEYS: &[&str] = &[
    "name",
    "title",
    "description",
    "operators",
    "type",
    "required",
    "minimum",
    "maximum",
    "maxLength",
    "minLength",
    "pattern",
    "enum",
    "readonly",
    "default",
    "items",
    "maxItems",
    "minItems",
    "uniqueItems",
    "additionalItems",
];
const PROPERTY_TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// A property definition's body (without its name) checked against Glance's schema.
fn property_body(mut m: Map<String, Value>) -> Result<Map<String, Value>, Refusal> {
    only(&mut m, "property", PROPERTY_KEYS)?;
    required(&m, "title", "property", 255)?;
    match m.get("type") {
        Some(Value::String(t)) if PROPERTY_TYPES.contains(&t.as_str()) => {}
        Some(Value::Null) => {}
        Some(v) => {
            return Err(bad(format!(
                "Provided object does not match schema 'property': {v} is not one of {PROPERTY_TYPES:?}"
            )));
        }
        None => {
            return Err(bad(
                "Provided object does not match schema 'property': 'type' is a required property",
            ));
        }
    }
    for key in ["enum", "required", "operators"] {
        if m.get(key).is_some_and(|v| !v.is_array()) {
            return Err(bad(format!(
                "Provided object does not match schema 'property': '{key}' is not of type 'array'"
            )));
        }
    }
    m.remove("name");
    Ok(m)
}

/// `{"name": body}` property maps (a namespace's or an object's).
fn property_map(v: Option<&Value>) -> Result<Map<String, Value>, Refusal> {
    match v {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(props)) => {
            let mut out = Map::new();
            for (name, body) in props {
                check_name("property", name, NAME_MAX).map_err(|e| Box::new(error(e)))?;
                let Value::Object(b) = body else {
                    return Err(bad(
                        "Provided object does not match schema 'property': a property must be an object",
                    ));
                };
                out.insert(name.clone(), Value::Object(property_body(b.clone())?));
            }
            Ok(out)
        }
        Some(_) => Err(bad(
            "Provided object does not match schema 'namespace': 'properties' is not of type 'object'",
        )),
    }
}

fn entry(name: String, body: Map<String, Value>, now: i64) -> Entry {
    Entry {
        name,
        body,
        created_ms: now,
        updated_ms: now,
    }
}

fn object_entry(mut m: Map<String, Value>, now: i64) -> Result<Entry, Refusal> {
    only(
        &mut m,
        "object",
        &["name", "description", "required", "properties"],
    )?;
    let name = required(&m, "name", "object", NAME_MAX)?;
    let mut body = Map::new();
    if let Some(d) = string(&m, "description", "object", 500)? {
        body.insert("description".into(), d.into());
    }
    match m.get("required") {
        None | Some(Value::Null) => {}
        Some(Value::Array(r)) if r.iter().all(Value::is_string) => {
            body.insert("required".into(), Value::Array(r.clone()));
        }
        Some(_) => {
            return Err(bad(
                "Provided object does not match schema 'object': 'required' is not an array of strings",
            ));
        }
    }
    let props = property_map(m.get("properties"))?;
    if !props.is_empty() {
        body.insert("properties".into(), Value::Object(props));
    }
    Ok(entry(name, body, now))
}

fn association_entry(mut m: Map<String, Value>, now: i64) -> Result<Entry, Refusal> {
    const S: &str = "resource_type_association";
    only(&mut m, S, &["name", "prefix", "properties_target"])?;
    let name = required(&m, "name", S, NAME_MAX)?;
    let mut body = Map::new();
    for key in ["prefix", "properties_target"] {
        if let Some(v) = string(&m, key, S, NAME_MAX)? {
            body.insert(key.into(), v.into());
        }
    }
    Ok(entry(name, body, now))
}

fn tag_entry(mut m: Map<String, Value>, now: i64) -> Result<Entry, Refusal> {
    only(&mut m, "tag", &["name"])?;
    Ok(entry(required(&m, "name", "tag", 255)?, Map::new(), now))
}

fn ns_path(ns: &str) -> String {
    format!("/v2/metadefs/namespaces/{ns}")
}

fn times(v: &mut Map<String, Value>, e: &Entry) {
    v.insert("created_at".into(), glance_time(e.created_ms).into());
    v.insert("updated_at".into(), glance_time(e.updated_ms).into());
}

fn view(ns: &Namespace, kind: Kind, e: &Entry) -> Value {
    let mut v = Map::new();
    v.insert("name".into(), e.name.clone().into());
    match kind {
        Kind::Property => {
            v.extend(e.body.clone());
            return Value::Object(v);
        }
        Kind::Object => {
            v.extend(e.body.clone());
            v.entry("required").or_insert_with(|| json!([]));
            v.entry("properties").or_insert_with(|| json!({}));
            v.insert("schema".into(), "/v2/schemas/metadefs/object".into());
            v.insert(
                "self".into(),
                format!("{}/objects/{}", ns_path(&ns.namespace), e.name).into(),
            );
        }
        Kind::Tag => {}
        Kind::Association => v.extend(e.body.clone()),
    }
    times(&mut v, e);
    Value::Object(v)
}

fn properties_view(entries: &[Entry]) -> Value {
    Value::Object(
        entries
            .iter()
            .map(|e| (e.name.clone(), Value::Object(e.body.clone())))
            .collect(),
    )
}

/// A namespace as Glance shows it; `full`: with its objects, properties and tags (show).
fn namespace_view(ns: &Namespace, full: bool) -> Value {
    let mut v = json!({
        "namespace": ns.namespace,
        "visibility": ns.visibility.as_str(),
        "protected": ns.protected,
        "owner": ns.owner,
        "created_at": glance_time(ns.created_ms),
        "updated_at": glance_time(ns.updated_ms),
        "schema": "/v2/schemas/metadefs/namespace",
        "self": ns_path(&ns.namespace),
    });
    if let Some(d) = &ns.display_name {
        v["display_name"] = d.clone().into();
    }
    if let Some(d) = &ns.description {
        v["description"] = d.clone().into();
    }
    if !ns.associations.is_empty() {
        v["resource_type_associations"] = ns
            .associations
            .iter()
            .map(|e| view(ns, Kind::Association, e))
            .collect();
    }
    if full {
        if !ns.properties.is_empty() {
            v["properties"] = properties_view(&ns.properties);
        }
        if !ns.objects.is_empty() {
            v["objects"] = ns
                .objects
                .iter()
                .map(|e| view(ns, Kind::Object, e))
                .collect();
        }
        if !ns.tags.is_empty() {
            v["tags"] = ns.tags.iter().map(|e| view(ns, Kind::Tag, e)).collect();
        }
    }
    v
}

const NAMESPACE_KEYS: &[&str] = &[
    "namespace",
    "display_name",
    "description",
    "visibility",
    "protected",
    "owner",
    "resource_type_associations",
    "properties",
    "objects",
    "tags",
];

/// The namespace-level attributes of a create or update body, applied to `ns`.
fn apply_attributes(ns: &mut Namespace, m: &Map<String, Value>) -> Result<(), Refusal> {
    const S: &str = "namespace";
    ns.namespace = required(m, "namespace", S, NAME_MAX)?;
    if let Some(d) = string(m, "display_name", S, NAME_MAX)? {
        ns.display_name = Some(d);
    }
    if let Some(d) = string(m, "description", S, 500)? {
        ns.description = Some(d);
    }
    if let Some(o) = string(m, "owner", S, 255)? {
        ns.owner = o;
    }
    if let Some(v) = string(m, "visibility", S, 16)? {
        ns.visibility = NsVisibility::parse(&v).ok_or_else(|| {
            bad(format!(
                "Provided object does not match schema '{S}': '{v}' is not one of ['public', 'private']"
            ))
        })?;
    }
    match m.get("protected") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => ns.protected = *b,
        Some(v) => {
            return Err(bad(format!(
                "Provided object does not match schema '{S}': {v} is not of type 'boolean'"
            )));
        }
    }
    Ok(())
}

fn array<'a>(m: &'a Map<String, Value>, key: &str, schema: &str) -> Result<&'a [Value], Refusal> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(bad(format!(
            "Provided object does not match schema '{schema}': '{key}' is not of type 'array'"
        ))),
    }
}

fn as_object(v: &Value, schema: &str) -> Result<Map<String, Value>, Refusal> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(bad(format!(
            "Provided object does not match schema '{schema}': an item must be an object"
        ))),
    }
}

fn lift<T>(r: Result<T, MetadefError>) -> Result<T, Refusal> {
    r.map_err(|e| Box::new(error(e)))
}

/// A new namespace from a create body (its definitions inside).
fn new_namespace(m: &mut Map<String, Value>, owner: &str, now: i64) -> Result<Namespace, Refusal> {
    only(m, "namespace", NAMESPACE_KEYS)?;
    let mut ns = Namespace::new(
        uuid::Uuid::new_v4().to_string(),
        String::new(),
        owner.to_string(),
        now,
    );
    apply_attributes(&mut ns, m)?;
    lift(check_name("namespace", &ns.namespace, NAME_MAX))?;
    for a in array(m, "resource_type_associations", "namespace")? {
        let e = association_entry(as_object(a, "resource_type_association")?, now)?;
        lift(ns.add(Kind::Association, e).map(drop))?;
    }
    for o in array(m, "objects", "namespace")? {
        let e = object_entry(as_object(o, "object")?, now)?;
        lift(ns.add(Kind::Object, e).map(drop))?;
    }
    for t in array(m, "tags", "namespace")? {
        let e = tag_entry(as_object(t, "tag")?, now)?;
        lift(ns.add(Kind::Tag, e).map(drop))?;
    }
    for (name, body) in property_map(m.get("properties"))? {
        let Value::Object(b) = body else { continue };
        lift(ns.add(Kind::Property, entry(name, b, now)).map(drop))?;
    }
    Ok(ns)
}

fn path_for(kind: Kind) -> &'static str {
    match kind {
        Kind::Object => "objects",
        Kind::Property => "properties",
        Kind::Tag => "tags",
        Kind::Association => "resource_type_associations",
    }
}

/// The list query's filters and page.
struct ListQuery {
    visibility: Option<NsVisibility>,
    resource_types: Vec<String>,
    limit: usize,
    marker: Option<String>,
    sort_key: String,
    desc: bool,
}

const LIST_MAX: usize = 1000;

fn list_query(q: &[(String, String)]) -> Result<ListQuery, Refusal> {
    let mut out = ListQuery {
        visibility: None,
        resource_types: Vec::new(),
        limit: LIST_MAX,
        marker: None,
        sort_key: "created_at".into(),
        desc: true,
    };
    for (k, v) in q {
        match k.as_str() {
            "visibility" => {
                out.visibility = Some(
                    NsVisibility::parse(v)
                        .ok_or_else(|| bad(format!("Invalid visibility value: {v}")))?,
                );
            }
            "resource_types" => {
                out.resource_types = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .take(64)
                    .map(String::from)
                    .collect();
            }
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("limit param must be an integer"))?;
                if n < 0 {
                    return Err(bad("limit param must be positive"));
                }
                out.limit = usize::try_from(n).unwrap_or(LIST_MAX).min(LIST_MAX);
            }
            "marker" => out.marker = Some(v.clone()),
            "sort_key" => {
                if !["created_at", "updated_at", "namespace", "display_name"].contains(&v.as_str())
                {
                    return Err(bad(format!("Invalid sort key: {v}.")));
                }
                out.sort_key = v.clone();
            }
            "sort_dir" => match v.as_str() {
                "asc" => out.desc = false,
                "desc" => out.desc = true,
                _ => return Err(bad(format!("Invalid sort direction: {v}"))),
            },
            _ => {}
        }
    }
    Ok(out)
}

impl Ctx<'_> {
    fn ns_name(&self) -> &str {
        self.params.first().map_or("", String::as_str)
    }

    fn item_name(&self) -> &str {
        self.params.get(1).map_or("", String::as_str)
    }

    pub(crate) async fn metadef(&self, md: Md) -> Reply {
        match self.metadef_inner(md).await {
            Ok(r) => r,
            Err(r) => *r,
        }
    }

    async fn metadef_inner(&self, md: Md) -> Result<Reply, Refusal> {
        let engine = &self.api.engine;
        let now = super::now_ms();
        let name = self.ns_name().to_string();
        match md {
            Md::List => self.namespace_list().await,
            Md::Create => {
                let mut m = object(self.req.body, "namespace")?;
                let ns = new_namespace(&mut m, &self.project, now)?;
                let ns = lift(engine.create_metadef_namespace(ns).await)?;
                Ok(Reply::json(201, &namespace_view(&ns, true)))
            }
            Md::Show => {
                let ns = lift(engine.metadef_namespace(&self.p, &name).await)?;
                Ok(Reply::json(200, &namespace_view(&ns, true)))
            }
            Md::Update => {
                let mut m = object(self.req.body, "namespace")?;
                only(&mut m, "namespace", NAMESPACE_KEYS)?;
                let mut probe = Namespace::new(String::new(), String::new(), String::new(), now);
                apply_attributes(&mut probe, &m)?;
                let (ns, ()) = lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| {
                            // Checked on `probe` above: this cannot refuse.
                            apply_attributes(ns, &m).map_err(|_| {
                                MetadefError::Invalid("Invalid namespace attributes.".into())
                            })
                        })
                        .await,
                )?;
                Ok(Reply::json(200, &namespace_view(&ns, false)))
            }
            Md::Delete => {
                lift(engine.delete_metadef_namespace(&self.p, &name).await)?;
                Ok(Reply::empty(204))
            }
            Md::Entries(kind) => {
                let ns = lift(engine.metadef_namespace(&self.p, &name).await)?;
                let list = ns.entries(kind);
                let body = match kind {
                    Kind::Property => json!({"properties": properties_view(list)}),
                    Kind::Object => json!({
                        "objects": list.iter().map(|e| view(&ns, kind, e)).collect::<Vec<_>>(),
                        "schema": "v2/schemas/metadefs/objects",
                    }),
                    Kind::Tag | Kind::Association => json!({
                        path_for(kind): list.iter().map(|e| view(&ns, kind, e)).collect::<Vec<_>>(),
                    }),
                };
                Ok(Reply::json(200, &body))
            }
            Md::Add(kind) => {
                let e = match kind {
                    // The tag's name is the path's; no body is read.
                    Kind::Tag => entry(self.item_name().to_string(), Map::new(), now),
                    Kind::Object => object_entry(object(self.req.body, "object")?, now)?,
                    Kind::Association => {
                        association_entry(object(self.req.body, "resource_type_association")?, now)?
                    }
                    Kind::Property => {
                        let m = object(self.req.body, "property")?;
                        let name = required(&m, "name", "property", NAME_MAX)?;
                        entry(name, property_body(m)?, now)
                    }
                };
                let (ns, added) = lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| {
                            ns.add(kind, e.clone()).cloned()
                        })
                        .await,
                )?;
                Ok(Reply::json(201, &view(&ns, kind, &added)))
            }
            Md::Clear(kind) => {
                lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| ns.clear(kind))
                        .await,
                )?;
                Ok(Reply::empty(204))
            }
            Md::EntryShow(kind) => {
                let ns = lift(engine.metadef_namespace(&self.p, &name).await)?;
                let item = self.item_name();
                let found = match ns.entry(kind, item) {
                    Ok(e) => e,
                    // `?resource_type=`: the name carries that association's prefix.
                    Err(miss) => self
                        .unprefixed(&ns, item)
                        .and_then(|n| ns.entry(kind, &n).ok())
                        .ok_or_else(|| Box::new(error(miss)))?,
                };
                Ok(Reply::json(200, &view(&ns, kind, found)))
            }
            Md::EntryUpdate(kind) => {
                let old = self.item_name().to_string();
                let e = match kind {
                    Kind::Tag => tag_entry(object(self.req.body, "tag")?, now)?,
                    Kind::Object => object_entry(object(self.req.body, "object")?, now)?,
                    Kind::Property => {
                        let m = object(self.req.body, "property")?;
                        let name = required(&m, "name", "property", NAME_MAX)?;
                        entry(name, property_body(m)?, now)
                    }
                    Kind::Association => return Ok(super::not_allowed()),
                };
                let (ns, changed) = lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| {
                            ns.replace(kind, &old, e.clone()).cloned()
                        })
                        .await,
                )?;
                Ok(Reply::json(200, &view(&ns, kind, &changed)))
            }
            Md::EntryDelete(kind) => {
                let item = self.item_name().to_string();
                lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| {
                            ns.remove(kind, &item).map(drop)
                        })
                        .await,
                )?;
                Ok(Reply::empty(204))
            }
            Md::TagsCreate => {
                let mut m = object(self.req.body, "tags")?;
                only(&mut m, "tags", &["tags"])?;
                let mut tags = Vec::new();
                for t in array(&m, "tags", "tags")?
                    .iter()
                    .take(nubis_core::metadefs::ITEMS_PER_NAMESPACE + 1)
                {
                    tags.push(tag_entry(as_object(t, "tag")?, now)?);
                }
                let append = self
                    .req
                    .header("x-openstack-append")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"));
                let (ns, ()) = lift(
                    engine
                        .change_metadef_namespace(&self.p, &name, |ns| {
                            ns.set_tags(tags.clone(), append)
                        })
                        .await,
                )?;
                let names: Vec<Value> = ns
                    .tags
                    .iter()
                    .filter(|t| tags.iter().any(|n| n.name == t.name))
                    .map(|t| json!({"name": t.name}))
                    .collect();
                Ok(Reply::json(201, &json!({"tags": names})))
            }
            Md::ResourceTypes => {
                let names = lift(engine.metadef_resource_types(&self.p).await)?;
                let epoch = glance_time(0);
                let list: Vec<Value> = names
                    .into_iter()
                    .map(|n| json!({"name": n, "created_at": epoch, "updated_at": epoch}))
                    .collect();
                Ok(Reply::json(200, &json!({"resource_types": list})))
            }
        }
    }

    /// The name without the prefix of the association `?resource_type=` names.
    fn unprefixed(&self, ns: &Namespace, name: &str) -> Option<String> {
        let q = self.req.query();
        let rt = q.iter().find(|(k, _)| k == "resource_type")?.1.clone();
        let assoc = ns.associations.iter().find(|a| a.name == rt)?;
        let prefix = assoc.body.get("prefix")?.as_str()?;
        name.strip_prefix(prefix).map(String::from)
    }

    async fn namespace_list(&self) -> Result<Reply, Refusal> {
        let q = self.req.query();
        let query = list_query(&q)?;
        let mut all = lift(self.api.engine.metadef_namespaces(&self.p).await)?;
        all.retain(|n| {
            query.visibility.is_none_or(|v| n.visibility == v)
                && (query.resource_types.is_empty()
                    || n.has_resource_type(
                        &query
                            .resource_types
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>(),
                    ))
        });
        let key = |n: &Namespace| -> (String, i64) {
            match query.sort_key.as_str() {
                "namespace" => (n.namespace.clone(), 0),
                "display_name" => (n.display_name.clone().unwrap_or_default(), 0),
                "updated_at" => (String::new(), n.updated_ms),
                _ => (String::new(), n.created_ms),
            }
        };
        all.sort_by(|a, b| {
            let o = key(a)
                .cmp(&key(b))
                .then_with(|| a.namespace.cmp(&b.namespace));
            if query.desc { o.reverse() } else { o }
        });
        if let Some(marker) = &query.marker {
            match all.iter().position(|n| &n.namespace == marker) {
                Some(at) => {
                    all.drain(..=at);
                }
                None => {
                    return Err(Box::new(fail(
                        404,
                        &format!("Metadata definition namespace={marker} was not found."),
                    )));
                }
            }
        }
        let full = all.len() > query.limit;
        all.truncate(query.limit);
        let mut body = json!({
            "namespaces": all.iter().map(|n| namespace_view(n, false)).collect::<Vec<_>>(),
            "first": "/v2/metadefs/namespaces",
            "schema": "/v2/schemas/metadefs/namespaces",
        });
        if full && let Some(last) = all.last() {
            body["next"] = format!(
                "/v2/metadefs/namespaces?marker={}&limit={}",
                form_urlencoded::byte_serialize(last.namespace.as_bytes()).collect::<String>(),
                query.limit
            )
            .into();
        }
        Ok(Reply::json(200, &body))
    }
}
