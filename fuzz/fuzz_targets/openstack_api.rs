//! Keystone, Nova and Glance (routing, microversions, JSON bodies) with a valid admin token
//! unless the input sends its own `x-auth-token`. Input: a mode byte choosing the path prefix
//! (`/identity/v3`, `/compute/v2.1`, `/image/v2`, none), method line, path[?query] line,
//! header lines, an empty line, the body. No 5xx; JSON answers well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_openstack::RawRequest;
use nubis_fuzz::{check_reply, dialects, headers, line, openstack_token, runtime, text};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (method, rest) = line(data);
    let (target, rest) = line(rest);
    let (mut hdrs, body) = headers(rest);
    let method = text(method);
    let target = text(target);
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let prefix = ["/identity/v3", "/compute/v2.1", "/image/v2", ""][usize::from(mode % 4)];
    let path = format!("{prefix}{path}");
    let d = dialects();
    if !hdrs.iter().any(|(k, _)| k == "x-auth-token") {
        hdrs.push(("x-auth-token".into(), openstack_token(&d)));
    }
    if mode & 4 == 4 {
        hdrs.push(("content-type".into(), "application/json".into()));
    }
    let reply = runtime().block_on(d.openstack.handle(RawRequest {
        http: nubis_auth::HttpRequestParts {
            method: &method,
            host: "127.0.0.1:8080",
            path: &path,
            raw_query: query,
            headers: &hdrs,
            body,
            peer: None,
        },
    }));
    check_reply(
        "openstack",
        reply.status,
        Some(reply.content_type),
        &reply.body,
    );
});
