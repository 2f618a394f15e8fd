//! Workers: run an operation's remaining steps through the driver, recording each one. Each
//! record is planned on copies, committed generation-checked, then applied; a runner whose
//! write lost a race reads its instance and operation back and stops if it no longer holds
//! the instance's lock.

use crate::generations::{self, RETRIES};
use crate::leases::Lease;
use crate::{Engine, now_ms, store_err, vm_spec};
use nubis_core::images::{Image, ImageStatus};
use nubis_core::{DomainError, InstanceState, LatestOp, OpState, Step};
use nubis_driver::{DriverError, Facts, Turn};

/// How often a step on an unreachable host is tried again.
const UNREACHABLE_RETRY: Duration = Duration::from_secs(1);
use nubis_store::{StoreError, Write};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;
use uuid::Uuid;

/// A runner's commit.
#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    Done,
    /// An instance record of the batch lost a race: the writer re-reads and re-plans.
    Stale,
    /// This node no longer holds the operation's lease: the runner stops.
    Fenced,
}

/// The state the driver's facts show, if it reports any (core's reading of them).
fn observed(facts: Option<Facts>) -> Option<InstanceState> {
    facts.map(|f| f.power.observed(f.booted))
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
                // A running operation settles the state itself when it ends. A soft-deleted
                // instance and one an operator marked broken keep their state whatever the
                // guest does (docs/deferred-delete.md).
                if current.lock.is_some()
                    || matches!(
                        current.state,
                        InstanceState::SoftDeleted | InstanceState::Error
                    )
                {
                    return;
                }
                let mut state = observed(facts).unwrap_or(current.state);
                // A resize awaiting confirmation keeps awaiting it, whatever its power.
                if matches!(
                    current.state,
                    InstanceState::VerifyResize | InstanceState::VerifyResizeStopped
                ) {
                    state = match state {
                        InstanceState::Running => InstanceState::VerifyResize,
                        InstanceState::Stopped => InstanceState::VerifyResizeStopped,
                        other => other,
                    };
                }
                if state == current.state {
                    return;
                }
                tracing::warn!(instance = %current.tencent_id, from = ?current.state, to = ?state, "guest changed outside an operation");
                let mut inst = std::sync::Arc::unwrap_or_clone(current);
                inst.state = state;
                inst.updated_at_ms = now_ms();
                generations::bump(&mut inst);
                inst
            };
            let mut w = vec![Write::Instance(Box::new(planned.clone()))];
            w.extend(self.guest_write(id));
            if self.record(w).await == Recorded::Done {
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
        tokio::spawn(
            async move {
                // Every commit of this runner carries this fence: if the node loses the lease
                // (and perhaps takes it back for a new runner), this one records nothing more.
                let Some(lease) = engine.lease_of(op_id) else {
                    return;
                };
                engine.run(op_id, lease).await;
                engine.release_lease(op_id, lease);
            }
            .instrument(span),
        );
    }

    /// Commit, retrying while the store is away: finished work must not be forgotten.
    async fn record(&self, writes: Vec<Write>) -> Recorded {
        let mut delay = Duration::from_millis(100);
        loop {
            let failed = match self.check_store() {
                Err(e) => e,
                Ok(()) => match self.inner.store.commit(writes.clone()).await {
                    Ok(()) => return Recorded::Done,
                    Err(StoreError::Conflict(m)) => {
                        tracing::debug!(reason = %m, "lost a race on an instance record");
                        return Recorded::Stale;
                    }
                    Err(StoreError::Fenced(_)) => return Recorded::Fenced,
                    Err(e) => store_err(e),
                },
            };
            tracing::error!(error = %failed, "cannot record operation progress; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
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
                    .map_err(store_err)
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
            .is_some_and(|i| i.lock.as_ref().is_some_and(|l| l.operation_id == op_id));
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
    pub(crate) fn gate(&self, instance: Uuid) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        self.inner.gates.lock().entry(instance).or_default().clone()
    }

    async fn run(&self, op_id: Uuid, lease: Lease) {
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
            if self.fence_write(op_id, lease).is_none() {
                return;
            }
            // The guest as the last committed step left it, whichever node ran that step.
            if let Err(e) = self.refresh_guest(instance).await {
                tracing::warn!(error = %e, "cannot read the guest's state; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let next = {
                let fleet = self.inner.fleet.lock();
                let Some(op) = fleet.running.get(&op_id) else {
                    return;
                };
                let Some(inst) = fleet.instances.get(&op.instance) else {
                    return;
                };
                let last = op.steps.len().saturating_sub(1) == op.steps_done as usize;
                op.steps
                    .get(op.steps_done as usize)
                    .map(|s| (vm_spec(&inst), s.clone(), op.action, op.steps_done, last))
            };
            let Some((spec, step, action, index, last)) = next else {
                if self.finish(op_id, lease, Ok(None)).await {
                    return;
                }
                // A step was appended meanwhile (a start joined the create): run it.
                continue;
            };
            // A (re)provisioning step takes the user data and files stored beside the
            // instance (read now, never kept in the plan: crate::inject).
            let step = match self.with_guest_data(instance, step).await {
                Ok(step) => step,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the guest's user data; retrying");
                    drop(_turn);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            tracing::debug!(?step, action = action.as_str(), "step");
            // Named by its turn: a driver that finished this very step before a restart (its
            // commit lost) does not repeat an effect it cannot observe, such as a reboot.
            let turn = Turn { op: op_id, index };
            if let Err(e) = self.inner.driver.execute_turn(&spec, &step, turn).await {
                if let DriverError::Unreachable(host) = &e {
                    // A lost agent host (docs/agents.md): the step waits for it, lease held.
                    tracing::warn!(%host, "the VM's host does not answer; the step waits");
                    drop(_turn);
                    tokio::time::sleep(UNREACHABLE_RETRY).await;
                    continue;
                }
                tracing::info!(error = %e, "operation failed");
                self.finish(op_id, lease, Err(e.to_string())).await;
                return;
            }
            // The last step's record is the operation's end: one commit, not two (unless a
            // step was appended meanwhile: then it is recorded as any other).
            if last && self.finish(op_id, lease, Ok(Some(index))).await {
                return;
            }
            if !self.record_step(op_id, lease, spec.uuid, index).await {
                return;
            }
        }
    }

    /// `step` as the driver gets it: a (re)provisioning step with the instance's user data
    /// and the files to inject, read from the store.
    async fn with_guest_data(&self, instance: Uuid, mut step: Step) -> Result<Step, DomainError> {
        if let Step::Provision { guest, .. } | Step::Reprovision { guest, .. } = &mut step {
            let store = &self.inner.store;
            guest.user_data = store.user_data(instance).await.map_err(store_err)?;
            guest.files = store.injected_files(instance).await.map_err(store_err)?;
        }
        Ok(step)
    }

    /// Record that step `index` is done (planned on copies, applied once committed); false
    /// when the operation is no longer the instance's to run.
    async fn record_step(&self, op_id: Uuid, lease: Lease, instance: Uuid, index: u32) -> bool {
        loop {
            let Some(fence) = self.fence_write(op_id, lease) else {
                return false;
            };
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
                let mut inst = std::sync::Arc::unwrap_or_clone(current);
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
                let mut w: Vec<Write> = fence.into_iter().collect();
                w.push(Write::Operation(op.clone()));
                w.push(Write::Instance(Box::new(inst.clone())));
                w.extend(self.guest_write(instance));
                (op, inst, w)
            };
            match self.record(writes).await {
                Recorded::Done => {
                    let mut fleet = self.inner.fleet.lock();
                    if let Some(cur) = fleet.running.get_mut(&op_id) {
                        cur.steps_done = cur.steps_done.max(op.steps_done);
                    }
                    fleet.apply_committed(inst);
                    return true;
                }
                Recorded::Fenced => {
                    self.lost_lease(op_id, lease);
                    return false;
                }
                Recorded::Stale => self.catch_up(op_id, instance).await,
            }
        }
    }

    /// End an operation: `Ok` with the step just done, if any (recorded in the same commit),
    /// or `Err` with why it failed. False (and nothing done) when it succeeded so far but
    /// steps were appended since its worker last looked.
    async fn finish(
        &self,
        op_id: Uuid,
        lease: Lease,
        outcome: Result<Option<u32>, String>,
    ) -> bool {
        let (error, step_done) = match outcome {
            Ok(step) => (None, step),
            Err(e) => (Some(e), None),
        };
        let success = error.is_none();
        // An image made by the operation: its bytes' facts, read before the commit.
        let snapshot = self.snapshot_outcome(op_id, success).await;
        loop {
            let Some(fence) = self.fence_write(op_id, lease) else {
                return true;
            };
            let (op, inst, image, rotated, writes) = {
                let fleet = self.inner.fleet.lock();
                let Some(op) = fleet.running.get(&op_id) else {
                    return true;
                };
                let steps_done =
                    step_done.map_or(op.steps_done, |i| op.steps_done.max(i.saturating_add(1)));
                if success && (steps_done as usize) < op.steps.len() {
                    return false;
                }
                let mut op = op.clone();
                op.steps_done = steps_done;
                op.state = if success {
                    OpState::Success
                } else {
                    OpState::Failed
                };
                op.error = error.clone();
                op.finished_at_ms = Some(now_ms());
                let facts = self.inner.driver.facts(op.instance);
                let leased = fence.is_some();
                let mut w: Vec<Write> = fence.into_iter().collect();
                w.push(Write::Operation(op.clone()));
                if leased {
                    w.push(Write::EndLease(op_id));
                }
                let inst = fleet.instances.get(&op.instance).map(|current| {
                    let mut inst = std::sync::Arc::unwrap_or_clone(current);
                    inst.state = op
                        .settlement()
                        .state(success, observed(facts), op.from_state);
                    inst.lock = None;
                    inst.updated_at_ms = now_ms();
                    // The reclaim counts from here (Nova's deleted_at).
                    let since = inst.soft_deleted_at_ms.unwrap_or(inst.updated_at_ms);
                    inst.soft_deleted_at_ms =
                        (inst.state == InstanceState::SoftDeleted).then_some(since);
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
                        w.push(Write::DeleteInjectedFiles(inst.uuid));
                    } else {
                        w.extend(self.guest_write(op.instance));
                    }
                    inst
                });
                // The image it made: active, or killed (a conditional write; one deleted
                // meanwhile stays deleted).
                let image = snapshot
                    .as_ref()
                    .and_then(|(id, data)| Engine::settle_snapshot(&fleet, id, data.clone()));
                // A backup rotates older ones out (itself too at rotation 0), in this commit.
                let rotated = image
                    .as_ref()
                    .filter(|i| i.status == ImageStatus::Active)
                    .map(|i| Engine::rotated_out(&fleet, i))
                    .unwrap_or_default();
                let mut image = image;
                // At rotation 0 the new backup is rotated out itself: written once, deleted.
                if let Some(i) = &mut image
                    && let Some(r) = rotated.iter().find(|r| r.id == i.id)
                {
                    *i = r.clone();
                }
                let rotated: Vec<Image> = rotated
                    .into_iter()
                    .filter(|r| image.as_ref().is_none_or(|i| i.id != r.id))
                    .collect();
                if let Some(image) = &image {
                    w.push(Write::Image(Box::new(image.clone())));
                }
                w.extend(rotated.iter().map(|r| Write::Image(Box::new(r.clone()))));
                (op, inst, image, rotated, w)
            };
            match self.record(writes).await {
                Recorded::Done => {}
                Recorded::Fenced => {
                    self.lost_lease(op_id, lease);
                    return true;
                }
                Recorded::Stale => {
                    for id in image.iter().chain(&rotated).map(|i| i.id.clone()) {
                        self.reload_image(&id).await;
                    }
                    self.catch_up(op_id, op.instance).await;
                    continue;
                }
            }
            let files = {
                let mut fleet = self.inner.fleet.lock();
                let mut files = Vec::new();
                for image in image.into_iter().chain(rotated) {
                    if image.status == ImageStatus::Deleted {
                        files.extend(self.image_path(&image.id));
                    }
                    fleet.put_image(image);
                }
                fleet.running.remove(&op_id);
                if let Some(inst) = inst {
                    let gone = inst.state == InstanceState::Terminated;
                    fleet.apply_committed(inst);
                    if gone {
                        self.inner.gates.lock().remove(&op.instance);
                    }
                }
                files
            };
            for path in files {
                // Best effort, as a deletion: a file left behind is garbage, never shown.
                let _ = tokio::fs::remove_file(path).await;
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
    use nubis_driver::{Boot, Power};

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
        // Held guests settle as their facts say; a failed resume leaves the guest suspended.
        let held = |power| {
            Some(Facts {
                power,
                booted: Boot::System,
            })
        };
        assert_eq!(
            settle(&op(Action::Pause), held(Power::Paused), true),
            InstanceState::Paused
        );
        assert_eq!(
            settle(&op(Action::Resume), held(Power::Suspended), false),
            InstanceState::Suspended
        );
        assert_eq!(
            settle(&op(Action::Shelve), held(Power::Offloaded), true),
            InstanceState::ShelvedOffloaded
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
