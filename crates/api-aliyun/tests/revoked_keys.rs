//! A disabled access key is refused with `InvalidAccessKeyId.Inactive` (400), a deleted one
//! with `InvalidAccessKeyId.NotFound` (404); a key created through the admin API works at once.

use nubis_api_aliyun::AliyunApi;
use nubis_testkit::{aliyun, now};

async fn call(api: &AliyunApi, id: &str, secret: &str) -> (u16, String) {
    let nonce = uuid::Uuid::new_v4().to_string();
    let reply = aliyun::v1(
        api,
        "POST",
        "DescribeRegions",
        (id, secret),
        now(),
        &nonce,
        &[],
    )
    .await;
    aliyun::status_and_code(&reply)
}

#[tokio::test]
async fn disabled_and_deleted_keys_are_refused() {
    let (engine, _dir) = nubis_testkit::engine_with(Some(("bootid", "bootsecret")), None).await;
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
