//! The web console under `/console` (docs/console.md): server-rendered pages with a little
//! progressive enhancement (live updates over server-sent events), assets compiled into the
//! binary. It is one more client: what it shows is read from the engine as the signed-in
//! principal sees it, and every change it makes is a request to Nova (a Keystone session) or
//! Tencent CVM (an access key session) run through that API's own pipeline
//! ([`backend`]).

mod backend;
mod fleet;
mod health;
mod instances;
mod keypairs;
mod pages;
mod serial;
mod session;
mod signin;

use fleet::*;
use health::{health_page, health_panel};
use instances::*;
use keypairs::*;
use serial::{serial_page, serial_ws};
use signin::*;

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

/// `/console`: the fleet, or the sign-in without a session.
async fn root(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match who(&s, &headers, true).await {
        Ok(_) => Redirect::to("/console/fleet").into_response(),
        Err(e) => e.into_response(),
    }
}

use crate::admin::now_ms;

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
