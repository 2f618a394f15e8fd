//! The QEMU process and the host tools: ports, `qemu-img`, spawning QEMU and supervising it
//! until it exits, waiting for the guest's SSH banner, QMP, stopping the process (ACPI, quit,
//! SIGKILL), and the KVM probe.

use super::cidata::Change;
use super::config::{Accel, Launch};
use super::qmp::Qmp;
use super::{QemuDriver, failed};
use crate::DriverError;
use nubis_core::StopMode;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;
use uuid::Uuid;

pub(super) struct Running {
    pub(super) pid: u32,
    /// Becomes true when the process has exited.
    pub(super) exited: watch::Receiver<bool>,
    /// Set before an exit nubis asked for, so the supervisor does not report a crash.
    pub(super) expected_exit: bool,
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

pub(super) async fn run_tool(program: &str, args: &[&str]) -> Result<(), DriverError> {
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

/// The format of a disk image file: qcow2 by its magic, raw otherwise (what Glance's
/// `disk_format` allows nubis to boot).
pub(super) fn image_format(path: &Path) -> Result<&'static str, DriverError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f =
        std::fs::File::open(path).map_err(|e| failed(format!("{}: {e}", path.display())))?;
    Ok(match f.read_exact(&mut magic) {
        Ok(()) if magic == *b"QFI\xfb" => "qcow2",
        _ => "raw",
    })
}

/// `qemu-img create`: an overlay of `backing`, or an empty disk of `size_gib`. Replaces `path`.
pub(super) async fn qemu_img_create(
    path: &Path,
    backing: Option<&Path>,
    size_gib: Option<u32>,
) -> Result<(), DriverError> {
    let _ = std::fs::remove_file(path);
    let mut args: Vec<String> = ["create", "-q", "-f", "qcow2"].map(String::from).to_vec();
    if let Some(b) = backing {
        args.extend([
            "-F".into(),
            image_format(b)?.into(),
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

/// SIGKILL a QEMU this driver started (checked by pid and command line before).
pub(super) fn kill(pid: u32) {
    // SAFETY: kill(2) has no memory effects.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

impl QemuDriver {
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
            cpu: 1,
            memory_mib: 0,
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

    /// A free loopback port for a guest's SSH forward that no other guest of ours holds
    /// (a stopped guest keeps its port, so its address stays the same across restarts).
    pub(super) fn alloc_port(&self) -> Result<u16, DriverError> {
        for _ in 0..64 {
            let p = free_port()?;
            if !self.vms.lock().values().any(|v| v.rec.ssh_port == p) {
                return Ok(p);
            }
        }
        Err(failed("no free port for the SSH forward"))
    }

    /// The supervisor saw the process end.
    pub(super) fn on_exit(&self, id: Uuid, pid: u32, status: String) {
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
    pub(super) async fn boot(
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
        let (cpu, memory_mib) = self.hardware.lock().get(&id).copied().unwrap_or((1, 0));
        let _ = std::fs::remove_file(&qmp_sock);
        let _ = std::fs::remove_file(&qga_sock);
        let _ = std::fs::remove_file(self.sock(id, super::config::SERIAL_SOCKET));
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
            cpu,
            memory_mib,
        });
        self.launch(id, &args, port).await
    }

    /// Start QEMU with `args` (a boot, or a resume from saved memory) under a supervisor and
    /// wait until the guest's SSH server on `port` answers.
    pub(super) async fn launch(
        &self,
        id: Uuid,
        args: &[String],
        port: u16,
    ) -> Result<(), DriverError> {
        let dir = self.vm_dir(id);
        let log = std::fs::File::create(dir.join("qemu.log")).map_err(failed)?;
        let mut cmd = tokio::process::Command::new(&self.cfg.qemu_binary);
        cmd.args(args)
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
            // A new process is neither paused nor anything else held.
            vm.rec.held = None;
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

    pub(super) async fn wait_ssh(
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

    pub(super) fn exited_rx(&self, id: Uuid) -> Result<Option<watch::Receiver<bool>>, DriverError> {
        self.with_vm(id, |vm| vm.run.as_ref().map(|r| r.exited.clone()))
    }

    async fn wait_exit(rx: &mut watch::Receiver<bool>, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, rx.wait_for(|e| *e))
            .await
            .is_ok()
    }

    pub(super) async fn qmp(&self, id: Uuid) -> Result<Qmp, DriverError> {
        Qmp::connect(&self.sock(id, "qmp.sock"), Duration::from_secs(5))
            .await
            .map_err(failed)
    }

    /// Stop the QEMU process. Returns the kind of stop that happened ("none" if not running).
    pub(super) async fn stop_process(
        &self,
        id: Uuid,
        mode: StopMode,
    ) -> Result<&'static str, DriverError> {
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

    /// A fresh overlay of a base image (`name` in the VM's directory).
    pub(super) async fn create_disk(
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

    /// The system disk of instance `id`, an overlay of image `image_id`: a built-in image's
    /// system.qcow2 of this generation, or a registry image's bytes in the image store
    /// (docs/images.md), booted as they are with the built-in kernel.
    pub(super) async fn create_system_disk(
        &self,
        id: Uuid,
        generation: &str,
        image_id: &str,
    ) -> Result<PathBuf, DriverError> {
        if nubis_core::catalog::image(image_id).is_some() {
            return self
                .create_disk(id, generation, "system.qcow2", "disk.qcow2")
                .await;
        }
        let file = self
            .cfg
            .image_store
            .as_ref()
            .map(|d| d.join(format!("{image_id}.img")))
            .filter(|f| f.is_file())
            .ok_or_else(|| failed(format!("image {image_id} has no data on this host")))?;
        let disk = self.vm_dir(id).join("disk.qcow2");
        qemu_img_create(&disk, Some(&file), None).await?;
        Ok(disk)
    }
}
