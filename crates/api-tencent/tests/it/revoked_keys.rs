//! A disabled or deleted access key is refused with `AuthFailure.SecretIdNotFound`; a key
//! created through the admin API works at once.

use nubis_api_tencent::TencentApi;
use nubis_testkit::tencent::{self, code_or_ok};
use nubis_testkit::{KeyAnswers, key_lifecycle, now};

async fn code(api: &TencentApi, id: &str, secret: &str) -> String {
    code_or_ok(&tencent::tc3(api, "DescribeZones", "{}", id, secret, now()).await)
}

#[tokio::test]
async fn disabled_and_deleted_keys_are_refused() {
    let boot = ("AKIDboot", "bootsecret");
    let (engine, _dir) = nubis_testkit::engine_with(Some(boot), None).await;
    let api = TencentApi::new(engine.clone(), false);
    let refused = "AuthFailure.SecretIdNotFound".to_string();
    key_lifecycle(
        &engine,
        boot,
        async |id: &str, secret: &str| code(&api, id, secret).await,
        KeyAnswers {
            ok: "OK".to_string(),
            disabled: refused.clone(),
            deleted: refused,
        },
    )
    .await;
}
