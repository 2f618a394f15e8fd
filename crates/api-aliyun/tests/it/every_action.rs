//! Every action × the checks that come before any work: signature, replayed nonce, stale
//! timestamp, rate limit. The table must name every action the dialect serves.

use nubis_api_aliyun::{ACTIONS, AliyunApi, rate_limit};
use nubis_testkit::aliyun;
use nubis_testkit::{KEY_ID, SECRET, now};
use serde_json::Value;

async fn call(api: &AliyunApi, action: &str, secret: &str, ts: i64, nonce: &str) -> (u16, Value) {
    let extra = [
        ("RegionId", "cn-hangzhou".to_string()),
        ("InstanceId", "i-aaaaaaaaaaaaaaaaaaaa".to_string()),
    ];
    let reply = aliyun::v1(api, "POST", action, (KEY_ID, secret), ts, nonce, &extra).await;
    (reply.status, aliyun::json(&reply))
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
    let (api, _engine, _dir) = aliyun::api(false).await;
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
    let (api, _engine, _dir) = aliyun::api(true).await;
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
    let (api, _engine, _dir) = aliyun::api(false).await;
    let (status, v) = call(&api, "NoSuchAction", SECRET, now(), "x1").await;
    assert_eq!((status, code(&v)), (404, "InvalidAction.NotFound"));
}
