//! `/os-quota-sets/{project}` (show, defaults, detail, update, delete; `?user_id=` for a
//! user's quota in the project) and `/os-quota-class-sets/{class}` (show, update) over the
//! engine's quota scopes (docs/quotas.md). A Keystone project is the account itself when it
//! is the account's default project, else a scope of its own; `default` is the quota class
//! every account but the bootstrap admin falls back to.

use super::{Nova, Res, json_body, param};
use crate::errors::{Fault, map};
use crate::microversion::Version;
use crate::{Reply, ids};
use nubis_core::{ItemQuota, QuotaLimits, QuotaOverrides, QuotaUsage, rules::quota::MAX_LIMIT};
use nubis_engine::{QuotaScope, QuotaView};
use serde_json::{Map, Value, json};

/// What the view shows of each resource.
#[derive(Clone, Copy)]
enum View {
    Limit,
    Detail,
}

/// Which keys a quota set or class set carries at a microversion.
#[derive(Clone, Copy)]
enum Keys {
    /// `os-quota-sets`: network quotas until 2.35, personality ones until 2.56.
    Set,
    /// `os-quota-class-sets` as shown: before 2.50 without the server group quotas (a bug
    /// Nova kept for v2.1 compatibility) but with the network ones; from 2.50 without the
    /// network ones; from 2.57 without the personality ones.
    ClassShown,
    /// `os-quota-class-sets` as taken by `PUT`: every key before 2.50, then as shown.
    ClassTaken,
}

/// The capacity quotas, by Nova name.
const CAPACITY: [&str; 4] = ["instances", "cores", "ram", "key_pairs"];

/// The longest user ID or class name taken (Nova's columns are 255 wide).
const MAX_ID: usize = 255;

fn item_shown(i: ItemQuota, v: Version, keys: Keys) -> bool {
    let (network_until, injected_until) = match keys {
        Keys::Set => (36, 57),
        Keys::ClassShown | Keys::ClassTaken => (50, 57),
    };
    let grouped = matches!(i, ItemQuota::ServerGroups | ItemQuota::ServerGroupMembers);
    if grouped {
        return !matches!(keys, Keys::ClassShown) || v.at_least(50);
    }
    !(i.is_network() && v.at_least(network_until) || i.is_injected() && v.at_least(injected_until))
}

fn capacity(l: &QuotaLimits, u: &QuotaUsage, key: &str) -> (i64, u64) {
    match key {
        "instances" => (l.instances, u.instances),
        "cores" => (l.cores, u.cores),
        "ram" => (l.ram_mib, u.ram_mib),
        _ => (l.key_pairs, u.key_pairs),
    }
}

fn set_capacity(o: &mut QuotaOverrides, key: &str, n: i64) {
    match key {
        "instances" => o.instances = Some(n),
        "cores" => o.cores = Some(n),
        "ram" => o.ram_mib = Some(n),
        _ => o.key_pairs = Some(n),
    }
}

/// Nova's quota body: `{"<root>": {"instances": 5, "force": true, …}}` with the keys this
/// microversion takes (values integers or integer strings, −1…2³¹−1).
fn parse_body(
    body: &Value,
    root: &str,
    v: Version,
    keys: Keys,
    force_allowed: bool,
) -> Result<(bool, QuotaOverrides), Fault> {
    let Some(Value::Object(set)) = body
        .get(root)
        .filter(|_| body.as_object().is_some_and(|o| o.len() == 1))
    else {
        return Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {root}. Value: None. '{root}' is a required property"
        )));
    };
    let mut force = false;
    let mut change = QuotaOverrides::default();
    for (k, val) in set {
        if k == "force" && force_allowed {
            force = parse_force(val)?;
            continue;
        }
        let item = ItemQuota::from_nova_name(k).filter(|i| item_shown(*i, v, keys));
        if !CAPACITY.contains(&k.as_str()) && item.is_none() {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute {root}. Value: {}. Additional properties are not allowed ('{k}' was unexpected)",
                Value::Object(set.clone())
            )));
        }
        let n = match val {
            Value::Number(n) => n.as_i64(),
            Value::String(s) if s.len() <= 12 => s.parse::<i64>().ok(),
            _ => None,
        }
        .filter(|n| (-1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            Fault::bad_request(format!(
                "Invalid input for field/attribute {k}. Value: {val}. {val} is not a valid quota value: an integer -1…{MAX_LIMIT}"
            ))
        })?;
        match item {
            Some(i) => {
                change.items.insert(i, n);
            }
            None => set_capacity(&mut change, k, n),
        }
    }
    Ok((force, change))
}

/// Nova's `force`: a boolean or its usual spellings.
fn parse_force(v: &Value) -> Result<bool, Fault> {
    let word = |s: &str| match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" | "y" | "t" => Some(true),
        "false" | "no" | "0" | "off" | "n" | "f" => Some(false),
        _ => None,
    };
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.len() <= 8 => word(s),
        _ => None,
    }
    .ok_or_else(|| {
        Fault::bad_request(format!(
            "Invalid input for field/attribute force. Value: {v}. {v} is not of type 'boolean', 'string'"
        ))
    })
}

fn engine_fault(e: nubis_engine::CredentialError) -> Fault {
    match e {
        nubis_engine::CredentialError::Domain(d) => map(d, None),
        other => Fault::bad_request(other.to_string()),
    }
}

impl Nova<'_> {
    /// The scope of Keystone project `project` (400 as Nova's `verify_project_id` answers
    /// for a project Keystone does not know); with `user_id`, that user's in it.
    pub(super) fn quota_scope(&self, project: &str) -> Result<QuotaScope, Fault> {
        let engine = &self.api.engine;
        let account = engine
            .accounts()
            .into_iter()
            .find(|a| ids::project_id(&a.id) == project)
            .map(|a| a.id)
            .or_else(|| {
                let p = engine
                    .ks_get::<nubis_engine::keystone::Project>(project)
                    .ok()?;
                let d = engine
                    .ks_get::<nubis_engine::keystone::Domain>(&p.domain_id)
                    .ok()?;
                Some(d.account)
            })
            .ok_or_else(|| {
                Fault::bad_request(format!("Project ID {project} is not a valid project."))
            })?;
        let q = self.req.query();
        match param(&q, "user_id") {
            Some(u) if u.is_empty() || u.len() > MAX_ID => Err(Fault::bad_request(format!(
                "Invalid input for query parameters user_id. Value: {u}. user_id must be 1 to {MAX_ID} characters"
            ))),
            Some(user) => Ok(QuotaScope::User {
                account,
                project: project.to_string(),
                user: user.to_string(),
            }),
            None => Ok(QuotaScope::project(&account, project)),
        }
    }

    pub(super) fn policy_refusal(rule: &str) -> Fault {
        Fault::new(403, format!("Policy doesn't allow {rule} to be performed."))
    }

    /// Readers see their own project's quotas; another project's need the admin role.
    fn may_read_quota(&self, project: &str, rule: &str) -> Result<(), Fault> {
        let own = self.p.project.as_ref().is_some_and(|s| s.id == project)
            || ids::project_id(&self.p.account) == project && self.p.project.is_none();
        if self.admin_role || own {
            Ok(())
        } else {
            Err(Self::policy_refusal(rule))
        }
    }

    fn quota_view(&self, scope: &QuotaScope) -> Result<QuotaView, Fault> {
        self.api.engine.quota_of(scope).map_err(engine_fault)
    }

    fn quota_set(
        &self,
        id: Option<&str>,
        limits: &QuotaLimits,
        usage: Option<&QuotaUsage>,
        view: View,
        keys: Keys,
    ) -> Value {
        let mut m = Map::new();
        if let Some(id) = id {
            m.insert("id".into(), json!(id));
        }
        let entry = |limit: i64, used: u64| match (view, usage) {
            (View::Detail, Some(_)) => json!({"limit": limit, "in_use": used, "reserved": 0}),
            _ => json!(limit),
        };
        let u = usage.copied().unwrap_or_default();
        for key in CAPACITY {
            let (limit, used) = capacity(limits, &u, key);
            m.insert(key.into(), entry(limit, used));
        }
        for i in ItemQuota::ALL
            .into_iter()
            .filter(|i| item_shown(*i, self.v, keys))
        {
            let used = if i == ItemQuota::ServerGroups {
                u.server_groups
            } else {
                0
            };
            m.insert(i.nova_name().into(), entry(limits.items.get(i), used));
        }
        Value::Object(m)
    }

    /// `GET /os-quota-sets/{project}` (`detail`: with usage) and `…/defaults`.
    pub(super) fn show_quota_set(&self, project: &str, what: &str) -> Res {
        let scope = self.quota_scope(project)?;
        let rule = format!("os_compute_api:os-quota-sets:{what}");
        if what != "defaults" {
            self.may_read_quota(project, &rule)?;
        }
        let q = self.quota_view(&scope)?;
        let set = match what {
            "defaults" => {
                // The project's defaults, whatever user was named.
                let project_scope = match &scope {
                    QuotaScope::User { account, .. } => QuotaScope::project(account, project),
                    s => s.clone(),
                };
                let d = self.quota_view(&project_scope)?.defaults;
                self.quota_set(Some(project), &d, None, View::Limit, Keys::Set)
            }
            "detail" => self.quota_set(
                Some(project),
                &q.limits,
                Some(&q.usage),
                View::Detail,
                Keys::Set,
            ),
            _ => self.quota_set(Some(project), &q.limits, None, View::Limit, Keys::Set),
        };
        Ok(Reply::json(200, &json!({"quota_set": set})))
    }

    /// `PUT /os-quota-sets/{project}[?user_id=]` (admin): `{"quota_set": {"instances": 5,
    /// "force": true}}`. Without `force`, a limit below what the scope uses, or a user's
    /// above its project's, is refused (400), as Nova does.
    pub(super) async fn update_quota_set(&self, project: &str) -> Res {
        // Nova's order: the body's schema, the policy, then the project.
        let body = json_body(self.req.body)?;
        let (force, change) = parse_body(&body, "quota_set", self.v, Keys::Set, true)?;
        if !self.admin_role {
            return Err(Self::policy_refusal("os_compute_api:os-quota-sets:update"));
        }
        let scope = self.quota_scope(project)?;
        if !force {
            self.check_quota_change(&scope, project, &change)?;
        }
        let q = self
            .api
            .engine
            .set_quota_of(&scope, &change)
            .await
            .map_err(engine_fault)?;
        let set = self.quota_set(None, &q.limits, None, View::Limit, Keys::Set);
        Ok(Reply::json(200, &json!({"quota_set": set})))
    }

    /// Nova's `_validate_quota_limit`: not below what is used, and a user's not above its
    /// project's.
    fn check_quota_change(
        &self,
        scope: &QuotaScope,
        project: &str,
        change: &QuotaOverrides,
    ) -> Result<(), Fault> {
        let q = self.quota_view(scope)?;
        let parent = match scope {
            QuotaScope::User { account, .. } => Some(
                self.quota_view(&QuotaScope::project(account, project))?
                    .limits,
            ),
            _ => None,
        };
        let mut wanted: Vec<(&str, i64, u64, Option<i64>)> = Vec::new();
        for key in CAPACITY {
            let new = match key {
                "instances" => change.instances,
                "cores" => change.cores,
                "ram" => change.ram_mib,
                _ => change.key_pairs,
            };
            if let Some(n) = new {
                let used = capacity(&q.limits, &q.usage, key).1;
                let max = parent
                    .as_ref()
                    .map(|l| capacity(l, &QuotaUsage::default(), key).0);
                wanted.push((key, n, used, max));
            }
        }
        for (i, n) in &change.items {
            let used = if *i == ItemQuota::ServerGroups {
                q.usage.server_groups
            } else {
                0
            };
            let max = parent.as_ref().map(|l| l.items.get(*i));
            wanted.push((i.nova_name(), *n, used, max));
        }
        for (key, n, used, max) in wanted {
            if n >= 0 && (n as u64) < used {
                return Err(Fault::bad_request(format!(
                    "Quota limit {n} for {key} must be greater than or equal to already used and reserved {used}."
                )));
            }
            if let Some(max) = max
                && max >= 0
                && (n < 0 || n > max)
            {
                return Err(Fault::bad_request(format!(
                    "Quota limit {n} for {key} must be less than or equal to {max}."
                )));
            }
        }
        Ok(())
    }

    /// `DELETE /os-quota-sets/{project}[?user_id=]` (admin): back to the defaults; 202.
    pub(super) async fn delete_quota_set(&self, project: &str) -> Res {
        if !self.admin_role {
            return Err(Self::policy_refusal("os_compute_api:os-quota-sets:delete"));
        }
        let scope = self.quota_scope(project)?;
        self.api
            .engine
            .reset_quota_of(&scope)
            .await
            .map_err(engine_fault)?;
        Ok(Reply::empty(202))
    }

    /// `GET /os-quota-class-sets/{class}` (admin): the class's limits (any name: one never
    /// set shows the defaults).
    pub(super) fn show_quota_class_set(&self, class: &str) -> Res {
        if !self.admin_role {
            return Err(Self::policy_refusal(
                "os_compute_api:os-quota-class-sets:show",
            ));
        }
        let q = self.quota_view(&QuotaScope::Class(class.to_string()))?;
        let set = self.quota_set(Some(class), &q.limits, None, View::Limit, Keys::ClassShown);
        Ok(Reply::json(200, &json!({"quota_class_set": set})))
    }

    /// `PUT /os-quota-class-sets/{class}` (admin): `default` changes the defaults of every
    /// account but the bootstrap admin and of their projects.
    pub(super) async fn update_quota_class_set(&self, class: &str) -> Res {
        let body = json_body(self.req.body)?;
        let (_, change) = parse_body(&body, "quota_class_set", self.v, Keys::ClassTaken, false)?;
        if !self.admin_role {
            return Err(Self::policy_refusal(
                "os_compute_api:os-quota-class-sets:update",
            ));
        }
        if class.is_empty() || class.len() > MAX_ID {
            return Err(Fault::bad_request(format!(
                "quota_class_name has a length of {} characters, which is more than {MAX_ID}.",
                class.len()
            )));
        }
        let q = self
            .api
            .engine
            .set_quota_of(&QuotaScope::Class(class.to_string()), &change)
            .await
            .map_err(engine_fault)?;
        let set = self.quota_set(None, &q.limits, None, View::Limit, Keys::ClassShown);
        Ok(Reply::json(200, &json!({"quota_class_set": set})))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u16) -> Version {
        Version(2, minor)
    }

    #[test]
    fn keys_follow_the_microversions() {
        let shown = |minor, keys| {
            ItemQuota::ALL
                .into_iter()
                .filter(|i| item_shown(*i, v(minor), keys))
                .map(ItemQuota::nova_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(1, Keys::Set).len(), 10);
        assert!(!shown(36, Keys::Set).contains(&"floating_ips"));
        assert!(shown(36, Keys::Set).contains(&"injected_files"));
        assert_eq!(
            shown(57, Keys::Set),
            ["metadata_items", "server_groups", "server_group_members"]
        );
        // Class sets before 2.50 hide the group quotas but take them.
        assert!(!shown(1, Keys::ClassShown).contains(&"server_groups"));
        assert!(shown(1, Keys::ClassTaken).contains(&"server_groups"));
        assert!(shown(1, Keys::ClassShown).contains(&"fixed_ips"));
        assert!(!shown(50, Keys::ClassShown).contains(&"fixed_ips"));
        assert!(shown(50, Keys::ClassShown).contains(&"server_groups"));
        assert!(!shown(57, Keys::ClassTaken).contains(&"injected_files"));
    }

    #[test]
    fn bodies_are_checked_before_anything_is_set() {
        let ok = json!({"quota_set": {"ram": "5120", "metadata_items": 256, "force": "True"}});
        let (force, o) = parse_body(&ok, "quota_set", v(1), Keys::Set, true).unwrap();
        assert!(force);
        assert_eq!(o.ram_mib, Some(5120));
        assert_eq!(o.items.get(&ItemQuota::MetadataItems), Some(&256));
        for bad in [
            json!({"quota_set": {"ram": -2}}),
            json!({"quota_set": {"ram": 2147483648_i64}}),
            json!({"quota_set": {"ram": "1e3"}}),
            json!({"quota_set": {"ram": 1.5}}),
            json!({"quota_set": {"bogus": 1}}),
            json!({"quota_set": {"force": "maybe"}}),
            json!({"quota_set": {}, "extra": 1}),
            json!({"quota": {}}),
            json!([]),
        ] {
            assert!(
                parse_body(&bad, "quota_set", v(1), Keys::Set, true).is_err(),
                "{bad}"
            );
        }
        // Dropped keys are unknown at their microversion; class sets take no force.
        let net = json!({"quota_set": {"floating_ips": 1}});
        assert!(parse_body(&net, "quota_set", v(36), Keys::Set, true).is_err());
        let forced = json!({"quota_class_set": {"force": true}});
        assert!(parse_body(&forced, "quota_class_set", v(1), Keys::ClassTaken, false).is_err());
    }
}
