//! The web console under `/console` (docs/console.md): server-rendered pages with a little
//! progressive enhancement (live updates over server-sent events), assets compiled into the
//! binary. It is one more client: what it shows is read from the engine as the signed-in
//! principal sees it, and every change it makes is a request to Nova (a Keystone session) or
//! Tencent CVM (an access key session) run through that API's own pipeline
//! ([`backend`]).

mod backend;
mod health;
mod pages;
mod serial;
mod session;

use crate::authz::PolicyAuthorizer;
use crate::config::Config;
use crate::http::AppState;
use crate::peer::Peer;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use backend::{Act, KeyRef, NewInstance};
use nubis_core::{Instance, InstanceState, KeyPair, Principal, catalog};
use nubis_pipeline::Authorizer;
use session::{Kind, Session};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

/// Every console route: (path below `/console`, its methods, whether it needs a session).
/// The router is built from this table and a test walks it without a session.
pub const ROUTES: &[(&str, &[&str], bool)] = &[
    ("/", &["GET"], true),
    ("/login", &["GET", "POST"], false),
    ("/logout", &["POST"], true),
    ("/fleet", &["GET"], true),
    ("/events", &["GET"], true),
    ("/operations", &["GET"], true),
    ("/health", &["GET"], true),
    ("/instances", &["POST"], true),
    ("/instances/new", &["GET"], true),
    ("/instances/{id}", &["GET"], true),
    ("/instances/{id}/{action}", &["GET", "POST"], true),
    ("/instances/{id}/serial", &["GET"], true),
    ("/instances/{id}/serial/ws", &["GET"], true),
    ("/keypairs", &["GET", "POST"], true),
    ("/keypairs/{id}/delete", &["GET", "POST"], true),
    ("/assets/{file}", &["GET"], false),
];

/// How the console is served.
#[derive(Debug, Clone, Copy)]
struct Settings {
    /// Cookies are `Secure` (the public URL is https).
    secure: bool,
}

/// The instance actions, in the order the instance page offers them.
pub const ACTIONS: &[(&str, &str)] = &[
    ("start", "Start"),
    ("stop", "Stop"),
    ("reboot", "Reboot"),
    ("enter_rescue", "Enter rescue mode"),
    ("exit_rescue", "Exit rescue mode"),
    ("reset_password", "Reset password"),
    ("associate", "Associate key pair"),
    ("disassociate", "Disassociate key pair"),
    ("terminate", "Terminate"),
];

/// Rows per fleet page.
const PAGE_SIZE: usize = 20;
/// Most instances sorted in memory for a sort other than by creation.
const MAX_SORTED: usize = 10_000;
/// Longest search text and form field read.
const MAX_FIELD: usize = 4096;
/// Live update streams open at once (each holds a connection).
const MAX_STREAMS: usize = 256;
static STREAMS: AtomicUsize = AtomicUsize::new(0);

pub fn routes(cfg: &Config) -> Router<AppState> {
    routes_with(Settings {
        secure: cfg
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://")),
    })
}

fn routes_with(settings: Settings) -> Router<AppState> {
    let mut r = Router::new();
    for (path, _, _) in ROUTES {
        r = match *path {
            "/" => r.route(path, get(root)),
            "/login" => r.route(path, get(login_page).post(login)),
            "/logout" => r.route(path, axum::routing::post(logout)),
            "/fleet" => r.route(path, get(fleet)),
            "/events" => r.route(path, get(events)),
            "/operations" => r.route(path, get(operations)),
            "/health" => r.route(path, get(health_page)),
            "/instances" => r.route(path, axum::routing::post(create)),
            "/instances/new" => r.route(path, get(create_page)),
            "/instances/{id}" => r.route(path, get(instance_page)),
            "/instances/{id}/{action}" => r.route(path, get(confirm_page).post(act)),
            "/instances/{id}/serial" => r.route(path, get(serial_page)),
            "/instances/{id}/serial/ws" => r.route(path, get(serial_ws)),
            "/keypairs" => r.route(path, get(keypairs).post(create_key)),
            "/keypairs/{id}/delete" => r.route(path, get(confirm_delete_key).post(delete_key)),
            "/assets/{file}" => r.route(path, get(asset)),
            other => unreachable!("console route {other} has no handler"),
        };
    }
    r.route_layer(axum::middleware::from_fn(log_request))
        .layer(axum::Extension(settings))
        .layer(axum::middleware::map_response(security_headers))
}

/// One structured log line and the request metrics per console request, like every API's,
/// under a RequestId of its own (`X-Nubis-Request-Id`); the route's pattern is the label.
async fn log_request(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let start = std::time::Instant::now();
    let label = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|m| {
            let rest = m.as_str().strip_prefix("/console").unwrap_or(m.as_str());
            let rest = if rest.is_empty() { "/" } else { rest };
            ROUTES
                .iter()
                .find(|(p, _, _)| *p == rest)
                .map(|(p, _, _)| *p)
        })
        .unwrap_or("other");
    let action = format!("{} {label}", req.method());
    let request_id = nubis_core::ids::new_request_id();
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-nubis-request-id", v);
    }
    let status = resp.status().as_u16();
    crate::http::observe_labelled(
        "console",
        &request_id,
        &action,
        label,
        &status.to_string(),
        status,
        start,
    );
    resp
}

/// Every console response: a strict Content-Security-Policy (scripts and styles only from the
/// console's own files, no inline code, no framing), no caching, no sniffing, no referrer to other sites (`same-origin`: with `no-referrer` a browser sends
/// `Origin: null` on a form post, which the origin check would refuse).
async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    // A page that sets its own (the serial console's) keeps it.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Starts what the console keeps in the background: the health page's sampler.
pub fn start(
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    engine: nubis_engine::Engine,
) {
    health::start(prometheus, engine);
}

/// The health page's charts and the fleet's state counts (whole node: admins only).
fn health_panel(s: &AppState) -> maud::Markup {
    let samples: Vec<health::Sample> = health::history().lock().samples.iter().cloned().collect();
    let col = |f: fn(&health::Sample) -> f64| samples.iter().map(f).collect::<Vec<f64>>();
    let mut states: Vec<(String, usize)> = s
        .engine
        .state_counts()
        .into_iter()
        .map(|(st, n)| (nubis_api_tencent::render::state(st).to_string(), n))
        .collect();
    states.sort();
    pages::health_panel(
        &[
            health::chart(
                "Requests",
                "per second",
                &[
                    ("all", "s1", col(|x| x.requests_per_s)),
                    ("errors", "s2", col(|x| x.errors_per_s)),
                ],
            ),
            health::chart(
                "Latency",
                "ms",
                &[
                    ("p50", "s1", col(|x| x.p50_ms)),
                    ("p99", "s2", col(|x| x.p99_ms)),
                ],
            ),
            health::chart(
                "Operations",
                "finished per second, running",
                &[
                    ("finished", "s1", col(|x| x.operations_per_s)),
                    ("running", "s2", col(|x| x.running)),
                ],
            ),
        ],
        &states,
        samples.len(),
        samples.first().map(|x| x.at_ms),
    )
}

async fn health_page(State(s): State<AppState>, Page(who): Page) -> Response {
    if !who.principal.is_admin {
        let page = pages::message(
            &who,
            "Forbidden",
            "The health page shows the whole node: admins only.",
        );
        return (StatusCode::FORBIDDEN, html(page)).into_response();
    }
    html(pages::health(&who, health_panel(&s)))
}

/// `/console`: the fleet, or the sign-in without a session.
async fn root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match who(&s, &headers, true).await {
        Ok(_) => Redirect::to("/console/fleet").into_response(),
        Err(e) => e.into_response(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The signed-in user as a request sees them.
pub struct Who {
    pub session: Session,
    pub principal: Principal,
    /// A label for the page header: who, through which API.
    pub user: String,
    /// The session's policies allow changes (only hides buttons: the API decides).
    pub can_act: bool,
    /// The session's policies refuse listing instances: the cloud's code and message.
    pub read_denied: Option<(String, String)>,
}

/// Why a request has no session: a page redirects to the sign-in, anything else is 401.
enum NoSession {
    Redirect,
    Unauthorized,
}

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        match self {
            Self::Redirect => Redirect::to("/console/login").into_response(),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "sign in first\n").into_response(),
        }
    }
}

/// A page's session: without one the request is redirected to the sign-in.
struct Page(Who);

impl axum::extract::FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        s: &AppState,
    ) -> Result<Self, Response> {
        who(s, &parts.headers, true)
            .await
            .map(Page)
            .map_err(IntoResponse::into_response)
    }
}

/// The instance a path names, if its user sees it.
fn instance_of(s: &AppState, who: &Who, id: &str) -> Option<Instance> {
    Uuid::parse_str(id).ok().and_then(|id| visible(s, who, id))
}

/// The request's session, checked against its credential as it is now.
async fn who(s: &AppState, headers: &HeaderMap, page: bool) -> Result<Who, NoSession> {
    let refuse = || {
        if page {
            NoSession::Redirect
        } else {
            NoSession::Unauthorized
        }
    };
    let value = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| session::cookie(c, session::COOKIE))
        .ok_or_else(refuse)?;
    let session = Session::open(&s.engine, value, now_ms()).ok_or_else(refuse)?;
    crate::http::catch_up(&s.engine).await;
    match session.kind {
        Kind::Keystone => {
            let (principal, token) = s
                .openstack
                .session(&session.cred)
                .await
                .ok_or_else(refuse)?;
            let project = token
                .project
                .as_ref()
                .map(|p| p.name.as_str())
                .unwrap_or("-");
            Ok(Who {
                user: format!("{} (project {project}, Keystone)", token.user_name),
                can_act: token.can_write(),
                read_denied: None,
                principal,
                session,
            })
        }
        Kind::AccessKey => {
            let (mut principal, _) = s.engine.access_key(&session.cred).ok_or_else(refuse)?;
            let authz = PolicyAuthorizer::tencent(s.engine.clone());
            let region = catalog::REGIONS.first().map(|r| r.id);
            let read_denied =
                match authz.authorize_scoped(&principal, "cvm:DescribeInstances", region, true) {
                    Ok(guard) => {
                        principal.guard = guard;
                        None
                    }
                    Err(d) => Some((
                        "AuthFailure.UnauthorizedOperation".to_string(),
                        d.to_string(),
                    )),
                };
            let can_act = authz
                .authorize(&principal, "cvm:RebootInstances", region)
                .is_ok();
            Ok(Who {
                user: format!(
                    "{} (access key {}, Tencent CVM)",
                    principal.user, session.cred
                ),
                can_act,
                read_denied,
                principal,
                session,
            })
        }
    }
}

/// A form post must come from the console's own pages: the browser's `Origin` (and
/// `Sec-Fetch-Site`, when sent) name this site, and the form carries the session's token.
fn same_origin(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("sec-fetch-site").is_some_and(|v| v != "same-origin" && v != "none") {
        return false;
    }
    match (h("origin"), h("host")) {
        (None, _) => true,
        (Some(o), Some(host)) => o
            .split_once("://")
            .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
    }
}

/// A posted form's field (bounded).
fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> &'a str {
    f.get(name)
        .map(|v| if v.len() > MAX_FIELD { "" } else { v.as_str() })
        .unwrap_or("")
}

/// A form post's session and fields, checked in this order: a session (else 401), this site
/// and the session's CSRF token (else 403), then the form itself.
struct Posted {
    who: Who,
    form: HashMap<String, String>,
}

impl axum::extract::FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let who = who(s, &parts.headers, false)
            .await
            .map_err(IntoResponse::into_response)?;
        let forbidden = || {
            (
                StatusCode::FORBIDDEN,
                "the form's CSRF token or origin is wrong\n",
            )
                .into_response()
        };
        if !same_origin(&parts.headers) {
            return Err(forbidden());
        }
        let req = axum::extract::Request::from_parts(parts, body);
        let Form(form) = Form::<HashMap<String, String>>::from_request(req, s)
            .await
            .map_err(IntoResponse::into_response)?;
        if !who.session.csrf_ok(field(&form, "csrf")) {
            return Err(forbidden());
        }
        Ok(Self { who, form })
    }
}

fn html(markup: maud::Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn not_found(who: &Who, what: &str) -> Response {
    let page = pages::message(
        who,
        "Not found",
        &format!("{what} does not exist or you may not see it."),
    );
    (StatusCode::NOT_FOUND, html(page)).into_response()
}

// ---- sign-in ------------------------------------------------------------------------------

async fn login_page() -> Response {
    html(pages::login(None))
}

/// Failed access key sign-ins, per key ID and per source.
fn key_logins() -> &'static nubis_auth::login::LoginThrottle {
    static T: std::sync::OnceLock<nubis_auth::login::LoginThrottle> = std::sync::OnceLock::new();
    T.get_or_init(Default::default)
}

async fn login(
    State(s): State<AppState>,
    axum::Extension(set): axum::Extension<Settings>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-in refused\n").into_response();
    }
    let refused = |code: &str, message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            html(pages::login(Some((code.to_string(), message.to_string())))),
        )
            .into_response()
    };
    let session = match field(&f, "method") {
        "keystone" => {
            let (user, password) = (field(&f, "user"), field(&f, "password"));
            let project = match field(&f, "project") {
                "" => user,
                p => p,
            };
            let domain = match field(&f, "domain") {
                "" => "Default",
                d => d,
            };
            match backend::keystone_login(&s, peer, user, password, project, domain).await {
                Ok(token) => match s.openstack.session(&token).await {
                    Some((_, t)) => Session::new(Kind::Keystone, token, t.expires_at * 1000),
                    None => return refused("401", "The token Keystone issued is not valid."),
                },
                Err(out) => {
                    let (code, msg) = out.error.unwrap_or_default();
                    return refused(&code, &msg);
                }
            }
        }
        "access_key" => {
            let (id, secret) = (field(&f, "key_id").trim(), field(&f, "key_secret"));
            let throttle = key_logins();
            if let Err(wait) = throttle.attempt(id, peer) {
                return refused(
                    "RequestLimitExceeded",
                    &format!(
                        "Too many failed sign-ins: try again in {} s.",
                        wait.0.as_secs()
                    ),
                );
            }
            let ok = s.engine.access_key(id).is_some_and(|(_, real)| {
                use subtle::ConstantTimeEq;
                bool::from(real.as_bytes().ct_eq(secret.as_bytes()))
            });
            if !ok {
                return refused(
                    "AuthFailure.SignatureFailure",
                    "The SecretId is unknown or disabled, or the SecretKey is wrong.",
                );
            }
            throttle.succeed(id, peer);
            Session::new(
                Kind::AccessKey,
                id.to_string(),
                now_ms() + session::KEY_SESSION_SECS * 1000,
            )
        }
        _ => return refused("MissingParameter", "Choose how to sign in."),
    };
    let max_age = (session.expires_ms - now_ms()) / 1000;
    let cookie = session::set_cookie(&session.seal(&s.engine), max_age, set.secure);
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/fleet"),
    )
        .into_response()
}

async fn logout(
    State(s): State<AppState>,
    axum::Extension(set): axum::Extension<Settings>,
    Peer(peer): Peer,
    Posted { who, .. }: Posted,
) -> Response {
    backend::revoke(&s, &who.session, peer).await;
    (
        [(header::SET_COOKIE, session::clear_cookie(set.secure))],
        Redirect::to("/console/login"),
    )
        .into_response()
}

// ---- the fleet ----------------------------------------------------------------------------

/// The fleet page's query: search text, state, sort, page.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct FleetQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub sort: String,
    /// Text, parsed leniently: a flattened struct's numbers reach serde as strings.
    #[serde(default)]
    pub page: String,
}

impl FleetQuery {
    /// The query string that reproduces it (links, the live stream).
    pub fn to_query(&self, page: usize) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("q", &self.q)
            .append_pair("state", &self.state)
            .append_pair("sort", &self.sort)
            .append_pair("page", &page.to_string())
            .finish()
    }
}

/// One page of the fleet as the principal sees it.
pub struct FleetPage {
    pub rows: Vec<Instance>,
    pub total: usize,
    pub page: usize,
    pub pages: usize,
}

fn fleet_page(s: &AppState, p: &Principal, q: &FleetQuery) -> FleetPage {
    use nubis_core::select::{Clause, Selection};
    let needle = q.q.trim().to_ascii_lowercase();
    let needle = if needle.len() > 128 {
        String::new()
    } else {
        needle
    };
    // The state is a clause of the fleet's index; only a search text is checked one by one.
    let mut sel = Selection::default();
    if let Some(st) = InstanceState::parse(&q.state) {
        sel.and(Clause::states([st]));
    }
    let search = |i: &Instance| {
        i.name.to_ascii_lowercase().contains(&needle)
            || i.tencent_id.contains(&needle)
            || i.aliyun_id.contains(&needle)
            || i.uuid.to_string().contains(&needle)
    };
    let rest: Option<&dyn Fn(&Instance) -> bool> = if needle.is_empty() {
        None
    } else {
        Some(&search)
    };
    let page = q.page.parse::<usize>().unwrap_or(1).clamp(1, 100_000);
    let offset = (page - 1) * PAGE_SIZE;
    let (total, rows) = match q.sort.as_str() {
        // Newest first read from the other end: the page that ends `offset` before the last.
        "oldest" => {
            let (total, _) = s.engine.select(p, &sel, rest, 0, 0);
            let take = PAGE_SIZE.min(total.saturating_sub(offset));
            let from = total.saturating_sub(offset + take);
            let (_, mut rows) = s.engine.select(p, &sel, rest, from, take);
            rows.reverse();
            (total, rows)
        }
        "name" | "state" => {
            let (total, mut all) = s.engine.select(p, &sel, rest, 0, MAX_SORTED);
            if q.sort == "name" {
                all.sort_by(|a, b| a.name.cmp(&b.name));
            } else {
                all.sort_by(|a, b| a.state.as_str().cmp(b.state.as_str()));
            }
            let rows = all.into_iter().skip(offset).take(PAGE_SIZE).collect();
            (total.min(MAX_SORTED), rows)
        }
        _ => s.engine.select(p, &sel, rest, offset, PAGE_SIZE),
    };
    FleetPage {
        rows,
        total,
        page,
        pages: total.div_ceil(PAGE_SIZE).max(1),
    }
}

async fn fleet(
    State(s): State<AppState>,
    Page(who): Page,
    Query(q): Query<FleetQuery>,
) -> Response {
    let page = if who.read_denied.is_some() {
        FleetPage {
            rows: Vec::new(),
            total: 0,
            page: 1,
            pages: 1,
        }
    } else {
        fleet_page(&s, &who.principal, &q)
    };
    html(pages::fleet(&who, &q, &page))
}

async fn operations(State(s): State<AppState>, Page(who): Page) -> Response {
    let (_, mut recent) = if who.read_denied.is_some() {
        (0, Vec::new())
    } else {
        s.engine
            .query(&who.principal, |i| i.latest_op.is_some(), 0, MAX_SORTED)
    };
    recent.sort_by_key(|i| std::cmp::Reverse(i.updated_at_ms));
    recent.truncate(100);
    html(pages::operations(&who, &recent))
}

/// What a live stream renders: the fleet's rows, or an instance's panel.
#[derive(Debug, serde::Deserialize)]
struct Live {
    #[serde(default)]
    view: String,
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(flatten)]
    fleet: FleetQuery,
}

async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(live): Query<Live>,
) -> Response {
    let who = match who(&s, &headers, false).await {
        Ok(w) => w,
        Err(e) => return e.into_response(),
    };
    if STREAMS.fetch_add(1, Ordering::SeqCst) >= MAX_STREAMS {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::SERVICE_UNAVAILABLE, "too many live streams\n").into_response();
    }
    let state = Stream {
        s,
        headers,
        live,
        who,
        last: String::new(),
        seen: None,
        tick: 0,
        _slot: Slot,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.tick > 0 {
                tokio::time::sleep(LIVE_TICK).await;
            }
            st.tick += 1;
            // The session is checked again every few seconds: a revoked token or a deleted
            // key ends the stream.
            if st.tick % 5 == 0 {
                st.who = who_again(&st.s, &st.headers).await?;
            }
            if st.who.session.expires_ms <= now_ms() {
                return None;
            }
            let html = match (st.live.view.as_str(), st.live.id) {
                ("health", _) if st.who.principal.is_admin => health_panel(&st.s).into_string(),
                ("health", _) => return None,
                ("instance", Some(id)) => {
                    let inst = visible(&st.s, &st.who, id)?;
                    // The store is read (operations, audit events) only when the instance
                    // changed, and every few ticks for events that do not change it (reads).
                    let seen = (inst.generation, inst.updated_at_ms, inst.latest_op.clone());
                    if st.seen.as_ref() == Some(&seen) && st.tick % 5 != 0 {
                        continue;
                    }
                    st.seen = Some(seen);
                    let d = details(&st.s, &st.who, &inst).await;
                    pages::panel(&st.who, &inst, &d).into_string()
                }
                _ => {
                    pages::rows(&fleet_page(&st.s, &st.who.principal, &st.live.fleet)).into_string()
                }
            };
            if html != st.last {
                st.last.clone_from(&html);
                let ev = Event::default().event("fragment").data(html);
                return Some((Ok::<_, std::convert::Infallible>(ev), st));
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// An open stream's slot among [`MAX_STREAMS`], given back when the stream ends.
struct Slot;

impl Drop for Slot {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often a live stream looks for changes.
const LIVE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A live stream's state between its fragments.
struct Stream {
    s: AppState,
    headers: HeaderMap,
    live: Live,
    who: Who,
    /// The fragment last sent.
    last: String,
    /// The instance view's record as last rendered (generation, change time, operation).
    seen: Option<(u64, i64, Option<nubis_core::LatestOp>)>,
    tick: u32,
    _slot: Slot,
}

async fn who_again(s: &AppState, headers: &HeaderMap) -> Option<Who> {
    who(s, headers, false).await.ok()
}

// ---- instances ----------------------------------------------------------------------------

/// The instance `id` if the principal sees it.
fn visible(s: &AppState, who: &Who, id: Uuid) -> Option<Instance> {
    if who.read_denied.is_some() {
        return None;
    }
    s.engine
        .instances_by_id(&who.principal, &[id])
        .into_iter()
        .next()
}

/// What the instance page shows besides the record: operations, audit events, guest facts,
/// key pair names.
pub struct Details {
    pub operations: Vec<nubis_core::Operation>,
    pub events: Vec<nubis_core::audit::AuditEvent>,
    pub guest: Option<serde_json::Value>,
    pub keys: Vec<KeyPair>,
}

async fn details(s: &AppState, who: &Who, inst: &Instance) -> Details {
    let operations = s.engine.operations_of(inst.uuid).await.unwrap_or_default();
    let mut events = Vec::new();
    for id in [
        inst.tencent_id.clone(),
        inst.aliyun_id.clone(),
        inst.uuid.to_string(),
    ] {
        let q = nubis_core::audit::AuditQuery {
            filters: vec![nubis_core::audit::AuditFilter::Resource(id)],
            until_ms: i64::MAX,
            limit: 20,
            ..Default::default()
        };
        events.extend(
            s.engine
                .audit_events(&who.principal, q)
                .await
                .unwrap_or_default(),
        );
    }
    events.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then(b.id.cmp(&a.id)));
    events.dedup_by(|a, b| a.id == b.id);
    events.truncate(20);
    let keys = s
        .engine
        .key_pairs(&who.principal)
        .into_iter()
        .filter(|k| inst.key_ids.contains(&k.id))
        .collect();
    Details {
        operations,
        events,
        guest: s
            .engine
            .driver()
            .snapshot(inst.uuid)
            .map(pages::without_secrets),
        keys,
    }
}

async fn instance_page(
    State(s): State<AppState>,
    Page(who): Page,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let accepted = q
        .get("accepted")
        .filter(|r| r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let d = details(&s, &who, &inst).await;
    html(pages::instance(
        &who,
        &inst,
        &d,
        accepted.map(String::as_str),
    ))
}

/// The key pairs the principal may use, as the session's API names them.
fn key_refs(s: &AppState, who: &Who) -> Vec<KeyRef> {
    s.engine
        .key_pairs(&who.principal)
        .into_iter()
        .map(|k| KeyRef {
            id: k.id,
            name: k.name,
        })
        .collect()
}

async fn confirm_page(
    State(s): State<AppState>,
    Page(who): Page,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let Some((action, label)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return not_found(&who, "The action");
    };
    html(pages::confirm(
        &who,
        &inst,
        action,
        label,
        &key_refs(&s, &who),
        None,
    ))
}

/// The action a confirmation form asks for, with its options checked against the clouds'
/// closed sets.
fn parse_act(action: &str, f: &HashMap<String, String>) -> Option<Act> {
    let force_stop = field(f, "force_stop") == "on";
    let one_of = |v: &str, allowed: &[&str]| allowed.contains(&v).then(|| v.to_string());
    Some(match action {
        "start" => Act::Start,
        "stop" => Act::Stop(one_of(
            field(f, "stop_type"),
            &["SOFT", "HARD", "SOFT_FIRST"],
        )?),
        "reboot" => Act::Reboot(one_of(field(f, "reboot_type"), &["SOFT", "HARD"])?),
        "enter_rescue" => Act::EnterRescue {
            password: field(f, "password").to_string(),
            force_stop,
        },
        "exit_rescue" => Act::ExitRescue,
        "reset_password" => Act::ResetPassword {
            password: field(f, "password").to_string(),
            force_stop,
        },
        "associate" => Act::Associate {
            key_id: field(f, "key_id").to_string(),
            force_stop,
        },
        "disassociate" => Act::Disassociate {
            key_id: field(f, "key_id").to_string(),
            force_stop,
        },
        "terminate" => Act::Terminate,
        _ => return None,
    })
}

async fn act(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Path((id, action)): Path<(String, String)>,
    Posted { who, form: f }: Posted,
) -> Response {
    let Some(inst) = instance_of(&s, &who, &id) else {
        return not_found(&who, "The instance");
    };
    let Some((name, label)) = ACTIONS.iter().find(|(a, _)| *a == action) else {
        return not_found(&who, "The action");
    };
    let Some(a) = parse_act(name, &f).filter(|_| Act::offered(name, &who.session.kind)) else {
        return (
            StatusCode::BAD_REQUEST,
            html(pages::message(
                &who,
                "Bad request",
                "The form's options are not ones this action takes.",
            )),
        )
            .into_response();
    };
    let out = backend::act(&s, &who.session, peer, &inst, &a).await;
    match out.error {
        None => Redirect::to(&format!(
            "/console/instances/{}?accepted={}",
            inst.uuid, out.request_id
        ))
        .into_response(),
        Some(e) => html(pages::confirm(
            &who,
            &inst,
            name,
            label,
            &key_refs(&s, &who),
            Some((&e, &out.request_id)),
        )),
    }
}

async fn create_page(State(s): State<AppState>, Page(who): Page) -> Response {
    html(pages::create(&who, &key_refs(&s, &who), None))
}

async fn create(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Posted { who, form: f }: Posted,
) -> Response {
    let keys = key_refs(&s, &who);
    let bad = |msg: &str| {
        html(pages::create(
            &who,
            &keys,
            Some((&("Console".to_string(), msg.to_string()), "")),
        ))
    };
    let Some(image) = catalog::IMAGES
        .iter()
        .find(|i| i.public && i.id == field(&f, "image"))
    else {
        return bad("Choose an image.");
    };
    let Some(zone) = catalog::ZONES.iter().find(|z| z.id == field(&f, "zone")) else {
        return bad("Choose a zone.");
    };
    let key = match field(&f, "key_id") {
        "" => None,
        id => match keys.iter().find(|k| k.id == id) {
            Some(k) => Some(k.clone()),
            None => return bad("Choose a key pair you have."),
        },
    };
    let new = NewInstance {
        name: field(&f, "name").to_string(),
        image,
        instance_type: field(&f, "instance_type").to_string(),
        zone,
        password: field(&f, "password").to_string(),
        key,
    };
    let (out, made) = backend::create(&s, &who.session, peer, &new).await;
    if let Some(e) = &out.error {
        return html(pages::create(&who, &keys, Some((e, &out.request_id))));
    }
    let uuid = made
        .and_then(|(kind, id)| s.engine.resolve(&who.principal, kind, &[id]).ok())
        .and_then(|u| u.into_iter().next());
    match uuid {
        Some(u) => Redirect::to(&format!(
            "/console/instances/{u}?accepted={}",
            out.request_id
        ))
        .into_response(),
        None => Redirect::to("/console/fleet").into_response(),
    }
}

// ---- key pairs ----------------------------------------------------------------------------

async fn keypairs(State(s): State<AppState>, Page(who): Page) -> Response {
    html(pages::keypairs(
        &who,
        &s.engine.key_pairs(&who.principal),
        None,
        None,
    ))
}

async fn create_key(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Posted { who, form: f }: Posted,
) -> Response {
    let public = Some(field(&f, "public_key").trim()).filter(|p| !p.is_empty());
    let (out, private) =
        backend::create_key(&s, &who.session, peer, field(&f, "name").trim(), public).await;
    let keys = s.engine.key_pairs(&who.principal);
    let error = out.error.as_ref().map(|e| (e, out.request_id.as_str()));
    html(pages::keypairs(&who, &keys, private.as_deref(), error))
}

fn key_of(s: &AppState, who: &Who, id: &str) -> Option<KeyPair> {
    s.engine
        .key_pairs(&who.principal)
        .into_iter()
        .find(|k| k.id == id)
}

async fn confirm_delete_key(
    State(s): State<AppState>,
    Page(who): Page,
    Path(id): Path<String>,
) -> Response {
    match key_of(&s, &who, &id) {
        Some(k) => html(pages::confirm_delete_key(&who, &k, None)),
        None => not_found(&who, "The key pair"),
    }
}

async fn delete_key(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Path(id): Path<String>,
    Posted { who, .. }: Posted,
) -> Response {
    let Some(k) = key_of(&s, &who, &id) else {
        return not_found(&who, "The key pair");
    };
    let out = backend::delete_key(
        &s,
        &who.session,
        peer,
        &KeyRef {
            id: k.id.clone(),
            name: k.name.clone(),
        },
    )
    .await;
    match out.error {
        None => Redirect::to("/console/keypairs").into_response(),
        Some(e) => html(pages::confirm_delete_key(
            &who,
            &k,
            Some((&e, &out.request_id)),
        )),
    }
}

// ---- the serial console ------------------------------------------------------------------

/// The page's own Content-Security-Policy: the terminal component writes its theme into a
/// `<style>` element it creates, so this page alone allows inline styles (scripts stay
/// `'self'` only).
const SERIAL_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn serial_page(
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

async fn serial_ws(
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
async fn record_serial(
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

// ---- assets -------------------------------------------------------------------------------

/// The console's files, compiled in: (name, content, content type).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        include_str!("assets/console.css"),
        "text/css; charset=utf-8",
    ),
    (
        "console.js",
        include_str!("assets/console.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "serial.js",
        include_str!("assets/serial.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "xterm.js",
        include_str!("assets/vendor/xterm/xterm.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "xterm.css",
        include_str!("assets/vendor/xterm/xterm.css"),
        "text/css; charset=utf-8",
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    let Some(&(_, body, kind)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    //! The console in process over a temporary SQLite store (`tower::ServiceExt::oneshot`).

    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use nubis_api_aliyun::AliyunApi;
    use nubis_api_openstack::OpenStackApi;
    use nubis_api_tencent::TencentApi;
    use nubis_testkit::{KEY_ID, SECRET};
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn app() -> (Router, tempfile::TempDir) {
        let (engine, dir) = nubis_testkit::engine().await;
        let state = AppState {
            tencent: Arc::new(TencentApi::new(engine.clone(), false)),
            aliyun: Arc::new(AliyunApi::new(engine.clone(), false)),
            openstack: Arc::new(OpenStackApi::new(engine.clone(), false)),
            engine,
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            admin_logins: Default::default(),
        };
        let router = Router::new()
            .nest("/console", routes_with(Settings { secure: false }))
            .with_state(state);
        (router, dir)
    }

    async fn send(
        app: &Router,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        form: &str,
        origin: Option<&str>,
    ) -> Response {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        app.clone()
            .oneshot(req.body(Body::from(form.to_string())).unwrap())
            .await
            .unwrap()
    }

    async fn text(r: Response) -> String {
        String::from_utf8(
            axum::body::to_bytes(r.into_body(), 1 << 22)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap()
    }

    fn concrete(path: &str) -> String {
        if path == "/" {
            return "/console".into();
        }
        format!(
            "/console{}",
            path.replace("{id}", "7f0c6a8e-0000-4000-8000-000000000001")
                .replace("{action}", "reboot")
                .replace("{file}", "console.css")
        )
    }

    /// Signs in with the test key; the session cookie and its CSRF token.
    async fn sign_in(app: &Router) -> (String, String) {
        let r = send(
            app,
            "POST",
            "/console/login",
            None,
            &format!("method=access_key&key_id={KEY_ID}&key_secret={SECRET}"),
            Some("http://127.0.0.1:8080"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = r.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            set.contains("HttpOnly")
                && set.contains("SameSite=Strict")
                && set.contains("Path=/console"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();
        let page = text(send(app, "GET", "/console/fleet", Some(&cookie), "", None).await).await;
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        (cookie, csrf)
    }

    #[tokio::test]
    async fn every_route_without_a_session_redirects_or_is_refused() {
        let (app, _dir) = app().await;
        let mut walked = 0;
        for (path, methods, needs_session) in ROUTES {
            for method in *methods {
                let r = send(&app, method, &concrete(path), None, "csrf=x", None).await;
                let status = r.status();
                let at = format!("{method} {path}");
                // Every response carries the console's security headers.
                let csp = r
                    .headers()
                    .get(header::CONTENT_SECURITY_POLICY)
                    .map(|v| v.to_str().unwrap().to_string());
                assert!(
                    csp.is_some_and(
                        |c| c.contains("script-src 'self'") && c.contains("frame-ancestors 'none'")
                    ),
                    "{at}: no CSP"
                );
                if *needs_session {
                    match status {
                        StatusCode::SEE_OTHER => {
                            assert_eq!(r.headers()[header::LOCATION], "/console/login", "{at}");
                            assert_eq!(*method, "GET", "{at}: a change is refused, not redirected");
                        }
                        StatusCode::UNAUTHORIZED => {}
                        other => panic!("{at} without a session answered {other}"),
                    }
                } else if *method == "GET" {
                    assert!(status.is_success(), "{at}: {status}");
                } else {
                    // A sign-in with no credentials is a refused sign-in.
                    assert_eq!(status, StatusCode::UNAUTHORIZED, "{at}");
                }
                walked += 1;
            }
        }
        assert_eq!(walked, ROUTES.iter().map(|r| r.1.len()).sum::<usize>());
        // A forged or foreign cookie is no session.
        let r = send(
            &app,
            "GET",
            "/console/fleet",
            Some("nubis_console=AAAA"),
            "",
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }

    #[tokio::test]
    async fn forms_need_the_session_token_and_this_site() {
        let (app, _dir) = app().await;
        // A wrong secret signs no one in (and a cross-site sign-in is refused).
        let r = send(
            &app,
            "POST",
            "/console/login",
            None,
            &format!("method=access_key&key_id={KEY_ID}&key_secret=nope"),
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(header::SET_COOKIE).is_none());
        let r = send(
            &app,
            "POST",
            "/console/login",
            None,
            &format!("method=access_key&key_id={KEY_ID}&key_secret={SECRET}"),
            Some("https://evil.example"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let (cookie, csrf) = sign_in(&app).await;
        let create = "name=a&image=img-ubt22x64&instance_type=S5.MEDIUM4&zone=local-a&password=Passw0rd%2123";
        for (form, origin) in [
            (create.to_string(), None),
            (format!("{create}&csrf=wrong"), None),
            (
                format!("{create}&csrf={csrf}"),
                Some("https://evil.example"),
            ),
        ] {
            let r = send(
                &app,
                "POST",
                "/console/instances",
                Some(&cookie),
                &form,
                origin,
            )
            .await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{form} {origin:?}");
        }
        let fleet = text(send(&app, "GET", "/console/fleet", Some(&cookie), "", None).await).await;
        assert!(fleet.contains("0 instances"), "nothing was made");
        // With both, the change goes through Tencent CVM and the instance shows.
        let r = send(
            &app,
            "POST",
            "/console/instances",
            Some(&cookie),
            &format!("{create}&csrf={csrf}"),
            Some("http://127.0.0.1:8080"),
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let to = r.headers()[header::LOCATION].to_str().unwrap().to_string();
        assert!(
            to.starts_with("/console/instances/") && to.contains("?accepted="),
            "{to}"
        );
        let page = text(send(&app, "GET", &to, Some(&cookie), "", None).await).await;
        assert!(page.contains("Accepted. RequestId"), "{page}");
        // Sign-out ends the session in the browser.
        let r = send(
            &app,
            "POST",
            "/console/logout",
            Some(&cookie),
            &format!("csrf={csrf}"),
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert!(
            r.headers()[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[test]
    fn vendored_files_are_the_pinned_ones() {
        use sha2::Digest;
        let sums = include_str!("assets/vendor/xterm/SHA256SUMS");
        let mut checked = 0;
        for line in sums.lines() {
            let (want, name) = line.split_once("  ").unwrap();
            let (_, body, _) = ASSETS.iter().find(|(n, _, _)| *n == name).unwrap();
            assert_eq!(
                hex::encode(sha2::Sha256::digest(body.as_bytes())),
                want,
                "{name}"
            );
            checked += 1;
        }
        assert_eq!(checked, 2);
    }
}
