//! A disabled access key is refused with `InvalidAccessKeyId.Inactive` (400), a deleted one
//! with `InvalidAccessKeyId.NotFound` (404); a key created through the admin API works at once.

use nubis_api_aliyun::AliyunApi;
use nubis_testkit::{KeyAnswers, aliyun, key_lifecycle, now};

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
    let boot = ("bootid", "bootsecret");
    let (engine, _dir) = nubis_testkit::engine_with(Some(boot), None).await;
    let api = AliyunApi::new(engine.clone(), false);
    let answer = |status: u16, code: &str| (status, code.to_string());
    key_lifecycle(
        &engine,
        boot,
        async |id: &str, secret: &str| call(&api, id, secret).await,
        KeyAnswers {
            ok: answer(200, "OK"),
            disabled: answer(400, "InvalidAccessKeyId.Inactive"),
            deleted: answer(404, "InvalidAccessKeyId.NotFound"),
        },
    )
    .await;
}
