//! Every action × the checks that come before any work: authentication, unknown parameters,
//! rate limits. The table must name every action the dialect serves.

use nubis_api_tencent::{TencentApi, rate_limit};
use nubis_testkit::tencent::{self, code};
use nubis_testkit::{KEY_ID, SECRET, now};
use serde_json::Value;

/// Each action with a minimal well-formed body (IDs need not exist: the checks below come first).
const TABLE: &[(&str, &str)] = &[
    ("DescribeRegions", "{}"),
    ("DescribeZones", "{}"),
    ("DescribeImages", "{}"),
    ("DescribeInstanceTypeConfigs", "{}"),
    ("DescribeZoneInstanceConfigInfos", "{}"),
    ("DescribeAccountQuota", "{}"),
    (
        "RunInstances",
        r#"{"Placement":{"Zone":"ap-guangzhou-3"},"ImageId":"img-tos31x64"}"#,
    ),
    ("DescribeInstances", "{}"),
    (
        "DescribeInstancesOperationLimit",
        r#"{"InstanceIds":["ins-aaaaaaaa"],"Operation":"INSTANCE_DEGRADE"}"#,
    ),
    ("DescribeInstancesStatus", "{}"),
    ("StartInstances", r#"{"InstanceIds":["ins-aaaaaaaa"]}"#),
    ("StopInstances", r#"{"InstanceIds":["ins-aaaaaaaa"]}"#),
    ("RebootInstances", r#"{"InstanceIds":["ins-aaaaaaaa"]}"#),
    ("TerminateInstances", r#"{"InstanceIds":["ins-aaaaaaaa"]}"#),
    (
        "ResetInstancesPassword",
        r#"{"InstanceIds":["ins-aaaaaaaa"],"Password":"Nubis@2026pw"}"#,
    ),
    (
        "EnterRescueMode",
        r#"{"InstanceId":"ins-aaaaaaaa","Password":"Nubis@2026pw"}"#,
    ),
    (
        "ResetInstancesType",
        r#"{"InstanceIds":["ins-aaaaaaaa"],"InstanceType":"S5.SMALL2"}"#,
    ),
    ("ExitRescueMode", r#"{"InstanceId":"ins-aaaaaaaa"}"#),
    ("ResetInstance", r#"{"InstanceId":"ins-aaaaaaaa"}"#),
    ("CreateKeyPair", r#"{"KeyName":"k","ProjectId":0}"#),
    (
        "ImportKeyPair",
        r#"{"KeyName":"k","ProjectId":0,"PublicKey":"x"}"#,
    ),
    ("DescribeKeyPairs", "{}"),
    ("DeleteKeyPairs", r#"{"KeyIds":["skey-aaaaaaaa"]}"#),
    (
        "AssociateInstancesKeyPairs",
        r#"{"InstanceIds":["ins-aaaaaaaa"],"KeyIds":["skey-aaaaaaaa"]}"#,
    ),
    (
        "DisassociateInstancesKeyPairs",
        r#"{"InstanceIds":["ins-aaaaaaaa"],"KeyIds":["skey-aaaaaaaa"]}"#,
    ),
    (
        "CreateDisasterRecoverGroup",
        r#"{"Name":"g","Type":"HOST"}"#,
    ),
    ("DescribeDisasterRecoverGroups", "{}"),
    (
        "DeleteDisasterRecoverGroups",
        r#"{"DisasterRecoverGroupIds":["ps-aaaaaaaa"]}"#,
    ),
    (
        "ModifyDisasterRecoverGroupAttribute",
        r#"{"DisasterRecoverGroupId":"ps-aaaaaaaa","Name":"g"}"#,
    ),
    ("DescribeDisasterRecoverGroupQuota", "{}"),
    (
        "CreateImage",
        r#"{"InstanceId":"ins-aaaaaaaa","ImageName":"i"}"#,
    ),
    ("DeleteImages", r#"{"ImageIds":["img-aaaaaaaa"]}"#),
    (
        "ModifyImageAttribute",
        r#"{"ImageId":"img-aaaaaaaa","ImageName":"i"}"#,
    ),
];

async fn call(api: &TencentApi, action: &str, body: &str, secret: &str, ts: i64) -> Value {
    tencent::tc3(api, action, body, KEY_ID, secret, ts).await
}

#[tokio::test]
async fn table_covers_every_action() {
    let mut names: Vec<&str> = TABLE.iter().map(|(a, _)| *a).collect();
    names.sort();
    let mut served: Vec<&str> = nubis_api_tencent::ACTIONS.to_vec();
    served.sort();
    assert_eq!(names, served, "add the new action to TABLE");
}

#[tokio::test]
async fn bad_signature_and_stale_timestamp_are_refused_first() {
    let (api, _engine, _dir) = tencent::api(true).await;
    for (action, body) in TABLE {
        let v = call(&api, action, body, "wrong", now()).await;
        assert_eq!(code(&v), Some("AuthFailure.SignatureFailure"), "{action}");
        let v = call(&api, action, body, SECRET, now() - 301).await;
        assert_eq!(code(&v), Some("AuthFailure.SignatureExpire"), "{action}");
        assert!(
            v["Response"]["RequestId"]
                .as_str()
                .is_some_and(|r| !r.is_empty())
        );
    }
}

#[tokio::test]
async fn unknown_parameters_are_refused() {
    let (api, _engine, _dir) = tencent::api(false).await;
    for (action, body) in TABLE {
        let mut b: Value = serde_json::from_str(body).unwrap();
        b["NoSuchParameter"] = Value::from(1);
        let v = call(&api, action, &b.to_string(), SECRET, now()).await;
        assert_eq!(code(&v), Some("UnknownParameter"), "{action}: {v}");
    }
}

#[tokio::test]
async fn rate_limit_is_counted_before_validation() {
    let (api, _engine, _dir) = tencent::api(true).await;
    for (action, _) in TABLE {
        // Even malformed requests count: the limit is checked before any work.
        let limit = rate_limit(action);
        let mut limited = false;
        for _ in 0..=limit + 5 {
            let v = call(&api, action, r#"{"Bad":1}"#, SECRET, now()).await;
            if code(&v) == Some("RequestLimitExceeded") {
                limited = true;
                break;
            }
        }
        assert!(limited, "{action} never hit its limit of {limit}/s");
    }
}

/// Random bodies built from real parameter names and arbitrary values: always a well-formed
/// envelope with a RequestId, never a panic, and mutating calls never touch a real instance
/// (the IDs the generator can make do not exist).
#[test]
fn random_bodies_get_an_envelope() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    const NAMES: &[&str] = &[
        "InstanceIds",
        "InstanceId",
        "Password",
        "KeyIds",
        "Filters",
        "Limit",
        "Offset",
        "ForceStop",
        "StopType",
        "UserName",
        "Username",
        "Placement",
        "ImageId",
        "InstanceCount",
        "DryRun",
        "KeyName",
        "ProjectId",
        "PublicKey",
        "LoginSettings",
        "StoppedMode",
        "Name",
        "Values",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[ -~]{0,40}".prop_map(Value::from),
        Just(Value::from("ins-aaaaaaaa")),
        Just(Value::from("skey-aaaaaaaa")),
    ];
    let value = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(proptest::sample::select(NAMES), inner, 0..4).prop_map(
                |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            ),
        ]
    });
    let body = proptest::collection::btree_map(proptest::sample::select(NAMES), value, 0..5);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (api, _engine, _dir) = rt.block_on(tencent::api(false));
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    runner
        .run(&(0..TABLE.len(), body), |(i, body)| {
            let body = Value::Object(body.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                .to_string();
            let v = rt.block_on(call(&api, TABLE[i].0, &body, SECRET, now()));
            prop_assert!(
                v["Response"]["RequestId"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty()),
                "{v}"
            );
            if let Some(code) = code(&v) {
                prop_assert!(!code.starts_with("Internal"), "{} {body}: {v}", TABLE[i].0);
            }
            Ok(())
        })
        .unwrap();
}
