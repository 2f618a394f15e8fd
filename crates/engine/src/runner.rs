//! Workers: run an operation's remaining steps through the driver, recording each one. Each
//! record is planned on copies, committed generation-checked, then applied; a runner whose
//! write lost a race reads its instance and operation back and stops if it no longer holds
//! the instance's lock.

use crate::generations::{self, RETRIES, Refused};
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
                engine.follow_facts(id).await;
            }
        });
    }

    async fn follow_facts(&self, id: Uuid) {
        for _ in 0..=RETRIES {
            let planned = {
                let fleet = self.inner.fleet.lock();
                let facts = self.inner.driver.facts(id);
                let Some(current) = fleet.instances.get(&id) else {
                    return;
                };
                // A running operation settles the state itself when it ends.
                if current.lock.is_some() {
                    return;
                }
                let state = observed(facts).unwrap_or(current.state);
                if state == current.state {
                    return;
                }
                tracing::warn!(instance = %current.tencent_id, from = ?current.state, to = ?state, "guest changed outside an operation");
                let mut inst = current.clone();
                inst.state = state;
                inst.updated_at_ms = now_ms();
                generations::bump(&mut inst);
                inst
            };
            let mut w = vec![Write::Instance(Box::new(planned.clone()))];
            w.extend(self.guest_write(id));
            if self.record(w).await {
                self.inner.fleet.lock().apply_committed(planned);
                return;
            }
            if let Err(e) = self.reload_instances(&[id]).await {
                tracing::error!(error = %e, "cannot read an instance back");
                return;
            }
        }
    }

    pub(crate) fn spawn_runner(&self, op_id: Uuid) {
        let engine = self.clone();
        let span = tracing::info_span!("operation", op = %op_id);
        tokio::spawn(async move { engine.run(op_id).await }.instrument(span));
    }

    /// Commit, retrying while the store is away: finished work must not be forgotten. False
    /// when an instance record of the batch lost a race (the writer re-reads and re-plans).
    async fn record(&self, writes: Vec<Write>) -> bool {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.commit_fenced(writes.clone()).await {
                Ok(()) => return true,
                Err(Refused::Stale) => return false,
                Err(Refused::Failed(e)) => {
                    tracing::error!(error = %e, "cannot record operation progress; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// After a runner's write lost a race: read its instance and operation back. The
    /// operation stays in the running table only while the store still has it running and
    /// its instance still names it as the lock holder (the within-node fence: a superseded
    /// runner stops here).
    async fn catch_up(&self, op_id: Uuid, instance: Uuid) {
        let mut delay = Duration::from_millis(50);
        let stored = loop {
            let request = self
                .inner
                .fleet
                .lock()
                .running
                .get(&op_id)
                .map(|op| op.request_id.clone());
            let Some(request) = request else { return };
            let read = async {
                self.reload_instances(&[instance]).await?;
                self.check_store()?;
                self.inner
                    .store
                    .operations_of_request(&request)
                    .await
                    .map_err(crate::store_err)
            };
            match read.await {
                Ok(ops) => break ops.into_iter().find(|o| o.id == op_id),
                Err(e) => {
                    tracing::error!(error = %e, "cannot read an operation back; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        let mut fleet = self.inner.fleet.lock();
        let holds = fleet
            .instances
            .get(&instance)
            .and_then(|i| i.lock.as_ref())
            .is_some_and(|l| l.operation_id == op_id);
        match stored {
            Some(op) if holds && op.state == OpState::Operating => {
                if let Some(cur) = fleet.running.get_mut(&op_id) {
                    // Steps are only appended and only counted up: keep the further of each.
                    if cur.steps.len() < op.steps.len() {
                        cur.steps = op.steps;
                    }
                    cur.steps_done = cur.steps_done.max(op.steps_done);
                }
            }
            _ => {
                tracing::info!("operation no longer holds its instance; stopping");
                fleet.running.remove(&op_id);
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
            if !self.record_step(op_id, spec.uuid, index).await {
                return;
            }
        }
    }

    /// Record that step `index` is done (planned on copies, applied once committed); false
    /// when the operation is no longer the instance's to run.
    async fn record_step(&self, op_id: Uuid, instance: Uuid, index: u32) -> bool {
        loop {
            let (op, inst, writes) = {
                let fleet = self.inner.fleet.lock();
                let facts = self.inner.driver.facts(instance);
                let Some(op) = fleet.running.get(&op_id) else {
                    return false;
                };
                let mut op = op.clone();
                op.steps_done = op.steps_done.max(index.saturating_add(1));
                let Some(current) = fleet.instances.get(&op.instance) else {
                    return false;
                };
                let mut inst = current.clone();
                inst.ssh_endpoint = self
                    .inner
                    .driver
                    .ssh_endpoint(instance)
                    .map(|a| a.to_string());
                inst.updated_at_ms = now_ms();
                if let Some(state) = op.shows_next(observed(facts).unwrap_or(inst.state)) {
                    inst.state = state;
                }
                generations::bump(&mut inst);
                let mut w = vec![
                    Write::Operation(op.clone()),
                    Write::Instance(Box::new(inst.clone())),
                ];
                w.extend(self.guest_write(instance));
                (op, inst, w)
            };
            if self.record(writes).await {
                let mut fleet = self.inner.fleet.lock();
                if let Some(cur) = fleet.running.get_mut(&op_id) {
                    cur.steps_done = cur.steps_done.max(op.steps_done);
                }
                fleet.apply_committed(inst);
                return true;
            }
            self.catch_up(op_id, instance).await;
        }
    }

    /// End an operation; false (and nothing done) when it succeeded so far but steps were
    /// appended since its worker last looked.
    async fn finish(&self, op_id: Uuid, error: Option<String>) -> bool {
        let success = error.is_none();
        loop {
            let (op, inst, writes) = {
                let fleet = self.inner.fleet.lock();
                let Some(op) = fleet.running.get(&op_id) else {
                    return true;
                };
                if success && (op.steps_done as usize) < op.steps.len() {
                    return false;
                }
                let mut op = op.clone();
                op.state = if success {
                    OpState::Success
                } else {
                    OpState::Failed
                };
                op.error = error.clone();
                op.finished_at_ms = Some(now_ms());
                let facts = self.inner.driver.facts(op.instance);
                let mut w = vec![Write::Operation(op.clone())];
                let inst = fleet.instances.get(&op.instance).map(|current| {
                    let mut inst = current.clone();
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
                        error: error.clone(),
                    });
                    generations::bump(&mut inst);
                    w.push(Write::Instance(Box::new(inst.clone())));
                    if inst.state == InstanceState::Terminated {
                        w.push(Write::DeleteGuest(inst.uuid));
                        w.push(Write::DeleteUserData(inst.uuid));
                    } else {
                        w.extend(self.guest_write(op.instance));
                    }
                    inst
                });
                (op, inst, w)
            };
            if !self.record(writes).await {
                self.catch_up(op_id, op.instance).await;
                continue;
            }
            let mut fleet = self.inner.fleet.lock();
            fleet.running.remove(&op_id);
            if let Some(inst) = inst {
                let gone = inst.state == InstanceState::Terminated;
                fleet.apply_committed(inst);
                if gone {
                    self.inner.gates.lock().remove(&op.instance);
                }
            }
            metrics::counter!("nubis_operations_total", "action" => op.action.as_str(), "state" => op.state.as_str()).increment(1);
            return true;
        }
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
