//! The Tencent CVM dialect in process: its API over a test engine, TC3-signed JSON POSTs (what
//! tencentcloud-sdk sends) and legacy (HmacSHA*) signed GETs, and the error code of a reply.

use crate::{KEY_ID, SECRET, TempDir, now};
use nubis_api_tencent::{RawRequest, Reply, TencentApi};
use nubis_auth::tencent::{LegacyMethod, sign_legacy, sign_tc3};
use nubis_engine::Engine;
use serde_json::Value;
use std::net::IpAddr;

/// The Host every request names.
pub const HOST: &str = "127.0.0.1:8080";

/// The API (with or without rate limits) over [`crate::engine`].
pub async fn api(rate_limits: bool) -> (TencentApi, Engine, TempDir) {
    let (engine, dir) = crate::engine().await;
    (TencentApi::new(engine.clone(), rate_limits), engine, dir)
}

/// Where a TC3 request goes: the service's version, the credential scope's service name
/// (`cvm`, `cam`, …) and the `X-TC-Region` header, if any.
#[derive(Clone, Copy, Debug)]
pub struct To<'a> {
    pub version: &'a str,
    pub service: &'a str,
    pub region: Option<&'a str>,
}

/// CVM 2017-03-12 in ap-guangzhou.
pub const CVM: To<'static> = To {
    version: "2017-03-12",
    service: "cvm",
    region: Some("ap-guangzhou"),
};

/// The peer address and User-Agent of [`tc3_to`]'s requests.
pub const PEER: [u8; 4] = [192, 0, 2, 7];
pub const USER_AGENT: &str = "test-agent/1.0";

/// The headers of a TC3-signed JSON POST of `action` to `to`, signed at `ts`.
pub fn tc3_headers_to(
    to: To<'_>,
    (id, secret): (&str, &str),
    action: &str,
    body: &[u8],
    ts: i64,
) -> Vec<(String, String)> {
    let auth = sign_tc3(
        "POST",
        HOST,
        "",
        "application/json",
        body,
        id,
        secret,
        ts,
        to.service,
    );
    let mut headers: Vec<(String, String)> = [
        ("authorization", auth),
        ("content-type", "application/json".into()),
        ("host", HOST.into()),
        ("x-tc-action", action.into()),
        ("x-tc-version", to.version.into()),
        ("x-tc-timestamp", ts.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(region) = to.region {
        headers.push(("x-tc-region".into(), region.into()));
    }
    headers
}

/// The headers of a TC3-signed JSON POST of `action` to [`CVM`], signed at `ts`.
pub fn tc3_headers(
    action: &str,
    body: &[u8],
    id: &str,
    secret: &str,
    ts: i64,
) -> Vec<(String, String)> {
    tc3_headers_to(CVM, (id, secret), action, body, ts)
}

/// One request to path `/` from `peer`, received at `now`.
pub async fn send(
    api: &TencentApi,
    peer: Option<IpAddr>,
    method: &str,
    raw_query: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Reply {
    api.handle(RawRequest {
        http: nubis_auth::HttpRequestParts {
            method,
            host: HOST,
            path: "/",
            raw_query,
            headers,
            body,
            peer,
        },
        now,
    })
    .await
}

/// A TC3-signed JSON POST of `action` to `to` with this body by `key` (ID, secret), signed
/// and received now, from [`PEER`] with [`USER_AGENT`]: the reply and its `Response`.
pub async fn tc3_to(
    api: &TencentApi,
    to: To<'_>,
    key: (&str, &str),
    action: &str,
    body: &Value,
) -> (Reply, Value) {
    tc3_token_at(api, to, key, None, now(), action, body).await
}

/// [`tc3_to`] with a temporary credential's token (`X-TC-Token`), signed and received at
/// `ts`.
pub async fn tc3_token_at(
    api: &TencentApi,
    to: To<'_>,
    key: (&str, &str),
    token: Option<&str>,
    ts: i64,
    action: &str,
    body: &Value,
) -> (Reply, Value) {
    let body = body.to_string();
    let mut headers = tc3_headers_to(to, key, action, body.as_bytes(), ts);
    headers.push(("user-agent".into(), USER_AGENT.into()));
    headers.extend(token.map(|t| ("x-tc-token".to_string(), t.to_string())));
    let peer = Some(PEER.into());
    let reply = send(api, peer, "POST", "", &headers, body.as_bytes(), ts).await;
    let v: Value = serde_json::from_slice(&reply.body).expect("a JSON reply");
    let response = v["Response"].clone();
    (reply, response)
}

/// A TC3-signed POST of `action` with this JSON body, signed at `ts` with `id` and `secret`,
/// received now; the reply's JSON.
pub async fn tc3(
    api: &TencentApi,
    action: &str,
    body: &str,
    id: &str,
    secret: &str,
    ts: i64,
) -> Value {
    let headers = tc3_headers(action, body.as_bytes(), id, secret, ts);
    let reply = send(api, None, "POST", "", &headers, body.as_bytes(), now()).await;
    serde_json::from_slice(&reply.body).expect("a JSON reply")
}

/// [`tc3`] with the bootstrap key, signed now.
pub async fn call(api: &TencentApi, action: &str, body: &str) -> Value {
    tc3(api, action, body, KEY_ID, SECRET, now()).await
}

/// A legacy (HmacSHA256) signed GET with these parameters (`SecretId` among them), signed with
/// `secret`, received now; the reply's JSON.
pub async fn legacy_get(api: &TencentApi, params: &[(&str, String)], secret: &str) -> Value {
    let mut params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let sig = sign_legacy("GET", HOST, "/", &params, secret, LegacyMethod::HmacSha256);
    params.push(("Signature".into(), sig));
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let headers = [("host".to_string(), HOST.to_string())];
    let reply = send(api, None, "GET", &query, &headers, b"", now()).await;
    serde_json::from_slice(&reply.body).expect("a JSON reply")
}

/// The error code of a reply, if it is an error.
pub fn code(v: &Value) -> Option<&str> {
    v["Response"]["Error"]["Code"].as_str()
}

/// The error code of a reply, or `OK`.
pub fn code_or_ok(v: &Value) -> String {
    code(v).unwrap_or("OK").to_string()
}

/// [`api`] (no rate limits) recording every call in the engine's audit trail.
pub async fn audited_api() -> (TencentApi, Engine, TempDir) {
    let (api, engine, dir) = api(false).await;
    (api.with_auditor(crate::audit_trail(&engine)), engine, dir)
}
