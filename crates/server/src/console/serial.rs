//! The serial console of a qemu guest: a terminal in the page (xterm.js) over a websocket to
//! the guest's serial port.
//!
//! QEMU's serial socket takes one client. This node keeps one connection per guest (a hub)
//! while anyone watches, and fans its output out to every viewer; what viewers type goes in
//! only from sessions whose permissions allow changes (the others watch read-only). The hub
//! ends when the last viewer leaves or the guest's QEMU closes the port (a reboot of the
//! process, a stop).

use axum::body::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, watch};
use uuid::Uuid;

/// Output chunks a slow viewer may lag behind before it misses some.
const BACKLOG: usize = 256;
/// Most bytes one websocket message may type into the guest (a paste, not a file).
pub const MAX_INPUT: usize = 4096;

/// One guest's serial connection, shared by its viewers.
pub struct Hub {
    pub output: broadcast::Sender<Bytes>,
    pub input: mpsc::Sender<Bytes>,
    /// Becomes true (or its sender goes) when the guest's port closed.
    pub ended: watch::Receiver<bool>,
}

fn hubs() -> &'static Mutex<HashMap<Uuid, Weak<Hub>>> {
    static H: std::sync::OnceLock<Mutex<HashMap<Uuid, Weak<Hub>>>> = std::sync::OnceLock::new();
    H.get_or_init(Default::default)
}

/// The guest's hub, connecting to its serial socket if no viewer on this node has yet.
pub async fn attach(vm: Uuid, socket: PathBuf) -> std::io::Result<Arc<Hub>> {
    if let Some(h) = hubs().lock().get(&vm).and_then(Weak::upgrade) {
        return Ok(h);
    }
    let stream = tokio::net::UnixStream::connect(&socket).await?;
    let (mut rd, mut wr) = stream.into_split();
    let (output, _) = broadcast::channel(BACKLOG);
    let (input, mut typed) = mpsc::channel::<Bytes>(64);
    let (end, ended) = watch::channel(false);
    let hub = Arc::new(Hub {
        output: output.clone(),
        input,
        ended,
    });
    {
        let mut map = hubs().lock();
        // Another viewer attached meanwhile: use its hub (this connection is dropped).
        if let Some(h) = map.get(&vm).and_then(Weak::upgrade) {
            return Ok(h);
        }
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(vm, Arc::downgrade(&hub));
    }
    let weak = Arc::downgrade(&hub);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                n = rd.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    // Nobody listening right now is fine: the guest's output is logged anyway.
                    Ok(n) => { let _ = output.send(Bytes::copy_from_slice(&buf[..n])); }
                },
                keys = typed.recv() => match keys {
                    Some(k) => if wr.write_all(&k).await.is_err() { break },
                    // Every viewer left (the hub was dropped).
                    None => break,
                },
            }
            if weak.strong_count() == 0 {
                break;
            }
        }
        // A guest whose port closed: its hub is gone for new viewers at once.
        if let Some(h) = weak.upgrade() {
            hubs()
                .lock()
                .retain(|_, w| !std::ptr::eq(w.as_ptr(), Arc::as_ptr(&h)));
        }
        let _ = end.send(true);
        hubs().lock().retain(|_, w| w.strong_count() > 0);
    });
    Ok(hub)
}

/// Relays between one viewer's websocket and the guest's hub until either side ends or the
/// session expires. Input counts only from a `writable` session.
pub async fn pump(
    mut socket: axum::extract::ws::WebSocket,
    hub: Arc<Hub>,
    writable: bool,
    expires_in: std::time::Duration,
) {
    use axum::extract::ws::Message;
    let mut out = hub.output.subscribe();
    let mut ended = hub.ended.clone();
    let expiry = tokio::time::sleep(expires_in);
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            chunk = out.recv() => match chunk {
                Ok(b) => if socket.send(Message::Binary(b)).await.is_err() { break },
                // A viewer too slow for the guest misses some output, as on a real line.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            msg = socket.recv() => {
                let keys = match msg {
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => Bytes::copy_from_slice(t.as_str().as_bytes()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    _ => break,
                };
                if writable && keys.len() <= MAX_INPUT && hub.input.send(keys).await.is_err() {
                    break;
                }
            }
            _ = ended.changed() => break,
            _ = &mut expiry => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
