//! The accept loop and each connection's clock: hyper's HTTP/1.1 server under a cap on open
//! connections, with a header timeout (from the connection's start, or from the first byte of
//! a later request), an idle keep-alive timeout, and accept errors that back off instead of
//! spinning. The body timeout and the in-flight cap are the guard's (guard.rs).

use crate::limits::Limits;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long the accept loop sleeps after an error that is not about one connection
/// (EMFILE, ENFILE, ENOBUFS, ENOMEM: the process or the machine is out of something).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long a graceful stop waits for open connections before the process exits anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish
/// (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    loop {
        // At the cap, stop accepting: new clients wait in the kernel's queue, nothing spins.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.map_err(io::Error::other)?,
            _ = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                metrics::counter!("nubis_accept_errors_total").increment(1);
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, backoff_ms = ACCEPT_BACKOFF.as_millis() as u64, "accept failed; backing off");
                    last_warning = Some(Instant::now());
                }
                drop(permit);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, stop) = (app.clone(), stop_rx.clone());
        tokio::spawn(async move {
            metrics::gauge!("nubis_connections_open").increment(1.0);
            connection(stream, peer, app, limits, stop).await;
            metrics::gauge!("nubis_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    let _ = stop_tx.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all)).await;
    Ok(())
}

/// Errors about the one connection being accepted (the client gave up): accept the next.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head: the header timeout runs.
    Head,
    /// A request is being handled: the guard's body timeout applies, nothing here.
    Busy,
    /// Between requests: the idle timeout runs.
    Idle,
}

/// One connection's phase and the deadline of that phase.
struct Clock {
    state: Mutex<(Phase, Option<Instant>, usize)>,
    changed: Notify,
    limits: Limits,
}

impl Clock {
    fn new(limits: Limits) -> Self {
        Self {
            state: Mutex::new((Phase::Head, Some(Instant::now() + limits.header_timeout), 0)),
            changed: Notify::new(),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Option<Instant>, usize)> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived: an idle connection starts a request head.
    fn on_bytes(&self) {
        let mut s = self.lock();
        if s.0 == Phase::Idle {
            *s = (
                Phase::Head,
                Some(Instant::now() + self.limits.header_timeout),
                s.2,
            );
            drop(s);
            self.changed.notify_one();
        }
    }

    /// A whole head was read: the request is handed to the router.
    fn begin(&self) {
        let mut s = self.lock();
        *s = (Phase::Busy, None, s.2 + 1);
        drop(s);
        self.changed.notify_one();
    }

    /// A response was produced (or the request was dropped).
    fn end(&self) {
        let mut s = self.lock();
        s.2 = s.2.saturating_sub(1);
        if s.2 == 0 {
            *s = (
                Phase::Idle,
                Some(Instant::now() + self.limits.idle_timeout),
                0,
            );
            drop(s);
            self.changed.notify_one();
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.lock().1
    }

    /// The phase whose deadline has passed, if any.
    fn expired(&self, now: Instant) -> Option<Phase> {
        let s = self.lock();
        s.1.filter(|d| *d <= now).map(|_| s.0)
    }
}

/// Ends the request on the clock even when hyper drops the request future.
struct Busy(Arc<Clock>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end();
    }
}

async fn connection(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let clock = Arc::new(Clock::new(limits));
    let io = TokioIo::new(Timed {
        inner: stream,
        clock: clock.clone(),
    });
    let svc_clock = clock.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let app = app.clone();
        // The client's address for per-source login throttling (`peer::Peer`).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        svc_clock.begin();
        let busy = Busy(svc_clock.clone());
        async move {
            let resp = app.oneshot(req.map(Body::new)).await;
            drop(busy);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true).header_read_timeout(None);
    // Upgrades: the web console's serial terminal is a websocket.
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    // After a graceful stop was asked for: when to give up on the connection.
    let mut hard_stop: Option<Instant> = None;
    loop {
        let deadline = match (clock.deadline(), hard_stop) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let changed = clock.changed.notified();
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = changed => {}
            _ = stop.changed(), if hard_stop.is_none() => {
                conn.as_mut().graceful_shutdown();
                hard_stop = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            _ = sleep_until(deadline) => {
                let now = Instant::now();
                if hard_stop.is_some_and(|t| t <= now) {
                    return;
                }
                match clock.expired(now) {
                    Some(Phase::Head) => {
                        // Half a head is worth nothing: drop the connection.
                        metrics::counter!("nubis_connections_timed_out_total", "phase" => "header").increment(1);
                        return;
                    }
                    Some(Phase::Idle) if hard_stop.is_none() => {
                        metrics::counter!("nubis_connections_timed_out_total", "phase" => "idle").increment(1);
                        conn.as_mut().graceful_shutdown();
                        // A response still being written to a client that does not read gets
                        // one more header timeout.
                        hard_stop = Some(now + limits.header_timeout);
                    }
                    _ => {}
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// The socket, telling the clock when bytes arrive.
struct Timed {
    inner: TcpStream,
    clock: Arc<Clock>,
}

impl AsyncRead for Timed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.on_bytes();
        }
        r
    }
}

impl AsyncWrite for Timed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
