//! The driver without QEMU: images, the config drive's lines, restoring and adopting records,
//! removing unowned VM directories.

use super::adoption::{Record, Snapshot, pid_alive_for};
use super::*;
use crate::{Boot, Turn, VmSpec};
use nubis_core::StopMode;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    record_with(pid, power, Boot::System, 2222, vec![])
}

fn record_with(
    pid: Option<u32>,
    power: Power,
    booted: Boot,
    ssh_port: u16,
    pending: Vec<Change>,
) -> serde_json::Value {
    serde_json::to_value(Snapshot {
        rec: Record {
            generation: "0123456789abcdef".into(),
            user: "root".into(),
            ssh_port,
            booted,
            pending,
            keys: vec![],
            rescue_image: None,
            events: vec![],
            last_boot_ms: None,
            data_disks: vec![],
            last_turn: None,
            held: None,
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
fn first_boot_writes_files_then_user_data_and_shows_no_contents() {
    use nubis_core::{GuestData, InjectedFile};
    let id = uuid::Uuid::new_v4();
    let guest = GuestData {
        user_data: Some("IyEvYmluL3NoCg==".into()),
        files: vec![InjectedFile {
            path: "etc//my app/./conf".into(),
            contents: "aGk=".into(),
        }],
    };
    let changes = cidata::first_boot(id, "root", None, &[], &guest);
    let lines: Vec<String> = changes.iter().map(Change::line).collect();
    // Hostname and password first, then the file (path last, made absolute), then the data.
    assert_eq!(lines[1], "password root *");
    assert_eq!(lines[2], "file aGk= /etc/my app/conf");
    assert_eq!(lines[3], "user-data IyEvYmluL3NoCg==");
    assert_eq!(lines.len(), 4);
    let shown: Vec<String> = changes.iter().map(Change::summary).collect();
    assert_eq!(
        &shown[1..],
        ["password root", "file /etc/my app/conf", "user-data"]
    );
    // Without guest data nothing is added.
    assert_eq!(
        cidata::first_boot(id, "root", None, &[], &GuestData::default()).len(),
        2
    );
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
    let guest = FakeQemu::start(&d, id, &[]);
    // The committed record still says "off, no pid": the boot step had not finished.
    d.restore(id, record(None, Power::Off)).unwrap();
    assert_eq!(d.facts(id).unwrap().power, Power::On);
    assert_eq!(d.inspect(id).unwrap()["pid"], guest.pid());
    drop(guest); // kills the guest and reaps it
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

/// Stands in for a QEMU of VM `id` booted from `disks`: a process whose command line names
/// the VM and its disks as QEMU's does, written to the VM's pid file. Killed when dropped.
struct FakeQemu(std::process::Child);

impl FakeQemu {
    fn start(d: &QemuDriver, id: Uuid, disks: &[&str]) -> Self {
        use std::os::unix::process::CommandExt;
        let dir = d.vm_dir(id);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["-c".to_string(), "sleep 60; :".into(), id.to_string()];
        args.extend(
            disks
                .iter()
                .map(|f| format!("file={},if=none", dir.join(f).display())),
        );
        // (`; :` keeps the shell alive: dash would otherwise exec `sleep`, losing the name.)
        let child = std::process::Command::new("sh")
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // spawn() returns while the kernel may still be setting up the new argv.
        for _ in 0..200 {
            if pid_alive_for(child.id(), id) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(dir.join("qemu.pid"), child.id().to_string()).unwrap();
        Self(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for FakeQemu {
    fn drop(&mut self) {
        // SAFETY: kill(2) of the test's own process group.
        unsafe { libc::kill(-(self.0.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// A guest's SSH server as the driver probes it: a listener that sends the banner.
async fn ssh_banner_port() -> u16 {
    use tokio::io::AsyncWriteExt;
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"SSH-2.0-fake\r\n").await;
        }
    });
    port
}

fn spec_of(id: Uuid) -> VmSpec {
    VmSpec {
        uuid: id,
        os: nubis_core::OsFamily::Linux,
        image_id: "img-tos31x64".into(),
        system_disk: "disk-aaaaaaaa".into(),
        data_disks: vec![],
        default_user: "root".into(),
        host: None,
        cpu: 0,
        memory_mib: 0,
    }
}

fn events(d: &QemuDriver, id: Uuid) -> Vec<String> {
    d.inspect(id).unwrap()["restarts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["event"].as_str().unwrap(),
                e["kind"].as_str().unwrap()
            )
        })
        .collect()
}

/// nubis restarted while BootRescue was booting: the committed record still says "system,
/// off", the rescue QEMU runs. The resumed step adopts that guest (it was killed and booted
/// again when the step trusted the record's boot source), and a further repeat changes
/// nothing.
#[tokio::test]
async fn a_rescue_boot_interrupted_by_a_restart_adopts_the_rescue_guest() {
    let dir = tempdir();
    let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
    let id = Uuid::new_v4();
    let mut qemu = FakeQemu::start(&d, id, &["rescue.qcow2", "disk.qcow2"]);
    let port = ssh_banner_port().await;
    d.restore(
        id,
        record_with(None, Power::Off, Boot::System, port, vec![]),
    )
    .unwrap();
    let step = Step::BootRescue {
        user: "root".into(),
        password_hash: "$6$salt$hash".into(),
        image_id: None,
    };
    for run in ["resumed", "repeated"] {
        d.execute(&spec_of(id), &step).await.unwrap();
        assert!(qemu.alive(), "{run}: the rescue guest was killed");
        assert_eq!(d.inspect(id).unwrap()["pid"], qemu.pid(), "{run}");
        let f = d.facts(id).unwrap();
        assert_eq!((f.power, f.booted), (Power::On, Boot::Rescue), "{run}");
        assert_eq!(events(&d, id), ["start rescue"], "{run}");
    }
}

/// Likewise BootSystem: restarted while the system disk was booting (the record still says
/// rescue, with the changes that boot's config drive carried): adopted, changes applied.
#[tokio::test]
async fn a_system_boot_interrupted_by_a_restart_adopts_the_guest() {
    let dir = tempdir();
    let mut cfg = QemuConfig::new(images(&dir), dir.join("state"));
    cfg.soft_stop_timeout = Duration::from_millis(300);
    let d = QemuDriver::new(cfg).unwrap();
    let id = Uuid::new_v4();
    let mut qemu = FakeQemu::start(&d, id, &["disk.qcow2"]);
    std::fs::write(d.vm_dir(id).join("rescue.qcow2"), b"x").unwrap();
    let port = ssh_banner_port().await;
    let pending = vec![Change::Password {
        user: "root".into(),
        hash: "$6$salt$hash".into(),
    }];
    d.restore(
        id,
        record_with(None, Power::Off, Boot::Rescue, port, pending),
    )
    .unwrap();
    for run in ["resumed", "repeated"] {
        d.execute(&spec_of(id), &Step::BootSystem).await.unwrap();
        assert!(qemu.alive(), "{run}: the booted system was killed");
        let f = d.facts(id).unwrap();
        assert_eq!((f.power, f.booted), (Power::On, Boot::System), "{run}");
        let g = d.inspect(id).unwrap();
        assert_eq!(g["pending_changes"], serde_json::json!([]), "{run}");
        assert_eq!(g["rescue_image"], serde_json::Value::Null, "{run}");
        assert_eq!(events(&d, id), ["start boot"], "{run}");
    }
    assert!(!d.vm_dir(id).join("rescue.qcow2").exists());
}

/// A reboot that finished before a restart lost its commit is not done again (the `turn`
/// file says so); a reboot of another turn is a new request and runs (here it fails: the
/// stand-in has no QMP socket, which shows it was attempted).
#[tokio::test]
async fn a_finished_reboot_is_not_repeated_after_a_restart() {
    let dir = tempdir();
    let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
    let id = Uuid::new_v4();
    let mut qemu = FakeQemu::start(&d, id, &["disk.qcow2"]);
    let port = ssh_banner_port().await;
    let done = Turn {
        op: Uuid::new_v4(),
        index: 0,
    };
    std::fs::write(
        d.vm_dir(id).join("turn"),
        serde_json::to_vec(&done).unwrap(),
    )
    .unwrap();
    d.restore(
        id,
        record_with(Some(qemu.pid()), Power::On, Boot::System, port, vec![]),
    )
    .unwrap();
    let reboot = Step::Reboot {
        mode: StopMode::Hard,
    };
    d.execute_turn(&spec_of(id), &reboot, done).await.unwrap();
    assert!(qemu.alive());
    assert!(events(&d, id).is_empty(), "{:?}", events(&d, id));
    let next = Turn { index: 1, ..done };
    assert!(d.execute_turn(&spec_of(id), &reboot, next).await.is_err());
}

/// The turn file alone never skips a step that changes the record (its effect was lost with
/// the commit) nor any step of a VM without a record (provisioning lost its commit).
#[tokio::test]
async fn the_turn_file_skips_only_reboots_of_recorded_vms() {
    let dir = tempdir();
    let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
    let id = Uuid::new_v4();
    let t = Turn {
        op: Uuid::new_v4(),
        index: 3,
    };
    std::fs::create_dir_all(d.vm_dir(id)).unwrap();
    std::fs::write(d.vm_dir(id).join("turn"), serde_json::to_vec(&t).unwrap()).unwrap();
    assert!(!d.turn_finished(id, t, true), "no record: not done");
    d.restore(id, record(None, Power::Off)).unwrap();
    assert!(d.turn_finished(id, t, true));
    assert!(!d.turn_finished(id, t, false));
    d.record_turn(id, t).unwrap();
    assert!(d.turn_finished(id, t, false), "recorded");
}

/// Changes for a stopped guest's next boot are queued once however often the step runs;
/// a change that reverses one in the queue is still queued.
#[tokio::test]
async fn repeated_changes_to_a_stopped_guest_are_queued_once() {
    let dir = tempdir();
    let d = QemuDriver::new(QemuConfig::new(images(&dir), dir.join("state"))).unwrap();
    let id = Uuid::new_v4();
    d.restore(id, record(None, Power::Off)).unwrap();
    let s = spec_of(id);
    let key = "ssh-ed25519 AAAA k".to_string();
    let steps = [
        Step::SetPassword {
            user: "root".into(),
            password_hash: "$6$a$b".into(),
        },
        Step::AddKeys {
            keys: vec![key.clone()],
        },
        Step::RemoveKeys {
            keys: vec![key.clone()],
        },
        Step::AddKeys { keys: vec![key] },
    ];
    for step in &steps {
        d.execute(&s, step).await.unwrap();
        d.execute(&s, step).await.unwrap();
    }
    let g = d.inspect(id).unwrap();
    assert_eq!(
        g["pending_changes"],
        serde_json::json!([
            "password root",
            "key-add root",
            "key-remove root",
            "key-add root"
        ])
    );
    assert_eq!(
        g["authorized_keys"],
        serde_json::json!(["ssh-ed25519 AAAA k"])
    );
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
