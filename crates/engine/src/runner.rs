//! Workers: run an operation's remaining steps through the driver, recording each one.

use crate::{Engine, now_ms, vm_spec};
use nubis_core::{InstanceState, LatestOp, OpState};
use nubis_driver::{Boot, Facts, Power, Turn};
use nubis_store::Write;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

/// The state the driver's facts show, if it reports any (core's reading of them).
fn observed(facts: Option<Facts>) -> Option<InstanceState> {
    facts.map(|f| nubis_core::op::observed(f.power == Power::On, f.booted == Boot::Rescue))
}

impl Engine {
    /// Follow facts that change outside operations (a guest powered itself off, QEMU died, a
    /// guest was gone after a restart): the instance shows what the driver reports.
    pub(crate) fn spawn_watcher(&self, mut events: mpsc::UnboundedReceiver<Uuid>) {
        let engine = self.clone();
        tokio::spawn(async move {
            while let Some(id) = events.recv().await {
                let writes = {
                    let mut fleet = engine.inner.fleet.lock();
                    let facts = engine.inner.driver.facts(id);
                    let Some(inst) = fleet.instances.get_mut(&id) else {
                        continue;
                    };
                    // A running operation settles the state itself when it ends.
                    if inst.lock.is_some() {
                        continue;
                    }
                    let state = observed(facts).unwrap_or(inst.state);
                    if state == inst.state {
                        continue;
                    }
                    tracing::warn!(instance = %inst.tencent_id, from = ?inst.state, to = ?state, "guest changed outside an operation");
                    inst.state = state;
                    inst.updated_at_ms = now_ms();
                    let mut w = vec![Write::Instance(Box::new(inst.clone()))];
                    w.extend(engine.guest_write(id));
                    w
                };
                engine.record(writes).await;
            }
        });
    }

    pub(crate) fn spawn_runner(&self, op_id: Uuid) {
        let engine = self.clone();
        let span = tracing::info_span!("operation", op = %op_id);
        tokio::spawn(async move { engine.run(op_id).await }.instrument(span));
    }

    /// Commit, retrying while the store is away: finished work must not be forgotten.
    async fn record(&self, writes: Vec<Write>) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.commit(writes.clone()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot record operation progress; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The gate of an instance's steps (made on first use, dropped with the instance).
    fn gate(&self, instance: Uuid) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.inner.gates.lock().entry(instance).or_default().clone()
    }

    async fn run(&self, op_id: Uuid) {
        let Some(instance) = self
            .inner
            .fleet
            .lock()
            .running
            .get(&op_id)
            .map(|op| op.instance)
        else {
            return;
        };
        let gate = self.gate(instance);
        loop {
            // Held from reading the next step to recording it: an operation superseded
            // meanwhile (a delete) is seen here and runs no further step.
            let _turn = gate.lock().await;
            let next = {
                let fleet = self.inner.fleet.lock();
                let Some(op) = fleet.running.get(&op_id) else {
                    return;
                };
                let Some(inst) = fleet.instances.get(&op.instance) else {
                    return;
                };
                op.steps
                    .get(op.steps_done as usize)
                    .map(|s| (vm_spec(inst), s.clone(), op.action, op.steps_done))
            };
            let Some((spec, step, action, index)) = next else {
                if self.finish(op_id, None).await {
                    return;
                }
                // A step was appended meanwhile (a start joined the create): run it.
                continue;
            };
            tracing::debug!(?step, action = action.as_str(), "step");
            // Named by its turn: a driver that finished this very step before a restart (its
            // commit lost) does not repeat an effect it cannot observe, such as a reboot.
            let turn = Turn { op: op_id, index };
            if let Err(e) = self.inner.driver.execute_turn(&spec, &step, turn).await {
                tracing::info!(error = %e, "operation failed");
                self.finish(op_id, Some(e.to_string())).await;
                return;
            }
            let writes = {
                let mut fleet = self.inner.fleet.lock();
                let facts = self.inner.driver.facts(spec.uuid);
                let Some(op) = fleet.running.get_mut(&op_id) else {
                    return;
                };
                op.steps_done += 1;
                let op = op.clone();
                let Some(inst) = fleet.instances.get_mut(&op.instance) else {
                    return;
                };
                inst.ssh_endpoint = self
                    .inner
                    .driver
                    .ssh_endpoint(spec.uuid)
                    .map(|a| a.to_string());
                inst.updated_at_ms = now_ms();
                if let Some(state) = op.shows_next(observed(facts).unwrap_or(inst.state)) {
                    inst.state = state;
                }
                let mut w = vec![
                    Write::Operation(op),
                    Write::Instance(Box::new(inst.clone())),
                ];
                w.extend(self.guest_write(spec.uuid));
                w
            };
            self.record(writes).await;
        }
    }

    /// End an operation; false (and nothing done) when it succeeded so far but steps were
    /// appended since its worker last looked.
    async fn finish(&self, op_id: Uuid, error: Option<String>) -> bool {
        let success = error.is_none();
        let writes = {
            let mut fleet = self.inner.fleet.lock();
            if success
                && fleet
                    .running
                    .get(&op_id)
                    .is_some_and(|op| (op.steps_done as usize) < op.steps.len())
            {
                return false;
            }
            let Some(mut op) = fleet.running.remove(&op_id) else {
                return true;
            };
            op.state = if success {
                OpState::Success
            } else {
                OpState::Failed
            };
            op.error = error.clone();
            op.finished_at_ms = Some(now_ms());
            let facts = self.inner.driver.facts(op.instance);
            let mut w = vec![Write::Operation(op.clone())];
            if let Some(inst) = fleet.instances.get_mut(&op.instance) {
                inst.state = op
                    .settlement()
                    .state(success, observed(facts), op.from_state);
                inst.lock = None;
                inst.updated_at_ms = now_ms();
                inst.ssh_endpoint = self
                    .inner
                    .driver
                    .ssh_endpoint(inst.uuid)
                    .map(|a| a.to_string());
                inst.latest_op = Some(LatestOp {
                    action: op.action,
                    state: op.state,
                    request_id: op.request_id.clone(),
                    error,
                });
                w.push(Write::Instance(Box::new(inst.clone())));
                if inst.state == InstanceState::Terminated {
                    w.push(Write::DeleteGuest(inst.uuid));
                    w.push(Write::DeleteUserData(inst.uuid));
                    fleet.remove_instance(op.instance);
                    self.inner.gates.lock().remove(&op.instance);
                } else {
                    w.extend(self.guest_write(op.instance));
                }
            }
            metrics::counter!("nubis_operations_total", "action" => op.action.as_str(), "state" => op.state.as_str()).increment(1);
            w
        };
        self.record(writes).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::{Action, Operation};

    fn op(action: Action) -> Operation {
        Operation {
            id: Uuid::nil(),
            request_id: String::new(),
            account: String::new(),
            instance: Uuid::nil(),
            action,
            steps: vec![],
            steps_done: 0,
            display: None,
            from_state: InstanceState::Running,
            state: OpState::Operating,
            attempts: 1,
            error: None,
            created_at_ms: 0,
            finished_at_ms: None,
            // As recorded before plans carried it: core's rule for the action applies.
            settle: None,
            user_id: None,
            project_id: None,
        }
    }

    fn settle(op: &Operation, facts: Option<Facts>, success: bool) -> InstanceState {
        op.settlement()
            .state(success, observed(facts), op.from_state)
    }

    #[test]
    fn settle_follows_facts() {
        let on = Some(Facts {
            power: Power::On,
            booted: Boot::System,
        });
        let off = Some(Facts {
            power: Power::Off,
            booted: Boot::System,
        });
        let rescue = Some(Facts {
            power: Power::On,
            booted: Boot::Rescue,
        });
        assert_eq!(settle(&op(Action::Stop), off, true), InstanceState::Stopped);
        // A soft stop the guest ignored leaves it running.
        assert_eq!(settle(&op(Action::Stop), on, false), InstanceState::Running);
        assert_eq!(
            settle(&op(Action::EnterRescue), rescue, true),
            InstanceState::Rescue
        );
        assert_eq!(
            settle(&op(Action::Create), on, false),
            InstanceState::LaunchFailed
        );
        assert_eq!(
            settle(&op(Action::Terminate), None, true),
            InstanceState::Terminated
        );
    }
}
