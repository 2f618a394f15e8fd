//! A Tencent client in process that signs with the legacy scheme (HmacSHA256, GET), a fresh
//! Nonce per request, over a temporary SQLite store. The tests that walk the registry use it;
//! every_action.rs covers the TC3 path.

use nubis_api_tencent::{RawRequest, TencentApi};
use nubis_auth::tencent::{LegacyMethod, sign_legacy};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ID: &str = "AKIDlegacy";
pub const SECRET: &str = "legacysecret";
pub const REGION: &str = "ap-guangzhou";
const HOST: &str = "127.0.0.1:8080";

pub struct Client {
    pub api: TencentApi,
    nonce: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Client {
    /// A server with rate limits on or off; `configure` may add an authorizer.
    pub async fn new(rate_limits: bool, configure: impl FnOnce(TencentApi) -> TencentApi) -> Self {
        let (engine, dir) = nubis_testkit::engine_with(Some((ID, SECRET)), None).await;
        Self {
            api: configure(TencentApi::new(engine, rate_limits)),
            nonce: AtomicU64::new(1),
            _dir: dir,
        }
    }

    /// `action` with flattened `params` in `region`, signed with `secret`; the response body.
    pub async fn call_as(
        &self,
        secret: &str,
        action: &str,
        region: Option<&str>,
        params: &[(&str, &str)],
    ) -> Value {
        let now = nubis_testkit::now();
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed).to_string();
        let mut pairs: Vec<(String, String)> = [
            ("Action", action),
            ("Version", "2017-03-12"),
            ("Nonce", &nonce),
            ("SecretId", ID),
            ("SignatureMethod", "HmacSHA256"),
        ]
        .into_iter()
        .chain(region.map(|r| ("Region", r)))
        .chain(params.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        pairs.push(("Timestamp".into(), now.to_string()));
        let sig = sign_legacy("GET", HOST, "/", &pairs, secret, LegacyMethod::HmacSha256);
        pairs.push(("Signature".into(), sig));
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish();
        let headers = vec![("host".to_string(), HOST.to_string())];
        let reply = self
            .api
            .handle(RawRequest {
                http: nubis_auth::HttpRequestParts {
                    method: "GET",
                    host: HOST,
                    path: "/",
                    raw_query: &query,
                    headers: &headers,
                    body: b"",
                    peer: None,
                },
                now,
            })
            .await;
        serde_json::from_slice(&reply.body).unwrap()
    }

    /// [`Client::call_as`] with the right secret in [`REGION`].
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Value {
        self.call_as(SECRET, action, Some(REGION), params).await
    }
}

/// The error code of a response, if it is an error.
pub fn code(v: &Value) -> Option<&str> {
    v["Response"]["Error"]["Code"].as_str()
}
