//! Hostile input through the whole handler (issue 10): attacker-sized shapes and nonces are
//! answered with Alibaba's error before authentication; nonces are spent only by admitted
//! requests. Handlers run on a 256 KiB-stack thread so a regression to recursion fails.

use nubis_api_aliyun::{AliyunApi, Reply};
use nubis_testkit::aliyun::{self, In};
use nubis_testkit::{KEY_ID, SECRET, now};
use serde_json::Value;

fn pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn status_code(reply: &Reply) -> (u16, String) {
    let v: Value = serde_json::from_slice(&reply.body).expect("a JSON error body");
    for field in ["RequestId", "HostId", "Code", "Message", "Recommend"] {
        assert!(v[field].is_string(), "{field} in {v}");
    }
    (reply.status, v["Code"].as_str().unwrap().to_string())
}

/// Runs each query through one handler on a fresh 256 KiB-stack thread.
fn run_small_stack(queries: Vec<String>) -> Vec<Reply> {
    let rt = nubis_testkit::small_stack_runtime();
    let (api, _engine, _dir) = rt.block_on(aliyun::api(false));
    nubis_testkit::on_small_stacks(&rt, queries, |q| {
        let api = &api;
        async move { aliyun::send(api, "GET", In::Query, &pairs(&q)).await }
    })
}

const COMMON: &str = "Action=DescribeZones&Version=2014-05-26&AccessKeyId=x&Signature=x&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n&Timestamp=2024-01-01T12:00:00Z";

#[test]
fn oversized_shapes_get_invalid_parameter_before_authentication() {
    let queries = vec![
        // The 40 KB GET of issue 10, in Alibaba's dialect.
        format!("{COMMON}&a{}=1", ".b".repeat(20_000)),
        // 100,000 parameters.
        format!(
            "{COMMON}{}",
            (0..100_000).map(|i| format!("&p{i}=1")).collect::<String>()
        ),
        // A 1 MB value.
        format!("{COMMON}&UserData={}", "A".repeat(1 << 20)),
        // A 10,000-byte name.
        format!("{COMMON}&{}=1", "N".repeat(10_000)),
        // Regression (issue 10): a 1 MB SignatureNonce used to be accepted and stored.
        COMMON.replace(
            "SignatureNonce=n",
            &format!("SignatureNonce={}", "n".repeat(1 << 20)),
        ),
        // A nonce just past the limit, and one with a control character.
        COMMON.replace(
            "SignatureNonce=n",
            &format!("SignatureNonce={}", "n".repeat(129)),
        ),
        COMMON.replace("SignatureNonce=n", "SignatureNonce=a%01b"),
    ];
    for (i, reply) in run_small_stack(queries).iter().enumerate() {
        assert_eq!(
            status_code(reply),
            (400, "InvalidParameter".to_string()),
            "case {i}"
        );
    }
}

#[test]
fn legitimate_shapes_reach_authentication() {
    let replies = run_small_stack(vec![
        format!("{COMMON}&Tag.1.Key=k&DataDisk.1.Category=cloud"),
        COMMON.replace(
            "SignatureNonce=n",
            &format!("SignatureNonce={}", "n".repeat(128)),
        ),
    ]);
    for r in &replies {
        assert_eq!(
            status_code(r),
            (404, "InvalidAccessKeyId.NotFound".to_string())
        );
    }
}

async fn signed(api: &AliyunApi, action: &str, ts: i64, nonce: &str) -> (u16, String) {
    let extra = [("RegionId", "cn-hangzhou".to_string())];
    let reply = aliyun::v1(api, "GET", action, (KEY_ID, SECRET), ts, nonce, &extra).await;
    aliyun::status_and_code(&reply)
}

/// Regression (issue 10): the nonce was recorded before the rate limiter, so a request
/// refused with `Throttling` had spent its nonce and its retry failed with SignatureNonceUsed.
#[tokio::test]
async fn a_throttled_request_does_not_spend_its_nonce() {
    let (api, _engine, _dir) = aliyun::api(true).await;
    let ts = now();
    let mut throttled = None;
    for n in 0..100 {
        let nonce = format!("burst-{n}");
        let (status, code) = signed(&api, "DescribeRegions", ts, &nonce).await;
        if code == "Throttling" {
            assert_eq!(status, 400);
            throttled = Some(nonce);
            break;
        }
        assert_eq!(code, "OK");
    }
    let nonce = throttled.expect("DescribeRegions hit its rate limit");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The same signed request, retried once the limiter refilled, is admitted…
    assert_eq!(signed(&api, "DescribeRegions", ts, &nonce).await.1, "OK");
    // …and only then is its nonce spent.
    assert_eq!(
        signed(&api, "DescribeRegions", ts, &nonce).await,
        (400, "SignatureNonceUsed".to_string())
    );
}

/// A replay is refused even while the key is throttled (and costs no rate budget).
#[tokio::test]
async fn a_replay_is_refused_before_the_rate_limiter() {
    let (api, _engine, _dir) = aliyun::api(true).await;
    let ts = now();
    assert_eq!(signed(&api, "DescribeRegions", ts, "once").await.1, "OK");
    for _ in 0..100 {
        assert_eq!(
            signed(&api, "DescribeRegions", ts, "once").await,
            (400, "SignatureNonceUsed".to_string())
        );
    }
    // The replays did not use up the key's budget.
    assert_eq!(signed(&api, "DescribeRegions", ts, "fresh").await.1, "OK");
}
