//! One listener for every dialect: requests are claimed by the dialect whose markers they carry.

use crate::config::Config;
use crate::peer::Peer;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use nubis_api_aliyun::{AliyunApi, RawRequest as AliyunRequest};
use nubis_api_openstack::{OpenStackApi, RawRequest as OpenStackRequest};
use nubis_api_tencent::{RawRequest, TencentApi};
use nubis_engine::Engine;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub tencent: Arc<TencentApi>,
    pub aliyun: Arc<AliyunApi>,
    pub openstack: Arc<OpenStackApi>,
    pub prometheus: PrometheusHandle,
    /// Failed admin API logins, per access key ID and per source address.
    pub admin_logins: Arc<nubis_auth::login::LoginThrottle>,
}

pub fn router(engine: Engine, cfg: &Config) -> anyhow::Result<Router> {
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full("nubis_request_duration_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        )?
        .install_recorder()?;
    let public_url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| nubis_api_openstack::DEFAULT_PUBLIC_URL.to_string());
    engine.set_sts_min_duration_secs(cfg.sts_min_duration_secs);
    let auditor: Arc<dyn nubis_pipeline::Auditor> =
        Arc::new(crate::audit::EngineAuditor(engine.clone()));
    let mut openstack = OpenStackApi::new(engine.clone(), cfg.rate_limits)
        .with_public_url(public_url.clone())
        .with_shelved_offload(cfg.shelved_offload)
        .with_deferred_delete(cfg.reclaim_instance_interval > 0)
        .with_image_size_cap(cfg.image_size_cap);
    if let Some(policy) = &cfg.nova_policy {
        openstack = openstack
            .with_nova_policy(policy)
            .map_err(|e| anyhow::anyhow!("NUBIS_NOVA_POLICY_FILE / nova_policy_file: {e}"))?;
    }
    let state = AppState {
        tencent: Arc::new(
            TencentApi::new(engine.clone(), cfg.rate_limits)
                .with_authorizer(
                    crate::authz::PolicyAuthorizer::tencent(engine.clone())
                        .with_mfa_max_age(std::time::Duration::from_secs(cfg.mfa_max_age_secs)),
                )
                .with_auditor(auditor.clone()),
        ),
        aliyun: Arc::new(
            AliyunApi::new(engine.clone(), cfg.rate_limits)
                .with_public_url(public_url.clone())
                .with_authorizer(crate::authz::PolicyAuthorizer::aliyun(engine.clone()))
                .with_auditor(auditor.clone()),
        ),
        openstack: Arc::new(openstack.with_auditor(auditor)),
        engine,
        prometheus,
        admin_logins: Default::default(),
    };
    crate::console::start(state.prometheus.clone(), state.engine.clone());
    let guard = crate::guard::Guard::new(cfg.limits);
    let node = cfg.node_id.clone().unwrap_or_default();
    // Checked at start (config::check_node_id), so it is a valid header value.
    let node_header = HeaderValue::from_str(&node)?;
    // Set once per process: every request log line carries it (observe_*).
    let _ = NODE.set(node);
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .nest("/admin/v1", crate::admin::routes(state.clone()))
        .nest("/console", crate::console::routes(cfg))
        .merge(crate::agent::control_routes())
        .fallback(dispatch)
        .with_state(state)
        // The guard has read (and bounded) every body before any extractor runs.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state(
            guard,
            crate::guard::layer,
        ))
        // Outermost: refusals by the guard name their node too.
        .layer(axum::middleware::map_response(move |mut resp: Response| {
            let v = node_header.clone();
            async move {
                resp.headers_mut().insert(NODE_HEADER, v);
                resp
            }
        })))
}

/// The response header naming the node that answered (`--node-id`): behind a load balancer
/// it tells a client, a test or an operator which node served a request.
pub const NODE_HEADER: &str = "x-nubis-node";

/// This process's node ID, for the request log lines.
static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn node() -> &'static str {
    NODE.get().map(String::as_str).unwrap_or_default()
}

async fn healthz(State(s): State<AppState>) -> Response {
    match s.engine.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("store unavailable: {e}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(State(s): State<AppState>) -> Response {
    metrics::gauge!("nubis_operations_running").set(s.engine.running_operations() as f64);
    for (state, n) in s.engine.state_counts() {
        metrics::gauge!("nubis_instances", "state" => state.as_str()).set(n as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.prometheus.render(),
    )
        .into_response()
}

/// Unix seconds now (the dialects' request clock).
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The Host header exactly as received (empty when absent): the dialects that sign or show
/// it take it verbatim.
fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default()
}

async fn openstack(
    s: &AppState,
    http: nubis_auth::HttpRequestParts<'_>,
    start: Instant,
) -> Response {
    let reply = s.openstack.handle(OpenStackRequest { http }).await;
    openstack_response(reply, start).await
}

/// The log line and the metrics of an OpenStack reply.
pub(crate) fn observe_openstack(reply: &nubis_api_openstack::Reply, start: Instant) {
    observe(
        "openstack",
        &reply.request_id,
        reply.operation,
        &reply.status.to_string(),
        reply.status,
        start,
    );
}

async fn openstack_response(reply: nubis_api_openstack::Reply, start: Instant) -> Response {
    observe_openstack(&reply, start);
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if !reply.body.is_empty() {
        resp = resp.header(header::CONTENT_TYPE, reply.content_type);
    }
    for (k, v) in &reply.headers {
        resp = resp.header(k.as_str(), v.as_str());
    }
    // Image data (Glance download) is streamed from its file, never read whole.
    if let Some((path, _)) = &reply.file
        && reply.status == 200
    {
        return match tokio::fs::File::open(path).await {
            Ok(f) => resp
                .header(header::CONTENT_TYPE, reply.content_type)
                .body(Body::from_stream(tokio_util::io::ReaderStream::new(f)))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()),
            Err(e) => {
                tracing::error!(error = %e, path = %path.display(), "image data missing");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        };
    }
    resp.body(Body::from(reply.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// One structured log line and the request metrics, the same for every dialect.
pub(crate) fn observe(
    dialect: &'static str,
    request_id: &str,
    action: &str,
    code: &str,
    status: u16,
    start: Instant,
) {
    let label = action_label(dialect, action);
    observe_labelled(dialect, request_id, action, label, code, status, start);
}

/// [`observe`] with the action's label already known (a pipeline service's reply carries it).
pub(crate) fn observe_labelled(
    dialect: &'static str,
    request_id: &str,
    action: &str,
    label: &'static str,
    code: &str,
    status: u16,
    start: Instant,
) {
    let latency_us = record_since(dialect, label, code, start);
    tracing::info!(
        node = %node(),
        dialect,
        request_id,
        action,
        code,
        status,
        latency_us,
        "request"
    );
}

/// A request refused before its dialect saw it (shed, oversize): counted like the others,
/// under action `other`.
pub(crate) fn observe_refusal(
    dialect: &'static str,
    code: &'static str,
    status: u16,
    start: Instant,
) {
    let latency_us = record_since(dialect, OTHER, code, start);
    tracing::info!(node = %node(), dialect, code, status, latency_us, "refused");
}

/// Count a request that began at `start` in the metrics; its latency in µs, for the log.
fn record_since(dialect: &'static str, label: &'static str, code: &str, start: Instant) -> u64 {
    let elapsed = start.elapsed();
    record(dialect, label, code_label(dialect, code), elapsed);
    elapsed.as_micros() as u64
}

/// The log line, the metrics and the response of a request a service answered through the
/// pipeline (`nubis_pipeline::Reply`, whichever service): the action label is the
/// registry's, the status, content type and headers the service's.
fn reply_response(reply: nubis_api_tencent::Reply, start: Instant) -> Response {
    observe_reply(&reply, start);
    let mut resp = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, reply.content_type);
    for (k, v) in &reply.headers {
        resp = resp.header(*k, v.as_str());
    }
    resp.body(Body::from(reply.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The log line and the metrics of a pipeline service's reply.
pub(crate) fn observe_reply(reply: &nubis_api_tencent::Reply, start: Instant) {
    observe_labelled(
        reply.cloud,
        &reply.request_id,
        &reply.action,
        reply.label,
        reply.code.as_deref().unwrap_or("OK"),
        reply.status,
        start,
    );
}

fn record(
    dialect: &'static str,
    action: &'static str,
    code: &'static str,
    elapsed: std::time::Duration,
) {
    metrics::counter!("nubis_requests_total", "dialect" => dialect, "action" => action, "code" => code)
        .increment(1);
    metrics::histogram!("nubis_request_duration_seconds", "dialect" => dialect, "action" => action)
        .record(elapsed.as_secs_f64());
}

/// The label for everything outside a known set.
const OTHER: &str = "other";

/// An action is a label value only if the dialect serves it (the name comes from the request,
/// before authentication: anything else would let a client mint label values).
fn action_label(dialect: &str, action: &str) -> &'static str {
    match dialect {
        "tencent" => nubis_api_tencent::SERVICES.label(None, action),
        "aliyun" => nubis_api_aliyun::SERVICES.label(None, action),
        // OpenStack's labels come from its three route registries.
        "openstack" => nubis_api_openstack::label(action),
        _ => None,
    }
    .unwrap_or(OTHER)
}

/// Most distinct error codes one dialect may show as label values.
const MAX_CODES_PER_DIALECT: usize = 128;

/// Codes come from each dialect's own vocabulary (never from request text), OpenStack's are
/// HTTP statuses. As a backstop, a code is a label value only if it is well formed and among
/// the first [`MAX_CODES_PER_DIALECT`] of its dialect; anything else is `other`.
fn code_label(dialect: &'static str, code: &str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    type Seen = HashMap<&'static str, HashMap<Box<str>, &'static str>>;
    static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
    let well_formed = !code.is_empty()
        && code.len() <= 80
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
    if !well_formed {
        return OTHER;
    }
    let mut seen = SEEN
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let codes = seen.entry(dialect).or_default();
    if let Some(c) = codes.get(code) {
        return c;
    }
    if codes.len() >= MAX_CODES_PER_DIALECT {
        return OTHER;
    }
    // Leaked once per distinct code: at most MAX_CODES_PER_DIALECT short strings per dialect.
    let c: &'static str = Box::leak(code.to_string().into_boxed_str());
    codes.insert(code.into(), c);
    c
}

/// Before a request reads anything (credentials included): this node's cache takes in every
/// change other nodes committed before it arrived (free on SQLite). If the database cannot
/// be read the request is served from the cache; a mutation then fails at its commit.
pub(crate) async fn catch_up(engine: &Engine) {
    if let Err(e) = engine.sync().await {
        tracing::warn!(error = %e, "serving from the cache: cannot catch up with other nodes");
    }
}

/// An upload's body as the OpenStack dialect reads it: chunk by chunk, each within `idle`.
struct StreamedChunks {
    body: Body,
    idle: std::time::Duration,
}

impl nubis_api_openstack::image::upload::Chunks for StreamedChunks {
    type Chunk = Bytes;
    async fn next_chunk(
        &mut self,
    ) -> Result<Option<Bytes>, nubis_api_openstack::image::upload::Cut> {
        use http_body_util::BodyExt;
        use nubis_api_openstack::image::upload::Cut;
        loop {
            match tokio::time::timeout(self.idle, self.body.frame()).await {
                Err(_) => return Err(Cut::TooSlow),
                Ok(None) => return Ok(None),
                Ok(Some(Err(_))) => return Err(Cut::Broken),
                Ok(Some(Ok(frame))) => {
                    // Trailers carry no data: read on.
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

async fn dispatch(
    State(s): State<AppState>,
    peer: Peer,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let start = Instant::now();
    catch_up(&s.engine).await;
    let streamed = request
        .extensions()
        .get::<crate::guard::StreamedBody>()
        .copied();
    let body = request.into_body();
    let (body, mut upload) = match streamed {
        Some(st) => (
            Bytes::new(),
            Some(StreamedChunks {
                body,
                idle: st.idle,
            }),
        ),
        // The guard has read and bounded the body already: this takes it as it is.
        None => match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => (b, None),
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        },
    };
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let raw_query = uri.query().unwrap_or("");
    let host = host(&headers);
    let http = nubis_auth::HttpRequestParts {
        method: method.as_str(),
        host: &host,
        path: uri.path(),
        raw_query,
        headers: &hdrs,
        body: &body,
        peer: peer.0,
    };
    if let Some(chunks) = upload.as_mut() {
        let reply = s
            .openstack
            .handle_upload(OpenStackRequest { http }, chunks)
            .await;
        return openstack_response(reply, start).await;
    }
    if nubis_api_openstack::claims(uri.path()) {
        return openstack(&s, http, start).await;
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut params = nubis_api_tencent::decode_pairs(raw_query.as_bytes());
    if is_form {
        params.extend(nubis_api_tencent::decode_pairs(&body));
    }
    if uri.path() == "/" && nubis_api_tencent::claims(&hdrs, &params) {
        let reply = s.tencent.handle(RawRequest { http, now: now() }).await;
        return reply_response(reply, start);
    }
    if uri.path() == "/" && nubis_api_aliyun::claims(&hdrs, &params) {
        let query = nubis_api_tencent::decode_pairs(raw_query.as_bytes());
        let form = if is_form {
            nubis_api_tencent::decode_pairs(&body)
        } else {
            Vec::new()
        };
        let reply = s
            .aliyun
            .handle(AliyunRequest {
                http,
                query: &query,
                form: &form,
                now: now(),
            })
            .await;
        // Throttling's `Retry-After` and `x-acs-retry-after` (ms, what the Tea SDK reads) are
        // among the reply's headers.
        return reply_response(reply, start);
    }
    tracing::info!(node = %node(), method = %method, path = %uri.path(), "unrouted request");
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"error":{"code":"NotFound","message":"no API dialect claims this request"}}"#,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_come_from_known_sets() {
        assert_eq!(
            action_label("tencent", "DescribeInstances"),
            "DescribeInstances"
        );
        assert_eq!(action_label("tencent", "DescribeInstancez"), OTHER);
        assert_eq!(action_label("aliyun", "DeleteInstance"), "DeleteInstance");
        assert_eq!(action_label("aliyun", "RebootInstances\n"), OTHER);
        assert_eq!(
            action_label("openstack", "server.action.reboot"),
            "server.action.reboot"
        );
        assert_eq!(action_label("openstack", "server.action.evil"), OTHER);
        assert_eq!(action_label("other", "DescribeInstances"), OTHER);

        assert_eq!(code_label("test", "InvalidParameter"), "InvalidParameter");
        assert_eq!(code_label("test", "Bad Code"), OTHER);
        assert_eq!(code_label("test", &"A".repeat(81)), OTHER);
        let distinct: std::collections::HashSet<&str> = (0..300)
            .map(|i| code_label("flood", &format!("Code{i}")))
            .collect();
        assert_eq!(
            distinct.len(),
            MAX_CODES_PER_DIALECT + 1,
            "the cap, plus other"
        );
        assert!(distinct.contains(OTHER));
        // Another dialect's cap is its own.
        assert_eq!(code_label("test", "InvalidParameter"), "InvalidParameter");
    }
}
