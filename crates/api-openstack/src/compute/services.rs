//! `/os-services`: list (filtered by host and binary), update — by action name in the path
//! until 2.52 (`enable`, `disable`, `disable-log-reason`, `force-down` from 2.11), by service
//! UUID from 2.53 — and delete. Only `nova-compute` services can be updated, as in Nova; a
//! change is a dialect record (`hosts.rs`) committed before the reply.

use super::hosts::{self, Service, ServiceState};
use super::{Nova, Res, json_body, param};
use crate::Reply;
use crate::errors::Fault;
use crate::render::iso_micro;
use serde_json::{Map, Value, json};

/// Nova's `disabled_reason`: a string of 1 to 255 characters.
fn reason_ok(s: &str) -> bool {
    (1..=255).contains(&s.chars().count())
}

fn schema_error(field: &str, value: &Value, message: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {message}"
    ))
}

/// The update body, checked against the microversion's schema.
#[derive(Debug, Default)]
struct Update {
    host: Option<String>,
    binary: Option<String>,
    status: Option<String>,
    disabled_reason: Option<String>,
    forced_down: Option<bool>,
}

impl Nova<'_> {
    fn service_view(&self, s: &Service, st: &ServiceState, zone: String) -> Value {
        let mut m = Map::new();
        m.insert(
            "id".into(),
            if self.v.at_least(53) {
                json!(s.uuid().to_string())
            } else {
                json!(s.number)
            },
        );
        m.insert("binary".into(), json!(s.binary));
        m.insert("host".into(), json!(s.host));
        m.insert("zone".into(), json!(zone));
        m.insert(
            "status".into(),
            json!(if st.disabled { "disabled" } else { "enabled" }),
        );
        m.insert(
            "state".into(),
            json!(if st.forced_down { "down" } else { "up" }),
        );
        // The services report every few seconds: their last heartbeat is now.
        m.insert("updated_at".into(), json!(iso_micro(hosts::now_ms())));
        m.insert("disabled_reason".into(), json!(st.disabled_reason));
        if self.v.at_least(11) {
            m.insert("forced_down".into(), json!(st.forced_down));
        }
        Value::Object(m)
    }

    /// `GET /os-services`: every service, or those on `host` and/or of `binary`.
    pub(super) fn list_services(&self) -> Res {
        let q = self.req.query();
        if self.v.at_least(75)
            && let Some((k, _)) = q.iter().find(|(k, _)| k != "host" && k != "binary")
        {
            return Err(Fault::bad_request(format!(
                "Invalid input for query parameters {k}. Value: {k}. Additional properties are not allowed ('{k}' was unexpected)"
            )));
        }
        let host = param(&q, "host").filter(|h| !h.is_empty());
        let binary = param(&q, "binary").filter(|b| !b.is_empty());
        let aggregates = self.aggregates();
        let list: Vec<Value> = self
            .live_services()
            .iter()
            .filter(|s| host.is_none_or(|h| h == s.host) && binary.is_none_or(|b| b == s.binary))
            .map(|s| {
                self.service_view(s, &self.service_state(s), self.service_zone(s, &aggregates))
            })
            .collect();
        Ok(Reply::json(200, &json!({"services": list})))
    }

    /// The body of `PUT /os-services/{id}` at this microversion.
    fn service_update_body(&self) -> Result<Update, Fault> {
        let body = json_body(self.req.body)?;
        let Value::Object(obj) = &body else {
            return Err(schema_error(
                "body",
                &body,
                &format!("{body} is not of type 'object'"),
            ));
        };
        let allowed: &[&str] = if self.v.at_least(53) {
            &["status", "disabled_reason", "forced_down"]
        } else if self.v.at_least(11) {
            &["host", "binary", "disabled_reason", "forced_down"]
        } else {
            &["host", "binary", "disabled_reason"]
        };
        if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(schema_error(
                "body",
                &body,
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let mut u = Update::default();
        for (k, v) in obj {
            match k.as_str() {
                "host" | "binary" => {
                    let s = v
                        .as_str()
                        .filter(|s| (1..=255).contains(&s.chars().count()))
                        .ok_or_else(|| {
                            schema_error(k, v, &format!("{v} is not a valid host or binary name"))
                        })?;
                    if k == "host" {
                        u.host = Some(s.to_string());
                    } else {
                        u.binary = Some(s.to_string());
                    }
                }
                "status" => {
                    let s = v
                        .as_str()
                        .filter(|s| matches!(*s, "enabled" | "disabled"))
                        .ok_or_else(|| {
                            schema_error(
                                k,
                                v,
                                &format!("{v} is not one of ['enabled', 'disabled']"),
                            )
                        })?;
                    u.status = Some(s.to_string());
                }
                "disabled_reason" => {
                    let s = v.as_str().filter(|s| reason_ok(s)).ok_or_else(|| {
                        schema_error(k, v, &format!("{v} is not a string of 1 to 255 characters"))
                    })?;
                    u.disabled_reason = Some(s.to_string());
                }
                _ => {
                    let b = v.as_bool().ok_or_else(|| {
                        schema_error(k, v, &format!("{v} is not of type 'boolean'"))
                    })?;
                    u.forced_down = Some(b);
                }
            }
        }
        if !self.v.at_least(53) {
            for key in ["host", "binary"] {
                if !obj.contains_key(key) {
                    return Err(schema_error(
                        "body",
                        &body,
                        &format!("'{key}' is a required property"),
                    ));
                }
            }
        }
        Ok(u)
    }

    /// A service other than `nova-compute` cannot be updated (Nova since Stein).
    fn only_compute(s: &str) -> Result<(), Fault> {
        if s == "nova-compute" {
            Ok(())
        } else {
            Err(Fault::bad_request(format!(
                "Updating a {s} service is not supported. Only nova-compute services can be updated."
            )))
        }
    }

    pub(super) async fn save_service_state(
        &self,
        s: &Service,
        st: &ServiceState,
    ) -> Result<(), Fault> {
        let value = serde_json::to_string(st).map_err(|e| Fault::new(500, e.to_string()))?;
        self.put_records(vec![(s.key(), Some(value))]).await
    }

    /// The service a path `{id}` names: an integer before 2.53, a UUID from 2.53.
    fn service_by_id(&self, id: &str) -> Result<Service, Fault> {
        let live = self.live_services();
        let found = if self.v.at_least(53) {
            let uuid = uuid::Uuid::try_parse(id)
                .map_err(|_| Fault::bad_request(format!("Invalid uuid {id}")))?;
            live.into_iter().find(|s| s.uuid() == uuid)
        } else {
            let n = id.parse::<usize>().ok();
            live.into_iter().find(|s| Some(s.number) == n)
        };
        found.ok_or_else(|| Fault::not_found(format!("Service {id} not found.")))
    }

    /// `PUT /os-services/{id}`.
    pub(super) async fn update_service(&self, id: &str) -> Res {
        let u = self.service_update_body()?;
        let _guard = self.api.operator.write.lock().await;
        if self.v.at_least(53) {
            return self.update_service_v253(id, u).await;
        }
        let action = match id {
            "enable" | "disable" | "disable-log-reason" => id,
            "force-down" if self.v.at_least(11) => id,
            _ => return Err(Fault::not_found("Unknown action")),
        };
        let host = u.host.clone().unwrap_or_default();
        let binary = u.binary.clone().unwrap_or_default();
        Self::only_compute(&binary)?;
        let s = self
            .live_services()
            .into_iter()
            .find(|s| s.host == host && s.binary == binary)
            .ok_or_else(|| {
                Fault::not_found(format!("Could not find binary {binary} on host {host}."))
            })?;
        let mut st = self.service_state(&s);
        let reply = match action {
            "enable" => {
                st.disabled = false;
                st.disabled_reason = None;
                json!({"service": {"host": host, "binary": binary, "status": "enabled"}})
            }
            "disable" => {
                st.disabled = true;
                st.disabled_reason = None;
                json!({"service": {"host": host, "binary": binary, "status": "disabled"}})
            }
            "disable-log-reason" => {
                let reason = u
                    .disabled_reason
                    .clone()
                    .ok_or_else(|| Fault::bad_request("Missing disabled reason field"))?;
                st.disabled = true;
                st.disabled_reason = Some(reason.clone());
                json!({"service": {"host": host, "binary": binary, "status": "disabled",
                    "disabled_reason": reason}})
            }
            _ => {
                let down = u
                    .forced_down
                    .ok_or_else(|| Fault::bad_request("Missing forced_down field"))?;
                st.forced_down = down;
                json!({"service": {"host": host, "binary": binary, "forced_down": down}})
            }
        };
        st.updated_ms = hosts::now_ms();
        self.save_service_state(&s, &st).await?;
        Ok(Reply::json(200, &reply))
    }

    async fn update_service_v253(&self, id: &str, u: Update) -> Res {
        let uuid_ok = uuid::Uuid::try_parse(id).is_ok();
        if !uuid_ok {
            return Err(Fault::bad_request(format!("Invalid uuid {id}")));
        }
        if u.status.is_none() && u.forced_down.is_none() {
            return Err(Fault::bad_request(
                "No updates were requested. Fields 'status' or 'forced_down' should be specified.",
            ));
        }
        if u.disabled_reason.is_some() && u.status.as_deref() != Some("disabled") {
            return Err(Fault::bad_request(format!(
                "Specifying 'disabled_reason' with status '{}' is invalid.",
                u.status.as_deref().unwrap_or("None")
            )));
        }
        let s = self.service_by_id(id)?;
        Self::only_compute(s.binary)?;
        let mut st = self.service_state(&s);
        match u.status.as_deref() {
            Some("enabled") => {
                st.disabled = false;
                st.disabled_reason = None;
            }
            Some(_) => {
                st.disabled = true;
                st.disabled_reason = u.disabled_reason;
            }
            None => {}
        }
        if let Some(down) = u.forced_down {
            st.forced_down = down;
        }
        st.updated_ms = hosts::now_ms();
        self.save_service_state(&s, &st).await?;
        let zone = self.service_zone(&s, &self.aggregates());
        Ok(Reply::json(
            200,
            &json!({"service": self.service_view(&s, &st, zone)}),
        ))
    }

    /// `DELETE /os-services/{id}`: a compute service that hosts servers is refused (409);
    /// otherwise its host leaves every aggregate and the service is gone until nubis starts
    /// again (as a Nova service registers anew when it starts).
    pub(super) async fn delete_service(&self, id: &str) -> Res {
        let _guard = self.api.operator.write.lock().await;
        let s = self.service_by_id(id)?;
        if let Some(h) = &s.compute {
            if !self.instances_on(h).is_empty() {
                return Err(Fault::conflict(
                    "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.",
                ));
            }
            let mut changes = Vec::new();
            for mut a in self.aggregates() {
                if a.hosts.contains(&s.host) {
                    a.hosts.retain(|x| x != &s.host);
                    let value =
                        serde_json::to_string(&a).map_err(|e| Fault::new(500, e.to_string()))?;
                    changes.push((a.key(), Some(value)));
                }
            }
            if !changes.is_empty() {
                self.put_records(changes).await?;
            }
        }
        self.api.operator.deleted.lock().insert(s.key());
        Ok(Reply::empty(204))
    }
}
