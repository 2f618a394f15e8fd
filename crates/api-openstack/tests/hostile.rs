//! Hostile input through the whole OpenStack handler (issue 10): deep JSON bodies and long
//! paths get the service's own error, on a 256 KiB stack so recursion over attacker input
//! would fail the test.

use nubis_api_openstack::{OpenStackApi, RawRequest};
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::{Value, json};
use std::sync::Arc;

const PASSWORD: &str = "Adm1n-Passw0rd";
const SMALL_STACK: usize = 256 * 1024;

struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn password_auth() -> Vec<u8> {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": PASSWORD}}}}})
    .to_string()
    .into_bytes()
}

/// Gets an admin token, then runs each request (token added) on a fresh small-stack thread.
fn run_small_stack(reqs: Vec<Req>) -> Vec<(u16, Value)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (api, token, _dir) = rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("n.db")).unwrap();
        let secrets = SecretBox::load_or_create(dir.path().join("k")).unwrap();
        let engine = Engine::start(Arc::new(store), Arc::new(SimDriver::new(0.0)), secrets)
            .await
            .unwrap();
        engine
            .bootstrap(
                Some(("testid".into(), "secret".into())),
                Some(PASSWORD.into()),
            )
            .await
            .unwrap();
        let api = Arc::new(OpenStackApi::new(engine, false));
        let body = password_auth();
        let r = api
            .handle(RawRequest {
                method: "POST",
                host: "127.0.0.1:9999",
                path: "/identity/v3/auth/tokens",
                raw_query: "",
                headers: &[],
                body: &body,
                peer: None,
            })
            .await;
        let token = r
            .headers
            .iter()
            .find(|(k, _)| k == "x-subject-token")
            .map(|(_, v)| v.clone())
            .expect("a token");
        (api, token, dir)
    });
    reqs.into_iter()
        .map(|mut r| {
            r.headers.push(("x-auth-token".into(), token.clone()));
            r.headers
                .push(("content-type".into(), "application/json".into()));
            let api = Arc::clone(&api);
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    let reply = handle.block_on(api.handle(RawRequest {
                        method: r.method,
                        host: "127.0.0.1:9999",
                        path: &r.path,
                        raw_query: "",
                        headers: &r.headers,
                        body: &r.body,
                        peer: None,
                    }));
                    (
                        reply.status,
                        serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
                    )
                })
                .unwrap()
                .join()
                .expect("the handler must not crash")
        })
        .collect()
}

#[test]
fn deep_bodies_and_long_paths_get_the_services_errors() {
    let deep = |prefix: &str, n: usize| format!("{prefix}{}", "[".repeat(n)).into_bytes();
    let replies = run_small_stack(vec![
        // Nova: 100,000 levels, then just past our limit of 32.
        Req {
            method: "POST",
            path: "/compute/v2.1/servers".into(),
            headers: vec![],
            body: deep(r#"{"server":"#, 100_000),
        },
        Req {
            method: "POST",
            path: "/compute/v2.1/servers".into(),
            headers: vec![],
            body: format!(r#"{{"server":{}1{}}}"#, "[".repeat(32), "]".repeat(32)).into_bytes(),
        },
        // Keystone: serde_json's own limit (128) answers.
        Req {
            method: "POST",
            path: "/identity/v3/auth/tokens".into(),
            headers: vec![],
            body: deep(r#"{"auth":"#, 100_000),
        },
        // 100,000 path segments.
        Req {
            method: "GET",
            path: format!("/compute/v2.1{}", "/servers".repeat(100_000)),
            headers: vec![],
            body: vec![],
        },
        Req {
            method: "GET",
            path: format!("/image/v2{}", "/images".repeat(100_000)),
            headers: vec![],
            body: vec![],
        },
    ]);
    let nova_bad = &replies[0];
    assert_eq!(nova_bad.0, 400);
    assert_eq!(
        nova_bad.1["badRequest"]["message"], "Malformed request body",
        "{}",
        nova_bad.1
    );
    assert_eq!(replies[1].0, 400);
    assert_eq!(replies[1].1["badRequest"]["code"], 400);
    assert_eq!(replies[2].0, 400);
    assert_eq!(replies[2].1["error"]["code"], 400, "{}", replies[2].1);
    assert_eq!(replies[3].0, 404);
    assert_eq!(
        replies[3].1["itemNotFound"]["code"], 404,
        "{}",
        replies[3].1
    );
    assert_eq!(replies[4].0, 404);
}
