//! Hostile input through the whole OpenStack handler (issue 10): deep JSON bodies and long
//! paths get the service's own error, on a 256 KiB stack so recursion over attacker input
//! would fail the test.

use nubis_api_openstack::RawRequest;
use nubis_testkit::openstack::{self, Wire};
use serde_json::Value;

struct Req {
    method: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Gets an admin token, then runs each request (token added) on a fresh small-stack thread.
fn run_small_stack(reqs: Vec<Req>) -> Vec<(u16, Value)> {
    let rt = nubis_testkit::small_stack_runtime();
    let (api, _engine, _dir) = rt.block_on(openstack::api());
    let token = rt.block_on(openstack::token(&api));
    nubis_testkit::on_small_stacks(&rt, reqs, |mut r| {
        r.headers.push(("x-auth-token".into(), token.clone()));
        r.headers
            .push(("content-type".into(), "application/json".into()));
        let api = &api;
        async move {
            let reply = api
                .handle(RawRequest {
                    http: nubis_auth::HttpRequestParts {
                        method: r.method,
                        host: Wire::LOCAL.host,
                        path: &r.path,
                        raw_query: "",
                        headers: &r.headers,
                        body: &r.body,
                        peer: None,
                    },
                })
                .await;
            (
                reply.status,
                serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
            )
        }
    })
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
