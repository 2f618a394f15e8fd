//! The listener against hostile clients: a real `nubis serve` on 127.0.0.1:0 with short
//! configured limits, driven over raw sockets (half-sent heads, idle keep-alive, floods).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nubis serve` with `env`, after the shell commands `setup` (`umask 000`,
/// `ulimit -n 256`…) if given, on `data` (a fresh temp dir if `None`), and waits for its
/// banner.
fn start(env: &[(&str, &str)], setup: Option<&str>, data: Option<&Path>) -> Server {
    let tmp = match data {
        Some(_) => None,
        None => Some(tempfile::tempdir().expect("temp dir")),
    };
    let data = data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| tmp.as_ref().expect("temp dir").path().join("data"));
    let bin = env!("CARGO_BIN_EXE_nubis");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{}; exec \"$0\" \"$@\"", setup.unwrap_or("true")))
        .arg(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("NUBIS_SIM_TIME_SCALE", "0")
        .env("NUBIS_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("nubis starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep draining: a full pipe would block the server's logging.
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("nubis listening on http://")
                && let Some(t) = tx.take()
            {
                let _ = t.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server prints its address");
    Server {
        child,
        addr,
        data,
        _tmp: tmp,
    }
}

struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "not JSON (HTTP {}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    /// A Tencent error reply's code.
    fn tencent_code(&self) -> serde_json::Value {
        self.json()["Response"]["Error"]["Code"].clone()
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads one response (Content-Length framed, or to EOF).
fn read_reply(s: &mut TcpStream) -> Reply {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).expect("a response");
        assert!(n > 0, "connection closed before a response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[head_end..].to_vec();
    match headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(len) => {
            while body.len() < len {
                let n = s.read(&mut chunk).expect("the body");
                assert!(n > 0, "connection closed inside the body");
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            let _ = s.read_to_end(&mut body);
        }
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn connect(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// One request on a new connection.
fn send(addr: &str, raw: &[u8]) -> Reply {
    let mut s = connect(addr);
    s.write_all(raw).expect("write");
    read_reply(&mut s)
}

fn get(addr: &str, path: &str) -> Reply {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A TC3-style DescribeInstances with `body`.
fn tc3_describe(addr: &str, body: &[u8]) -> Reply {
    post(
        addr,
        "/",
        &[("X-TC-Action", "DescribeInstances"), TC3_JSON],
        body,
    )
}

fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    send(addr, &raw)
}

/// Waits (at most `within`) for the server to close `s`; true if it did.
fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut b = [0u8; 1024];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

fn metric(addr: &str, line_start: &str) -> f64 {
    get(addr, "/metrics")
        .text()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `nubis_connections_timed_out_total` of one phase (`header`, `idle`, `body`).
fn timed_out(addr: &str, phase: &str) -> f64 {
    metric(
        addr,
        &format!("nubis_connections_timed_out_total{{phase=\"{phase}\"}}"),
    )
}

const TC3_JSON: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn half_sent_heads_are_dropped_after_the_header_timeout_while_healthz_answers() {
    let srv = start(
        &[
            ("NUBIS_HEADER_TIMEOUT", "1s"),
            ("NUBIS_IDLE_TIMEOUT", "60s"),
        ],
        None,
        None,
    );
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|i| {
            let mut s = connect(&srv.addr);
            s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow-{i}: ").as_bytes())
                .expect("write");
            s
        })
        .collect();
    // A new client is answered at once, while the slow ones are held.
    let r = get(&srv.addr, "/healthz");
    assert_eq!((r.status, r.text().as_str()), (200, "ok\n"));
    for s in slow.iter_mut() {
        // Dripping a byte does not extend the head's deadline.
        let _ = s.write_all(b"a");
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    for (i, s) in slow.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            closed_by_server(s, left.max(Duration::from_millis(10))),
            "slow connection {i} still open"
        );
    }
    assert!(timed_out(&srv.addr, "header") >= 100.0);
    assert_eq!(get(&srv.addr, "/healthz").status, 200);
}

/// The finding: at a low open-file limit, 300 silent connections kept `/healthz`
/// from ever being answered. Now the connection cap stays under the limit and the header
/// timeout clears the silent ones, so a new client gets its turn.
#[test]
fn silent_connections_at_a_low_fd_limit_do_not_starve_healthz() {
    let srv = start(
        &[("NUBIS_HEADER_TIMEOUT", "1s")],
        Some("ulimit -n 256"),
        None,
    );
    let _silent: Vec<TcpStream> = (0..300).map(|_| connect(&srv.addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    // Queued behind the silent connections until the header timeout drops them.
    let r = get(&srv.addr, "/healthz");
    assert_eq!(r.status, 200);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let srv = start(
        &[
            ("NUBIS_HEADER_TIMEOUT", "30s"),
            ("NUBIS_IDLE_TIMEOUT", "1s"),
        ],
        None,
        None,
    );
    let mut s = connect(&srv.addr);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", srv.addr);
    s.write_all(req.as_bytes()).expect("write");
    assert_eq!(read_reply(&mut s).status, 200);
    // Reused within the idle time: still served.
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(req.as_bytes()).expect("write");
    assert_eq!(read_reply(&mut s).status, 200);
    // Then left idle: closed after the idle timeout, long before the header timeout.
    let t = Instant::now();
    assert!(closed_by_server(&mut s, Duration::from_secs(10)));
    assert!(t.elapsed() < Duration::from_secs(10));
    assert!(timed_out(&srv.addr, "idle") >= 1.0);
}

#[test]
fn requests_over_the_inflight_cap_get_each_dialects_throttling_error() {
    let srv = start(
        &[("NUBIS_MAX_INFLIGHT", "1"), ("NUBIS_BODY_TIMEOUT", "60s")],
        None,
        None,
    );
    let a = srv.addr.as_str();
    // The one slot is held by a request whose body never comes.
    let mut holder = connect(a);
    holder
        .write_all(b"POST /admin/v1/access-keys HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        .expect("write");
    std::thread::sleep(Duration::from_millis(300));

    let r = tc3_describe(a, b"{}");
    assert_eq!(r.status, 200);
    assert_eq!(r.tencent_code(), "RequestLimitExceeded");
    assert!(r.json()["Response"]["RequestId"].is_string());

    let r = get(
        a,
        "/?Action=DescribeInstances&Version=2014-05-26&RegionId=cn-hangzhou",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["Code"], "Throttling");
    assert!(r.json()["HostId"].is_string());
    assert_eq!(r.headers.get("retry-after").map(String::as_str), Some("1"));
    let r = get(
        a,
        "/?Action=DescribeInstances&Version=2014-05-26&Format=XML",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("<Code>Throttling</Code>"), "{}", r.text());

    let r = get(a, "/compute/v2.1/servers");
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["overLimit"]["code"], 429);
    assert!(r.headers.contains_key("retry-after"));

    let r = post(a, "/identity/v3/auth/tokens", &[TC3_JSON], b"{}");
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], 429);
    assert!(r.headers.contains_key("retry-after"));

    // Health is never shed.
    assert_eq!(get(a, "/healthz").status, 200);
    // Once the slot is free again, the dialect answers for itself.
    drop(holder);
    std::thread::sleep(Duration::from_millis(300));
    let r = tc3_describe(a, b"{}");
    assert_ne!(r.tencent_code(), "RequestLimitExceeded");
    let shed = metric(
        a,
        "nubis_requests_total{dialect=\"tencent\",action=\"other\",code=\"RequestLimitExceeded\"}",
    );
    assert!(shed >= 1.0, "shed requests are counted");
}

/// The finding of the hostile suite: 256 slow bodies from one client held every in-flight slot.
/// One source now holds at most its share; another source still gets through.
#[test]
fn one_source_holding_slow_bodies_cannot_take_every_slot() {
    let srv = start(
        &[
            ("NUBIS_MAX_INFLIGHT", "8"),
            ("NUBIS_MAX_INFLIGHT_PER_SOURCE", "2"),
            ("NUBIS_BODY_TIMEOUT", "60s"),
        ],
        None,
        None,
    );
    let a = srv.addr.as_str();
    let slow =
        b"POST /identity/v3/auth/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{";
    let holders: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut h = connect(a);
            h.write_all(slow).expect("write");
            h
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // The same source (127.0.0.1) is over its share: the dialect's throttling error.
    let r = post(a, "/identity/v3/auth/tokens", &[TC3_JSON], b"{}");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], 429);
    // Another source (127.0.0.2, still loopback) is served.
    let port = srv.addr.rsplit(':').next().expect("port");
    let other = std::net::SocketAddr::from(([127, 0, 0, 2], 0));
    let sock = connect_from(other, a.parse().expect("addr"));
    let mut s = sock;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(
        format!("GET /identity/v3 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .expect("write");
    let r = read_reply(&mut s);
    assert_eq!(r.status, 200, "{}", r.text());
    drop(holders);
    std::thread::sleep(Duration::from_millis(300));
    // Released shares are forgotten: the first source is served again.
    assert_ne!(
        post(a, "/identity/v3/auth/tokens", &[TC3_JSON], b"{}").status,
        429
    );
}

/// A TCP connection from a chosen local address (std cannot bind before connecting, so this
/// goes through libc).
fn connect_from(local: std::net::SocketAddr, remote: std::net::SocketAddr) -> TcpStream {
    use std::os::fd::FromRawFd;
    let (std::net::SocketAddr::V4(l), std::net::SocketAddr::V4(r)) = (local, remote) else {
        panic!("IPv4 only");
    };
    let sin = |a: std::net::SocketAddrV4| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*a.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket owned by the returned stream; the addresses outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket");
        let (la, ra) = (sin(l), sin(r));
        assert_eq!(
            libc::bind(fd, (&raw const la).cast(), len),
            0,
            "bind 127.0.0.2"
        );
        assert_eq!(libc::connect(fd, (&raw const ra).cast(), len), 0, "connect");
        TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn oversize_bodies_get_each_dialects_shape() {
    let srv = start(&[("NUBIS_MAX_BODY", "1024")], None, None);
    let a = srv.addr.as_str();
    let big = vec![b'x'; 4096];

    // Declared too large: refused before a byte of the body is read.
    let r = tc3_describe(a, &big);
    assert_eq!(r.status, 200);
    assert_eq!(r.tencent_code(), "RequestSizeLimitExceeded");

    // Chunked (no length): refused once the limit is passed.
    let mut s = connect(a);
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-TC-Action: DescribeInstances\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .expect("write");
    for _ in 0..4 {
        let _ = s.write_all(b"400\r\n");
        let _ = s.write_all(&[b' '; 1024]);
        let _ = s.write_all(b"\r\n");
    }
    let r = read_reply(&mut s);
    assert_eq!(r.status, 200);
    assert_eq!(r.tencent_code(), "RequestSizeLimitExceeded");

    // Legacy Tencent: everything in the form body.
    let r = post(
        a,
        "/",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &big,
    );
    assert_eq!(r.tencent_code(), "RequestSizeLimitExceeded");

    let r = post(
        a,
        "/?Action=RunInstances&Version=2014-05-26",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &big,
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["Code"], "InvalidParameter");
    assert!(r.json()["RequestId"].is_string());

    let r = post(a, "/compute/v2.1/servers", &[TC3_JSON], &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["overLimit"]["code"], 413);

    let r = post(a, "/identity/v3/auth/tokens", &[TC3_JSON], &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], 413);
    assert_eq!(r.json()["error"]["title"], "Request Entity Too Large");

    // Under the limit: the dialect itself answers (here: not authenticated).
    let r = tc3_describe(a, b"{}");
    assert_ne!(r.tencent_code(), "RequestSizeLimitExceeded");
    assert_eq!(get(a, "/healthz").status, 200);
}

#[test]
fn a_body_that_never_comes_is_cut_off_by_the_body_timeout() {
    let srv = start(&[("NUBIS_BODY_TIMEOUT", "1s")], None, None);
    let mut s = connect(&srv.addr);
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-TC-Action: DescribeInstances\r\nContent-Length: 100\r\n\r\n{",
    )
    .expect("write");
    let r = read_reply(&mut s);
    assert_eq!(r.status, 408);
    assert!(closed_by_server(&mut s, Duration::from_secs(5)));
    assert!(timed_out(&srv.addr, "body") >= 1.0);
    assert_eq!(get(&srv.addr, "/healthz").status, 200);
}

#[test]
fn junk_action_names_do_not_grow_metrics() {
    let srv = start(&[], None, None);
    let a = srv.addr.as_str();
    let junk = |from: usize, to: usize| {
        for i in from..to {
            let name = format!("Junk{i}{}", "x".repeat(200));
            let r = post(a, "/", &[("X-TC-Action", &name), TC3_JSON], b"{}");
            assert_eq!(r.status, 200);
            let r = get(a, &format!("/?Action={name}&Version=2014-05-26"));
            assert!(r.status >= 400 && r.status < 500, "{}", r.status);
        }
    };
    junk(0, 10);
    let before = get(a, "/metrics").body.len();
    junk(10, 310);
    let text = get(a, "/metrics").text();
    assert!(
        text.len() < before + 512,
        "/metrics grew from {before} to {} bytes",
        text.len()
    );
    assert!(!text.contains("Junk"), "a junk name became a label value");
    let other: f64 = text
        .lines()
        .filter(|l| l.starts_with("nubis_requests_total{dialect=\"tencent\",action=\"other\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(other >= 310.0, "other counted {other}");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "data dir");
    let mut files = Vec::new();
    for e in std::fs::read_dir(data).expect("data dir") {
        let p = e.expect("entry").path();
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
        files.push(p.file_name().expect("name").to_string_lossy().into_owned());
    }
    for name in ["nubis.db", "master.key", "admin-credentials"] {
        assert!(files.iter().any(|f| f == name), "{name} missing: {files:?}");
    }
}

#[test]
fn the_data_dir_is_private_whatever_the_umask() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let data = tmp.path().join("data");
    // An older install: a world-readable dir with a world-readable file in it.
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(data.join("notes.txt"), "old").expect("write");
    std::fs::set_permissions(
        data.join("notes.txt"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    {
        let srv = start(&[], Some("umask 000"), Some(&data));
        // A write creates the WAL and shared-memory files too.
        let _ = get(&srv.addr, "/healthz");
        assert_private(&srv.data);
        assert!(data.join("nubis.db-wal").exists());
    }
    // Loosened by hand, then restarted: private again.
    for f in ["nubis.db", "admin-credentials", "master.key"] {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let srv = start(&[], Some("umask 000"), Some(&data));
    assert_eq!(get(&srv.addr, "/healthz").status, 200);
    assert_private(&srv.data);
}
