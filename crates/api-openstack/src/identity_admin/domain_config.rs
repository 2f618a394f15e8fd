//! Keystone domain configuration (`/v3/domains/{domain_id}/config[/{group}[/{option}]]`,
//! `/v3/domains/config[/{group}[/{option}]]/default`): parse, call the engine
//! (`nubis_engine::keystone::domain_config`), render `{"config": …}`.

use super::{bad, ks_err, param};
use crate::Reply;
use crate::identity::Ctx;
use nubis_engine::keystone::KsError;
use nubis_engine::keystone::domain_config::{self as dc, Config};
use serde_json::{Map, Value, json};

fn config_reply(status: u16, c: Value) -> Reply {
    Reply::json(status, &json!({"config": c}))
}

fn or_err(r: Result<Reply, KsError>) -> Reply {
    r.unwrap_or_else(ks_err)
}

/// The body's `config` object.
fn body_config(c: &Ctx<'_>) -> Result<Map<String, Value>, Box<Reply>> {
    let v: Value = serde_json::from_slice(c.req.body)
        .map_err(|_| bad(400, "Malformed request body: not JSON."))?;
    match v.get("config") {
        Some(Value::Object(m)) if !m.is_empty() => Ok(m.clone()),
        _ => Err(bad(400, "Expecting to find config in request body.")),
    }
}

/// A whole configuration from a body: group → {option → value}.
fn as_config(m: &Map<String, Value>) -> Result<Config, Box<Reply>> {
    let mut c = Config::new();
    for (g, opts) in m {
        let Value::Object(o) = opts else {
            return Err(bad(
                400,
                &format!("Invalid input for group {g}: an object of options."),
            ));
        };
        c.insert(
            g.clone(),
            o.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        );
    }
    Ok(c)
}

fn shown(c: Config) -> Value {
    json!(dc::shown(c))
}

/// `PUT /v3/domains/{id}/config`: create (201) or replace (200).
pub(crate) async fn put(c: &Ctx<'_>) -> Reply {
    let new = match body_config(c).and_then(|m| as_config(&m)) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if let Err(e) = dc::check_config(&new) {
        return ks_err(e);
    }
    or_err(
        c.api
            .engine
            .ks_change_domain_config(param(c, 0), |x| {
                *x = new;
                Ok(())
            })
            .await
            .map(|(x, existed)| config_reply(if existed { 200 } else { 201 }, shown(x))),
    )
}

pub(crate) async fn show(c: &Ctx<'_>) -> Reply {
    or_err((c.api.engine.ks_domain_config(param(c, 0))).map(|x| config_reply(200, shown(x))))
}

/// Merge `new` into `x`: its groups' options replace or add to the current ones.
fn merge(x: &mut Config, new: Config) {
    for (g, opts) in new {
        x.entry(g).or_default().extend(opts);
    }
}

/// The configuration must exist to be changed (404).
fn existing(x: &Config, domain: &str) -> Result<(), KsError> {
    if x.is_empty() {
        Err(KsError::NotFound("domain configuration", domain.into()))
    } else {
        Ok(())
    }
}

/// `PATCH /v3/domains/{id}/config`.
pub(crate) async fn update(c: &Ctx<'_>) -> Reply {
    let new = match body_config(c).and_then(|m| as_config(&m)) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let domain = param(c, 0);
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                existing(x, domain)?;
                merge(x, new);
                Ok(())
            })
            .await
            .map(|(x, _)| config_reply(200, shown(x))),
    )
}

pub(crate) async fn delete(c: &Ctx<'_>) -> Reply {
    let domain = param(c, 0);
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                existing(x, domain)?;
                x.clear();
                Ok(())
            })
            .await
            .map(|_| Reply::empty(204)),
    )
}

pub(crate) async fn show_group(c: &Ctx<'_>) -> Reply {
    let (domain, group) = (param(c, 0), param(c, 1));
    or_err(c.api.engine.ks_domain_config(domain).and_then(|x| {
        let g = dc::group_of(&dc::shown(x), domain, group)?;
        Ok(config_reply(200, json!({group: g})))
    }))
}

/// `PATCH /v3/domains/{id}/config/{group}`: `{"config": {group: {…}}}`.
pub(crate) async fn update_group(c: &Ctx<'_>) -> Reply {
    let (domain, group) = (param(c, 0), param(c, 1));
    let new = match body_config(c).and_then(|m| as_config(&m)) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    if new.keys().any(|g| g != group) {
        return ks_err(KsError::Invalid(format!(
            "Invalid domain specific configuration: the body names another group than {group}."
        )));
    }
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                existing(x, domain)?;
                dc::group_of(x, domain, group)?;
                merge(x, new);
                Ok(())
            })
            .await
            .map(|(x, _)| config_reply(200, shown(x))),
    )
}

pub(crate) async fn delete_group(c: &Ctx<'_>) -> Reply {
    let (domain, group) = (param(c, 0), param(c, 1));
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                dc::group_of(x, domain, group)?;
                x.remove(group);
                Ok(())
            })
            .await
            .map(|_| Reply::empty(204)),
    )
}

pub(crate) async fn show_option(c: &Ctx<'_>) -> Reply {
    let (domain, group, option) = (param(c, 0), param(c, 1), param(c, 2));
    or_err(c.api.engine.ks_domain_config(domain).and_then(|x| {
        let v = dc::option_of(&dc::shown(x), domain, group, option)?;
        Ok(config_reply(200, json!({option: v})))
    }))
}

/// `PATCH /v3/domains/{id}/config/{group}/{option}`: `{"config": {option: value}}`.
pub(crate) async fn update_option(c: &Ctx<'_>) -> Reply {
    let (domain, group, option) = (param(c, 0), param(c, 1), param(c, 2));
    let m = match body_config(c) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let (Some(v), 1) = (m.get(option), m.len()) else {
        return ks_err(KsError::Invalid(format!(
            "Invalid domain specific configuration: the body sets another option than {option}."
        )));
    };
    let v = v.clone();
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                dc::option_of(x, domain, group, option)?;
                x.entry(group.to_string())
                    .or_default()
                    .insert(option.to_string(), v);
                Ok(())
            })
            .await
            .map(|(x, _)| config_reply(200, shown(x))),
    )
}

pub(crate) async fn delete_option(c: &Ctx<'_>) -> Reply {
    let (domain, group, option) = (param(c, 0), param(c, 1), param(c, 2));
    or_err(
        c.api
            .engine
            .ks_change_domain_config(domain, |x| {
                dc::option_of(x, domain, group, option)?;
                if let Some(g) = x.get_mut(group) {
                    g.remove(option);
                }
                Ok(())
            })
            .await
            .map(|_| Reply::empty(204)),
    )
}

/// `GET /v3/domains/config/default`.
pub(crate) async fn defaults(_c: &Ctx<'_>) -> Reply {
    or_err(dc::defaults(None, None).map(|x| config_reply(200, json!(x))))
}

/// `GET /v3/domains/config/{group}/default`.
pub(crate) async fn group_defaults(c: &Ctx<'_>) -> Reply {
    or_err(dc::defaults(Some(param(c, 0)), None).map(|x| config_reply(200, json!(x))))
}

/// `GET /v3/domains/config/{group}/{option}/default`: `{"config": {option: value}}`.
pub(crate) async fn option_default(c: &Ctx<'_>) -> Reply {
    let (group, option) = (param(c, 0), param(c, 1));
    or_err(dc::defaults(Some(group), Some(option)).map(|x| {
        let v = x
            .get(group)
            .and_then(|g| g.get(option))
            .cloned()
            .unwrap_or(Value::Null);
        config_reply(200, json!({option: v}))
    }))
}
