//! Keystone domain-specific configuration (`/v3/domains/{domain_id}/config`): the
//! `identity` and `ldap` options a domain would use for its own identity backend. nubis keeps
//! and returns them (Keystone's API); its identity backend stays its own directory whatever
//! the configuration says (docs/keystone-v3.md). Stored as one document per domain
//! (`keystone_objects`, kind `domain_config`, ID the domain's).

use super::{KsError, Object};
use crate::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// group → option → value.
pub type Config = BTreeMap<String, BTreeMap<String, Value>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainConfig {
    /// The domain's ID.
    pub id: String,
    pub config: Config,
}

super::id_named!(
    DomainConfig,
    domain_configs,
    "domain_config",
    "domain configuration",
    "domain configurations"
);

/// The options Keystone lets a domain set, with the defaults `GET /v3/domains/config/default`
/// shows (Keystone's `keystone.conf` defaults). `password` (ldap) is sensitive: it is kept
/// but never shown.
pub const OPTIONS: &[(&str, &[(&str, DefaultValue)])] = &[
    (
        "identity",
        &[
            ("driver", DefaultValue::Str("sql")),
            ("list_limit", DefaultValue::Null),
        ],
    ),
    (
        "ldap",
        &[
            ("url", DefaultValue::Str("ldap://localhost")),
            ("user", DefaultValue::Null),
            ("suffix", DefaultValue::Str("cn=example,cn=com")),
            ("query_scope", DefaultValue::Str("one")),
            ("page_size", DefaultValue::Int(0)),
            ("alias_dereferencing", DefaultValue::Str("default")),
            ("debug_level", DefaultValue::Null),
            ("chase_referrals", DefaultValue::Null),
            ("user_tree_dn", DefaultValue::Null),
            ("user_filter", DefaultValue::Null),
            ("user_objectclass", DefaultValue::Str("inetOrgPerson")),
            ("user_id_attribute", DefaultValue::Str("cn")),
            ("user_name_attribute", DefaultValue::Str("sn")),
            ("user_mail_attribute", DefaultValue::Str("mail")),
            (
                "user_description_attribute",
                DefaultValue::Str("description"),
            ),
            ("user_pass_attribute", DefaultValue::Str("userPassword")),
            ("user_enabled_attribute", DefaultValue::Str("enabled")),
            ("user_enabled_invert", DefaultValue::Bool(false)),
            ("user_enabled_mask", DefaultValue::Int(0)),
            ("user_enabled_default", DefaultValue::Str("True")),
            ("user_default_project_id_attribute", DefaultValue::Null),
            ("user_enabled_emulation", DefaultValue::Bool(false)),
            ("user_enabled_emulation_dn", DefaultValue::Null),
            ("group_tree_dn", DefaultValue::Null),
            ("group_filter", DefaultValue::Null),
            ("group_objectclass", DefaultValue::Str("groupOfNames")),
            ("group_id_attribute", DefaultValue::Str("cn")),
            ("group_name_attribute", DefaultValue::Str("ou")),
            ("group_member_attribute", DefaultValue::Str("member")),
            ("group_members_are_ids", DefaultValue::Bool(false)),
            ("group_desc_attribute", DefaultValue::Str("description")),
            ("tls_cacertfile", DefaultValue::Null),
            ("tls_cacertdir", DefaultValue::Null),
            ("use_tls", DefaultValue::Bool(false)),
            ("tls_req_cert", DefaultValue::Str("demand")),
            ("use_pool", DefaultValue::Bool(true)),
            ("pool_size", DefaultValue::Int(10)),
            ("pool_retry_max", DefaultValue::Int(3)),
            ("pool_retry_delay", DefaultValue::Float(0.1)),
            ("pool_connection_timeout", DefaultValue::Int(-1)),
            ("pool_connection_lifetime", DefaultValue::Int(600)),
            ("use_auth_pool", DefaultValue::Bool(true)),
            ("auth_pool_size", DefaultValue::Int(100)),
            ("auth_pool_connection_lifetime", DefaultValue::Int(60)),
            ("password", DefaultValue::Null),
        ],
    ),
];

/// Options never shown back.
pub const SENSITIVE: &[(&str, &str)] = &[("ldap", "password")];
/// An option's value, serialized (nubis).
pub const MAX_OPTION_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    Null,
    Str(&'static str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl DefaultValue {
    fn json(self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Str(s) => Value::from(s),
            Self::Int(i) => Value::from(i),
            Self::Float(f) => Value::from(f),
            Self::Bool(b) => Value::from(b),
        }
    }
}

fn options_of(group: &str) -> Result<&'static [(&'static str, DefaultValue)], KsError> {
    OPTIONS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, o)| *o)
        .ok_or_else(|| {
            KsError::Forbidden(format!(
                "Invalid domain specific configuration: Group {group} is not supported for domain specific configurations."
            ))
        })
}

fn check_option(group: &str, option: &str) -> Result<(), KsError> {
    if options_of(group)?.iter().any(|(o, _)| *o == option) {
        Ok(())
    } else {
        Err(KsError::Forbidden(format!(
            "Invalid domain specific configuration: Option {option} in group {group} is not supported for domain specific configurations."
        )))
    }
}

/// Every group and option of `c` is supported, every value small.
pub fn check_config(c: &Config) -> Result<(), KsError> {
    if c.is_empty() || c.values().any(BTreeMap::is_empty) {
        return Err(KsError::Invalid(
            "Invalid input for field 'config': an empty configuration or group.".into(),
        ));
    }
    for (g, opts) in c {
        for (o, v) in opts {
            check_option(g, o)?;
            if serde_json::to_string(v).map_or(usize::MAX, |s| s.len()) > MAX_OPTION_BYTES {
                return Err(KsError::Invalid(format!(
                    "Invalid input for option {o}: at most {MAX_OPTION_BYTES} bytes."
                )));
            }
        }
    }
    Ok(())
}

/// `c` without its sensitive options.
pub fn shown(mut c: Config) -> Config {
    for (g, o) in SENSITIVE {
        if let Some(opts) = c.get_mut(*g) {
            opts.remove(*o);
            if opts.is_empty() {
                c.remove(*g);
            }
        }
    }
    c
}

/// Keystone's defaults: every group, or one group, or one option.
pub fn defaults(group: Option<&str>, option: Option<&str>) -> Result<Config, KsError> {
    let mut c = Config::new();
    for (g, opts) in OPTIONS {
        if group.is_some_and(|x| x != *g) {
            continue;
        }
        for (o, d) in *opts {
            if option.is_some_and(|x| x != *o) || SENSITIVE.contains(&(*g, *o)) {
                continue;
            }
            c.entry((*g).to_string())
                .or_default()
                .insert((*o).to_string(), d.json());
        }
    }
    if let Some(g) = group {
        options_of(g)?;
        if let Some(o) = option {
            check_option(g, o)?;
        }
    }
    Ok(c)
}

impl Engine {
    /// The domain's configuration (404 when it has none).
    pub fn ks_domain_config(&self, domain: &str) -> Result<Config, KsError> {
        self.ks_domain(domain)?;
        self.ks()
            .domain_configs
            .get(domain)
            .map(|d| d.config.clone())
            .ok_or_else(|| KsError::NotFound("domain configuration", domain.into()))
    }

    /// Change a domain's configuration with `f` (on the current one, empty if none) and
    /// store it; an empty result deletes it. Returns the new one and whether one existed.
    pub async fn ks_change_domain_config(
        &self,
        domain: &str,
        f: impl FnOnce(&mut Config) -> Result<(), KsError>,
    ) -> Result<(Config, bool), KsError> {
        let _serial = self.inner.credentials.lock().await;
        self.ks_domain(domain)?;
        let existed = self.ks().domain_configs.get(domain).cloned();
        let mut c = existed
            .as_ref()
            .map(|d| d.config.clone())
            .unwrap_or_default();
        f(&mut c)?;
        c.retain(|_, o| !o.is_empty());
        if c.is_empty() {
            if existed.is_some() {
                self.commit(vec![super::del(DomainConfig::KIND, domain)])
                    .await?;
                self.inner.keystone.write().domain_configs.remove(domain);
            }
            return Ok((c, existed.is_some()));
        }
        check_config(&c)?;
        self.ks_bound(self.ks().domain_configs.len(), "domain configurations")?;
        let d = DomainConfig {
            id: domain.into(),
            config: c.clone(),
        };
        self.ks_save(&d, Vec::new()).await?;
        Ok((c, existed.is_some()))
    }
}

/// Option lookups for the dialect: `group` of `c` (404 when unset).
pub fn group_of(c: &Config, domain: &str, group: &str) -> Result<BTreeMap<String, Value>, KsError> {
    options_of(group)?;
    c.get(group).cloned().ok_or_else(|| {
        KsError::NotFound(
            "group",
            format!("{group} in domain configuration for domain {domain}"),
        )
    })
}

/// `option` of `group` of `c` (404 when unset).
pub fn option_of(c: &Config, domain: &str, group: &str, option: &str) -> Result<Value, KsError> {
    check_option(group, option)?;
    c.get(group)
        .and_then(|g| g.get(option))
        .cloned()
        .ok_or_else(|| {
            KsError::NotFound(
                "option",
                format!("{option} in domain configuration for domain {domain}"),
            )
        })
}
