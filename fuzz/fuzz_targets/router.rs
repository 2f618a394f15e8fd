//! The whole in-process router of `nubis serve` (axum, every dialect, the admin API, health,
//! metrics) with arbitrary method, URI, headers and body, unauthenticated: routing and every
//! dialect's pre-authentication path at once. Input: method line, URI line, `name: value`
//! header lines, an empty line, the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_fuzz::{check_reply, headers, line, serve};

fuzz_target!(|data: &[u8]| {
    let (method, rest) = line(data);
    let (uri, rest) = line(rest);
    let (hdrs, body) = headers(rest);
    if let Some((status, ct, out)) = serve(method, uri, &hdrs, body.to_vec()) {
        check_reply("router", status, ct.as_deref(), &out);
    }
});
