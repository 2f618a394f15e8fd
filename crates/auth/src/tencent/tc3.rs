//! TC3-HMAC-SHA256 (spec §3a).

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{AuthError, HttpRequestParts, TencentAuth, header, utc_date, validate_secret_id};

/// The service of CVM 2017-03-12: what the Python, Go and Java SDKs and `tccli` put in the
/// credential scope of a CVM call ([`verify_tc3`]). A call of another service (CAM 2019-01-16
/// signs `cam`) is verified with [`verify_tc3_for`] and that service's name. The only other
/// service accepted is the one the Node SDK derives from the endpoint (see
/// [`service_accepted`]).
pub const SERVICE: &str = "cvm";

const ALGORITHM: &str = "TC3-HMAC-SHA256";
const TERMINATOR: &str = "tc3_request";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// What the SDKs sign; used by [`sign_tc3`].
const SDK_SIGNED_HEADERS: &str = "content-type;host";

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// kSigning of step 5: HMAC chain over date, service and `tc3_request`.
fn signing_key(secret_key: &str, date: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Canonical query string and hashed payload (steps 1–2). GET signs the query
/// exactly as sent and an empty payload; POST signs no query and the body.
/// `X-TC-Content-SHA256: UNSIGNED-PAYLOAD` overrides the payload for both, as
/// the Python SDK does.
fn query_and_payload_hash<'q>(
    method: &str,
    raw_query: &'q str,
    body: &[u8],
    unsigned_payload: bool,
) -> (&'q str, String) {
    let is_get = method == "GET";
    let payload: &[u8] = if unsigned_payload {
        UNSIGNED_PAYLOAD.as_bytes()
    } else if is_get {
        b""
    } else {
        body
    };
    (if is_get { raw_query } else { "" }, sha256_hex(payload))
}

/// Step 2; `canonical_headers` already ends in `\n`. The URI is always `/`
/// because the SDKs hard-code it regardless of the request path.
fn canonical_request(
    method: &str,
    query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    format!("{method}\n/\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}")
}

/// Step 4.
fn string_to_sign(timestamp: i64, date: &str, service: &str, canonical_request: &str) -> String {
    let hashed = sha256_hex(canonical_request.as_bytes());
    format!("{ALGORITHM}\n{timestamp}\n{date}/{service}/{TERMINATOR}\n{hashed}")
}

/// Signs a request the way the Tencent SDKs do (`SignedHeaders=content-type;host`)
/// and returns the full `Authorization` header value. The caller must also send
/// `X-TC-Timestamp: <timestamp>`, `Content-Type: <content_type>` and
/// `Host: <host>` verbatim.
///
/// For `GET`, `raw_query` is signed exactly as it will be sent and `body` is
/// ignored; for other methods the query is not signed and `body` is. A
/// timestamp outside years -9999..=9999 yields a header that never verifies.
#[allow(clippy::too_many_arguments)] // mirrors the SDK's positional signing inputs
pub fn sign_tc3(
    method: &str,
    host: &str,
    raw_query: &str,
    content_type: &str,
    body: &[u8],
    secret_id: &str,
    secret_key: &str,
    timestamp: i64,
    service: &str,
) -> String {
    let date = utc_date(timestamp).unwrap_or_default();
    let (query, payload_hash) = query_and_payload_hash(method, raw_query, body, false);
    let headers = format!(
        "content-type:{}\nhost:{}\n",
        content_type.trim(),
        host.trim()
    );
    let creq = canonical_request(method, query, &headers, SDK_SIGNED_HEADERS, &payload_hash);
    let sts = string_to_sign(timestamp, &date, service, &creq);
    let signature = hex::encode(hmac_sha256(
        &signing_key(secret_key, &date, service),
        sts.as_bytes(),
    ));
    format!(
        "{ALGORITHM} Credential={secret_id}/{date}/{service}/{TERMINATOR}, \
         SignedHeaders={SDK_SIGNED_HEADERS}, Signature={signature}"
    )
}

/// Parses `Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
/// SignedHeaders=<a;b>, Signature=<hex>` plus `X-TC-Timestamp` from the request
/// headers (names matched case-insensitively).
///
/// No `Authorization` header → [`AuthError::MissingAuth`] (the caller may then
/// try [`super::parse_legacy`]); unparsable → `InvalidAuthorization`; malformed
/// SecretId → `InvalidSecretId`; missing/non-numeric `X-TC-Timestamp` →
/// `MissingParameter`/`InvalidParameterValue`.
pub fn parse_tc3(headers: &[(String, String)]) -> Result<TencentAuth, AuthError> {
    let value = header(headers, "authorization").ok_or(AuthError::MissingAuth)?;
    let invalid = |why: &str| AuthError::InvalidAuthorization(why.to_owned());

    let (algorithm, rest) = value.trim().split_once(' ').ok_or_else(|| {
        invalid("expected `TC3-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`")
    })?;
    if algorithm != ALGORITHM {
        return Err(invalid("unsupported signature algorithm"));
    }

    let crate::AuthorizationFields {
        credential,
        signed_headers,
        signature,
    } = crate::authorization_fields(rest).map_err(|e| match e {
        crate::FieldsError::NotKeyValue => invalid("expected `key=value` pairs"),
        crate::FieldsError::Duplicate => invalid("duplicate field"),
    })?;
    let credential = credential.ok_or_else(|| invalid("`Credential` missing"))?;
    let signed_headers = signed_headers.ok_or_else(|| invalid("`SignedHeaders` missing"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("`Signature` missing"))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err(invalid(
            "`Credential` must be <SecretId>/<Date>/<Service>/tc3_request",
        ));
    };
    if terminator != TERMINATOR {
        return Err(invalid("`Credential` must end with tc3_request"));
    }
    validate_secret_id(secret_id)?;

    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    // Entries are kept as listed (the SignedHeaders line is signed verbatim);
    // surrounding blanks are ignored only when looking headers up.
    if signed_headers.iter().any(|h| h.trim().is_empty()) {
        return Err(invalid("`SignedHeaders` is malformed"));
    }

    let timestamp = header(headers, "x-tc-timestamp")
        .ok_or(AuthError::MissingParameter("X-TC-Timestamp"))?
        .trim()
        .parse::<i64>()
        .map_err(|_| AuthError::InvalidParameterValue("X-TC-Timestamp"))?;

    Ok(TencentAuth::Tc3 {
        secret_id: secret_id.to_owned(),
        date: date.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
        timestamp,
    })
}

/// Verifies a TC3 signature against the request (spec §3a step 7, minus the
/// SecretId lookup and [`super::check_timestamp`], which the caller does).
///
/// * The credential service must be one [`service_accepted`] allows (else
///   `InvalidAuthorization`, as the real API answers) and the credential date must
///   be the UTC date of the timestamp (else `SignatureFailure`).
/// * The headers listed in `SignedHeaders` are signed in that order; `host` is
///   taken from [`HttpRequestParts::host`]. A listed header absent from the
///   request is `InvalidAuthorization`.
/// * The host is tried as received, then — when it ends in `:<port>` — without the
///   port: the Node SDK signs `URL.hostname` but sends `Host: URL.host`.
/// * For each host, header values are tried as received first, then with the host
///   lower-cased, then with all values lower-cased: the SDKs sign the configured
///   endpoint verbatim while the docs say values are lower-cased. At most six
///   canonical forms, identical ones computed once.
/// * The signature is compared in constant time.
pub fn verify_tc3(
    req: &HttpRequestParts<'_>,
    auth: &TencentAuth,
    secret_key: &str,
) -> Result<(), AuthError> {
    verify_tc3_for(req, auth, secret_key, SERVICE)
}

/// [`verify_tc3`] for a call of the API service `expected` (the service of the version the
/// request names: `cvm`, `cam`, `sts`, …): the credential scope must name it (or the Host's
/// first label, see [`service_accepted`]).
pub fn verify_tc3_for(
    req: &HttpRequestParts<'_>,
    auth: &TencentAuth,
    secret_key: &str,
    expected: &str,
) -> Result<(), AuthError> {
    let TencentAuth::Tc3 {
        date,
        service,
        signed_headers,
        signature,
        timestamp,
        ..
    } = auth
    else {
        return Err(AuthError::InvalidAuthorization(
            "expected TC3-HMAC-SHA256 credentials".to_owned(),
        ));
    };
    if !service_accepted(service, expected, req.host) {
        return Err(AuthError::InvalidAuthorization(
            "`Service` in Credential not valid.".to_owned(),
        ));
    }
    if utc_date(*timestamp).as_deref() != Some(date.as_str()) {
        return Err(AuthError::SignatureFailure);
    }
    let provided = hex::decode(signature).map_err(|_| AuthError::SignatureFailure)?;

    let unsigned =
        header(req.headers, "x-tc-content-sha256").is_some_and(|v| v.trim() == UNSIGNED_PAYLOAD);
    let (query, payload_hash) =
        query_and_payload_hash(req.method, req.raw_query, req.body, unsigned);

    // (lower-case name, trimmed value as received) for every signed header.
    let values = signed_headers
        .iter()
        .map(|name| {
            let name = name.trim().to_ascii_lowercase();
            let value = if name == "host" {
                Some(req.host)
            } else {
                header(req.headers, &name)
            };
            match value {
                Some(v) => Ok((name, v.trim())),
                None => Err(AuthError::InvalidAuthorization(format!(
                    "signed header `{name}` is missing from the request"
                ))),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let signed_line = signed_headers.join(";");
    let key = signing_key(secret_key, date, service);

    let hosts = [Some(req.host.trim()), strip_port(req.host.trim())];
    let attempts = hosts.into_iter().flatten().flat_map(|host| {
        [Lowercase::None, Lowercase::Host, Lowercase::All].map(|lower| (host, lower))
    });
    let mut tried: Vec<String> = Vec::with_capacity(6);
    for (host, lower) in attempts {
        let headers: String = values
            .iter()
            .map(|(name, value)| {
                let is_host = name == "host";
                let value = if is_host { host } else { value };
                let lower_it = lower == Lowercase::All || (lower == Lowercase::Host && is_host);
                let value = if lower_it {
                    value.to_ascii_lowercase()
                } else {
                    value.to_owned()
                };
                format!("{name}:{value}\n")
            })
            .collect();
        if tried.contains(&headers) {
            continue; // identical canonical form already failed
        }
        let creq = canonical_request(req.method, query, &headers, &signed_line, &payload_hash);
        let sts = string_to_sign(*timestamp, date, service, &creq);
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC accepts keys of any length");
        mac.update(sts.as_bytes());
        if mac.verify_slice(&provided).is_ok() {
            return Ok(());
        }
        tried.push(headers);
    }
    Err(AuthError::SignatureFailure)
}

/// Whether `service` may be the credential scope's service of a request sent with
/// `Host: host` (docs/credentials.md, "TC3 credential scope"):
///
/// * `expected` — the service of the API version being called (`cvm` for CVM
///   2017-03-12), what every SDK sends to `cvm.tencentcloudapi.com`;
/// * the first label of the Host as received (up to the first `.`), compared
///   ASCII-case-insensitively — what the Node SDK signs: `endpoint.split(".")[0]`, so
///   `127` for `127.0.0.1:PORT` and `localhost:PORT` for `localhost:PORT`.
///
/// Anything else is refused. Accepting the host's label weakens nothing: the service
/// only feeds the key derivation, and the signature still needs the secret key.
fn service_accepted(service: &str, expected: &str, host: &str) -> bool {
    if service == expected {
        return true;
    }
    let host = host.trim();
    let label = host.split_once('.').map_or(host, |(first, _)| first);
    !label.is_empty() && service.eq_ignore_ascii_case(label)
}

/// `host` without a trailing `:<port>` (1–5 digits), if it has one and something is
/// left: `127.0.0.1:8080` → `127.0.0.1`, `[::1]:8080` → `[::1]`; `[::1]` → `None`.
fn strip_port(host: &str) -> Option<&str> {
    let (name, port) = host.rsplit_once(':')?;
    let is_port = (1..=5).contains(&port.len()) && port.bytes().all(|b| b.is_ascii_digit());
    let name_ok = !name.is_empty() && (!name.starts_with('[') || name.ends_with(']'));
    (is_port && name_ok).then_some(name)
}

/// Which signed header values to lower-case on a verification attempt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lowercase {
    None,
    Host,
    All,
}

#[cfg(test)]
mod tests {
    use super::super::check_timestamp;
    use super::*;

    const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const TS: i64 = 1_551_113_065;
    const HOST: &str = "127.0.0.1:18080";
    const V1_BODY: &str = r#"{"InstanceIds": ["ins-09dx96dg"], "Filters": [{"Name": "zone", "Values": ["ap-guangzhou-3", "ap-guangzhou-4"]}], "Offset": 0, "Limit": 20}"#;
    const V1_SIG: &str = "efb2bfa1b4aa9cad265f28ee49cff3fcd82b8b802d1d509b272046a4349fc9c3";
    const V2_QUERY: &str = "InstanceIds.0=ins-09dx96dg&Filters.0.Name=zone&Filters.0.Values.0=ap-guangzhou-3&Filters.0.Values.1=ap-guangzhou-4&Offset=0&Limit=20";
    const V2_SIG: &str = "0f3f5c101e9fe82d26075b1f356dfca4d24db52795dc85f0c78f940da23182af";

    fn hdrs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A JSON POST of `{}` to `host` for `service`, signed with the test key at `TS`.
    fn sign_post_json(host: &str, service: &str) -> String {
        sign_tc3(
            "POST",
            host,
            "",
            "application/json",
            b"{}",
            SECRET_ID,
            SECRET_KEY,
            TS,
            service,
        )
    }

    /// The least a JSON POST signed with `authorization` carries (the host comes separately).
    fn json_headers(authorization: &str) -> Vec<(String, String)> {
        hdrs(&[
            ("content-type", "application/json"),
            ("x-tc-timestamp", "1551113065"),
            ("authorization", authorization),
        ])
    }

    /// Headers the Python SDK sends for a request signed with `authorization`.
    fn sdk_headers(content_type: &str, authorization: &str) -> Vec<(String, String)> {
        hdrs(&[
            ("content-type", content_type),
            ("host", HOST),
            ("x-tc-action", "DescribeInstances"),
            ("x-tc-version", "2017-03-12"),
            ("x-tc-timestamp", "1551113065"),
            ("x-tc-region", "ap-guangzhou"),
            ("authorization", authorization),
        ])
    }

    fn parts<'a>(
        method: &'a str,
        host: &'a str,
        raw_query: &'a str,
        headers: &'a [(String, String)],
        body: &'a [u8],
    ) -> HttpRequestParts<'a> {
        HttpRequestParts {
            method,
            host,
            path: "/",
            raw_query,
            headers,
            body,
            peer: None,
        }
    }

    fn expected_header(date_sig: &str) -> String {
        format!(
            "TC3-HMAC-SHA256 Credential={SECRET_ID}/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, Signature={date_sig}"
        )
    }

    #[test]
    fn v1_intermediate_values() {
        let (query, payload_hash) = query_and_payload_hash("POST", "", V1_BODY.as_bytes(), false);
        assert_eq!(
            payload_hash,
            "97550a7ea51de30cb38bd257ccd5265919f67967f551a0bf6696c72997ac15cf"
        );
        let creq = canonical_request(
            "POST",
            query,
            "content-type:application/json\nhost:127.0.0.1:18080\n",
            "content-type;host",
            &payload_hash,
        );
        assert_eq!(
            creq,
            format!(
                "POST\n/\n\ncontent-type:application/json\nhost:127.0.0.1:18080\n\ncontent-type;host\n{payload_hash}"
            )
        );
        assert_eq!(
            sha256_hex(creq.as_bytes()),
            "45ff7a3bb5f8be706327fea43b78901d1fc82fc77a48fb74c2338187f1bc9315"
        );
        assert_eq!(
            string_to_sign(TS, "2019-02-25", "cvm", &creq),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             45ff7a3bb5f8be706327fea43b78901d1fc82fc77a48fb74c2338187f1bc9315"
        );
        let k_date = hmac_sha256(format!("TC3{SECRET_KEY}").as_bytes(), b"2019-02-25");
        assert_eq!(
            hex::encode(k_date),
            "d1308c81fe71cfd4e06437bbc067b2b8a3d2d8c0e375d547f15c41d5214b395a"
        );
        let k_service = hmac_sha256(&k_date, b"cvm");
        assert_eq!(
            hex::encode(k_service),
            "3c7cb7c7795393edc14fd2e0e6434a518564b4504b88e94f5d11bf59ba3e7050"
        );
        assert_eq!(
            hex::encode(signing_key(SECRET_KEY, "2019-02-25", "cvm")),
            "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1"
        );
    }

    #[test]
    fn v1_post_json_sign_parse_verify() {
        let auth_header = sign_tc3(
            "POST",
            HOST,
            "",
            "application/json",
            V1_BODY.as_bytes(),
            SECRET_ID,
            SECRET_KEY,
            TS,
            "cvm",
        );
        assert_eq!(auth_header, expected_header(V1_SIG));

        let headers = sdk_headers("application/json", &auth_header);
        let auth = parse_tc3(&headers).unwrap();
        assert_eq!(
            auth,
            TencentAuth::Tc3 {
                secret_id: SECRET_ID.into(),
                date: "2019-02-25".into(),
                service: "cvm".into(),
                signed_headers: vec!["content-type".into(), "host".into()],
                signature: V1_SIG.into(),
                timestamp: TS,
            }
        );
        assert_eq!(auth.secret_id(), SECRET_ID);
        assert_eq!(check_timestamp(auth.timestamp(), TS + 10), Ok(()));
        let req = parts("POST", HOST, "", &headers, V1_BODY.as_bytes());
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
        assert_eq!(
            verify_tc3(&req, &auth, "wrong-key"),
            Err(AuthError::SignatureFailure)
        );
        let tampered = V1_BODY.replace("20", "21");
        let req = parts("POST", HOST, "", &headers, tampered.as_bytes());
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn v2_get_sign_parse_verify() {
        let (_, payload_hash) = query_and_payload_hash("GET", V2_QUERY, b"ignored", false);
        assert_eq!(
            payload_hash,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let ct = "application/x-www-form-urlencoded";
        let auth_header = sign_tc3(
            "GET", HOST, V2_QUERY, ct, b"", SECRET_ID, SECRET_KEY, TS, "cvm",
        );
        assert_eq!(auth_header, expected_header(V2_SIG));

        let headers = sdk_headers(ct, &auth_header);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("GET", HOST, V2_QUERY, &headers, b"");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
        // The query is signed as sent: reordering it must fail.
        let reordered = "Offset=0&Limit=20&InstanceIds.0=ins-09dx96dg&Filters.0.Name=zone&Filters.0.Values.0=ap-guangzhou-3&Filters.0.Values.1=ap-guangzhou-4";
        let req = parts("GET", HOST, reordered, &headers, b"");
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn host_is_used_verbatim_then_lowercased() {
        // Quirk Q1: tccli puts the scheme into the Host header and signs it.
        let odd_host = "http://127.0.0.1:8080";
        let a = sign_post_json(odd_host, "cvm");
        let headers = json_headers(&a);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("POST", odd_host, "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
        // A reconstructed host:port must not verify.
        let req = parts("POST", "127.0.0.1:8080", "", &headers, b"{}");
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );

        // Client signed the lower-cased host but sent it mixed-case.
        let a = sign_post_json("cvm.tencentcloudapi.com", "cvm");
        let headers = json_headers(&a);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("POST", "CVM.TencentCloudAPI.com", "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
    }

    #[test]
    fn another_service_verifies_with_its_own_scope() {
        let a = sign_post_json("127.0.0.1:18080", "cam");
        let headers = json_headers(&a);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("POST", "127.0.0.1:18080", "", &headers, b"{}");
        assert_eq!(verify_tc3_for(&req, &auth, SECRET_KEY, "cam"), Ok(()));
        // Signed for CAM, checked as a CVM call: the scope is refused, as the real API does.
        assert!(matches!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::InvalidAuthorization(_))
        ));
        assert_eq!(
            verify_tc3_for(&req, &auth, "wrong-key", "cam"),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn all_values_lowercased_fallback() {
        // A docs-following client lower-cases every signed header value.
        let creq = canonical_request(
            "POST",
            "",
            "content-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n",
            "content-type;host",
            &sha256_hex(b"{}"),
        );
        let sig = hex::encode(hmac_sha256(
            &signing_key(SECRET_KEY, "2019-02-25", "cvm"),
            string_to_sign(TS, "2019-02-25", "cvm", &creq).as_bytes(),
        ));
        let headers = hdrs(&[("content-type", "application/json; charset=UTF-8")]);
        let auth = TencentAuth::Tc3 {
            secret_id: SECRET_ID.into(),
            date: "2019-02-25".into(),
            service: "cvm".into(),
            signed_headers: vec!["content-type".into(), "host".into()],
            signature: sig,
            timestamp: TS,
        };
        let req = parts("POST", "CVM.tencentcloudapi.com", "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
    }

    /// Signs an arbitrary canonical header block (for non-SDK header lists).
    fn sign_custom(
        method: &str,
        query: &str,
        headers: &str,
        signed: &str,
        payload_hash: &str,
    ) -> String {
        let creq = canonical_request(method, query, headers, signed, payload_hash);
        hex::encode(hmac_sha256(
            &signing_key(SECRET_KEY, "2019-02-25", "cvm"),
            string_to_sign(TS, "2019-02-25", "cvm", &creq).as_bytes(),
        ))
    }

    #[test]
    fn honours_signed_headers_list_and_unsigned_payload() {
        let sig = sign_custom(
            "POST",
            "",
            "content-type:application/json\nhost:h:1\nx-tc-action:describeinstances\n",
            "content-type;host;x-tc-action",
            &sha256_hex(UNSIGNED_PAYLOAD.as_bytes()),
        );
        let a = format!(
            "TC3-HMAC-SHA256 Credential={SECRET_ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature={sig}"
        );
        let headers = hdrs(&[
            ("content-type", "application/json"),
            ("x-tc-action", "describeinstances"),
            ("x-tc-timestamp", " 1551113065 "),
            ("x-tc-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", &a),
        ]);
        let auth = parse_tc3(&headers).unwrap();
        // Body is not covered by the signature with UNSIGNED-PAYLOAD.
        let req = parts("POST", "h:1", "", &headers, b"anything at all");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));

        // Changing a signed header breaks it; dropping it is an authorization error.
        let mut changed = headers.clone();
        changed[1].1 = "runinstances".into();
        let req = parts("POST", "h:1", "", &changed, b"");
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
        let dropped: Vec<_> = headers
            .iter()
            .filter(|(n, _)| n != "x-tc-action")
            .cloned()
            .collect();
        let req = parts("POST", "h:1", "", &dropped, b"");
        assert!(matches!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::InvalidAuthorization(_))
        ));
    }

    /// Copy of a TC3 credential with (date, service, timestamp) edited.
    fn edit_tc3(
        auth: &TencentAuth,
        f: impl FnOnce(&mut String, &mut String, &mut i64),
    ) -> TencentAuth {
        let mut auth = auth.clone();
        let TencentAuth::Tc3 {
            date,
            service,
            timestamp,
            ..
        } = &mut auth
        else {
            panic!("not TC3")
        };
        f(date, service, timestamp);
        auth
    }

    #[test]
    fn signed_headers_line_is_signed_as_listed() {
        // A client that writes "content-type; host" signs that exact line.
        let sig = sign_custom(
            "POST",
            "",
            "content-type:application/json\nhost:h:1\n",
            "content-type; host",
            &sha256_hex(b"{}"),
        );
        let a = format!(
            "TC3-HMAC-SHA256 Credential={SECRET_ID}/2019-02-25/cvm/tc3_request, SignedHeaders=content-type; host, Signature={sig}"
        );
        let headers = json_headers(&a);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("POST", "h:1", "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
    }

    #[test]
    fn credential_scope_checks() {
        let a = sign_post_json(HOST, "cvm");
        let headers = sdk_headers("application/json", &a);
        let req = parts("POST", HOST, "", &headers, b"{}");
        let auth = parse_tc3(&headers).unwrap();

        // Credential date must be the timestamp's UTC date.
        let wrong_date = edit_tc3(&auth, |date, _, _| *date = "2019-02-26".into());
        assert_eq!(
            verify_tc3(&req, &wrong_date, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );

        // Moving the timestamp to the next day breaks the date match as well.
        let next_day = edit_tc3(&auth, |_, _, ts| *ts += 86_400);
        assert_eq!(
            verify_tc3(&req, &next_day, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );

        // Service other than cvm → InvalidAuthorization, as the real API answers.
        let a = sign_post_json(HOST, "cbs");
        let headers = sdk_headers("application/json", &a);
        let auth = parse_tc3(&headers).unwrap();
        assert!(matches!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::InvalidAuthorization(_))
        ));

        // Non-hex signature.
        let headers = sdk_headers("application/json", &a.replace("Signature=", "Signature=zz"));
        let auth = edit_tc3(&parse_tc3(&headers).unwrap(), |_, svc, _| {
            *svc = "cvm".into()
        });
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    /// What the Node SDK (tencentcloud-sdk-nodejs-common 4.1.x) sends for `endpoint`:
    /// the scope's service is `endpoint.split(".")[0]`, the signed host is
    /// `URL.hostname` (no port) and the `Host` header `URL.host` (with the port).
    /// `URL` lower-cases the host; the service keeps the endpoint's case.
    /// Returns (Host header as sent, headers, parsed credentials).
    fn node_sdk(
        method: &str,
        endpoint: &str,
        query: &str,
        body: &[u8],
    ) -> (String, Vec<(String, String)>, TencentAuth) {
        let url_host = endpoint.to_ascii_lowercase();
        let hostname = strip_port(&url_host).unwrap_or(&url_host).to_owned();
        node_sdk_signed(method, endpoint, &hostname, query, body)
    }

    fn node_sdk_signed(
        method: &str,
        endpoint: &str,
        signed_host: &str,
        query: &str,
        body: &[u8],
    ) -> (String, Vec<(String, String)>, TencentAuth) {
        let service = endpoint.split('.').next().unwrap_or_default();
        let ct = if method == "GET" {
            "application/x-www-form-urlencoded"
        } else {
            "application/json"
        };
        let a = sign_tc3(
            method,
            signed_host,
            query,
            ct,
            body,
            SECRET_ID,
            SECRET_KEY,
            TS,
            service,
        );
        let url_host = endpoint.to_ascii_lowercase();
        let headers = hdrs(&[
            ("content-type", ct),
            ("host", &url_host),
            ("x-tc-timestamp", "1551113065"),
            ("authorization", &a),
        ]);
        let auth = parse_tc3(&headers).unwrap();
        (url_host, headers, auth)
    }

    #[test]
    fn node_sdk_ip_endpoint_with_port_verifies() {
        // Scope service `127`, signed `host:127.0.0.1`, sent `Host: 127.0.0.1:18080`.
        let (host, headers, auth) = node_sdk("POST", HOST, "", b"{}");
        assert!(matches!(&auth, TencentAuth::Tc3 { service, .. } if service == "127"));
        let req = parts("POST", &host, "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
        assert_eq!(
            verify_tc3(&req, &auth, "wrong-key"),
            Err(AuthError::SignatureFailure)
        );

        let (host, headers, auth) = node_sdk("GET", HOST, V2_QUERY, b"");
        let req = parts("GET", &host, V2_QUERY, &headers, b"");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
        let req = parts("GET", &host, "Limit=21", &headers, b"");
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn node_sdk_host_name_with_port_verifies() {
        // Scope service `localhost:18080` (there is no dot), signed `host:localhost`.
        let (host, headers, auth) = node_sdk("POST", "localhost:18080", "", b"{\"Limit\":1}");
        assert!(matches!(&auth, TencentAuth::Tc3 { service, .. } if service == "localhost:18080"));
        let req = parts("POST", &host, "", &headers, b"{\"Limit\":1}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));

        // A dotted name: service `api`, signed `host:api.nubis.test`.
        let (host, headers, auth) = node_sdk("GET", "api.nubis.test:8443", V2_QUERY, b"");
        let req = parts("GET", &host, V2_QUERY, &headers, b"");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));

        // Bracketed IPv6 with a port: service `[::1]:18080`, signed `host:[::1]`.
        let (host, headers, auth) = node_sdk("POST", "[::1]:18080", "", b"{}");
        let req = parts("POST", &host, "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));

        // The URL parser lower-cases the host the SDK signs and sends, not the service.
        let (host, headers, auth) = node_sdk("POST", "LocalHost:18080", "", b"{}");
        assert_eq!(host, "localhost:18080");
        assert!(matches!(&auth, TencentAuth::Tc3 { service, .. } if service == "LocalHost:18080"));
        let req = parts("POST", &host, "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
    }

    #[test]
    fn host_port_fallback_is_exact() {
        // Signed with another host, or another port, or a shorter name: still refused.
        for signed in ["127.0.0.2", "127.0.0.1:1", "127.0.0", "localhost", ""] {
            let (host, headers, auth) = node_sdk_signed("POST", HOST, signed, "", b"{}");
            let req = parts("POST", &host, "", &headers, b"{}");
            assert_eq!(
                verify_tc3(&req, &auth, SECRET_KEY),
                Err(AuthError::SignatureFailure),
                "signed host {signed:?}"
            );
        }
        // Sent without a port, signed with one: nothing to strip, refused.
        let a = sign_post_json(HOST, "cvm");
        let headers = sdk_headers("application/json", &a);
        let auth = parse_tc3(&headers).unwrap();
        let req = parts("POST", "127.0.0.1", "", &headers, b"{}");
        assert_eq!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
        // The Python SDK's form (signed with the port, service cvm) still verifies.
        let req = parts("POST", HOST, "", &headers, b"{}");
        assert_eq!(verify_tc3(&req, &auth, SECRET_KEY), Ok(()));
    }

    #[test]
    fn node_sdk_service_must_match_the_host_it_was_sent_to() {
        // Signed for 127.0.0.1:18080 (service `127`) but sent to another host: the service
        // is the first thing checked, so it is an authorization error, not a signature one.
        let (_, headers, auth) = node_sdk("POST", HOST, "", b"{}");
        for host in [
            "localhost:18080",
            "10.0.0.1:18080",
            "cvm.tencentcloudapi.com",
        ] {
            let req = parts("POST", host, "", &headers, b"{}");
            assert!(
                matches!(
                    verify_tc3(&req, &auth, SECRET_KEY),
                    Err(AuthError::InvalidAuthorization(_))
                ),
                "host {host}"
            );
        }
    }

    #[test]
    fn service_accepted_table() {
        let cases = [
            // (service, Host as received, accepted)
            ("cvm", "127.0.0.1:18080", true),
            ("cvm", "localhost:18080", true),
            ("cvm", "cvm.tencentcloudapi.com", true),
            ("cvm", "", true),
            ("127", "127.0.0.1:18080", true),
            ("127", " 127.0.0.1:18080 ", true),
            ("localhost:18080", "localhost:18080", true),
            ("LOCALHOST:18080", "localhost:18080", true),
            ("cvm", "CVM.tencentcloudapi.com", true),
            ("api", "api.nubis.test:8443", true),
            // Refused: another service, the wrong label, a part of it, or an empty one.
            ("cbs", "127.0.0.1:18080", false),
            ("CVM", "127.0.0.1:18080", false),
            ("cbs", "cvm.tencentcloudapi.com", false),
            ("tencentcloudapi", "cvm.tencentcloudapi.com", false),
            ("127.0.0.1", "127.0.0.1:18080", false),
            ("127.0.0.1:18080", "127.0.0.1:18080", false),
            ("localhost", "localhost:18080", false),
            ("18080", "localhost:18080", false),
            ("128", "127.0.0.1:18080", false),
            ("", "127.0.0.1:18080", false),
            ("", ".example", false),
            ("", "", false),
        ];
        for (service, host, want) in cases {
            assert_eq!(
                service_accepted(service, SERVICE, host),
                want,
                "{service:?} @ {host:?}"
            );
        }
        // Another API service's calls name that service; `cvm` is then refused (unless it
        // is the Host's first label).
        assert!(service_accepted("cam", "cam", "127.0.0.1:18080"));
        assert!(!service_accepted("cvm", "cam", "127.0.0.1:18080"));
        assert!(service_accepted("cvm", "cam", "cvm.tencentcloudapi.com"));
    }

    #[test]
    fn strip_port_table() {
        let cases = [
            ("127.0.0.1:18080", Some("127.0.0.1")),
            ("localhost:1", Some("localhost")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", None),
            ("localhost", None),
            ("localhost:", None),
            ("localhost:123456", None),
            ("localhost:80a", None),
            (":8080", None),
            ("[::1:8080", None),
            ("http://127.0.0.1:8080", Some("http://127.0.0.1")),
        ];
        for (host, want) in cases {
            assert_eq!(strip_port(host), want, "{host:?}");
        }
    }

    #[test]
    fn parse_errors() {
        let with_auth = |a: &str| hdrs(&[("x-tc-timestamp", "1551113065"), ("Authorization", a)]);
        let invalid = |a: &str| {
            matches!(
                parse_tc3(&with_auth(a)),
                Err(AuthError::InvalidAuthorization(_))
            )
        };

        assert_eq!(
            parse_tc3(&hdrs(&[("host", "x")])),
            Err(AuthError::MissingAuth)
        );
        assert!(invalid("Basic dXNlcjpwYXNz"));
        assert!(invalid("TC3-HMAC-SHA256"));
        assert!(invalid(
            "TC3-HMAC-SHA1 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab"
        ));
        assert!(invalid("TC3-HMAC-SHA256 SignedHeaders=host, Signature=ab"));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, Signature=ab"
        ));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=host"
        ));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm, SignedHeaders=host, Signature=ab"
        ));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/other, SignedHeaders=host, Signature=ab"
        ));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=host;;x, Signature=ab"
        ));
        assert!(invalid(
            "TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab, Signature=cd"
        ));
        assert!(invalid("TC3-HMAC-SHA256 garbage"));
        assert_eq!(
            parse_tc3(&with_auth(
                "TC3-HMAC-SHA256 Credential=/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab"
            )),
            Err(AuthError::InvalidSecretId)
        );
        assert_eq!(
            parse_tc3(&with_auth(
                "TC3-HMAC-SHA256 Credential=AK!D/2019-02-25/cvm/tc3_request, SignedHeaders=host, Signature=ab"
            )),
            Err(AuthError::InvalidSecretId)
        );

        let good = "TC3-HMAC-SHA256 Credential=AKID1/2019-02-25/cvm/tc3_request,SignedHeaders=host,Signature=ab";
        assert!(
            parse_tc3(&with_auth(good)).is_ok(),
            "spaces after commas are optional"
        );
        assert_eq!(
            parse_tc3(&hdrs(&[("authorization", good)])),
            Err(AuthError::MissingParameter("X-TC-Timestamp"))
        );
        assert_eq!(
            parse_tc3(&hdrs(&[
                ("authorization", good),
                ("x-tc-timestamp", "soon")
            ])),
            Err(AuthError::InvalidParameterValue("X-TC-Timestamp"))
        );
    }

    #[test]
    fn legacy_credentials_are_rejected_by_tc3_verify() {
        let auth = TencentAuth::Legacy {
            secret_id: SECRET_ID.into(),
            method: super::super::LegacyMethod::HmacSha1,
            signature: "x".into(),
            timestamp: TS,
            nonce: "1".into(),
        };
        let req = parts("POST", HOST, "", &[], b"");
        assert!(matches!(
            verify_tc3(&req, &auth, SECRET_KEY),
            Err(AuthError::InvalidAuthorization(_))
        ));
    }
}
