//! `/os-quota-sets/{project}` (show, defaults, detail, update, delete) over the account
//! quotas of the engine (docs/quotas.md). A project is an account (`ids::project_id`); the
//! quotas nubis does not enforce show Nova's defaults and cannot be changed.

use super::{Nova, Res, json_body};
use crate::errors::{Fault, map};
use crate::{Reply, ids};
use nubis_core::{QuotaLimits, QuotaOverrides, QuotaUsage, rules::quota::MAX_LIMIT};
use serde_json::{Map, Value, json};

/// What the view shows of each resource.
#[derive(Clone, Copy)]
enum View {
    Limit,
    Detail,
}

/// The fixed quotas (Nova's defaults), by the microversion that dropped them.
fn fixed(v: crate::microversion::Version) -> Vec<(&'static str, i64)> {
    let mut f = vec![
        ("metadata_items", 128),
        ("server_groups", 10),
        ("server_group_members", 10),
    ];
    if !v.at_least(36) {
        f.extend([
            ("fixed_ips", -1),
            ("floating_ips", 10),
            ("security_group_rules", 20),
            ("security_groups", 10),
        ]);
    }
    if !v.at_least(57) {
        f.extend([
            ("injected_file_content_bytes", 10240),
            ("injected_file_path_bytes", 255),
            ("injected_files", 5),
        ]);
    }
    f
}

/// The keys `PUT` takes: the enforced ones; the fixed ones are refused with a reason.
const SETTABLE: &[&str] = &["instances", "cores", "ram", "key_pairs"];

impl Nova<'_> {
    /// The account whose project ID this is (400 as Nova's `verify_project_id` answers).
    fn project_account(&self, project: &str) -> Result<String, Fault> {
        self.api
            .engine
            .accounts()
            .into_iter()
            .find(|a| ids::project_id(&a.id) == project)
            .map(|a| a.id)
            .ok_or_else(|| {
                Fault::bad_request(format!("Project ID {project} is not a valid project."))
            })
    }

    /// Readers see their own project; another project's quotas need the admin role.
    fn may_read_quota(&self, account: &str, rule: &str) -> Result<(), Fault> {
        if self.admin_role || account == self.p.account {
            Ok(())
        } else {
            Err(Fault::new(
                403,
                format!("Policy doesn't allow {rule} to be performed."),
            ))
        }
    }

    fn quota_set(
        &self,
        id: Option<&str>,
        limits: &QuotaLimits,
        usage: Option<&QuotaUsage>,
        view: View,
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
        m.insert("instances".into(), entry(limits.instances, u.instances));
        m.insert("cores".into(), entry(limits.cores, u.cores));
        m.insert("ram".into(), entry(limits.ram_mib, u.ram_mib));
        m.insert("key_pairs".into(), entry(limits.key_pairs, u.key_pairs));
        for (k, n) in fixed(self.v) {
            m.insert(k.into(), entry(n, 0));
        }
        Value::Object(m)
    }

    /// `GET /os-quota-sets/{project}` (`detail`: with usage) and `…/defaults`.
    pub(super) fn show_quota_set(&self, project: &str, what: &str) -> Res {
        let account = self.project_account(project)?;
        let rule = format!("os_compute_api:os-quota-sets:{what}");
        self.may_read_quota(&account, &rule)?;
        let q = self
            .api
            .engine
            .quota(&account)
            .map_err(|e| map(nubis_core::DomainError::Internal(e.to_string()), None))?;
        let set = match what {
            "defaults" => self.quota_set(Some(project), &q.defaults, None, View::Limit),
            "detail" => self.quota_set(Some(project), &q.limits, Some(&q.usage), View::Detail),
            _ => self.quota_set(Some(project), &q.limits, None, View::Limit),
        };
        Ok(Reply::json(200, &json!({"quota_set": set})))
    }

    /// `PUT /os-quota-sets/{project}` (admin): `{"quota_set": {"instances": 5, "force": true}}`.
    /// Without `force`, a limit below what the project uses is refused (400), as Nova does.
    pub(super) async fn update_quota_set(&self, project: &str) -> Res {
        // Nova's order: the body's schema, the policy, then the project.
        let body = json_body(self.req.body)?;
        let Some(Value::Object(set)) = body
            .get("quota_set")
            .filter(|_| body.as_object().is_some_and(|o| o.len() == 1))
        else {
            return Err(Fault::bad_request(
                "Invalid input for field/attribute quota_set. Value: None. 'quota_set' is a required property",
            ));
        };
        let mut force = false;
        let mut change = QuotaOverrides::default();
        for (k, v) in set {
            if k == "force" {
                force = match v {
                    Value::Bool(b) => *b,
                    Value::String(s)
                        if matches!(
                            s.to_ascii_lowercase().as_str(),
                            "true" | "yes" | "1" | "on"
                        ) =>
                    {
                        true
                    }
                    Value::String(s)
                        if matches!(
                            s.to_ascii_lowercase().as_str(),
                            "false" | "no" | "0" | "off"
                        ) =>
                    {
                        false
                    }
                    _ => {
                        return Err(Fault::bad_request(format!(
                            "Invalid input for field/attribute force. Value: {v}. {v} is not of type 'boolean', 'string'"
                        )));
                    }
                };
                continue;
            }
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse::<i64>().ok(),
                _ => None,
            }
            .filter(|n| (-1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                Fault::bad_request(format!(
                    "Invalid input for field/attribute {k}. Value: {v}. {v} is not a valid quota value: an integer -1…{MAX_LIMIT}"
                ))
            })?;
            match k.as_str() {
                "instances" => change.instances = Some(n),
                "cores" => change.cores = Some(n),
                "ram" => change.ram_mib = Some(n),
                "key_pairs" => change.key_pairs = Some(n),
                other if fixed(self.v).iter().any(|(f, _)| *f == other) => {
                    return Err(Fault::bad_request(format!(
                        "Quota {other} cannot be changed in nubis: only {} are enforced",
                        SETTABLE.join(", ")
                    )));
                }
                other => {
                    return Err(Fault::bad_request(format!(
                        "Invalid input for field/attribute quota_set. Value: {}. Additional properties are not allowed ('{other}' was unexpected)",
                        Value::Object(set.clone())
                    )));
                }
            }
        }
        if !self.admin_role {
            return Err(Fault::new(
                403,
                "Policy doesn't allow os_compute_api:os-quota-sets:update to be performed.",
            ));
        }
        let account = self.project_account(project)?;
        if !force {
            let q = self
                .api
                .engine
                .quota(&account)
                .map_err(|e| map(nubis_core::DomainError::Internal(e.to_string()), None))?;
            for (key, new, used) in [
                ("instances", change.instances, q.usage.instances),
                ("cores", change.cores, q.usage.cores),
                ("ram", change.ram_mib, q.usage.ram_mib),
                ("key_pairs", change.key_pairs, q.usage.key_pairs),
            ] {
                if let Some(n) = new
                    && n >= 0
                    && (n as u64) < used
                {
                    return Err(Fault::bad_request(format!(
                        "Quota limit {n} for {key} must be greater than or equal to already used and reserved {used}."
                    )));
                }
            }
        }
        let q = self
            .api
            .engine
            .set_quota(&account, &change)
            .await
            .map_err(|e| match e {
                nubis_engine::CredentialError::Domain(d) => map(d, None),
                other => Fault::bad_request(other.to_string()),
            })?;
        Ok(Reply::json(
            200,
            &json!({"quota_set": self.quota_set(None, &q.limits, None, View::Limit)}),
        ))
    }

    /// `DELETE /os-quota-sets/{project}` (admin): back to the defaults; 202.
    pub(super) async fn delete_quota_set(&self, project: &str) -> Res {
        if !self.admin_role {
            return Err(Fault::new(
                403,
                "Policy doesn't allow os_compute_api:os-quota-sets:delete to be performed.",
            ));
        }
        let account = self.project_account(project)?;
        self.api
            .engine
            .reset_quota(&account)
            .await
            .map_err(|e| match e {
                nubis_engine::CredentialError::Domain(d) => map(d, None),
                other => Fault::bad_request(other.to_string()),
            })?;
        Ok(Reply::empty(202))
    }
}
