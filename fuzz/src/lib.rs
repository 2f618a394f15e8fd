//! Shared harness for the fuzz targets: an in-process engine (sim driver, time scale 0, SQLite
//! in a temp dir), the three dialects over it, the whole axum router, signing helpers, and the
//! well-formedness checks every answer must pass.
//!
//! The server crate is a binary, so its HTTP modules are compiled in here by path (they refer
//! to each other as `crate::config`, `crate::http`, `crate::admin`, hence the crate root).

#![allow(clippy::missing_panics_doc)]

#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/admin.rs"]
pub mod admin;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/agent.rs"]
pub mod agent;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/audit.rs"]
pub mod audit;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/authz.rs"]
pub mod authz;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/config.rs"]
pub mod config;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/console/mod.rs"]
pub mod console;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/guard.rs"]
pub mod guard;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/http.rs"]
pub mod http;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/limits.rs"]
pub mod limits;
#[allow(dead_code, unused_imports)]
#[path = "../../crates/server/src/peer.rs"]
pub mod peer;

use nubis_api_aliyun::AliyunApi;
use nubis_api_openstack::OpenStackApi;
use nubis_api_tencent::TencentApi;
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const KEY_ID: &str = "fuzzkey";
pub const SECRET: &str = "fuzzsecret";
pub const PASSWORD: &str = "Fuzz-Passw0rd1";
pub const HOST: &str = "127.0.0.1:8080";
/// The clock every dialect is handed (and signatures are made for): fixed, so runs repeat.
pub const NOW: i64 = 1_764_547_200; // 2025-12-01T00:00:00Z

/// Above this many instances the engine is replaced by a fresh one, so that millions of
/// RunInstances do not make every later Describe slower (the fuzzer must stay fast).
const MAX_INSTANCES: usize = 300;

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// A fresh engine on a temp-dir SQLite store, bootstrapped with [`KEY_ID`]/[`SECRET`] and the
/// Keystone admin [`PASSWORD`]. The directory lives as long as the process.
pub fn new_engine() -> Engine {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.keep();
    new_engine_in(&path)
}

fn new_engine_in(path: &std::path::Path) -> Engine {
    runtime().block_on(async {
        let store = SqliteStore::open(&path.join("nubis.db")).expect("store");
        let secrets = SecretBox::load_or_create(path.join("master.key")).expect("secrets");
        let engine = Engine::start(Arc::new(store), Arc::new(SimDriver::new(0.0)), secrets)
            .await
            .expect("engine");
        engine
            .bootstrap(Some((KEY_ID.into(), SECRET.into())), Some(PASSWORD.into()))
            .await
            .expect("bootstrap");
        engine
    })
}

fn instance_count(engine: &Engine) -> usize {
    engine.state_counts().into_values().sum()
}

pub struct Dialects {
    _dir: tempfile::TempDir,
    calls: std::cell::Cell<u32>,
    pub engine: Engine,
    pub tencent: TencentApi,
    pub aliyun: AliyunApi,
    pub openstack: OpenStackApi,
}

thread_local! {
    static DIALECTS: RefCell<Option<Rc<Dialects>>> = const { RefCell::new(None) };
}

/// Calls after which the dialects are replaced: the fixed clock never expires a nonce, and a
/// key holds at most 100,000 live ones.
const MAX_CALLS: u32 = 50_000;

/// The three dialects over one engine (rate limits off), replaced when the fleet grew large
/// or after [`MAX_CALLS`].
pub fn dialects() -> Rc<Dialects> {
    DIALECTS.with(|d| {
        let mut d = d.borrow_mut();
        if let Some(cur) = d.as_ref()
            && cur.calls.get() < MAX_CALLS
            && instance_count(&cur.engine) <= MAX_INSTANCES
        {
            cur.calls.set(cur.calls.get() + 1);
            return cur.clone();
        }
        // Drop the old one (and its directory) first.
        *d = None;
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = new_engine_in(dir.path());
        let fresh = Rc::new(Dialects {
            _dir: dir,
            calls: std::cell::Cell::new(0),
            tencent: TencentApi::new(engine.clone(), false),
            aliyun: AliyunApi::new(engine.clone(), false),
            openstack: OpenStackApi::new(engine.clone(), false),
            engine,
        });
        *d = Some(fresh.clone());
        fresh
    })
}

/// The whole in-process router of `nubis serve` (built once per process: it installs the
/// global metrics recorder).
pub fn router() -> axum::Router {
    static R: std::sync::OnceLock<axum::Router> = std::sync::OnceLock::new();
    R.get_or_init(|| {
        let cfg = config::Config::resolve(config::ServeArgs::default()).expect("config");
        let engine = new_engine();
        let _guard = runtime().enter();
        http::router(engine, &cfg).expect("router")
    })
    .clone()
}

/// A unique number per call (for Tencent's numeric legacy `Nonce`).
pub fn nonce_n() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A unique nonce per call (a replayed one is refused).
pub fn nonce() -> String {
    format!("fuzz-{}", nonce_n())
}

/// `YYYY-MM-DDThh:mm:ssZ` of [`NOW`].
pub fn aliyun_stamp() -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .expect("format")
}

pub fn pairs(s: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Splits `data` at the first `\n`: (line, rest).
pub fn line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `name: value` lines up to an empty line → (lower-case headers, rest).
pub fn headers(mut data: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (l, rest) = line(data);
        data = rest;
        if l.is_empty() {
            break;
        }
        let l = text(l);
        let (k, v) = l.split_once(':').unwrap_or((l.as_str(), ""));
        out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    (out, data)
}

/// The body must be one JSON value; panics (= a fuzzer finding) with the body otherwise.
pub fn must_json(what: &str, body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(e) => panic!(
            "{what}: malformed JSON ({e}): {:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

/// The body must be a well-formed XML document.
pub fn must_xml(what: &str, body: &[u8]) {
    let s = match std::str::from_utf8(body) {
        Ok(s) => s,
        Err(e) => panic!("{what}: XML not UTF-8 ({e})"),
    };
    if let Err(e) = roxmltree::Document::parse(s) {
        panic!("{what}: malformed XML ({e}): {s:?}");
    }
}

/// A dialect's HTTP status for bad input: never a 5xx.
pub fn must_not_5xx(what: &str, status: u16, body: &[u8]) {
    assert!(
        status < 500,
        "{what}: HTTP {status}: {:?}",
        String::from_utf8_lossy(body)
    );
}

/// One request through the whole router, as `nubis serve` would get it from hyper.
/// `None` when the method, URI or a header cannot exist on the wire (hyper refuses those).
pub fn serve(
    method: &[u8],
    uri: &[u8],
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Option<(u16, Option<String>, Vec<u8>)> {
    use axum::http::{HeaderName, HeaderValue, Method, Request, Uri};
    use tower::ServiceExt as _;
    let method = Method::from_bytes(method).ok()?;
    let uri = Uri::try_from(uri).ok()?;
    uri.path().starts_with('/').then_some(())?;
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) else {
            continue;
        };
        req = req.header(k, v);
    }
    let req = req.body(axum::body::Body::from(body)).ok()?;
    let app = router();
    runtime().block_on(async move {
        let resp = app.oneshot(req).await.expect("router is infallible");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .expect("response body");
        Some((status, ct, body.to_vec()))
    })
}

/// Checks every HTTP answer: no 5xx (501 is Nova's documented "not implemented"), and a
/// body that claims to be JSON or XML is well-formed.
pub fn check_reply(what: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    if status != 501 {
        must_not_5xx(what, status, body);
    }
    let ct = content_type.unwrap_or("");
    if body.is_empty() {
        return;
    }
    if ct.contains("json") {
        must_json(what, body);
    } else if ct.contains("xml") {
        must_xml(what, body);
    }
}

/// An admin Keystone token for the current engine, issued again every 2,000 calls (the
/// fuzzer may revoke it, or push it out of the per-user bound). When the login is refused
/// (throttled after the fuzzer's wrong passwords) the previous token is kept.
pub fn openstack_token(d: &Rc<Dialects>) -> String {
    thread_local! {
        static TOKEN: RefCell<Option<(usize, u32, String)>> = const { RefCell::new(None) };
    }
    let key = Rc::as_ptr(d) as usize;
    TOKEN.with(|t| {
        let mut t = t.borrow_mut();
        if let Some((k, uses, tok)) = t.as_mut()
            && *k == key
            && *uses < 2000
        {
            *uses += 1;
            return tok.clone();
        }
        let body = serde_json::json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
        .to_string();
        let reply = runtime().block_on(d.openstack.handle(nubis_api_openstack::RawRequest {
            http: nubis_auth::HttpRequestParts {
                method: "POST",
                host: "127.0.0.1:8080",
                path: "/identity/v3/auth/tokens",
                raw_query: "",
                headers: &[("content-type".into(), "application/json".into())],
                body: body.as_bytes(),
                peer: None,
            },
        }));
        let fresh = reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-subject-token"))
            .map(|(_, v)| v.clone());
        let tok = match (fresh, t.as_ref()) {
            (Some(tok), _) => tok,
            (None, Some((k, _, old))) if *k == key => old.clone(),
            (None, _) => String::new(),
        };
        *t = Some((key, 0, tok.clone()));
        tok
    })
}
