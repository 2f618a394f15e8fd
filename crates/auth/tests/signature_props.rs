//! Property tests: what `sign_*` produces, `parse_*` + `verify_*` accept, and
//! nothing else.

use nubis_auth::tencent::{
    AuthError, HttpRequestParts, LegacyMethod, parse_legacy, parse_tc3, sign_legacy, sign_tc3,
    verify_legacy, verify_tc3,
};
use proptest::prelude::*;

const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const HOST: &str = "127.0.0.1:18080";

/// Headers a client would send alongside a TC3 `Authorization` value.
fn tc3_headers(authorization: String, timestamp: i64) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("host".into(), HOST.into()),
        ("x-tc-timestamp".into(), timestamp.to_string()),
        ("authorization".into(), authorization),
    ]
}

fn verify_post(
    body: &[u8],
    headers: &[(String, String)],
    secret_key: &str,
) -> Result<(), AuthError> {
    let auth = parse_tc3(headers)?;
    let req = HttpRequestParts {
        method: "POST",
        host: HOST,
        path: "/",
        raw_query: "",
        headers,
        body,
        peer: None,
    };
    verify_tc3(&req, &auth, secret_key)
}

/// Timestamps from 1970 to 2100.
fn timestamp() -> impl Strategy<Value = i64> {
    0i64..4_102_444_800
}

fn legacy_method() -> impl Strategy<Value = LegacyMethod> {
    prop_oneof![Just(LegacyMethod::HmacSha1), Just(LegacyMethod::HmacSha256)]
}

proptest! {
    #[test]
    fn tc3_roundtrip_any_body(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
        secret_key in "[!-~]{1,64}",
        ts in timestamp(),
    ) {
        let a = sign_tc3("POST", HOST, "", "application/json", &body, SECRET_ID, &secret_key, ts, "cvm");
        let headers = tc3_headers(a, ts);
        prop_assert_eq!(verify_post(&body, &headers, &secret_key), Ok(()));
    }

    #[test]
    fn tc3_any_single_byte_change_fails(
        body in proptest::collection::vec(any::<u8>(), 1..2048),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        ts in timestamp(),
    ) {
        let key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
        let a = sign_tc3("POST", HOST, "", "application/json", &body, SECRET_ID, key, ts, "cvm");
        let headers = tc3_headers(a, ts);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        prop_assert_eq!(verify_post(&tampered, &headers, key), Err(AuthError::SignatureFailure));
    }

    #[test]
    fn tc3_get_roundtrip_any_query(query in "[!-~]{0,256}", ts in timestamp()) {
        let key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
        let ct = "application/x-www-form-urlencoded";
        let a = sign_tc3("GET", HOST, &query, ct, b"", SECRET_ID, key, ts, "cvm");
        let headers = vec![
            ("content-type".to_owned(), ct.to_owned()),
            ("x-tc-timestamp".to_owned(), ts.to_string()),
            ("authorization".to_owned(), a),
        ];
        let auth = parse_tc3(&headers).unwrap();
        let req = HttpRequestParts { method: "GET", host: HOST, path: "/", raw_query: &query, headers: &headers, body: b"", peer: None };
        prop_assert_eq!(verify_tc3(&req, &auth, key), Ok(()));
    }

    #[test]
    fn legacy_roundtrip_any_params(
        extra in proptest::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,16}", "\\PC{0,32}"), 0..16),
        method in legacy_method(),
        http_method in prop_oneof![Just("GET"), Just("POST")],
        secret_key in "[!-~]{1,64}",
        ts in timestamp(),
        nonce in any::<u32>(),
    ) {
        let mut params: Vec<(String, String)> = extra
            .into_iter()
            .filter(|(k, _)| !matches!(k.as_str(), "Signature" | "SecretId" | "Timestamp" | "Nonce" | "SignatureMethod"))
            .collect();
        params.extend([
            ("SecretId".to_owned(), SECRET_ID.to_owned()),
            ("Timestamp".to_owned(), ts.to_string()),
            ("Nonce".to_owned(), nonce.to_string()),
            ("SignatureMethod".to_owned(), method.as_str().to_owned()),
        ]);
        let sig = sign_legacy(http_method, HOST, "/", &params, &secret_key, method);
        params.push(("Signature".to_owned(), sig));

        let auth = parse_legacy(&params).unwrap();
        prop_assert_eq!(auth.timestamp(), ts);
        prop_assert_eq!(verify_legacy(http_method, HOST, "/", &params, &auth, &secret_key), Ok(()));

        // Changing any signed value breaks the signature.
        let last_signed = params.len() - 2;
        params[last_signed].1.push('x');
        prop_assert_eq!(
            verify_legacy(http_method, HOST, "/", &params, &auth, &secret_key),
            Err(AuthError::SignatureFailure)
        );
    }
}
