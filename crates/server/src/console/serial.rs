//! The serial console of a qemu guest: a terminal in the page (xterm.js) over a websocket to
//! the guest's serial port.
//!
//! QEMU's serial socket takes one client. This node keeps one connection per guest (a hub)
//! while anyone watches, and fans its output out to every viewer; what viewers type goes in
//! only from sessions whose permissions allow changes (the others watch read-only). The hub
//! ends when the last viewer leaves or the guest's QEMU closes the port (a reboot of the
//! process, a stop).

use super::*;
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

// ---- the page and its websocket

/// The page's own Content-Security-Policy: the terminal component writes its theme into a
/// `<style>` element it creates, so this page alone allows inline styles (scripts stay
/// `'self'` only).
pub(super) const SERIAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(super) async fn serial_page(
    State(s): State<AppState>,
    Page(who): Page,
    Path(id): Path<String>,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let log = s
        .engine
        .console_output(&who.principal, inst.uuid)
        .map(|l| l.text)
        .unwrap_or_default();
    let available = s.engine.driver().serial_socket(inst.uuid).is_some();
    let mut resp = html(pages::serial(&who, &inst, &log, available));
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SERIAL_CSP),
    );
    resp
}

pub(super) async fn serial_ws(
    State(s): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
    ws: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> Response {
    let who = match who(&s, &headers, false).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    // A websocket is not a form: SameSite does not stop a cross-site page from opening one
    // with the cookie in every browser, so its Origin must be this site (and be there).
    if !headers.contains_key(header::ORIGIN) || !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site websocket refused\n").into_response();
    }
    let Ok(ws) = ws else {
        return (StatusCode::BAD_REQUEST, "a websocket upgrade is expected\n").into_response();
    };
    let Some(inst) = instance_of(&s, &who, &id) else {
        return (StatusCode::NOT_FOUND, "no such instance\n").into_response();
    };
    let Some(socket) = s.engine.driver().serial_socket(inst.uuid) else {
        return (
            StatusCode::CONFLICT,
            "this instance has no serial port now\n",
        )
            .into_response();
    };
    let hub = match serial::attach(inst.uuid, socket).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(instance = %inst.uuid, error = %e, "serial console: cannot attach");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the serial port cannot be reached\n",
            )
                .into_response();
        }
    };
    let writable = who.can_act;
    record_serial(&s, &who, peer, &headers, &inst, writable).await;
    let expires_in = std::time::Duration::from_millis(
        u64::try_from(who.session.expires_ms - now_ms()).unwrap_or(0),
    );
    ws.max_message_size(serial::MAX_INPUT * 2)
        .on_upgrade(move |socket| serial::pump(socket, hub, writable, expires_in))
        .into_response()
}

/// The audit event of a serial console connection: who attached to which guest, and whether
/// they could type (the console's one request path that is not an API call).
pub(super) async fn record_serial(
    s: &AppState,
    who: &Who,
    peer: Option<std::net::IpAddr>,
    headers: &HeaderMap,
    inst: &Instance,
    writable: bool,
) {
    use nubis_core::audit::{AuditEvent, MAX_FIELD, cut};
    let p = &who.principal;
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let event = AuditEvent {
        id: AuditEvent::new_id(),
        time_ms: now_ms(),
        account: p.account.clone(),
        user: p.user.clone(),
        sub_user: p.sub_user,
        is_admin: p.is_admin,
        role: None,
        credential: p.credential.clone(),
        cloud: "console".into(),
        service: "console".into(),
        version: "1".into(),
        action: if writable {
            "ConnectSerialConsole"
        } else {
            "WatchSerialConsole"
        }
        .into(),
        read_only: Some(!writable),
        region: Some(inst.region.clone()),
        resources: vec![
            inst.tencent_id.clone(),
            inst.aliyun_id.clone(),
            inst.uuid.to_string(),
        ],
        source_ip: peer.map(|p| p.to_string()).unwrap_or_default(),
        user_agent: cut(&user_agent, MAX_FIELD),
        request_id: nubis_core::ids::new_request_id(),
        error_code: None,
        error_message: None,
        status: 101,
        parameters: String::new(),
    };
    nubis_pipeline::Auditor::record(&crate::audit::EngineAuditor(s.engine.clone()), event).await;
}
