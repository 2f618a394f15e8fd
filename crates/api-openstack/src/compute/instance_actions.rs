//! `GET /servers/{id}/os-instance-actions`: what was done to a server, newest first. Nova's
//! instance actions are nubis's operations (whichever dialect asked for them).

use super::servers::parse_isotime;
use super::servers::query_fault;
use super::{Nova, Res, int_param, param, skip_past};
use crate::errors::{Fault, map};
use crate::{Reply, ids, render};
use nubis_core::{Action, OpState, Operation};
use serde_json::{Value, json};

/// Nova's name for the action (`nova/compute/instance_actions.py`); core's where Nova has none.
fn nova_action(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Start => "start",
        Action::Stop => "stop",
        Action::Reboot => "reboot",
        Action::Terminate => "delete",
        Action::ResetPassword => "changePassword",
        Action::EnterRescue => "rescue",
        Action::ExitRescue => "unrescue",
        Action::LiveMigrate => "live-migration",
        Action::Rebuild => "rebuild",
        Action::AssociateKeys | Action::DisassociateKeys => a.as_str(),
    }
}

fn view(op: &Operation, with_updated: bool) -> Value {
    let mut v = json!({
        "action": nova_action(op.action),
        "instance_uuid": op.instance,
        "request_id": op.request_id,
        "user_id": ids::user_id(&op.account),
        "project_id": ids::project_id(&op.account),
        "start_time": render::iso_micro(op.created_at_ms),
        // Nova writes "Error" when an event of the action failed.
        "message": (op.state == OpState::Failed).then_some("Error"),
    });
    if with_updated {
        v["updated_at"] = json!(render::iso_micro(
            op.finished_at_ms.unwrap_or(op.created_at_ms)
        ));
    }
    v
}

/// When the action last changed (Nova's `updated_at`, what changes-since compares).
fn updated_ms(op: &Operation) -> i64 {
    op.finished_at_ms.unwrap_or(op.created_at_ms)
}

impl Nova<'_> {
    /// The server's actions; from 2.58 with `updated_at` and `limit`, `marker` (a request
    /// ID) and `changes-since`, from 2.66 `changes-before`.
    pub(super) async fn list_instance_actions(&self, id: &str) -> Res {
        let inst = self.server(id)?;
        let mut ops = self
            .api
            .engine
            .admin_operations(&inst.uuid.to_string())
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        ops.retain(|o| o.account == inst.account);
        let paged = self.v.at_least(58);
        if paged {
            let q = self.req.query();
            let time = |key: &str| -> Result<Option<i64>, Fault> {
                param(&q, key)
                    .map(|t| parse_isotime(t).ok_or_else(|| query_fault(key, t, "date-time")))
                    .transpose()
            };
            let since = time("changes-since")?;
            let before = if self.v.at_least(66) {
                time("changes-before")?
            } else {
                None
            };
            ops.retain(|o| {
                since.is_none_or(|t| updated_ms(o) >= t)
                    && before.is_none_or(|t| updated_ms(o) <= t)
            });
            if let Some(marker) = param(&q, "marker")
                && !skip_past(&mut ops, |o| o.request_id == marker)
            {
                return Err(Fault::bad_request(format!(
                    "Marker {marker} could not be found."
                )));
            }
            if let Some(limit) = int_param(&q, "limit")? {
                let limit = usize::try_from(limit).map_err(|_| {
                    query_fault("limit", &limit.to_string(), "non-negative integer")
                })?;
                ops.truncate(limit);
            }
        }
        let list: Vec<Value> = ops.iter().map(|o| view(o, paged)).collect();
        Ok(Reply::json(200, &json!({ "instanceActions": list })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_names_and_fields() {
        assert_eq!(nova_action(Action::Terminate), "delete");
        assert_eq!(nova_action(Action::ResetPassword), "changePassword");
        let op = Operation {
            id: uuid::Uuid::nil(),
            request_id: "req-1".into(),
            account: "admin".into(),
            instance: uuid::Uuid::nil(),
            action: Action::Reboot,
            steps: Vec::new(),
            steps_done: 0,
            display: None,
            from_state: nubis_core::InstanceState::Running,
            state: OpState::Failed,
            attempts: 1,
            error: None,
            created_at_ms: 1_709_296_200_000,
            finished_at_ms: Some(1_709_296_201_000),
            settle: None,
        };
        let v = view(&op, false);
        assert_eq!(v["action"], "reboot");
        assert_eq!(v["message"], "Error");
        assert_eq!(v["start_time"], "2024-03-01T12:30:00.000000");
        assert!(v.get("updated_at").is_none());
        assert_eq!(view(&op, true)["updated_at"], "2024-03-01T12:30:01.000000");
    }
}
