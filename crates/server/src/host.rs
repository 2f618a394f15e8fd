//! `nubis agent` (docs/agents.md): one compute host. It restores the VMs the control plane
//! places on it, then serves their steps over HTTP (signed by the control plane with the
//! host's credential) and reports its address, driver and capacity every few seconds. Every
//! call is checked before its body is parsed: bounded signature headers, the time window, the
//! MAC in constant time, and a nonce seen before is refused.

use crate::agent::{header_of, refusal};
use anyhow::{Context, Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use clap::Args;
use nubis_auth::agent::{self, AgentAuthError};
use nubis_driver::remote::{CallError, post as signed_post};
use nubis_driver::wire::{self, ErrorReply, Guests, PasswordReply, Report, VmReply};
use nubis_driver::{Driver, DriverError};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The control plane's URL (any API node, or the balancer in front of them).
    #[arg(long, env = "NUBIS_CONTROL_URL")]
    pub control: String,
    /// This host's ID, as registered (`POST /admin/v1/hosts`).
    #[arg(long = "host-id", env = "NUBIS_HOST_ID")]
    pub host_id: String,
    /// This host's credential, from its registration. Prefer the environment variable.
    #[arg(
        long = "host-secret",
        env = "NUBIS_HOST_SECRET",
        hide_env_values = true
    )]
    pub host_secret: String,
    /// Address to listen on for the control plane's calls.
    #[arg(long, env = "NUBIS_AGENT_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// The URL the control plane reaches this agent at; default http://<listen address>.
    #[arg(long, env = "NUBIS_AGENT_ADVERTISE")]
    pub advertise: Option<String>,
    /// Hypervisor driver: sim or qemu (the qemu settings are `nubis serve`'s NUBIS_QEMU_*).
    #[arg(long, env = "NUBIS_DRIVER", default_value = "sim")]
    pub driver: String,
    /// Data directory (qemu disks and state).
    #[arg(long, env = "NUBIS_DATA", default_value = "nubis-agent-data")]
    pub data: std::path::PathBuf,
    /// vCPUs offered; default: the sim's 64, the machine's CPUs for qemu.
    #[arg(long, env = "NUBIS_AGENT_VCPUS")]
    pub vcpus: Option<u32>,
    /// Memory offered in MiB; default: the sim's 256 GiB, the machine's memory for qemu.
    #[arg(long = "memory-mib", env = "NUBIS_AGENT_MEMORY_MIB")]
    pub memory_mib: Option<u64>,
    /// Disk offered in GiB; default 10240.
    #[arg(long = "disk-gib", env = "NUBIS_AGENT_DISK_GIB")]
    pub disk_gib: Option<u64>,
}

/// Nonces seen within the window, at most this many (older ones are dropped first).
const MAX_NONCES: usize = 100_000;

struct Agent {
    host: String,
    secret: String,
    driver: Arc<dyn Driver>,
    /// Nonce → when its request was signed (ms).
    nonces: Mutex<HashMap<String, i64>>,
    /// One gate per VM: its steps never overlap (a step repeated by another node after a
    /// takeover waits for the first to end, then finds its turn done).
    gates: Mutex<HashMap<uuid::Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Agent {
    /// The control plane's signature over this call, and its nonce not seen before.
    fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), AgentAuthError> {
        let sig = agent::parse(header_of(headers))?;
        if sig.host != self.host {
            return Err(AgentAuthError::BadSignature);
        }
        let now = now_ms();
        sig.verify(&self.secret, method.as_str(), uri.path(), body, now)?;
        let mut nonces = self.nonces.lock();
        if nonces.len() >= MAX_NONCES {
            nonces.retain(|_, t| now.saturating_sub(*t) <= 2 * agent::WINDOW_MS);
        }
        if nonces.len() >= MAX_NONCES || nonces.insert(sig.nonce.to_string(), sig.date_ms).is_some()
        {
            return Err(AgentAuthError::Replayed);
        }
        Ok(())
    }
}

type Shared = Arc<Agent>;

/// Check the call, parse its body, run `f`, answer its result as JSON (a driver's error as
/// 409 with the error, so the control plane gets it back as it was).
async fn handle<T, R, F>(
    a: &Agent,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    f: F,
) -> Response
where
    T: DeserializeOwned,
    R: Serialize,
    F: AsyncFnOnce(T) -> Result<R, DriverError>,
{
    if let Err(e) = a.check(&method, &uri, &headers, &body) {
        tracing::info!(path = %uri.path(), error = %e, "control-plane call refused");
        return refusal(StatusCode::UNAUTHORIZED, e);
    }
    let call: T = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => return refusal(StatusCode::BAD_REQUEST, e),
    };
    match f(call).await {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => {
            let body = ErrorReply {
                message: e.to_string(),
                error: Some(e),
            };
            (StatusCode::CONFLICT, axum::Json(body)).into_response()
        }
    }
}

impl Agent {
    /// Run a step in a task of its own, under the VM's gate: a control plane that hangs up
    /// (its node died) does not cut the step in half; it ends and marks its turn.
    async fn step(
        self: &Arc<Self>,
        c: wire::StepCall,
        stage: bool,
    ) -> Result<VmReply, DriverError> {
        let gate = self.gates.lock().entry(c.vm.uuid).or_default().clone();
        let d = self.driver.clone();
        let task = tokio::spawn(async move {
            let _turn = gate.lock().await;
            match (stage, c.turn) {
                (true, _) => d.stage(&c.vm, &c.step).await?,
                (false, Some(t)) => d.execute_turn(&c.vm, &c.step, t).await?,
                (false, None) => d.execute(&c.vm, &c.step).await?,
            }
            Ok(VmReply::of(d.as_ref(), c.vm.uuid))
        });
        task.await
            .map_err(|e| DriverError::Failed(format!("step task: {e}")))?
    }
}

async fn execute(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let agent = a.clone();
    handle(&a, m, u, h, b, async |c: wire::StepCall| {
        agent.step(c, false).await
    })
    .await
}

async fn stage(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let agent = a.clone();
    handle(&a, m, u, h, b, async |c: wire::StepCall| {
        agent.step(c, true).await
    })
    .await
}

async fn vm(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let d = a.driver.clone();
    handle(&a, m, u, h, b, async |c: wire::VmCall| {
        Ok(VmReply::of(d.as_ref(), c.vm))
    })
    .await
}

async fn password(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let d = a.driver.clone();
    handle(&a, m, u, h, b, async |c: wire::PasswordCall| {
        Ok(PasswordReply {
            ok: d.verify_password(c.vm, &c.user, &c.password).await,
        })
    })
    .await
}

async fn soft_stop(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let d = a.driver.clone();
    handle(&a, m, u, h, b, async |c: wire::SoftStopCall| {
        d.set_soft_stop_fails(c.vm, c.fails)?;
        Ok(VmReply::of(d.as_ref(), c.vm))
    })
    .await
}

async fn restore(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let d = a.driver.clone();
    handle(&a, m, u, h, b, async |c: wire::RestoreCall| {
        d.restore(c.vm, c.data)?;
        Ok(VmReply::of(d.as_ref(), c.vm))
    })
    .await
}

async fn reconcile(State(a): State<Shared>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    let d = a.driver.clone();
    handle(&a, m, u, h, b, async |c: wire::ReconcileCall| {
        d.reconcile(&c.known);
        Ok(serde_json::json!({}))
    })
    .await
}

fn agent_routes(a: Shared) -> Router {
    Router::new()
        .route(wire::EXECUTE, post(execute))
        .route(wire::STAGE, post(stage))
        .route(wire::VM, post(vm))
        .route(wire::PASSWORD, post(password))
        .route(wire::SOFT_STOP, post(soft_stop))
        .route(wire::RESTORE, post(restore))
        .route(wire::RECONCILE, post(reconcile))
        .layer(DefaultBodyLimit::max(wire::MAX_BODY))
        .with_state(a)
}

/// The machine's CPUs and memory (MiB), for a qemu host's default capacity.
fn machine_capacity() -> (u32, u64) {
    let cpus =
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1));
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(1024 * 1024);
    (cpus, mem_kib / 1024)
}

/// One signed call to the control plane, as JSON.
async fn to_control<T: Serialize, R: DeserializeOwned>(
    args: &AgentArgs,
    path: &str,
    body: &T,
) -> Result<R> {
    let body = serde_json::to_vec(body)?;
    match signed_post(
        &args.control,
        &args.host_id,
        &args.host_secret,
        path,
        body,
        Duration::from_secs(15),
    )
    .await
    {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)?),
        Err(CallError::Unreachable(why)) => bail!("control plane unreachable: {why}"),
        Err(CallError::Status(status, bytes)) => {
            bail!(
                "control plane answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            )
        }
    }
}

pub async fn run(args: AgentArgs, driver: Arc<dyn Driver>) -> Result<()> {
    if nubis_driver::remote::authority(&args.control).is_none() {
        bail!("--control {}: expected http://host:port", args.control);
    }
    if !nubis_core::hosts::valid_host_id(&args.host_id) {
        bail!("--host-id {}: 1 to 63 of a-z, 0-9 and -", args.host_id);
    }
    let (cpus, mem) = machine_capacity();
    let qemu = args.driver == "qemu";
    let capacity = nubis_core::hosts::Capacity {
        vcpus: args.vcpus.unwrap_or(if qemu { cpus } else { 64 }),
        memory_mib: args
            .memory_mib
            .unwrap_or(if qemu { mem } else { 256 * 1024 }),
        disk_gib: args.disk_gib.unwrap_or(10_240),
    };
    // The VMs placed here, restored before anything is served: a step never reaches a VM
    // this process does not know yet.
    let placed: Guests = loop {
        match to_control(&args, wire::GUESTS, &serde_json::json!({})).await {
            Ok(g) => break g,
            Err(e) => {
                tracing::warn!(error = %e, "fetching this host's guests; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    for (id, data) in placed.guests {
        if let Err(e) = driver.restore(id, data) {
            tracing::warn!(instance = %id, error = %e, "could not restore VM state");
        }
    }
    driver.reconcile(&placed.known);
    tracing::info!(guests = placed.known.len(), "restored this host's guests");
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let address = args
        .advertise
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    if nubis_driver::remote::authority(&address).is_none() {
        bail!("--advertise {address}: expected http://host:port");
    }
    let agent = Arc::new(Agent {
        host: args.host_id.clone(),
        secret: args.host_secret.clone(),
        driver: driver.clone(),
        nonces: Mutex::new(HashMap::new()),
        gates: Mutex::new(HashMap::new()),
    });
    let report = Report {
        address: address.clone(),
        driver: args.driver.clone(),
        capacity,
    };
    println!(
        "nubis agent {} listening on http://{addr} (advertised {address}, driver {}, {} vCPUs, {} MiB, {} GiB), control plane {}",
        args.host_id,
        args.driver,
        capacity.vcpus,
        capacity.memory_mib,
        capacity.disk_gib,
        args.control
    );
    let reporter = tokio::spawn(async move {
        let mut every = nubis_engine::REPORT_EVERY;
        loop {
            match to_control::<_, serde_json::Value>(&args, wire::REPORT, &report).await {
                Ok(v) => {
                    if let Some(ms) = v.get("report_every_ms").and_then(serde_json::Value::as_u64) {
                        every = Duration::from_millis(ms.clamp(200, 60_000));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reporting to the control plane failed"),
            }
            tokio::time::sleep(every).await;
        }
    });
    let served = crate::listener::serve(
        listener,
        agent_routes(agent),
        crate::limits::Limits::default(),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    )
    .await;
    reporter.abort();
    served?;
    Ok(())
}
