//! The QEMU configuration: the accelerator and settings the server is started with, where each
//! instance's files live (VM directory, base images, sockets), and the command line one QEMU
//! process is started with.

use super::QemuDriver;
use std::path::{Path, PathBuf};
use std::time::Duration;
use uuid::Uuid;

/// The serial port's socket in the VM's directory (a console attaches to it).
pub(super) const SERIAL_SOCKET: &str = "serial.sock";

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
    /// Memory of a guest whose instance type is not known (and the least any guest gets).
    pub memory_mib: u32,
    /// Memory per GiB of the instance type: guests are scaled down so a test host runs
    /// several (64: a 2 GiB type boots with 128 MiB, an 8 GiB one with 512 MiB).
    pub memory_mib_per_gib: u32,
    /// The most vCPUs a guest gets whatever its type.
    pub max_vcpus: u32,
    pub boot_timeout: Duration,
    /// How long a soft stop waits for the guest to power off after the ACPI button.
    pub soft_stop_timeout: Duration,
    /// The image registry's data (`<data>/images`, docs/images.md): a registry image's
    /// bytes are `<id>.img` there. `None`: only the built-in images boot.
    pub image_store: Option<PathBuf>,
}

impl QemuConfig {
    pub fn new(images: PathBuf, state_dir: PathBuf) -> Self {
        Self {
            images,
            state_dir,
            qemu_binary: PathBuf::from("qemu-system-x86_64"),
            accel: Accel::Tcg,
            memory_mib: 128,
            memory_mib_per_gib: 64,
            max_vcpus: 8,
            // TCG guests of two vCPUs boot in 10–20 s alone; on two shared cores (CI runs the fuzz
            // short run beside them) one took over 60 s: a boot that fails takes longer to say so.
            boot_timeout: Duration::from_secs(120),
            soft_stop_timeout: Duration::from_secs(30),
            image_store: None,
        }
    }
}

pub(super) const IMAGE_FILES: [&str; 4] =
    ["vmlinux", "initrd.cpio", "system.qcow2", "rescue.qcow2"];
pub(super) const AGENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one QEMU process is started with.
pub(super) struct Launch<'a> {
    pub(super) id: Uuid,
    pub(super) generation: &'a str,
    pub(super) dir: &'a Path,
    /// In boot order: vda, vdb, …
    pub(super) disks: &'a [PathBuf],
    pub(super) cidata: Option<&'a Path>,
    pub(super) port: u16,
    pub(super) qmp: &'a Path,
    pub(super) qga: &'a Path,
    pub(super) accel: Accel,
    /// vCPUs and memory (MiB) of the instance type (0: unknown, the configured default).
    pub(super) cpu: u32,
    pub(super) memory_mib: u32,
}

impl QemuDriver {
    pub(super) fn vm_dir(&self, id: Uuid) -> PathBuf {
        self.cfg.state_dir.join("vms").join(id.to_string())
    }

    pub(super) fn base(&self, generation: &str, file: &str) -> PathBuf {
        self.cfg.state_dir.join("base").join(generation).join(file)
    }

    /// Sockets need short paths (108 bytes); a deep data dir puts them under /tmp instead.
    pub(super) fn sock(&self, id: Uuid, name: &str) -> PathBuf {
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

    /// The memory a guest of a type with `type_mib` boots with: scaled by
    /// [`QemuConfig::memory_mib_per_gib`], never below [`QemuConfig::memory_mib`].
    pub(super) fn guest_memory_mib(&self, type_mib: u32) -> u32 {
        (type_mib / 1024)
            .saturating_mul(self.cfg.memory_mib_per_gib)
            .max(self.cfg.memory_mib)
    }

    /// The QEMU command line for one VM.
    pub(super) fn qemu_args(&self, l: &Launch<'_>) -> Vec<String> {
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
            self.guest_memory_mib(l.memory_mib).to_string(),
            "-smp".into(),
            l.cpu.clamp(1, self.cfg.max_vcpus.max(1)).to_string(),
            "-display".into(),
            "none".into(),
            // The serial port is a socket a console attaches to (one client at a time;
            // `wait=off`: the guest runs without one) whose output is also logged to
            // serial.log (truncated at each start of the process), the console output.
            "-chardev".into(),
            format!(
                "socket,id=serial0,path={},server=on,wait=off,logfile={}",
                self.sock(id, SERIAL_SOCKET).display(),
                dir.join("serial.log").display()
            ),
            "-serial".into(),
            "chardev:serial0".into(),
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
}

fn hex8(b: &[u8]) -> String {
    b.iter().take(4).map(|x| format!("{x:02x}")).collect()
}
