//! A disabled or deleted access key is refused with `AuthFailure.SecretIdNotFound`; a key
//! created through the admin API works at once.

use nubis_api_tencent::TencentApi;
use nubis_testkit::now;
use nubis_testkit::tencent::{self, code_or_ok};

async fn code(api: &TencentApi, id: &str, secret: &str) -> String {
    code_or_ok(&tencent::tc3(api, "DescribeZones", "{}", id, secret, now()).await)
}

#[tokio::test]
async fn disabled_and_deleted_keys_are_refused() {
    let (engine, _dir) = nubis_testkit::engine_with(Some(("AKIDboot", "bootsecret")), None).await;
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
