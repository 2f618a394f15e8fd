//! The OpenStack dialect in process: its API over a test engine, requests with what the wire
//! adds (Host, peer, a check of every reply), Keystone password tokens, Nova faults.

use crate::{PASSWORD, TempDir};
use nubis_api_openstack::{OpenStackApi, RawRequest, Reply};
use nubis_engine::Engine;
use serde_json::{Value, json};
use std::net::IpAddr;
use std::time::Duration;

/// The API (no rate limits) over [`crate::engine`], whose Keystone admin has [`PASSWORD`].
pub async fn api() -> (OpenStackApi, Engine, TempDir) {
    let (engine, dir) = crate::engine().await;
    (OpenStackApi::new(engine.clone(), false), engine, dir)
}

/// How requests arrive: the Host header, the client's address, and a check run on every
/// reply (with the request's method and path) besides the request ID's.
#[derive(Clone, Copy)]
pub struct Wire {
    pub host: &'static str,
    pub peer: Option<IpAddr>,
    pub check: fn(&str, &str, &Reply),
}

fn no_check(_: &str, _: &str, _: &Reply) {}

impl Wire {
    /// Host `127.0.0.1:9999`, no peer address, no check beyond the request ID.
    pub const LOCAL: Wire = Wire {
        host: "127.0.0.1:9999",
        peer: None,
        check: no_check,
    };
}

/// A reply with its JSON body (`Null` when it has none).
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request (`path` may carry `?query`) as `wire` delivers it; every reply must carry an
/// `x-openstack-request-id` and pass `wire.check`.
pub async fn call_via(
    api: &OpenStackApi,
    wire: &Wire,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let r: Reply = api
        .handle(RawRequest {
            http: nubis_auth::HttpRequestParts {
                method,
                host: wire.host,
                path,
                raw_query: query,
                headers: &headers,
                body: body.as_bytes(),
                peer: wire.peer,
            },
        })
        .await;
    (wire.check)(method, path, &r);
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "x-openstack-request-id" && v.starts_with("req-")),
        "{method} {path}: no request id"
    );
    Resp {
        status: r.status,
        body: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        headers: r.headers,
    }
}

/// [`call_via`] over [`Wire::LOCAL`].
pub async fn call(
    api: &OpenStackApi,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    call_via(api, &Wire::LOCAL, method, path, headers, body).await
}

/// A server create (`POST /compute/v2.1/servers`) of `server`, the body's `server` object,
/// with headers `h` (a token, a microversion), as `wire` delivers it.
pub async fn create_server_via(
    api: &OpenStackApi,
    wire: &Wire,
    h: &[(&str, &str)],
    server: Value,
) -> Resp {
    let body = json!({ "server": server });
    call_via(api, wire, "POST", "/compute/v2.1/servers", h, Some(body)).await
}

/// [`create_server_via`] over [`Wire::LOCAL`].
pub async fn create_server(api: &OpenStackApi, h: &[(&str, &str)], server: Value) -> Resp {
    create_server_via(api, &Wire::LOCAL, h, server).await
}

/// A Keystone password authentication of user `name` in domain Default, scoped to project
/// admin.
pub fn user_auth(name: &str, password: &str) -> Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}})
}

/// [`user_auth`] of the admin.
pub fn password_auth(password: &str) -> Value {
    user_auth("admin", password)
}

/// A token of user `name` (201 expected).
pub async fn user_token_via(api: &OpenStackApi, wire: &Wire, name: &str, password: &str) -> String {
    let r = call_via(
        api,
        wire,
        "POST",
        "/identity/v3/auth/tokens",
        &[],
        Some(user_auth(name, password)),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.header("x-subject-token")
        .expect("x-subject-token")
        .to_string()
}

/// The admin's token over [`Wire::LOCAL`].
pub async fn token(api: &OpenStackApi) -> String {
    user_token_via(api, &Wire::LOCAL, "admin", PASSWORD).await
}

/// The ID of the Debian 12.5 image, looked up with headers `h` (a token, a microversion).
pub async fn debian_image_via(api: &OpenStackApi, wire: &Wire, h: &[(&str, &str)]) -> String {
    let images = call_via(
        api,
        wire,
        "GET",
        "/image/v2/images?name=Debian%2012.5%2064bit",
        h,
        None,
    )
    .await;
    images.body["images"][0]["id"]
        .as_str()
        .expect("the Debian image")
        .to_string()
}

/// [`debian_image_via`] over [`Wire::LOCAL`].
pub async fn debian_image(api: &OpenStackApi, h: &[(&str, &str)]) -> String {
    debian_image_via(api, &Wire::LOCAL, h).await
}

/// A fault's (status, name, message); its `code` must be the status.
pub fn fault(r: &Resp) -> (u16, &str, &str) {
    let (name, inner) = r
        .body
        .as_object()
        .and_then(|o| o.iter().next())
        .expect("a fault");
    assert_eq!(inner["code"], json!(r.status));
    (
        r.status,
        name.as_str(),
        inner["message"].as_str().expect("a message"),
    )
}

/// Polls server `id` (token `t`) until it shows `status` with no task; its JSON.
pub async fn wait_status_via(
    api: &OpenStackApi,
    wire: &Wire,
    t: &str,
    id: &str,
    status: &str,
) -> Value {
    for _ in 0..3000 {
        let r = call_via(
            api,
            wire,
            "GET",
            &format!("/compute/v2.1/servers/{id}"),
            &[("x-auth-token", t)],
            None,
        )
        .await;
        let s = &r.body["server"];
        if s["status"] == json!(status) && s["OS-EXT-STS:task_state"].is_null() {
            return s.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never became {status}");
}

/// [`wait_status_via`] over [`Wire::LOCAL`].
pub async fn wait_status(api: &OpenStackApi, t: &str, id: &str, status: &str) -> Value {
    wait_status_via(api, &Wire::LOCAL, t, id, status).await
}
