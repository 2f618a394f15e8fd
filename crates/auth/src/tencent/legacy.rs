//! Legacy v1 signatures, HmacSHA1 / HmacSHA256 (spec §3b).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{AuthError, LegacyMethod, TencentAuth, validate_secret_id};
use crate::hmacs::{mac, mac_matches};

/// First value of a parameter.
fn param<'p>(params: &'p [(String, String)], name: &str) -> Option<&'p str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `METHOD + host + path + "?" + k=v&…` over all params except `Signature`,
/// sorted by name (byte order), values decoded and *not* re-encoded.
fn string_to_sign(method: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let mut signed: Vec<&(String, String)> =
        params.iter().filter(|(k, _)| k != "Signature").collect();
    // Stable sort: repeated names keep their request order.
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let path = if path.is_empty() { "/" } else { path };
    let mut out = format!("{method}{host}{path}?");
    for (i, (k, v)) in signed.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Computes the base64 legacy signature over `params` (any `Signature` entry is
/// skipped). `params` must already contain everything the client sends and signs,
/// including `SecretId`, `Timestamp`, `Nonce` and — for HmacSHA256 —
/// `SignatureMethod`; `host` is the Host header value the request will carry.
pub fn sign_legacy(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    secret_key: &str,
    signature_method: LegacyMethod,
) -> String {
    let sts = string_to_sign(method, host, path, params);
    BASE64.encode(mac(signature_method.hash(), secret_key.as_bytes(), &sts))
}

/// Extracts legacy credentials from decoded request params.
///
/// Neither `Signature` nor `SecretId` present → [`AuthError::MissingAuth`] (not a
/// legacy request at all); one of `Signature`, `SecretId`, `Timestamp`, `Nonce`
/// missing → `MissingParameter`; bad `Timestamp` or unknown `SignatureMethod` →
/// `InvalidParameterValue`, and so is a `Nonce` that is not 1 to
/// [`super::MAX_NONCE_LEN`] printable ASCII characters; malformed SecretId → `InvalidSecretId`.
/// An absent `SignatureMethod` means HmacSHA1.
pub fn parse_legacy(params: &[(String, String)]) -> Result<TencentAuth, AuthError> {
    let signature = param(params, "Signature");
    let secret_id = param(params, "SecretId");
    if signature.is_none() && secret_id.is_none() {
        return Err(AuthError::MissingAuth);
    }
    let signature = signature.ok_or(AuthError::MissingParameter("Signature"))?;
    let secret_id = secret_id.ok_or(AuthError::MissingParameter("SecretId"))?;
    validate_secret_id(secret_id)?;
    let timestamp = param(params, "Timestamp")
        .ok_or(AuthError::MissingParameter("Timestamp"))?
        .trim()
        .parse::<i64>()
        .map_err(|_| AuthError::InvalidParameterValue("Timestamp"))?;
    let nonce = param(params, "Nonce").ok_or(AuthError::MissingParameter("Nonce"))?;
    if nonce.is_empty()
        || nonce.len() > super::MAX_NONCE_LEN
        || !nonce.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(AuthError::InvalidParameterValue("Nonce"));
    }
    let method = match param(params, "SignatureMethod") {
        None => LegacyMethod::HmacSha1,
        Some("HmacSHA1") => LegacyMethod::HmacSha1,
        Some("HmacSHA256") => LegacyMethod::HmacSha256,
        Some(_) => return Err(AuthError::InvalidParameterValue("SignatureMethod")),
    };
    Ok(TencentAuth::Legacy {
        secret_id: secret_id.to_owned(),
        method,
        signature: signature.to_owned(),
        timestamp,
        nonce: nonce.to_owned(),
    })
}

/// What identifies a legacy request for replay protection: the MAC it carries (hex of the
/// decoded `Signature`), `None` for TC3 credentials or a signature that is not base64.
///
/// The MAC covers every signed parameter (`Timestamp` and `Nonce` included), so a replay —
/// the same request again — carries the same MAC, whatever its Host's case or its
/// signature's URL encoding, while two different requests never share one. Keying on the
/// `Nonce` alone refused honest clients: tencentcloud-sdk-nodejs draws it from 65,536 values
/// (`Math.round(Math.random() * 65535)`), so a few hundred requests within 5 minutes
/// repeat one (docs/hostile-input.md).
pub fn legacy_replay_key(auth: &TencentAuth) -> Option<String> {
    let TencentAuth::Legacy { signature, .. } = auth else {
        return None;
    };
    BASE64
        .decode(signature.replace(' ', "+"))
        .ok()
        .map(hex::encode)
}

/// Verifies a legacy signature over `params` (decoded, `Signature` may be
/// included and is skipped). `host` is the Host header as received; like TC3 it
/// is tried verbatim first, then lower-cased. Comparison is constant-time.
/// The SecretId lookup and [`super::check_timestamp`] are the caller's job.
pub fn verify_legacy(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    auth: &TencentAuth,
    secret_key: &str,
) -> Result<(), AuthError> {
    let TencentAuth::Legacy {
        method: signature_method,
        signature,
        ..
    } = auth
    else {
        return Err(AuthError::InvalidAuthorization(
            "expected legacy (HmacSHA1/HmacSHA256) credentials".to_owned(),
        ));
    };
    // A client that forgets to URL-encode the signature has its `+` decoded to a
    // space by the form parser; base64 never contains spaces, so undo that.
    let provided = BASE64
        .decode(signature.replace(' ', "+"))
        .map_err(|_| AuthError::SignatureFailure)?;

    let lower = host.to_ascii_lowercase();
    let hosts: &[&str] = if lower == host {
        &[host]
    } else {
        &[host, &lower]
    };
    for h in hosts {
        let sts = string_to_sign(method, h, path, params);
        if mac_matches(
            signature_method.hash(),
            secret_key.as_bytes(),
            &sts,
            &provided,
        ) {
            return Ok(());
        }
    }
    Err(AuthError::SignatureFailure)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const HOST: &str = "127.0.0.1:18080";
    const V3_SIG: &str = "96Ai56cS0g6JZZ9VJWbwqmVG2D9LaiQFpWpof24OiA8=";
    const V4_SIG: &str = "+lgkD7TwqhbfPE3/USwS7KFjmUg=";

    /// The V3/V4 request params, in SDK (unsorted) order.
    fn vector_params(method: LegacyMethod) -> Vec<(String, String)> {
        [
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Filters.0.Name", "zone"),
            ("Filters.0.Values.0", "ap-guangzhou-3"),
            ("Filters.0.Values.1", "ap-guangzhou-4"),
            ("Offset", "0"),
            ("Limit", "20"),
            ("Action", "DescribeInstances"),
            ("Version", "2017-03-12"),
            ("Region", "ap-guangzhou"),
            ("Timestamp", "1551113065"),
            ("Nonce", "11886"),
            ("SecretId", SECRET_ID),
            ("SignatureMethod", method.as_str()),
            ("Language", "en-US"),
            ("RequestClient", "SDK_PYTHON_3.1.178"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn with_signature(mut params: Vec<(String, String)>, sig: &str) -> Vec<(String, String)> {
        params.push(("Signature".into(), sig.into()));
        params
    }

    #[test]
    fn v3_hmac_sha256_post() {
        let params = vector_params(LegacyMethod::HmacSha256);
        assert_eq!(
            string_to_sign("POST", HOST, "/", &params),
            "POST127.0.0.1:18080/?Action=DescribeInstances&Filters.0.Name=zone&Filters.0.Values.0=ap-guangzhou-3&Filters.0.Values.1=ap-guangzhou-4&InstanceIds.0=ins-09dx96dg&Language=en-US&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&RequestClient=SDK_PYTHON_3.1.178&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&SignatureMethod=HmacSHA256&Timestamp=1551113065&Version=2017-03-12"
        );
        let sig = sign_legacy(
            "POST",
            HOST,
            "/",
            &params,
            SECRET_KEY,
            LegacyMethod::HmacSha256,
        );
        assert_eq!(sig, V3_SIG);

        let params = with_signature(params, V3_SIG);
        let auth = parse_legacy(&params).unwrap();
        assert_eq!(
            auth,
            TencentAuth::Legacy {
                secret_id: SECRET_ID.into(),
                method: LegacyMethod::HmacSha256,
                signature: V3_SIG.into(),
                timestamp: 1_551_113_065,
                nonce: "11886".into(),
            }
        );
        assert_eq!(
            verify_legacy("POST", HOST, "/", &params, &auth, SECRET_KEY),
            Ok(())
        );
        // Method and host are signed.
        assert_eq!(
            verify_legacy("GET", HOST, "/", &params, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
        assert_eq!(
            verify_legacy("POST", "127.0.0.1:8080", "/", &params, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn v4_hmac_sha1_get() {
        let params = vector_params(LegacyMethod::HmacSha1);
        let sig = sign_legacy(
            "GET",
            HOST,
            "/",
            &params,
            SECRET_KEY,
            LegacyMethod::HmacSha1,
        );
        assert_eq!(sig, V4_SIG);

        let params = with_signature(params, V4_SIG);
        let auth = parse_legacy(&params).unwrap();
        assert_eq!(
            verify_legacy("GET", HOST, "/", &params, &auth, SECRET_KEY),
            Ok(())
        );
        // Path defaults to `/` when the caller passes an empty one.
        assert_eq!(
            verify_legacy("GET", HOST, "", &params, &auth, SECRET_KEY),
            Ok(())
        );

        // A changed value fails.
        let mut tampered = params.clone();
        tampered[5].1 = "100".into(); // Limit
        assert_eq!(
            verify_legacy("GET", HOST, "/", &tampered, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
    }

    #[test]
    fn tolerates_unencoded_plus_and_host_case() {
        // `+lgk…` arrives as ` lgk…` if the client did not URL-encode it.
        let params = with_signature(
            vector_params(LegacyMethod::HmacSha1),
            &V4_SIG.replace('+', " "),
        );
        let auth = parse_legacy(&params).unwrap();
        assert_eq!(
            verify_legacy("GET", HOST, "/", &params, &auth, SECRET_KEY),
            Ok(())
        );

        let params = vector_params(LegacyMethod::HmacSha1);
        let sig = sign_legacy(
            "GET",
            "cvm.tencentcloudapi.com",
            "/",
            &params,
            SECRET_KEY,
            LegacyMethod::HmacSha1,
        );
        let params = with_signature(params, &sig);
        let auth = parse_legacy(&params).unwrap();
        assert_eq!(
            verify_legacy(
                "GET",
                "CVM.TencentCloudAPI.com",
                "/",
                &params,
                &auth,
                SECRET_KEY
            ),
            Ok(())
        );
    }

    #[test]
    fn parse_errors_and_defaults() {
        let base = with_signature(vector_params(LegacyMethod::HmacSha1), V4_SIG);
        let without = |name: &str| -> Vec<(String, String)> {
            base.iter().filter(|(k, _)| k != name).cloned().collect()
        };
        let replaced = |name: &str, value: &str| -> Vec<(String, String)> {
            base.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if k == name {
                            value.to_owned()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect()
        };

        assert_eq!(parse_legacy(&[]), Err(AuthError::MissingAuth));
        let no_auth: Vec<_> = without("Signature")
            .into_iter()
            .filter(|(k, _)| k != "SecretId")
            .collect();
        assert_eq!(parse_legacy(&no_auth), Err(AuthError::MissingAuth));
        assert_eq!(
            parse_legacy(&without("Signature")),
            Err(AuthError::MissingParameter("Signature"))
        );
        assert_eq!(
            parse_legacy(&without("SecretId")),
            Err(AuthError::MissingParameter("SecretId"))
        );
        assert_eq!(
            parse_legacy(&without("Timestamp")),
            Err(AuthError::MissingParameter("Timestamp"))
        );
        assert_eq!(
            parse_legacy(&without("Nonce")),
            Err(AuthError::MissingParameter("Nonce"))
        );
        assert_eq!(
            parse_legacy(&replaced("Timestamp", "yesterday")),
            Err(AuthError::InvalidParameterValue("Timestamp"))
        );
        for bad in ["", "1 2", &"9".repeat(65)] {
            assert_eq!(
                parse_legacy(&replaced("Nonce", bad)),
                Err(AuthError::InvalidParameterValue("Nonce")),
                "{bad:?}"
            );
        }
        assert!(parse_legacy(&replaced("Nonce", &"9".repeat(64))).is_ok());
        assert_eq!(
            parse_legacy(&replaced("SignatureMethod", "HmacMD5")),
            Err(AuthError::InvalidParameterValue("SignatureMethod"))
        );
        assert_eq!(
            parse_legacy(&replaced("SecretId", "AKID/../x")),
            Err(AuthError::InvalidSecretId)
        );

        let auth = parse_legacy(&without("SignatureMethod")).unwrap();
        assert!(matches!(
            auth,
            TencentAuth::Legacy {
                method: LegacyMethod::HmacSha1,
                ..
            }
        ));

        // Garbage signature and wrong credential kind.
        let auth = parse_legacy(&replaced("Signature", "%%%")).unwrap();
        assert_eq!(
            verify_legacy("GET", HOST, "/", &base, &auth, SECRET_KEY),
            Err(AuthError::SignatureFailure)
        );
        let tc3 = TencentAuth::Tc3 {
            secret_id: SECRET_ID.into(),
            date: String::new(),
            service: String::new(),
            signed_headers: vec![],
            signature: String::new(),
            timestamp: 0,
        };
        assert!(matches!(
            verify_legacy("GET", HOST, "/", &base, &tc3, SECRET_KEY),
            Err(AuthError::InvalidAuthorization(_))
        ));
    }

    #[test]
    fn replay_key_is_the_mac() {
        let auth = |signature: &str| TencentAuth::Legacy {
            secret_id: "AKID1".into(),
            method: LegacyMethod::HmacSha256,
            signature: signature.into(),
            timestamp: 1,
            nonce: "7".into(),
        };
        let sig = BASE64.encode([0xfb_u8; 32]); // contains '+' and '/'
        assert!(sig.contains('+'));
        let key = legacy_replay_key(&auth(&sig)).unwrap();
        assert_eq!(key, "fb".repeat(32));
        // An unencoded '+' that the form parser turned into a space is the same request.
        assert_eq!(legacy_replay_key(&auth(&sig.replace('+', " "))), Some(key));
        assert_ne!(
            legacy_replay_key(&auth(&BASE64.encode([0xfa_u8; 32]))),
            legacy_replay_key(&auth(&sig))
        );
        assert_eq!(legacy_replay_key(&auth("not base64!")), None);
        let tc3 = TencentAuth::Tc3 {
            secret_id: "AKID1".into(),
            date: "2019-02-25".into(),
            service: "cvm".into(),
            signed_headers: vec!["host".into()],
            signature: "00".into(),
            timestamp: 1,
        };
        assert_eq!(legacy_replay_key(&tc3), None);
    }
}
