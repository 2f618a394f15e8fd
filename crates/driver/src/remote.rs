//! A host agent's VMs, driven over HTTP (docs/agents.md): every call is a signed POST
//! (`nubis_auth::agent`) to the agent's address; its [`VmReply`] refreshes this side's copy of
//! what the sync reads of the [`Driver`] trait return. An agent that does not answer is
//! [`DriverError::Unreachable`]: the engine's runner waits for it.

use crate::wire::{self, ErrorReply, PasswordReply, VmReply};
use crate::{ConsoleLog, Driver, DriverError, Facts, Turn, VmSpec};
use async_trait::async_trait;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use nubis_core::Step;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// How long connecting may take.
const CONNECT: Duration = Duration::from_secs(3);
/// How long a call other than a step may take.
const SHORT: Duration = Duration::from_secs(15);
/// How long one step may take on the agent (a QEMU boot under TCG takes minutes).
const STEP: Duration = Duration::from_secs(900);

/// Why a signed POST got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No connection, no answer in time, or a broken answer: try again later.
    Unreachable(String),
    /// The peer answered with this status and body.
    Status(u16, Bytes),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `http://host:port[/]` → `host:port`; anything else is refused (agents speak plain HTTP on
/// a private network, docs/agents.md).
pub fn authority(address: &str) -> Option<&str> {
    let rest = address.strip_prefix("http://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// POST `body` to `address` + `path`, signed as `host` with `secret`; the body of a 200.
pub async fn post(
    address: &str,
    host: &str,
    secret: &str,
    path: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Bytes, CallError> {
    let unreachable = |what: String| CallError::Unreachable(format!("{address}: {what}"));
    let authority =
        authority(address).ok_or_else(|| unreachable("not an http:// address".into()))?;
    let stream = tokio::time::timeout(CONNECT, tokio::net::TcpStream::connect(authority))
        .await
        .map_err(|_| unreachable("connect timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
    let conn = tokio::spawn(conn);
    let mut req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    for (name, value) in nubis_auth::agent::sign(secret, host, "POST", path, &body, now_ms()) {
        req = req.header(name, value);
    }
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = Limited::new(resp.into_body(), wire::MAX_BODY)
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok::<_, CallError>((status, bytes))
    };
    let result = tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| unreachable("no answer in time".into()));
    conn.abort();
    match result?? {
        (200, bytes) => Ok(bytes),
        (status, bytes) => Err(CallError::Status(status, bytes)),
    }
}

/// What this side knows of one VM: the agent's last [`VmReply`].
type Cache = HashMap<Uuid, VmReply>;

/// One agent's VMs.
pub struct RemoteDriver {
    host: String,
    /// (address, secret): updated when the agent reports a new address.
    target: RwLock<(String, String)>,
    cache: Mutex<Cache>,
}

impl RemoteDriver {
    pub fn new(host: &str, address: &str, secret: &str) -> Self {
        Self {
            host: host.to_string(),
            target: RwLock::new((address.to_string(), secret.to_string())),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Point at a new address or secret.
    pub fn retarget(&self, address: &str, secret: &str) {
        let mut t = self.target.write();
        if t.0 != address || t.1 != secret {
            *t = (address.to_string(), secret.to_string());
        }
    }

    async fn call<T: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &T,
        timeout: Duration,
    ) -> Result<R, DriverError> {
        let body = serde_json::to_vec(body).map_err(|e| DriverError::Failed(e.to_string()))?;
        let (address, secret) = self.target.read().clone();
        match post(&address, &self.host, &secret, path, body, timeout).await {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| DriverError::Failed(format!("agent {}: {e}", self.host))),
            Err(CallError::Unreachable(why)) => {
                tracing::debug!(host = %self.host, %why, "agent unreachable");
                Err(DriverError::Unreachable(self.host.clone()))
            }
            Err(CallError::Status(status, bytes)) => {
                match serde_json::from_slice::<ErrorReply>(&bytes) {
                    Ok(ErrorReply { error: Some(e), .. }) => Err(e),
                    Ok(ErrorReply { message, .. }) => Err(DriverError::Failed(format!(
                        "agent {} refused the call ({status}): {message}",
                        self.host
                    ))),
                    Err(_) => Err(DriverError::Failed(format!(
                        "agent {} answered {status}",
                        self.host
                    ))),
                }
            }
        }
    }

    async fn vm_call<T: Serialize>(
        &self,
        vm: Uuid,
        path: &str,
        body: &T,
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let reply: VmReply = self.call(path, body, timeout).await?;
        self.cache.lock().insert(vm, reply);
        Ok(())
    }

    fn cached<R>(&self, vm: Uuid, f: impl FnOnce(&VmReply) -> Option<R>) -> Option<R> {
        self.cache.lock().get(&vm).and_then(f)
    }

    /// Ask the agent to forget VMs it keeps that are not in `known` (after it restarted).
    pub async fn reconcile_remote(&self, known: Vec<Uuid>) -> Result<(), DriverError> {
        let _: serde_json::Value = self
            .call(wire::RECONCILE, &wire::ReconcileCall { known }, SHORT)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl Driver for RemoteDriver {
    async fn execute(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError> {
        let call = wire::StepCall {
            vm: vm.clone(),
            step: step.clone(),
            turn: None,
        };
        self.vm_call(vm.uuid, wire::EXECUTE, &call, STEP).await
    }

    /// The agent runs the turn with its own driver's skip-and-mark.
    async fn execute_turn(&self, vm: &VmSpec, step: &Step, turn: Turn) -> Result<(), DriverError> {
        let call = wire::StepCall {
            vm: vm.clone(),
            step: step.clone(),
            turn: Some(turn),
        };
        self.vm_call(vm.uuid, wire::EXECUTE, &call, STEP).await
    }

    async fn stage(&self, vm: &VmSpec, step: &Step) -> Result<(), DriverError> {
        let call = wire::StepCall {
            vm: vm.clone(),
            step: step.clone(),
            turn: None,
        };
        self.vm_call(vm.uuid, wire::STAGE, &call, STEP).await
    }

    fn facts(&self, vm: Uuid) -> Option<Facts> {
        self.cached(vm, |r| r.facts)
    }

    fn snapshot(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.cached(vm, |r| r.snapshot.clone())
    }

    /// The store's copy: kept here (what `snapshot` answers until the agent is asked again);
    /// the agent restores its own VMs from the control plane when it starts.
    fn restore(&self, vm: Uuid, data: serde_json::Value) -> Result<(), DriverError> {
        self.cache.lock().entry(vm).or_default().snapshot = Some(data);
        Ok(())
    }

    /// Any node reaches the agent: its VMs are no node's own.
    fn portable(&self) -> bool {
        true
    }

    fn inspect(&self, vm: Uuid) -> Option<serde_json::Value> {
        self.cached(vm, |r| r.inspect.clone())
    }

    fn check_password(&self, _vm: Uuid, _user: &str, _password: &str) -> Option<bool> {
        None
    }

    async fn verify_password(&self, vm: Uuid, user: &str, password: &str) -> Option<bool> {
        let call = wire::PasswordCall {
            vm,
            user: user.to_string(),
            password: password.to_string(),
        };
        self.call::<_, PasswordReply>(wire::PASSWORD, &call, SHORT)
            .await
            .ok()
            .and_then(|r| r.ok)
    }

    async fn refresh(&self, vm: Uuid) {
        if let Err(e) = self
            .vm_call(vm, wire::VM, &wire::VmCall { vm }, SHORT)
            .await
        {
            tracing::debug!(host = %self.host, error = %e, "refreshing a remote VM");
        }
    }

    fn set_soft_stop_fails(&self, vm: Uuid, fails: bool) -> Result<(), DriverError> {
        // The trait's switch is sync: sent in the background, like an operator's click.
        let call = wire::SoftStopCall { vm, fails };
        let (address, secret) = self.target.read().clone();
        let host = self.host.clone();
        let body = serde_json::to_vec(&call).map_err(|e| DriverError::Failed(e.to_string()))?;
        tokio::spawn(async move {
            if let Err(e) = post(&address, &host, &secret, wire::SOFT_STOP, body, SHORT).await {
                tracing::warn!(%host, error = ?e, "setting a soft-stop fault on a remote VM");
            }
        });
        Ok(())
    }

    fn ssh_endpoint(&self, vm: Uuid) -> Option<std::net::SocketAddr> {
        self.cached(vm, |r| r.ssh)
    }

    fn console_output(&self, vm: Uuid) -> Option<ConsoleLog> {
        self.cached(vm, |r| r.console.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn only_plain_http_host_ports_are_addresses() {
        assert_eq!(authority("http://127.0.0.1:7001"), Some("127.0.0.1:7001"));
        assert_eq!(authority("http://h:1/"), Some("h:1"));
        for bad in ["https://h:1", "h:1", "http://", "http://h:1/x", "ftp://h"] {
            assert_eq!(authority(bad), None, "{bad}");
        }
    }
}
