//! QEMU Machine Protocol: one short-lived connection per use (the monitor socket serves one
//! client at a time), events kept while waiting for a command's answer.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    events: Vec<String>,
}

const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn err(what: impl std::fmt::Display) -> String {
    format!("qmp: {what}")
}

impl Qmp {
    /// Connect, retrying while QEMU is still creating the socket.
    pub async fn connect(path: &Path, wait: Duration) -> Result<Self, String> {
        let deadline = tokio::time::Instant::now() + wait;
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(err(format!("{}: {e}", path.display())));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let (r, writer) = stream.into_split();
        let mut qmp = Self {
            reader: BufReader::new(r),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(err(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        let n = tokio::time::timeout(IO_TIMEOUT, self.reader.read_line(&mut line))
            .await
            .map_err(|_| err("no answer"))?
            .map_err(err)?;
        if n == 0 {
            return Err(err("monitor closed"));
        }
        serde_json::from_str(&line).map_err(err)
    }

    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, String> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = args {
            msg["arguments"] = a;
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await.map_err(err)?;
        loop {
            let m = self.read_message().await?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                return Err(err(format!("{command}: {e}")));
            }
            if let Some(ev) = m.get("event").and_then(Value::as_str) {
                self.events.push(ev.to_string());
            }
        }
    }

    /// Wait for an event (one seen since connecting counts). False on timeout or close.
    pub async fn wait_event(&mut self, name: &str, timeout: Duration) -> bool {
        if let Some(i) = self.events.iter().position(|e| e == name) {
            self.events.remove(i);
            return true;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut line = String::new();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.reader.read_line(&mut line)).await {
                Ok(Ok(n)) if n > 0 => {
                    if serde_json::from_str::<Value>(&line)
                        .ok()
                        .and_then(|m| m.get("event").and_then(Value::as_str).map(str::to_string))
                        .is_some_and(|e| e == name)
                    {
                        return true;
                    }
                }
                _ => return false,
            }
        }
    }
}
