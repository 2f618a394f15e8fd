//! What the control plane and a host agent say to each other (docs/agents.md): JSON bodies of
//! signed POSTs (`nubis_auth::agent`). The agent answers every call about a VM with a
//! [`VmReply`], so the control plane's copy of the sync reads stays as fresh as its last call.

use crate::{ConsoleLog, Driver, DriverError, Facts, Turn, VmSpec};
use nubis_core::Step;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The agent's paths.
pub const EXECUTE: &str = "/v1/execute";
pub const STAGE: &str = "/v1/stage";
pub const RESTORE: &str = "/v1/restore";
pub const VM: &str = "/v1/vm";
pub const PASSWORD: &str = "/v1/password";
pub const SOFT_STOP: &str = "/v1/soft-stop-fails";
pub const RECONCILE: &str = "/v1/reconcile";

/// The control plane's paths for agents (on the one listener).
pub const REPORT: &str = "/agent/v1/report";
pub const GUESTS: &str = "/agent/v1/guests";

/// The largest body either side reads: a VM's reply carries at most 64 KiB of console.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepCall {
    pub vm: VmSpec,
    pub step: Step,
    /// Set for a runner's step (`Driver::execute_turn`), unset for `execute`.
    pub turn: Option<Turn>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmCall {
    pub vm: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreCall {
    pub vm: Uuid,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordCall {
    pub vm: Uuid,
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoftStopCall {
    pub vm: Uuid,
    pub fails: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReconcileCall {
    pub known: Vec<Uuid>,
}

/// A VM as its agent sees it after a call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VmReply {
    pub facts: Option<Facts>,
    pub snapshot: Option<serde_json::Value>,
    pub ssh: Option<std::net::SocketAddr>,
    pub inspect: Option<serde_json::Value>,
    pub console: Option<ConsoleLog>,
}

impl VmReply {
    pub fn of(d: &dyn Driver, vm: Uuid) -> Self {
        Self {
            facts: d.facts(vm),
            snapshot: d.snapshot(vm),
            ssh: d.ssh_endpoint(vm),
            inspect: d.inspect(vm),
            console: d.console_output(vm),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordReply {
    pub ok: Option<bool>,
}

/// A failed call: the driver's error (HTTP 409), or a refusal of the request itself (401,
/// 400) as text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: Option<DriverError>,
    pub message: String,
}

/// What an agent reports about itself, every heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Where the control plane reaches it: `http://host:port`.
    pub address: String,
    pub driver: String,
    pub capacity: nubis_core::hosts::Capacity,
}

/// The guests placed on a host, with their last committed state: what an agent restores
/// when it (re)starts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Guests {
    pub guests: Vec<(Uuid, serde_json::Value)>,
    /// Every VM placed on the host (with or without a stored state): anything else the
    /// agent keeps is left over.
    pub known: Vec<Uuid>,
}
