//! A disabled or deleted access key is refused with `AuthFailure.SecretIdNotFound`; a key
//! created through the admin API works at once.

use nubis_api_tencent::{RawRequest, TencentApi};
use nubis_auth::secret::SecretBox;
use nubis_auth::tencent::sign_tc3;
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::SqliteStore;
use serde_json::Value;
use std::sync::Arc;

const HOST: &str = "127.0.0.1:8080";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn code(api: &TencentApi, id: &str, secret: &str) -> String {
    let ts = now();
    let body = b"{}";
    let auth = sign_tc3(
        "POST",
        HOST,
        "",
        "application/json",
        body,
        id,
        secret,
        ts,
        "cvm",
    );
    let headers: Vec<(String, String)> = [
        ("authorization", auth),
        ("content-type", "application/json".into()),
        ("host", HOST.into()),
        ("x-tc-action", "DescribeZones".into()),
        ("x-tc-version", "2017-03-12".into()),
        ("x-tc-timestamp", ts.to_string()),
        ("x-tc-region", "ap-guangzhou".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let reply = api
        .handle(RawRequest {
            method: "POST",
            host: HOST,
            path: "/",
            raw_query: "",
            headers: &headers,
            body,
            now: ts,
        })
        .await;
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    v["Response"]["Error"]["Code"]
        .as_str()
        .unwrap_or("OK")
        .to_string()
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
        .bootstrap(Some(("AKIDboot".into(), "bootsecret".into())), None)
        .await
        .unwrap();
    let api = TencentApi::new(engine.clone(), false);
    let (k, secret) = engine.create_access_key().await.unwrap();
    assert_eq!(code(&api, &k.id, &secret).await, "OK");
    assert_eq!(code(&api, "AKIDboot", "bootsecret").await, "OK");
    engine
        .set_access_key_enabled("AKIDboot", false)
        .await
        .unwrap();
    assert_eq!(
        code(&api, "AKIDboot", "bootsecret").await,
        "AuthFailure.SecretIdNotFound"
    );
    engine
        .set_access_key_enabled("AKIDboot", true)
        .await
        .unwrap();
    assert_eq!(code(&api, "AKIDboot", "bootsecret").await, "OK");
    engine.delete_access_key(&k.id).await.unwrap();
    assert_eq!(
        code(&api, &k.id, &secret).await,
        "AuthFailure.SecretIdNotFound"
    );
}
