//! Tencent signature parsers and verifiers (TC3-HMAC-SHA256 and legacy HmacSHA1/HmacSHA256)
//! on attacker bytes. Input: `name: value` header lines, an empty line, the raw query line,
//! then the body. Also: a TC3 signature made over any body and query verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_auth::tencent::{
    HttpRequestParts, check_timestamp, parse_legacy, parse_tc3, sign_tc3, validate_secret_id,
    verify_legacy, verify_tc3,
};
use nubis_fuzz::{HOST, KEY_ID, NOW, SECRET, headers, line, pairs, text};

fuzz_target!(|data: &[u8]| {
    let (hdrs, rest) = headers(data);
    let (q, body) = line(rest);
    let raw_query = text(q);
    let host = hdrs
        .iter()
        .find(|(k, _)| k == "host")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| HOST.to_string());
    let method = if body.is_empty() { "GET" } else { "POST" };

    if let Ok(auth) = parse_tc3(&hdrs) {
        let _ = check_timestamp(auth.timestamp(), NOW);
        let _ = validate_secret_id(auth.secret_id());
        let parts = HttpRequestParts {
            method,
            host: &host,
            path: "/",
            raw_query: &raw_query,
            headers: &hdrs,
            body,
            peer: None,
        };
        let _ = verify_tc3(&parts, &auth, SECRET);
    }
    for (m, params) in [("GET", pairs(q)), ("POST", pairs(body))] {
        if let Ok(auth) = parse_legacy(&params) {
            let _ = check_timestamp(auth.timestamp(), NOW);
            let _ = verify_legacy(m, &host, "/", &params, &auth, SECRET);
        }
    }

    // Round trip: what the SDK signs (JSON POST over any body, GET over any query) verifies.
    let (ts, ok_body, ok_query, m) = if body.is_empty() {
        (NOW, &b""[..], raw_query.as_str(), "GET")
    } else {
        (NOW, body, "", "POST")
    };
    let authz = sign_tc3(
        m,
        HOST,
        ok_query,
        "application/json",
        ok_body,
        KEY_ID,
        SECRET,
        ts,
        "cvm",
    );
    let signed: Vec<(String, String)> = [
        ("authorization", authz),
        ("content-type", "application/json".to_string()),
        ("host", HOST.to_string()),
        ("x-tc-timestamp", ts.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let auth = parse_tc3(&signed).expect("a signed request parses");
    let parts = HttpRequestParts {
        method: m,
        host: HOST,
        path: "/",
        raw_query: ok_query,
        headers: &signed,
        body: ok_body,
        peer: None,
    };
    assert_eq!(
        verify_tc3(&parts, &auth, SECRET),
        Ok(()),
        "signed request refused"
    );
});
