//! The driver without QEMU: images, the config drive's lines, restoring and adopting records,
//! removing unowned VM directories.

use super::adoption::{Record, Snapshot, pid_alive_for};
use super::*;
use crate::Boot;
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
