//! DescribeInstancesOperationLimit: a subscription instance's degrade allowance, uncounted
//! operations as -1, the region optional, and the documented parameter errors.

use crate::legacy::{Client, SECRET, code};
use serde_json::{Value, json};

async fn launch(c: &Client, charge: &str) -> String {
    let v = c
        .call(
            "RunInstances",
            &[
                ("Placement.Zone", "ap-guangzhou-3"),
                ("ImageId", "img-tos31x64"),
                ("InstanceChargeType", charge),
            ],
        )
        .await;
    v["Response"]["InstanceIdSet"][0]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

fn limits(v: &Value) -> &Value {
    &v["Response"]["InstanceOperationLimitSet"]
}

#[tokio::test]
async fn allowances_by_charge_type_and_operation() {
    let c = Client::new(false, |a| a).await;
    let prepaid = launch(&c, "PREPAID").await;
    let postpaid = launch(&c, "POSTPAID_BY_HOUR").await;
    let ids = [
        ("InstanceIds.0", prepaid.as_str()),
        ("InstanceIds.1", postpaid.as_str()),
    ];
    let degrade = [&ids[..], &[("Operation", "INSTANCE_DEGRADE")]].concat();
    let v = c.call("DescribeInstancesOperationLimit", &degrade).await;
    assert_eq!(
        *limits(&v),
        json!([
            {"Operation": "INSTANCE_DEGRADE", "InstanceId": prepaid, "CurrentCount": 0, "LimitCount": 5},
            {"Operation": "INSTANCE_DEGRADE", "InstanceId": postpaid, "CurrentCount": -1, "LimitCount": -1},
        ]),
        "{v}"
    );
    assert!(v["Response"]["RequestId"].is_string());
    let bandwidth = [&ids[..], &[("Operation", "INTERNET_CHARGE_TYPE_CHANGE")]].concat();
    let v = c.call("DescribeInstancesOperationLimit", &bandwidth).await;
    for l in limits(&v).as_array().unwrap() {
        assert_eq!(
            (&l["CurrentCount"], &l["LimitCount"]),
            (&json!(-1), &json!(-1))
        );
    }
    // The region is optional (documented): the account's instance is found without one.
    let one = [
        ("InstanceIds.0", prepaid.as_str()),
        ("Operation", "INSTANCE_DEGRADE"),
    ];
    let v = c
        .call_as(SECRET, "DescribeInstancesOperationLimit", None, &one)
        .await;
    assert_eq!(limits(&v)[0]["LimitCount"], 5, "{v}");
    // A duplicated ID is answered once.
    let twice = [
        ("InstanceIds.0", prepaid.as_str()),
        ("InstanceIds.1", prepaid.as_str()),
        ("Operation", "INSTANCE_DEGRADE"),
    ];
    let v = c.call("DescribeInstancesOperationLimit", &twice).await;
    assert_eq!(limits(&v).as_array().map(Vec::len), Some(1), "{v}");
}

#[tokio::test]
async fn parameter_errors() {
    let c = Client::new(false, |a| a).await;
    let id = launch(&c, "POSTPAID_BY_HOUR").await;
    let hundred_and_one: Vec<(String, String)> = (0..101)
        .map(|n| (format!("InstanceIds.{n}"), format!("ins-{n:08}")))
        .chain([("Operation".to_string(), "INSTANCE_DEGRADE".to_string())])
        .collect();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("InstanceIds.0", &id)], "MissingParameter"),
        (vec![("Operation", "INSTANCE_DEGRADE")], "MissingParameter"),
        (
            vec![("InstanceIds.0", &id), ("Operation", "INSTANCE_UPGRADE")],
            "InvalidParameterValue",
        ),
        (
            vec![
                ("InstanceIds.0", "ins-1122"),
                ("Operation", "INSTANCE_DEGRADE"),
            ],
            "InvalidInstanceId.Malformed",
        ),
        (
            vec![
                ("InstanceIds.0", "i-abcdefgh"),
                ("Operation", "INSTANCE_DEGRADE"),
            ],
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        (
            vec![
                ("InstanceIds.0", "ins-zzzzzzzz"),
                ("Operation", "INSTANCE_DEGRADE"),
            ],
            "InvalidInstanceId.NotFound",
        ),
        (
            hundred_and_one
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            "InvalidParameterValue.LimitExceeded",
        ),
    ];
    for (params, want) in cases {
        let v = c.call("DescribeInstancesOperationLimit", &params).await;
        assert_eq!(code(&v), Some(want), "{params:?}: {v}");
    }
}
