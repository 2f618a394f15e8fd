//! The admin API (`/admin/v1/…`) through the router, with valid admin credentials (mode bit
//! 0 set) or none/whatever the input sends: path, query, JSON bodies and extractors.
//! Input: a mode byte, method line, path line (after `/admin/v1`), header lines, an empty
//! line, the body.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use nubis_fuzz::{KEY_ID, SECRET, check_reply, headers, line, serve};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (method, rest) = line(data);
    let (path, rest) = line(rest);
    let (mut hdrs, body) = headers(rest);
    if mode & 1 == 1 {
        let cred = base64::engine::general_purpose::STANDARD.encode(format!("{KEY_ID}:{SECRET}"));
        hdrs.push(("authorization".into(), format!("Basic {cred}")));
    }
    if mode & 2 == 2 {
        hdrs.push(("content-type".into(), "application/json".into()));
    }
    let mut uri = b"/admin/v1".to_vec();
    uri.extend_from_slice(path);
    if let Some((status, ct, out)) = serve(method, &uri, &hdrs, body.to_vec()) {
        check_reply("admin", status, ct.as_deref(), &out);
    }
});
