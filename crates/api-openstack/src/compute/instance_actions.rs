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
        Action::ResetPassword => "changePassword",
        Action::LiveMigrate => "live-migration",
        Action::AssociateKeys | Action::DisassociateKeys => a.as_str(),
        // The same name as in Nova's conflict messages.
        Action::Create
        | Action::Start
        | Action::Stop
        | Action::Reboot
        | Action::Terminate
        | Action::EnterRescue
        | Action::ExitRescue
        | Action::Rebuild
        | Action::Resize
        | Action::ConfirmResize
        | Action::RevertResize => crate::state::action_name(a),
        Action::Pause
        | Action::Unpause
        | Action::Suspend
        | Action::Resume
        | Action::Shelve
        | Action::ShelveOffload
        | Action::Unshelve => crate::state::action_name(a),
        // nova/compute/instance_actions.py: a soft delete is recorded as a delete.
        Action::SoftDelete => "delete",
        Action::Restore => "restore",
        Action::CreateImage => crate::state::action_name(a),
    }
}

/// An operation as Nova's instance action; `backup`: a createImage that made a backup.
fn view(op: &Operation, backup: bool, with_updated: bool) -> Value {
    let mut v = json!({
        "action": if backup { "createBackup" } else { nova_action(op.action) },
        "instance_uuid": op.instance,
        "request_id": op.request_id,
        // The Keystone caller's; the account's for what the other dialects asked.
        "user_id": op.user_id.clone().unwrap_or_else(|| ids::user_id(&op.account)),
        "project_id": op.project_id.clone().unwrap_or_else(|| ids::project_id(&op.account)),
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

/// The compute manager's event of the action (Nova's `wrap_instance_event` names it after
/// the manager's method).
fn nova_event(a: Action) -> &'static str {
    match a {
        Action::Create => "compute__do_build_and_run_instance",
        Action::Start => "compute_start_instance",
        Action::Stop => "compute_stop_instance",
        Action::Reboot => "compute_reboot_instance",
        Action::Terminate => "compute_terminate_instance",
        Action::ResetPassword => "compute_set_admin_password",
        Action::EnterRescue => "compute_rescue_instance",
        Action::ExitRescue => "compute_unrescue_instance",
        Action::LiveMigrate => "compute_live_migration",
        Action::Rebuild => "compute_rebuild_instance",
        Action::AssociateKeys => "compute_associate_key_pairs",
        Action::DisassociateKeys => "compute_disassociate_key_pairs",
        // The first event of a resize (its prep on the destination).
        Action::Resize => "compute_prep_resize",
        Action::ConfirmResize => "compute_confirm_resize",
        Action::RevertResize => "compute_revert_resize",
        Action::Pause => "compute_pause_instance",
        Action::Unpause => "compute_unpause_instance",
        Action::Suspend => "compute_suspend_instance",
        Action::Resume => "compute_resume_instance",
        Action::Shelve => "compute_shelve_instance",
        Action::ShelveOffload => "compute_shelve_offload_instance",
        Action::Unshelve => "compute_unshelve_instance",
        Action::SoftDelete => "compute_soft_delete_instance",
        Action::Restore => "compute_restore_instance",
        Action::CreateImage => "compute_snapshot_instance",
    }
}

/// The action's one event: finished with its result, or still running (no finish, no
/// result). `traceback` only for those the events rule allows (Nova's rule from 2.51).
fn event(op: &Operation, backup: bool, traceback: bool) -> Value {
    let mut v = json!({
        "event": if backup { "compute_backup_instance" } else { nova_event(op.action) },
        "start_time": render::iso_micro(op.created_at_ms),
        "finish_time": op.finished_at_ms.map(render::iso_micro),
        "result": match op.state {
            OpState::Operating => None,
            OpState::Success => Some("Success"),
            OpState::Failed => Some("Error"),
        },
    });
    if traceback {
        v["traceback"] = Value::Null;
    }
    v
}

/// When the action last changed (Nova's `updated_at`, what changes-since compares).
fn updated_ms(op: &Operation) -> i64 {
    op.finished_at_ms.unwrap_or(op.created_at_ms)
}

impl Nova<'_> {
    /// Did operation `op` make a Nova backup (createBackup is createImage in core)?
    fn made_backup(&self, op: &Operation) -> bool {
        op.action == Action::CreateImage
            && op.steps.iter().any(|s| match s {
                nubis_core::Step::Snapshot { image_id } => {
                    self.api.engine.image_is_backup(image_id)
                }
                _ => false,
            })
    }

    /// The server whose actions are asked for and its operations, newest first. From 2.21 a
    /// deleted server's too (Nova reads it with `read_deleted='yes'`).
    async fn acted_on(&self, id: &str) -> Result<(nubis_core::Instance, Vec<Operation>), Fault> {
        let inst = match self.server(id) {
            Ok(inst) => inst,
            Err(e) if !self.v.at_least(21) => return Err(e),
            Err(e) => {
                let uuid = uuid::Uuid::parse_str(id).map_err(|_| e)?;
                self.api
                    .engine
                    .instance_incl_deleted(&self.p, uuid)
                    .await
                    .ok()
                    .filter(|i| i.region == super::region().id)
                    .ok_or_else(|| Fault::server_not_found(id))?
            }
        };
        let mut ops = self
            .api
            .engine
            .operations_of(inst.uuid)
            .await
            .map_err(|e| map(e, Some(inst.uuid)))?;
        ops.retain(|o| o.account == inst.account);
        Ok((inst, ops))
    }

    /// `GET /servers/{id}/os-instance-actions/{request_id}`: one action; its events for those
    /// the `os-instance-actions:events` rule allows (admins) and, from 2.51, for everyone
    /// (without the traceback).
    pub(super) async fn show_instance_action(&self, id: &str, request_id: &str) -> Res {
        let (inst, ops) = self.acted_on(id).await?;
        let op = ops
            .iter()
            .find(|o| o.request_id == request_id)
            .ok_or_else(|| {
                Fault::not_found(format!(
                    "Action for request_id {request_id} on instance {} not found",
                    inst.uuid
                ))
            })?;
        let backup = self.made_backup(op);
        let mut v = view(op, backup, self.v.at_least(58));
        let admin = crate::routes::allowed(
            &self.api.nova_policy,
            self.token,
            "os_compute_api:os-instance-actions:events",
            crate::compute::nova_target(self.token),
        );
        if admin || self.v.at_least(51) {
            v["events"] = json!([event(op, backup, admin)]);
        }
        Ok(Reply::json(200, &json!({ "instanceAction": v })))
    }

    /// The server's actions; from 2.58 with `updated_at` and `limit`, `marker` (a request
    /// ID) and `changes-since`, from 2.66 `changes-before`.
    pub(super) async fn list_instance_actions(&self, id: &str) -> Res {
        let (_, mut ops) = self.acted_on(id).await?;
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
        let list: Vec<Value> = ops
            .iter()
            .map(|o| view(o, self.made_backup(o), paged))
            .collect();
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
            user_id: None,
            project_id: None,
        };
        let v = view(&op, false, false);
        assert_eq!(v["action"], "reboot");
        assert_eq!(v["message"], "Error");
        assert_eq!(v["start_time"], "2024-03-01T12:30:00.000000");
        assert!(v.get("updated_at").is_none());
        assert_eq!(
            view(&op, false, true)["updated_at"],
            "2024-03-01T12:30:01.000000"
        );
        assert_eq!(v["user_id"], ids::user_id("admin"));
        let e = event(&op, false, true);
        assert_eq!(
            (&e["event"], &e["result"], &e["finish_time"]),
            (
                &json!("compute_reboot_instance"),
                &json!("Error"),
                &json!("2024-03-01T12:30:01.000000")
            )
        );
        assert!(e.as_object().unwrap().contains_key("traceback"));
        assert!(
            !event(&op, false, false)
                .as_object()
                .unwrap()
                .contains_key("traceback")
        );
        let running = Operation {
            state: OpState::Operating,
            finished_at_ms: None,
            user_id: Some("u1".into()),
            project_id: Some("p1".into()),
            ..op
        };
        let (v, e) = (view(&running, false, false), event(&running, false, false));
        assert_eq!(
            (&v["user_id"], &v["project_id"]),
            (&json!("u1"), &json!("p1"))
        );
        assert!(e["result"].is_null() && e["finish_time"].is_null());
    }
}
