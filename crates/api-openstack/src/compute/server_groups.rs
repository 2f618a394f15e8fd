//! Server groups, `/os-server-groups`: list, show, create, delete
//! (nova/api/openstack/compute/server_groups.py). One resource with Tencent's spread placement
//! groups and Alibaba's deployment sets (docs/placement-groups.md).

use super::{Nova, Res, check_field, check_keys, int_param, json_body, param};
use crate::errors::{Fault, map};
use crate::{Reply, ids};
use nubis_core::groups::{Flavour, MAX_PER_HOST, PlacementGroup, Policy};
use nubis_engine::{IdKind, Member, NewGroup};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// `name`: 1–255 characters, no leading or trailing blanks (Nova's `parameter_types.name`).
pub(super) const GROUP_NAME: nubis_core::limits::Constraint =
    super::nova_text("name", 1, 255, Some(super::nova_name));

/// Nova's `InstanceGroupNotFound`.
pub(super) fn group_not_found(id: &str) -> Fault {
    Fault::not_found(format!("Instance group {id} could not be found."))
}

impl Nova<'_> {
    /// The group the caller sees under `id`: its own project's (an admin's: any).
    pub(super) fn server_group(&self, id: &str) -> Result<PlacementGroup, Fault> {
        self.api
            .engine
            .placement_group(&self.p, IdKind::Uuid, id)
            .filter(|g| self.admin_role || self.own_group(g))
            .ok_or_else(|| group_not_found(id))
    }

    fn own_group(&self, g: &PlacementGroup) -> bool {
        g.account == self.p.account && self.p.sees_project(g.project.as_deref())
    }

    fn group_view(&self, g: &PlacementGroup, members: &HashMap<String, Vec<Member>>) -> Value {
        let ids: Vec<&str> = members
            .get(&g.id)
            .map(|m| m.iter().map(|m| m.id.as_str()).collect())
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("id".into(), json!(g.id));
        m.insert("name".into(), json!(g.name));
        if self.v.at_least(64) {
            m.insert("policy".into(), json!(g.policy.nova_name()));
            let rules = match (g.policy, g.flavour) {
                // Nova shows the rule its creator gave; Tencent's and Alibaba's affinity is
                // the same limit.
                (Policy::AntiAffinity, _) if g.max_per_host > 1 => {
                    json!({"max_server_per_host": g.max_per_host})
                }
                _ => json!({}),
            };
            m.insert("rules".into(), rules);
        } else {
            m.insert("policies".into(), json!([g.policy.nova_name()]));
            m.insert("metadata".into(), json!({}));
        }
        m.insert("members".into(), json!(ids));
        if self.v.at_least(13) {
            m.insert(
                "project_id".into(),
                json!(
                    g.project
                        .clone()
                        .unwrap_or_else(|| ids::project_id(&g.account))
                ),
            );
            m.insert(
                "user_id".into(),
                json!(
                    g.user_id
                        .clone()
                        .unwrap_or_else(|| ids::user_id(&g.account))
                ),
            );
        }
        Value::Object(m)
    }

    pub(super) fn list_server_groups(&self) -> Res {
        let q = self.req.query();
        let all = self.admin_role && param(&q, "all_projects").is_some();
        let offset = int_param(&q, "offset")?.unwrap_or(0);
        if offset < 0 {
            return Err(Fault::bad_request("offset param must be positive"));
        }
        let limit = int_param(&q, "limit")?;
        if limit.is_some_and(|l| l < 0) {
            return Err(Fault::bad_request("limit param must be positive"));
        }
        let members = self.api.engine.placement_group_members(IdKind::Uuid);
        let list: Vec<Value> = self
            .api
            .engine
            .placement_groups(&self.p)
            .into_iter()
            .filter(|g| all || self.own_group(g))
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            // Nova's `common.limited`: at most `osapi_max_limit` (1000) a page.
            .take(limit.map_or(1000, |l| usize::try_from(l).unwrap_or(0).min(1000)))
            .map(|g| self.group_view(&g, &members))
            .collect();
        Ok(Reply::json(200, &json!({ "server_groups": list })))
    }

    pub(super) fn show_server_group(&self, id: &str) -> Res {
        let g = self.server_group(id)?;
        let members = self.api.engine.placement_group_members(IdKind::Uuid);
        Ok(Reply::json(
            200,
            &json!({"server_group": self.group_view(&g, &members)}),
        ))
    }

    pub(super) async fn create_server_group(&self) -> Res {
        let body = json_body(self.req.body)?;
        let top = body.as_object().ok_or_else(Fault::malformed)?;
        check_keys(top, &["server_group"])?;
        let sg = top
            .get("server_group")
            .and_then(Value::as_object)
            .ok_or_else(|| Fault::bad_request("'server_group' is a required property"))?;
        let new_style = self.v.at_least(64);
        if new_style {
            check_keys(sg, &["name", "policy", "rules"])?;
        } else {
            check_keys(sg, &["name", "policies"])?;
        }
        let name = match sg.get("name") {
            Some(Value::String(n)) => n.as_str(),
            Some(other) => {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string'"
                )));
            }
            None => return Err(Fault::bad_request("'name' is a required property")),
        };
        check_field(&GROUP_NAME, Some(name))?;
        // Soft policies from 2.15.
        let allowed = |p: Policy| self.v.at_least(15) || p.hard();
        let bad_policy = |v: &Value| {
            Fault::bad_request(format!(
                "Invalid input for field/attribute policies. Value: {v}. {v} is not one of {}",
                if self.v.at_least(15) {
                    "['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"
                } else {
                    "['anti-affinity', 'affinity']"
                }
            ))
        };
        let (policy, max_per_host) = if new_style {
            let p = sg
                .get("policy")
                .ok_or_else(|| Fault::bad_request("'policy' is a required property"))?;
            let policy = p
                .as_str()
                .and_then(Policy::from_nova)
                .ok_or_else(|| bad_policy(p))?;
            let max = match sg.get("rules") {
                None => 1,
                Some(Value::Object(rules)) => {
                    check_keys(rules, &["max_server_per_host"])?;
                    if !rules.is_empty() && policy != Policy::AntiAffinity {
                        return Err(Fault::bad_request(
                            "Only anti-affinity policy supports rules.",
                        ));
                    }
                    match rules.get("max_server_per_host") {
                        None => 1,
                        Some(v) => {
                            // A positive integer (or its string form), held to MAX_PER_HOST.
                            let n = v
                                .as_u64()
                                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                                .filter(|n| (1..=u64::from(MAX_PER_HOST)).contains(n))
                                .ok_or_else(|| {
                                    Fault::bad_request(format!(
                                        "Invalid input for field/attribute max_server_per_host. Value: {v}. It must be an integer from 1 to {MAX_PER_HOST}"
                                    ))
                                })?;
                            u32::try_from(n).unwrap_or(1)
                        }
                    }
                }
                Some(other) => {
                    return Err(Fault::bad_request(format!(
                        "Invalid input for field/attribute rules. Value: {other}. {other} is not of type 'object'"
                    )));
                }
            };
            (policy, max)
        } else {
            let ps = sg
                .get("policies")
                .ok_or_else(|| Fault::bad_request("'policies' is a required property"))?;
            let list = ps.as_array().ok_or_else(|| {
                Fault::bad_request(format!(
                    "Invalid input for field/attribute policies. Value: {ps}. {ps} is not of type 'array'"
                ))
            })?;
            let [one] = list.as_slice() else {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute policies. Value: {ps}. {ps} is {}",
                    if list.is_empty() {
                        "too short"
                    } else {
                        "too long"
                    }
                )));
            };
            let policy = one
                .as_str()
                .and_then(Policy::from_nova)
                .ok_or_else(|| bad_policy(one))?;
            (policy, 1)
        };
        if !allowed(policy) {
            return Err(bad_policy(&json!(policy.nova_name())));
        }
        let g = self
            .api
            .engine
            .create_placement_group(
                &self.p,
                NewGroup {
                    name: name.to_string(),
                    description: String::new(),
                    policy,
                    flavour: Flavour::Nova,
                    max_per_host,
                    group_count: 0,
                    on_unable_to_redeploy: String::new(),
                    client_token: None,
                },
            )
            .await
            .map_err(|e| map(e, None))?;
        let members = HashMap::new();
        Ok(Reply::json(
            200,
            &json!({"server_group": self.group_view(&g, &members)}),
        ))
    }

    pub(super) async fn delete_server_group(&self, id: &str) -> Res {
        let g = self.server_group(id)?;
        // Nova deletes a group with members: they simply leave it.
        self.api
            .engine
            .delete_placement_groups(&self.p, std::slice::from_ref(&g.id), true)
            .await
            .map_err(|e| match e {
                nubis_core::DomainError::NotFound { .. } => group_not_found(id),
                other => map(other, None),
            })?;
        Ok(Reply::empty(204))
    }
}
