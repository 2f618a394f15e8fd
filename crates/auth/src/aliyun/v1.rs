//! RPC v1 signatures, HMAC-SHA1 / HMAC-SHA256 (spec §3a).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{AliyunAuth, AuthError, percent_encode};
use crate::hmacs::{Hash, mac, mac_matches};

/// The parameter carrying the signature; never signed itself.
const SIGNATURE: &str = "Signature";

/// The HMAC's hash named by `SignatureMethod`.
fn method_hash(value: &str) -> Option<Hash> {
    if value.eq_ignore_ascii_case("HMAC-SHA1") {
        Some(Hash::Sha1)
    } else if value.eq_ignore_ascii_case("HMAC-SHA256") {
        Some(Hash::Sha256)
    } else {
        None
    }
}

/// The single value of an authentication parameter: absent or empty →
/// `MissingParameter`, repeated → `IncompleteSignature` (ambiguous).
fn single<'p>(params: &'p [(String, String)], name: &'static str) -> Result<&'p str, AuthError> {
    let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let value = values
        .next()
        .filter(|v| !v.is_empty())
        .ok_or(AuthError::MissingParameter(name))?;
    if values.next().is_some() {
        return Err(AuthError::IncompleteSignature(format!(
            "parameter {name} appears more than once"
        )));
    }
    Ok(value)
}

/// See [`super::parse`]; called when `AccessKeyId` or `Signature` is present.
pub(super) fn parse_params(params: &[(String, String)]) -> Result<AliyunAuth, AuthError> {
    let access_key_id = single(params, "AccessKeyId")?;
    let signature = single(params, SIGNATURE)?;
    let method = single(params, "SignatureMethod")?;
    if method_hash(method).is_none() {
        return Err(AuthError::InvalidSignatureMethod);
    }
    let version = single(params, "SignatureVersion")?;
    if version != "1.0" {
        return Err(AuthError::IncompleteSignature(
            "SignatureVersion must be 1.0".to_owned(),
        ));
    }
    let nonce = single(params, "SignatureNonce")?;
    let timestamp = single(params, "Timestamp")?;
    Ok(AliyunAuth::V1 {
        access_key_id: access_key_id.to_owned(),
        signature: signature.to_owned(),
        nonce: nonce.to_owned(),
        timestamp: timestamp.to_owned(),
        method: method.to_owned(),
        version: version.to_owned(),
    })
}

/// Steps 1–4: every param except `Signature`, name and value percent-encoded,
/// sorted by *decoded* name in byte order (all SDKs sort their parameter map
/// before encoding; stable, so repeated names keep request order), joined with
/// `&`, then `METHOD&%2F&percentEncode(that)`.
///
/// Repeated names are all signed: no SDK sends any, and signing every received
/// value means no unsigned value can reach a handler.
pub(super) fn string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut signed: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != SIGNATURE).collect();
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut canonical = String::new();
    for (i, (k, v)) in signed.into_iter().enumerate() {
        if i > 0 {
            canonical.push('&');
        }
        canonical.push_str(&percent_encode(k));
        canonical.push('=');
        canonical.push_str(&percent_encode(v));
    }
    format!("{method}&%2F&{}", percent_encode(&canonical))
}

/// The HMAC key: `AccessKeySecret + "&"`.
fn key(secret: &str) -> Vec<u8> {
    format!("{secret}&").into_bytes()
}

/// Computes the base64 v1 signature of a request (spec §3a step 5).
///
/// `method` is the HTTP method, `params` all query + form parameters the request
/// will carry, including `AccessKeyId`, `SignatureMethod`, `SignatureVersion`,
/// `SignatureNonce`, `Timestamp` (any `Signature` entry is skipped). The HMAC is
/// SHA-256 when `SignatureMethod` is `HMAC-SHA256`, SHA-1 otherwise. The result
/// must be percent-encoded when put on the wire.
pub fn sign_v1(method: &str, params: &[(String, String)], secret: &str) -> String {
    let signature_method = params
        .iter()
        .find(|(k, _)| k == "SignatureMethod")
        .and_then(|(_, v)| method_hash(v))
        .unwrap_or(Hash::Sha1);
    let sts = string_to_sign(method, params);
    BASE64.encode(mac(signature_method, &key(secret), &sts))
}

/// Verifies a v1 signature. `method` is the HTTP method as received, `params`
/// the decoded query + form-body parameters (the `Signature` entry is skipped),
/// `auth` what [`super::parse`] returned for them. Comparison is constant-time.
///
/// A mismatch (including an undecodable signature) is
/// [`AuthError::SignatureDoesNotMatch`] carrying the server's StringToSign. The
/// AccessKeyId lookup, [`super::check_timestamp`] and the nonce check are the
/// caller's job.
pub fn verify_v1(
    method: &str,
    params: &[(String, String)],
    auth: &AliyunAuth,
    secret: &str,
) -> Result<(), AuthError> {
    let AliyunAuth::V1 {
        signature,
        method: signature_method,
        ..
    } = auth
    else {
        return Err(AuthError::IncompleteSignature(
            "expected RPC v1 (Signature parameter) credentials".to_owned(),
        ));
    };
    let signature_method =
        method_hash(signature_method).ok_or(AuthError::InvalidSignatureMethod)?;
    let sts = string_to_sign(method, params);
    // A client that forgets to URL-encode the signature has its `+` decoded to a
    // space by the form parser; base64 never contains spaces, so undo that.
    let matches = BASE64
        .decode(signature.trim().replace(' ', "+"))
        .is_ok_and(|provided| mac_matches(signature_method, &key(secret), &sts, &provided));
    if matches {
        Ok(())
    } else {
        Err(AuthError::SignatureDoesNotMatch {
            string_to_sign: sts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const SECRET: &str = "testsecret";
    const V1_SIG: &str = "y5921f3wRJKuXAIHp5/3+5zhzxk=";
    const V1_SIG_NO_TYPE: &str = "XBjl9OpeaT1bgFXRCvqev/Uzouk=";
    const V1_STS: &str = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeInstances%26Format%3DJSON%26InstanceIds%3D%255B%2522i-bp1abc%2522%252C%2520%2522i-bp2def%2522%255D%26PageSize%3D10%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T12%253A00%253A00Z%26Version%3D2014-05-26";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Spec vector V1 params in (unsorted) request order.
    fn v1_params(with_signature_type: bool) -> Vec<(String, String)> {
        let mut p = pairs(&[
            ("Action", "DescribeInstances"),
            ("Version", "2014-05-26"),
            ("RegionId", "cn-hangzhou"),
            ("InstanceIds", r#"["i-bp1abc", "i-bp2def"]"#),
            ("PageSize", "10"),
            ("Timestamp", "2024-01-01T12:00:00Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("AccessKeyId", "testid"),
            ("Format", "JSON"),
        ]);
        if !with_signature_type {
            p.retain(|(k, _)| k != "SignatureType");
        }
        p
    }

    fn with_signature(mut params: Vec<(String, String)>, sig: &str) -> Vec<(String, String)> {
        params.push((SIGNATURE.into(), sig.into()));
        params
    }

    fn replaced(params: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
        params
            .iter()
            .map(|(k, v)| {
                let v = if k == name { value } else { v.as_str() };
                (k.clone(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn vector_v1_with_signature_type() {
        let params = v1_params(true);
        assert_eq!(string_to_sign("GET", &params), V1_STS);
        assert_eq!(sign_v1("GET", &params, SECRET), V1_SIG);

        let params = with_signature(params, V1_SIG);
        let auth = parse(&params, &[]).unwrap();
        assert_eq!(
            auth,
            AliyunAuth::V1 {
                access_key_id: "testid".into(),
                signature: V1_SIG.into(),
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
                timestamp: "2024-01-01T12:00:00Z".into(),
                method: "HMAC-SHA1".into(),
                version: "1.0".into(),
            }
        );
        assert_eq!(verify_v1("GET", &params, &auth, SECRET), Ok(()));
        // The HTTP method is signed.
        assert!(matches!(
            verify_v1("POST", &params, &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch { .. })
        ));
    }

    #[test]
    fn vector_v1_without_signature_type() {
        // Tea RPC mode, Java core: no SignatureType at all.
        let params = v1_params(false);
        assert_eq!(sign_v1("GET", &params, SECRET), V1_SIG_NO_TYPE);
        let params = with_signature(params, V1_SIG_NO_TYPE);
        let auth = parse(&params, &[]).unwrap();
        assert_eq!(verify_v1("GET", &params, &auth, SECRET), Ok(()));
        // An empty-valued param is still signed as `name=`.
        let with_type = with_signature(v1_params(true), V1_SIG_NO_TYPE);
        assert!(verify_v1("GET", &with_type, &auth, SECRET).is_err());
    }

    #[test]
    fn wrong_secret_reports_string_to_sign() {
        let params = with_signature(v1_params(true), V1_SIG);
        let auth = parse(&params, &[]).unwrap();
        let err = verify_v1("GET", &params, &auth, "wrongsecret").unwrap_err();
        assert_eq!(
            err,
            AuthError::SignatureDoesNotMatch {
                string_to_sign: V1_STS.into()
            }
        );
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert_eq!(
            err.message(),
            format!(
                "Specified signature does not match our calculation. server string to sign is:{V1_STS}"
            )
        );
        assert_eq!(err.message().split(':').nth(1), Some(V1_STS));
    }

    #[test]
    fn hmac_sha256_legacy_php_variant() {
        // base64(HMAC-SHA256(secret + "&", StringToSign)), computed in Python over
        // the V1 params with SignatureMethod=HMAC-SHA256 and no SignatureType.
        let params = replaced(&v1_params(false), "SignatureMethod", "HMAC-SHA256");
        let sig = sign_v1("GET", &params, SECRET);
        assert_eq!(sig, "yZRPQIB3NOyg4xzg1MdDKljZQUNqfxGss7RvAGTzeHU=");
        let params = with_signature(params, &sig);
        let auth = parse(&params, &[]).unwrap();
        assert_eq!(verify_v1("GET", &params, &auth, SECRET), Ok(()));
    }

    #[test]
    fn utf8_and_reserved_values_match_python_core() {
        // Computed with aliyunsdkcore rpc_signature_composer (POST, form-style).
        let params = pairs(&[
            ("Action", "ModifyInstanceAttribute"),
            ("Description", "héllo wörld *~+/=&"),
            ("InstanceId", "i-1"),
            ("Timestamp", "2024-01-01T12:00:00Z"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "n1"),
            ("AccessKeyId", "testid"),
            ("Format", "JSON"),
        ]);
        assert_eq!(
            string_to_sign("POST", &params),
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DModifyInstanceAttribute%26Description%3Dh%25C3%25A9llo%2520w%25C3%25B6rld%2520%252A~%252B%252F%253D%2526%26Format%3DJSON%26InstanceId%3Di-1%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Dn1%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-01T12%253A00%253A00Z"
        );
        assert_eq!(
            sign_v1("POST", &params, SECRET),
            "8tZgOtMKduVqCxxH3u+2fHkOX2U="
        );
    }

    #[test]
    fn sorts_by_decoded_name_like_the_sdks() {
        // Python/Go/Java sort the raw names: `aZ` < `a[` although `a%5B` < `aZ`.
        let params = pairs(&[("a[", "x"), ("aZ", "y"), ("k", "a b*~/+é")]);
        assert_eq!(
            string_to_sign("POST", &params),
            "POST&%2F&aZ%3Dy%26a%255B%3Dx%26k%3Da%2520b%252A~%252F%252B%25C3%25A9"
        );
    }

    #[test]
    fn tolerates_unencoded_plus() {
        let params = with_signature(v1_params(true), &V1_SIG.replace('+', " "));
        let auth = parse(&params, &[]).unwrap();
        assert_eq!(verify_v1("GET", &params, &auth, SECRET), Ok(()));
    }

    #[test]
    fn tampering_fails() {
        let params = with_signature(v1_params(true), V1_SIG);
        let auth = parse(&params, &[]).unwrap();
        let tampered = replaced(&params, "PageSize", "100");
        assert!(matches!(
            verify_v1("GET", &tampered, &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch { .. })
        ));
        // An extra (e.g. smuggled duplicate) parameter is signed too.
        let mut extra = params.clone();
        extra.push(("Action".into(), "DeleteInstance".into()));
        assert!(verify_v1("GET", &extra, &auth, SECRET).is_err());
        // Garbage signature.
        let garbage = replaced(&params, SIGNATURE, "%%%");
        let auth = parse(&garbage, &[]).unwrap();
        assert_eq!(
            verify_v1("GET", &garbage, &auth, SECRET),
            Err(AuthError::SignatureDoesNotMatch {
                string_to_sign: V1_STS.into()
            })
        );
    }

    #[test]
    fn parse_errors() {
        let base = with_signature(v1_params(true), V1_SIG);
        let without = |name: &str| -> Vec<(String, String)> {
            base.iter().filter(|(k, _)| k != name).cloned().collect()
        };

        assert_eq!(
            parse(&without("AccessKeyId"), &[]),
            Err(AuthError::MissingParameter("AccessKeyId"))
        );
        assert_eq!(
            parse(&without(SIGNATURE), &[]),
            Err(AuthError::MissingParameter("Signature"))
        );
        for name in [
            "SignatureMethod",
            "SignatureVersion",
            "SignatureNonce",
            "Timestamp",
        ] {
            assert_eq!(
                parse(&without(name), &[]),
                Err(AuthError::MissingParameter(name)),
                "{name}"
            );
        }
        assert_eq!(
            parse(&replaced(&base, "SignatureNonce", ""), &[]),
            Err(AuthError::MissingParameter("SignatureNonce"))
        );
        assert_eq!(
            parse(&replaced(&base, "SignatureMethod", "HMAC-MD5"), &[]),
            Err(AuthError::InvalidSignatureMethod)
        );
        assert_eq!(
            parse(&replaced(&base, "SignatureMethod", "SHA256withRSA"), &[]),
            Err(AuthError::InvalidSignatureMethod)
        );
        assert!(matches!(
            parse(&replaced(&base, "SignatureVersion", "2.0"), &[]),
            Err(AuthError::IncompleteSignature(_))
        ));
        let mut dup = base.clone();
        dup.push(("AccessKeyId".into(), "other".into()));
        assert!(matches!(
            parse(&dup, &[]),
            Err(AuthError::IncompleteSignature(_))
        ));
        // The timestamp is returned as sent; its format is checked separately.
        let auth = parse(&replaced(&base, "Timestamp", "yesterday"), &[]).unwrap();
        assert_eq!(auth.timestamp(), "yesterday");
        // Lower-case method names are tolerated.
        let lower = replaced(&base, "SignatureMethod", "hmac-sha1");
        assert!(parse(&lower, &[]).is_ok());
    }

    #[test]
    fn rejects_v3_credentials() {
        let auth = AliyunAuth::V3 {
            algorithm: crate::aliyun::Acs3Algorithm::HmacSha256,
            access_key_id: "testid".into(),
            signed_headers: vec![],
            signature: String::new(),
            nonce: String::new(),
            date: String::new(),
        };
        assert!(matches!(
            verify_v1("GET", &v1_params(true), &auth, SECRET),
            Err(AuthError::IncompleteSignature(_))
        ));
    }

    fn auth_params(method: &'static str) -> Vec<(String, String)> {
        pairs(&[
            ("AccessKeyId", "testid"),
            ("SignatureMethod", method),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", "nonce-1"),
            ("Timestamp", "2024-01-01T12:00:00Z"),
        ])
    }

    /// Appends `extra`, skipping `Signature` and names already present.
    fn add_params(params: &mut Vec<(String, String)>, extra: Vec<(String, String)>) {
        for (k, v) in extra {
            if k != SIGNATURE && !params.iter().any(|(p, _)| *p == k) {
                params.push((k, v));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn sign_verify_round_trip(
            extra in proptest::collection::vec(("[A-Za-z0-9._\\-\\[\\] ]{1,12}", "\\PC{0,16}"), 0..8),
            sha256 in proptest::bool::ANY,
            http_method in proptest::sample::select(vec!["GET", "POST"]),
        ) {
            let mut params = auth_params(if sha256 { "HMAC-SHA256" } else { "HMAC-SHA1" });
            add_params(&mut params, extra);
            let sig = sign_v1(http_method, &params, SECRET);
            let signed = with_signature(params.clone(), &sig);
            let auth = parse(&signed, &[]).unwrap();
            proptest::prop_assert_eq!(verify_v1(http_method, &signed, &auth, SECRET), Ok(()));
            // Order of the received params does not matter.
            let mut reversed = signed.clone();
            reversed.reverse();
            proptest::prop_assert_eq!(verify_v1(http_method, &reversed, &auth, SECRET), Ok(()));
        }

        #[test]
        fn changed_value_fails(
            extra in proptest::collection::vec(("[A-Za-z][A-Za-z0-9.]{0,10}", "\\PC{0,16}"), 1..8),
            pick in proptest::prelude::any::<proptest::sample::Index>(),
            suffix in "\\PC{1,4}",
        ) {
            let mut params = auth_params("HMAC-SHA1");
            add_params(&mut params, extra);
            let sig = sign_v1("POST", &params, SECRET);
            let mut signed = with_signature(params, &sig);
            let auth = parse(&signed, &[]).unwrap();
            let i = pick.index(signed.len() - 1); // never the Signature itself
            signed[i].1.push_str(&suffix);
            let is_mismatch = matches!(
                verify_v1("POST", &signed, &auth, SECRET),
                Err(AuthError::SignatureDoesNotMatch { .. })
            );
            proptest::prop_assert!(is_mismatch);
        }
    }
}
