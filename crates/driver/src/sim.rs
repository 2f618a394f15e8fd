//! The simulated fleet: every VM has a guest model (users with password hashes, authorized
//! keys, disks, boot source, SSH host key) and takes realistic time for each step, scaled by
//! `NUBIS_SIM_TIME_SCALE` so tests can run fast and still see in-between states.

use crate::{Boot, ConsoleLog, Driver, DriverError, Facts, Power, PowerEvent, Turn, VmSpec};
use async_trait::async_trait;
use base64::Engine as _;
use nubis_core::{GuestData, OsFamily, Step, StopMode, catalog};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Realistic durations in seconds at time scale 1.0.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    pub provision: f64,
    pub boot: f64,
    pub soft_stop: f64,
    pub hard_stop: f64,
    /// How long a soft stop waits for a guest that ignores ACPI before giving up.
    pub soft_stop_timeout: f64,
    pub soft_reboot: f64,
    pub hard_reboot: f64,
    pub guest_change: f64,
    pub rescue_boot: f64,
    pub destroy: f64,
    pub live_migrate: f64,
}

// The held guests' steps take the times of their nearest kin: pausing or unpausing a guest
// and powering a frozen one off take `hard_stop`, saving its memory (suspend) `soft_stop`,
// reading it back (resume) and unshelving `boot`, offloading `destroy`.

impl Default for Timings {
    fn default() -> Self {
        Self {
            provision: 4.0,
            boot: 3.0,
            soft_stop: 3.0,
            hard_stop: 0.5,
            soft_stop_timeout: 5.0,
            soft_reboot: 5.0,
            hard_reboot: 2.0,
            guest_change: 5.0,
            rescue_boot: 8.0,
            destroy: 2.0,
            live_migrate: 30.0,
        }
    }
}

/// Text that many guests hold the same of — a batch's password hash, a key pair's public key,
/// an image ID, a user name, a disk's role: one allocation, shared through the driver's
/// [`Pool`] (docs/fleet-index.md, "Memory").
type Shared = Arc<str>;

/// The texts guests share. An entry that no guest holds any more is dropped when the pool
/// has doubled since its last sweep, so it never holds more than twice the live ones.
#[derive(Default)]
struct Pool {
    set: HashSet<Shared>,
    swept_at: usize,
}

impl Pool {
    /// `s` becomes the pool's copy of its text (the pool keeps it when it is new).
    fn share(&mut self, s: &mut Shared) {
        match self.set.get(&**s) {
            Some(found) => {
                if !Arc::ptr_eq(found, s) {
                    *s = found.clone();
                }
            }
            None => {
                self.set.insert(s.clone());
                if self.set.len() > 2 * self.swept_at.max(1024) {
                    self.set.retain(|e| Arc::strong_count(e) > 1);
                    self.swept_at = self.set.len();
                }
            }
        }
    }
}

/// user → SHA-512 crypt hash ("!" = locked, no password login), sorted by user; a map on
/// the wire. A guest has one or two users: a vector, not a tree node of eleven.
#[derive(Debug, Clone, Default, PartialEq)]
struct Users(Vec<(Shared, Shared)>);

impl Users {
    fn of(user: &str, hash: &str) -> Self {
        Self(vec![(user.into(), hash.into())])
    }

    fn insert(&mut self, user: &str, hash: &str) {
        match self.0.binary_search_by(|(u, _)| (**u).cmp(user)) {
            Ok(k) => self.0[k].1 = hash.into(),
            Err(k) => self.0.insert(k, (user.into(), hash.into())),
        }
    }

    fn get(&self, user: &str) -> Option<&str> {
        self.0.iter().find(|(u, _)| &**u == user).map(|(_, h)| &**h)
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(u, _)| &**u)
    }
}

impl Serialize for Users {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(u, h)| (&**u, &**h)))
    }
}

impl<'de> Deserialize<'de> for Users {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Users;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of user to password hash")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Users, A::Error> {
                let mut users = Users::default();
                while let Some((u, h)) =
                    m.next_entry::<std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>>()?
                {
                    users.insert(&u, &h);
                }
                Ok(users)
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct System {
    image_id: Shared,
    users: Users,
    authorized_keys: Vec<Shared>,
    host_key_fingerprint: Fingerprint,
    /// The files written at its first boot: (guest path, bytes). Their sizes, not their bytes:
    /// the fleet in memory stays small.
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    files: Box<[(String, usize)]>,
    /// The user data it was given: bytes, and whether it ran as a script (`#!`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_data: Option<(usize, bool)>,
}

impl System {
    /// A system disk as an image install writes it: one user (locked without a password
    /// hash), the given keys, a new host key, the files and user data of its first boot.
    fn fresh(
        image_id: &str,
        user: &str,
        password_hash: &Option<String>,
        authorized_keys: &[String],
        guest: &GuestData,
    ) -> Self {
        let hash = password_hash.as_deref().unwrap_or("!");
        let decoded = |b64: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default()
        };
        Self {
            image_id: image_id.into(),
            users: Users::of(user, hash),
            authorized_keys: authorized_keys.iter().map(|k| k.as_str().into()).collect(),
            host_key_fingerprint: Fingerprint::new(&host_key()),
            files: guest
                .files
                .iter()
                .map(|f| (f.guest_path(), decoded(&f.contents).len()))
                .collect(),
            user_data: guest.user_data.as_deref().map(|u| {
                let bytes = decoded(u);
                (bytes.len(), bytes.starts_with(b"#!"))
            }),
        }
    }

    fn share(&mut self, pool: &mut Pool) {
        pool.share(&mut self.image_id);
        for (u, h) in &mut self.users.0 {
            pool.share(u);
            pool.share(h);
        }
        for k in &mut self.authorized_keys {
            pool.share(k);
        }
    }

    /// The files and user data as the admin view shows them.
    fn given(&self) -> serde_json::Value {
        serde_json::json!({
            "files": self.files.iter().map(|(p, n)| serde_json::json!({"path": p, "bytes": n})).collect::<Vec<_>>(),
            "user_data": self.user_data.map(|(n, script)| serde_json::json!({"bytes": n, "script": script})),
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimDisk {
    id: Box<str>,
    role: Shared,
    image_id: Shared,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SimVm {
    os: OsFamily,
    power: Power,
    booted: Boot,
    system: System,
    rescue: Option<Box<System>>,
    /// In boot order: the booted system's disk first.
    disks: Box<[SimDisk]>,
    system_disk: Box<str>,
    restarts: Box<[PowerEvent]>,
    soft_stop_fails: bool,
    /// The last operation step this VM finished (committed with the snapshot): a repeat of it
    /// is skipped (see [`Driver::execute_turn`]).
    #[serde(default)]
    last_turn: Option<Turn>,
    /// When the power last changed (ms): the console output's LastUpdateTime.
    #[serde(default)]
    power_at_ms: i64,
    /// The vCPUs and memory (MiB) the guest booted with (0: not booted since they were
    /// kept): its instance type's at its last boot.
    #[serde(default)]
    hardware: Hardware,
    /// The instance type the guest was last moved to (a resize), if any.
    #[serde(default)]
    resized_to: Option<Box<str>>,
}

impl SimVm {
    /// Its texts become the pool's copies.
    fn share(&mut self, pool: &mut Pool) {
        self.system.share(pool);
        if let Some(r) = &mut self.rescue {
            r.share(pool);
        }
        for d in &mut self.disks {
            pool.share(&mut d.role);
            pool.share(&mut d.image_id);
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Hardware {
    cpu: u32,
    memory_mib: u32,
}

pub struct SimDriver {
    scale: f64,
    timings: Timings,
    /// Boxed: a map's empty slots are as wide as its values, and a guest is ~270 bytes.
    vms: Mutex<HashMap<Uuid, Box<SimVm>>>,
    /// Locked after `vms`, never before.
    pool: Mutex<Pool>,
    /// Where a snapshot's file goes (`<dir>/<image-id>.img`); `None`: snapshots write nothing.
    image_store: Option<std::path::PathBuf>,
}

/// What a simulated snapshot's file holds: the simulated disk's identity, so a download of
/// the image shows honestly where it came from (docs/images.md "Images from instances").
#[derive(Debug, Serialize)]
struct SimSnapshot<'a> {
    format: &'static str,
    instance: Uuid,
    image_id: &'a str,
    source_image: &'a str,
    system_disk: &'a str,
    users: Vec<&'a str>,
    authorized_keys: &'a [Shared],
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The simulated serial console: the boot of the system (or rescue system) it last booted,
/// then its power events, then a power-down if it is off. Made from the VM's state when
/// asked, so it costs no memory or storage per VM.
fn console_of(vm: &SimVm) -> ConsoleLog {
    let rescue = vm.booted == Boot::Rescue;
    let image = match (&vm.rescue, rescue) {
        (Some(r), true) => &*r.image_id,
        _ => &*vm.system.image_id,
    };
    let mut lines: Vec<String> = match vm.os {
        OsFamily::Windows => vec![
            "Windows Boot Manager".into(),
            format!("Loading {image} (nubis sim)"),
            "Starting Windows...".into(),
            "Preparing network connections".into(),
            "Applying computer settings".into(),
            "Windows is ready: press Ctrl+Alt+Del to sign in".into(),
        ],
        _ => {
            let mut l = vec![
                "[    0.000000] Linux version 6.1.0-nubis-sim (nubis@sim) #1 SMP PREEMPT_DYNAMIC"
                    .into(),
                "[    0.000000] Command line: console=ttyS0 root=/dev/vda rw panic=-1".into(),
                "[    0.000000] DMI: nubis sim VM, BIOS 1.16.3 04/01/2014".into(),
                "[    0.004000] Hypervisor detected: KVM".into(),
                "[    0.210000] virtio_blk virtio1: [vda] 41943040 512-byte logical blocks".into(),
                "[    0.380000] EXT4-fs (vda): mounted filesystem with ordered data mode".into(),
                "[    0.420000] Run /sbin/init as init process".into(),
                "[  OK  ] Started Journal Service.".into(),
                "[  OK  ] Reached target Network.".into(),
                "[  OK  ] Started OpenBSD Secure Shell server.".into(),
                "[  OK  ] Reached target Multi-User System.".into(),
            ];
            if rescue {
                l.insert(7, format!("[    0.500000] nubis: rescue system {image}; the instance's disk is /dev/vdb"));
            } else {
                l.insert(7, format!("[    0.500000] nubis: booting {image}"));
            }
            l
        }
    };
    for e in &vm.restarts {
        lines.push(format!("{} nubis-sim: {} ({})", e.at, e.event, e.kind));
    }
    match vm.power {
        // Paused: the console stands where the guest stopped.
        Power::On | Power::Paused => lines.push(String::new()),
        // Suspended: the guest never knew; its VM is gone until it resumes.
        Power::Suspended => {}
        Power::Off | Power::Shelved | Power::Offloaded => {
            lines.push("[  OK  ] Reached target Power-Off.".into());
            lines.push("reboot: Power down".into());
        }
    }
    if vm.power == Power::On && vm.os != OsFamily::Windows {
        lines.push("nubis-sim login: ".into());
    }
    ConsoleLog {
        text: lines.join("\n"),
        updated_at_ms: vm.power_at_ms,
    }
}

/// A host key's fingerprint: `SHA256:` and the unpadded base64 of a digest, kept as the
/// digest's 32 bytes (a million guests held a 50-byte text each); any other text (a record
/// written by hand) kept as it is. Written as the text.
#[derive(Debug, Clone, PartialEq)]
enum Fingerprint {
    Sha256([u8; 32]),
    Text(Box<str>),
}

impl Fingerprint {
    fn new(text: &str) -> Self {
        use base64::Engine;
        let digest = text.strip_prefix("SHA256:").and_then(|b64| {
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(b64)
                .ok()?;
            <[u8; 32]>::try_from(bytes).ok()
        });
        match digest {
            Some(d) if Self::Sha256(d).text() == text => Self::Sha256(d),
            _ => Self::Text(text.into()),
        }
    }

    fn text(&self) -> String {
        use base64::Engine;
        match self {
            Self::Sha256(d) => format!(
                "SHA256:{}",
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(d)
            ),
            Self::Text(t) => t.to_string(),
        }
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(Self::new(&text))
    }
}

fn host_key() -> String {
    let seed: [u8; 32] = rand::random();
    let digest = sha2::Sha256::digest(seed);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// A stop or a reboot as the simulator plays it: how long the soft and the hard way take,
/// the event it records and the power it leaves.
struct PowerChange {
    event: &'static str,
    soft: f64,
    hard: f64,
    after: Power,
}

impl SimDriver {
    pub fn new(scale: f64) -> Self {
        Self::with_timings(scale, Timings::default())
    }

    pub fn with_timings(scale: f64, timings: Timings) -> Self {
        Self {
            scale: scale.max(0.0),
            timings,
            vms: Mutex::new(HashMap::new()),
            pool: Mutex::new(Pool::default()),
            image_store: None,
        }
    }

    /// Snapshots write their file into `dir` (the image directory).
    pub fn with_image_store(mut self, dir: std::path::PathBuf) -> Self {
        self.image_store = Some(dir);
        self
    }

    /// A snapshot of the system disk: its simulated content as JSON, written whole under a
    /// temporary name and renamed (a repeat writes the same bytes again).
    fn write_snapshot(&self, id: Uuid, image_id: &str) -> Result<(), DriverError> {
        let bytes = self
            .with_vm(id, |vm| {
                serde_json::to_vec_pretty(&SimSnapshot {
                    format: "nubis-sim-disk/1",
                    instance: id,
                    image_id,
                    source_image: &vm.system.image_id,
                    system_disk: &vm.system_disk,
                    users: vm.system.users.keys().collect(),
                    authorized_keys: &vm.system.authorized_keys,
                })
            })?
            .map_err(|e| DriverError::Failed(e.to_string()))?;
        let Some(dir) = &self.image_store else {
            return Ok(());
        };
        if !nubis_core::ids::is_image_id(image_id) {
            return Err(DriverError::Failed(format!("not an image ID: {image_id}")));
        }
        let io = |e: std::io::Error| DriverError::Failed(format!("snapshot: {e}"));
        std::fs::create_dir_all(dir).map_err(io)?;
        let part = dir.join(format!(".{image_id}.img.part"));
        std::fs::write(&part, bytes).map_err(io)?;
        std::fs::rename(&part, dir.join(format!("{image_id}.img"))).map_err(io)
    }

    async fn wait(&self, seconds: f64) {
        let d = seconds * self.scale;
        if d > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(d)).await;
        }
    }

    fn with_vm<T>(&self, id: Uuid, f: impl FnOnce(&mut SimVm) -> T) -> Result<T, DriverError> {
        self.vms
            .lock()
            .get_mut(&id)
            .map(|vm| f(vm))
            .ok_or(DriverError::UnknownVm(id))
    }

    /// [`SimDriver::with_vm`] for a change that writes new texts (users, keys, a system):
    /// they become the pool's copies.
    fn with_vm_texts(&self, id: Uuid, f: impl FnOnce(&mut SimVm)) -> Result<(), DriverError> {
        self.with_vm(id, |vm| {
            f(vm);
            vm.share(&mut self.pool.lock());
        })
    }

    /// Add (or, `keep`, add unless present) a guest, its texts shared.
    fn put(&self, id: Uuid, mut vm: SimVm, keep: bool) {
        let mut vms = self.vms.lock();
        if keep && vms.contains_key(&id) {
            return;
        }
        vm.share(&mut self.pool.lock());
        vms.insert(id, Box::new(vm));
    }

    fn record(vm: &mut SimVm, event: &str, kind: &str) {
        let mut events = std::mem::take(&mut vm.restarts).into_vec();
        PowerEvent::push(&mut events, event, kind);
        vm.restarts = events.into_boxed_slice();
    }

    /// Stop the guest; returns the kind of stop that happened.
    async fn power_off(&self, id: Uuid, mode: StopMode) -> Result<&'static str, DriverError> {
        let (on, ignores_acpi) =
            self.with_vm(id, |vm| (vm.power == Power::On, vm.soft_stop_fails))?;
        if !on {
            return Ok("none");
        }
        let stop = PowerChange {
            event: "stop",
            soft: self.timings.soft_stop,
            hard: self.timings.hard_stop,
            after: Power::Off,
        };
        self.power_change(id, mode, ignores_acpi, stop).await
    }

    /// A stop or a reboot in `mode`: waits as long as the guest takes, then records the
    /// event with the kind that happened (returned) and leaves the power as `change` says.
    async fn power_change(
        &self,
        id: Uuid,
        mode: StopMode,
        ignores_acpi: bool,
        change: PowerChange,
    ) -> Result<&'static str, DriverError> {
        let timeout = self.timings.soft_stop_timeout;
        let kind = match mode {
            StopMode::Hard => {
                self.wait(change.hard).await;
                "hard"
            }
            StopMode::Soft | StopMode::SoftFirst if !ignores_acpi => {
                self.wait(change.soft).await;
                "graceful"
            }
            StopMode::Soft => {
                self.wait(timeout).await;
                return Err(DriverError::SoftStopTimeout(timeout as u64));
            }
            StopMode::SoftFirst => {
                self.wait(timeout + change.hard).await;
                "hard"
            }
        };
        self.with_vm(id, |vm| {
            vm.power = change.after;
            vm.power_at_ms = now_ms();
            Self::record(vm, change.event, kind);
        })?;
        Ok(kind)
    }

    /// Move a guest from power `from` to `to` after `seconds`, recording `event`. A guest
    /// already in `to` is left as it is (a repeated step); one in any other power is an error.
    async fn hold(
        &self,
        id: Uuid,
        from: &[Power],
        to: Power,
        seconds: f64,
        event: &str,
    ) -> Result<(), DriverError> {
        let power = self.with_vm(id, |vm| vm.power)?;
        if power == to {
            return Ok(());
        }
        if !from.contains(&power) {
            return Err(DriverError::Failed(format!(
                "cannot {event} a guest that is {power:?}"
            )));
        }
        self.wait(seconds).await;
        self.with_vm(id, |vm| {
            vm.power = to;
            vm.power_at_ms = now_ms();
            Self::record(vm, event, "requested");
        })
    }

    /// Write a password or key change to the guest's system disk.
    fn guest_change(&self, id: Uuid, step: &Step) -> Result<(), DriverError> {
        self.with_vm_texts(id, |vm| match step {
            Step::SetPassword {
                user,
                password_hash,
            } => {
                vm.system.users.insert(user, password_hash);
            }
            Step::AddKeys { keys } => {
                for k in keys {
                    if !vm.system.authorized_keys.iter().any(|a| **a == **k) {
                        vm.system.authorized_keys.push(k.as_str().into());
                    }
                }
            }
            Step::RemoveKeys { keys } => vm
                .system
                .authorized_keys
                .retain(|k| !keys.iter().any(|r| **r == **k)),
            _ => {}
        })
    }
}

#[async_trait]
impl Driver for SimDriver {
    /// A next-boot change is written to the guest's disk at once (no guest-change wait).
    async fn stage(&self, spec: &VmSpec, step: &Step) -> Result<(), DriverError> {
        match step {
            Step::SetPassword { .. } | Step::AddKeys { .. } | Step::RemoveKeys { .. } => {
                self.guest_change(spec.uuid, step)
            }
            other => self.execute(spec, other).await,
        }
    }

    /// This very step already ran: a reboot or reinstall is not redone.
    fn turn_done(&self, spec: &VmSpec, _step: &Step, turn: Turn) -> bool {
        self.vms.lock().get(&spec.uuid).and_then(|vm| vm.last_turn) == Some(turn)
    }

    fn mark_turn(&self, id: Uuid, turn: Turn) -> Result<(), DriverError> {
        // Destroy leaves no VM to mark; its repeat finds nothing to remove.
        if let Some(vm) = self.vms.lock().get_mut(&id) {
            vm.last_turn = Some(turn);
        }
        Ok(())
    }

    async fn execute(&self, spec: &VmSpec, step: &Step) -> Result<(), DriverError> {
        let id = spec.uuid;
        match step {
            Step::Provision {
                image_id,
                user,
                password_hash,
                keys,
                guest,
            } => {
                self.wait(self.timings.provision).await;
                let vm = SimVm {
                    os: spec.os,
                    power: Power::Off,
                    booted: Boot::System,
                    system: System::fresh(image_id, user, password_hash, keys, guest),
                    rescue: None,
                    disks: std::iter::once(SimDisk {
                        id: spec.system_disk.as_str().into(),
                        role: "system".into(),
                        image_id: image_id.as_str().into(),
                    })
                    .chain(spec.data_disks.iter().map(|(d, _)| SimDisk {
                        id: d.as_str().into(),
                        role: "data".into(),
                        image_id: "".into(),
                    }))
                    .collect(),
                    system_disk: spec.system_disk.as_str().into(),
                    restarts: Box::default(),
                    soft_stop_fails: false,
                    last_turn: None,
                    power_at_ms: now_ms(),
                    hardware: Hardware::default(),
                    resized_to: None,
                };
                // Idempotent: a repeated provision keeps what the first one made.
                self.put(id, vm, true);
                Ok(())
            }
            Step::Reprovision {
                image_id,
                user,
                password_hash,
                keys,
                guest,
            } => {
                self.wait(self.timings.provision).await;
                self.with_vm_texts(id, |vm| {
                    // A fresh system disk: new users and host key; the instance's key pairs are
                    // injected again.
                    let kept = std::mem::take(&mut vm.system.authorized_keys);
                    vm.system = System::fresh(image_id, user, password_hash, &[], guest);
                    vm.system.authorized_keys = match keys {
                        Some(keys) => keys.iter().map(|k| k.as_str().into()).collect(),
                        None => kept,
                    };
                    if let Some(d) = vm.disks.iter_mut().find(|d| &*d.role == "system") {
                        d.image_id = image_id.as_str().into();
                    }
                })
            }
            Step::PowerOn => {
                if self.with_vm(id, |vm| vm.power == Power::On)? {
                    return Ok(());
                }
                self.wait(self.timings.boot).await;
                self.with_vm(id, |vm| {
                    vm.power = Power::On;
                    vm.power_at_ms = now_ms();
                    // The type's vCPUs and memory, as they are at this boot.
                    vm.hardware = Hardware {
                        cpu: spec.cpu,
                        memory_mib: spec.memory_mib,
                    };
                })
            }
            Step::PowerOff { mode } => self.power_off(id, *mode).await.map(|_| ()),
            Step::Reboot { mode } => {
                let ignores_acpi = self.with_vm(id, |vm| vm.soft_stop_fails)?;
                let reboot = PowerChange {
                    event: "reboot",
                    soft: self.timings.soft_reboot,
                    hard: self.timings.hard_reboot,
                    after: Power::On,
                };
                self.power_change(id, *mode, ignores_acpi, reboot)
                    .await
                    .map(|_| ())
            }
            Step::SetPassword { .. } | Step::AddKeys { .. } | Step::RemoveKeys { .. } => {
                self.wait(self.timings.guest_change).await;
                self.guest_change(id, step)
            }
            Step::BootRescue {
                user,
                password_hash,
                ..
            } => {
                // Already up (a repeated step): checked before the stop below, which would
                // kill the rescue guest and boot a new one (new host key, a stop event).
                if self.with_vm(id, |vm| vm.booted == Boot::Rescue && vm.power == Power::On)? {
                    return Ok(());
                }
                // Never boot the rescue system over a running guest.
                self.power_off(id, StopMode::Hard).await?;
                self.wait(self.timings.rescue_boot).await;
                self.with_vm_texts(id, |vm| {
                    vm.rescue = Some(Box::new(System {
                        image_id: catalog::RESCUE_IMAGE.into(),
                        users: Users::of(user, password_hash),
                        authorized_keys: Vec::new(),
                        host_key_fingerprint: Fingerprint::new(&host_key()),
                        files: Box::default(),
                        user_data: None,
                    }));
                    let rescue_disk = SimDisk {
                        id: format!("{}-rescue", vm.system_disk).into(),
                        role: "rescue".into(),
                        image_id: catalog::RESCUE_IMAGE.into(),
                    };
                    let mut disks = std::mem::take(&mut vm.disks).into_vec();
                    disks.retain(|d| &*d.role != "rescue");
                    disks.insert(0, rescue_disk);
                    vm.disks = disks.into_boxed_slice();
                    vm.booted = Boot::Rescue;
                    vm.power = Power::On;
                    vm.power_at_ms = now_ms();
                })
            }
            Step::BootSystem => {
                // Already running its own system (a repeated step): no second boot.
                if self.with_vm(id, |vm| vm.booted == Boot::System && vm.power == Power::On)? {
                    return Ok(());
                }
                self.power_off(id, StopMode::Hard).await?;
                self.wait(self.timings.boot).await;
                self.with_vm(id, |vm| {
                    vm.rescue = None;
                    let mut disks = std::mem::take(&mut vm.disks).into_vec();
                    disks.retain(|d| &*d.role != "rescue");
                    vm.disks = disks.into_boxed_slice();
                    vm.booted = Boot::System;
                    vm.power = Power::On;
                    vm.power_at_ms = now_ms();
                })
            }
            Step::Destroy => {
                self.wait(self.timings.destroy).await;
                self.vms.lock().remove(&id);
                Ok(())
            }
            Step::LiveMigrate { .. } => {
                self.wait(self.timings.live_migrate / 3.0).await;
                Ok(())
            }
            // The guest is moved powered off; it sees the new vCPUs and memory at its next
            // boot. Repeating it moves it again to the same type.
            Step::Resize { instance_type, .. } => {
                if self.with_vm(id, |vm| vm.power == Power::On)? {
                    return Err(DriverError::Failed(
                        "a guest changes its instance type powered off".into(),
                    ));
                }
                self.wait(self.timings.guest_change).await;
                self.with_vm(id, |vm| vm.resized_to = Some(instance_type.as_str().into()))
            }
            Step::ConfirmResize => {
                self.wait(self.timings.hard_stop).await;
                self.with_vm(id, |_| ())
            }
            Step::Pause => {
                self.hold(
                    id,
                    &[Power::On],
                    Power::Paused,
                    self.timings.hard_stop,
                    "pause",
                )
                .await
            }
            Step::Unpause => {
                self.hold(
                    id,
                    &[Power::Paused],
                    Power::On,
                    self.timings.hard_stop,
                    "unpause",
                )
                .await
            }
            Step::Suspend => {
                let t = self.timings.soft_stop;
                self.hold(id, &[Power::On], Power::Suspended, t, "suspend")
                    .await
            }
            Step::Resume => {
                let t = self.timings.boot;
                self.hold(id, &[Power::Suspended], Power::On, t, "resume")
                    .await
            }
            Step::Shelve => {
                let power = self.with_vm(id, |vm| vm.power)?;
                match power {
                    Power::Shelved | Power::Offloaded => return Ok(()),
                    // A running guest is shut down cleanly if it lets itself be.
                    Power::On => {
                        self.power_off(id, StopMode::SoftFirst).await?;
                    }
                    // A frozen or saved guest cannot shut down: it is powered off (below), its
                    // memory lost.
                    Power::Paused | Power::Suspended | Power::Off => {}
                }
                let t = self.timings.hard_stop;
                self.hold(
                    id,
                    &[Power::Off, Power::Paused, Power::Suspended],
                    Power::Shelved,
                    t,
                    "shelve",
                )
                .await
            }
            Step::Offload => {
                let t = self.timings.destroy;
                self.hold(id, &[Power::Shelved], Power::Offloaded, t, "offload")
                    .await
            }
            Step::Snapshot { image_id } => {
                // The guest's power is not touched: core stops it first where a cloud says so.
                self.with_vm(id, |_| ())?;
                self.wait(self.timings.guest_change).await;
                self.write_snapshot(id, image_id)
            }
            Step::Unshelve => {
                let t = self.timings.boot;
                self.hold(
                    id,
                    &[Power::Shelved, Power::Offloaded],
                    Power::On,
                    t,
                    "unshelve",
                )
                .await
            }
        }
    }

    fn console_output(&self, vm: Uuid) -> Option<ConsoleLog> {
        self.vms.lock().get(&vm).map(|v| console_of(v))
    }

    fn facts(&self, vm: Uuid) -> Option<Facts> {
        self.vms.lock().get(&vm).map(|v| Facts {
            power: v.power,
            booted: v.booted,
        })
    }

    fn snapshot(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.vms
            .lock()
            .get(&vm)
            .map(|v| serde_json::to_value(v).expect("sim vm serializes"))
    }

    fn portable(&self) -> bool {
        true
    }

    fn restore(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError> {
        let v: SimVm =
            serde_json::from_value(data).map_err(|e| DriverError::Failed(e.to_string()))?;
        self.put(vm, v, false);
        Ok(())
    }

    fn restore_json(&self, vm: Uuid, json: &str) -> Result<(), DriverError> {
        let v: SimVm =
            serde_json::from_str(json).map_err(|e| DriverError::Failed(e.to_string()))?;
        self.put(vm, v, false);
        Ok(())
    }

    fn inspect(&self, vm: Uuid) -> Option<serde_json::Value> {
        let vms = self.vms.lock();
        let v = vms.get(&vm)?;
        let booted = match v.booted {
            Boot::System => &v.system,
            Boot::Rescue => v.rescue.as_deref().unwrap_or(&v.system),
        };
        Some(serde_json::json!({
            "os_family": v.os,
            "power": v.power,
            "booted_from": v.booted,
            "users": booted.users.keys().collect::<Vec<_>>(),
            "authorized_keys": booted.authorized_keys,
            "host_key_fingerprint": booted.host_key_fingerprint.text(),
            "boot_disk": v.disks.first().map(|d| d.id.clone()),
            "disks": v.disks.iter().map(|d| serde_json::json!({"id": d.id, "role": d.role, "image_id": d.image_id})).collect::<Vec<_>>(),
            "attached_disks_order": v.disks.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            "system": {
                "users": v.system.users.keys().collect::<Vec<_>>(),
                "authorized_keys": v.system.authorized_keys,
                "host_key_fingerprint": v.system.host_key_fingerprint.text(),
                "given": v.system.given(),
            },
            "restarts": v.restarts.iter().map(|e| serde_json::json!({"event": e.event, "kind": e.kind, "at": e.at})).collect::<Vec<_>>(),
            "soft_stop_fails": v.soft_stop_fails,
            "vcpus": v.hardware.cpu,
            "memory_mib": v.hardware.memory_mib,
            "resized_to": v.resized_to,
        }))
    }

    fn check_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool> {
        let hash = {
            let vms = self.vms.lock();
            let v = vms.get(&vm)?;
            let booted = match v.booted {
                Boot::System => &v.system,
                Boot::Rescue => v.rescue.as_deref().unwrap_or(&v.system),
            };
            booted.users.get(user).map(str::to_string)
        };
        Some(hash.is_some_and(|h| nubis_auth::password::verify(password, &h)))
    }

    fn set_soft_stop_fails(&self, vm: Uuid, fails: bool) -> Result<(), DriverError> {
        self.with_vm(vm, |v| v.soft_stop_fails = fails)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec::sample(vec![])
    }

    /// A driver (time scale 0) with one guest provisioned for root.
    async fn provisioned(password_hash: Option<String>, keys: Vec<String>) -> (SimDriver, VmSpec) {
        let d = SimDriver::new(0.0);
        let s = spec();
        let step = Step::Provision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash,
            keys,
            guest: Default::default(),
        };
        d.execute(&s, &step).await.unwrap();
        (d, s)
    }

    #[tokio::test]
    async fn the_guest_keeps_what_it_was_given_by_size_and_a_rebuild_replaces_it() {
        use nubis_core::{GuestData, InjectedFile};
        let d = SimDriver::new(0.0);
        let s = spec();
        let guest = GuestData {
            user_data: Some("IyEvYmluL3NoCmVjaG8gaGkK".into()),
            files: vec![InjectedFile {
                path: "test.txt".into(),
                contents: "VGhpcyBpcyBhIHRlc3QgZmlsZS4=".into(),
            }],
        };
        let step = Step::Provision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash: None,
            keys: vec![],
            guest,
        };
        d.execute(&s, &step).await.unwrap();
        let given = d.inspect(s.uuid).unwrap()["system"]["given"].clone();
        assert_eq!(
            given,
            serde_json::json!({"files": [{"path": "/test.txt", "bytes": 20}],
                "user_data": {"bytes": 18, "script": true}})
        );
        let rebuild = Step::Reprovision {
            image_id: s.image_id.clone(),
            user: "root".into(),
            password_hash: None,
            keys: None,
            guest: GuestData::default(),
        };
        d.execute(&s, &rebuild).await.unwrap();
        let given = d.inspect(s.uuid).unwrap()["system"]["given"].clone();
        assert_eq!(given, serde_json::json!({"files": [], "user_data": null}));
    }

    #[tokio::test]
    async fn rescue_boots_rescue_image_with_original_disk_second() {
        let hash = nubis_auth::password::hash("Orig1nal!pw");
        let (d, s) = provisioned(Some(hash), vec![]).await;
        d.execute(&s, &Step::PowerOn).await.unwrap();
        let before = d.inspect(s.uuid).unwrap()["host_key_fingerprint"].clone();
        let rescue_hash = nubis_auth::password::hash("Resc0e!pw");
        d.execute(
            &s,
            &Step::BootRescue {
                user: "root".into(),
                password_hash: rescue_hash,
                image_id: None,
            },
        )
        .await
        .unwrap();
        let g = d.inspect(s.uuid).unwrap();
        assert_eq!(g["booted_from"], "rescue");
        assert_eq!(g["disks"][1]["id"], "disk-aaaaaaaa");
        assert_ne!(g["host_key_fingerprint"], before);
        assert_eq!(d.check_password(s.uuid, "root", "Resc0e!pw"), Some(true));
        assert_eq!(d.check_password(s.uuid, "root", "Orig1nal!pw"), Some(false));
        d.execute(&s, &Step::BootSystem).await.unwrap();
        assert_eq!(d.check_password(s.uuid, "root", "Orig1nal!pw"), Some(true));
        assert_eq!(d.inspect(s.uuid).unwrap()["host_key_fingerprint"], before);
    }

    #[tokio::test]
    async fn soft_stop_fault() {
        let (d, s) = provisioned(None, vec![]).await;
        d.execute(&s, &Step::PowerOn).await.unwrap();
        d.set_soft_stop_fails(s.uuid, true).unwrap();
        assert!(matches!(
            d.execute(
                &s,
                &Step::PowerOff {
                    mode: StopMode::Soft
                }
            )
            .await,
            Err(DriverError::SoftStopTimeout(_))
        ));
        assert_eq!(d.facts(s.uuid).unwrap().power, Power::On);
        d.execute(
            &s,
            &Step::PowerOff {
                mode: StopMode::SoftFirst,
            },
        )
        .await
        .unwrap();
        assert_eq!(d.facts(s.uuid).unwrap().power, Power::Off);
        assert_eq!(d.inspect(s.uuid).unwrap()["restarts"][0]["kind"], "hard");
    }

    #[tokio::test]
    async fn snapshot_restore_round_trip() {
        let (d, s) = provisioned(None, vec!["ssh-ed25519 AAAA k".into()]).await;
        let snap = d.snapshot(s.uuid).unwrap();
        let d2 = SimDriver::new(0.0);
        d2.restore(s.uuid, snap).unwrap();
        assert_eq!(d2.inspect(s.uuid), d.inspect(s.uuid));
    }

    /// A host key's fingerprint is kept as its digest and written as the same text; any
    /// other text is kept as it is.
    #[test]
    fn fingerprints_keep_their_text() {
        let made = host_key();
        assert!(matches!(Fingerprint::new(&made), Fingerprint::Sha256(_)));
        for text in [
            made.as_str(),
            "SHA256:x",
            "SHA256:",
            "",
            "MD5:aa:bb",
            &made[..made.len() - 1],
        ] {
            assert_eq!(Fingerprint::new(text).text(), text);
            let json = serde_json::to_string(&Fingerprint::new(text)).unwrap();
            let back: Fingerprint = serde_json::from_str(&json).unwrap();
            assert_eq!(back.text(), text);
        }
    }

    /// A guest fills the allocator's 256-byte size class, no more (a million are held).
    #[test]
    fn a_guest_is_small() {
        assert!(std::mem::size_of::<SimVm>() <= 256);
    }

    /// A record as stored before the compact guest model (users a map, two of them, a rescue
    /// system) reads back and writes out the same JSON; its texts shared with another guest's.
    #[test]
    fn stored_records_keep_their_form_and_share_their_texts() {
        let stored = serde_json::json!({
            "os": "linux", "power": "on", "booted": "rescue",
            "system": {"image_id": "img-tos31x64",
                       "users": {"root": "$6$rounds=5000$a$b", "admin": "!"},
                       "authorized_keys": ["ssh-ed25519 AAAA k"],
                       "host_key_fingerprint": "SHA256:x"},
            "rescue": {"image_id": "img-rescue", "users": {"root": "$6$c$d"},
                       "authorized_keys": [], "host_key_fingerprint": "SHA256:y"},
            "disks": [{"id": "disk-1-rescue", "role": "rescue", "image_id": "img-rescue"},
                      {"id": "disk-1", "role": "system", "image_id": "img-tos31x64"}],
            "system_disk": "disk-1", "restarts": [], "soft_stop_fails": false,
            "last_turn": null, "power_at_ms": 7, "hardware": {"cpu": 1, "memory_mib": 2048},
            "resized_to": null
        });
        let d = SimDriver::new(0.0);
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        d.restore_json(a, &stored.to_string()).unwrap();
        d.restore(b, stored.clone()).unwrap();
        assert_eq!(d.snapshot(a).unwrap(), stored);
        assert_eq!(d.check_password(a, "admin", "x"), Some(false));
        let vms = d.vms.lock();
        let (va, vb) = (&vms[&a], &vms[&b]);
        assert_eq!(
            va.system.users.keys().collect::<Vec<_>>(),
            ["admin", "root"],
            "sorted by user, as the map was"
        );
        assert!(Arc::ptr_eq(
            &va.system.users.0[1].1,
            &vb.system.users.0[1].1
        ));
        assert!(Arc::ptr_eq(
            &va.system.authorized_keys[0],
            &vb.system.authorized_keys[0]
        ));
        assert!(Arc::ptr_eq(&va.disks[1].image_id, &vb.disks[1].image_id));
        drop(vms);
        // A password set later on both is shared too.
        let set = Step::SetPassword {
            user: "root".into(),
            password_hash: "$6$new$hash".into(),
        };
        d.guest_change(a, &set).unwrap();
        d.guest_change(b, &set).unwrap();
        let vms = d.vms.lock();
        let hash = |v: &SimVm| v.system.users.0[1].1.clone();
        assert!(Arc::ptr_eq(&hash(&vms[&a]), &hash(&vms[&b])));
    }

    /// Pause keeps the guest (memory and all), suspend saves it, shelve shuts it down and
    /// offload takes it off the host with its disks kept; each step repeated changes nothing,
    /// and a step from the wrong power fails.
    #[tokio::test]
    async fn held_powers_and_their_repeats() {
        let (d, s) = provisioned(None, vec![]).await;
        let power = |d: &SimDriver| d.facts(s.uuid).unwrap().power;
        d.execute(&s, &Step::PowerOn).await.unwrap();
        for (step, after) in [
            (Step::Pause, Power::Paused),
            (Step::Pause, Power::Paused),
            (Step::Unpause, Power::On),
            (Step::Suspend, Power::Suspended),
            (Step::Suspend, Power::Suspended),
            (Step::Resume, Power::On),
            (Step::Pause, Power::Paused),
            (Step::Shelve, Power::Shelved),
            (Step::Shelve, Power::Shelved),
            (Step::Offload, Power::Offloaded),
            (Step::Offload, Power::Offloaded),
            (Step::Unshelve, Power::On),
            (Step::Unshelve, Power::On),
        ] {
            d.execute(&s, &step).await.unwrap();
            assert_eq!(power(&d), after, "{step:?}");
        }
        assert!(d.execute(&s, &Step::Offload).await.is_err());
        let hard = Step::PowerOff {
            mode: StopMode::Hard,
        };
        d.execute(&s, &hard).await.unwrap();
        assert!(d.execute(&s, &Step::Resume).await.is_err());
        assert!(d.execute(&s, &Step::Pause).await.is_err());
        d.execute(&s, &Step::PowerOn).await.unwrap();
        let events: Vec<String> = d.inspect(s.uuid).unwrap()["restarts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            events,
            [
                "pause", "unpause", "suspend", "resume", "pause", "shelve", "offload", "unshelve",
                "stop"
            ]
        );
        // The disks stay with an offloaded guest.
        d.execute(&s, &Step::Shelve).await.unwrap();
        d.execute(&s, &Step::Offload).await.unwrap();
        assert_eq!(d.inspect(s.uuid).unwrap()["disks"][0]["role"], "system");
        assert_eq!(
            Power::Offloaded.observed(Boot::System),
            nubis_core::InstanceState::ShelvedOffloaded
        );
    }
}
