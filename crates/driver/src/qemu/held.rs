//! Holding a guest without running it: pause (QMP `stop`, `cont`), suspend (the guest's memory
//! and device state saved to `memory.state` by a migration to a file, then QEMU ends; a resume
//! starts the same machine with `-incoming` from that file) and shelve (shut down; offloaded:
//! one host keeps the disks where they are, so offloading only marks it). Each step checks what
//! it finds, so a repeated step leaves the guest as one run does.

use super::adoption::Held;
use super::{QemuDriver, failed};
use crate::DriverError;
use nubis_core::StopMode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long saving or loading a guest's memory may take (TCG guests of 512 MiB take seconds).
const MIGRATE_TIMEOUT: Duration = Duration::from_secs(300);

/// `-incoming` takes a URI; the state file's path goes through `sh -c`, quoted.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl QemuDriver {
    fn held(&self, id: Uuid) -> Result<(bool, Option<Held>), DriverError> {
        self.with_vm(id, |vm| (vm.run.is_some(), vm.rec.held))
    }

    fn set_held(&self, id: Uuid, held: Option<Held>, event: &str) -> Result<(), DriverError> {
        self.with_vm(id, |vm| {
            vm.rec.held = held;
            Self::record_event(vm, event, "requested");
        })
    }

    pub(super) async fn pause(&self, id: Uuid) -> Result<(), DriverError> {
        match self.held(id)? {
            (true, Some(Held::Paused)) => Ok(()),
            (true, _) => {
                self.qmp(id)
                    .await?
                    .execute("stop", None)
                    .await
                    .map_err(failed)?;
                self.set_held(id, Some(Held::Paused), "pause")
            }
            (false, _) => Err(failed("cannot pause a guest that is not running")),
        }
    }

    pub(super) async fn unpause(&self, id: Uuid) -> Result<(), DriverError> {
        match self.held(id)? {
            (true, Some(Held::Paused)) => {
                self.qmp(id)
                    .await?
                    .execute("cont", None)
                    .await
                    .map_err(failed)?;
                self.set_held(id, None, "unpause")
            }
            (true, _) => Ok(()), // already running on (a repeated step)
            (false, _) => Err(failed("cannot unpause a guest that is not running")),
        }
    }

    /// Stop the vCPUs, save memory and devices to `memory.state`, end QEMU.
    pub(super) async fn suspend(&self, id: Uuid) -> Result<(), DriverError> {
        let (running, held) = self.held(id)?;
        if !running {
            return match held {
                Some(Held::Suspended) => Ok(()),
                _ => Err(failed("cannot suspend a guest that is not running")),
            };
        }
        let dir = self.vm_dir(id);
        let state = dir.join("memory.state");
        let pid = self
            .with_vm(id, |vm| vm.run.as_ref().map(|r| r.pid))?
            .ok_or_else(|| failed("QEMU ended"))?;
        // The very command line: a resume must start the same machine (devices, drives).
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).map_err(failed)?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .skip(1)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let mut q = self.qmp(id).await?;
        // Not `stop` first: QEMU saves the run state with the memory, and a machine saved
        // stopped comes back stopped from `-incoming`. Saved running, it runs on at resume;
        // the migration itself stops the guest when the last pages are written.
        let uri = format!("exec:cat > {}", sh_quote(&state.display().to_string()));
        q.execute("migrate", Some(json!({ "uri": uri })))
            .await
            .map_err(failed)?;
        let started = Instant::now();
        loop {
            let info = q.execute("query-migrate", None).await.map_err(failed)?;
            match info.get("status").and_then(Value::as_str) {
                Some("completed") => break,
                Some("failed" | "cancelled") => {
                    let _ = q.execute("cont", None).await;
                    return Err(failed(format!(
                        "saving the guest's memory failed: {}",
                        info.get("error-desc").and_then(Value::as_str).unwrap_or("")
                    )));
                }
                _ if started.elapsed() > MIGRATE_TIMEOUT => {
                    let _ = q.execute("migrate_cancel", None).await;
                    let _ = q.execute("cont", None).await;
                    return Err(failed("saving the guest's memory timed out"));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        drop(q);
        let args = serde_json::to_vec(&args).map_err(failed)?;
        std::fs::write(dir.join("memory.args"), args).map_err(failed)?;
        // Held before QEMU ends, so its end is no crash and the facts say suspended at once.
        self.set_held(id, Some(Held::Suspended), "suspend")?;
        self.stop_process(id, StopMode::Hard).await?;
        Ok(())
    }

    /// Start the saved machine from `memory.state`; it runs on where it stopped.
    pub(super) async fn resume(&self, id: Uuid) -> Result<(), DriverError> {
        let (running, held) = self.held(id)?;
        if held != Some(Held::Suspended) {
            return if running && held.is_none() {
                Ok(()) // resumed before (a repeated step)
            } else {
                Err(failed("cannot resume a guest that is not suspended"))
            };
        }
        if running {
            // This step started QEMU before a restart: done once SSH answers.
            let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
            let exited = self.exited_rx(id)?.ok_or_else(|| failed("QEMU ended"))?;
            self.wait_ssh(id, port, exited, Instant::now()).await?;
            return self.set_held(id, None, "resume");
        }
        let dir = self.vm_dir(id);
        let state = dir.join("memory.state");
        let saved = std::fs::read(dir.join("memory.args")).map_err(failed)?;
        let mut args: Vec<String> = serde_json::from_slice(&saved).map_err(failed)?;
        args.extend([
            "-incoming".into(),
            format!("exec:cat {}", sh_quote(&state.display().to_string())),
        ]);
        let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
        for name in ["qmp.sock", "qga.sock", super::config::SERIAL_SOCKET] {
            let _ = std::fs::remove_file(self.sock(id, name));
        }
        if let Err(e) = self.launch(id, &args, port).await {
            // Still suspended: the saved memory is there for another try.
            self.with_vm(id, |vm| vm.rec.held = Some(Held::Suspended))?;
            return Err(e);
        }
        let _ = std::fs::remove_file(&state);
        let _ = std::fs::remove_file(dir.join("memory.args"));
        self.set_held(id, None, "resume")
    }

    /// Shut the guest down (a paused or suspended one is powered off, its memory dropped).
    pub(super) async fn shelve(&self, id: Uuid) -> Result<(), DriverError> {
        match self.held(id)? {
            (false, Some(Held::Shelved | Held::Offloaded)) => return Ok(()),
            // Frozen: no ACPI reaches it.
            (true, Some(Held::Paused)) => self.power_off(id, StopMode::Hard).await?,
            (true, _) => self.power_off(id, StopMode::SoftFirst).await?,
            (false, _) => {}
        }
        let dir = self.vm_dir(id);
        let _ = std::fs::remove_file(dir.join("memory.state"));
        let _ = std::fs::remove_file(dir.join("memory.args"));
        self.set_held(id, Some(Held::Shelved), "shelve")
    }

    /// One host: the disks stay; the guest is marked offloaded.
    pub(super) fn offload(&self, id: Uuid) -> Result<(), DriverError> {
        match self.held(id)? {
            (false, Some(Held::Offloaded)) => Ok(()),
            (false, Some(Held::Shelved)) => self.set_held(id, Some(Held::Offloaded), "offload"),
            _ => Err(failed("cannot offload a guest that is not shelved")),
        }
    }

    /// Boot a shelved or offloaded guest from its own disks.
    pub(super) async fn unshelve(&self, id: Uuid) -> Result<(), DriverError> {
        match self.held(id)? {
            (false, Some(Held::Shelved | Held::Offloaded)) => {
                self.boot_system(id).await?;
                self.set_held(id, None, "unshelve")
            }
            // Booted before a restart (or before this repeat): done once SSH answers.
            (true, None) => {
                let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
                let exited = self.exited_rx(id)?.ok_or_else(|| failed("QEMU ended"))?;
                self.wait_ssh(id, port, exited, Instant::now()).await
            }
            _ => Err(failed("cannot unshelve a guest that is not shelved")),
        }
    }

    /// Write a standalone qcow2 of the system disk (overlay and backing flattened) as image
    /// `image_id`'s bytes in the image store. A running guest is frozen for the copy (QMP
    /// `stop` drains and flushes its disk writes) and runs on after it: crash-consistent,
    /// like Nova's live snapshot. A paused, suspended or stopped guest is copied as it is.
    /// The copy goes to a temporary name and is renamed into place, so a repeated step
    /// rewrites it whole and a reader never sees half of it.
    pub(super) async fn snapshot_disk(&self, id: Uuid, image_id: &str) -> Result<(), DriverError> {
        let store = self
            .cfg
            .image_store
            .clone()
            .ok_or_else(|| failed("no image store to write the snapshot to"))?;
        if !nubis_core::ids::is_image_id(image_id) {
            return Err(failed(format!("not an image ID: {image_id}")));
        }
        std::fs::create_dir_all(&store).map_err(failed)?;
        let disk = self.vm_dir(id).join("disk.qcow2");
        let part = store.join(format!(".{image_id}.img.part"));
        let out = store.join(format!("{image_id}.img"));
        let (running, held) = self.held(id)?;
        let freeze = running && held != Some(Held::Paused);
        if freeze {
            self.qmp(id)
                .await?
                .execute("stop", None)
                .await
                .map_err(failed)?;
        }
        let (d, p) = (disk.display().to_string(), part.display().to_string());
        // -U: the running QEMU holds the disk's lock; it is frozen, so the read is stable.
        let copied = super::process::run_tool(
            "qemu-img",
            &["convert", "-U", "-q", "-O", "qcow2", d.as_str(), p.as_str()],
        )
        .await;
        if freeze {
            let cont = match self.qmp(id).await {
                Ok(mut q) => q.execute("cont", None).await.map(|_| ()).map_err(failed),
                Err(e) => Err(e),
            };
            if let Err(e) = cont {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        }
        if let Err(e) = copied {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        std::fs::rename(&part, &out).map_err(failed)?;
        self.with_vm(id, |vm| Self::record_event(vm, "snapshot", image_id))
    }
}

#[cfg(test)]
mod tests {
    use super::sh_quote;

    #[test]
    fn state_paths_are_quoted_for_the_shell() {
        assert_eq!(
            sh_quote("/var/lib/x y/memory.state"),
            "'/var/lib/x y/memory.state'"
        );
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
    }
}
