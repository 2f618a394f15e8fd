//! What every request passes before a dialect sees it: the in-flight cap (load shedding) and
//! the body limits (size and time). Refusals are answered in the shape of the dialect the
//! request is written in, judged from its head alone (no body is read to refuse one).

use crate::limits::Limits;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Seconds a throttled client is told to wait (`Retry-After`).
const RETRY_AFTER_SECS: &str = "1";

/// Requests in flight per client address.
type Shares = Arc<Mutex<HashMap<IpAddr, usize>>>;

pub struct Guard {
    inflight: Arc<Semaphore>,
    /// Requests in flight per client address; an entry lives only while it is above zero,
    /// so the map never holds more than `max_inflight` addresses.
    per_source: Shares,
    limits: Limits,
}

impl Guard {
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Self {
            inflight: Arc::new(Semaphore::new(limits.max_inflight)),
            per_source: Arc::default(),
            limits,
        })
    }

    /// A slot of `source`'s share, or None when it already holds its share.
    fn take_source(&self, source: Option<IpAddr>) -> Option<SourceSlot> {
        let Some(ip) = source else {
            return Some(SourceSlot(None));
        };
        let mut map = self.per_source.lock();
        let n = map.entry(ip).or_insert(0);
        if *n >= self.limits.max_inflight_per_source {
            return None;
        }
        *n += 1;
        Some(SourceSlot(Some((ip, self.per_source.clone()))))
    }
}

/// One request of a source in flight; released on drop.
struct SourceSlot(Option<(IpAddr, Shares)>);

impl Drop for SourceSlot {
    fn drop(&mut self) {
        if let Some((ip, map)) = &self.0 {
            let mut map = map.lock();
            if let Some(n) = map.get_mut(ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(ip);
                }
            }
        }
    }
}

/// The wire dialect a request is written in, as far as its head tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Tencent,
    Aliyun {
        xml: bool,
    },
    Nova,
    Keystone,
    Glance,
    /// Not a dialect's request (the admin API, /metrics, junk).
    Other,
}

impl Dialect {
    /// The `dialect` metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Dialect::Tencent => "tencent",
            Dialect::Aliyun { .. } => "aliyun",
            Dialect::Nova | Dialect::Keystone | Dialect::Glance => "openstack",
            Dialect::Other => "other",
        }
    }
}

/// Judged from the path, the headers and the query only. A form-encoded `POST /` without
/// Alibaba's markers is Tencent's: Tencent's HmacSHA* signing sends every parameter in the
/// form body, while Alibaba's RPC clients always put `Action`/`Version` in the query.
pub fn classify(uri: &Uri, headers: &HeaderMap) -> Dialect {
    let path = uri.path();
    if nubis_api_openstack::claims(path) {
        return if path.starts_with("/identity") {
            Dialect::Keystone
        } else if path.starts_with("/compute") {
            Dialect::Nova
        } else {
            Dialect::Glance
        };
    }
    if path != "/" {
        return Dialect::Other;
    }
    let query = nubis_api_tencent::decode_pairs(uri.query().unwrap_or("").as_bytes());
    let xml = query
        .iter()
        .any(|(k, v)| k == "Format" && v.eq_ignore_ascii_case("XML"));
    if headers.contains_key("x-tc-action") {
        return Dialect::Tencent;
    }
    if headers.contains_key("x-acs-action") {
        return Dialect::Aliyun { xml };
    }
    let no_headers: &[(String, String)] = &[];
    if nubis_api_aliyun::claims(no_headers, &query) {
        return Dialect::Aliyun { xml };
    }
    if nubis_api_tencent::claims(no_headers, &query) {
        return Dialect::Tencent;
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        Dialect::Tencent
    } else {
        Dialect::Other
    }
}

/// Why a request is refused before it reaches its dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over the in-flight cap.
    Throttled,
    /// Body over `max_body` (declared or sent).
    TooLarge { limit: usize },
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Refusal::Throttled => {
                "The server is handling too many requests at once; retry later.".into()
            }
            Refusal::TooLarge { limit } => {
                format!("The request body exceeds the limit of {limit} bytes.")
            }
        }
    }
}

/// Status, content type, body, metrics code, request-id header.
type Shape = (
    u16,
    &'static str,
    Vec<u8>,
    &'static str,
    Option<(&'static str, String)>,
);

/// The refusal in the dialect's own shape: Tencent `RequestLimitExceeded` /
/// `RequestSizeLimitExceeded` in its HTTP-200 envelope; Alibaba `Throttling` (400) /
/// `InvalidParameter` (413); Nova `overLimit` and Keystone's error envelope with 429 / 413;
/// Glance's plain text. Throttling carries `Retry-After`. Returns (response, metrics code).
pub fn refuse(dialect: Dialect, refusal: Refusal) -> (Response, &'static str) {
    let message = refusal.message();
    let throttled = refusal == Refusal::Throttled;
    let (status, content_type, body, code, request_id_header): Shape = match dialect {
        Dialect::Tencent => {
            let code = if throttled {
                "RequestLimitExceeded"
            } else {
                "RequestSizeLimitExceeded"
            };
            let id = nubis_core::ids::new_request_id();
            let e = nubis_api_tencent::errors::ApiError::new(code, message);
            (
                200,
                "application/json",
                nubis_api_tencent::errors::envelope(&e, &id),
                code,
                Some(("x-tc-requestid", id)),
            )
        }
        Dialect::Aliyun { xml } => {
            let (status, code, message) = if throttled {
                (
                    400,
                    "Throttling",
                    "Request was denied due to request throttling.".to_string(),
                )
            } else {
                (413, "InvalidParameter", message)
            };
            let id = nubis_api_aliyun::errors::new_request_id();
            let e = nubis_api_aliyun::errors::ApiError::new(status, code, message);
            let (ct, body) = nubis_api_aliyun::errors::render(&e, &id, xml);
            (status, ct, body, code, None)
        }
        Dialect::Nova | Dialect::Keystone | Dialect::Glance => {
            let (status, code) = if throttled {
                (429, "429")
            } else {
                (413, "413")
            };
            let message = if throttled {
                "This request was rate-limited.".to_string()
            } else {
                "Request is too large.".to_string()
            };
            let id = nubis_core::ids::new_openstack_request_id();
            let (ct, body) = match dialect {
                Dialect::Nova => (
                    "application/json",
                    nubis_api_openstack::errors::Fault::new(status, message).body(),
                ),
                Dialect::Keystone => (
                    "application/json",
                    nubis_api_openstack::errors::keystone_body(status, &message),
                ),
                _ => {
                    let reason = if throttled {
                        "Too Many Requests"
                    } else {
                        "Request Entity Too Large"
                    };
                    let text = nubis_api_openstack::errors::glance_text(status, reason, &message);
                    ("text/plain; charset=UTF-8", serde_json::Value::String(text))
                }
            };
            let body = match body {
                serde_json::Value::String(s) => s.into_bytes(),
                v => serde_json::to_vec(&v).expect("a JSON object serializes"),
            };
            (status, ct, body, code, Some(("x-openstack-request-id", id)))
        }
        Dialect::Other => {
            let (status, code) = if throttled {
                (429, "TooManyRequests")
            } else {
                (413, "RequestTooLarge")
            };
            let body = serde_json::to_vec(
                &serde_json::json!({"error": {"code": code, "message": message}}),
            )
            .expect("a JSON object serializes");
            (status, "application/json", body, code, None)
        }
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some((name, id)) = request_id_header
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        h.insert(name, v);
    }
    if throttled && dialect != Dialect::Tencent {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
        if matches!(dialect, Dialect::Aliyun { .. }) {
            // What the Tea SDK reads (ms) to raise its ThrottlingException.
            h.insert("x-acs-retry-after", HeaderValue::from_static("1000"));
        }
    }
    if !throttled {
        // The rest of the body is never read: this connection cannot carry another request.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    (resp, code)
}

/// Marks a request whose body the guard left unread (an image upload): the listener reads it
/// chunk by chunk, each within `idle`.
#[derive(Debug, Clone, Copy)]
pub struct StreamedBody {
    pub idle: std::time::Duration,
}

/// The in-flight cap and the body limits, in front of every route but `/healthz`.
pub async fn layer(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let start = std::time::Instant::now();
    // The source's share first: one client holding slow bodies cannot take every slot.
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let Some(source_slot) = g.take_source(source) else {
        return refused(&req, Refusal::Throttled, start);
    };
    let Ok(permit) = g.inflight.clone().try_acquire_owned() else {
        return refused(&req, Refusal::Throttled, start);
    };
    // A Glance image upload is not read here: the listener streams it to the image directory
    // after authenticating it, with the image size cap in place of `max_body` and the body
    // timeout applied to every chunk (docs/images.md, "Glance").
    if nubis_api_openstack::OpenStackApi::is_upload(req.method().as_str(), req.uri().path()) {
        let mut req = req;
        req.extensions_mut().insert(StreamedBody {
            idle: g.limits.body_timeout,
        });
        let resp = next.run(req).await;
        drop(permit);
        drop(source_slot);
        return resp;
    }
    let limit = g.limits.max_body;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refused(&req, Refusal::TooLarge { limit }, start);
    }
    let (parts, body) = req.into_parts();
    let body = match tokio::time::timeout(
        g.limits.body_timeout,
        Limited::new(body, limit).collect(),
    )
    .await
    {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            let req = Request::from_parts(parts, Body::empty());
            return refused(&req, Refusal::TooLarge { limit }, start);
        }
        // The client broke the body off (reset, bad chunking): nobody is left to answer.
        Ok(Err(_)) => return close(StatusCode::BAD_REQUEST, "the request body is malformed"),
        Err(_) => {
            metrics::counter!("nubis_connections_timed_out_total", "phase" => "body").increment(1);
            return close(
                StatusCode::REQUEST_TIMEOUT,
                "the request body was not received in time",
            );
        }
    };
    let resp = next.run(Request::from_parts(parts, Body::from(body))).await;
    drop(permit);
    drop(source_slot);
    resp
}

fn refused(req: &Request, refusal: Refusal, start: std::time::Instant) -> Response {
    let dialect = classify(req.uri(), req.headers());
    let (resp, code) = refuse(dialect, refusal);
    crate::http::observe_refusal(dialect.label(), code, resp.status().as_u16(), start);
    resp
}

fn close(status: StatusCode, message: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONNECTION, "close"),
        ],
        serde_json::json!({"error": {"code": status.as_u16(), "message": message}}).to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(uri: &str, headers: &[(&'static str, &str)]) -> (Uri, HeaderMap) {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_str(v).expect("ascii"));
        }
        (uri.parse().expect("uri"), h)
    }

    #[test]
    fn classifies_from_the_head() {
        type Case<'a> = (&'a str, &'a [(&'static str, &'a str)], Dialect);
        let cases: &[Case] = &[
            ("/", &[("x-tc-action", "DescribeZones")], Dialect::Tencent),
            (
                "/?Action=DescribeZones&Version=2017-03-12",
                &[],
                Dialect::Tencent,
            ),
            (
                "/",
                &[("content-type", "application/x-www-form-urlencoded")],
                Dialect::Tencent,
            ),
            (
                "/?Action=DescribeRegions&Version=2014-05-26",
                &[],
                Dialect::Aliyun { xml: false },
            ),
            (
                "/?Action=DescribeRegions&Version=2014-05-26&Format=XML",
                &[("content-type", "application/x-www-form-urlencoded")],
                Dialect::Aliyun { xml: true },
            ),
            (
                "/",
                &[("x-acs-action", "DescribeRegions")],
                Dialect::Aliyun { xml: false },
            ),
            ("/compute/v2.1/servers", &[], Dialect::Nova),
            ("/identity/v3/auth/tokens", &[], Dialect::Keystone),
            ("/image/v2/images", &[], Dialect::Glance),
            ("/admin/v1/access-keys", &[], Dialect::Other),
            ("/", &[], Dialect::Other),
        ];
        for (uri, headers, want) in cases {
            let (u, h) = head(uri, headers);
            assert_eq!(classify(&u, &h), *want, "{uri} {headers:?}");
        }
    }

    async fn body_of(resp: Response) -> (u16, HeaderMap, serde_json::Value) {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .expect("in-memory body")
            .to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, headers, v)
    }

    #[tokio::test]
    async fn every_refusal_has_its_dialects_shape_and_no_5xx() {
        for refusal in [Refusal::Throttled, Refusal::TooLarge { limit: 10 }] {
            let throttled = refusal == Refusal::Throttled;
            let (r, code) = refuse(Dialect::Tencent, refusal);
            let (status, h, v) = body_of(r).await;
            assert_eq!(status, 200);
            assert_eq!(v["Response"]["Error"]["Code"], code);
            assert!(v["Response"]["RequestId"].is_string());
            assert!(h.contains_key("x-tc-requestid"));

            let (r, code) = refuse(Dialect::Aliyun { xml: false }, refusal);
            let (status, h, v) = body_of(r).await;
            assert_eq!(status, if throttled { 400 } else { 413 });
            assert_eq!(v["Code"], code);
            for k in ["RequestId", "HostId", "Message", "Recommend"] {
                assert!(v[k].is_string(), "{k} in {v}");
            }
            assert_eq!(h.contains_key(header::RETRY_AFTER), throttled);

            let (r, _) = refuse(Dialect::Aliyun { xml: true }, refusal);
            let (_, h, v) = body_of(r).await;
            assert!(
                h[header::CONTENT_TYPE]
                    .to_str()
                    .unwrap_or("")
                    .starts_with("text/xml")
            );
            assert!(v.as_str().is_some_and(|x| x.contains("<Error>")), "{v}");

            let want = if throttled { 429 } else { 413 };
            let (r, _) = refuse(Dialect::Nova, refusal);
            let (status, h, v) = body_of(r).await;
            assert_eq!(status, want);
            assert_eq!(v["overLimit"]["code"], want);
            assert_eq!(h.contains_key(header::RETRY_AFTER), throttled);

            let (r, _) = refuse(Dialect::Keystone, refusal);
            let (status, _, v) = body_of(r).await;
            assert_eq!(status, want);
            assert_eq!(v["error"]["code"], want);
            assert!(
                v["error"]["title"]
                    .as_str()
                    .is_some_and(|t| t.contains("Too"))
            );

            let (r, _) = refuse(Dialect::Glance, refusal);
            let (status, _, v) = body_of(r).await;
            assert_eq!(status, want);
            assert!(v.as_str().is_some_and(|t| t.starts_with(&want.to_string())));

            let (r, _) = refuse(Dialect::Other, refusal);
            assert_eq!(r.status().as_u16(), want);
        }
    }
}
