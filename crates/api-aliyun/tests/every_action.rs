//! Every action × the checks that come before any work: signature, replayed nonce, stale
//! timestamp, rate limit. The table must name every action the dialect serves.

use nubis_api_aliyun::{ACTIONS, AliyunApi, RawRequest, rate_limit};
use nubis_auth::aliyun::sign_v1;
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::Value;
use std::sync::Arc;

const ID: &str = "testid";
const SECRET: &str = "testsecret";

async fn api(rate_limits: bool) -> (AliyunApi, tempfile::TempDir) {
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
    (AliyunApi::new(engine, rate_limits), dir)
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

async fn call(api: &AliyunApi, action: &str, secret: &str, ts: i64, nonce: &str) -> (u16, Value) {
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
        ("InstanceId", "i-aaaaaaaaaaaaaaaaaaaa".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let sig = sign_v1("POST", &params, secret);
    params.push(("Signature".into(), sig));
    let reply = api
        .handle(RawRequest {
            method: "POST",
            path: "/",
            query: &params,
            form: &[],
            headers: &[],
            body: b"",
            now: now(),
        })
        .await;
    (reply.status, serde_json::from_slice(&reply.body).unwrap())
}

fn code(v: &Value) -> &str {
    v["Code"].as_str().unwrap_or("")
}

#[test]
fn actions_are_listed_once() {
    let mut a = ACTIONS.to_vec();
    a.sort();
    a.dedup();
    assert_eq!(a.len(), ACTIONS.len());
}

#[tokio::test]
async fn signature_nonce_and_timestamp_come_first() {
    let (api, _dir) = api(false).await;
    for (n, action) in ACTIONS.iter().enumerate() {
        let (status, v) = call(&api, action, "wrong", now(), &format!("bad-{n}")).await;
        assert_eq!(
            (status, code(&v)),
            (400, "SignatureDoesNotMatch"),
            "{action}"
        );
        // The legacy client splits the message on ':' to show the string to sign.
        assert!(
            v["Message"]
                .as_str()
                .unwrap()
                .split(':')
                .nth(1)
                .is_some_and(|s| s.starts_with("POST&%2F&"))
        );
        let (status, v) = call(&api, action, SECRET, now() - 901, &format!("old-{n}")).await;
        assert_eq!(
            (status, code(&v)),
            (400, "InvalidTimeStamp.Expired"),
            "{action}"
        );
        let nonce = format!("once-{n}");
        let (_, first) = call(&api, action, SECRET, now(), &nonce).await;
        assert_ne!(code(&first), "SignatureNonceUsed", "{action}");
        let (status, v) = call(&api, action, SECRET, now(), &nonce).await;
        assert_eq!((status, code(&v)), (400, "SignatureNonceUsed"), "{action}");
        assert!(v["RequestId"].as_str().is_some_and(|r| !r.is_empty()));
    }
}

#[tokio::test]
async fn rate_limit_is_counted_before_validation() {
    let (api, _dir) = api(true).await;
    for action in ACTIONS {
        let limit = rate_limit(action);
        let mut limited = false;
        for n in 0..=limit + 5 {
            let (status, v) = call(&api, action, SECRET, now(), &format!("{action}-{n}")).await;
            if code(&v) == "Throttling" {
                assert_eq!(status, 400);
                limited = true;
                break;
            }
        }
        assert!(limited, "{action} never hit its limit of {limit}/s");
    }
}

#[tokio::test]
async fn unknown_action_and_access_key() {
    let (api, _dir) = api(false).await;
    let (status, v) = call(&api, "NoSuchAction", SECRET, now(), "x1").await;
    assert_eq!((status, code(&v)), (404, "InvalidAction.NotFound"));
}
