//! `/os-aggregates`: list, create, show, update, delete, and the actions `add_host`,
//! `remove_host` and `set_metadata`. An aggregate is a dialect record (`hosts.rs`); its
//! availability zone is its `availability_zone` metadata key, as in Nova, and a host is in at
//! most one zone. IDs are integers from a durable sequence; `uuid` shows from 2.41.

use super::hosts::{self, AGGREGATE_SEQ, Aggregate};
use super::{Nova, Res, json_body};
use crate::Reply;
use crate::errors::Fault;
use crate::render::iso_micro;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn schema_error(field: &str, value: &Value, message: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {value}. {message}"
    ))
}

/// Nova's `name` and `az_name`: 1 to 255 printable characters, no leading or trailing
/// whitespace; a zone name has no `:` either.
fn check_name(field: &str, v: &Value, zone: bool) -> Result<String, Fault> {
    let Some(s) = v.as_str() else {
        return Err(schema_error(
            field,
            v,
            &format!("{v} is not of type 'string'"),
        ));
    };
    let n = s.chars().count();
    if n == 0 {
        return Err(schema_error(field, v, &format!("{v} is too short")));
    }
    if n > 255 {
        return Err(schema_error(field, v, &format!("{v} is too long")));
    }
    if s.trim() != s || s.chars().any(char::is_control) || (zone && s.contains(':')) {
        return Err(schema_error(
            field,
            v,
            &format!("{v} does not match the name pattern"),
        ));
    }
    Ok(s.to_string())
}

/// The one object under `key` in a body `{key: {...}}` with nothing beside it.
fn envelope(body: &Value, key: &str) -> Result<Map<String, Value>, Fault> {
    let Value::Object(top) = body else {
        return Err(schema_error(
            "body",
            body,
            &format!("{body} is not of type 'object'"),
        ));
    };
    if let Some(k) = top.keys().find(|k| k.as_str() != key) {
        return Err(schema_error(
            "body",
            body,
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        ));
    }
    match top.get(key) {
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(schema_error(
            key,
            other,
            &format!("{other} is not of type 'object'"),
        )),
        None => Err(schema_error(
            "body",
            body,
            &format!("'{key}' is a required property"),
        )),
    }
}

fn only(m: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), Fault> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(schema_error(
            field,
            &Value::Object(m.clone()),
            &format!("Additional properties are not allowed ('{k}' was unexpected)"),
        )),
        None => Ok(()),
    }
}

/// A zone value: a name, or `null` (no zone).
fn zone_value(v: &Value) -> Result<Option<String>, Fault> {
    if v.is_null() {
        Ok(None)
    } else {
        check_name("availability_zone", v, true).map(Some)
    }
}

/// Nova's `metadata_with_null`: keys `[a-zA-Z0-9-_:. ]{1,255}`, values strings of at most
/// 255 characters or `null` (which removes the key).
fn metadata_value(v: &Value) -> Result<BTreeMap<String, Option<String>>, Fault> {
    let Value::Object(m) = v else {
        return Err(schema_error(
            "metadata",
            v,
            &format!("{v} is not of type 'object'"),
        ));
    };
    let mut out = BTreeMap::new();
    for (k, val) in m {
        let key_ok = (1..=255).contains(&k.chars().count())
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_:. ".contains(c));
        if !key_ok {
            return Err(schema_error(
                "metadata",
                v,
                &format!("Additional properties are not allowed ('{k}' was unexpected)"),
            ));
        }
        let val = match val {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            Value::String(_) => {
                return Err(schema_error(k, val, &format!("{val} is too long")));
            }
            other => {
                return Err(schema_error(
                    k,
                    other,
                    &format!("{other} is not of type 'string', 'null'"),
                ));
            }
        };
        out.insert(k.clone(), val);
    }
    Ok(out)
}

/// Nova's check of an aggregate `{id}`: an integer, or 400.
fn aggregate_number(id: &str) -> Result<u64, Fault> {
    id.parse::<i64>()
        .map_err(|_| Fault::bad_request("Invalid input received: id must be an integer"))
        // A negative ID is an integer no aggregate has.
        .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
}

fn not_found(id: &str) -> Fault {
    Fault::not_found(format!("Aggregate {id} could not be found."))
}

impl Nova<'_> {
    fn aggregate_view(&self, a: &Aggregate, full: bool) -> Value {
        let mut m = Map::new();
        m.insert("availability_zone".into(), json!(a.availability_zone()));
        m.insert("created_at".into(), json!(iso_micro(a.created_ms)));
        m.insert("deleted".into(), json!(false));
        m.insert("deleted_at".into(), Value::Null);
        m.insert("id".into(), json!(a.id));
        m.insert("name".into(), json!(a.name));
        m.insert("updated_at".into(), json!(a.updated_ms.map(iso_micro)));
        if full {
            m.insert("hosts".into(), json!(a.hosts));
            m.insert("metadata".into(), json!(a.metadata));
        }
        if self.v.at_least(41) {
            m.insert("uuid".into(), json!(a.uuid.to_string()));
        }
        Value::Object(m)
    }

    fn one(&self, a: &Aggregate) -> Reply {
        Reply::json(200, &json!({"aggregate": self.aggregate_view(a, true)}))
    }

    fn aggregate(&self, id: &str) -> Result<Aggregate, Fault> {
        let n = aggregate_number(id)?;
        self.aggregates()
            .into_iter()
            .find(|a| a.id == n)
            .ok_or_else(|| not_found(id))
    }

    async fn save_aggregate(
        &self,
        a: &Aggregate,
        extra: Vec<(String, Option<String>)>,
    ) -> Result<(), Fault> {
        let value = serde_json::to_string(a).map_err(|e| Fault::new(500, e.to_string()))?;
        let mut changes = vec![(a.key(), Some(value))];
        changes.extend(extra);
        self.put_records(changes).await
    }

    /// Zones other aggregates give `hosts` (none of `except`), differing from `zone`: a host
    /// is in one zone at most.
    fn conflicting_zones(&self, hosts: &[String], zone: &str, except: u64) -> Vec<String> {
        let mut z: Vec<String> = self
            .aggregates()
            .iter()
            .filter(|a| a.id != except && a.hosts.iter().any(|h| hosts.contains(h)))
            .filter_map(|a| {
                a.availability_zone()
                    .filter(|x| *x != zone)
                    .map(str::to_string)
            })
            .collect();
        z.dedup();
        z
    }

    fn python_list(items: &[String]) -> String {
        let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
        format!("[{}]", quoted.join(", "))
    }

    /// `GET /os-aggregates`.
    pub(super) fn list_aggregates(&self) -> Res {
        let list: Vec<Value> = self
            .aggregates()
            .iter()
            .map(|a| self.aggregate_view(a, true))
            .collect();
        Ok(Reply::json(200, &json!({"aggregates": list})))
    }

    /// `GET /os-aggregates/{id}`.
    pub(super) fn show_aggregate(&self, id: &str) -> Res {
        Ok(self.one(&self.aggregate(id)?))
    }

    /// `POST /os-aggregates` `{"aggregate": {"name", "availability_zone"}}`: 200, without
    /// hosts and metadata; a taken name is 409.
    pub(super) async fn create_aggregate(&self) -> Res {
        let body = json_body(self.req.body)?;
        let m = envelope(&body, "aggregate")?;
        only(&m, "aggregate", &["name", "availability_zone"])?;
        let name = match m.get("name") {
            Some(v) => check_name("name", v, false)?,
            None => {
                return Err(schema_error(
                    "aggregate",
                    &Value::Object(m.clone()),
                    "'name' is a required property",
                ));
            }
        };
        let zone = m
            .get("availability_zone")
            .map(zone_value)
            .transpose()?
            .flatten();
        let _guard = self.api.operator.write.lock().await;
        if self.aggregates().iter().any(|a| a.name == name) {
            return Err(Fault::conflict(format!("Aggregate {name} already exists.")));
        }
        let id = self
            .api
            .engine
            .dialect_record(AGGREGATE_SEQ)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let mut metadata = BTreeMap::new();
        if let Some(z) = &zone {
            metadata.insert("availability_zone".to_string(), z.clone());
        }
        let a = Aggregate {
            id,
            uuid: uuid::Uuid::new_v4(),
            name,
            hosts: Vec::new(),
            metadata,
            created_ms: hosts::now_ms(),
            updated_ms: None,
        };
        self.save_aggregate(&a, vec![(AGGREGATE_SEQ.to_string(), Some(id.to_string()))])
            .await?;
        Ok(Reply::json(
            200,
            &json!({"aggregate": self.aggregate_view(&a, false)}),
        ))
    }

    /// `PUT /os-aggregates/{id}` `{"aggregate": {"name" and/or "availability_zone"}}`.
    pub(super) async fn update_aggregate(&self, id: &str) -> Res {
        let body = json_body(self.req.body)?;
        let m = envelope(&body, "aggregate")?;
        only(&m, "aggregate", &["name", "availability_zone"])?;
        if m.is_empty() {
            return Err(schema_error(
                "aggregate",
                &Value::Object(m.clone()),
                "{} is not valid under any of the given schemas",
            ));
        }
        let name = m
            .get("name")
            .map(|v| check_name("name", v, false))
            .transpose()?;
        let zone = m.get("availability_zone").map(zone_value).transpose()?;
        let _guard = self.api.operator.write.lock().await;
        let mut a = self.aggregate(id)?;
        if let Some(n) = &name
            && self
                .aggregates()
                .iter()
                .any(|x| x.id != a.id && &x.name == n)
        {
            return Err(Fault::conflict(format!("Aggregate {n} already exists.")));
        }
        if let Some(Some(z)) = &zone {
            let conflicts = self.conflicting_zones(&a.hosts, z, a.id);
            if !conflicts.is_empty() {
                return Err(Fault::bad_request(format!(
                    "Cannot update aggregate {}. Reason: One or more hosts already in availability zone(s) {}.",
                    a.id,
                    Self::python_list(&conflicts)
                )));
            }
        }
        if let Some(n) = name {
            a.name = n;
        }
        match zone {
            Some(Some(z)) => {
                a.metadata.insert("availability_zone".into(), z);
            }
            Some(None) => {
                a.metadata.remove("availability_zone");
            }
            None => {}
        }
        a.updated_ms = Some(hosts::now_ms());
        self.save_aggregate(&a, Vec::new()).await?;
        Ok(self.one(&a))
    }

    /// `DELETE /os-aggregates/{id}`: 200 with no body; an aggregate with hosts is 400.
    pub(super) async fn delete_aggregate(&self, id: &str) -> Res {
        let _guard = self.api.operator.write.lock().await;
        let a = self.aggregate(id)?;
        if !a.hosts.is_empty() {
            return Err(Fault::bad_request(format!(
                "Cannot remove aggregate {}. Reason: Host aggregate is not empty.",
                a.id
            )));
        }
        self.put_records(vec![(a.key(), None)]).await?;
        Ok(Reply::empty(200))
    }

    /// `{"add_host": {"host"}}` and `{"remove_host": {"host"}}`.
    pub(super) async fn aggregate_host(&self, id: &str, arg: &Value, add: bool) -> Res {
        let action = if add { "add_host" } else { "remove_host" };
        let Value::Object(m) = arg else {
            return Err(schema_error(
                action,
                arg,
                &format!("{arg} is not of type 'object'"),
            ));
        };
        only(m, action, &["host"])?;
        let host = match m.get("host") {
            Some(v) => check_name("host", v, false)?,
            None => {
                return Err(schema_error(action, arg, "'host' is a required property"));
            }
        };
        let _guard = self.api.operator.write.lock().await;
        let mut a = self.aggregate(id)?;
        let exists = self.live_hosts().iter().any(|h| h.name() == host);
        if add {
            if !exists {
                return Err(Fault::not_found(format!(
                    "Compute host {host} could not be found."
                )));
            }
            if a.hosts.contains(&host) {
                return Err(Fault::conflict(format!(
                    "Aggregate {} already has host {host}.",
                    a.id
                )));
            }
            if let Some(z) = a.availability_zone() {
                let conflicts = self.conflicting_zones(std::slice::from_ref(&host), z, a.id);
                if !conflicts.is_empty() {
                    return Err(Fault::conflict(format!(
                        "Cannot add host to aggregate {}. Reason: One or more hosts already in availability zone(s) {}.",
                        a.id,
                        Self::python_list(&conflicts)
                    )));
                }
            }
            a.hosts.push(host);
        } else {
            if !a.hosts.contains(&host) {
                return Err(Fault::not_found(format!(
                    "Cannot remove host {host} in aggregate {id}"
                )));
            }
            a.hosts.retain(|h| h != &host);
        }
        a.updated_ms = Some(hosts::now_ms());
        self.save_aggregate(&a, Vec::new()).await?;
        Ok(self.one(&a))
    }

    /// `{"set_metadata": {"metadata": {...}}}`: keys set, `null` values removed; the
    /// `availability_zone` key moves the aggregate's hosts to that zone.
    pub(super) async fn aggregate_metadata(&self, id: &str, arg: &Value) -> Res {
        let Value::Object(m) = arg else {
            return Err(schema_error(
                "set_metadata",
                arg,
                &format!("{arg} is not of type 'object'"),
            ));
        };
        only(m, "set_metadata", &["metadata"])?;
        let Some(meta) = m.get("metadata") else {
            return Err(schema_error(
                "set_metadata",
                arg,
                "'metadata' is a required property",
            ));
        };
        let changes = metadata_value(meta)?;
        let _guard = self.api.operator.write.lock().await;
        let mut a = self.aggregate(id)?;
        if let Some(z) = changes.get("availability_zone") {
            let update = |reason: &str| {
                Fault::bad_request(format!(
                    "Cannot update metadata of aggregate {}. Reason: {reason}.",
                    a.id
                ))
            };
            match z {
                Some(z) if z.is_empty() => {
                    return Err(update(&format!(
                        "Aggregate {} does not support empty named availability zone",
                        a.name
                    )));
                }
                Some(z) => {
                    let conflicts = self.conflicting_zones(&a.hosts, z, a.id);
                    if !conflicts.is_empty() {
                        return Err(update(&format!(
                            "One or more hosts already in availability zone(s) {}",
                            Self::python_list(&conflicts)
                        )));
                    }
                }
                None => {}
            }
        }
        for (k, v) in changes {
            match v {
                Some(v) => a.metadata.insert(k, v),
                None => a.metadata.remove(&k),
            };
        }
        a.updated_ms = Some(hosts::now_ms());
        self.save_aggregate(&a, Vec::new()).await?;
        Ok(self.one(&a))
    }
}
