//! `personality` of a server create or rebuild before microversion 2.57: files written into
//! the guest at its first boot. Nova's schema (`parameter_types.personality`: a list of
//! `{path: string, contents: base64}`, nothing else) answers 400 here; the limits are core's
//! rule ([`nubis_core::inject::check_files`]), answered as Nova's `OnsetFile*` quota errors
//! (403, `OverQuota` in servers.py's create and rebuild).

use super::metadata::{py_repr, py_str};
use crate::errors::Fault;
use nubis_core::inject::FileLimits;
use nubis_core::{FileRefusal, InjectedFile, ItemQuota};
use serde_json::Value;

/// A value as Nova's schema errors print it after `Value:` (`%s`: a string bare, else its
/// Python repr).
fn value_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Nova's schema error at `field` (the last element of the error's path).
fn schema_error(field: &str, v: &Value, message: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {}. {message}",
        value_str(v)
    ))
}

/// Is `s` base64 as Nova's format checker takes it? nubis takes the standard alphabet with
/// its padding and nothing else (as for `user_data`): the guest decodes it as it is.
fn is_base64(s: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .is_ok()
}

/// The files of a `personality` value, as its schema takes them.
pub(super) fn parse(v: &Value) -> Result<Vec<InjectedFile>, Fault> {
    let items = v.as_array().ok_or_else(|| {
        schema_error(
            "personality",
            v,
            &format!("{} is not of type 'array'", py_repr(v)),
        )
    })?;
    let mut files = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let index = i.to_string();
        let m = item.as_object().ok_or_else(|| {
            schema_error(
                &index,
                item,
                &format!("{} is not of type 'object'", py_repr(item)),
            )
        })?;
        if let Some(k) = m.keys().find(|k| *k != "path" && *k != "contents") {
            return Err(schema_error(
                &index,
                item,
                &format!(
                    "Additional properties are not allowed ({} was unexpected)",
                    py_str(k)
                ),
            ));
        }
        let text = |key: &str| -> Result<String, Fault> {
            match m.get(key) {
                // Nova's schema requires neither; its create then fails on the missing key.
                None => Err(schema_error(
                    &index,
                    item,
                    &format!("{} is a required property", py_str(key)),
                )),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(schema_error(
                    key,
                    other,
                    &format!("{} is not of type 'string'", py_repr(other)),
                )),
            }
        };
        let path = text("path")?;
        let contents = text("contents")?;
        if !is_base64(&contents) {
            return Err(schema_error(
                "contents",
                &Value::String(contents.clone()),
                &format!("{} is not a 'base64'", py_str(&contents)),
            ));
        }
        files.push(InjectedFile { path, contents });
    }
    Ok(files)
}

impl super::Nova<'_> {
    /// The caller's `injected_file*` quotas under core's maxima.
    pub(super) fn file_limits(&self) -> FileLimits {
        let item = |i| self.api.engine.item_limit(&self.p, i);
        let mut items = nubis_core::ItemLimits::NOVA_DEFAULTS;
        for i in [
            ItemQuota::InjectedFiles,
            ItemQuota::InjectedFilePathBytes,
            ItemQuota::InjectedFileContentBytes,
        ] {
            items.set(i, item(i));
        }
        FileLimits::from_quotas(&items)
    }
}

/// Core's limits on the files, answered as Nova answers its quota errors.
pub(super) fn check(files: &[InjectedFile], limits: FileLimits) -> Result<(), Fault> {
    nubis_core::inject::check_files_within(files, limits).map_err(|r| match r {
        FileRefusal::TooMany { .. } => Fault::new(403, "Personality file limit exceeded"),
        FileRefusal::PathTooLong { max } => {
            Fault::new(403, format!("Personality file path exceeds maximum {max}"))
        }
        FileRefusal::ContentTooLong { max } => Fault::new(
            403,
            format!("Personality file content exceeds maximum {max}"),
        ),
        FileRefusal::BadPath { path } => Fault::bad_request(format!(
            "Personality file path {} names no file: give a path without '..', not ending in '/'",
            py_str(&path)
        )),
    })
}

/// `personality` as a create or rebuild body of microversion `v` holds it, parsed and checked:
/// empty when absent. From 2.57 the key is unknown: the caller's schema refuses it first.
pub(super) fn of(
    obj: &serde_json::Map<String, Value>,
    limits: FileLimits,
) -> Result<Vec<InjectedFile>, Fault> {
    match obj.get("personality") {
        None => Ok(Vec::new()),
        Some(v) => {
            let files = parse(v)?;
            check(&files, limits)?;
            Ok(files)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> serde_json::Map<String, Value> {
        json!({ "personality": v }).as_object().unwrap().clone()
    }

    fn err(v: Value) -> Fault {
        of(&body(v), FileLimits::MAX).unwrap_err()
    }

    fn file(path: &str, contents: &str) -> Value {
        json!({"path": path, "contents": contents})
    }

    #[test]
    fn files_are_taken_as_given() {
        assert_eq!(
            of(&serde_json::Map::new(), FileLimits::MAX).unwrap(),
            vec![]
        );
        assert_eq!(of(&body(json!([])), FileLimits::MAX).unwrap(), vec![]);
        let files = of(
            &body(json!([file("/test.txt", "aGk="), file("rebuild.txt", "")])),
            FileLimits::MAX,
        )
        .unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "/test.txt");
        assert_eq!(files[0].contents, "aGk=");
        assert_eq!(files[1].guest_path(), "/rebuild.txt");
    }

    #[test]
    fn each_bad_input_gets_novas_answer() {
        let ok = file("/a", "aGk=");
        let cases: Vec<(Value, u16, &str)> = vec![
            (
                json!(vec![ok.clone(); 6]),
                403,
                "Personality file limit exceeded",
            ),
            (
                json!([file(&"p".repeat(256), "aGk=")]),
                403,
                "Personality file path exceeds maximum 255",
            ),
            (
                json!([file("/a", &"A".repeat(10244))]),
                403,
                "Personality file content exceeds maximum 10240",
            ),
            (
                json!([file("/a", "not base64!")]),
                400,
                "Invalid input for field/attribute contents. Value: not base64!. 'not base64!' is not a 'base64'",
            ),
            (
                json!([file("/a", "aGk")]),
                400,
                "Invalid input for field/attribute contents. Value: aGk. 'aGk' is not a 'base64'",
            ),
            (
                json!("x"),
                400,
                "Invalid input for field/attribute personality. Value: x. 'x' is not of type 'array'",
            ),
            (
                json!(["x"]),
                400,
                "Invalid input for field/attribute 0. Value: x. 'x' is not of type 'object'",
            ),
            (
                json!([{"contents": "", "mode": 1, "path": "/a"}]),
                400,
                "Invalid input for field/attribute 0. Value: {'contents': '', 'mode': 1, 'path': '/a'}. Additional properties are not allowed ('mode' was unexpected)",
            ),
            (
                json!([{"contents": ""}]),
                400,
                "Invalid input for field/attribute 0. Value: {'contents': ''}. 'path' is a required property",
            ),
            (
                json!([{"path": 1, "contents": ""}]),
                400,
                "Invalid input for field/attribute path. Value: 1. 1 is not of type 'string'",
            ),
            (
                json!([file("../etc/passwd", "")]),
                400,
                "Personality file path '../etc/passwd' names no file: give a path without '..', not ending in '/'",
            ),
            (
                json!([file("/etc/", "")]),
                400,
                "Personality file path '/etc/' names no file: give a path without '..', not ending in '/'",
            ),
        ];
        for (v, status, message) in cases {
            let f = err(v.clone());
            assert_eq!((f.status, f.message.as_str()), (status, message), "{v}");
        }
    }
}
