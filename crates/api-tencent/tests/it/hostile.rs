//! Hostile input through the whole handler (issue 10): attacker-sized shapes are answered with
//! the dialect's error before authentication, without deep recursion. The handler runs on a
//! thread with a 256 KiB stack so that any regression to recursion over attacker input fails
//! reliably (the 40 KB GET below used to overflow even an 8 MiB stack).

use nubis_api_tencent::{Reply, TencentApi};
use nubis_testkit::tencent::{self, HOST, code_or_ok};
use nubis_testkit::{KEY_ID, SECRET, now};
use serde_json::Value;

struct Req {
    method: &'static str,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Runs every request through one handler, each on a fresh 256 KiB-stack thread.
fn run_small_stack(reqs: Vec<Req>) -> Vec<Reply> {
    let rt = nubis_testkit::small_stack_runtime();
    let (api, _engine, _dir) = rt.block_on(tencent::api(false));
    nubis_testkit::on_small_stacks(&rt, reqs, |r| {
        let api = &api;
        async move { tencent::send(api, None, r.method, &r.query, &r.headers, &r.body, 1).await }
    })
}

fn error_code(reply: &Reply) -> String {
    let v: Value = serde_json::from_slice(&reply.body).expect("a JSON envelope");
    assert!(v["Response"]["RequestId"].is_string(), "{v}");
    v["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or_else(|| panic!("an error envelope: {v}"))
        .to_string()
}

fn get(query: String) -> Req {
    Req {
        method: "GET",
        query,
        headers: vec![("host".into(), HOST.into())],
        body: Vec::new(),
    }
}

fn post(content_type: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Req {
    let mut h: Vec<(String, String)> = vec![
        ("host".into(), HOST.into()),
        ("content-type".into(), content_type.into()),
    ];
    h.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Req {
        method: "POST",
        query: String::new(),
        headers: h,
        body,
    }
}

const LEGACY: &str =
    "Action=DescribeZones&Version=2017-03-12&SecretId=x&Signature=x&Timestamp=1&Nonce=1";

/// Regression (issue 10): this exact unauthenticated 40 KB GET killed the process (stack
/// overflow in `unflatten`/`has_hole` and in dropping the JSON it built). It is now refused by
/// the documented 32 KB GET limit; a 30 KB one (15,000 parts) reaches the name checks.
#[test]
fn the_40kb_deep_get_is_refused_before_authentication() {
    let deep = format!("{LEGACY}&a{}=1", ".b".repeat(20_000));
    assert!(deep.len() > 40_000);
    let under_32k = format!("{LEGACY}&a{}=1", ".b".repeat(15_000));
    assert!(under_32k.len() < 32 * 1024);
    let replies = run_small_stack(vec![get(deep), get(under_32k)]);
    assert_eq!(error_code(&replies[0]), "RequestSizeLimitExceeded");
    assert_eq!(error_code(&replies[1]), "UnknownParameter");
}

#[test]
fn every_oversized_shape_gets_a_tencent_error() {
    let many = (0..100_000).map(|i| format!("&p{i}=1")).collect::<String>();
    let tc3 = [
        (
            "authorization",
            "TC3-HMAC-SHA256 Credential=AKIDtest/1970-01-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00",
        ),
        ("x-tc-action", "DescribeZones"),
        ("x-tc-version", "2017-03-12"),
        ("x-tc-timestamp", "1"),
    ];
    let form = "application/x-www-form-urlencoded";
    let cases: Vec<(Req, &str)> = vec![
        // 100,000 parameters (a 900 KB legacy POST, under its 1 MB limit).
        (
            post(form, &[], format!("{LEGACY}{many}").into_bytes()),
            "InvalidParameter",
        ),
        // Over the documented sizes: a 33 KB GET, a 1 MB + 1 legacy POST.
        (
            get(format!("{LEGACY}&UserData={}", "A".repeat(33 * 1024))),
            "RequestSizeLimitExceeded",
        ),
        (
            post(
                form,
                &[],
                format!("{LEGACY}&UserData={}", "A".repeat(1 << 20)).into_bytes(),
            ),
            "RequestSizeLimitExceeded",
        ),
        // A 1 MB value in a TC3 form POST (TC3 may send 10 MB).
        (
            post(
                form,
                &tc3,
                format!("UserData={}", "A".repeat(1 << 20)).into_bytes(),
            ),
            "InvalidParameterValue",
        ),
        // A 10,000-byte name.
        (
            get(format!("{LEGACY}&{}=1", "N".repeat(10_000))),
            "UnknownParameter",
        ),
        // The 20,000-part name in a legacy form POST (40 KB, under 1 MB).
        (
            post(
                form,
                &[],
                format!("{LEGACY}&a{}=1", ".b".repeat(20_000)).into_bytes(),
            ),
            "UnknownParameter",
        ),
        // Deep JSON (TC3 POST): 100,000 nested arrays, far past serde_json's own limit of 128.
        (
            post(
                "application/json",
                &tc3,
                format!("{{\"a\":{}}}", "[".repeat(100_000)).into_bytes(),
            ),
            "InvalidParameter",
        ),
        // Just past our own depth limit (17 levels).
        (
            post(
                "application/json",
                &tc3,
                format!("{{\"a\":{}1{}}}", "[".repeat(16), "]".repeat(16)).into_bytes(),
            ),
            "InvalidParameter",
        ),
        // Index amplification: every pair asks for a 1001-entry list.
        (
            post(
                form,
                &[],
                format!(
                    "{LEGACY}{}",
                    (0..990)
                        .map(|i| format!("&A.{i}.B.1000=x"))
                        .collect::<String>()
                )
                .into_bytes(),
            ),
            "InvalidParameter",
        ),
    ];
    let (reqs, want): (Vec<Req>, Vec<&str>) = cases.into_iter().unzip();
    let replies = run_small_stack(reqs);
    for (i, (reply, want)) in replies.iter().zip(want).enumerate() {
        assert_eq!(error_code(reply), want, "case {i}");
    }
}

/// Within the limits, a request still reaches authentication (shape checks do not refuse
/// legitimate nesting), and an unknown key is not told apart from a deep name.
#[test]
fn legitimate_shapes_reach_authentication() {
    let ok = format!(
        "{LEGACY}&Filters.0.Name=zone&Filters.0.Values.0=a&TagSpecification.0.Tags.0.Key=k"
    );
    let deep_but_allowed = format!("{LEGACY}&a.b.c.d.e.f.g.h=1");
    let replies = run_small_stack(vec![get(ok), get(deep_but_allowed)]);
    for r in &replies {
        // SecretId `x` does not exist.
        assert_eq!(error_code(r), "AuthFailure.SecretIdNotFound");
    }
}

/// A legacy (HmacSHA256) signed GET of DescribeRegions with this nonce and timestamp.
async fn legacy(api: &TencentApi, nonce: &str, ts: i64) -> String {
    let params = [
        ("Action", "DescribeRegions".to_string()),
        ("Version", "2017-03-12".into()),
        ("Nonce", nonce.into()),
        ("SecretId", KEY_ID.into()),
        ("SignatureMethod", "HmacSHA256".into()),
        ("Timestamp", ts.to_string()),
    ];
    code_or_ok(&tencent::legacy_get(api, &params, SECRET).await)
}

/// A captured legacy request cannot be replayed within its 5-minute window (the Nonce is
/// documented as the anti-replay value); a throttled request does not spend its nonce.
#[tokio::test]
async fn legacy_nonces_are_spent_once_by_admitted_requests() {
    let (api, _engine, _dir) = tencent::api(true).await;
    let ts = now();
    assert_eq!(legacy(&api, "11886", ts).await, "OK");
    assert_eq!(
        legacy(&api, "11886", ts).await,
        "AuthFailure.SignatureFailure"
    );
    // Burst until DescribeRegions (20/s) is throttled.
    let mut throttled = None;
    for n in 0..100 {
        let nonce = format!("{}", 1000 + n);
        match legacy(&api, &nonce, ts).await.as_str() {
            "OK" => {}
            "RequestLimitExceeded" => {
                throttled = Some(nonce);
                break;
            }
            other => panic!("{other}"),
        }
    }
    let nonce = throttled.expect("DescribeRegions hit its rate limit");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(legacy(&api, &nonce, ts).await, "OK");
    assert_eq!(
        legacy(&api, &nonce, ts).await,
        "AuthFailure.SignatureFailure"
    );
}

/// tencentcloud-sdk-nodejs draws the legacy Nonce from 65,536 values
/// (`Math.round(Math.random() * 65535)`), so honest requests repeat one within minutes: only
/// the same request again (the same MAC: same parameters, Timestamp and Nonce) is a replay.
#[tokio::test]
async fn legacy_nonce_reused_by_another_request_is_not_a_replay() {
    let (api, _engine, _dir) = tencent::api(true).await;
    let ts = now();
    assert_eq!(legacy(&api, "4242", ts).await, "OK");
    assert_eq!(legacy(&api, "4242", ts - 1).await, "OK");
    assert_eq!(legacy(&api, "4242", ts - 2).await, "OK");
    // Each of them replayed: refused.
    for t in [ts, ts - 1, ts - 2] {
        assert_eq!(
            legacy(&api, "4242", t).await,
            "AuthFailure.SignatureFailure"
        );
    }
}
