//! The engine's steps on real guests: provisioning and rebuilding disks, power, password and
//! key changes (live through the guest agent, or queued for the config drive), rescue.

use super::adoption::Record;
use super::cidata::{Change, first_boot, one_line};
use super::config::AGENT_TIMEOUT;
use super::process::qemu_img_create;
use super::{QemuDriver, Vm, failed, qga};
use crate::{Boot, DriverError, VmSpec};
use nubis_core::{OsFamily, Step, StopMode, catalog};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;
use uuid::Uuid;

impl QemuDriver {
    /// Runs one step of an operation on instance `spec.uuid` (the driver's `execute`).
    pub(super) async fn run_step(&self, spec: &VmSpec, step: &Step) -> Result<(), DriverError> {
        let id = spec.uuid;
        match step {
            Step::Provision {
                image_id,
                user,
                password_hash,
                keys,
                guest,
            } => {
                if spec.os == OsFamily::Windows {
                    return Err(failed("the qemu driver boots Linux guests only"));
                }
                if self.vms.lock().contains_key(&id) {
                    return Ok(()); // repeated step after a restart
                }
                std::fs::create_dir_all(self.vm_dir(id)).map_err(failed)?;
                let generation = self.generation.clone();
                self.create_system_disk(id, &generation, image_id).await?;
                // Data disks: empty, sparse, the size asked for.
                let mut data_disks = Vec::new();
                for (disk_id, size_gib) in &spec.data_disks {
                    let file = format!("data-{disk_id}.qcow2");
                    qemu_img_create(&self.vm_dir(id).join(&file), None, Some(*size_gib)).await?;
                    data_disks.push(file);
                }
                let pending = first_boot(id, user, password_hash.as_deref(), keys, guest);
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
                    last_turn: None,
                    held: None,
                };
                self.vms.lock().insert(id, Vm { rec, run: None });
                Ok(())
            }
            Step::Reprovision {
                image_id,
                user,
                password_hash,
                keys,
                guest,
            } => {
                self.power_off(id, StopMode::Hard).await?;
                let generation = self.generation.clone();
                self.create_system_disk(id, &generation, image_id).await?;
                self.with_vm(id, |vm| {
                    vm.rec.generation = generation;
                    vm.rec.user = user.clone();
                    if let Some(keys) = keys {
                        vm.rec.keys = keys.clone();
                    }
                    vm.rec.pending =
                        first_boot(id, user, password_hash.as_deref(), &vm.rec.keys, guest);
                })
            }
            Step::PowerOn => {
                if self.exited_rx(id)?.is_some() {
                    // Already running: this step was interrupted by a restart after QEMU
                    // started. The guest has its config drive; done when SSH answers.
                    self.await_adopted_boot(id).await?;
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
                        Change::Password {
                            user: user.clone(),
                            hash: password_hash.clone(),
                        }
                        .queue(&mut vm.rec.pending)
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
                        for k in keys {
                            Change::KeyAdd {
                                user: user.clone(),
                                key: k.clone(),
                            }
                            .queue(&mut vm.rec.pending);
                        }
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
                        for k in keys {
                            Change::KeyRemove {
                                user: user.clone(),
                                key: k.clone(),
                            }
                            .queue(&mut vm.rec.pending);
                        }
                    })?;
                }
                self.with_vm(id, |vm| vm.rec.keys.retain(|k| !keys.contains(k)))
            }
            Step::BootRescue {
                user,
                password_hash,
                image_id,
            } => {
                // Read from the process, not from the record: a restart in the middle of this
                // boot adopts a rescue guest whose boot was never recorded, and stopping it
                // here would kill it only to boot another one.
                if self.up_from(id)? == Some(Boot::Rescue) {
                    self.await_adopted_boot(id).await?;
                    return self.with_vm(id, |vm| {
                        if vm.rec.booted != Boot::Rescue {
                            vm.rec.booted = Boot::Rescue;
                            vm.rec.rescue_image = image_id.clone();
                            Self::record_event(vm, "start", "rescue");
                        }
                    });
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
                // Its own system already up (this step booted it before a restart, or ran
                // before): no stop, no second boot. The guest read the queued changes from the
                // config drive of that boot.
                if self.up_from(id)? == Some(Boot::System) {
                    self.await_adopted_boot(id).await?;
                    let _ = std::fs::remove_file(self.vm_dir(id).join("rescue.qcow2"));
                    return self.with_vm(id, |vm| {
                        vm.rec.rescue_image = None;
                        if vm.rec.booted != Boot::System {
                            vm.rec.booted = Boot::System;
                            vm.rec.pending.clear();
                            Self::record_event(vm, "start", "boot");
                        }
                    });
                }
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
            // The new vCPUs and memory come with the spec of the steps that follow (the
            // instance's type changed when the resize was accepted): QEMU starts with them
            // at the next boot. The guest is off for the change.
            Step::Resize { .. } => {
                if self.with_vm(id, |vm| vm.run.is_some())? {
                    return Err(failed("a guest changes its instance type powered off"));
                }
                Ok(())
            }
            Step::ConfirmResize => Ok(()),
            Step::Pause => self.pause(id).await,
            Step::Unpause => self.unpause(id).await,
            Step::Suspend => self.suspend(id).await,
            Step::Resume => self.resume(id).await,
            Step::Shelve => self.shelve(id).await,
            Step::Offload => self.offload(id),
            Step::Unshelve => self.unshelve(id).await,
            Step::Snapshot { image_id } => self.snapshot_disk(id, image_id).await,
        }
    }

    /// A guest whose QEMU is already up (adopted after a restart, or booted by an earlier run
    /// of the step) is done booting when its SSH server answers.
    async fn await_adopted_boot(&self, id: Uuid) -> Result<(), DriverError> {
        let port = self.with_vm(id, |vm| vm.rec.ssh_port)?;
        let exited = self.exited_rx(id)?.ok_or_else(|| failed("QEMU ended"))?;
        self.wait_ssh(id, port, exited, Instant::now()).await
    }

    /// What the running QEMU boots, read from its command line (None: not running). A rescue
    /// boot puts the rescue disk first; the system's own boots never attach it.
    pub(super) fn up_from(&self, id: Uuid) -> Result<Option<Boot>, DriverError> {
        let Some(pid) = self.with_vm(id, |vm| vm.run.as_ref().map(|r| r.pid))? else {
            return Ok(None);
        };
        let rescue = format!("file={},", self.vm_dir(id).join("rescue.qcow2").display());
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return Ok(None); // ended meanwhile: its supervisor reports it
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        Ok(Some(if cmdline.contains(&rescue) {
            Boot::Rescue
        } else {
            Boot::System
        }))
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
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
