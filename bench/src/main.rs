//! `nubis-bench`: a load generator for the nubis Tencent CVM API (2017-03-12).
//!
//! It sends TC3-HMAC-SHA256 signed `POST /` requests over plain HTTP/1.1 keep-alive
//! connections (one connection per concurrent worker), records latencies in an HDR
//! histogram and prints one summary line per scenario plus a Markdown table.
//!
//! With `--spawn PATH` it starts a fresh `nubis serve` on a free loopback port with a
//! temporary data directory (`NUBIS_SIM_TIME_SCALE=0`, `NUBIS_RATE_LIMITS=off`), measures
//! the CPU time the server and the generator use during each scenario (from `/proc`), and
//! stops the server at the end.
//!
//! Only loopback/local targets are meant: every request loop is bounded by `--duration`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The key pair `--spawn` gives the server (and the default for `--secret-id/--secret-key`).
const DEFAULT_SECRET_ID: &str = "AKIDnubisbench000000000000000000";
const DEFAULT_SECRET_KEY: &str = "nubisbenchsecretkey0000000000000";
const API_VERSION: &str = "2017-03-12";
const CAM_VERSION: &str = "2019-01-16";
/// Policies attached to the sub-user of `authz-overhead` (issue 13's figure).
const AUTHZ_POLICIES: usize = 20;
const SERVICE: &str = "cvm";
/// S5.SMALL2 in ECS's spelling.
const ECS_INSTANCE_TYPE: &str = "ecs.s5.small2";
const ECS_VERSION: &str = "2014-05-26";
/// The ECS spelling of the region the Tencent requests name (`--region`'s default).
const ECS_REGION: &str = "cn-hangzhou";
/// Every instance of the fleet gets a password (its guest keeps the hash) and this key pair:
/// the record issue 16 sizes memory by.
const FLEET_KEY_PAIR: &str = "nubis-bench";
const FLEET_PASSWORD: &str = "Bench-fleet-1";
const CONTENT_TYPE: &str = "application/json";
/// Linux reports process CPU times in USER_HZ ticks, which is 100 on every
/// architecture Linux exposes to user space.
const USER_HZ: f64 = 100.0;

#[derive(Parser, Debug)]
#[command(
    name = "nubis-bench",
    version,
    about = "Load generator for the nubis Tencent CVM API (signed TC3 requests, plain HTTP/1.1)"
)]
struct Cli {
    /// Base URL of a running server, e.g. http://127.0.0.1:8080 (plain http only).
    #[arg(long, conflicts_with = "spawn", required_unless_present = "spawn")]
    target: Option<String>,

    /// Start a fresh server from this `nubis` binary on a free loopback port with a
    /// temporary data dir, NUBIS_SIM_TIME_SCALE=0 and NUBIS_RATE_LIMITS=off; stop it at the end.
    #[arg(long, value_name = "PATH_TO_NUBIS")]
    spawn: Option<PathBuf>,

    /// With --spawn: use this data dir instead of a temporary one (kept afterwards, so a
    /// later run can reuse the fleet).
    #[arg(long, requires = "spawn", value_name = "DIR")]
    data: Option<PathBuf>,

    /// Tencent SecretId (the admin access key id; --spawn sets it on the server).
    #[arg(long, env = "NUBIS_ADMIN_ACCESS_KEY_ID", default_value = DEFAULT_SECRET_ID)]
    secret_id: String,

    /// Tencent SecretKey (the admin access key secret; --spawn sets it on the server).
    #[arg(long, env = "NUBIS_ADMIN_ACCESS_KEY_SECRET", default_value = DEFAULT_SECRET_KEY, hide_env_values = true)]
    secret_key: String,

    /// Where the RUNNING instance IDs of a kept fleet are remembered (one per line): read
    /// instead of paging through the fleet when it holds enough, written after collecting.
    /// Collecting a million IDs takes 10,000 filtered pages — minutes on a server that
    /// scans for each.
    #[arg(long, value_name = "FILE")]
    ids_file: Option<PathBuf>,

    /// Instances the fleet must have; missing ones are created with RunInstances (≤100 per call).
    #[arg(long, default_value_t = 10_000)]
    fleet: usize,

    /// Concurrent workers (one HTTP/1.1 connection each). A comma list runs every
    /// scenario at each level, e.g. `16,32,64`.
    #[arg(long, value_delimiter = ',', default_value = "32")]
    concurrency: Vec<usize>,

    /// Measured time per scenario and concurrency level (e.g. 10s, 500ms, 1m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Unmeasured warm-up before each measurement (connections are opened during it).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// What to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,

    /// Print one JSON document on stdout instead of the human-readable lines and table.
    #[arg(long)]
    json: bool,

    /// X-TC-Region of every signed request.
    #[arg(long, default_value = "ap-guangzhou")]
    region: String,

    /// ZoneId of the fleet's (ECS) RunInstances calls: the zone ap-guangzhou-3 in ECS's
    /// spelling.
    #[arg(long, default_value = "cn-hangzhou-h")]
    ecs_zone: String,

    /// ImageId for RunInstances.
    #[arg(long, default_value = "img-tos31x64")]
    image_id: String,

    /// by-id-under-load: reboots sent per second beside the measured lookups.
    #[arg(long, default_value_t = 1000.0)]
    mutation_rate: f64,

    /// Parallel RunInstances calls while creating the fleet.
    #[arg(long, default_value_t = 4)]
    setup_concurrency: usize,

    /// How long to wait for the fleet to reach RUNNING before measuring.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    settle_timeout: Duration,

    /// Per-request timeout; a request that takes longer counts as an error.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,

    /// Tokio worker threads of the generator (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,

    /// PID of the server behind --target, to report its CPU use per scenario
    /// (--spawn knows it already). A comma list (several nodes behind a load balancer,
    /// bench/cluster.sh) reports their sum as the server's CPU.
    #[arg(long, conflicts_with = "spawn", value_delimiter = ',')]
    server_pid: Vec<u32>,

    /// filter-sweep: only the filters whose row label starts with this (`Tencent`, `ECS`,
    /// `ECS InstanceName`): ECS keeps at most 100,000 signature nonces per AccessKey for 15
    /// minutes, so a long ECS sweep is run on a server of its own.
    #[arg(long, default_value = "")]
    sweep_only: String,

    /// Seed for the random choice of instances and offsets (default: random).
    #[arg(long)]
    seed: Option<u64>,

    /// slow-clients: connections held open beside the measured traffic (re-opened whenever
    /// the server drops one).
    #[arg(long, default_value_t = 1000)]
    slow_connections: usize,

    /// slow-clients: what the held connections do.
    #[arg(long, value_enum, default_value_t = SlowKind::Mixed)]
    slow_kind: SlowKind,

    /// slow-clients: how often a dripping connection sends one more byte of its head.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    drip_every: Duration,

    /// authz-overhead: root / sub-user window pairs per concurrency level. The loss is
    /// reported per pair and as the median of the pairs, so that one window hit by the
    /// machine's other load does not decide the result.
    #[arg(long, default_value_t = 2)]
    rounds: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SlowKind {
    /// Connect and send nothing.
    Idle,
    /// Send half a request head, then one byte per --drip-every (slowloris).
    Drip,
    /// Half idle, half dripping.
    Mixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// DescribeInstances with InstanceIds = [one random id].
    DescribeById,
    /// DescribeInstances, Filters instance-state=RUNNING, Limit 100, random Offset.
    DescribeFilterPage,
    /// RebootInstances of one random instance.
    Reboot,
    /// describe-by-id measured while 8 unmeasured clients page through filtered listings
    /// (describe-filter-page) and reboots are sent at --mutation-rate per second: whether
    /// listings and writers stall lookups (issue 16). Their own rates are printed.
    ByIdUnderLoad,
    /// GET /healthz, unsigned: the baseline of the same run.
    BaselineHealthz,
    /// baseline-healthz, describe-by-id, describe-filter-page, reboot, by-id-under-load, in
    /// that order.
    All,
    /// describe-by-id unloaded, then again while --slow-connections idle or slowloris
    /// connections are held open: the kept throughput and how many the server dropped.
    SlowClients,
    /// describe-by-id signed by the account root, then by a CAM sub-user with 20 attached
    /// policies (made through CAM before measuring), alternating twice: the authorization
    /// overhead as the sub-user's throughput loss.
    AuthzOverhead,
    /// A filtered page of 100 at a random offset for each documented filter of Tencent
    /// DescribeInstances and each filter parameter of ECS DescribeInstances, one after the
    /// other, with values read off one instance of the fleet: one row per filter.
    FilterSweep,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::DescribeById => "describe-by-id",
            Scenario::ByIdUnderLoad => "by-id-under-load",
            Scenario::DescribeFilterPage => "describe-filter-page",
            Scenario::Reboot => "reboot",
            Scenario::BaselineHealthz => "baseline-healthz",
            Scenario::All => "all",
            Scenario::SlowClients => "slow-clients",
            Scenario::AuthzOverhead => "authz-overhead",
            Scenario::FilterSweep => "filter-sweep",
        }
    }

    fn expand(self) -> Vec<Scenario> {
        match self {
            Scenario::All => vec![
                Scenario::BaselineHealthz,
                Scenario::DescribeById,
                Scenario::DescribeFilterPage,
                Scenario::Reboot,
                Scenario::ByIdUnderLoad,
            ],
            Scenario::SlowClients | Scenario::AuthzOverhead => vec![Scenario::DescribeById],
            Scenario::FilterSweep => vec![Scenario::DescribeFilterPage],
            s => vec![s],
        }
    }

    /// What its measured requests are on the wire (the under-load scenario measures
    /// lookups by ID).
    fn wire(self) -> Scenario {
        match self {
            Scenario::ByIdUnderLoad => Scenario::DescribeById,
            s => s,
        }
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("`{s}` is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// HTTP: one HTTP/1.1 keep-alive connection per worker, reopened after any failure.

struct Conn {
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(host: &str) -> Self {
        Self {
            host: host.to_string(),
            sender: None,
        }
    }

    async fn open(host: &str) -> Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole body. Any failure drops the connection so
    /// that the next call opens a new one.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        let result = self.try_send(req).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(&mut self, req: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes)> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(Self::open(&self.host).await?);
        }
        let sender = self.sender.as_mut().expect("connection opened above");
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Builds signed Tencent requests.
struct Signer {
    host: String,
    secret_id: String,
    secret_key: String,
    region: String,
}

impl Signer {
    fn tc3(&self, action: &str, body: &Value) -> Request<Full<Bytes>> {
        self.tc3_for(SERVICE, API_VERSION, action, body)
    }

    /// A TC3-signed request of another Tencent service on the same listener (CAM).
    fn tc3_for(
        &self,
        service: &str,
        version: &str,
        action: &str,
        body: &Value,
    ) -> Request<Full<Bytes>> {
        let body = serde_json::to_vec(body).expect("JSON values serialize");
        let ts = unix_now();
        let auth = nubis_auth::tencent::sign_tc3(
            "POST",
            &self.host,
            "",
            CONTENT_TYPE,
            &body,
            &self.secret_id,
            &self.secret_key,
            ts,
            service,
        );
        Request::post("/")
            .header(header::HOST, &self.host)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header("X-TC-Action", action)
            .header("X-TC-Version", version)
            .header("X-TC-Timestamp", ts.to_string())
            .header("X-TC-Region", &self.region)
            .header(header::AUTHORIZATION, auth)
            .body(Full::new(Bytes::from(body)))
            .expect("valid request")
    }

    /// An Alibaba ECS RPC request (`GET /?Action=…`, signature v1, HMAC-SHA1) on the same
    /// listener: the fleet is made through ECS's RunInstances, which takes a password and a key
    /// pair together (Tencent's LoginSettings takes one of them).
    fn ecs(&self, action: &str, params: &[(&str, String)]) -> Request<Full<Bytes>> {
        let nonce: u64 = rand::random();
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (days, secs) = (ts / 86_400, ts % 86_400);
        let mut all: Vec<(String, String)> = [
            ("Action", action.to_string()),
            ("Version", ECS_VERSION.to_string()),
            ("Format", "JSON".to_string()),
            ("AccessKeyId", self.secret_id.clone()),
            ("SignatureMethod", "HMAC-SHA1".to_string()),
            ("SignatureVersion", "1.0".to_string()),
            ("SignatureNonce", format!("{nonce:016x}")),
            ("Timestamp", iso8601(days, secs)),
            ("RegionId", ECS_REGION.to_string()),
        ]
        .into_iter()
        .chain(params.iter().map(|(k, v)| (*k, v.clone())))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let signature = nubis_auth::aliyun::sign_v1("GET", &all, &self.secret_key);
        all.push(("Signature".into(), signature));
        let query: Vec<String> = all
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    nubis_auth::aliyun::percent_encode(k),
                    nubis_auth::aliyun::percent_encode(v)
                )
            })
            .collect();
        Request::get(format!("/?{}", query.join("&")))
            .header(header::HOST, &self.host)
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    }

    fn healthz(&self) -> Request<Full<Bytes>> {
        Request::get("/healthz")
            .header(header::HOST, &self.host)
            .body(Full::new(Bytes::new()))
            .expect("valid request")
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: ResponseBody,
}

/// Only what the benchmark checks; every other field is skipped while parsing.
#[derive(Deserialize)]
struct ResponseBody {
    #[serde(rename = "Error")]
    error: Option<ApiError>,
    #[serde(rename = "TotalCount")]
    total_count: Option<u64>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: String,
}

/// One signed call for setup work: the `Response` object, or the API error as `Err`.
async fn call(conn: &mut Conn, signer: &Signer, action: &str, body: Value) -> Result<Value> {
    send_call(conn, signer.tc3(action, &body), action).await
}

/// [`call`] of a CAM action.
async fn cam_call(conn: &mut Conn, signer: &Signer, action: &str, body: Value) -> Result<Value> {
    send_call(
        conn,
        signer.tc3_for("cam", CAM_VERSION, action, &body),
        action,
    )
    .await
}

async fn send_call(conn: &mut Conn, req: Request<Full<Bytes>>, action: &str) -> Result<Value> {
    let (status, bytes) = conn.send(req).await?;
    let mut v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{action}: HTTP {status}, body is not JSON"))?;
    let resp = v
        .get_mut("Response")
        .map(Value::take)
        .ok_or_else(|| anyhow!("{action}: HTTP {status}, no `Response` in the body"))?;
    if let Some(err) = resp.get("Error") {
        bail!(
            "{action}: {} ({})",
            err["Code"].as_str().unwrap_or("?"),
            err["Message"].as_str().unwrap_or("")
        );
    }
    Ok(resp)
}

/// One ECS call for setup work: the body, or the API error (`Code`) as `Err`.
async fn ecs_call(
    conn: &mut Conn,
    signer: &Signer,
    action: &str,
    params: &[(&str, String)],
) -> Result<Value> {
    let (status, bytes) = conn.send(signer.ecs(action, params)).await?;
    let v: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{action}: HTTP {status}, body is not JSON"))?;
    if let Some(code) = v.get("Code").and_then(Value::as_str) {
        bail!("{action}: {code} ({})", v["Message"].as_str().unwrap_or(""));
    }
    Ok(v)
}

/// `YYYY-MM-DDThh:mm:ssZ` from days since the epoch and seconds into the day (civil from
/// days, H. Hinnant's algorithm): ECS's Timestamp without a date crate.
fn iso8601(days: u64, secs: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    )
}

// ---------------------------------------------------------------------------------------
// Spawning a server.

struct Spawned {
    child: tokio::process::Child,
    pid: u32,
    log: PathBuf,
    // Removed on drop (after the server has stopped).
    _tmp: tempfile::TempDir,
}

impl Spawned {
    async fn start(bin: &Path, data: Option<&Path>, cli: &Cli) -> Result<(Self, String)> {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            l.local_addr()?.port()
        };
        let listen = format!("127.0.0.1:{port}");
        let tmp = tempfile::Builder::new()
            .prefix("nubis-bench-")
            .tempdir()
            .context("creating a temporary dir")?;
        let data = data
            .map(Path::to_path_buf)
            .unwrap_or_else(|| tmp.path().join("data"));
        let log = tmp.path().join("server.log");
        let log_file = std::fs::File::create(&log)?;
        let child = tokio::process::Command::new(bin)
            .arg("serve")
            .arg("--listen")
            .arg(&listen)
            .arg("--data")
            .arg(&data)
            .env("NUBIS_ADMIN_ACCESS_KEY_ID", &cli.secret_id)
            .env("NUBIS_ADMIN_ACCESS_KEY_SECRET", &cli.secret_key)
            .env("NUBIS_SIM_TIME_SCALE", "0")
            .env("NUBIS_RATE_LIMITS", "off")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the server exited at once"))?;
        let mut me = Self {
            child,
            pid,
            log,
            _tmp: tmp,
        };
        eprintln!(
            "spawned {} serve --listen {listen} --data {} (pid {pid}, log {})",
            bin.display(),
            data.display(),
            me.log.display()
        );
        let signer = Signer {
            host: listen.clone(),
            secret_id: String::new(),
            secret_key: String::new(),
            region: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut conn = Conn::new(&listen);
        loop {
            if let Some(status) = me.child.try_wait()? {
                bail!(
                    "the server exited with {status} before it was ready; its log:\n{}",
                    me.log_tail()
                );
            }
            if let Ok((StatusCode::OK, _)) = conn.send(signer.healthz()).await {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within 60 s; its log:\n{}",
                    me.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok((me, format!("http://{listen}")))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGTERM (graceful shutdown), then SIGKILL after 10 s.
    async fn stop(mut self) {
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = self.child.kill().await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CPU accounting from /proc.

/// CPU seconds (user + system, all threads) a process has used so far.
fn process_cpu_secs(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// (busy, total) jiffies of the whole machine.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

struct CpuMark {
    at: Instant,
    server: Option<f64>,
    bench: Option<f64>,
    machine: Option<(u64, u64)>,
}

impl CpuMark {
    fn take(server_pids: &[u32]) -> Self {
        // The sum over every server process; unknown when any of them cannot be read.
        let server = if server_pids.is_empty() {
            None
        } else {
            server_pids
                .iter()
                .map(|p| process_cpu_secs(&p.to_string()))
                .sum::<Option<f64>>()
        };
        Self {
            at: Instant::now(),
            server,
            bench: process_cpu_secs("self"),
            machine: machine_jiffies(),
        }
    }

    fn since(&self, start: &CpuMark) -> CpuSplit {
        let wall = self.at.duration_since(start.at).as_secs_f64().max(1e-9);
        let pct = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(100.0 * (a - b) / wall),
            _ => None,
        };
        let server_pct = pct(self.server, start.server);
        let bench_pct = pct(self.bench, start.bench);
        let machine_busy_pct = match (self.machine, start.machine) {
            (Some((b1, t1)), Some((b0, t0))) if t1 > t0 => {
                Some(100.0 * (b1 - b0) as f64 / (t1 - t0) as f64)
            }
            _ => None,
        };
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let other_pct = match (machine_busy_pct, server_pct, bench_pct) {
            (Some(m), Some(s), Some(b)) => Some((m * cores as f64 - s - b).max(0.0)),
            _ => None,
        };
        CpuSplit {
            server_pct,
            bench_pct,
            machine_busy_pct,
            other_pct,
            cores,
        }
    }
}

/// Percentages of one core, as `top` shows them (200% = two cores busy).
#[derive(Serialize, Clone)]
struct CpuSplit {
    server_pct: Option<f64>,
    bench_pct: Option<f64>,
    /// Share of all cores' time that was busy (any process).
    machine_busy_pct: Option<f64>,
    /// CPU used by everything else on the machine (percent of one core): other load
    /// that skews the measurement.
    other_pct: Option<f64>,
    cores: usize,
}

// ---------------------------------------------------------------------------------------
// Fleet setup.

struct Fleet {
    ids: Vec<String>,
    created: usize,
    setup_secs: f64,
}

fn bar(len: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:<28} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
        )
        .expect("valid template"),
    );
    pb.set_message(msg.to_string());
    pb
}

fn running_filter() -> Value {
    json!([{"Name": "instance-state", "Values": ["RUNNING"]}])
}

async fn count_instances(conn: &mut Conn, signer: &Signer, running_only: bool) -> Result<usize> {
    let mut body = json!({"Limit": 1});
    if running_only {
        body["Filters"] = running_filter();
    }
    let resp = call(conn, signer, "DescribeInstances", body).await?;
    Ok(resp["TotalCount"].as_u64().unwrap_or(0) as usize)
}

async fn prepare_fleet(cli: &Cli, signer: &Arc<Signer>) -> Result<Fleet> {
    let started = Instant::now();
    let mut conn = Conn::new(&signer.host);
    let existing = count_instances(&mut conn, signer, false).await?;
    let mut created = 0;
    if existing >= cli.fleet {
        eprintln!(
            "fleet: the server already has {existing} instances (≥ {}); reusing them",
            cli.fleet
        );
    } else {
        let need = cli.fleet - existing;
        let batches = need.div_ceil(100);
        eprintln!(
            "fleet: the server has {existing} instances; creating {need} with {batches} RunInstances calls"
        );
        match ecs_call(
            &mut conn,
            signer,
            "CreateKeyPair",
            &[("KeyPairName", FLEET_KEY_PAIR.to_string())],
        )
        .await
        {
            Err(e) if !format!("{e}").contains("KeyPair.AlreadyExist") => return Err(e),
            _ => {}
        }
        let pb = bar(need as u64, "RunInstances");
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..cli.setup_concurrency.clamp(1, batches) {
            let (signer, next, pb) = (signer.clone(), next.clone(), pb.clone());
            let (zone, image) = (cli.ecs_zone.clone(), cli.image_id.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::new(&signer.host);
                let mut made = 0usize;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        return Ok::<usize, anyhow::Error>(made);
                    }
                    let count = (need - b * 100).min(100);
                    let params = [
                        ("ZoneId", zone.clone()),
                        ("ImageId", image.clone()),
                        ("InstanceType", ECS_INSTANCE_TYPE.to_string()),
                        ("Amount", count.to_string()),
                        ("InstanceName", format!("bench-{b}")),
                        ("Password", FLEET_PASSWORD.to_string()),
                        ("KeyPairName", FLEET_KEY_PAIR.to_string()),
                    ];
                    let mut attempt = 0;
                    let resp = loop {
                        match ecs_call(&mut conn, &signer, "RunInstances", &params).await {
                            Ok(r) => break r,
                            Err(e) if attempt < 3 => {
                                attempt += 1;
                                pb.println(format!("RunInstances failed ({e:#}); retrying"));
                                tokio::time::sleep(Duration::from_millis(500)).await;
                            }
                            Err(e) => return Err(e),
                        }
                    };
                    let got = resp["InstanceIdSets"]["InstanceIdSet"]
                        .as_array()
                        .map_or(0, Vec::len);
                    made += got;
                    pb.inc(got as u64);
                }
            }));
        }
        for t in tasks {
            created += t.await??;
        }
        pb.finish();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "fleet: {created} created in {secs:.1} s ({:.0} instances/s)",
            created as f64 / secs.max(0.001)
        );
    }

    // With NUBIS_SIM_TIME_SCALE=0 instances are RUNNING almost at once; a server with a
    // real time scale needs a while.
    let deadline = Instant::now() + cli.settle_timeout;
    let pb = bar(cli.fleet as u64, "waiting for RUNNING");
    let running = loop {
        let running = count_instances(&mut conn, signer, true).await?;
        pb.set_position(running.min(cli.fleet) as u64);
        if running >= cli.fleet || Instant::now() > deadline {
            break running;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    pb.finish_and_clear();
    if running < cli.fleet {
        eprintln!(
            "warning: only {running} of {} instances are RUNNING after {:?}; using those",
            cli.fleet, cli.settle_timeout
        );
    }

    let want = running.min(cli.fleet);
    let kept: Vec<String> = match &cli.ids_file {
        Some(f) if created == 0 => std::fs::read_to_string(f)
            .map(|s| s.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    if kept.len() >= want {
        let setup_secs = started.elapsed().as_secs_f64();
        eprintln!("fleet: {want} RUNNING instance IDs read from the IDs file");
        return Ok(Fleet {
            ids: kept.into_iter().take(want).collect(),
            created,
            setup_secs,
        });
    }
    let pb = bar(want as u64, "collecting instance IDs");
    let mut ids = Vec::with_capacity(want);
    while ids.len() < want {
        let resp = call(
            &mut conn,
            signer,
            "DescribeInstances",
            json!({"Filters": running_filter(), "Limit": 100, "Offset": ids.len()}),
        )
        .await?;
        let page = resp["InstanceSet"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        for inst in page {
            if let Some(id) = inst["InstanceId"].as_str() {
                ids.push(id.to_string());
            }
        }
        pb.set_position(ids.len().min(want) as u64);
    }
    ids.truncate(want);
    pb.finish_and_clear();
    if ids.is_empty() {
        bail!("the fleet has no RUNNING instance to benchmark against");
    }
    if let Some(f) = &cli.ids_file {
        std::fs::write(f, ids.join("\n")).with_context(|| format!("writing {}", f.display()))?;
    }
    let setup_secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fleet: {} RUNNING instance IDs collected ({created} created) in {setup_secs:.1} s",
        ids.len()
    );
    Ok(Fleet {
        ids,
        created,
        setup_secs,
    })
}

// ---------------------------------------------------------------------------------------
// Load.

enum Outcome {
    Ok,
    /// An expected refusal under load (the instance is busy with another operation).
    Refused(String),
    Error(String),
}

/// Codes RebootInstances returns when the instance is not in a state that allows it
/// right now (another reboot in flight, …): correct behaviour, not failures.
fn is_state_conflict(code: &str) -> bool {
    code.starts_with("UnsupportedOperation.InstanceState")
        || code == "MutexOperation.TaskRunning"
        || code == "OperationDenied.InstanceOperationInProgress"
}

/// An ECS reply: 200 without a `Code` is a success.
fn classify_ecs(status: StatusCode, body: &[u8]) -> Outcome {
    #[derive(Deserialize)]
    struct EcsError {
        #[serde(rename = "Code")]
        code: Option<String>,
    }
    match serde_json::from_slice::<EcsError>(body) {
        Ok(EcsError { code: Some(code) }) => Outcome::Error(code),
        Ok(_) if status == StatusCode::OK => Outcome::Ok,
        Ok(_) => Outcome::Error(format!("HTTP {}", status.as_u16())),
        Err(_) => Outcome::Error(format!("HTTP {}: unparsable body", status.as_u16())),
    }
}

fn classify(scenario: Scenario, status: StatusCode, body: &[u8]) -> Outcome {
    if scenario == Scenario::BaselineHealthz {
        return if status == StatusCode::OK {
            Outcome::Ok
        } else {
            Outcome::Error(format!("HTTP {}", status.as_u16()))
        };
    }
    let env: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(_) => return Outcome::Error(format!("HTTP {}: unparsable body", status.as_u16())),
    };
    if let Some(err) = env.response.error {
        if scenario == Scenario::Reboot && is_state_conflict(&err.code) {
            return Outcome::Refused(err.code);
        }
        return Outcome::Error(err.code);
    }
    if scenario == Scenario::DescribeById && env.response.total_count != Some(1) {
        return Outcome::Error(format!(
            "unexpected TotalCount {:?} (want 1)",
            env.response.total_count
        ));
    }
    Outcome::Ok
}

struct Stats {
    /// Latency of every completed request, µs.
    all: Histogram<u64>,
    /// Latency of the requests without error (accepted, for reboot), µs.
    ok: Histogram<u64>,
    requests: u64,
    /// Response body bytes received.
    bytes: u64,
    oks: u64,
    refused: u64,
    errors: u64,
    refused_codes: BTreeMap<String, u64>,
    error_codes: BTreeMap<String, u64>,
}

impl Stats {
    fn new() -> Self {
        let h = || Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
        Self {
            all: h(),
            ok: h(),
            requests: 0,
            bytes: 0,
            oks: 0,
            refused: 0,
            errors: 0,
            refused_codes: BTreeMap::new(),
            error_codes: BTreeMap::new(),
        }
    }

    fn record(&mut self, latency: Duration, bytes: usize, outcome: Outcome) {
        let us = (latency.as_micros() as u64).max(1);
        self.bytes += bytes as u64;
        self.all.saturating_record(us);
        self.requests += 1;
        match outcome {
            Outcome::Ok => {
                self.oks += 1;
                self.ok.saturating_record(us);
            }
            Outcome::Refused(code) => {
                self.refused += 1;
                *self.refused_codes.entry(code).or_default() += 1;
            }
            Outcome::Error(code) => {
                self.errors += 1;
                *self.error_codes.entry(code).or_default() += 1;
            }
        }
    }

    fn merge(&mut self, o: Stats) {
        self.all.add(&o.all).expect("same bounds");
        self.ok.add(&o.ok).expect("same bounds");
        self.requests += o.requests;
        self.bytes += o.bytes;
        self.oks += o.oks;
        self.refused += o.refused;
        self.errors += o.errors;
        for (k, v) in o.refused_codes {
            *self.refused_codes.entry(k).or_default() += v;
        }
        for (k, v) in o.error_codes {
            *self.error_codes.entry(k).or_default() += v;
        }
    }
}

struct Shared {
    signer: Arc<Signer>,
    ids: Arc<Vec<String>>,
    scenario: Scenario,
    measure_from: Instant,
    stop_at: Instant,
    timeout: Duration,
    seed: u64,
    /// A paced worker sends one request per this interval (background mutations).
    pace: Option<Duration>,
    /// filter-sweep: the filtered listing a describe-filter-page worker sends instead of
    /// `instance-state=RUNNING`.
    case: Option<Arc<Case>>,
}

fn build_request(s: &Shared, rng: &mut StdRng) -> Request<Full<Bytes>> {
    let random_id = |rng: &mut StdRng| s.ids[rng.random_range(0..s.ids.len())].as_str();
    match s.scenario.wire() {
        Scenario::BaselineHealthz => s.signer.healthz(),
        Scenario::DescribeById => s.signer.tc3(
            "DescribeInstances",
            &json!({"InstanceIds": [random_id(rng)]}),
        ),
        Scenario::DescribeFilterPage if s.case.is_some() => {
            let case = s.case.as_deref().expect("checked");
            let last = case.total.saturating_sub(1) / 100;
            let page = rng.random_range(0..=last);
            match &case.query {
                Query::Tencent(filters) => s.signer.tc3(
                    "DescribeInstances",
                    &json!({"Filters": filters, "Limit": 100, "Offset": page * 100}),
                ),
                Query::Ecs(params) => s
                    .signer
                    .ecs("DescribeInstances", &ecs_page(params, 100, page + 1)),
            }
        }
        Scenario::DescribeFilterPage => {
            let max_offset = s.ids.len().saturating_sub(100);
            let offset = rng.random_range(0..=max_offset);
            s.signer.tc3(
                "DescribeInstances",
                &json!({"Filters": running_filter(), "Limit": 100, "Offset": offset}),
            )
        }
        Scenario::Reboot => s
            .signer
            .tc3("RebootInstances", &json!({"InstanceIds": [random_id(rng)]})),
        Scenario::All
        | Scenario::SlowClients
        | Scenario::AuthzOverhead
        | Scenario::FilterSweep
        | Scenario::ByIdUnderLoad => {
            unreachable!("expanded before running")
        }
    }
}

async fn worker(s: Arc<Shared>, index: usize) -> (Stats, Instant) {
    let mut rng = StdRng::seed_from_u64(s.seed.wrapping_add(index as u64));
    let mut conn = Conn::new(&s.signer.host);
    let mut stats = Stats::new();
    // Paced workers start spread over one interval, so their requests do not come in bursts.
    let mut next = Instant::now()
        + s.pace
            .map_or(Duration::ZERO, |p| p.mul_f64((index % 16) as f64 / 16.0));
    loop {
        if let Some(pace) = s.pace {
            next += pace;
            tokio::time::sleep_until(next.into()).await;
        }
        if Instant::now() >= s.stop_at {
            break;
        }
        // Signing happens before the clock starts: latency is request → full response.
        let req = build_request(&s, &mut rng);
        let start = Instant::now();
        let mut bytes = 0;
        let outcome = match tokio::time::timeout(s.timeout, conn.send(req)).await {
            Ok(Ok((status, body))) => {
                bytes = body.len();
                match s.case.as_deref().map(|c| &c.query) {
                    Some(Query::Ecs(_)) => classify_ecs(status, &body),
                    _ => classify(s.scenario.wire(), status, &body),
                }
            }
            Ok(Err(e)) => Outcome::Error(format!("transport: {}", root_cause(&e))),
            Err(_) => {
                conn.sender = None;
                Outcome::Error("timeout".into())
            }
        };
        let latency = start.elapsed();
        let failed_transport =
            matches!(&outcome, Outcome::Error(c) if c.starts_with("transport") || c == "timeout");
        if start >= s.measure_from {
            stats.record(latency, bytes, outcome);
        }
        if failed_transport {
            // Do not spin on a dead server.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    (stats, Instant::now())
}

fn root_cause(e: &anyhow::Error) -> String {
    e.chain()
        .last()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct ScenarioResult {
    scenario: &'static str,
    concurrency: usize,
    /// Seconds from the end of warm-up until the last worker finished.
    elapsed_s: f64,
    requests: u64,
    req_per_s: f64,
    /// Requests without error (for reboot: accepted, i.e. durably committed).
    ok: u64,
    ok_per_s: f64,
    /// Expected state-conflict refusals (reboot only).
    refused: u64,
    errors: u64,
    mean_ms: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Mean response body size.
    mean_response_bytes: f64,
    /// Latency of the requests without error only.
    ok_p50_ms: f64,
    ok_p99_ms: f64,
    refused_codes: BTreeMap<String, u64>,
    error_codes: BTreeMap<String, u64>,
    cpu: CpuSplit,
}

async fn run_scenario(
    cli: &Cli,
    signer: &Arc<Signer>,
    ids: &Arc<Vec<String>>,
    scenario: Scenario,
    concurrency: usize,
    server_pids: &[u32],
    seed: u64,
) -> Result<ScenarioResult> {
    let run = Run {
        cli,
        signer,
        ids,
        server_pids,
        seed,
    };
    run_case(&run, scenario, concurrency, None).await
}

/// What every measured window shares.
struct Run<'a> {
    cli: &'a Cli,
    signer: &'a Arc<Signer>,
    ids: &'a Arc<Vec<String>>,
    server_pids: &'a [u32],
    seed: u64,
}

/// One measured window of `scenario` (with `case`: the filter-sweep's listing).
async fn run_case(
    run: &Run<'_>,
    scenario: Scenario,
    concurrency: usize,
    case: Option<Arc<Case>>,
) -> Result<ScenarioResult> {
    let Run {
        cli,
        signer,
        ids,
        server_pids,
        seed,
    } = *run;
    let now = Instant::now();
    let measure_from = now + cli.warmup;
    let stop_at = measure_from + cli.duration;
    let shared = |scenario, pace| {
        Arc::new(Shared {
            signer: signer.clone(),
            ids: ids.clone(),
            scenario,
            measure_from,
            stop_at,
            timeout: cli.timeout,
            seed,
            pace,
            case: case.clone(),
        })
    };
    let measured = shared(scenario, None);
    let workers: Vec<_> = (0..concurrency)
        .map(|i| tokio::spawn(worker(measured.clone(), i)))
        .collect();
    // The under-load scenario's unmeasured load: 8 listing clients and paced reboots.
    let mut background = Vec::new();
    if scenario == Scenario::ByIdUnderLoad {
        const PACERS: usize = 16;
        let beside = shared;
        let pace = Duration::from_secs_f64(PACERS as f64 / cli.mutation_rate.max(1.0));
        for i in 0..8 {
            let s = beside(Scenario::DescribeFilterPage, None);
            background.push((
                Scenario::DescribeFilterPage,
                tokio::spawn(worker(s, 1000 + i)),
            ));
        }
        for i in 0..PACERS {
            let s = beside(Scenario::Reboot, Some(pace));
            background.push((Scenario::Reboot, tokio::spawn(worker(s, 2000 + i))));
        }
    }

    let total_ms = (cli.warmup + cli.duration).as_millis() as u64;
    let pb = ProgressBar::new(total_ms);
    pb.set_style(
        ProgressStyle::with_template("{msg:<32} {wide_bar} {elapsed}/{duration}")
            .expect("valid template"),
    );
    pb.set_message(format!("{} ×{concurrency}", scenario.name()));
    let tick = |pb: &ProgressBar| pb.set_position(now.elapsed().as_millis() as u64);
    while Instant::now() < measure_from {
        tick(&pb);
        tokio::time::sleep_until(
            (Instant::now() + Duration::from_millis(100))
                .min(measure_from)
                .into(),
        )
        .await;
    }
    let cpu_start = CpuMark::take(server_pids);
    while Instant::now() < stop_at {
        tick(&pb);
        tokio::time::sleep_until(
            (Instant::now() + Duration::from_millis(100))
                .min(stop_at)
                .into(),
        )
        .await;
    }
    let cpu = CpuMark::take(server_pids).since(&cpu_start);
    pb.finish_and_clear();
    let mut beside: BTreeMap<&str, Stats> = BTreeMap::new();
    for (s, task) in background {
        let (stats, _) = task.await.context("a background worker panicked")?;
        beside
            .entry(s.name())
            .or_insert_with(Stats::new)
            .merge(stats);
    }
    for (name, s) in &beside {
        let secs = cli.duration.as_secs_f64();
        eprintln!(
            "  beside it: {name} {:.1} req/s ({:.1} ok/s, {} errors, p99 {:.2} ms)",
            s.requests as f64 / secs,
            s.oks as f64 / secs,
            s.errors,
            s.all.value_at_quantile(0.99) as f64 / 1000.0
        );
    }

    let mut stats = Stats::new();
    let mut last = measure_from;
    for w in workers {
        let (s, finished) = w.await.context("a worker panicked")?;
        stats.merge(s);
        last = last.max(finished);
    }
    let elapsed = last.duration_since(measure_from).as_secs_f64().max(1e-9);
    let ms = |us: u64| us as f64 / 1000.0;
    let q = |h: &Histogram<u64>, p: f64| {
        if h.is_empty() {
            0.0
        } else {
            ms(h.value_at_quantile(p))
        }
    };
    Ok(ScenarioResult {
        scenario: scenario.name(),
        concurrency,
        elapsed_s: elapsed,
        requests: stats.requests,
        req_per_s: stats.requests as f64 / elapsed,
        ok: stats.oks,
        ok_per_s: stats.oks as f64 / elapsed,
        refused: stats.refused,
        errors: stats.errors,
        mean_ms: stats.all.mean() / 1000.0,
        p50_ms: q(&stats.all, 0.50),
        p90_ms: q(&stats.all, 0.90),
        p99_ms: q(&stats.all, 0.99),
        p999_ms: q(&stats.all, 0.999),
        max_ms: ms(stats.all.max()),
        mean_response_bytes: stats.bytes as f64 / stats.requests.max(1) as f64,
        ok_p50_ms: q(&stats.ok, 0.50),
        ok_p99_ms: q(&stats.ok, 0.99),
        refused_codes: stats.refused_codes,
        error_codes: stats.error_codes,
        cpu,
    })
}

// ---------------------------------------------------------------------------------------
// Output.

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}%"))
}

fn line(r: &ScenarioResult) -> String {
    let mut s = format!(
        "{:<21} concurrency={:<3} requests={:<8} req/s={:<9.1} p50={:.2}ms p99={:.2}ms max={:.2}ms errors={}",
        r.scenario, r.concurrency, r.requests, r.req_per_s, r.p50_ms, r.p99_ms, r.max_ms, r.errors
    );
    s += &format!(" resp={:.0}B", r.mean_response_bytes);
    if r.scenario == "reboot" {
        s += &format!(
            " | accepted={} ({:.1}/s, p50={:.2}ms p99={:.2}ms) refused={} (expected under load)",
            r.ok, r.ok_per_s, r.ok_p50_ms, r.ok_p99_ms, r.refused
        );
    }
    s += &format!(
        " | cpu: server {} bench {} other {} (machine {} busy of {} cores)",
        pct(r.cpu.server_pct),
        pct(r.cpu.bench_pct),
        pct(r.cpu.other_pct),
        pct(r.cpu.machine_busy_pct),
        r.cpu.cores
    );
    s
}

const TABLE_HEADER: &str = "| scenario | concurrency | requests | req/s | p50 ms | p99 ms | max ms | errors | accepted/s | refused | server CPU | bench CPU | other CPU |\n\
                            |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

fn table_row(r: &ScenarioResult) -> String {
    let (accepted, refused) = if r.scenario == "reboot" {
        (format!("{:.0}", r.ok_per_s), r.refused.to_string())
    } else {
        ("–".to_string(), "–".to_string())
    };
    format!(
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
        r.scenario,
        r.concurrency,
        r.requests,
        r.req_per_s,
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.errors,
        accepted,
        refused,
        pct(r.cpu.server_pct),
        pct(r.cpu.bench_pct),
        pct(r.cpu.other_pct),
    )
}

fn codes(map: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(5)
        .map(|(k, n)| format!("{k}×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Serialize)]
struct Report<'a> {
    target: &'a str,
    spawned: bool,
    fleet: usize,
    fleet_created: usize,
    fleet_setup_s: f64,
    duration_s: f64,
    warmup_s: f64,
    results: &'a [ScenarioResult],
}

// ---------------------------------------------------------------------------------------

fn host_of(target: &str) -> Result<String> {
    if target.starts_with("https://") {
        bail!("--target must be plain http:// (this client has no TLS)");
    }
    let rest = target.strip_prefix("http://").unwrap_or(target);
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        bail!("--target {target:?} has no host:port");
    }
    Ok(host.to_string())
}

async fn run(cli: &Cli, target: &str, server_pids: &[u32]) -> Result<()> {
    let host = host_of(target)?;
    let signer = Arc::new(Signer {
        host,
        secret_id: cli.secret_id.clone(),
        secret_key: cli.secret_key.clone(),
        region: cli.region.clone(),
    });
    let scenarios = cli.scenario.expand();
    let needs_fleet = scenarios.iter().any(|s| *s != Scenario::BaselineHealthz);
    let fleet = if needs_fleet {
        prepare_fleet(cli, &signer).await?
    } else {
        Fleet {
            ids: Vec::new(),
            created: 0,
            setup_secs: 0.0,
        }
    };
    let ids = Arc::new(fleet.ids);
    let seed = cli.seed.unwrap_or_else(|| rand::rng().random());
    if cli.scenario == Scenario::SlowClients {
        return slow_clients(cli, &signer, &ids, server_pids, seed).await;
    }
    if cli.scenario == Scenario::AuthzOverhead {
        return authz_overhead(cli, &signer, &ids, server_pids, seed).await;
    }
    if cli.scenario == Scenario::FilterSweep {
        let run = Run {
            cli,
            signer: &signer,
            ids: &ids,
            server_pids,
            seed,
        };
        return filter_sweep(&run).await;
    }
    let mut results = Vec::new();
    for &scenario in &scenarios {
        for &concurrency in &cli.concurrency {
            let r =
                run_scenario(cli, &signer, &ids, scenario, concurrency, server_pids, seed).await?;
            if !cli.json {
                println!("{}", line(&r));
            }
            if !r.error_codes.is_empty() {
                eprintln!("  errors: {}", codes(&r.error_codes));
            }
            if !r.refused_codes.is_empty() && !cli.json {
                eprintln!("  refused: {}", codes(&r.refused_codes));
            }
            results.push(r);
        }
    }
    if cli.json {
        let report = Report {
            target,
            spawned: cli.spawn.is_some(),
            fleet: ids.len(),
            fleet_created: fleet.created,
            fleet_setup_s: fleet.setup_secs,
            duration_s: cli.duration.as_secs_f64(),
            warmup_s: cli.warmup.as_secs_f64(),
            results: &results,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!("{TABLE_HEADER}");
        for r in &results {
            println!("{}", table_row(r));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// filter-sweep: each documented listing filter of each dialect, alone.

/// A listing a filter-sweep window pages through.
enum Query {
    /// Tencent DescribeInstances `Filters`.
    Tencent(Value),
    /// ECS DescribeInstances parameters (besides the paging).
    Ecs(Vec<(String, String)>),
}

/// One row of the sweep: the listing and how many instances it matches.
struct Case {
    label: String,
    query: Query,
    total: usize,
}

/// The Tencent filters (INSTANCE_FILTERS of the Tencent dialect, and `tag:<key>`) with values
/// read off `one` instance; filters the fleet has no value for (tags, security groups) get one
/// that matches nothing.
fn tencent_cases(one: &Value) -> Vec<(String, Value)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let first = |v: &Value| v.get(0).map(text).unwrap_or_default();
    let tag = one["Tags"].get(0);
    let tag_key = tag.map_or("bench-none".into(), |t| text(&t["Key"]));
    let tag_value = tag.map_or("bench-none".into(), |t| text(&t["Value"]));
    let sg = one["SecurityGroupIds"]
        .get(0)
        .map_or("sg-zzzzzzzz".into(), text);
    [
        ("zone", text(&one["Placement"]["Zone"])),
        ("project-id", text(&one["Placement"]["ProjectId"])),
        ("instance-id", text(&one["InstanceId"])),
        ("uuid", text(&one["Uuid"])),
        ("instance-name", text(&one["InstanceName"])),
        ("instance-state", text(&one["InstanceState"])),
        ("instance-charge-type", text(&one["InstanceChargeType"])),
        ("private-ip-address", first(&one["PrivateIpAddresses"])),
        ("instance-type", text(&one["InstanceType"])),
        ("image-id", text(&one["ImageId"])),
        ("tag-key", tag_key.clone()),
        ("tag-value", tag_value.clone()),
        ("vpc-id", text(&one["VirtualPrivateCloud"]["VpcId"])),
        ("subnet-id", text(&one["VirtualPrivateCloud"]["SubnetId"])),
        ("security-group-id", sg),
    ]
    .into_iter()
    .map(|(name, v)| (name.to_string(), json!([{"Name": name, "Values": [v]}])))
    .chain([(
        format!("tag:{tag_key}"),
        json!([{"Name": format!("tag:{tag_key}"), "Values": [tag_value]}]),
    )])
    .collect()
}

/// The ECS DescribeInstances filter parameters with values read off `one` instance.
fn ecs_cases(one: &Value) -> Vec<(String, Vec<(String, String)>)> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let name = text(&one["InstanceName"]);
    [
        ("ZoneId", text(&one["ZoneId"])),
        ("Status", text(&one["Status"])),
        ("ImageId", text(&one["ImageId"])),
        ("InstanceType", text(&one["InstanceType"])),
        ("InstanceName", name.clone()),
        (
            "InstanceName (prefix*)",
            format!("{}*", name.get(..name.len().min(6)).unwrap_or("")),
        ),
        ("InstanceIds", json!([text(&one["InstanceId"])]).to_string()),
        ("KeyPairName", text(&one["KeyPairName"])),
        ("Tag.1.Key", "bench-none".into()),
        ("LockReason", "financial".into()),
    ]
    .into_iter()
    .map(|(label, v)| {
        let param = label.split(' ').next().unwrap_or(label).to_string();
        (label.to_string(), vec![(param, v)])
    })
    .collect()
}

/// An ECS listing's parameters with page `number` (from 1) of `size`.
fn ecs_page(params: &[(String, String)], size: usize, number: usize) -> Vec<(&str, String)> {
    params
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .chain([
            ("PageSize", size.to_string()),
            ("PageNumber", number.to_string()),
        ])
        .collect()
}

/// How many instances a listing matches (a page of one).
async fn case_total(conn: &mut Conn, signer: &Signer, q: &Query) -> Result<usize> {
    let total = match q {
        Query::Tencent(filters) => {
            let r = call(
                conn,
                signer,
                "DescribeInstances",
                json!({"Filters": filters, "Limit": 1}),
            )
            .await?;
            r["TotalCount"].as_u64()
        }
        Query::Ecs(params) => {
            let r = ecs_call(conn, signer, "DescribeInstances", &ecs_page(params, 1, 1)).await?;
            r["TotalCount"].as_u64()
        }
    };
    total
        .map(|t| t as usize)
        .ok_or_else(|| anyhow!("DescribeInstances: no TotalCount"))
}

async fn filter_sweep(run: &Run<'_>) -> Result<()> {
    let mut conn = Conn::new(&run.signer.host);
    let tencent = call(
        &mut conn,
        run.signer,
        "DescribeInstances",
        json!({"Limit": 1}),
    )
    .await?;
    let ecs = ecs_call(
        &mut conn,
        run.signer,
        "DescribeInstances",
        &[("PageSize", "1".into())],
    )
    .await?;
    let (Some(t_one), Some(e_one)) = (
        tencent["InstanceSet"].get(0),
        ecs["Instances"]["Instance"].get(0),
    ) else {
        bail!("filter-sweep: the fleet is empty");
    };
    let mut queries: Vec<(String, Query)> = tencent_cases(t_one)
        .into_iter()
        .map(|(l, f)| (format!("Tencent {l}"), Query::Tencent(f)))
        .collect();
    queries.extend(
        ecs_cases(e_one)
            .into_iter()
            .map(|(l, p)| (format!("ECS {l}"), Query::Ecs(p))),
    );
    let concurrency = run.cli.concurrency.first().copied().unwrap_or(8);
    println!("| filter | matches | pages/s | p50 ms | p99 ms | max ms | errors | server CPU |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, query) in queries {
        if !label.starts_with(&run.cli.sweep_only) {
            continue;
        }
        let total = match case_total(&mut conn, run.signer, &query).await {
            Ok(t) => t,
            Err(e) => {
                // One filter the server cannot answer in time does not end the sweep.
                println!("| {label} | – | – | – | – | – | {} | – |", root_cause(&e));
                conn = Conn::new(&run.signer.host);
                continue;
            }
        };
        let case = Arc::new(Case {
            label,
            query,
            total,
        });
        let r = run_case(
            run,
            Scenario::DescribeFilterPage,
            concurrency,
            Some(case.clone()),
        )
        .await?;
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {}{} | {} |",
            case.label,
            case.total,
            r.req_per_s,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.errors,
            if r.error_codes.is_empty() {
                String::new()
            } else {
                format!(" ({})", codes(&r.error_codes))
            },
            r.cpu.server_pct.map_or("–".into(), |c| format!("{c:.0}%")),
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// authz-overhead: the same describe-by-id signed by the account root and by a sub-user.

/// A CAM sub-user of the signer's account with [`AUTHZ_POLICIES`] attached policies, made
/// through CAM: 19 that do not allow DescribeInstances (each allows some other CVM actions
/// and denies one more; every statement is evaluated, as an explicit deny anywhere wins) and
/// one read-only policy that does. Returns the sub-user's signer.
async fn authz_sub_user(root: &Signer) -> Result<Signer> {
    let mut conn = Conn::new(&root.host);
    let name = format!("bench-{}", unix_now());
    let user = cam_call(&mut conn, root, "AddUser", json!({"Name": name})).await?;
    let uin = user["Uin"]
        .as_u64()
        .ok_or_else(|| anyhow!("AddUser: no Uin"))?;
    let others = [
        "RebootInstances",
        "StartInstances",
        "StopInstances",
        "ResetInstancesPassword",
        "CreateKeyPair",
        "DeleteKeyPairs",
        "EnterRescueMode",
        "ExitRescueMode",
        "RunInstances",
        "TerminateInstances",
    ];
    for i in 0..AUTHZ_POLICIES {
        let doc = if i == AUTHZ_POLICIES - 1 {
            json!({"version": "2.0", "statement": [
                {"effect": "allow", "action": ["cvm:Describe*"], "resource": "*"}]})
        } else {
            let allow = others[i % others.len()];
            let deny = others[(i + 1) % others.len()];
            json!({"version": "2.0", "statement": [
                {"effect": "allow", "action": [format!("cvm:{allow}"), "cvm:DescribeZones"], "resource": "qcs::cvm:*:*:*"},
                {"effect": "deny", "action": format!("cvm:{deny}"), "resource": "*",
                 "condition": {"ip_equal": {"qcs:ip": ["10.0.0.0/8"]}}}]})
        };
        let policy = cam_call(
            &mut conn,
            root,
            "CreatePolicy",
            json!({"PolicyName": format!("{name}-{i}"), "PolicyDocument": doc.to_string()}),
        )
        .await?;
        cam_call(
            &mut conn,
            root,
            "AttachUserPolicy",
            json!({"PolicyId": policy["PolicyId"], "AttachUin": uin}),
        )
        .await?;
    }
    let key = cam_call(
        &mut conn,
        root,
        "CreateAccessKey",
        json!({"TargetUin": uin}),
    )
    .await?;
    let key = &key["AccessKey"];
    Ok(Signer {
        host: root.host.clone(),
        secret_id: key["AccessKeyId"].as_str().unwrap_or_default().to_string(),
        secret_key: key["SecretAccessKey"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        region: root.region.clone(),
    })
}

async fn authz_overhead(
    cli: &Cli,
    root: &Arc<Signer>,
    ids: &Arc<Vec<String>>,
    server_pids: &[u32],
    seed: u64,
) -> Result<()> {
    let sub = Arc::new(authz_sub_user(root).await?);
    println!(
        "sub-user key {} with {AUTHZ_POLICIES} attached CAM policies",
        sub.secret_id
    );
    let mut results = Vec::new();
    for &concurrency in &cli.concurrency {
        let (mut root_rps, mut sub_rps) = (Vec::new(), Vec::new());
        // Alternate, so that drift in the machine's load hits both sides alike.
        for round in 0..cli.rounds.max(1) {
            for (who, signer) in [("root", root), ("sub-user", &sub)] {
                let r = run_scenario(
                    cli,
                    signer,
                    ids,
                    Scenario::DescribeById,
                    concurrency,
                    server_pids,
                    seed.wrapping_add(round),
                )
                .await?;
                println!("{who:>8}: {}", line(&r));
                if !r.error_codes.is_empty() {
                    eprintln!("  errors: {}", codes(&r.error_codes));
                }
                if who == "root" {
                    root_rps.push(r.ok_per_s);
                } else {
                    sub_rps.push(r.ok_per_s);
                }
                results.push((who, r));
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (root_mean, sub_mean) = (mean(&root_rps), mean(&sub_rps));
        let mut pair_losses: Vec<f64> = root_rps
            .iter()
            .zip(&sub_rps)
            .map(|(r, s)| 100.0 * (1.0 - s / r))
            .collect();
        let pairs: Vec<String> = pair_losses.iter().map(|l| format!("{l:.1}%")).collect();
        pair_losses.sort_by(f64::total_cmp);
        let median = match pair_losses.len() {
            0 => 0.0,
            n if n % 2 == 1 => pair_losses[n / 2],
            n => (pair_losses[n / 2 - 1] + pair_losses[n / 2]) / 2.0,
        };
        println!(
            "authz-overhead c={concurrency}: root {root_mean:.0} req/s, sub-user ({AUTHZ_POLICIES} policies) {sub_mean:.0} req/s, loss of the means {:.1}%, per pair [{}], median pair loss {median:.1}%",
            100.0 * (1.0 - sub_mean / root_mean),
            pairs.join(", ")
        );
    }
    println!();
    println!("{TABLE_HEADER}");
    for (who, r) in &results {
        println!("{} ({who})", table_row(r));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// slow-clients: held idle / slowloris connections beside the measured traffic.

#[derive(Default)]
struct SlowStats {
    /// Connections opened (first opens and re-opens).
    opened: AtomicU64,
    /// Connections the server closed.
    dropped: AtomicU64,
    /// Failed connects (refused, timed out, out of fds).
    connect_errors: AtomicU64,
    /// Connections open right now.
    open: AtomicU64,
}

/// One held connection slot: connect, stall (send nothing, or drip a never-ending head),
/// and when the server closes it, count the drop and connect again, until `stop`.
async fn slow_client(
    host: String,
    drip: bool,
    drip_every: Duration,
    stats: Arc<SlowStats>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while !*stop.borrow() {
        let connect = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect(&host),
        );
        let mut s = match connect.await {
            Ok(Ok(s)) => s,
            _ => {
                stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        stats.opened.fetch_add(1, Ordering::Relaxed);
        stats.open.fetch_add(1, Ordering::Relaxed);
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nX-TC-Action: DescribeInstances\r\nX-Slow: "
        );
        let mut alive = !drip || s.write_all(head.as_bytes()).await.is_ok();
        let mut buf = [0u8; 512];
        let mut tick = tokio::time::interval(drip_every);
        tick.tick().await;
        while alive {
            tokio::select! {
                r = s.read(&mut buf) => {
                    // EOF or reset: the server dropped us (a reply would also end the stall).
                    if !matches!(r, Ok(n) if n > 0) {
                        alive = false;
                    }
                }
                _ = tick.tick(), if drip => {
                    if s.write_all(b"a").await.is_err() {
                        alive = false;
                    }
                }
                _ = stop.changed() => break,
            }
        }
        stats.open.fetch_sub(1, Ordering::Relaxed);
        if !alive {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A counter from the server's /metrics (summed over the lines that start with `prefix`).
async fn server_counter(signer: &Signer, prefix: &str) -> Option<f64> {
    let mut conn = Conn::new(&signer.host);
    let req = Request::get("/metrics")
        .header(header::HOST, &signer.host)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let (status, body) = conn.send(req).await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    Some(
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

#[derive(Serialize)]
struct SlowReport {
    slow_connections: usize,
    slow_kind: String,
    unloaded: ScenarioResult,
    loaded: ScenarioResult,
    /// loaded req/s ÷ unloaded req/s.
    kept: f64,
    /// Held connections open when the loaded measurement started.
    open_at_start: u64,
    /// During the loaded measurement (warm-up included): connections the server closed, and
    /// re-opens.
    dropped: u64,
    reopened: u64,
    connect_errors: u64,
    /// The server's own count of connections it closed for a header or idle timeout during
    /// the loaded measurement (from /metrics).
    server_timed_out: Option<f64>,
}

async fn slow_clients(
    cli: &Cli,
    signer: &Arc<Signer>,
    ids: &Arc<Vec<String>>,
    server_pids: &[u32],
    seed: u64,
) -> Result<()> {
    let concurrency = cli.concurrency.first().copied().unwrap_or(32);
    let scenario = Scenario::DescribeById;
    eprintln!("slow-clients: {} unloaded ×{concurrency}", scenario.name());
    let unloaded = run_scenario(cli, signer, ids, scenario, concurrency, server_pids, seed).await?;
    if !cli.json {
        println!("{}", line(&unloaded));
    }

    let stats = Arc::new(SlowStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut holders = Vec::new();
    for i in 0..cli.slow_connections {
        let drip = match cli.slow_kind {
            SlowKind::Idle => false,
            SlowKind::Drip => true,
            SlowKind::Mixed => i % 2 == 1,
        };
        holders.push(tokio::spawn(slow_client(
            signer.host.clone(),
            drip,
            cli.drip_every,
            stats.clone(),
            stop_rx.clone(),
        )));
    }
    // Wait until (nearly) all are open, at most 10 s.
    let ramp = Instant::now();
    while (stats.open.load(Ordering::Relaxed) as usize) < cli.slow_connections * 95 / 100
        && ramp.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let open_at_start = stats.open.load(Ordering::Relaxed);
    eprintln!(
        "slow-clients: {open_at_start} of {} held connections open ({:?} {:?}); {} loaded ×{concurrency}",
        cli.slow_connections,
        cli.slow_kind,
        ramp.elapsed(),
        scenario.name()
    );
    let timed_out = "nubis_connections_timed_out_total";
    let server_before = server_counter(signer, timed_out).await;
    let (d0, o0, e0) = (
        stats.dropped.load(Ordering::Relaxed),
        stats.opened.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
    );
    let mut loaded =
        run_scenario(cli, signer, ids, scenario, concurrency, server_pids, seed).await?;
    loaded.scenario = "describe-by-id+slow";
    let (d1, o1, e1) = (
        stats.dropped.load(Ordering::Relaxed),
        stats.opened.load(Ordering::Relaxed),
        stats.connect_errors.load(Ordering::Relaxed),
    );
    let server_after = server_counter(signer, timed_out).await;
    let _ = stop_tx.send(true);
    for h in holders {
        let _ = h.await;
    }
    let report = SlowReport {
        slow_connections: cli.slow_connections,
        slow_kind: format!("{:?}", cli.slow_kind).to_lowercase(),
        kept: loaded.req_per_s / unloaded.req_per_s.max(1e-9),
        open_at_start,
        dropped: d1 - d0,
        reopened: o1 - o0,
        connect_errors: e1 - e0,
        server_timed_out: match (server_before, server_after) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        unloaded,
        loaded,
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!("{}", line(&report.loaded));
    println!(
        "slow-clients: kept {:.0}% of the unloaded throughput ({:.0} → {:.0} req/s) with {} {} connections held ({} open at the start); during the loaded run the server dropped {} of them ({} re-opened, {} connect errors; server-side timeouts: {})",
        100.0 * report.kept,
        report.unloaded.req_per_s,
        report.loaded.req_per_s,
        report.slow_connections,
        report.slow_kind,
        report.open_at_start,
        report.dropped,
        report.reopened,
        report.connect_errors,
        report
            .server_timed_out
            .map_or_else(|| "n/a".to_string(), |v| format!("{v:.0}")),
    );
    println!();
    println!("{TABLE_HEADER}");
    println!("{}", table_row(&report.unloaded));
    println!("{}", table_row(&report.loaded));
    Ok(())
}

/// Raises the soft open-file limit to the hard one: a thousand held connections need it.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value of the right type.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

async fn main_async(cli: Cli) -> Result<()> {
    if cli.concurrency.contains(&0) {
        bail!("--concurrency must be at least 1");
    }
    let (spawned, target) = match &cli.spawn {
        Some(bin) => {
            let (s, target) = Spawned::start(bin, cli.data.as_deref(), &cli).await?;
            (Some(s), target)
        }
        None => (None, cli.target.clone().expect("clap requires --target")),
    };
    let server_pids = match &spawned {
        Some(s) => vec![s.pid],
        None => cli.server_pid.clone(),
    };
    let result = tokio::select! {
        r = run(&cli, &target, &server_pids) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if let Some(s) = spawned {
        s.stop().await;
    }
    result
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The spawned server inherits it too.
    raise_nofile();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    rt.build()?.block_on(main_async(cli))
}
