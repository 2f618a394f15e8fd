//! One [`Driver`] for the engine over this process's own driver and every agent host
//! (docs/agents.md): a VM placed on a host goes to that host's [`RemoteDriver`], any other to
//! the local driver. Steps name their host in the [`VmSpec`]; the sync reads, which name only
//! the VM, look it up in [`Placements`], which the engine keeps with its fleet.

use crate::remote::RemoteDriver;
use crate::{ConsoleLog, Driver, DriverError, Facts, Turn, VmSpec};
use async_trait::async_trait;
use nubis_core::Step;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// VM → the host it is placed on (VMs of the local driver are not listed).
#[derive(Debug, Default)]
pub struct Placements(RwLock<HashMap<Uuid, String>>);

impl Placements {
    pub fn set(&self, vm: Uuid, host: Option<&str>) {
        let mut m = self.0.write();
        match host {
            Some(h) => {
                m.insert(vm, h.to_string());
            }
            None => {
                m.remove(&vm);
            }
        }
    }

    pub fn host(&self, vm: Uuid) -> Option<String> {
        self.0.read().get(&vm).cloned()
    }
}

pub struct Router {
    local: Arc<dyn Driver>,
    remotes: RwLock<HashMap<String, Arc<RemoteDriver>>>,
    placements: Arc<Placements>,
}

impl Router {
    pub fn new(local: Arc<dyn Driver>) -> Self {
        Self {
            local,
            remotes: RwLock::new(HashMap::new()),
            placements: Arc::new(Placements::default()),
        }
    }

    pub fn placements(&self) -> Arc<Placements> {
        self.placements.clone()
    }

    /// Reach host `id` at `address` with `secret` from now on.
    pub fn set_host(&self, id: &str, address: &str, secret: &str) {
        if let Some(r) = self.remotes.read().get(id) {
            r.retarget(address, secret);
            return;
        }
        self.remotes
            .write()
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(RemoteDriver::new(id, address, secret)));
    }

    pub fn forget_host(&self, id: &str) {
        self.remotes.write().remove(id);
    }

    pub fn remote(&self, id: &str) -> Option<Arc<RemoteDriver>> {
        self.remotes.read().get(id).cloned()
    }

    /// The driver of a VM on `host` (`None`: local). A host not reported yet gets a driver
    /// without an address: its calls are unreachable until [`Router::set_host`], and what
    /// is restored into it (the store's copy of its VMs) is kept meanwhile.
    fn on(&self, host: Option<&str>) -> Arc<dyn Driver> {
        match host {
            None => self.local.clone(),
            Some(h) => {
                if let Some(r) = self.remote(h) {
                    return r;
                }
                self.remotes
                    .write()
                    .entry(h.to_string())
                    .or_insert_with(|| Arc::new(RemoteDriver::new(h, "", "")))
                    .clone()
            }
        }
    }

    fn of_spec(&self, vm: &VmSpec) -> Arc<dyn Driver> {
        self.placements.set(vm.uuid, vm.host.as_deref());
        self.on(vm.host.as_deref())
    }

    fn of(&self, vm: Uuid) -> Arc<dyn Driver> {
        self.on(self.placements.host(vm).as_deref())
    }
}

#[async_trait]
impl Driver for Router {
    async fn execute(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError> {
        self.of_spec(vm).execute(vm, step).await
    }

    async fn execute_turn(&self, vm: &VmSpec, step: &Step, turn: Turn) -> Result<(), DriverError> {
        self.of_spec(vm).execute_turn(vm, step, turn).await
    }

    async fn stage(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError> {
        self.of_spec(vm).stage(vm, step).await
    }

    fn facts(&self, vm: Uuid) -> Option<Facts> {
        self.of(vm).facts(vm)
    }

    fn snapshot(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.of(vm).snapshot(vm)
    }

    fn restore(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError> {
        self.of(vm).restore(vm, data)
    }

    fn restore_json(&self, vm: Uuid, json: &str) -> Result<(), DriverError> {
        self.of(vm).restore_json(vm, json)
    }

    fn portable(&self) -> bool {
        self.local.portable()
    }

    fn inspect(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.of(vm).inspect(vm)
    }

    fn check_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool> {
        self.of(vm).check_password(vm, user, password)
    }

    async fn verify_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool> {
        self.of(vm).verify_password(vm, user, password).await
    }

    async fn refresh(&self, vm: Uuid) {
        self.of(vm).refresh(vm).await;
    }

    fn set_soft_stop_fails(&self, vm: Uuid, fails: bool) -> Result<(), DriverError> {
        self.of(vm).set_soft_stop_fails(vm, fails)
    }

    fn ssh_endpoint(&self, vm: Uuid) -> Option<std::net::SocketAddr> {
        self.of(vm).ssh_endpoint(vm)
    }

    fn console_output(&self, vm: Uuid) -> Option<ConsoleLog> {
        self.of(vm).console_output(vm)
    }

    /// Only this host's guests: an agent's serial port is not forwarded (yet).
    fn serial_socket(&self, vm: Uuid) -> Option<std::path::PathBuf> {
        self.of(vm).serial_socket(vm)
    }

    fn take_events(&self) -> Option<tokio::sync::mpsc::UnboundedReceiver<Uuid>> {
        self.local.take_events()
    }

    /// The local driver's leftovers only: an agent reconciles its own when it starts.
    fn reconcile(&self, known: &[Uuid]) {
        let placements = self.placements.0.read();
        let local: Vec<Uuid> = known
            .iter()
            .filter(|id| !placements.contains_key(id))
            .copied()
            .collect();
        drop(placements);
        self.local.reconcile(&local);
    }
}
