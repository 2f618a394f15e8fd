//! Hostile input through the whole handler (issue 10): attacker-sized shapes and nonces are
//! answered with Alibaba's error before authentication; nonces are spent only by admitted
//! requests. Handlers run on a 256 KiB-stack thread so a regression to recursion fails.

use nubis_api_aliyun::{AliyunApi, RawRequest, Reply};
use nubis_auth::aliyun::sign_v1;
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::Value;
use std::sync::Arc;

const ID: &str = "testid";
const SECRET: &str = "testsecret";
const SMALL_STACK: usize = 256 * 1024;

async fn api(rate_limits: bool) -> (Arc<AliyunApi>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("n.db")).unwrap();
    let secrets = SecretBox::load_or_create(dir.path().join("k")).unwrap();
    let engine = Engine::start(Arc::new(store), Arc::new(SimDriver::new(0.0)), secrets)
        .await
        .unwrap();
    engine
        .bootstrap(Some((ID.into(), SECRET.into())), None)
        .await
        .unwrap();
    (Arc::new(AliyunApi::new(engine, rate_limits)), dir)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn stamp(ts: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ts).unwrap();
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap()
}

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (api, _dir) = rt.block_on(api(false));
    queries
        .into_iter()
        .map(|q| {
            let api = Arc::clone(&api);
            let handle = rt.handle().clone();
            std::thread::Builder::new()
                .stack_size(SMALL_STACK)
                .spawn(move || {
                    let query = pairs(&q);
                    handle.block_on(api.handle(RawRequest {
                        method: "GET",
                        path: "/",
                        query: &query,
                        form: &[],
                        headers: &[],
                        body: b"",
                        now: now(),
                    }))
                })
                .unwrap()
                .join()
                .expect("the handler must not crash")
        })
        .collect()
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
    let mut params: Vec<(String, String)> = [
        ("Action", action.to_string()),
        ("Version", "2014-05-26".into()),
        ("Format", "JSON".into()),
        ("AccessKeyId", ID.into()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("SignatureNonce", nonce.into()),
        ("Timestamp", stamp(ts)),
        ("RegionId", "cn-hangzhou".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let sig = sign_v1("GET", &params, SECRET);
    params.push(("Signature".into(), sig));
    let reply = api
        .handle(RawRequest {
            method: "GET",
            path: "/",
            query: &params,
            form: &[],
            headers: &[],
            body: b"",
            now: now(),
        })
        .await;
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    (reply.status, v["Code"].as_str().unwrap_or("OK").to_string())
}

/// Regression (issue 10): the nonce was recorded before the rate limiter, so a request
/// refused with `Throttling` had spent its nonce and its retry failed with SignatureNonceUsed.
#[tokio::test]
async fn a_throttled_request_does_not_spend_its_nonce() {
    let (api, _dir) = api(true).await;
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
    let (api, _dir) = api(true).await;
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
