//! Adoption across restarts of nubis: the record committed with each step, restoring it
//! (adopting a guest still running from before, or reporting one that vanished), and removing
//! the VM directories no instance owns.

use super::cidata::Change;
use super::process::{Running, kill};
use super::{QemuDriver, Vm};
use crate::{Boot, DriverError, Power, PowerEvent, Turn};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// What survives a restart of nubis (committed by the engine with each step).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Record {
    /// Image generation (guest/build stamp) the disk is an overlay of.
    pub(super) generation: String,
    pub(super) user: String,
    pub(super) ssh_port: u16,
    pub(super) booted: Boot,
    /// Changes for the system disk not yet applied by the guest (written at its next boot).
    pub(super) pending: Vec<Change>,
    /// Keys the control plane put on the system (re-injected on rebuild).
    pub(super) keys: Vec<String>,
    pub(super) rescue_image: Option<String>,
    pub(super) events: Vec<PowerEvent>,
    pub(super) last_boot_ms: Option<u64>,
    /// Data disk files in the VM directory, attached after the system disk.
    #[serde(default)]
    pub(super) data_disks: Vec<String>,
    /// The last operation step finished on this VM; the `turn` file in the VM directory holds
    /// the same, written when the step ends, before the engine commits this record.
    #[serde(default)]
    pub(super) last_turn: Option<Turn>,
    /// Paused, suspended (its memory in `memory.state`), shelved or offloaded; `None`: plainly
    /// on or off (whether QEMU runs).
    #[serde(default)]
    pub(super) held: Option<Held>,
}

/// How a guest is held (docs/pause-suspend-shelve.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Held {
    /// QEMU runs, its vCPUs stopped (QMP `stop`).
    Paused,
    /// No QEMU; its memory and device state in `memory.state`, its command line in
    /// `memory.args` (a resume must start the very same machine).
    Suspended,
    /// No QEMU, shelved.
    Shelved,
    /// No QEMU, offloaded (one host: the disks stay where they are).
    Offloaded,
}

/// The committed form: the record and, derived at commit time, the process it had.
#[derive(Serialize, Deserialize)]
pub(super) struct Snapshot {
    #[serde(flatten)]
    pub(super) rec: Record,
    pub(super) power: Power,
    pub(super) pid: Option<u32>,
}

pub(super) fn pid_alive_for(pid: u32, uuid: Uuid) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&uuid.to_string()))
        .unwrap_or(false)
}

impl QemuDriver {
    /// Did this VM finish step `turn`? Its record says so (the record and the mark travel
    /// together: a restart that lost the step's commit restores both from before the step,
    /// and the step runs again on what it finds). A step whose whole effect is outside the
    /// record (`outside_record`: a reboot) is also done when the `turn` file, written as the
    /// step ended, says so: its repeat could not be told from a second reboot.
    pub(super) fn turn_finished(&self, id: Uuid, turn: Turn, outside_record: bool) -> bool {
        let Some(recorded) = self.vms.lock().get(&id).map(|vm| vm.rec.last_turn) else {
            return false; // no record (not provisioned, or destroyed): run the step
        };
        recorded == Some(turn)
            || outside_record
                && std::fs::read(self.vm_dir(id).join("turn"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Turn>(&b).ok())
                    == Some(turn)
    }

    /// Mark step `turn` finished (record and `turn` file; written aside and renamed, so a
    /// crash leaves the old mark or the new one).
    pub(super) fn record_turn(&self, id: Uuid, turn: Turn) -> Result<(), DriverError> {
        let Some(()) = self
            .vms
            .lock()
            .get_mut(&id)
            .map(|vm| vm.rec.last_turn = Some(turn))
        else {
            return Ok(()); // destroyed: nothing left to repeat on
        };
        let dir = self.vm_dir(id);
        let json = serde_json::to_vec(&turn).map_err(|e| DriverError::Failed(e.to_string()))?;
        std::fs::write(dir.join("turn.new"), json)
            .and_then(|()| std::fs::rename(dir.join("turn.new"), dir.join("turn")))
            .map_err(|e| DriverError::Failed(format!("cannot mark the step done: {e}")))
    }

    pub(super) fn snapshot_of(vm: &Vm) -> serde_json::Value {
        serde_json::to_value(Snapshot {
            rec: vm.rec.clone(),
            power: vm.power(),
            pid: vm.run.as_ref().map(|r| r.pid),
        })
        .expect("record serializes")
    }

    /// Takes back an instance's committed record (the driver's `restore`).
    pub(super) fn adopt(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError> {
        let Snapshot {
            rec,
            power,
            pid: committed_pid,
        } = serde_json::from_value(data).map_err(|e| DriverError::Failed(e.to_string()))?;
        let mut run = None;
        // The pid file is written at spawn, before the step that started QEMU is committed: a
        // restart in the middle of a boot finds that guest through it (and must not start a
        // second QEMU on the same disk).
        let pid = committed_pid.filter(|p| pid_alive_for(*p, vm)).or_else(|| {
            std::fs::read_to_string(self.vm_dir(vm).join("qemu.pid"))
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .filter(|p| pid_alive_for(*p, vm))
        });
        match pid {
            Some(pid) => {
                // Still running from before the restart: adopt it and watch it by polling.
                let (tx, exited) = watch::channel(false);
                run = Some(Running {
                    pid,
                    exited,
                    expected_exit: false,
                });
                let me = self.me.clone();
                tokio::spawn(async move {
                    while pid_alive_for(pid, vm) {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    if let Some(d) = me.upgrade() {
                        d.on_exit(vm, pid, "exited".into());
                    }
                    let _ = tx.send(true);
                });
                tracing::info!(instance = %vm, pid, "adopted a running guest");
            }
            None if matches!(power, Power::On | Power::Paused) => {
                tracing::warn!(instance = %vm, "guest is no longer running; marked stopped");
                let _ = self.events_tx.send(vm);
            }
            None => {}
        }
        self.vms.lock().insert(vm, Vm { rec, run });
        Ok(())
    }

    /// Stops the guests and deletes the disks of VM directories no instance in `known` owns
    /// (the driver's `reconcile`).
    pub(super) fn remove_unowned(&self, known: &[Uuid]) {
        let Ok(entries) = std::fs::read_dir(self.cfg.state_dir.join("vms")) else {
            return;
        };
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().and_then(|n| Uuid::parse_str(n).ok()) else {
                continue;
            };
            // An instance without a record had its provisioning interrupted: the resumed step
            // makes its disk again.
            if known.contains(&id) {
                continue;
            }
            // No instance owns it: stop its guest, delete its disks.
            if let Some(pid) = std::fs::read_to_string(e.path().join("qemu.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<u32>().ok())
                .filter(|p| pid_alive_for(*p, id))
            {
                kill(pid);
            }
            tracing::warn!(vm = %id, "removing disks no instance owns");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
