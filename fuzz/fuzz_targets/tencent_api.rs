//! The Tencent dialect end to end past authentication: every request is correctly signed by
//! the harness, so the fuzzer reaches the typed request parsing of every action, the engine
//! and the renderers. Input: a mode byte (TC3 JSON POST / TC3 GET / TC3 form POST / legacy
//! GET / legacy form POST), the action on the first line, then the JSON body or parameters.
//! The answer must be Tencent's envelope: JSON `{"Response":{…,"RequestId"}}`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_tencent::RawRequest;
use nubis_auth::tencent::{LegacyMethod, sign_legacy, sign_tc3};
use nubis_fuzz::{
    HOST, KEY_ID, NOW, SECRET, dialects, encode, line, must_json, nonce_n, pairs, runtime, text,
};

const LEGACY_COMMON: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (action, payload) = line(data);
    let action = text(action);
    let d = dialects();
    let common = |ct: &str, authz: String| -> Vec<(String, String)> {
        [
            ("authorization", authz),
            ("content-type", ct.to_string()),
            ("host", HOST.to_string()),
            ("x-tc-action", action.clone()),
            ("x-tc-version", "2017-03-12".to_string()),
            ("x-tc-timestamp", NOW.to_string()),
            ("x-tc-region", "ap-guangzhou".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    };
    let (method, raw_query, headers, body): (&str, String, Vec<(String, String)>, Vec<u8>) =
        match mode % 5 {
            0 | 2 => {
                let ct = if mode % 5 == 0 {
                    "application/json"
                } else {
                    "application/x-www-form-urlencoded"
                };
                let authz = sign_tc3("POST", HOST, "", ct, payload, KEY_ID, SECRET, NOW, "cvm");
                ("POST", String::new(), common(ct, authz), payload.to_vec())
            }
            1 => {
                let q = text(payload);
                let ct = "application/x-www-form-urlencoded";
                let authz = sign_tc3("GET", HOST, &q, ct, b"", KEY_ID, SECRET, NOW, "cvm");
                ("GET", q, common(ct, authz), Vec::new())
            }
            m => {
                let mut params: Vec<(String, String)> = pairs(payload)
                    .into_iter()
                    .filter(|(k, _)| !LEGACY_COMMON.contains(&k.as_str()))
                    .collect();
                let sha256 = mode & 0x80 != 0;
                params.extend(
                    [
                        ("Action", action.clone()),
                        ("Version", "2017-03-12".to_string()),
                        ("Region", "ap-guangzhou".to_string()),
                        ("Timestamp", NOW.to_string()),
                        ("Nonce", nonce_n().to_string()),
                        ("SecretId", KEY_ID.to_string()),
                    ]
                    .map(|(k, v)| (k.to_string(), v)),
                );
                let sig_method = if sha256 {
                    params.push(("SignatureMethod".into(), "HmacSHA256".into()));
                    LegacyMethod::HmacSha256
                } else {
                    LegacyMethod::HmacSha1
                };
                let method = if m == 3 { "GET" } else { "POST" };
                let sig = sign_legacy(method, HOST, "/", &params, SECRET, sig_method);
                params.push(("Signature".into(), sig));
                let enc = encode(&params);
                let headers = vec![
                    ("host".to_string(), HOST.to_string()),
                    (
                        "content-type".to_string(),
                        "application/x-www-form-urlencoded".to_string(),
                    ),
                ];
                if m == 3 {
                    ("GET", enc, headers, Vec::new())
                } else {
                    ("POST", String::new(), headers, enc.into_bytes())
                }
            }
        };
    let reply = runtime().block_on(d.tencent.handle(RawRequest {
        http: nubis_auth::HttpRequestParts {
            method,
            host: HOST,
            path: "/",
            raw_query: &raw_query,
            headers: &headers,
            body: &body,
            peer: None,
        },
        now: NOW,
    }));
    let v = must_json("tencent reply", &reply.body);
    assert!(
        v["Response"]["RequestId"].is_string(),
        "no Response.RequestId: {v}"
    );
    if let Some(code) = &reply.code {
        assert_eq!(v["Response"]["Error"]["Code"].as_str(), Some(code.as_str()));
        assert_ne!(
            code, "AuthFailure.SignatureFailure",
            "harness signature refused: {v}"
        );
        assert!(!code.starts_with("InternalError"), "{v}");
    }
});
