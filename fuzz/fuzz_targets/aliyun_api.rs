//! The Alibaba dialect end to end past authentication: every request is RPC v1 signed by the
//! harness (GET query or form POST), so the fuzzer reaches each action's parameter parsing,
//! the engine and both renderers (JSON and Format=XML). Input: a mode byte, the action on the
//! first line, then the parameters (`k=v&…`). The answer must be well-formed JSON or XML, in
//! Alibaba's envelope, never a 5xx.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_aliyun::RawRequest;
use nubis_auth::aliyun::sign_v1;
use nubis_fuzz::{
    KEY_ID, NOW, SECRET, aliyun_stamp, dialects, line, must_json, must_not_5xx, must_xml, nonce,
    pairs, runtime, text,
};

const AUTH: &[&str] = &[
    "Action",
    "Version",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (action, payload) = line(data);
    let mut params: Vec<(String, String)> = pairs(payload)
        .into_iter()
        .filter(|(k, _)| !AUTH.contains(&k.as_str()))
        .collect();
    if !params.iter().any(|(k, _)| k == "RegionId") {
        params.push(("RegionId".into(), "cn-hangzhou".into()));
    }
    let sha256 = mode & 0x80 != 0;
    params.extend(
        [
            ("Action", text(action)),
            ("Version", "2014-05-26".to_string()),
            ("AccessKeyId", KEY_ID.to_string()),
            (
                "SignatureMethod",
                if sha256 { "HMAC-SHA256" } else { "HMAC-SHA1" }.to_string(),
            ),
            ("SignatureVersion", "1.0".to_string()),
            ("SignatureNonce", nonce()),
            ("Timestamp", aliyun_stamp()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let post = mode & 1 == 1;
    let method = if post { "POST" } else { "GET" };
    let sig = sign_v1(method, &params, SECRET);
    params.push(("Signature".into(), sig));
    let headers = vec![
        ("host".to_string(), "ecs.aliyuncs.com".to_string()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let (query, form) = if post {
        (Vec::new(), params)
    } else {
        (params, Vec::new())
    };
    let d = dialects();
    let reply = runtime().block_on(d.aliyun.handle(RawRequest {
        http: nubis_auth::HttpRequestParts {
            method: method,
            host: "",
            path: "/",
            raw_query: "",
            headers: &headers,
            body: b"",
            peer: None,
        },
        query: &query,
        form: &form,
        now: NOW,
    }));
    must_not_5xx("aliyun", reply.status, &reply.body);
    if reply.content_type.contains("xml") {
        must_xml("aliyun reply", &reply.body);
    } else {
        let v = must_json("aliyun reply", &reply.body);
        assert!(v["RequestId"].is_string(), "no RequestId: {v}");
        if let Some(code) = &reply.code {
            assert_eq!(v["Code"].as_str(), Some(code.as_str()));
            assert_ne!(
                code, "SignatureDoesNotMatch",
                "harness signature refused: {v}"
            );
        }
    }
});
