//! Server tags, `/servers/{id}/tags[/{tag}]` (microversion 2.26+), as Nova serves them
//! (nova/api/openstack/compute/server_tags.py): list, replace all, delete all, check one,
//! add one, delete one. A Nova tag is the key of one of the instance's tags, the records the
//! other dialects show as tags and Nova as metadata (docs/tags.md): adding a tag adds the key
//! with an empty value (a key already there keeps its value), deleting one removes the key.
//! When they may change is core's rule ([`nubis_core::rules::server_tags_change`]), checked
//! with the per-server limit under the fleet lock.

use super::metadata::{invalid, py_repr, py_str};
use super::{Nova, Res, json_body};
use crate::Reply;
use crate::errors::{Fault, map};
use crate::state::nova_state;
use nubis_core::{DomainError, Instance, rules};
use serde_json::{Value, json};

/// Tags per server (nova.objects.instance.MAX_TAG_COUNT).
pub(super) const MAX_TAGS: usize = 50;
/// Longest tag (parameter_types.tag maxLength).
const MAX_TAG_LEN: usize = 60;
/// The tag pattern, as jsonschema quotes it.
const TAG_PATTERN: &str = "^[^,/]*$";
/// The first microversion with server tags.
pub(super) const MIN_MINOR: u16 = 26;

/// Why `tag` breaks Nova's tag schema (jsonschema's message), if it does.
fn tag_error(tag: &Value) -> Option<String> {
    let Value::String(s) = tag else {
        return Some(format!("{} is not of type 'string'", py_repr(tag)));
    };
    let n = s.chars().count();
    if n < 1 {
        Some(format!("{} is too short", py_str(s)))
    } else if n > MAX_TAG_LEN {
        Some(format!("{} is too long", py_str(s)))
    } else if s.contains(['/', ',']) {
        Some(format!(
            "{} does not match {}",
            py_str(s),
            py_str(TAG_PATTERN)
        ))
    } else {
        None
    }
}

/// The `{"tags": [...]}` body of a replace, checked as Nova's schema does: an object with
/// `tags` required and nothing else, an array of at most 50 valid tags. Duplicates are kept
/// once, in first-seen order.
pub(super) fn parse_list(v: &Value, field: &str) -> Result<Vec<String>, Fault> {
    let Value::Array(items) = v else {
        return Err(invalid(
            field,
            v,
            &format!("{} is not of type 'array'", py_repr(v)),
        ));
    };
    for (i, t) in items.iter().enumerate() {
        if let Some(why) = tag_error(t) {
            return Err(invalid(&i.to_string(), t, &why));
        }
    }
    if items.len() > MAX_TAGS {
        return Err(invalid(field, v, &format!("{} is too long", py_repr(v))));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for t in items.iter().filter_map(Value::as_str) {
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

fn body_tags(body: &Value) -> Result<Vec<String>, Fault> {
    let Value::Object(o) = body else {
        return Err(Fault::bad_request(format!(
            "{} is not of type 'object'",
            py_repr(body)
        )));
    };
    let tags = o
        .get("tags")
        .ok_or_else(|| Fault::bad_request("'tags' is a required property"))?;
    let parsed = parse_list(tags, "tags")?;
    let mut extra: Vec<&String> = o.keys().filter(|k| k.as_str() != "tags").collect();
    if !extra.is_empty() {
        extra.sort();
        let verb = if extra.len() == 1 { "was" } else { "were" };
        let list = extra
            .iter()
            .map(|k| py_str(k))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Fault::bad_request(format!(
            "Additional properties are not allowed ({list} {verb} unexpected)"
        )));
    }
    Ok(parsed)
}

/// A path segment percent-decoded (clients quote tags in URLs); as given if not UTF-8.
fn decoded(seg: &str) -> String {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| seg.to_string())
}

/// The instance's tags as Nova shows them: the keys, in order.
pub(crate) fn names(inst: &Instance) -> Vec<&str> {
    inst.tags.iter().map(|(k, _)| k.as_str()).collect()
}

/// `current` with the keys `keep` only (a key kept keeps its value), then the new ones of
/// `keep` with empty values, in the order given.
pub(super) fn with_keys(current: &[(String, String)], keep: &[String]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = current
        .iter()
        .filter(|(k, _)| keep.contains(k))
        .cloned()
        .collect();
    for k in keep {
        if !out.iter().any(|(o, _)| o == k) {
            out.push((k.clone(), String::new()));
        }
    }
    out
}

/// Why a tag write failed.
enum WriteError {
    Domain(DomainError),
    Busy(Box<Instance>),
    Fault(Fault),
}

impl From<DomainError> for WriteError {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl Nova<'_> {
    /// Server tags exist from 2.26; before, the routes are not found.
    pub(super) fn tags_list(&self, id: &str) -> Res {
        self.since(MIN_MINOR)?;
        let inst = self.server(id)?;
        Ok(Reply::json(200, &json!({ "tags": names(&inst) })))
    }

    /// 204 when the server has the tag, else 404.
    pub(super) fn tags_show(&self, id: &str, tag: &str) -> Res {
        self.since(MIN_MINOR)?;
        let inst = self.server(id)?;
        let tag = decoded(tag);
        if names(&inst).contains(&tag.as_str()) {
            Ok(Reply::empty(204))
        } else {
            Err(no_tag(&inst, &tag))
        }
    }

    /// `PUT /tags/{tag}`: 201 with its location when added, 204 when already there.
    pub(super) async fn tags_add(&self, id: &str, raw: &str) -> Res {
        self.since(MIN_MINOR)?;
        let tag = decoded(raw);
        if let Some(why) = tag_error(&json!(tag)) {
            return Err(Fault::bad_request(format!(
                "Tag '{tag}' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: {why}"
            )));
        }
        let inst = self.server(id)?;
        let mut added = false;
        self.write_server_tags(&inst, "update tag", |now| {
            // Nova counts before it looks for the tag.
            if now.len() >= MAX_TAGS {
                return Err(Fault::bad_request(format!(
                    "The number of tags exceeded the per-server limit {MAX_TAGS}"
                )));
            }
            if now.iter().any(|(k, _)| *k == tag) {
                return Ok(now.to_vec());
            }
            added = true;
            let mut out = now.to_vec();
            out.push((tag.clone(), String::new()));
            Ok(out)
        })
        .await?;
        if !added {
            return Ok(Reply::empty(204));
        }
        let location = format!(
            "{}/compute/v2.1/servers/{}/tags/{raw}",
            self.base, inst.uuid
        );
        Ok(Reply::empty(201).header("location", location))
    }

    /// `PUT /tags` with `{"tags": [...]}`: the server's tags become these; 200 with them.
    pub(super) async fn tags_replace(&self, id: &str) -> Res {
        self.since(MIN_MINOR)?;
        let body = json_body(self.req.body)?;
        let tags = body_tags(&body)?;
        let inst = self.server(id)?;
        let written = self
            .write_server_tags(&inst, "update tags", |now| Ok(with_keys(now, &tags)))
            .await?;
        let names: Vec<&str> = written.iter().map(|(k, _)| k.as_str()).collect();
        Ok(Reply::json(200, &json!({ "tags": names })))
    }

    /// `DELETE /tags/{tag}`: 204, or 404 when the server has no such tag.
    pub(super) async fn tags_delete(&self, id: &str, tag: &str) -> Res {
        self.since(MIN_MINOR)?;
        let tag = decoded(tag);
        let inst = self.server(id)?;
        self.write_server_tags(&inst, "delete tag", |now| {
            if !now.iter().any(|(k, _)| *k == tag) {
                return Err(no_tag(&inst, &tag));
            }
            Ok(now.iter().filter(|(k, _)| *k != tag).cloned().collect())
        })
        .await?;
        Ok(Reply::empty(204))
    }

    /// `DELETE /tags`: every tag goes; 204.
    pub(super) async fn tags_delete_all(&self, id: &str) -> Res {
        self.since(MIN_MINOR)?;
        let inst = self.server(id)?;
        self.write_server_tags(&inst, "delete tags", |_| Ok(Vec::new()))
            .await?;
        Ok(Reply::empty(204))
    }

    /// Write the tags `f` computes from the current ones if core allows a change now (Nova's
    /// order: the state, then the request's own checks), committed before the answer.
    async fn write_server_tags(
        &self,
        inst: &Instance,
        what: &str,
        f: impl FnOnce(&[(String, String)]) -> Result<Vec<(String, String)>, Fault>,
    ) -> Result<Vec<(String, String)>, Fault> {
        let r = self
            .api
            .engine
            .update_tags(&self.p, inst.uuid, |now: &Instance| {
                rules::server_tags_change(now)
                    .map_err(|_| WriteError::Busy(Box::new(now.clone())))?;
                f(&now.tags).map_err(WriteError::Fault)
            })
            .await;
        match r {
            Ok(tags) => Ok(tags),
            Err(WriteError::Domain(e)) => Err(map(e, Some(inst.uuid))),
            Err(WriteError::Fault(f)) => Err(f),
            Err(WriteError::Busy(now)) => {
                let n = nova_state(now.state, self.extra(&now).await);
                Err(Fault::conflict(format!(
                    "Cannot '{what}' instance {} while it is in vm_state {}",
                    inst.uuid, n.vm_state
                )))
            }
        }
    }
}

/// Nova's InstanceTagNotFound.
fn no_tag(inst: &Instance, tag: &str) -> Fault {
    Fault::not_found(format!("Instance {} has no tag '{tag}'", inst.uuid))
}

/// Nova's list filters on tags (2.26+): `tags` (all of them), `tags-any` (one of them),
/// `not-tags` (not all of them), `not-tags-any` (none of them); each a comma-separated list.
#[derive(Debug, Default, Clone)]
pub(super) struct TagFilters {
    all: Option<Vec<String>>,
    any: Option<Vec<String>>,
    not_all: Option<Vec<String>>,
    not_any: Option<Vec<String>>,
}

impl TagFilters {
    pub(super) fn from_query(q: &[(String, String)]) -> Self {
        let list = |name: &str| {
            q.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.split(',').map(str::to_string).collect::<Vec<_>>())
        };
        Self {
            all: list("tags"),
            any: list("tags-any"),
            not_all: list("not-tags"),
            not_any: list("not-tags-any"),
        }
    }

    pub(super) fn matches(&self, inst: &Instance) -> bool {
        let has = |t: &String| inst.tags.iter().any(|(k, _)| k == t);
        self.all.as_ref().is_none_or(|l| l.iter().all(has))
            && self.any.as_ref().is_none_or(|l| l.iter().any(has))
            && self.not_all.as_ref().is_none_or(|l| !l.iter().all(has))
            && self.not_any.as_ref().is_none_or(|l| !l.iter().any(has))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_schema_as_nova_words_it() {
        assert_eq!(tag_error(&json!("ok tag")), None);
        assert_eq!(tag_error(&json!("t".repeat(60))), None);
        assert_eq!(
            tag_error(&json!("a/b")).as_deref(),
            Some("'a/b' does not match '^[^,/]*$'")
        );
        assert_eq!(
            tag_error(&json!("a,b")).as_deref(),
            Some("'a,b' does not match '^[^,/]*$'")
        );
        assert_eq!(tag_error(&json!("")).as_deref(), Some("'' is too short"));
        assert!(tag_error(&json!("t".repeat(61))).is_some_and(|m| m.ends_with("is too long")));
        assert_eq!(
            tag_error(&json!(1)).as_deref(),
            Some("1 is not of type 'string'")
        );
        let many: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
        assert!(parse_list(&json!(many), "tags").is_err());
        assert_eq!(
            parse_list(&json!(["a", "b", "a"]), "tags").unwrap(),
            vec!["a".to_string(), "b".into()]
        );
    }

    #[test]
    fn keys_kept_with_their_values() {
        let cur = vec![
            ("env".to_string(), "prod".to_string()),
            ("x".into(), "1".into()),
        ];
        assert_eq!(
            with_keys(&cur, &["env".into(), "new".into()]),
            vec![
                ("env".to_string(), "prod".to_string()),
                ("new".into(), String::new())
            ]
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(decoded("a%20b"), "a b");
        assert_eq!(decoded("100%"), "100%");
        assert_eq!(decoded("%zz"), "%zz");
    }

    #[test]
    fn list_filters() {
        let mut i = nubis_core::rules::fixture::inst(nubis_core::InstanceState::Running);
        i.tags = vec![("a".into(), String::new()), ("b".into(), "v".into())];
        let q = |k: &str, v: &str| TagFilters::from_query(&[(k.to_string(), v.to_string())]);
        assert!(q("tags", "a,b").matches(&i));
        assert!(!q("tags", "a,c").matches(&i));
        assert!(q("tags-any", "c,b").matches(&i));
        assert!(!q("tags-any", "c").matches(&i));
        assert!(q("not-tags", "a,c").matches(&i));
        assert!(!q("not-tags", "a,b").matches(&i));
        assert!(!q("not-tags-any", "c,a").matches(&i));
        assert!(q("not-tags-any", "c").matches(&i));
    }
}
