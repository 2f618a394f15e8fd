//! The host-agent signature (docs/agents.md) on attacker bytes: the four headers are bounded
//! and parsed, the time window and MAC checked, and the agent wire's bodies decoded. Input:
//! header lines, an empty line, the path line, then the body. Also: what `sign` makes over
//! any path and body verifies, and changing the body breaks it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_auth::agent;
use nubis_driver::wire;
use nubis_fuzz::{NOW, SECRET, headers, line};

fuzz_target!(|data: &[u8]| {
    let (hdrs, rest) = headers(data);
    let (path, body) = line(rest);
    let path = String::from_utf8_lossy(path);
    let lookup = |name: &str| {
        hdrs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let now_ms = NOW * 1000;
    if let Ok(signed) = agent::parse(lookup) {
        let _ = signed.verify(SECRET, "POST", &path, body, now_ms);
    }
    // What either end decodes after a good signature: never a panic.
    let _ = serde_json::from_slice::<wire::StepCall>(body);
    let _ = serde_json::from_slice::<wire::Report>(body);
    let _ = serde_json::from_slice::<wire::Guests>(body);
    let _ = serde_json::from_slice::<wire::ErrorReply>(body);
    // Round trip: a request signed now verifies, and only with its own body.
    let host = "host-1";
    let made = agent::sign(SECRET, host, "POST", &path, body, now_ms);
    let get = |name: &str| {
        made.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    let signed = agent::parse(get).expect("a signature nubis made parses");
    assert!(signed.verify(SECRET, "POST", &path, body, now_ms).is_ok());
    let mut other = body.to_vec();
    other.push(b'x');
    assert!(
        signed
            .verify(SECRET, "POST", &path, &other, now_ms)
            .is_err()
    );
});
