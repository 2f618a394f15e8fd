//! A disabled access key is refused with `InvalidAccessKeyId.Inactive` (400), a deleted one
//! with `InvalidAccessKeyId.NotFound` (404); a key created through the admin API works at once.

use nubis_api_aliyun::{AliyunApi, RawRequest};
use nubis_auth::aliyun::sign_v1;
use nubis_auth::secret::SecretBox;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::Value;
use std::sync::Arc;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn call(api: &AliyunApi, id: &str, secret: &str) -> (u16, String) {
    let t = time::OffsetDateTime::from_unix_timestamp(now()).unwrap();
    let stamp = t
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap();
    let mut params: Vec<(String, String)> = [
        ("Action", "DescribeRegions".to_string()),
        ("Version", "2014-05-26".into()),
        ("Format", "JSON".into()),
        ("AccessKeyId", id.into()),
        ("SignatureMethod", "HMAC-SHA1".into()),
        ("SignatureVersion", "1.0".into()),
        ("SignatureNonce", uuid::Uuid::new_v4().to_string()),
        ("Timestamp", stamp),
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
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    (reply.status, v["Code"].as_str().unwrap_or("OK").to_string())
}

#[tokio::test]
async fn disabled_and_deleted_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("n.db")).unwrap();
    let secrets = SecretBox::load_or_create(dir.path().join("k")).unwrap();
    let engine = Engine::start(Arc::new(store), Arc::new(SimDriver::new(0.0)), secrets)
        .await
        .unwrap();
    engine
        .bootstrap(Some(("bootid".into(), "bootsecret".into())), None)
        .await
        .unwrap();
    let api = AliyunApi::new(engine.clone(), false);
    let (k, secret) = engine.create_access_key().await.unwrap();
    assert_eq!(call(&api, &k.id, &secret).await, (200, "OK".into()));
    engine
        .set_access_key_enabled("bootid", false)
        .await
        .unwrap();
    assert_eq!(
        call(&api, "bootid", "bootsecret").await,
        (400, "InvalidAccessKeyId.Inactive".into())
    );
    engine.delete_access_key("bootid").await.unwrap();
    assert_eq!(
        call(&api, "bootid", "bootsecret").await,
        (404, "InvalidAccessKeyId.NotFound".into())
    );
}
