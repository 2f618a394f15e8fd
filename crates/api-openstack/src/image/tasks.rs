//! Glance's image import (`PUT /v2/images/{id}/stage`, `POST /v2/images/{id}/import`,
//! method `glance-direct`) and its tasks: `GET /v2/images/{id}/tasks` and the tasks API
//! (`/v2/tasks`, admin only as Glance's `tasks_api_access` makes it). The task type clients
//! create through `/v2/tasks`, `import`, downloads an image from `import_from`; nubis fetches
//! no remote URL (the listener talks to its clients only), so its import filtering allows no
//! host and every such task is refused when it is created, as a Glance whose `allowed_hosts`
//! is empty refuses it (docs/images.md, "Import and tasks"). The tasks that exist are the
//! `api_image_import` tasks of glance-direct imports, finished when the import answers.

use super::{Ctx, body_object, domain, fail};
use crate::Reply;
use crate::render::iso_seconds;
use nubis_core::images::{Image, ImageStatus, ImportTask};
use serde_json::{Value, json};

/// The import methods nubis offers (`/v2/info/import`): data staged through the API.
pub(super) const IMPORT_METHODS: &[&str] = &["glance-direct"];

/// How long Glance keeps a finished task (`task_time_to_live`, 48 h), shown as `expires_at`.
const TASK_TTL_MS: i64 = 48 * 3600 * 1000;

/// An image's import as Glance shows the task.
fn task_json(img: &Image, t: &ImportTask) -> Value {
    json!({
        "id": t.id,
        "type": "api_image_import",
        "status": "success",
        "owner": img.project.clone().unwrap_or_default(),
        "input": {
            "image_id": img.uuid,
            "import_req": {"method": {"name": t.method}},
            "backend": null,
        },
        "result": {"image_id": img.uuid},
        "message": "Import complete",
        "image_id": img.uuid,
        "request_id": t.request_id,
        "user_id": t.user_id,
        "created_at": iso_seconds(t.created_ms),
        "updated_at": iso_seconds(t.created_ms),
        "expires_at": iso_seconds(t.created_ms.saturating_add(TASK_TTL_MS)),
        "self": format!("/v2/tasks/{}", t.id),
        "schema": "/v2/schemas/task",
    })
}

/// The task types Glance knows (`glance/domain/__init__.py`); only `import` may be created
/// through the API, the others are made by the image import flow.
const TASK_TYPES: &[&str] = &["import", "api_image_import", "location_import"];

impl Ctx<'_> {
    /// The import tasks of the images the caller sees, newest first.
    fn import_tasks(&self) -> Vec<Value> {
        let mut imgs: Vec<Image> = self
            .api
            .engine
            .images(&self.p)
            .into_iter()
            .filter(|i| i.import_task.is_some())
            .collect();
        imgs.sort_by_key(|i| std::cmp::Reverse(i.import_task.as_ref().map(|t| t.created_ms)));
        imgs.iter()
            .filter_map(|i| i.import_task.as_ref().map(|t| task_json(i, t)))
            .collect()
    }

    /// `GET /v2/tasks`.
    pub(super) fn tasks_list(&self) -> Reply {
        Reply::json(
            200,
            &json!({"tasks": self.import_tasks(), "first": "/v2/tasks", "schema": "/v2/schemas/tasks"}),
        )
    }

    /// `GET /v2/tasks/{id}`.
    pub(super) fn task_show(&self) -> Reply {
        let id = self.params.first().map(String::as_str).unwrap_or_default();
        self.import_tasks()
            .into_iter()
            .find(|t| t["id"].as_str() == Some(id))
            .map_or_else(
                || fail(404, &format!("Task with the given id {id} was not found")),
                |t| Reply::json(200, &t),
            )
    }

    /// `GET /v2/images/{id}/tasks`: the image's import, if it was imported.
    pub(super) fn image_tasks(&self) -> Reply {
        match self.image() {
            Ok(img) => {
                let tasks: Vec<Value> =
                    img.import_task.iter().map(|t| task_json(&img, t)).collect();
                Reply::json(200, &json!({ "tasks": tasks }))
            }
            Err(r) => r,
        }
    }

    /// `POST /v2/images/{id}/import` `{"method": {"name": "glance-direct"}, ...}`: the staged
    /// data becomes the image's (202). Another method is 400; an image whose data is not
    /// staged is 409, as in Glance.
    pub(super) async fn import(&self, request_id: &str) -> Reply {
        let body = match body_object(self.req.body) {
            Ok(b) => b,
            Err(r) => return r,
        };
        let Some(name) = body
            .get("method")
            .and_then(Value::as_object)
            .and_then(|m| m.get("name"))
        else {
            return fail(
                400,
                "Provided object does not match schema 'import': 'method' is a required property",
            );
        };
        let name = name.as_str().unwrap_or_default();
        if !IMPORT_METHODS.contains(&name) {
            let shown: String = name.chars().take(64).collect();
            return fail(400, &format!("Unknown import method name '{shown}'."));
        }
        let img = match self.image() {
            Ok(i) => i,
            Err(r) => return r,
        };
        let task = ImportTask {
            id: uuid::Uuid::new_v4(),
            method: name.to_string(),
            request_id: request_id.to_string(),
            user_id: self.p.keystone_user.clone().unwrap_or_default(),
            created_ms: super::now_ms(),
        };
        match self
            .api
            .engine
            .import_staged_image(&self.p, self.id(), task)
            .await
        {
            Ok(_) => Reply::empty(202),
            Err(nubis_core::DomainError::ImageState { status, .. }) => fail(
                409,
                &if status == ImageStatus::Queued || status == ImageStatus::Uploading {
                    "Image needs to be staged before 'glance-direct' method can be used".to_string()
                } else {
                    format!(
                        "Image {} is {}: it has its data already.",
                        img.uuid,
                        status.glance()
                    )
                },
            ),
            Err(e) => domain(e, self.id()),
        }
    }

    /// `POST /v2/tasks` `{"type": "import", "input": {...}}`: always refused ([`refusal`]).
    pub(super) fn task_create(&self) -> Reply {
        refusal(self.req.body)
    }
}

fn schema_error(reason: &str) -> Reply {
    fail(
        400,
        &format!("Provided object does not match schema 'task': {reason}"),
    )
}

/// Why a task is not created, in Glance's order of checks: the task schema (`type` and
/// `input` required, `type` one of the known types), the import's input, then import
/// filtering, which refuses every `import_from`.
fn refusal(body: &[u8]) -> Reply {
    let task = match body_object(body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (Some(kind), Some(input)) = (task.get("type"), task.get("input")) else {
        let missing = if task.contains_key("type") {
            "input"
        } else {
            "type"
        };
        return schema_error(&format!("'{missing}' is a required property"));
    };
    let kind = match kind {
        Value::String(s) if TASK_TYPES.contains(&s.as_str()) => s.as_str(),
        other => {
            let shown: String = other.to_string().chars().take(64).collect();
            return schema_error(&format!(
                "{shown} is not one of ['import', 'api_image_import', 'location_import']"
            ));
        }
    };
    if kind != "import" {
        return fail(
            400,
            &format!("Task type {kind} is not created through the tasks API."),
        );
    }
    let Value::Object(input) = input else {
        return schema_error("'input' is not of type 'object'");
    };
    let Some(Value::String(from)) = input.get("import_from") else {
        return fail(400, "Input does not contain 'import_from' field");
    };
    if !matches!(input.get("import_from_format"), Some(Value::String(_))) {
        return fail(400, "Input does not contain 'import_from_format' field");
    }
    if !matches!(input.get("image_properties"), Some(Value::Object(_))) {
        return fail(400, "Input does not contain 'image_properties' field");
    }
    let shown: String = from.chars().take(255).collect();
    fail(
        400,
        &format!(
            "The import_from URI {shown} does not pass filtering: this cloud downloads no image from a URL."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(body: &str) -> (u16, String) {
        let r = refusal(body.as_bytes());
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    #[test]
    fn every_import_is_refused_with_the_reason() {
        let ok = r#"{"type": "import", "input": {"import_from": "http://example.invalid/x.qcow2",
            "import_from_format": "qcow2", "image_properties": {"disk_format": "qcow2"}}}"#;
        let (status, text) = status_of(ok);
        assert_eq!(status, 400);
        assert!(text.contains("does not pass filtering"), "{text}");
        for (bad, says) in [
            ("", "Body expected"),
            ("[]", "must be an object"),
            ("{", "Malformed JSON"),
            (r#"{"input": {}}"#, "'type' is a required property"),
            (r#"{"type": "import"}"#, "'input' is a required property"),
            (r#"{"type": "bogus", "input": {}}"#, "is not one of"),
            (r#"{"type": 7, "input": {}}"#, "is not one of"),
            (
                r#"{"type": "api_image_import", "input": {}}"#,
                "not created through",
            ),
            (
                r#"{"type": "import", "input": []}"#,
                "'input' is not of type 'object'",
            ),
            (r#"{"type": "import", "input": {}}"#, "'import_from'"),
            (
                r#"{"type": "import", "input": {"import_from": "x"}}"#,
                "'import_from_format'",
            ),
            (
                r#"{"type": "import", "input": {"import_from": "x", "import_from_format": "raw"}}"#,
                "'image_properties'",
            ),
        ] {
            let (status, text) = status_of(bad);
            assert_eq!(status, 400, "{bad}");
            assert!(text.contains(says), "{bad}: {text}");
        }
    }
}
