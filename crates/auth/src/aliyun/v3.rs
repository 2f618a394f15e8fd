//! ACS3-HMAC-SHA256 and ACS3-HMAC-SM3 signatures (spec §3b).

use sha2::{Digest, Sha256};
use sm3::Sm3;

use super::{Acs3Algorithm, AliyunAuth, AuthError, header, percent_encode};
use crate::hmacs::{self, Hash};

const CONTENT_SHA256: &str = "x-acs-content-sha256";
const NONCE: &str = "x-acs-signature-nonce";
const DATE: &str = "x-acs-date";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

impl Acs3Algorithm {
    /// Hex hash of `data` (payload and canonical request).
    fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Self::HmacSha256 => sha256_hex(data),
            Self::HmacSm3 => hex::encode(Sm3::digest(data)),
        }
    }

    /// HMAC of `msg` keyed with `secret`.
    fn mac(self, secret: &str, msg: &str) -> Vec<u8> {
        hmacs::mac(self.hash(), secret.as_bytes(), msg)
    }

    /// Whether `provided` is the HMAC of `msg` keyed with `secret` (constant time).
    fn verify(self, secret: &str, msg: &str, provided: &[u8]) -> bool {
        hmacs::mac_matches(self.hash(), secret.as_bytes(), msg, provided)
    }

    fn hash(self) -> Hash {
        match self {
            Self::HmacSha256 => Hash::Sha256,
            Self::HmacSm3 => Hash::Sm3,
        }
    }
}

fn incomplete(why: &str) -> AuthError {
    AuthError::IncompleteSignature(why.to_owned())
}

/// Parses `ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>` (or
/// `ACS3-HMAC-SM3 …`; blanks after the commas tolerated) plus the nonce and date headers.
pub(super) fn parse_authorization(
    value: &str,
    headers: &[(String, String)],
) -> Result<AliyunAuth, AuthError> {
    let (algorithm, rest) = value.split_once(char::is_whitespace).ok_or_else(|| {
        incomplete("expected `ACS3-HMAC-SHA256 Credential=...,SignedHeaders=...,Signature=...`")
    })?;
    let algorithm = Acs3Algorithm::from_name(algorithm).ok_or(AuthError::InvalidSignatureMethod)?;

    let crate::AuthorizationFields {
        credential,
        signed_headers,
        signature,
    } = crate::authorization_fields(rest).map_err(|e| match e {
        crate::FieldsError::NotKeyValue => {
            incomplete("expected `key=value` pairs in Authorization")
        }
        crate::FieldsError::Duplicate => incomplete("duplicate field in Authorization"),
    })?;
    let access_key_id = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| incomplete("`Credential` missing from Authorization"))?;
    let signed_headers = signed_headers
        .filter(|s| !s.is_empty())
        .ok_or_else(|| incomplete("`SignedHeaders` missing from Authorization"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| incomplete("`Signature` missing from Authorization"))?;
    // Entries are kept as listed: the SignedHeaders line is signed verbatim.
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(|h| h.trim().is_empty()) {
        return Err(incomplete("`SignedHeaders` is malformed"));
    }

    let required = |name: &'static str| {
        header(headers, name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::MissingParameter(name))
    };
    let nonce = required(NONCE)?;
    let date = required(DATE)?;

    Ok(AliyunAuth::V3 {
        algorithm,
        access_key_id: access_key_id.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
        nonce: nonce.to_owned(),
        date: date.to_owned(),
    })
}

/// Step 2: query params sorted by decoded name (stable), `name=value` joined
/// with `&`, values RFC 3986-encoded. Both Tea SDKs (Python
/// `get_canonical_query_string`, Go `getCanonicalQueryString`) put the name in
/// **unencoded**; the spec and Alibaba's docs encode it (`encode_names`). The
/// two only differ for names outside `[A-Za-z0-9-_.~]`.
fn canonical_query(query: &[(String, String)], encode_names: bool) -> String {
    let mut sorted: Vec<&(String, String)> = query.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        if encode_names {
            out.push_str(&percent_encode(k));
        } else {
            out.push_str(k);
        }
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// Step 3: `name:value\n` for each signed header, in the listed order. All
/// values of a header (matched case-insensitively) are trimmed and joined with
/// `,` — in request order, or sorted as both Tea SDKs do before signing.
/// A signed header absent from the request contributes an empty value.
fn canonical_headers<S: AsRef<str>>(
    headers: &[(String, String)],
    signed_headers: &[S],
    sort_values: bool,
) -> String {
    let mut out = String::new();
    for name in signed_headers {
        let name = name.as_ref().trim().to_ascii_lowercase();
        let mut values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.trim())
            .collect();
        if sort_values {
            values.sort_unstable();
        }
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out
}

/// Steps 4–5. `canonical_headers` already ends in `\n`.
fn string_to_sign(
    algorithm: Acs3Algorithm,
    method: &str,
    path: &str,
    query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_hash: &str,
) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let canonical_request =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    format!(
        "{}\n{}",
        algorithm.name(),
        algorithm.hash_hex(canonical_request.as_bytes())
    )
}

/// Computes the hex ACS3-HMAC-SHA256 signature (spec §3b step 6), the way the
/// Tea SDKs do: query names unencoded, header values in the given order.
///
/// `path` is the request path (`/` for ECS; empty means `/`), `query` the
/// decoded query params, `headers` the request headers, `signed_headers` the
/// lower-case names to sign in the order they will be listed in
/// `SignedHeaders` (the SDKs sort them). The payload hash is taken from the
/// `x-acs-content-sha256` header, or is that of an empty body when absent. The
/// caller builds `Authorization: ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>`.
pub fn sign_v3(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed_headers: &[&str],
    secret: &str,
) -> String {
    sign_v3_with(
        Acs3Algorithm::HmacSha256,
        method,
        path,
        query,
        headers,
        signed_headers,
        secret,
    )
}

/// [`sign_v3`] with the given algorithm (the empty-body payload hash is that algorithm's).
pub fn sign_v3_with(
    algorithm: Acs3Algorithm,
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed_headers: &[&str],
    secret: &str,
) -> String {
    let payload_hash = header(headers, CONTENT_SHA256)
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| algorithm.hash_hex(b""));
    let sts = string_to_sign(
        algorithm,
        method,
        path,
        &canonical_query(query, false),
        &canonical_headers(headers, signed_headers, false),
        &signed_headers.join(";"),
        &payload_hash,
    );
    hex::encode(algorithm.mac(secret, &sts))
}

/// Verifies an ACS3-HMAC-SHA256 or ACS3-HMAC-SM3 signature (the algorithm `auth` names).
///
/// `method` and `path` as received (`path` as the client signed it, i.e.
/// decoded; `/` for ECS), `query` the decoded query params, `headers` all
/// request headers, `body` the raw body, `auth` what [`super::parse`] returned.
///
/// 1. `x-acs-content-sha256` must be present (`MissingParameter`) and equal the
///    hex SHA-256 (SM3 for ACS3-HMAC-SM3) of `body`, case-insensitively
///    (`ContentSha256Mismatch`).
/// 2. Every `x-acs-*` header of the request must be listed in `SignedHeaders`
///    (`IncompleteSignature`): otherwise e.g. the action or date could be
///    changed without invalidating the signature. The SDKs sign all of them.
/// 3. The signature is recomputed over the listed headers and compared in
///    constant time. Variants tried: query names unencoded (Tea SDKs) and, when
///    that differs, encoded (spec/docs); repeated header values in request order
///    and, when that differs, sorted (Tea SDKs). A mismatch is
///    [`AuthError::SignatureDoesNotMatch`] with the StringToSign of the first
///    variant.
///
/// The AccessKeyId lookup, [`super::check_timestamp`] and the nonce check are
/// the caller's job.
pub fn verify_v3(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    body: &[u8],
    auth: &AliyunAuth,
    secret: &str,
) -> Result<(), AuthError> {
    let AliyunAuth::V3 {
        algorithm,
        signed_headers,
        signature,
        ..
    } = auth
    else {
        return Err(incomplete(
            "expected ACS3-HMAC-SHA256 (Authorization header) credentials",
        ));
    };

    let payload_hash = header(headers, CONTENT_SHA256)
        .map(str::trim)
        .ok_or(AuthError::MissingParameter(CONTENT_SHA256))?;
    if !payload_hash.eq_ignore_ascii_case(&algorithm.hash_hex(body)) {
        return Err(AuthError::ContentSha256Mismatch);
    }

    for (name, _) in headers {
        let is_acs = name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-acs-"));
        if is_acs
            && !signed_headers
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(name))
        {
            return Err(AuthError::IncompleteSignature(format!(
                "header {} must be listed in SignedHeaders",
                name.to_ascii_lowercase()
            )));
        }
    }

    let mut queries = vec![canonical_query(query, false)];
    let encoded = canonical_query(query, true);
    if encoded != queries[0] {
        queries.push(encoded);
    }
    let mut header_blocks = vec![canonical_headers(headers, signed_headers, false)];
    let sorted = canonical_headers(headers, signed_headers, true);
    if sorted != header_blocks[0] {
        header_blocks.push(sorted);
    }
    let signed_line = signed_headers.join(";");
    let provided = hex::decode(signature.trim()).ok();

    let mut first_sts = None;
    for q in &queries {
        for h in &header_blocks {
            let sts = string_to_sign(*algorithm, method, path, q, h, &signed_line, payload_hash);
            let matches = provided
                .as_deref()
                .is_some_and(|p| algorithm.verify(secret, &sts, p));
            if matches {
                return Ok(());
            }
            first_sts.get_or_insert(sts);
        }
    }
    Err(AuthError::SignatureDoesNotMatch {
        string_to_sign: first_sts.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{ACS3_ALGORITHM, parse};
    use super::*;

    const SECRET: &str = "testsecret";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const V2_SIGNED: &str = "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    const V2_SIG: &str = "3f34bfc64226b62c9c22e84db52a3603a199180111e4c60ca4975c8a1d223059";
    const V2_STS: &str =
        "ACS3-HMAC-SHA256\n1296287c92258e928b25b1c088a376f056c11c200ac776c0eb5929c52ae08640";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn authorization(ak: &str, signed: &str, sig: &str) -> String {
        format!("{ACS3_ALGORITHM} Credential={ak},SignedHeaders={signed},Signature={sig}")
    }

    fn with_header(
        mut headers: Vec<(String, String)>,
        name: &str,
        value: &str,
    ) -> Vec<(String, String)> {
        headers.push((name.into(), value.into()));
        headers
    }

    fn v2_query() -> Vec<(String, String)> {
        pairs(&[
            ("RegionId", "cn-hangzhou"),
            ("InstanceIds", r#"["i-bp1abc", "i-bp2def"]"#),
            ("PageSize", "10"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "dev test"),
        ])
    }

    fn v2_headers() -> Vec<(String, String)> {
        pairs(&[
            ("host", "ecs.cn-hangzhou.aliyuncs.com"),
            ("x-acs-action", "DescribeInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            (
                "x-acs-signature-nonce",
                "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
            ),
            ("accept", "application/json"),
            ("x-acs-content-sha256", EMPTY_SHA256),
        ])
    }

    /// The v2 vector's headers with its Authorization.
    fn v2_signed_headers() -> Vec<(String, String)> {
        with_header(
            v2_headers(),
            "authorization",
            &authorization("testid", V2_SIGNED, V2_SIG),
        )
    }

    fn v2_signed() -> Vec<&'static str> {
        V2_SIGNED.split(';').collect()
    }

    /// ACS3-HMAC-SM3 as @alicloud/openapi-core 1.0.8 signs it (`getAuthorization` with
    /// `signatureAlgorithm: "ACS3-HMAC-SM3"`, Node's `sm3` hash and HMAC), over the v2
    /// vector's request; SM3("abc") is GB/T 32905's own example.
    #[test]
    fn vector_sm3_from_the_node_sdk() {
        const EMPTY_SM3: &str = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";
        const SIGNED: &str =
            "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
        const SIG: &str = "31ebef71e289e29a0c995881855a8fab7ce8e9cda2a0892f1b107bb6dc1ae6fe";
        assert_eq!(
            Acs3Algorithm::HmacSm3.hash_hex(b"abc"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
        );
        assert_eq!(Acs3Algorithm::HmacSm3.hash_hex(b""), EMPTY_SM3);

        let query = v2_query();
        let headers: Vec<(String, String)> = v2_headers()
            .into_iter()
            .map(|(k, v)| {
                let v = if k == CONTENT_SHA256 {
                    EMPTY_SM3.to_owned()
                } else {
                    v
                };
                (k, v)
            })
            .collect();
        let signed: Vec<&str> = SIGNED.split(';').collect();
        assert_eq!(
            sign_v3_with(
                Acs3Algorithm::HmacSm3,
                "POST",
                "/",
                &query,
                &headers,
                &signed,
                SECRET
            ),
            SIG
        );

        let value =
            format!("ACS3-HMAC-SM3 Credential=testid,SignedHeaders={SIGNED},Signature={SIG}");
        let with_auth = with_header(headers.clone(), "Authorization", &value);
        let auth = parse(&query, &with_auth).unwrap();
        assert!(matches!(
            auth,
            AliyunAuth::V3 {
                algorithm: Acs3Algorithm::HmacSm3,
                ..
            }
        ));
        assert_eq!(
            verify_v3("POST", "/", &query, &with_auth, b"", &auth, SECRET),
            Ok(())
        );
        assert!(matches!(
            verify_v3("POST", "/", &query, &with_auth, b"", &auth, "wrong"),
            Err(AuthError::SignatureDoesNotMatch { string_to_sign }) if string_to_sign.starts_with("ACS3-HMAC-SM3\n")
        ));
        // The payload hash is SM3's: a SHA-256 one does not match the (empty) body.
        let sha_payload = with_header(
            headers
                .into_iter()
                .filter(|(k, _)| k != CONTENT_SHA256)
                .collect(),
            CONTENT_SHA256,
            EMPTY_SHA256,
        );
        let sha_payload = with_header(sha_payload, "Authorization", &value);
        let auth = parse(&query, &sha_payload).unwrap();
        assert_eq!(
            verify_v3("POST", "/", &query, &sha_payload, b"", &auth, SECRET),
            Err(AuthError::ContentSha256Mismatch)
        );
        // The same signature under the SHA-256 scheme name is not valid.
        let as_sha = with_header(
            v2_headers(),
            "Authorization",
            &format!("{ACS3_ALGORITHM} Credential=testid,SignedHeaders={SIGNED},Signature={SIG}"),
        );
        let auth = parse(&query, &as_sha).unwrap();
        assert!(matches!(
            verify_v3("POST", "/", &query, &as_sha, b"", &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch { .. })
        ));
    }

    #[test]
    fn vector_v2() {
        let (query, headers) = (v2_query(), v2_headers());
        let signed = v2_signed();
        let canonical_request = format!(
            "POST\n/\n{}\n{}\n{V2_SIGNED}\n{EMPTY_SHA256}",
            canonical_query(&query, false),
            canonical_headers(&headers, &signed, false)
        );
        assert_eq!(
            canonical_request,
            "POST\n/\nInstanceIds=%5B%22i-bp1abc%22%2C%20%22i-bp2def%22%5D&PageSize=10&RegionId=cn-hangzhou&Tag.1.Key=env&Tag.1.Value=dev%20test\n\
             accept:application/json\nhost:ecs.cn-hangzhou.aliyuncs.com\nx-acs-action:DescribeInstances\n\
             x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-acs-date:2024-01-01T12:00:00Z\nx-acs-signature-nonce:3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf\n\
             x-acs-version:2014-05-26\n\n\
             accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(canonical_request.as_bytes()),
            "1296287c92258e928b25b1c088a376f056c11c200ac776c0eb5929c52ae08640"
        );
        assert_eq!(
            sign_v3("POST", "/", &query, &headers, &signed, SECRET),
            V2_SIG
        );

        let headers = with_header(
            headers,
            "Authorization",
            &authorization("testid", V2_SIGNED, V2_SIG),
        );
        let auth = parse(&query, &headers).unwrap();
        assert_eq!(
            auth,
            AliyunAuth::V3 {
                algorithm: Acs3Algorithm::HmacSha256,
                access_key_id: "testid".into(),
                signed_headers: signed.iter().map(|s| s.to_string()).collect(),
                signature: V2_SIG.into(),
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
                date: "2024-01-01T12:00:00Z".into(),
            }
        );
        assert_eq!(auth.timestamp(), "2024-01-01T12:00:00Z");
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, b"", &auth, SECRET),
            Ok(())
        );
        // Empty path means `/`; upper-case hex is fine.
        assert_eq!(
            verify_v3("POST", "", &query, &headers, b"", &auth, SECRET),
            Ok(())
        );
        let upper = AliyunAuth::V3 {
            algorithm: Acs3Algorithm::HmacSha256,
            access_key_id: "testid".into(),
            signed_headers: signed.iter().map(|s| s.to_string()).collect(),
            signature: V2_SIG.to_ascii_uppercase(),
            nonce: String::new(),
            date: String::new(),
        };
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, b"", &upper, SECRET),
            Ok(())
        );
    }

    #[test]
    fn wrong_secret_reports_string_to_sign() {
        let query = v2_query();
        let headers = v2_signed_headers();
        let auth = parse(&query, &headers).unwrap();
        let err = verify_v3("POST", "/", &query, &headers, b"", &auth, "wrong").unwrap_err();
        assert_eq!(
            err,
            AuthError::SignatureDoesNotMatch {
                string_to_sign: V2_STS.into()
            }
        );
        assert_eq!(err.message().split(':').nth(1), Some(V2_STS));
        // Method, path, query and signed headers are all covered.
        assert!(verify_v3("GET", "/", &query, &headers, b"", &auth, SECRET).is_err());
        assert!(verify_v3("POST", "/x", &query, &headers, b"", &auth, SECRET).is_err());
        let mut q = query.clone();
        q[2].1 = "100".into();
        assert!(verify_v3("POST", "/", &q, &headers, b"", &auth, SECRET).is_err());
        let mut h = headers.clone();
        h[1].1 = "DeleteInstance".into();
        assert!(verify_v3("POST", "/", &query, &h, b"", &auth, SECRET).is_err());
        // Garbage signature still reports the string to sign.
        let garbage = with_header(
            v2_headers(),
            "authorization",
            &authorization("testid", V2_SIGNED, "zz"),
        );
        let auth = parse(&query, &garbage).unwrap();
        assert_eq!(
            verify_v3("POST", "/", &query, &garbage, b"", &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch {
                string_to_sign: V2_STS.into()
            })
        );
    }

    #[test]
    fn python_tea_vector_with_body_and_odd_names() {
        // Computed with alibabacloud_tea_openapi.utils get_authorization logic:
        // query names unencoded, every header signed, values stripped.
        let body = br#"{"a":1}"#;
        let body_hash = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
        assert_eq!(sha256_hex(body), body_hash);
        let query = pairs(&[("a b", "x y/~*"), ("é", "ü"), ("k", "")]);
        assert_eq!(
            canonical_query(&query, false),
            "a b=x%20y%2F~%2A&k=&é=%C3%BC"
        );
        assert_eq!(
            canonical_query(&query, true),
            "a%20b=x%20y%2F~%2A&k=&%C3%A9=%C3%BC"
        );
        let signed_line = "content-type;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
        let sig = "22cc91b051dccccfba65ee74e4bb9302e59dff41fb9f3b96932909c9ca93fac6";
        let headers = pairs(&[
            ("host", "127.0.0.1:8080"),
            ("x-acs-action", "RunInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            ("x-acs-signature-nonce", "n-1"),
            ("x-acs-content-sha256", body_hash),
            ("content-type", "application/json; charset=utf-8"),
            ("user-agent", "  AlibabaCloud (Linux)  "),
        ]);
        let signed: Vec<&str> = signed_line.split(';').collect();
        assert_eq!(sign_v3("POST", "/", &query, &headers, &signed, SECRET), sig);
        let headers = with_header(
            headers,
            "Authorization",
            &authorization("testid", signed_line, sig),
        );
        let auth = parse(&query, &headers).unwrap();
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, body, &auth, SECRET),
            Ok(())
        );
        // The body is covered through x-acs-content-sha256.
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, br#"{"a":2}"#, &auth, SECRET),
            Err(AuthError::ContentSha256Mismatch)
        );
    }

    #[test]
    fn accepts_percent_encoded_query_names() {
        // Spec/docs variant: names encoded too.
        let query = pairs(&[("a b", "1"), ("Tag.1.Key", "x")]);
        let headers = v2_headers();
        let signed = v2_signed();
        let sts = string_to_sign(
            Acs3Algorithm::HmacSha256,
            "POST",
            "/",
            &canonical_query(&query, true),
            &canonical_headers(&headers, &signed, false),
            V2_SIGNED,
            EMPTY_SHA256,
        );
        let sig = hex::encode(Acs3Algorithm::HmacSha256.mac(SECRET, &sts));
        let headers = with_header(
            headers,
            "authorization",
            &authorization("testid", V2_SIGNED, &sig),
        );
        let auth = parse(&query, &headers).unwrap();
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, b"", &auth, SECRET),
            Ok(())
        );
    }

    #[test]
    fn repeated_header_values() {
        let headers = with_header(
            with_header(v2_headers(), "x-acs-extra", "b"),
            "X-Acs-Extra",
            "a",
        );
        let signed_line = format!("{V2_SIGNED};x-acs-extra");
        let signed: Vec<&str> = signed_line.split(';').collect();
        assert!(canonical_headers(&headers, &signed, false).contains("x-acs-extra:b,a\n"));
        assert!(canonical_headers(&headers, &signed, true).contains("x-acs-extra:a,b\n"));
        // Request order (sign_v3) …
        let sig = sign_v3("POST", "/", &[], &headers, &signed, SECRET);
        let h = with_header(
            headers.clone(),
            "authorization",
            &authorization("testid", &signed_line, &sig),
        );
        let auth = parse(&[], &h).unwrap();
        assert_eq!(verify_v3("POST", "/", &[], &h, b"", &auth, SECRET), Ok(()));
        // … and sorted, as the Tea SDKs sign them.
        let sts = string_to_sign(
            Acs3Algorithm::HmacSha256,
            "POST",
            "/",
            "",
            &canonical_headers(&headers, &signed, true),
            &signed_line,
            EMPTY_SHA256,
        );
        let sig = hex::encode(Acs3Algorithm::HmacSha256.mac(SECRET, &sts));
        let h = with_header(
            headers,
            "authorization",
            &authorization("testid", &signed_line, &sig),
        );
        let auth = parse(&[], &h).unwrap();
        assert_eq!(verify_v3("POST", "/", &[], &h, b"", &auth, SECRET), Ok(()));
    }

    #[test]
    fn content_sha256_and_unsigned_acs_headers() {
        let query = v2_query();
        let headers = v2_signed_headers();
        let auth = parse(&query, &headers).unwrap();
        assert_eq!(
            verify_v3("POST", "/", &query, &headers, b"x", &auth, SECRET),
            Err(AuthError::ContentSha256Mismatch)
        );
        // Upper-case hex of the right hash is accepted (then signed as sent).
        let upper: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                let v = if k == CONTENT_SHA256 {
                    v.to_ascii_uppercase()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect();
        assert!(matches!(
            verify_v3("POST", "/", &query, &upper, b"", &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch { .. })
        ));
        let missing: Vec<(String, String)> = headers
            .iter()
            .filter(|(k, _)| k != CONTENT_SHA256)
            .cloned()
            .collect();
        assert_eq!(
            verify_v3("POST", "/", &query, &missing, b"", &auth, SECRET),
            Err(AuthError::MissingParameter("x-acs-content-sha256"))
        );
        let extra = with_header(headers.clone(), "X-Acs-Security-Token", "tok");
        assert!(matches!(
            verify_v3("POST", "/", &query, &extra, b"", &auth, SECRET),
            Err(AuthError::IncompleteSignature(_))
        ));
        // Unsigned non-x-acs headers (added by HTTP stacks) are fine.
        let extra = with_header(headers, "content-length", "0");
        assert_eq!(
            verify_v3("POST", "/", &query, &extra, b"", &auth, SECRET),
            Ok(())
        );
    }

    #[test]
    fn parse_errors() {
        let parse_with = |auth: &str| parse(&[], &with_header(v2_headers(), "authorization", auth));
        let ok = authorization("testid", V2_SIGNED, V2_SIG);
        assert!(parse_with(&ok).is_ok());
        // Blanks after commas are tolerated.
        assert!(
            parse_with(&format!(
                "ACS3-HMAC-SHA256 Credential=testid, SignedHeaders={V2_SIGNED}, Signature={V2_SIG}"
            ))
            .is_ok()
        );
        for bad in [
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA256 ",
            "ACS3-HMAC-SHA256 garbage",
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;date,Signature=00",
            "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=00",
        ] {
            assert!(
                matches!(parse_with(bad), Err(AuthError::IncompleteSignature(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_with("ACS3-HMAC-SHA256X Credential=a,SignedHeaders=host,Signature=00"),
            Err(AuthError::InvalidSignatureMethod)
        );
        for name in [NONCE, DATE] {
            let headers: Vec<(String, String)> = v2_headers()
                .into_iter()
                .filter(|(k, _)| k != name)
                .chain([("authorization".to_owned(), ok.clone())])
                .collect();
            assert_eq!(parse(&[], &headers), Err(AuthError::MissingParameter(name)));
        }
        // v1 params do not matter once an ACS3 header is present.
        let v1ish = pairs(&[("AccessKeyId", "other")]);
        let auth = parse(&v1ish, &with_header(v2_headers(), "authorization", &ok)).unwrap();
        assert_eq!(auth.access_key_id(), "testid");
        // v1 credentials are refused by verify_v3.
        let v1 = AliyunAuth::V1 {
            access_key_id: "testid".into(),
            signature: String::new(),
            nonce: String::new(),
            timestamp: String::new(),
            method: "HMAC-SHA1".into(),
            version: "1.0".into(),
        };
        assert!(matches!(
            verify_v3("POST", "/", &[], &v2_headers(), b"", &v1, SECRET),
            Err(AuthError::IncompleteSignature(_))
        ));
    }

    /// Request headers for a round trip: the fixed x-acs set plus `extra`.
    fn round_trip_headers(body: &[u8], extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut headers = pairs(&[
            ("host", "127.0.0.1:8080"),
            ("x-acs-action", "DescribeInstances"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            ("x-acs-signature-nonce", "0123456789abcdef"),
        ]);
        headers.push((CONTENT_SHA256.into(), sha256_hex(body)));
        for (i, (_, v)) in extra.iter().enumerate() {
            headers.push((format!("x-acs-extra-{i}"), v.clone()));
        }
        headers
    }

    fn signed_names(headers: &[(String, String)]) -> Vec<String> {
        let mut names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    proptest::proptest! {
        #[test]
        fn sign_verify_round_trip(
            query in proptest::collection::vec(("\\PC{1,8}", "\\PC{0,16}"), 0..8),
            extra in proptest::collection::vec(("[a-z]{1,4}", "[ -~]{0,16}"), 0..4),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            http_method in proptest::sample::select(vec!["GET", "POST"]),
        ) {
            let headers = round_trip_headers(&body, &extra);
            let names = signed_names(&headers);
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let sig = sign_v3(http_method, "/", &query, &headers, &refs, SECRET);
            let headers = with_header(headers, "authorization", &authorization("testid", &names.join(";"), &sig));
            let auth = parse(&query, &headers).unwrap();
            proptest::prop_assert_eq!(
                verify_v3(http_method, "/", &query, &headers, &body, &auth, SECRET),
                Ok(())
            );
        }

        #[test]
        fn changed_query_value_fails(
            query in proptest::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,8}", "\\PC{0,16}"), 1..8),
            pick in proptest::prelude::any::<proptest::sample::Index>(),
            suffix in "\\PC{1,4}",
        ) {
            let headers = round_trip_headers(b"", &[]);
            let names = signed_names(&headers);
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let sig = sign_v3("POST", "/", &query, &headers, &refs, SECRET);
            let headers = with_header(headers, "authorization", &authorization("testid", &names.join(";"), &sig));
            let auth = parse(&query, &headers).unwrap();
            let mut tampered = query.clone();
            let i = pick.index(tampered.len());
            tampered[i].1.push_str(&suffix);
            let is_mismatch = matches!(
                verify_v3("POST", "/", &tampered, &headers, b"", &auth, SECRET),
                Err(AuthError::SignatureDoesNotMatch { .. })
            );
            proptest::prop_assert!(is_mismatch);
        }
    }
}
