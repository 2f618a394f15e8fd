//! The hypervisor port. A driver executes one [`Step`] on one VM and reports facts; it never
//! decides policy (that is core's job).

pub mod qemu;
pub mod remote;
pub mod router;
pub mod sim;
pub mod wire;

use async_trait::async_trait;
use nubis_core::{OsFamily, Step};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriverError {
    /// The guest ignored an ACPI shutdown within the timeout.
    #[error("the guest did not shut down within {0} s")]
    SoftStopTimeout(u64),
    #[error("unknown VM {0}")]
    UnknownVm(Uuid),
    #[error("driver failure: {0}")]
    Failed(String),
    /// The VM's host agent does not answer (docs/agents.md): the step waits for it.
    #[error("host {0} is unreachable")]
    Unreachable(String),
}

/// What a driver needs to know about the VM it acts on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmSpec {
    pub uuid: Uuid,
    pub os: OsFamily,
    pub image_id: String,
    pub system_disk: String,
    /// Data disks: ID and size in GiB.
    pub data_disks: Vec<(String, u32)>,
    pub default_user: String,
    /// The agent host it runs on; `None`: this process's driver ([`router::Router`]).
    #[serde(default)]
    pub host: Option<String>,
    /// vCPUs and memory (MiB) of its instance type: what the guest gets at its next boot (0:
    /// the driver's default, as in specs from before resizes).
    #[serde(default)]
    pub cpu: u32,
    #[serde(default)]
    pub memory_mib: u32,
}

impl VmSpec {
    /// A Linux guest of the catalogue's stock image with root as its default user and a new
    /// UUID: the one spec the driver's unit and integration tests both start from.
    pub fn sample(data_disks: Vec<(String, u32)>) -> Self {
        Self {
            uuid: Uuid::new_v4(),
            os: OsFamily::Linux,
            image_id: "img-tos31x64".into(),
            system_disk: "disk-aaaaaaaa".into(),
            data_disks,
            default_user: "root".into(),
            host: None,
            cpu: 0,
            memory_mib: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Power {
    On,
    Off,
    /// Frozen in memory (pause): the VM is there, its vCPUs stand still.
    Paused,
    /// The guest's memory saved to the host's disk; no VM runs.
    Suspended,
    /// Shut down and marked shelved, still on its host.
    Shelved,
    /// Shelved and removed from its host: only the disks are kept.
    Offloaded,
}

impl Power {
    /// The state these facts show (core's reading of them).
    pub fn observed(self, booted: Boot) -> nubis_core::InstanceState {
        use nubis_core::op::{Held, observed, observed_held};
        match self {
            Power::On => observed(true, booted == Boot::Rescue),
            Power::Off => observed(false, booted == Boot::Rescue),
            Power::Paused => observed_held(Held::Paused),
            Power::Suspended => observed_held(Held::Suspended),
            Power::Shelved => observed_held(Held::Shelved),
            Power::Offloaded => observed_held(Held::Offloaded),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boot {
    System,
    Rescue,
}

/// One power event of a VM (stop, start, reboot) and how it happened ("graceful", "hard", …),
/// as the admin API's guest view lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerEvent {
    pub event: String,
    pub kind: String,
    pub at: String,
}

impl PowerEvent {
    /// Append an event now, keeping the last 32 (bounded memory per VM).
    pub fn push(log: &mut Vec<PowerEvent>, event: &str, kind: &str) {
        log.push(PowerEvent {
            event: event.into(),
            kind: kind.into(),
            at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
        if log.len() > 32 {
            log.remove(0);
        }
    }
}

/// The guest's console (serial port) output since its last boot, at most [`CONSOLE_MAX`]
/// bytes (the end of it), and when it last changed: what Alibaba GetInstanceConsoleOutput and
/// Nova os-getConsoleOutput show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLog {
    pub text: String,
    /// Milliseconds since the epoch.
    pub updated_at_ms: i64,
}

impl ConsoleLog {
    /// The text without control characters other than tab and newline (what Nova sends: it
    /// drops `[\x00-\x08\x0B-\x1F]`, so a carriage return or an escape never reaches a client).
    pub fn without_controls(&self) -> String {
        self.text
            .chars()
            .filter(|c| !matches!(c, '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}'))
            .collect()
    }

    /// The text without terminal formatting (Alibaba `RemoveSymbols`): ANSI escape sequences
    /// (`ESC [ … final byte`) removed whole, then every other control character but newline
    /// and tab.
    pub fn without_symbols(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut chars = self.text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameters and intermediates, up to the final byte (@ to ~).
                    for f in chars.by_ref() {
                        if ('@'..='~').contains(&f) {
                            break;
                        }
                    }
                }
                continue;
            }
            if c == '\n' || c == '\t' || !c.is_control() {
                out.push(c);
            }
        }
        out
    }
}

/// How much console output is kept and shown: the clouds' 64 KiB.
pub const CONSOLE_MAX: usize = 64 * 1024;

#[cfg(test)]
mod console_tests {
    use super::ConsoleLog;

    fn log(text: &str) -> ConsoleLog {
        ConsoleLog {
            text: text.into(),
            updated_at_ms: 0,
        }
    }

    #[test]
    fn symbols_and_controls_are_removed_as_each_cloud_does() {
        let l = log("\u{1b}[0;32m  OK  \u{1b}[0m] Started\r\n\tlogin:\u{7}");
        assert_eq!(l.without_symbols(), "  OK  ] Started\n\tlogin:");
        // Nova drops the control characters only: the escape's printable tail stays.
        assert_eq!(l.without_controls(), "[0;32m  OK  [0m] Started\n\tlogin:");
        // A dangling escape at the end does not panic or loop.
        assert_eq!(log("a\u{1b}[12").without_symbols(), "a");
        assert_eq!(log("a\u{1b}").without_symbols(), "a");
    }
}

/// Observable facts about a VM, from which the engine derives the instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub power: Power,
    pub booted: Boot,
}

/// Which step of which operation a driver runs: the engine's runner names every step it runs
/// so a driver can tell a repeat (a resumed operation, a step delivered twice) of the step it
/// last finished from a new request that happens to be the same step (a second reboot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Turn {
    pub op: Uuid,
    /// The step's position in the operation's plan.
    pub index: u32,
}

#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Run one step. Must be idempotent: a resumed operation may repeat the interrupted step,
    /// so a step run twice (or interrupted, then run again) leaves the guest as one run does.
    /// Steps whose effect is observable (power, boot source, disks, the guest's users and
    /// keys) check it; see docs/qemu-driver.md, "Idempotent steps".
    async fn execute(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError>;
    /// Run `step` as step `turn` of an operation (what the engine's runner calls). A step
    /// whose effect cannot be observed afterwards (a reboot leaves the guest as it was) is
    /// skipped when the driver already finished this very turn: the skip and the mark are the
    /// driver's (`turn_done`, `mark_turn`), the order is the same for every driver.
    async fn execute_turn(&self, vm: &VmSpec, step: &Step, turn: Turn) -> Result<(), DriverError> {
        if self.turn_done(vm, step, turn) {
            return Ok(());
        }
        self.execute(vm, step).await?;
        self.mark_turn(vm.uuid, turn)
    }
    /// Whether `step` as `turn` already ran to its end on this VM. The default: never known.
    fn turn_done(&self, _vm: &VmSpec, _step: &Step, _turn: Turn) -> bool {
        false
    }
    /// Remember that `turn` ran to its end on this VM. The default remembers nothing.
    fn mark_turn(&self, _vm: Uuid, _turn: Turn) -> Result<(), DriverError> {
        Ok(())
    }
    /// Stage a guest change (password, keys) of a running guest for its next boot, without a
    /// long wait: the engine records such a change at once, holding no lock (core
    /// `Accept::NextBoot`). The default runs the step (a driver whose live change is quick,
    /// e.g. qemu's guest agent).
    async fn stage(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError> {
        self.execute(vm, step).await
    }
    fn facts(&self, vm: Uuid) -> Option<Facts>;
    /// The driver's durable state for this VM; the engine commits it with each step.
    fn snapshot(&self, vm: Uuid) -> Option<serde_json::Value>;
    /// Re-adopt a VM after a restart from its last committed snapshot.
    fn restore(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError>;
    /// [`Driver::restore`] from the snapshot's stored JSON text: the sim decodes its record
    /// straight from it (a million guests at start-up, without a `Value` tree each).
    fn restore_json(&self, vm: Uuid, json: &str) -> Result<(), DriverError> {
        let data = serde_json::from_str(json).map_err(|e| DriverError::Failed(e.to_string()))?;
        self.restore(vm, data)
    }
    /// Whether a VM's whole state is its snapshot (the sim): then any node sharing the store
    /// can carry on from the store's copy. A real guest lives on one host (QEMU): only that
    /// process may restore it.
    fn portable(&self) -> bool {
        false
    }
    /// Admin inspection: the guest as the operator would see it (JSON, see docs/admin-api.md).
    fn inspect(&self, vm: Uuid) -> Option<serde_json::Value>;
    /// Would `user` log in with `password` on the booted system?
    fn check_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool>;
    /// [`Driver::check_password`] where the guest may be on another host (an agent's).
    async fn verify_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool> {
        self.check_password(vm, user, password)
    }
    /// Bring what the sync reads ([`Driver::facts`], [`Driver::inspect`], the console) up to
    /// date where they are a copy of another host's (an agent's). The default has nothing to do.
    async fn refresh(&self, _vm: Uuid) {}
    /// Fault injection: the guest ignores soft (ACPI) stops.
    fn set_soft_stop_fails(&self, vm: Uuid, fails: bool) -> Result<(), DriverError>;
    /// Where the guest's SSH server is reachable from the host, if the driver forwards one.
    fn ssh_endpoint(&self, _vm: Uuid) -> Option<std::net::SocketAddr> {
        None
    }
    /// The VM's console output (`None`: an unknown VM).
    fn console_output(&self, _vm: Uuid) -> Option<ConsoleLog> {
        None
    }
    /// The socket of the VM's serial port, for an interactive console (`None`: the driver
    /// has none, the VM is unknown, runs on another host, or was started without one).
    fn serial_socket(&self, _vm: Uuid) -> Option<std::path::PathBuf> {
        None
    }
    /// VMs whose facts changed outside an operation (a guest powered itself off, QEMU died).
    /// Taken once, by the engine.
    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>> {
        None
    }
    /// After restores: `known` are all instances the store holds; anything else the driver
    /// keeps (disks, processes) is left over and removed.
    fn reconcile(&self, _known: &[Uuid]) {}
}
