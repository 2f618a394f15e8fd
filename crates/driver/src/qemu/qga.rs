//! qemu-guest-agent over its virtio-serial socket. The channel is single-client and buffers
//! bytes while the guest side is closed, so every call starts with `guest-sync-delimited` and a
//! fresh id and ignores whatever arrives before the matching answer.

use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

fn err(what: impl std::fmt::Display) -> String {
    format!("guest agent: {what}")
}

async fn sync(stream: &mut BufReader<UnixStream>) -> Result<(), String> {
    let id: u32 = rand::random::<u32>() & 0x7fff_ffff;
    let mut msg = vec![0xff];
    msg.extend(
        json!({"execute": "guest-sync-delimited", "arguments": {"id": id}})
            .to_string()
            .bytes(),
    );
    msg.push(b'\n');
    stream.get_mut().write_all(&msg).await.map_err(err)?;
    let mut junk = Vec::new();
    stream.read_until(0xff, &mut junk).await.map_err(err)?;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.map_err(err)? == 0 {
            return Err(err("channel closed"));
        }
        let v: Value = match serde_json::from_str(line.trim_start_matches('\u{ff}')) {
            Ok(v) => v,
            Err(_) => continue,
        };
        if v.get("return").and_then(Value::as_u64) == Some(u64::from(id)) {
            return Ok(());
        }
    }
}

/// Run one agent command. Without `expect_answer` (guest-shutdown answers nothing when it
/// works) only an error arriving within a second fails the call.
pub async fn call(
    path: &Path,
    command: &str,
    args: Value,
    expect_answer: bool,
    timeout: Duration,
) -> Result<Value, String> {
    let attempt = async {
        let stream = UnixStream::connect(path).await.map_err(err)?;
        let mut stream = BufReader::new(stream);
        // The agent may still be starting: a sync answered proves it reads the channel.
        sync(&mut stream).await?;
        let mut msg = json!({"execute": command, "arguments": args}).to_string();
        msg.push('\n');
        stream
            .get_mut()
            .write_all(msg.as_bytes())
            .await
            .map_err(err)?;
        let mut line = String::new();
        if !expect_answer {
            return match tokio::time::timeout(Duration::from_secs(1), stream.read_line(&mut line))
                .await
            {
                Ok(Ok(n)) if n > 0 && line.contains("\"error\"") => {
                    Err(err(format!("{command}: {}", line.trim())))
                }
                _ => Ok(Value::Null),
            };
        }
        if stream.read_line(&mut line).await.map_err(err)? == 0 {
            return Err(err("channel closed"));
        }
        let v: Value = serde_json::from_str(&line).map_err(err)?;
        if let Some(e) = v.get("error") {
            return Err(err(format!("{command}: {e}")));
        }
        Ok(v.get("return").cloned().unwrap_or(Value::Null))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| err(format!("{command}: no answer in {} s", timeout.as_secs())))?
}
