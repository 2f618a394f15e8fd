//! Server metadata, `/servers/{id}/metadata[/{key}]`, as Nova serves it
//! (nova/api/openstack/compute/server_metadata.py): list, merge (`POST`), replace (`PUT`),
//! show, set and delete one item. Metadata are the instance's tags, the records the other
//! dialects show as tags. Whether they may change now is core's rule
//! ([`nubis_core::rules::metadata_change`]), checked with the `metadata_items` quota under the
//! fleet lock, so concurrent writers cannot pass the quota together.

use super::{METADATA_ITEMS, Nova, Res, json_body};
use crate::Reply;
use crate::errors::{Fault, map};
use crate::state::{nova_state, task_of};
use nubis_core::{DomainError, Instance, MetadataRefusal, rules};
use serde_json::{Map, Value, json};

/// Nova's key pattern (parameter_types.metadata), as jsonschema quotes it in errors.
const KEY_PATTERN: &str = "^[a-zA-Z0-9-_:. ]{1,255}$";
/// Longest value (the schema's maxLength).
const MAX_VALUE: usize = 255;

fn key_ok(k: &str) -> bool {
    (1..=255).contains(&k.chars().count())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c))
}

/// A JSON value as Python's `repr` prints the decoded value (Nova quotes the offending value
/// that way in its schema errors).
pub(crate) fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => py_str(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}: {}", py_str(k), py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Nova's schema error: `Invalid input for field/attribute <last path element>. Value: <repr>.
/// <jsonschema message>`.
pub(super) fn invalid(field: &str, value: &Value, message: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {}. {message}",
        py_repr(value)
    ))
}

/// A `metadata` object checked against Nova's schema (parameter_types.metadata), in
/// jsonschema's order: the type, each value of a well-formed key, then the keys. `field` is
/// the property holding it (`metadata`, or `meta` for one item).
pub(super) fn parse(field: &str, v: &Value) -> Result<Vec<(String, String)>, Fault> {
    let Value::Object(m) = v else {
        return Err(invalid(
            field,
            v,
            &format!("{} is not of type 'object'", py_repr(v)),
        ));
    };
    for (k, val) in m.iter().filter(|(k, _)| key_ok(k)) {
        match val {
            Value::String(s) if s.chars().count() > MAX_VALUE => {
                return Err(invalid(k, val, &format!("{} is too long", py_repr(val))));
            }
            Value::String(_) => {}
            other => {
                return Err(invalid(
                    k,
                    other,
                    &format!("{} is not of type 'string'", py_repr(other)),
                ));
            }
        }
    }
    let mut bad: Vec<&String> = m.keys().filter(|k| !key_ok(k)).collect();
    if !bad.is_empty() {
        bad.sort();
        let verb = if bad.len() == 1 { "does" } else { "do" };
        let joined = bad.iter().map(|k| py_str(k)).collect::<Vec<_>>().join(", ");
        return Err(invalid(
            field,
            v,
            &format!(
                "{joined} {verb} not match any of the regexes: {}",
                py_str(KEY_PATTERN)
            ),
        ));
    }
    Ok(m.iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// The `metadata_items` quota `quota` (403, compute/api.py
/// `_check_metadata_properties_quota`), under nubis's fixed bound ([`METADATA_ITEMS`]).
pub(super) fn check_quota(items: usize, quota: i64) -> Result<(), Fault> {
    let bound = METADATA_ITEMS.max_count().unwrap_or_default();
    let max = usize::try_from(quota).map_or(bound, |q| q.min(bound));
    if items <= max {
        return Ok(());
    }
    Err(Fault::new(
        METADATA_ITEMS.status,
        format!("Maximum number of metadata items exceeds {max}"),
    ))
}

impl Nova<'_> {
    /// The `metadata_items` quota of the caller's project (and user).
    pub(super) fn metadata_quota(&self) -> i64 {
        (self.api.engine).item_limit(&self.p, nubis_core::ItemQuota::MetadataItems)
    }
}

/// The one-object body `{"<top>": …}` of a metadata write, as Nova's schema checks it:
/// `top` validated, required, and nothing else beside it.
pub(super) fn body_of(body: &Value, top: &str) -> Result<Value, Fault> {
    let Value::Object(o) = body else {
        return Err(Fault::bad_request(format!(
            "{} is not of type 'object'",
            py_repr(body)
        )));
    };
    let inner = o
        .get(top)
        .cloned()
        .ok_or_else(|| Fault::bad_request(format!("'{top}' is a required property")));
    if let Ok(v) = &inner {
        parse(top, v)?;
    }
    let inner = inner?;
    let mut extra: Vec<&String> = o.keys().filter(|k| k.as_str() != top).collect();
    if !extra.is_empty() {
        extra.sort();
        let (list, verb) = (
            extra
                .iter()
                .map(|k| py_str(k))
                .collect::<Vec<_>>()
                .join(", "),
            if extra.len() == 1 { "was" } else { "were" },
        );
        return Err(Fault::bad_request(format!(
            "Additional properties are not allowed ({list} {verb} unexpected)"
        )));
    }
    Ok(inner)
}

/// Why a metadata write failed.
enum WriteError {
    Domain(DomainError),
    Refused(MetadataRefusal, Box<Instance>),
    Fault(Fault),
}

impl From<DomainError> for WriteError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

fn shown(inst: &Instance) -> Map<String, Value> {
    inst.shown_tags()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect()
}

fn as_map(tags: &[(String, String)]) -> Map<String, Value> {
    tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
}

impl Nova<'_> {
    pub(super) fn metadata_list(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        Ok(Reply::json(200, &json!({"metadata": shown(&inst)})))
    }

    pub(super) fn metadata_show(&self, id: &str, key: &str) -> Res {
        let inst = self.server(id)?;
        let value = inst
            .shown_tags()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| Fault::not_found("Metadata item was not found"))?;
        Ok(Reply::json(200, &json!({"meta": {key: value}})))
    }

    /// `POST` merges the given items into the server's, `PUT` replaces them all; both answer
    /// 200 with the metadata now set (`POST`: all of it; `PUT`: the given).
    pub(super) async fn metadata_write(&self, id: &str, replace: bool) -> Res {
        let body = json_body(self.req.body)?;
        let given = parse("metadata", &body_of(&body, "metadata")?)?;
        let inst = self.server(id)?;
        let written = self
            .write_tags(&inst, "update metadata", |current| {
                if replace {
                    given
                } else {
                    merge(current, given)
                }
            })
            .await?;
        let out = if replace {
            as_map(&written)
        } else {
            let now = self.api.engine.instance(inst.uuid);
            now.as_ref().map(shown).unwrap_or_else(|| as_map(&written))
        };
        Ok(Reply::json(200, &json!({"metadata": out})))
    }

    /// `PUT /metadata/{key}` with `{"meta": {key: value}}`.
    pub(super) async fn metadata_set(&self, id: &str, key: &str) -> Res {
        let body = json_body(self.req.body)?;
        let meta = body_of(&body, "meta")?;
        match meta.as_object().map(Map::len) {
            Some(0) => {
                return Err(invalid(
                    "meta",
                    &meta,
                    &format!("{} should be non-empty", py_repr(&meta)),
                ));
            }
            Some(1) => {}
            _ => {
                return Err(invalid(
                    "meta",
                    &meta,
                    &format!("{} has too many properties", py_repr(&meta)),
                ));
            }
        }
        let item = parse("meta", &meta)?;
        let inst = self.server(id)?;
        if !item.iter().any(|(k, _)| k == key) {
            return Err(Fault::bad_request("Request body and URI mismatch"));
        }
        self.write_tags(&inst, "update metadata", |current| merge(current, item))
            .await?;
        Ok(Reply::json(200, &json!({ "meta": meta })))
    }

    pub(super) async fn metadata_delete(&self, id: &str, key: &str) -> Res {
        let inst = self.server(id)?;
        if !inst.tags.iter().any(|(k, _)| k == key) {
            return Err(Fault::not_found("Metadata item was not found"));
        }
        let key = key.to_string();
        self.write_tags(&inst, "delete metadata", |current| {
            current.iter().filter(|(k, _)| *k != key).cloned().collect()
        })
        .await?;
        Ok(Reply::empty(204))
    }

    /// Write the tags `f` computes from the current ones, if core allows a change now and the
    /// result is within the quota (Nova's order: lock, state, quota).
    async fn write_tags(
        &self,
        inst: &Instance,
        what: &str,
        f: impl FnOnce(&[(String, String)]) -> Vec<(String, String)>,
    ) -> Result<Vec<(String, String)>, Fault> {
        let quota = self.metadata_quota();
        let r = self
            .api
            .engine
            .update_tags(&self.p, inst.uuid, |now: &Instance| {
                rules::metadata_change(now)
                    .map_err(|why| WriteError::Refused(why, Box::new(now.clone())))?;
                let tags = f(&now.tags);
                check_quota(tags.len(), quota).map_err(WriteError::Fault)?;
                Ok(tags)
            })
            .await;
        match r {
            Ok(tags) => Ok(tags),
            Err(WriteError::Domain(e)) => Err(map(e, Some(inst.uuid))),
            Err(WriteError::Fault(f)) => Err(f),
            Err(WriteError::Refused(MetadataRefusal::Locked, _)) => {
                Err(Fault::conflict(format!("Instance {} is locked", inst.uuid)))
            }
            Err(WriteError::Refused(MetadataRefusal::Busy { running, .. }, now)) => {
                let n = nova_state(now.state, self.extra(&now).await);
                // Nova checks vm_state first, then that no task runs.
                let (attr, value) = match (n.vm_state, n.task_state) {
                    ("active" | "stopped" | "paused" | "suspended", Some(t)) => ("task_state", t),
                    ("active" | "stopped" | "paused" | "suspended", None) => {
                        ("task_state", running.map(task_of).unwrap_or("None"))
                    }
                    (vm, _) => ("vm_state", vm),
                };
                Err(Fault::conflict(format!(
                    "Cannot '{what}' instance {} while it is in {attr} {value}",
                    inst.uuid
                )))
            }
        }
    }
}

/// `current` updated with `given` (given values win; new keys appended in the order given).
fn merge(current: &[(String, String)], given: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out = current.to_vec();
    for (k, v) in given {
        match out.iter_mut().find(|(ok, _)| *ok == k) {
            Some(slot) => slot.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_reprs() {
        assert_eq!(py_repr(&json!({"a": "b"})), "{'a': 'b'}");
        assert_eq!(py_repr(&json!("it's")), "\"it's\"");
        assert_eq!(py_repr(&json!([1, true, null])), "[1, True, None]");
        assert_eq!(py_repr(&json!("a\\b\n")), "'a\\\\b\\n'");
    }

    #[test]
    fn schema_errors_as_nova_words_them() {
        assert_eq!(
            parse("metadata", &json!([])).unwrap_err().message,
            "Invalid input for field/attribute metadata. Value: []. [] is not of type 'object'"
        );
        assert_eq!(
            parse("metadata", &json!({"k": 1})).unwrap_err().message,
            "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"
        );
        let long = "v".repeat(256);
        assert_eq!(
            parse("metadata", &json!({"k": long})).unwrap_err().message,
            format!("Invalid input for field/attribute k. Value: '{long}'. '{long}' is too long")
        );
        assert_eq!(
            parse("metadata", &json!({"a/b": "x"})).unwrap_err().message,
            "Invalid input for field/attribute metadata. Value: {'a/b': 'x'}. 'a/b' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"
        );
        let k255 = "k".repeat(255);
        assert!(
            parse(
                "metadata",
                &json!({ k255: "v".repeat(255), "a-b_c:d. e": "" })
            )
            .is_ok()
        );
        assert!(parse("metadata", &json!({ "k".repeat(256): "v" })).is_err());
        assert!(parse("metadata", &json!({"": "v"})).is_err());
    }

    #[test]
    fn quota_at_its_boundary() {
        assert!(check_quota(128, 128).is_ok());
        let f = check_quota(129, 128).unwrap_err();
        assert_eq!(
            (f.status, f.message.as_str()),
            (403, "Maximum number of metadata items exceeds 128")
        );
        assert!(check_quota(0, 0).is_ok() && check_quota(1, 0).is_err());
        // Unlimited, or a quota above it: nubis's bound.
        assert!(check_quota(1024, -1).is_ok());
        let f = check_quota(1025, 5000).unwrap_err();
        assert_eq!(f.message, "Maximum number of metadata items exceeds 1024");
    }

    #[test]
    fn merge_keeps_order_and_overrides() {
        let cur = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        let out = merge(
            &cur,
            vec![("b".into(), "3".into()), ("c".into(), "4".into())],
        );
        assert_eq!(
            out,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b".into(), "3".into()),
                ("c".into(), "4".into())
            ]
        );
    }
}
