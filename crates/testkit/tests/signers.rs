//! The kit's own requests are the real thing: each signing scheme is accepted by its dialect
//! with the bootstrap credentials, and refused when the signature does not match.

use nubis_testkit::aliyun::{self, In};
use nubis_testkit::openstack;
use nubis_testkit::tencent::{self, code, code_or_ok};
use nubis_testkit::{KEY_ID, SECRET, now};

#[tokio::test]
async fn tencent_tc3_and_legacy_are_accepted() {
    let (api, _engine, _dir) = tencent::api(false).await;
    let v = tencent::call(&api, "DescribeRegions", "{}").await;
    assert_eq!(code(&v), None, "{v}");
    let v = tencent::tc3(&api, "DescribeRegions", "{}", KEY_ID, "wrong", now()).await;
    assert_eq!(code(&v), Some("AuthFailure.SignatureFailure"));
    let params = [
        ("Action", "DescribeRegions".to_string()),
        ("Version", "2017-03-12".into()),
        ("Nonce", "1".into()),
        ("SecretId", KEY_ID.into()),
        ("SignatureMethod", "HmacSHA256".into()),
        ("Timestamp", now().to_string()),
    ];
    assert_eq!(
        code_or_ok(&tencent::legacy_get(&api, &params, SECRET).await),
        "OK"
    );
    let v = tencent::legacy_get(&api, &params, "wrong").await;
    assert_eq!(code(&v), Some("AuthFailure.SignatureFailure"));
}

#[tokio::test]
async fn aliyun_v1_in_query_and_form_and_acs3_are_accepted() {
    let (api, _engine, _dir) = aliyun::api(false).await;
    let key = (KEY_ID, SECRET);
    let r = aliyun::v1(&api, "GET", "DescribeRegions", key, now(), "q", &[]).await;
    assert_eq!(aliyun::status_and_code(&r), (200, "OK".into()));
    let params = aliyun::signed_v1("POST", "DescribeRegions", key, now(), "f", &[]);
    let r = aliyun::send(&api, "POST", In::Form, &params).await;
    assert_eq!(aliyun::status_and_code(&r), (200, "OK".into()));
    let r = aliyun::v1(
        &api,
        "GET",
        "DescribeRegions",
        (KEY_ID, "wrong"),
        now(),
        "w",
        &[],
    )
    .await;
    assert_eq!(
        aliyun::status_and_code(&r),
        (400, "SignatureDoesNotMatch".into())
    );
    let query = [("RegionId".to_string(), "cn-hangzhou".to_string())];
    let r = aliyun::acs3(&api, "DescribeRegions", &query, "a").await;
    assert_eq!(aliyun::status_and_code(&r), (200, "OK".into()));
    // The same headers over another query: the signature covers the query.
    let other = [("RegionId".to_string(), "cn-beijing".to_string())];
    let headers = aliyun::acs3_headers("DescribeRegions", &query, now(), "b");
    let r = aliyun::request(&api, "POST", &headers, &other, &[], now()).await;
    assert_eq!(
        aliyun::status_and_code(&r),
        (400, "SignatureDoesNotMatch".into())
    );
}

#[tokio::test]
async fn keystone_password_token_is_issued() {
    let (api, _engine, _dir) = openstack::api().await;
    let t = openstack::token(&api).await;
    let h = [("x-auth-token", t.as_str())];
    let r = openstack::call(&api, "GET", "/compute/v2.1/flavors", &h, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let wrong = Some(openstack::password_auth("wrong"));
    let r = openstack::call(&api, "POST", "/identity/v3/auth/tokens", &[], wrong).await;
    assert_eq!(r.status, 401);
}
