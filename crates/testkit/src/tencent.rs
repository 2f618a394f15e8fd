//! The Tencent CVM dialect in process: its API over a test engine, TC3-signed JSON POSTs (what
//! tencentcloud-sdk sends) and legacy (HmacSHA*) signed GETs, and the error code of a reply.

use crate::{KEY_ID, SECRET, TempDir, now};
use nubis_api_tencent::{RawRequest, Reply, TencentApi};
use nubis_auth::tencent::{LegacyMethod, sign_legacy, sign_tc3};
use nubis_engine::Engine;
use serde_json::Value;

/// The Host every request names.
pub const HOST: &str = "127.0.0.1:8080";

/// The API (with or without rate limits) over [`crate::engine`].
pub async fn api(rate_limits: bool) -> (TencentApi, Engine, TempDir) {
    let (engine, dir) = crate::engine().await;
    (TencentApi::new(engine.clone(), rate_limits), engine, dir)
}

/// The headers of a TC3-signed JSON POST of `action` in ap-guangzhou, signed at `ts`.
pub fn tc3_headers(
    action: &str,
    body: &[u8],
    id: &str,
    secret: &str,
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
        "cvm",
    );
    [
        ("authorization", auth),
        ("content-type", "application/json".into()),
        ("host", HOST.into()),
        ("x-tc-action", action.into()),
        ("x-tc-version", "2017-03-12".into()),
        ("x-tc-timestamp", ts.to_string()),
        ("x-tc-region", "ap-guangzhou".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// One request to path `/` at `now`.
pub async fn send(
    api: &TencentApi,
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
            peer: None,
        },
        now,
    })
    .await
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
    let reply = send(api, "POST", "", &headers, body.as_bytes(), now()).await;
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
    let reply = send(api, "GET", &query, &headers, b"", now()).await;
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
