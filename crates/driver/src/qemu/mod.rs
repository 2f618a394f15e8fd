//! Real virtual machines: one QEMU process per running instance, supervised, controlled over
//! QMP; passwords and keys go through qemu-guest-agent on a running guest and through a config
//! drive (read by the guest at its next boot) on a stopped one. The guest image comes from
//! `guest/build` (see guest/README.md). Every wait ends on something the guest or QEMU reports
//! (SSH banner, agent answer, QMP event, process exit), never on a fixed sleep.

mod qga;
mod qmp;

use crate::{Boot, Driver, DriverError, Facts, Power, PowerEvent, VmSpec};
use async_trait::async_trait;
use nubis_core::{OsFamily, Step, StopMode, catalog};
use parking_lot::Mutex;
use qmp::Qmp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Hardware acceleration. KVM hangs or aborts on the machines this was built on, so it is an
/// explicit opt-in and every boot has a timeout either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// Output of guest/build: vmlinux, initrd.cpio, system.qcow2, rescue.qcow2, stamp.
    pub images: PathBuf,
    /// Where disks and per-VM files live (`<data>/qemu`).
    pub state_dir: PathBuf,
    pub qemu_binary: PathBuf,
    pub accel: Accel,
    pub memory_mib: u32,
    pub boot_timeout: Duration,
    /// How long a soft stop waits for the guest to power off after the ACPI button.
    pub soft_stop_timeout: Duration,
}

impl QemuConfig {
    pub fn new(images: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            images,
            state_dir,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            accel: Accel::Tcg,
            memory_mib: 128,
            boot_timeout: Duration::from_secs(60),
            soft_stop_timeout: Duration::from_secs(30),
        }
    }
}

const IMAGE_FILES: [&str; 4] = ["vmlinux", "initrd.cpio", "system.qcow2", "rescue.qcow2"];
const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A change the guest applies to its own system disk (config drive line, see guest/README.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Change {
    Password { user: String, hash: String },
    KeyAdd { user: String, key: String },
    KeyRemove { user: String, key: String },
    Hostname { name: String },
}

impl Change {
    fn line(&self) -> String {
        match self {
            Change::Password { user, hash } => format!("password {user} {hash}"),
            Change::KeyAdd { user, key } => format!("key-add {user} {}", one_line(key)),
            Change::KeyRemove { user, key } => format!("key-remove {user} {}", one_line(key)),
            Change::Hostname { name } => format!("hostname {name}"),
        }
    }
}

/// What a fresh system disk is told at its first boot: hostname, the user's password ("*" =
/// none) and the instance's keys.
fn first_boot(id: Uuid, user: &str, hash: Option<&str>, keys: &[String]) -> Vec<Change> {
    let mut changes = vec![
        Change::Hostname {
            name: format!("ins-{}", &id.simple().to_string()[..8]),
        },
        Change::Password {
            user: user.into(),
            hash: hash.unwrap_or("*").into(),
        },
    ];
    changes.extend(keys.iter().map(|k| Change::KeyAdd {
        user: user.into(),
        key: k.clone(),
    }));
    changes
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What survives a restart of nubis (committed by the engine with each step).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    /// Image generation (guest/build stamp) the disk is an overlay of.
    generation: String,
    user: String,
    ssh_port: u16,
    booted: Boot,
    /// Changes for the system disk not yet applied by the guest (written at its next boot).
    pending: Vec<Change>,
    /// Keys the control plane put on the system (re-injected on rebuild).
    keys: Vec<String>,
    rescue_image: Option<String>,
    events: Vec<PowerEvent>,
    last_boot_ms: Option<u64>,
    /// Data disk files in the VM directory, attached after the system disk.
    #[serde(default)]
    data_disks: Vec<String>,
}

/// The committed form: the record and, derived at commit time, the process it had.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    #[serde(flatten)]
    rec: Record,
    power: Power,
    pid: Option<u32>,
}

struct Running {
    pid: u32,
    /// Becomes true when the process has exited.
    exited: watch::Receiver<bool>,
    /// Set before an exit nubis asked for, so the supervisor does not report a crash.
    expected_exit: bool,
}

struct Vm {
    rec: Record,
    run: Option<Running>,
}

impl Vm {
    /// On exactly while its QEMU process runs.
    fn power(&self) -> Power {
        if self.run.is_some() {
            Power::On
        } else {
            Power::Off
        }
    }
}

/// What one QEMU process is started with.
struct Launch<'a> {
    id: Uuid,
    generation: &'a str,
    dir: &'a Path,
    /// In boot order: vda, vdb, …
    disks: &'a [PathBuf],
    cidata: Option<&'a Path>,
    port: u16,
    qmp: &'a Path,
    qga: &'a Path,
    accel: Accel,
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
}

fn failed(what: impl std::fmt::Display) -> DriverError {
    DriverError::Failed(what.to_string())
}

/// A free loopback port (QEMU binds it itself right after).
fn free_port() -> Result<u16, DriverError> {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed(format!("no free port: {e}")))
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn pid_alive_for(pid: u32, uuid: Uuid) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(&uuid.to_string()))
        .unwrap_or(false)
}

async fn run_tool(program: &str, args: &[&str]) -> Result<(), DriverError> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| failed(format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(failed(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `qemu-img create`: an overlay of `backing`, or an empty disk of `size_gib`. Replaces `path`.
async fn qemu_img_create(
    path: &Path,
    backing: Option<&Path>,
    size_gib: Option<u32>,
) -> Result<(), DriverError> {
    let _ = std::fs::remove_file(path);
    let mut args: Vec<String> = ["create", "-q", "-f", "qcow2"].map(String::from).to_vec();
    if let Some(b) = backing {
        args.extend([
            "-F".into(),
            "qcow2".into(),
            "-b".into(),
            b.display().to_string(),
        ]);
    }
    args.push(path.display().to_string());
    if let Some(g) = size_gib {
        args.push(format!("{g}G"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("qemu-img", &args).await
}

/// The SSH server answered with its banner: sshd is up (a TCP connect alone proves nothing,
/// the user-mode network accepts it before the guest is there).
async fn ssh_banner(port: u16) -> bool {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"SSH-")
    };
    tokio::time::timeout(Duration::from_millis(1500), probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
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
        }))
    }

    /// The accelerator boots use.
    pub fn accel(&self) -> Accel {
        *self.accel.lock()
    }

    /// With KVM asked for, boot the system image once under KVM and wait for its SSH banner.
    /// Where KVM guests hang or QEMU aborts (seen on nested hosts), fall back to TCG with a
    /// warning instead of failing every boot after it. Returns the accelerator in use.
    pub async fn probe_accel(&self, timeout: Duration) -> Accel {
        if self.accel() != Accel::Kvm {
            return Accel::Tcg;
        }
        match self.kvm_probe(timeout).await {
            Ok(ms) => {
                tracing::info!(boot_ms = ms, "KVM probe: the guest booted; using KVM");
                Accel::Kvm
            }
            Err(e) => {
                tracing::warn!(error = %e, "KVM probe failed; falling back to TCG");
                *self.accel.lock() = Accel::Tcg;
                Accel::Tcg
            }
        }
    }

    async fn kvm_probe(&self, timeout: Duration) -> Result<u64, DriverError> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .map_err(|e| failed(format!("/dev/kvm: {e}")))?;
        let id = Uuid::nil();
        let dir = self.vm_dir(id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(failed)?;
        let generation = self.generation.clone();
        let disk = self
            .create_disk(id, &generation, "system.qcow2", "disk.qcow2")
            .await?;
        let port = free_port()?;
        let args = self.qemu_args(&Launch {
            id,
            generation: &generation,
            dir: &dir,
            disks: &[disk],
            cidata: None,
            port,
            qmp: &self.sock(id, "qmp.sock"),
            qga: &self.sock(id, "qga.sock"),
            accel: Accel::Kvm,
        });
        let log = std::fs::File::create(dir.join("qemu.log")).map_err(failed)?;
        let mut child = tokio::process::Command::new(&self.cfg.qemu_binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("{}: {e}", self.cfg.qemu_binary.display())))?;
        let started = Instant::now();
        let result = loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                break Err(failed(format!(
                    "QEMU exited ({status}): {}",
                    log.lines().last().unwrap_or("")
                )));
            }
            if ssh_banner(port).await {
                break Ok(started.elapsed().as_millis() as u64);
            }
            if started.elapsed() > timeout {
                break Err(failed(format!(
                    "no SSH banner within {} s (the guest hangs under KVM)",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let _ = child.kill().await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn vm_dir(&self, id: Uuid) -> PathBuf {
        self.cfg.state_dir.join("vms").join(id.to_string())
    }

    fn base(&self, generation: &str, file: &str) -> PathBuf {
        self.cfg.state_dir.join("base").join(generation).join(file)
    }

    /// Sockets need short paths (108 bytes); a deep data dir puts them under /tmp instead.
    fn sock(&self, id: Uuid, name: &str) -> PathBuf {
        let p = self.vm_dir(id).join(name);
        if p.as_os_str().len() < 100 {
            return p;
        }
        use sha2::Digest;
        let h = sha2::Sha256::digest(self.cfg.state_dir.as_os_str().as_encoded_bytes());
        let dir = std::env::temp_dir().join(format!("nubis-{}", hex8(&h)));
        let _ = std::fs::create_dir_all(&dir);
        dir.join(format!("{}.{name}", &id.simple().to_string()[..12]))
    }

    /// A free loopback port for a guest's SSH forward that no other guest of ours holds
    /// (a stopped guest keeps its port, so its address stays the same across restarts).
    fn alloc_port(&self) -> Result<u16, DriverError> {
        for _ in 0..64 {
            let p = free_port()?;
            if !self.vms.lock().values().any(|v| v.rec.ssh_port == p) {
                return Ok(p);
            }
        }
        Err(failed("no free port for the SSH forward"))
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

    /// The supervisor saw the process end.
    fn on_exit(&self, id: Uuid, pid: u32, status: String) {
        let mut vms = self.vms.lock();
        let Some(vm) = vms.get_mut(&id) else { return };
        if vm.run.as_ref().is_none_or(|r| r.pid != pid) {
            return;
        }
        let expected = vm.run.take().is_some_and(|r| r.expected_exit);
        if !expected {
            // The guest powered itself off, or QEMU died: a state change the API must show.
            tracing::warn!(instance = %id, %status, "QEMU process ended without being asked");
            Self::record_event(vm, "stop", &format!("unrequested ({status})"));
            let _ = self.events_tx.send(id);
        }
    }

    /// Start QEMU with the given disks (first = boot disk) and wait until SSH answers.
    async fn boot(
        &self,
        id: Uuid,
        disks: &[PathBuf],
        changes: &[Change],
    ) -> Result<(), DriverError> {
        let dir = self.vm_dir(id);
        let (generation, mut port) =
            self.with_vm(id, |vm| (vm.rec.generation.clone(), vm.rec.ssh_port))?;
        if !port_free(port) {
            port = self.alloc_port()?;
            self.with_vm(id, |vm| vm.rec.ssh_port = port)?;
        }
        let cidata = dir.join("cidata.img");
        let _ = std::fs::remove_file(&cidata);
        if !changes.is_empty() {
            self.write_config_drive(&dir, &cidata, changes).await?;
        }
        let (qmp_sock, qga_sock) = (self.sock(id, "qmp.sock"), self.sock(id, "qga.sock"));
        let _ = std::fs::remove_file(&qmp_sock);
        let _ = std::fs::remove_file(&qga_sock);
        let args = self.qemu_args(&Launch {
            id,
            generation: &generation,
            dir: &dir,
            disks,
            cidata: (!changes.is_empty()).then_some(cidata.as_path()),
            port,
            qmp: &qmp_sock,
            qga: &qga_sock,
            accel: *self.accel.lock(),
        });
        let log = std::fs::File::create(dir.join("qemu.log")).map_err(failed)?;
        let mut cmd = tokio::process::Command::new(&self.cfg.qemu_binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Own process group: a Ctrl-C or restart of nubis leaves the guests running; the
            // next start adopts them.
            .process_group(0);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| failed(format!("{}: {e}", self.cfg.qemu_binary.display())))?;
        let pid = child.id().unwrap_or_default();
        std::fs::write(dir.join("qemu.pid"), pid.to_string()).map_err(failed)?;
        let (tx, exited) = watch::channel(false);
        self.with_vm(id, |vm| {
            vm.run = Some(Running {
                pid,
                exited: exited.clone(),
                expected_exit: false,
            });
        })?;
        let me = self.me.clone();
        tokio::spawn(async move {
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            if let Some(d) = me.upgrade() {
                d.on_exit(id, pid, status);
            }
            let _ = tx.send(true);
        });
        if let Err(e) = self.wait_ssh(id, port, exited, started).await {
            // Do not leave a half-booted guest behind a failed step.
            let _ = self.stop_process(id, StopMode::Hard).await;
            return Err(e);
        }
        let ms = started.elapsed().as_millis() as u64;
        tracing::info!(instance = %id, port, boot_ms = ms, "guest booted (SSH banner)");
        self.with_vm(id, |vm| vm.rec.last_boot_ms = Some(ms))?;
        Ok(())
    }

    /// The QEMU command line for one VM.
    fn qemu_args(&self, l: &Launch<'_>) -> Vec<String> {
        let (id, dir, port) = (l.id, l.dir, l.port);
        let accel = match l.accel {
            Accel::Tcg => "tcg,tb-size=32",
            Accel::Kvm => "kvm",
        };
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("nubis-{id},debug-threads=off"),
            "-uuid".into(),
            id.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-machine".into(),
            "pc".into(),
            "-accel".into(),
            accel.into(),
            "-m".into(),
            self.cfg.memory_mib.to_string(),
            "-smp".into(),
            "1".into(),
            "-display".into(),
            "none".into(),
            "-serial".into(),
            format!("file:{}", dir.join("serial.log").display()),
            "-kernel".into(),
            self.base(l.generation, "vmlinux").display().to_string(),
            "-initrd".into(),
            self.base(l.generation, "initrd.cpio").display().to_string(),
            "-append".into(),
            "console=ttyS0 root=/dev/vda rw panic=-1".into(),
        ];
        // Explicit devices in command-line order: PCI slots, and so vda, vdb, …, follow it
        // (an `if=virtio` drive would be placed after every explicit device).
        for (i, d) in l.disks.iter().enumerate() {
            args.extend([
                "-drive".into(),
                format!(
                    "file={},if=none,id=disk{i},format=qcow2,cache=writeback,discard=unmap",
                    d.display()
                ),
                "-device".into(),
                format!("virtio-blk-pci,drive=disk{i}"),
            ]);
        }
        if let Some(cidata) = l.cidata {
            args.extend([
                "-drive".into(),
                format!(
                    "file={},if=none,id=cidata,format=raw,readonly=on",
                    cidata.display()
                ),
                "-device".into(),
                "virtio-blk-pci,drive=cidata,serial=cidata".into(),
            ]);
        }
        args.extend([
            "-netdev".into(),
            format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"),
            "-device".into(),
            "virtio-net-pci,netdev=n0".into(),
            "-device".into(),
            "virtio-rng-pci".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", l.qmp.display()),
            "-chardev".into(),
            format!("socket,id=qga0,path={},server=on,wait=off", l.qga.display()),
            "-device".into(),
            "virtio-serial-pci".into(),
            "-device".into(),
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".into(),
        ]);
        args
    }

    async fn wait_ssh(
        &self,
        id: Uuid,
        port: u16,
        exited: watch::Receiver<bool>,
        started: Instant,
    ) -> Result<(), DriverError> {
        loop {
            if *exited.borrow() {
                let log =
                    std::fs::read_to_string(self.vm_dir(id).join("qemu.log")).unwrap_or_default();
                return Err(failed(format!(
                    "QEMU exited while booting: {}",
                    log.lines().last().unwrap_or("see serial.log")
                )));
            }
            if ssh_banner(port).await {
                return Ok(());
            }
            if started.elapsed() > self.cfg.boot_timeout {
                return Err(failed(format!(
                    "the guest did not answer on SSH within {} s",
                    self.cfg.boot_timeout.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn write_config_drive(
        &self,
        dir: &Path,
        img: &Path,
        changes: &[Change],
    ) -> Result<(), DriverError> {
        let src = dir.join("cidata");
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).map_err(failed)?;
        let mut text: String = changes.iter().map(|c| c.line() + "\n").collect();
        if text.is_empty() {
            text.push('\n');
        }
        std::fs::write(src.join("nubis.conf"), text).map_err(failed)?;
        let f = std::fs::File::create(img).map_err(failed)?;
        f.set_len(4 << 20).map_err(failed)?;
        drop(f);
        let (img_s, src_s) = (img.display().to_string(), src.display().to_string());
        let r = run_tool(
            "mkfs.ext4",
            &["-q", "-F", "-L", "cidata", "-d", &src_s, &img_s],
        )
        .await;
        let _ = std::fs::remove_dir_all(&src);
        r
    }

    fn exited_rx(&self, id: Uuid) -> Result<Option<watch::Receiver<bool>>, DriverError> {
        self.with_vm(id, |vm| vm.run.as_ref().map(|r| r.exited.clone()))
    }

    async fn wait_exit(rx: &mut watch::Receiver<bool>, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, rx.wait_for(|e| *e))
            .await
            .is_ok()
    }

    async fn qmp(&self, id: Uuid) -> Result<Qmp, DriverError> {
        Qmp::connect(&self.sock(id, "qmp.sock"), Duration::from_secs(5))
            .await
            .map_err(failed)
    }

    /// Stop the QEMU process. Returns the kind of stop that happened ("none" if not running).
    async fn stop_process(&self, id: Uuid, mode: StopMode) -> Result<&'static str, DriverError> {
        let Some(mut rx) = self.exited_rx(id)? else {
            return Ok("none");
        };
        self.with_vm(id, |vm| {
            if let Some(r) = vm.run.as_mut() {
                r.expected_exit = true;
            }
        })?;
        if mode != StopMode::Hard {
            // ACPI power button; the guest shuts down cleanly and QEMU exits. A press before
            // the guest's button driver is loaded is lost, so it is pressed again every 2 s.
            let deadline = Instant::now() + self.cfg.soft_stop_timeout;
            let mut qmp = self.qmp(id).await.ok();
            loop {
                if let Some(q) = qmp.as_mut() {
                    let _ = q.execute("system_powerdown", None).await;
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if Self::wait_exit(&mut rx, left.min(Duration::from_secs(2))).await {
                    return Ok("graceful");
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
            drop(qmp);
            if mode == StopMode::Soft {
                self.with_vm(id, |vm| {
                    if let Some(r) = vm.run.as_mut() {
                        r.expected_exit = false;
                    }
                })?;
                return Err(DriverError::SoftStopTimeout(
                    self.cfg.soft_stop_timeout.as_secs(),
                ));
            }
        }
        if let Ok(mut q) = self.qmp(id).await {
            let _ = q.execute("quit", None).await;
        }
        if !Self::wait_exit(&mut rx, Duration::from_secs(5)).await {
            let pid = self.with_vm(id, |vm| vm.run.as_ref().map(|r| r.pid))?;
            if let Some(pid) = pid {
                kill(pid);
            }
            if !Self::wait_exit(&mut rx, Duration::from_secs(10)).await {
                return Err(failed("QEMU did not exit after SIGKILL"));
            }
        }
        Ok("hard")
    }

    async fn power_off(&self, id: Uuid, mode: StopMode) -> Result<(), DriverError> {
        let kind = self.stop_process(id, mode).await?;
        if kind != "none" {
            self.with_vm(id, |vm| Self::record_event(vm, "stop", kind))?;
        }
        Ok(())
    }

    /// The instance's disks in boot order: system disk, then data disks.
    fn own_disks(&self, id: Uuid) -> Result<Vec<PathBuf>, DriverError> {
        let dir = self.vm_dir(id);
        let data = self.with_vm(id, |vm| vm.rec.data_disks.clone())?;
        Ok(std::iter::once(dir.join("disk.qcow2"))
            .chain(data.iter().map(|f| dir.join(f)))
            .collect())
    }

    /// Boot the instance's own disk, handing the guest every change made while it was off.
    async fn boot_system(&self, id: Uuid) -> Result<(), DriverError> {
        let pending = self.with_vm(id, |vm| vm.rec.pending.clone())?;
        self.boot(id, &self.own_disks(id)?, &pending).await?;
        // The guest applies the drive before its SSH server starts: the banner means done.
        self.with_vm(id, |vm| {
            vm.rec
                .pending
                .drain(..pending.len().min(vm.rec.pending.len()));
            vm.rec.booted = Boot::System;
        })
    }

    /// A fresh overlay of a base image (`name` in the VM's directory).
    async fn create_disk(
        &self,
        id: Uuid,
        generation: &str,
        base: &str,
        name: &str,
    ) -> Result<PathBuf, DriverError> {
        let disk = self.vm_dir(id).join(name);
        qemu_img_create(&disk, Some(&self.base(generation, base)), None).await?;
        Ok(disk)
    }

    /// Running on the system disk: change it live through the agent.
    fn live(&self, id: Uuid) -> Result<bool, DriverError> {
        self.with_vm(id, |vm| vm.run.is_some() && vm.rec.booted == Boot::System)
    }

    async fn agent(
        &self,
        id: Uuid,
        command: &str,
        args: serde_json::Value,
    ) -> Result<(), DriverError> {
        qga::call(
            &self.sock(id, "qga.sock"),
            command,
            args,
            true,
            AGENT_TIMEOUT,
        )
        .await
        .map(|_| ())
        .map_err(failed)
    }

    async fn reboot(&self, id: Uuid, mode: StopMode) -> Result<(), DriverError> {
        if self.exited_rx(id)?.is_none() {
            return self.boot_system(id).await;
        }
        let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
        let exited = self.exited_rx(id)?.ok_or_else(|| failed("QEMU ended"))?;
        let mut q = self.qmp(id).await?;
        let started = Instant::now();
        let mut kind = "hard";
        if mode != StopMode::Hard {
            // A clean reboot inside the guest; QEMU reports it as a RESET event.
            let sent = qga::call(
                &self.sock(id, "qga.sock"),
                "guest-shutdown",
                json!({"mode": "reboot"}),
                false,
                AGENT_TIMEOUT,
            )
            .await
            .is_ok();
            if sent && q.wait_event("RESET", self.cfg.soft_stop_timeout).await {
                kind = "graceful";
            } else if mode == StopMode::Soft {
                return Err(DriverError::SoftStopTimeout(
                    self.cfg.soft_stop_timeout.as_secs(),
                ));
            }
        }
        if kind == "hard" {
            q.execute("system_reset", None).await.map_err(failed)?;
        }
        drop(q);
        self.wait_ssh(id, port, exited, started).await?;
        self.with_vm(id, |vm| Self::record_event(vm, "reboot", kind))
    }

    fn snapshot_of(vm: &Vm) -> serde_json::Value {
        serde_json::to_value(Snapshot {
            rec: vm.rec.clone(),
            power: vm.power(),
            pid: vm.run.as_ref().map(|r| r.pid),
        })
        .expect("record serializes")
    }
}

fn hex8(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}

/// SIGKILL a QEMU this driver started (checked by pid and command line before).
fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

#[async_trait]
impl Driver for QemuDriver {
    async fn execute(&self, spec: &VmSpec, step: &Step) -> Result<(), DriverError> {
        let id = spec.uuid;
        match step {
            Step::Provision {
                user,
                password_hash,
                keys,
                ..
            } => {
                if spec.os == OsFamily::Windows {
                    return Err(failed("the qemu driver boots Linux guests only"));
                }
                if self.vms.lock().contains_key(&id) {
                    return Ok(()); // repeated step after a restart
                }
                std::fs::create_dir_all(self.vm_dir(id)).map_err(failed)?;
                let generation = self.generation.clone();
                self.create_disk(id, &generation, "system.qcow2", "disk.qcow2")
                    .await?;
                // Data disks: empty, sparse, the size asked for.
                let mut data_disks = Vec::new();
                for (disk_id, size_gib) in &spec.data_disks {
                    let file = format!("data-{disk_id}.qcow2");
                    qemu_img_create(&self.vm_dir(id).join(&file), None, Some(*size_gib)).await?;
                    data_disks.push(file);
                }
                let pending = first_boot(id, user, password_hash.as_deref(), keys);
                let rec = Record {
                    generation,
                    user: user.clone(),
                    ssh_port: self.alloc_port()?,
                    booted: Boot::System,
                    pending,
                    keys: keys.clone(),
                    rescue_image: None,
                    events: Vec::new(),
                    last_boot_ms: None,
                    data_disks,
                };
                self.vms.lock().insert(id, Vm { rec, run: None });
                Ok(())
            }
            Step::Reprovision {
                user,
                password_hash,
                keys,
                ..
            } => {
                self.power_off(id, StopMode::Hard).await?;
                let generation = self.generation.clone();
                self.create_disk(id, &generation, "system.qcow2", "disk.qcow2")
                    .await?;
                self.with_vm(id, |vm| {
                    vm.rec.generation = generation;
                    vm.rec.user = user.clone();
                    if let Some(keys) = keys {
                        vm.rec.keys = keys.clone();
                    }
                    vm.rec.pending = first_boot(id, user, password_hash.as_deref(), &vm.rec.keys);
                })
            }
            Step::PowerOn => {
                if let Some(exited) = self.exited_rx(id)? {
                    // Already running: this step was interrupted by a restart after QEMU
                    // started. The guest has its config drive; done when SSH answers.
                    let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
                    self.wait_ssh(id, port, exited, Instant::now()).await?;
                    return self.with_vm(id, |vm| {
                        if vm.rec.booted == Boot::System {
                            vm.rec.pending.clear();
                        }
                    });
                }
                self.boot_system(id).await?;
                self.with_vm(id, |vm| Self::record_event(vm, "start", "boot"))
            }
            Step::PowerOff { mode } => self.power_off(id, *mode).await,
            Step::Reboot { mode } => self.reboot(id, *mode).await,
            Step::SetPassword {
                user,
                password_hash,
            } => {
                if self.live(id)? {
                    self.agent(
                        id,
                        "guest-set-user-password",
                        json!({"username": user, "password": base64_encode(password_hash), "crypted": true}),
                    )
                    .await
                } else {
                    self.with_vm(id, |vm| {
                        vm.rec.pending.push(Change::Password {
                            user: user.clone(),
                            hash: password_hash.clone(),
                        })
                    })
                }
            }
            Step::AddKeys { keys } => {
                let user = self.with_vm(id, |vm| vm.rec.user.clone())?;
                if self.live(id)? {
                    self.agent(
                        id,
                        "guest-ssh-add-authorized-keys",
                        json!({"username": user, "keys": keys.iter().map(|k| one_line(k)).collect::<Vec<_>>(), "reset": false}),
                    )
                    .await?;
                } else {
                    self.with_vm(id, |vm| {
                        vm.rec.pending.extend(keys.iter().map(|k| Change::KeyAdd {
                            user: user.clone(),
                            key: k.clone(),
                        }))
                    })?;
                }
                self.with_vm(id, |vm| {
                    for k in keys {
                        if !vm.rec.keys.contains(k) {
                            vm.rec.keys.push(k.clone());
                        }
                    }
                })
            }
            Step::RemoveKeys { keys } => {
                let user = self.with_vm(id, |vm| vm.rec.user.clone())?;
                if self.live(id)? {
                    self.agent(
                        id,
                        "guest-ssh-remove-authorized-keys",
                        json!({"username": user, "keys": keys.iter().map(|k| one_line(k)).collect::<Vec<_>>()}),
                    )
                    .await?;
                } else {
                    self.with_vm(id, |vm| {
                        vm.rec
                            .pending
                            .extend(keys.iter().map(|k| Change::KeyRemove {
                                user: user.clone(),
                                key: k.clone(),
                            }))
                    })?;
                }
                self.with_vm(id, |vm| vm.rec.keys.retain(|k| !keys.contains(k)))
            }
            Step::BootRescue {
                user,
                password_hash,
                image_id,
            } => {
                let (on, booted) = self.with_vm(id, |vm| (vm.run.is_some(), vm.rec.booted))?;
                if on && booted == Boot::Rescue {
                    return Ok(()); // repeated step
                }
                // Never boot the rescue system over a running guest.
                self.power_off(id, StopMode::Hard).await?;
                let generation = self.with_vm(id, |vm| vm.rec.generation.clone())?;
                // Nova's rescue_image_ref names a catalogue image: a fresh copy of the system
                // image; otherwise the rescue image.
                let base = match image_id.as_deref() {
                    Some(i) if i != catalog::RESCUE_IMAGE => "system.qcow2",
                    _ => "rescue.qcow2",
                };
                let rescue = self
                    .create_disk(id, &generation, base, "rescue.qcow2")
                    .await?;
                let changes = [
                    Change::Hostname {
                        name: "rescue".into(),
                    },
                    Change::Password {
                        user: user.clone(),
                        hash: password_hash.clone(),
                    },
                ];
                self.with_vm(id, |vm| vm.rec.rescue_image = image_id.clone())?;
                // The rescue system first, then the instance's disks: its system disk is vdb.
                let disks: Vec<PathBuf> =
                    std::iter::once(rescue).chain(self.own_disks(id)?).collect();
                self.boot(id, &disks, &changes).await?;
                self.with_vm(id, |vm| {
                    vm.rec.booted = Boot::Rescue;
                    Self::record_event(vm, "start", "rescue");
                })
            }
            Step::BootSystem => {
                self.power_off(id, StopMode::SoftFirst).await?;
                let _ = std::fs::remove_file(self.vm_dir(id).join("rescue.qcow2"));
                self.with_vm(id, |vm| vm.rec.rescue_image = None)?;
                self.boot_system(id).await?;
                self.with_vm(id, |vm| Self::record_event(vm, "start", "boot"))
            }
            Step::Destroy => {
                if self.vms.lock().contains_key(&id) {
                    self.power_off(id, StopMode::Hard).await?;
                }
                self.vms.lock().remove(&id);
                // Sockets may live outside the VM directory (deep data dirs).
                for name in ["qmp.sock", "qga.sock"] {
                    let _ = std::fs::remove_file(self.sock(id, name));
                }
                match std::fs::remove_dir_all(self.vm_dir(id)) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(failed(e)),
                }
            }
            // One host: a live migration moves nothing; the guest keeps running.
            Step::LiveMigrate { .. } => Ok(()),
        }
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
            None if power == Power::On => {
                tracing::warn!(instance = %vm, "guest is no longer running; marked stopped");
                let _ = self.events_tx.send(vm);
            }
            None => {}
        }
        self.vms.lock().insert(vm, Vm { rec, run });
        Ok(())
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
            "pending_changes": v.rec.pending.iter().map(Change::line).map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" ")).collect::<Vec<_>>(),
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

    fn take_events(&self) -> Option<mpsc::UnboundedReceiver<Uuid>> {
        self.events_rx.lock().take()
    }

    fn reconcile(&self, known: &[Uuid]) {
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

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(dir: &Path) -> PathBuf {
        let img = dir.join("images");
        std::fs::create_dir_all(&img).unwrap();
        for f in IMAGE_FILES {
            std::fs::write(img.join(f), f).unwrap();
        }
        std::fs::write(img.join("stamp"), "0123456789abcdef0123\n").unwrap();
        img
    }

    fn record(pid: Option<u32>, power: Power) -> serde_json::Value {
        serde_json::to_value(Snapshot {
            rec: Record {
                generation: "0123456789abcdef".into(),
                user: "root".into(),
                ssh_port: 2222,
                booted: Boot::System,
                pending: vec![],
                keys: vec![],
                rescue_image: None,
                events: vec![],
                last_boot_ms: None,
                data_disks: vec![],
            },
            power,
            pid,
        })
        .unwrap()
    }

    #[test]
    fn config_drive_lines_are_one_line_each() {
        let c = Change::KeyAdd {
            user: "root".into(),
            key: "ssh-ed25519 AAAA\n  comment with  spaces\n".into(),
        };
        assert_eq!(
            c.line(),
            "key-add root ssh-ed25519 AAAA comment with spaces"
        );
        let p = Change::Password {
            user: "root".into(),
            hash: "$6$salt$hash".into(),
        };
        assert_eq!(p.line(), "password root $6$salt$hash");
    }

    #[test]
    fn missing_images_are_refused_with_the_fix() {
        let dir = tempdir();
        let e = QemuDriver::new(QemuConfig::new(dir.join("nope"), dir.join("state")))
            .err()
            .unwrap();
        assert!(e.to_string().contains("run guest/build"), "{e}");
    }

    #[tokio::test]
    async fn restore_marks_a_vanished_guest_stopped_and_reports_it() {
        let dir = tempdir();
        let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
        // Images are copied under their stamp so rebuilt images never change live disks.
        assert!(
            dir.join("state/base/0123456789abcdef/system.qcow2")
                .is_file()
        );
        let mut events = d.take_events().unwrap();
        let (gone, off) = (Uuid::new_v4(), Uuid::new_v4());
        // A pid that is not a QEMU of this VM (our own process) must not be adopted.
        d.restore(gone, record(Some(std::process::id()), Power::On))
            .unwrap();
        d.restore(off, record(None, Power::Off)).unwrap();
        assert_eq!(d.facts(gone).unwrap().power, Power::Off);
        assert_eq!(events.try_recv().unwrap(), gone);
        assert!(events.try_recv().is_err(), "a stopped guest is no event");
        assert_eq!(d.ssh_endpoint(off).unwrap().to_string(), "127.0.0.1:2222");
    }

    #[tokio::test]
    async fn restore_adopts_a_guest_started_by_an_uncommitted_step_and_watches_it() {
        let dir = tempdir();
        let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
        let mut events = d.take_events().unwrap();
        let id = Uuid::new_v4();
        // Stands in for QEMU: a process whose command line names the VM. (`; :` keeps the
        // shell alive: dash would otherwise exec `sleep` and the name would be gone.)
        use std::os::unix::process::CommandExt;
        let mut guest = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :", &id.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // spawn() returns while the kernel may still be setting up the new argv.
        for _ in 0..200 {
            if pid_alive_for(guest.id(), id) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::create_dir_all(d.vm_dir(id)).unwrap();
        std::fs::write(d.vm_dir(id).join("qemu.pid"), guest.id().to_string()).unwrap();
        // The committed record still says "off, no pid": the boot step had not finished.
        d.restore(id, record(None, Power::Off)).unwrap();
        assert_eq!(d.facts(id).unwrap().power, Power::On);
        assert_eq!(d.inspect(id).unwrap()["pid"], guest.id());
        // SAFETY: kill(2) of the test's own process group.
        unsafe { libc::kill(-(guest.id() as libc::pid_t), libc::SIGKILL) };
        guest.wait().unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
        assert_eq!(
            got.unwrap(),
            Some(id),
            "the end of an adopted guest is reported"
        );
        assert_eq!(d.facts(id).unwrap().power, Power::Off);
    }

    #[tokio::test]
    async fn reconcile_removes_only_unowned_vm_dirs() {
        let dir = tempdir();
        let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
        let (owned, stray) = (Uuid::new_v4(), Uuid::new_v4());
        for id in [owned, stray] {
            std::fs::create_dir_all(d.vm_dir(id)).unwrap();
            std::fs::write(d.vm_dir(id).join("disk.qcow2"), b"x").unwrap();
        }
        d.restore(owned, record(None, Power::Off)).unwrap();
        d.reconcile(&[owned]);
        assert!(d.vm_dir(owned).exists());
        assert!(!d.vm_dir(stray).exists());
    }

    /// A scratch directory removed when the test ends.
    struct TempDir(PathBuf);

    impl std::ops::Deref for TempDir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tempdir() -> TempDir {
        let p = std::env::temp_dir().join(format!("nubis-qemu-test-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
