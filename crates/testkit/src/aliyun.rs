//! The Alibaba ECS dialect in process: its API over a test engine, RPC requests signed with
//! v1 (HMAC-SHA1, in the query or a form body) or ACS3-HMAC-SHA256 (headers), and the error
//! code of a reply.

use crate::{KEY_ID, SECRET, TempDir, now};
use nubis_api_aliyun::{AliyunApi, RawRequest, Reply};
use nubis_auth::aliyun::{ACS3_ALGORITHM, sign_v1, sign_v3};
use nubis_engine::Engine;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// The API (with or without rate limits) over [`crate::engine`].
pub async fn api(rate_limits: bool) -> (AliyunApi, Engine, TempDir) {
    let (engine, dir) = crate::engine().await;
    (AliyunApi::new(engine.clone(), rate_limits), engine, dir)
}

/// A Unix time as the RPC `Timestamp` (and ACS3 `x-acs-date`) writes it.
pub fn stamp(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .expect("a valid time")
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .expect("formatted")
}

/// The parameters of a v1 (HMAC-SHA1) RPC request of `action` by `key` (ID, secret) at `ts`
/// with this nonce, then `extra` (a name given there replaces a common one), and last the
/// `Signature` over them for `method`.
pub fn signed_v1(
    method: &str,
    action: &str,
    (id, secret): (&str, &str),
    ts: i64,
    nonce: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = [
        ("Action", action.to_string()),
        ("Version", "2014-05-26".into()),
        ("Format", "JSON".into()),
        ("AccessKeyId", id.into()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("SignatureNonce", nonce.into()),
        ("Timestamp", stamp(ts)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        params.retain(|(n, _)| n != k);
        params.push((k.to_string(), v.clone()));
    }
    let sig = sign_v1(method, &params, secret);
    params.push(("Signature".into(), sig));
    params
}

/// Where a request carries its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    Query,
    /// A form-encoded body (the parameters as the listener decodes them).
    Form,
}

/// One request to path `/` without headers or body, received now.
pub async fn send(api: &AliyunApi, method: &str, place: In, params: &[(String, String)]) -> Reply {
    let (query, form) = match place {
        In::Query => (params, &[][..]),
        In::Form => (&[][..], params),
    };
    request(api, method, &[], query, form, now()).await
}

/// One request to path `/` with these headers, query and form body (no raw body) at `now`.
pub async fn request(
    api: &AliyunApi,
    method: &str,
    headers: &[(String, String)],
    query: &[(String, String)],
    form: &[(String, String)],
    now: i64,
) -> Reply {
    api.handle(RawRequest {
        http: nubis_auth::HttpRequestParts {
            method,
            host: "",
            path: "/",
            raw_query: "",
            headers,
            body: b"",
            peer: None,
        },
        query,
        form,
        now,
    })
    .await
}

/// A v1-signed request ([`signed_v1`]) sent in the query.
pub async fn v1(
    api: &AliyunApi,
    method: &str,
    action: &str,
    key: (&str, &str),
    ts: i64,
    nonce: &str,
    extra: &[(&str, String)],
) -> Reply {
    let params = signed_v1(method, action, key, ts, nonce, extra);
    send(api, method, In::Query, &params).await
}

/// A v1-signed POST of `action` under `version` by `key` (ID, secret) with these parameters
/// and a nonce of its own, signed and received now.
pub async fn rpc(
    api: &AliyunApi,
    key: (&str, &str),
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> Reply {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let nonce = format!("rpc-{}", NONCE.fetch_add(1, Ordering::Relaxed));
    let mut extra: Vec<(&str, String)> = vec![("Version", version.to_string())];
    extra.extend(params.iter().map(|(k, v)| (*k, v.to_string())));
    v1(api, "POST", action, key, now(), &nonce, &extra).await
}

/// The SHA-256 of an empty body, hex: what the SDKs send as `x-acs-content-sha256` for a
/// request without one.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The headers of an ACS3-HMAC-SHA256 signed POST of `action` (parameters in `query`, no
/// body) by [`KEY_ID`] at `ts` with this nonce, every header signed.
pub fn acs3_headers(
    action: &str,
    query: &[(String, String)],
    ts: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    acs3_headers_by((KEY_ID, SECRET), action, query, ts, nonce)
}

/// [`acs3_headers`] signed with `key` (ID, secret).
pub fn acs3_headers_by(
    (id, secret): (&str, &str),
    action: &str,
    query: &[(String, String)],
    ts: i64,
    nonce: &str,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        ("host", "ecs.cn-hangzhou.aliyuncs.com".to_string()),
        ("x-acs-action", action.into()),
        ("x-acs-content-sha256", EMPTY_SHA256.into()),
        ("x-acs-date", stamp(ts)),
        ("x-acs-signature-nonce", nonce.into()),
        ("x-acs-version", "2014-05-26".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    let signed: Vec<&str> = names.iter().map(String::as_str).collect();
    let sig = sign_v3("POST", "/", query, &headers, &signed, secret);
    headers.push((
        "authorization".into(),
        format!(
            "{ACS3_ALGORITHM} Credential={id},SignedHeaders={},Signature={sig}",
            signed.join(";")
        ),
    ));
    headers
}

/// An ACS3-signed POST ([`acs3_headers`]) received now.
pub async fn acs3(api: &AliyunApi, action: &str, query: &[(String, String)], nonce: &str) -> Reply {
    let headers = acs3_headers(action, query, now(), nonce);
    request(api, "POST", &headers, query, &[], now()).await
}

/// The JSON of a reply.
pub fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).expect("a JSON reply")
}

/// A reply's status and error code, or `OK`.
pub fn status_and_code(reply: &Reply) -> (u16, String) {
    let v = json(reply);
    (reply.status, v["Code"].as_str().unwrap_or("OK").to_string())
}

/// [`api`] (no rate limits) recording every call in the engine's audit trail.
pub async fn audited_api() -> (AliyunApi, Engine, TempDir) {
    let (api, engine, dir) = api(false).await;
    (api.with_auditor(crate::audit_trail(&engine)), engine, dir)
}
