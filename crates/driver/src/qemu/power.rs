//! Power: stopping a guest (soft, soft first, hard), booting its own disks with the changes
//! made while it was off, and rebooting it (in the guest through the agent, or a reset).

use super::QemuDriver;
use super::config::AGENT_TIMEOUT;
use super::{failed, qga};
use crate::{Boot, DriverError};
use nubis_core::StopMode;
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use uuid::Uuid;

impl QemuDriver {
    pub(super) async fn power_off(&self, id: Uuid, mode: StopMode) -> Result<(), DriverError> {
        let kind = self.stop_process(id, mode).await?;
        if kind != "none" {
            self.with_vm(id, |vm| Self::record_event(vm, "stop", kind))?;
        }
        Ok(())
    }

    /// The instance's disks in boot order: system disk, then data disks.
    pub(super) fn own_disks(&self, id: Uuid) -> Result<Vec<PathBuf>, DriverError> {
        let dir = self.vm_dir(id);
        let data = self.with_vm(id, |vm| vm.rec.data_disks.clone())?;
        Ok(std::iter::once(dir.join("disk.qcow2"))
            .chain(data.iter().map(|f| dir.join(f)))
            .collect())
    }

    /// Boot the instance's own disk, handing the guest every change made while it was off.
    pub(super) async fn boot_system(&self, id: Uuid) -> Result<(), DriverError> {
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

    pub(super) async fn reboot(&self, id: Uuid, mode: StopMode) -> Result<(), DriverError> {
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
}
