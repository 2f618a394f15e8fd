//! Alibaba signature parsers and verifiers (RPC v1 HMAC-SHA1/SHA256 and ACS3-HMAC-SHA256),
//! timestamps and the nonce cache on attacker bytes. Input: header lines, an empty line, the
//! raw query line, then the (form) body. Also: a v1 signature over any parameters verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_auth::aliyun::{
    AliyunAuth, check_timestamp, parse, parse_timestamp, percent_encode, sign_v1, verify_v1,
    verify_v3,
};
use nubis_auth::nonce::NonceCache;
use nubis_fuzz::{KEY_ID, NOW, SECRET, aliyun_stamp, headers, line, pairs, text};

const AUTH_PARAMS: &[&str] = &[
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
];

fuzz_target!(|data: &[u8]| {
    static NONCES: std::sync::OnceLock<NonceCache> = std::sync::OnceLock::new();
    let nonces = NONCES.get_or_init(|| NonceCache::with_limits(1800, 1000));

    let (hdrs, rest) = headers(data);
    let (q, body) = line(rest);
    let query = pairs(q);
    let form = pairs(body);
    let all: Vec<(String, String)> = query.iter().chain(&form).cloned().collect();
    let method = if body.is_empty() { "GET" } else { "POST" };

    if let Ok(auth) = parse(&all, &hdrs) {
        if let Ok(ts) = parse_timestamp(auth.timestamp()) {
            let _ = check_timestamp(ts, NOW);
        }
        match auth {
            AliyunAuth::V1 { .. } => {
                let _ = verify_v1(method, &all, &auth, SECRET);
            }
            AliyunAuth::V3 { .. } => {
                let _ = verify_v3(method, "/", &query, &hdrs, body, &auth, SECRET);
            }
        }
        if let Ok(ts) = parse_timestamp(auth.timestamp()) {
            let _ = nonces.is_used(auth.access_key_id(), auth.nonce(), NOW);
            let _ = nonces.check_and_insert(auth.access_key_id(), auth.nonce(), NOW, ts);
        }
    }
    let _ = parse_timestamp(&text(q));
    let _ = percent_encode(&text(body));

    // Round trip: any parameters the SDK signs verify.
    let mut params: Vec<(String, String)> = query
        .into_iter()
        .filter(|(k, _)| !AUTH_PARAMS.contains(&k.as_str()))
        .collect();
    let sha256 = body.first().is_some_and(|b| b & 1 == 1);
    params.extend(
        [
            ("AccessKeyId", KEY_ID.to_string()),
            (
                "SignatureMethod",
                if sha256 { "HMAC-SHA256" } else { "HMAC-SHA1" }.to_string(),
            ),
            ("SignatureVersion", "1.0".to_string()),
            ("SignatureNonce", "n".to_string()),
            ("Timestamp", aliyun_stamp()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let sig = sign_v1(method, &params, SECRET);
    params.push(("Signature".to_string(), sig));
    let auth = parse(&params, &[]).expect("a signed request parses");
    assert_eq!(
        verify_v1(method, &params, &auth, SECRET),
        Ok(()),
        "signed request refused"
    );
});
