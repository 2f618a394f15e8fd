//! Glance's image PATCH (`application/openstack-images-v2.1-json-patch`, and the draft-4
//! `v2.0` form): the body parsed and every change checked against the image schema before
//! the record is touched, then applied to the registry's record.

use nubis_core::images::{Image, NAME_MAX, PROPERTIES_PER_IMAGE, TAGS_PER_IMAGE, Visibility};
use serde_json::Value;

/// Changes one PATCH may carry.
pub const MAX_CHANGES: usize = 256;
/// Glance's disk formats (`disk_formats` default).
pub const DISK_FORMATS: &[&str] = &[
    "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop",
];
/// Glance's container formats (`container_formats` default).
pub const CONTAINER_FORMATS: &[&str] = &[
    "ami",
    "ari",
    "aki",
    "bare",
    "ovf",
    "ova",
    "docker",
    "compressed",
];
/// Attributes no client writes (`_readonly_properties`).
pub const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "status",
    "checksum",
    "size",
    "virtual_size",
    "direct_url",
    "self",
    "file",
    "schema",
    "id",
    "os_hash_algo",
    "os_hash_value",
];
/// Attributes a create may not name at all (`_disallowed_properties`).
pub const DISALLOWED: &[&str] = &["direct_url", "self", "file", "schema", "stores"];
/// Reserved names (`_reserved_properties`) and the reserved namespace.
pub const RESERVED: &[&str] = &["location", "deleted", "deleted_at"];
pub const RESERVED_NS: &str = "os_glance";
/// The core attributes a client may write (anything else is an additional property).
pub const CORE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "disk_format",
    "container_format",
    "min_disk",
    "min_ram",
    "tags",
    "owner",
    "locations",
];
/// Where nubis keeps Glance's `os_hidden` (a core attribute) in the record's properties.
pub const OS_HIDDEN: &str = "os_hidden";

/// How a refused request is answered: status and Glance's explanation.
pub type Refused = (u16, String);

fn bad(m: impl Into<String>) -> Refused {
    (400, m.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    /// The decoded attribute name (one segment: Glance's depth for everything but locations).
    pub path: String,
    pub value: Option<Value>,
}

/// The PATCH media types: draft 4 (`v2.0`) or draft 10 (`v2.1`).
pub fn draft_of(content_type: &str) -> Option<u8> {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    match ct {
        "application/openstack-images-v2.0-json-patch" => Some(4),
        "application/openstack-images-v2.1-json-patch" => Some(10),
        _ => None,
    }
}

fn decode_pointer(p: &str) -> Result<Vec<String>, Refused> {
    if !p.starts_with('/') {
        return Err(bad(format!("Pointer `{p}` does not start with \"/\".")));
    }
    let rest = &p[1..];
    let segs: Vec<&str> = rest.split('/').collect();
    let inner = segs.len().saturating_sub(1);
    if segs.iter().take(inner).skip(1).any(|s| s.trim().is_empty()) {
        return Err(bad(format!("Pointer `{p}` contains adjacent \"/\".")));
    }
    if p.len() > 1 && p.ends_with('/') {
        return Err(bad(format!("Pointer `{p}` end with \"/\".")));
    }
    if rest.trim() == "/" {
        return Err(bad(format!("Pointer `{p}` does not contains valid token.")));
    }
    let bytes = p.as_bytes();
    let bad_tilde = bytes
        .iter()
        .enumerate()
        .any(|(i, b)| *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')));
    if bad_tilde {
        return Err(bad(format!(
            "Pointer `{p}` contains \"~\" not part of a recognized escape sequence."
        )));
    }
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~").trim().to_string())
        .collect())
}

/// Parse a PATCH body of draft `draft` (4 or 10) into checked changes.
pub fn parse(body: &[u8], draft: u8) -> Result<Vec<Change>, Refused> {
    let body: Value =
        serde_json::from_slice(body).map_err(|_| bad("Malformed JSON in request body."))?;
    let Value::Array(raw) = body else {
        return Err(bad(
            "Request body must be a JSON array of operation objects.",
        ));
    };
    if raw.len() > MAX_CHANGES {
        return Err((
            413,
            format!("A PATCH may carry at most {MAX_CHANGES} operations."),
        ));
    }
    let ops = [Op::Add, Op::Remove, Op::Replace];
    let available = "add, remove, replace";
    let mut out = Vec::with_capacity(raw.len());
    for change in raw {
        let Value::Object(m) = change else {
            return Err(bad("Operations must be JSON objects."));
        };
        let (op, path) = if draft == 4 {
            let mut found = ops.iter().filter(|o| m.contains_key(o.name()));
            let op = *found.next().ok_or_else(|| {
                bad("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
            })?;
            if found.next().is_some() {
                return Err(bad(
                    "Operation objects must contain only one member named \"add\", \"remove\", or \"replace\".",
                ));
            }
            (op, m.get(op.name()).cloned().unwrap_or(Value::Null))
        } else {
            let op = match m.get("op") {
                None => {
                    return Err(bad(format!(
                        "Unable to find `op` in JSON Schema change. It must be one of the following: {available}."
                    )));
                }
                Some(v) => {
                    let s = v.as_str().unwrap_or_default();
                    *ops.iter().find(|o| o.name() == s).ok_or_else(|| {
                        bad(format!(
                            "Invalid operation: `{}`. It must be one of the following: {available}.",
                            v.as_str().map_or_else(|| v.to_string(), str::to_string)
                        ))
                    })?
                }
            };
            let path = m
                .get("path")
                .cloned()
                .ok_or_else(|| bad("Unable to find 'path' in JSON Schema change"))?;
            (op, path)
        };
        let Value::String(path) = path else {
            return Err(bad(format!("Pointer `{path}` does not start with \"/\".")));
        };
        let segs = decode_pointer(&path)?;
        let root = segs.first().cloned().unwrap_or_default();
        if segs.len() != 1 {
            return Err(bad(format!(
                "Invalid JSON pointer for this resource: '/{}'",
                segs.join("/")
            )));
        }
        let value = if op == Op::Remove {
            None
        } else {
            Some(m.get("value").cloned().ok_or_else(|| {
                bad(format!(
                    "Operation \"{}\" requires a member named \"value\".",
                    op.name()
                ))
            })?)
        };
        if READ_ONLY.contains(&root.as_str()) {
            return Err((403, format!("Attribute '{root}' is read-only.")));
        }
        if RESERVED.contains(&root.as_str()) || root.starts_with(RESERVED_NS) {
            return Err((403, format!("Attribute '{root}' is reserved.")));
        }
        if let Some(v) = &value {
            check_attribute(&root, v)?;
        }
        out.push(Change {
            op,
            path: root,
            value,
        });
    }
    Ok(out)
}

fn schema_error(reason: String) -> Refused {
    bad(format!(
        "Provided object does not match schema 'image': {reason}"
    ))
}

fn one_of(v: &Value, allowed: &[&str], nullable: bool) -> Result<(), Refused> {
    match v {
        Value::Null if nullable => Ok(()),
        Value::String(s) if allowed.contains(&s.as_str()) => Ok(()),
        _ => {
            let mut list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
            if nullable {
                list.push("None".into());
            }
            Err(schema_error(format!(
                "{v} is not one of [{}]",
                list.join(", ")
            )))
        }
    }
}

/// Check one attribute's value against Glance's image schema.
pub fn check_attribute(key: &str, v: &Value) -> Result<(), Refused> {
    if key.chars().count() > 255 {
        return Err(bad(
            "Custom property should not be greater than 255 characters.",
        ));
    }
    let not_type = |t: &str| schema_error(format!("{v} is not of type '{t}'"));
    match key {
        "name" => match v {
            Value::Null => Ok(()),
            Value::String(s) if s.chars().count() <= NAME_MAX => Ok(()),
            Value::String(_) => Err(schema_error(format!("{v} is too long"))),
            _ => Err(not_type("string")),
        },
        "owner" => match v {
            Value::Null => Ok(()),
            Value::String(s) if s.chars().count() <= 255 => Ok(()),
            _ => Err(not_type("string")),
        },
        "visibility" => one_of(v, &["community", "public", "private", "shared"], false),
        "protected" | "os_hidden" => v.as_bool().map(drop).ok_or_else(|| not_type("boolean")),
        "disk_format" => one_of(v, DISK_FORMATS, true),
        "container_format" => one_of(v, CONTAINER_FORMATS, true),
        "min_disk" | "min_ram" => match v.as_i64() {
            Some(n) if n < 0 => Err(schema_error(format!("{n} is less than the minimum of 0"))),
            Some(n) if u32::try_from(n).is_err() => Err(schema_error(format!(
                "{n} is greater than the maximum of {}",
                u32::MAX
            ))),
            Some(_) => Ok(()),
            None => Err(not_type("integer")),
        },
        "tags" => {
            let Value::Array(tags) = v else {
                return Err(not_type("array"));
            };
            if tags.len() > TAGS_PER_IMAGE {
                return Err((
                    413,
                    format!(
                        "Maximum number of tags exceeded: at most {TAGS_PER_IMAGE} are allowed."
                    ),
                ));
            }
            for t in tags {
                match t {
                    Value::String(s) if s.chars().count() <= 255 => {}
                    Value::String(_) => return Err(schema_error(format!("{t} is too long"))),
                    _ => return Err(schema_error(format!("{t} is not of type 'string'"))),
                }
            }
            Ok(())
        }
        "locations" => Err((
            403,
            "The location API is not served: images have no external locations here.".into(),
        )),
        _ => match v {
            Value::String(_) => Ok(()),
            _ => Err(schema_error(format!("{v} is not of type 'string'"))),
        },
    }
}

fn tags_of(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in v.as_array().into_iter().flatten().filter_map(Value::as_str) {
        if !out.iter().any(|x| x == t) {
            out.push(t.to_string());
        }
    }
    out
}

/// Set a checked core attribute or property (`add` and `replace`); `None` when `key` is
/// neither (a property to create).
fn set(img: &mut Image, key: &str, v: &Value) {
    match key {
        "name" => img.name = v.as_str().unwrap_or_default().to_string(),
        "visibility" => {
            if let Some(vis) = v.as_str().and_then(Visibility::from_glance) {
                img.visibility = vis;
            }
        }
        "protected" => img.protected = v.as_bool().unwrap_or(false),
        "os_hidden" => {
            if v.as_bool() == Some(true) {
                img.properties.insert(OS_HIDDEN.into(), "true".into());
            } else {
                img.properties.remove(OS_HIDDEN);
            }
        }
        "disk_format" => img.disk_format = v.as_str().map(str::to_string),
        "container_format" => img.container_format = v.as_str().map(str::to_string),
        "min_disk" => img.min_disk = v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        "min_ram" => img.min_ram = v.as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        "tags" => img.tags = tags_of(v),
        "owner" => img.project = v.as_str().map(str::to_string),
        _ => {
            img.properties
                .insert(key.to_string(), v.as_str().unwrap_or_default().to_string());
        }
    }
}

/// Properties a client sees (nubis's own keys aside).
pub fn visible_properties(img: &Image) -> usize {
    img.properties.keys().filter(|k| *k != OS_HIDDEN).count()
}

/// Apply checked changes to `img` as Glance's `_do_add` / `_do_replace` / `_do_remove` do.
pub fn apply(img: &mut Image, changes: &[Change], admin: bool) -> Result<(), Refused> {
    for c in changes {
        let key = c.path.as_str();
        let core = CORE.contains(&key);
        match (c.op, &c.value) {
            (Op::Remove, _) => {
                if core {
                    return Err((403, format!("Property {key} may not be removed.")));
                }
                if img.properties.remove(key).is_none() {
                    return Err((409, format!("Property {key} does not exist.")));
                }
            }
            (op, Some(v)) => {
                if key == "owner" && !admin {
                    return Err((403, "Owner can't be updated by non admin.".into()));
                }
                if !core && op == Op::Replace && !img.properties.contains_key(key) {
                    return Err((409, format!("Property {key} does not exist.")));
                }
                set(img, key, v);
            }
            (_, None) => return Err(bad("Operation requires a member named \"value\".")),
        }
    }
    if visible_properties(img) > PROPERTIES_PER_IMAGE {
        return Err((
            413,
            format!(
                "Maximum number of properties exceeded: at most {PROPERTIES_PER_IMAGE} are allowed."
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn img() -> Image {
        Image {
            account: Some("a".into()),
            protected: false,
            ..Image::builtin(&nubis_core::catalog::IMAGES[0])
        }
    }

    fn p(v: Value) -> Result<Vec<Change>, Refused> {
        parse(&serde_json::to_vec(&v).unwrap(), 10)
    }

    #[test]
    fn media_types() {
        assert_eq!(
            draft_of("application/openstack-images-v2.1-json-patch"),
            Some(10)
        );
        assert_eq!(
            draft_of("application/openstack-images-v2.0-json-patch"),
            Some(4)
        );
        assert_eq!(draft_of("application/json"), None);
    }

    #[test]
    fn parses_draft_10_and_4() {
        let c = p(json!([{"op": "replace", "path": "/name", "value": "x"},
                         {"op": "add", "path": "/a~1b~0c", "value": "v"},
                         {"op": "remove", "path": "/k"}]))
        .unwrap();
        assert_eq!(c.len(), 3);
        assert_eq!(c[1].path, "a/b~c");
        assert_eq!(c[2].value, None);
        let d4 = parse(br#"[{"replace": "/name", "value": "y"}]"#, 4).unwrap();
        assert_eq!(d4[0].op, Op::Replace);
        assert!(parse(br#"[{"replace": "/name", "add": "/x", "value": "y"}]"#, 4).is_err());
    }

    #[test]
    fn refusals_are_glances() {
        let e = |v: Value| p(v).unwrap_err();
        assert_eq!(
            e(json!({})).1,
            "Request body must be a JSON array of operation objects."
        );
        assert_eq!(e(json!([1])).1, "Operations must be JSON objects.");
        assert_eq!(
            e(json!([{"op": "move", "path": "/a"}])).1,
            "Invalid operation: `move`. It must be one of the following: add, remove, replace."
        );
        assert_eq!(e(json!([{"path": "/a"}])).0, 400);
        assert_eq!(
            e(json!([{"op": "add", "path": "/a"}])).1,
            "Operation \"add\" requires a member named \"value\"."
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "a", "value": "v"}])).1,
            "Pointer `a` does not start with \"/\"."
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/a/", "value": "v"}])).0,
            400
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/a~2", "value": "v"}])).0,
            400
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/a/b", "value": "v"}])).1,
            "Invalid JSON pointer for this resource: '/a/b'"
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "/status", "value": "active"}])),
            (403, "Attribute 'status' is read-only.".into())
        );
        assert_eq!(
            e(json!([{"op": "add", "path": "/os_glance_x", "value": "v"}])),
            (403, "Attribute 'os_glance_x' is reserved.".into())
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "/disk_format", "value": "bogus"}])).0,
            400
        );
        assert_eq!(
            e(json!([{"op": "replace", "path": "/min_ram", "value": -1}])).0,
            400
        );
        assert_eq!(e(json!([{"op": "add", "path": "/k", "value": 5}])).0, 400);
        assert_eq!(parse(b"not json", 10).unwrap_err().0, 400);
    }

    #[test]
    fn applies_as_glance() {
        let mut i = img();
        let c = p(json!([{"op": "replace", "path": "/name", "value": "n"},
                         {"op": "add", "path": "/k", "value": "v"},
                         {"op": "replace", "path": "/os_hidden", "value": true},
                         {"op": "add", "path": "/tags", "value": ["a", "a", "b"]}]))
        .unwrap();
        apply(&mut i, &c, false).unwrap();
        assert_eq!(i.name, "n");
        assert_eq!(i.properties.get("k").map(String::as_str), Some("v"));
        assert_eq!(i.tags, vec!["a", "b"]);
        assert_eq!(
            i.properties.get(OS_HIDDEN).map(String::as_str),
            Some("true")
        );
        let rm = p(json!([{"op": "remove", "path": "/missing"}])).unwrap();
        assert_eq!(apply(&mut i, &rm, false).unwrap_err().0, 409);
        let rm = p(json!([{"op": "remove", "path": "/name"}])).unwrap();
        assert_eq!(apply(&mut i, &rm, false).unwrap_err().0, 403);
        let owner = p(json!([{"op": "replace", "path": "/owner", "value": "x"}])).unwrap();
        assert_eq!(apply(&mut i, &owner, false).unwrap_err().0, 403);
        let rep = p(json!([{"op": "replace", "path": "/nope", "value": "x"}])).unwrap();
        assert_eq!(apply(&mut i, &rep, false).unwrap_err().0, 409);
    }
}
