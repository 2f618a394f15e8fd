//! Real virtual machines: one QEMU process per running instance, supervised, controlled over
//! QMP; passwords and keys go through qemu-guest-agent on a running guest and through a config
//! drive (read by the guest at its next boot) on a stopped one. The guest image comes from
//! `guest/build` (see guest/README.md). Every wait ends on something the guest or QEMU reports
//! (SSH banner, agent answer, QMP event, process exit), never on a fixed sleep.
//!
//! This file holds the driver's state (one `Vm` per instance), its construction and the
//! `Driver` trait, each method handing off to its concern: `config` (settings, paths, the
//! command line), `cidata` (the config drive), `process` (QEMU and the host tools), `power`
//! (stop, boot, reboot), `steps` (the engine's steps), `adoption` (records across restarts).

mod adoption;
mod cidata;
mod config;
mod held;
mod power;
mod process;
mod qga;
mod qmp;
mod steps;
#[cfg(test)]
mod tests;

pub use config::{Accel, QemuConfig};

use crate::{CONSOLE_MAX, ConsoleLog, Driver, DriverError, Facts, Power, PowerEvent, Turn, VmSpec};
use adoption::Record;
use async_trait::async_trait;
use cidata::Change;
use config::IMAGE_FILES;
use nubis_core::Step;
use parking_lot::Mutex;
use process::Running;
use serde_json::json;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

struct Vm {
    rec: Record,
    run: Option<Running>,
}

impl Vm {
    /// On exactly while its QEMU process runs (paused if its vCPUs are stopped); off, or
    /// held as suspended, shelved or offloaded, when none runs.
    fn power(&self) -> Power {
        use adoption::Held;
        match (self.run.is_some(), self.rec.held) {
            (true, Some(Held::Paused)) => Power::Paused,
            (true, _) => Power::On,
            (false, Some(Held::Suspended)) => Power::Suspended,
            (false, Some(Held::Shelved)) => Power::Shelved,
            (false, Some(Held::Offloaded)) => Power::Offloaded,
            (false, Some(Held::Paused) | None) => Power::Off,
        }
    }
}

pub struct QemuDriver {
    cfg: QemuConfig,
    /// The configured accelerator, or TCG after a failed KVM probe.
    accel: Mutex<Accel>,
    generation: String,
    vms: Mutex<HashMap<Uuid, Vm>>,
    events_tx: mpsc::UnboundedSender<Uuid>,
    events_rx: Mutex<Option<mpsc::UnboundedReceiver<Uuid>>>,
    me: std::sync::Weak<QemuDriver>,
    /// Each VM's vCPUs and memory (MiB) as its instance type gives them: taken from the spec
    /// of every step, read when QEMU starts (a resize takes effect at the next boot).
    hardware: Mutex<HashMap<Uuid, (u32, u32)>>,
}

fn failed(what: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(what.to_string())
}

impl QemuDriver {
    /// Check the images, copy them into the data dir under their build stamp (instances keep
    /// the generation their disks were made from, so a rebuilt image never corrupts them).
    pub fn new(cfg: QemuConfig) -> Result<Arc<Self>, DriverError> {
        for f in IMAGE_FILES.iter().chain(["stamp"].iter()) {
            if !cfg.images.join(f).is_file() {
                return Err(failed(format!(
                    "guest image file {} is missing: run guest/build",
                    cfg.images.join(f).display()
                )));
            }
        }
        let stamp = std::fs::read_to_string(cfg.images.join("stamp"))
            .map_err(failed)?
            .trim()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(16)
            .collect::<String>();
        if stamp.is_empty() {
            return Err(failed("empty guest image stamp"));
        }
        let base = cfg.state_dir.join("base").join(&stamp);
        if !base.join("complete").exists() {
            std::fs::create_dir_all(&base).map_err(failed)?;
            for f in IMAGE_FILES {
                let (src, dst) = (cfg.images.join(f), base.join(f));
                let _ = std::fs::remove_file(&dst);
                if std::fs::hard_link(&src, &dst).is_err() {
                    std::fs::copy(&src, &dst).map_err(failed)?;
                }
            }
            std::fs::write(base.join("complete"), b"").map_err(failed)?;
        }
        std::fs::create_dir_all(cfg.state_dir.join("vms")).map_err(failed)?;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Ok(Arc::new_cyclic(|me| Self {
            accel: Mutex::new(cfg.accel),
            cfg,
            generation: stamp,
            vms: Mutex::new(HashMap::new()),
            events_tx,
            events_rx: Mutex::new(Some(events_rx)),
            me: me.clone(),
            hardware: Mutex::new(HashMap::new()),
        }))
    }

    /// The accelerator boots use.
    pub fn accel(&self) -> Accel {
        *self.accel.lock()
    }

    fn with_vm<T>(&self, id: Uuid, f: impl FnOnce(&mut Vm) -> T) -> Result<T, DriverError> {
        self.vms
            .lock()
            .get_mut(&id)
            .map(f)
            .ok_or(DriverError::UnknownVm(id))
    }

    fn record_event(vm: &mut Vm, event: &str, kind: &str) {
        PowerEvent::push(&mut vm.rec.events, event, kind);
    }
}

#[async_trait]
impl Driver for QemuDriver {
    async fn execute(&self, spec: &VmSpec, step: &Step) -> Result<(), DriverError> {
        if *step == Step::Destroy {
            self.hardware.lock().remove(&spec.uuid);
        } else {
            self.hardware
                .lock()
                .insert(spec.uuid, (spec.cpu, spec.memory_mib));
        }
        self.run_step(spec, step).await
    }

    /// A step this VM finished is not run again. After a restart that lost the step's commit
    /// only a reboot is skipped (by the `turn` file): the other steps change the record too
    /// and run again on what they find, which they check (see docs/qemu-driver.md).
    fn turn_done(&self, spec: &VmSpec, step: &Step, turn: Turn) -> bool {
        self.turn_finished(spec.uuid, turn, matches!(step, Step::Reboot { .. }))
    }

    fn mark_turn(&self, id: Uuid, turn: Turn) -> Result<(), DriverError> {
        self.record_turn(id, turn)
    }

    fn facts(&self, vm: Uuid) -> Option<Facts> {
        self.vms.lock().get(&vm).map(|v| Facts {
            power: v.power(),
            booted: v.rec.booted,
        })
    }

    fn snapshot(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.vms.lock().get(&vm).map(Self::snapshot_of)
    }

    fn restore(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError> {
        self.adopt(vm, data)
    }

    fn inspect(&self, vm: Uuid) -> Option<serde_json::Value> {
        let vms = self.vms.lock();
        let v = vms.get(&vm)?;
        let dir = self.vm_dir(vm);
        Some(json!({
            "driver": "qemu",
            "accel": match self.accel() {
                Accel::Tcg => "tcg",
                Accel::Kvm => "kvm",
            },
            "power": v.power(),
            "booted_from": v.rec.booted,
            "pid": v.run.as_ref().map(|r| r.pid),
            "ssh": format!("127.0.0.1:{}", v.rec.ssh_port),
            "user": v.rec.user,
            "authorized_keys": v.rec.keys,
            "pending_changes": v.rec.pending.iter().map(Change::summary).collect::<Vec<_>>(),
            "image_generation": v.rec.generation,
            "rescue_image": v.rec.rescue_image,
            "disk": dir.join("disk.qcow2"),
            "serial_log": dir.join("serial.log"),
            "last_boot_ms": v.rec.last_boot_ms,
            "restarts": v.rec.events,
        }))
    }

    fn check_password(&self, _vm: Uuid, _user: &str, _password: &str) -> Option<bool> {
        None // only a login into the real guest can tell
    }

    fn set_soft_stop_fails(&self, _vm: Uuid, _fails: bool) -> Result<(), DriverError> {
        Err(failed(
            "the qemu driver runs real guests: soft-stop faults exist only in the sim driver",
        ))
    }

    fn ssh_endpoint(&self, vm: Uuid) -> Option<SocketAddr> {
        self.vms
            .lock()
            .get(&vm)
            .map(|v| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, v.rec.ssh_port)))
    }

    /// The serial port's socket while the guest's QEMU runs with one.
    fn serial_socket(&self, vm: Uuid) -> Option<std::path::PathBuf> {
        let running = self.vms.lock().get(&vm).is_some_and(|v| v.run.is_some());
        let path = self.sock(vm, config::SERIAL_SOCKET);
        (running && path.exists()).then_some(path)
    }

    /// The end of the guest's serial log (QEMU truncates it at each start of the process, so it
    /// is the last boot's), read from the file as it is now.
    fn console_output(&self, vm: Uuid) -> Option<ConsoleLog> {
        if !self.vms.lock().contains_key(&vm) {
            return None;
        }
        let path = self.vm_dir(vm).join("serial.log");
        let Ok(bytes) = std::fs::read(&path) else {
            return Some(ConsoleLog {
                text: String::new(),
                updated_at_ms: 0,
            });
        };
        let tail = bytes
            .get(bytes.len().saturating_sub(CONSOLE_MAX)..)
            .unwrap_or(&[]);
        let updated_at_ms = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Some(ConsoleLog {
            text: String::from_utf8_lossy(tail).into_owned(),
            updated_at_ms,
        })
    }

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<Uuid>> {
        self.events_rx.lock().take()
    }

    fn reconcile(&self, known: &[Uuid]) {
        self.remove_unowned(known)
    }
}
