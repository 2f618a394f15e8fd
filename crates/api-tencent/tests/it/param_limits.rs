//! Documented CVM parameter limits through the whole pipeline (TC3 signature → action →
//! limits → engine): the exact code, nothing created, never a panic.

use nubis_api_tencent::TencentApi;
use nubis_testkit::tencent::{self, api};
use serde_json::{Value, json};

async fn call(api: &TencentApi, action: &str, body: &Value) -> Value {
    tencent::call(api, action, &body.to_string()).await
}

fn base() -> Value {
    json!({
        "Placement": {"Zone": "ap-guangzhou-3"},
        "ImageId": "img-tos31x64",
        "LoginSettings": {"Password": "Nubis@2026pw"},
    })
}

fn with(extra: Value) -> Value {
    let mut b = base();
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

async fn total(api: &TencentApi) -> u64 {
    let v = call(api, "DescribeInstances", &json!({})).await;
    v["Response"]["TotalCount"].as_u64().unwrap()
}

#[tokio::test]
async fn documented_limits_answer_their_codes_and_create_nothing() {
    let (api, _engine, _dir) = api(false).await;
    let long = "a".repeat(10_000);
    let disks = |n: usize, size: i64| {
        json!(vec![
            json!({"DiskSize": size, "DiskType": "CLOUD_PREMIUM"});
            n
        ])
    };
    #[rustfmt::skip]
    let cases: Vec<(Value, &str)> = vec![
        // The findings.
        (json!({"DataDisks": [{"DiskSize": -1}]}), "InvalidParameterValue.Range"),
        (json!({"DataDisks": [{"DiskSize": 1_000_000_000_000_i64}]}), "InvalidParameterValue.Range"),
        (json!({"SystemDisk": {"DiskSize": -1}}), "InvalidParameterValue.Range"),
        (json!({"SystemDisk": {"DiskSize": 1_000_000_000_000_i64}}), "InvalidParameterValue.Range"),
        (json!({"DataDisks": disks(5000, 50)}), "InvalidParameterValue.LimitExceeded"),
        (json!({"InstanceName": long}), "InvalidInstanceName.TooLong"),
        (json!({"HostName": "a".repeat(10_000)}), "InvalidParameter.HostNameIllegal"),
        (json!({"ClientToken": "a".repeat(10_000)}), "InvalidClientToken.TooLong"),
        (json!({"InstanceName": "web\u{1b}[2J\u{0}"}), "InvalidParameterValue"),
        // Boundaries.
        (json!({"DataDisks": disks(21, 50)}), "InvalidParameterValue.LimitExceeded"),
        (json!({"DataDisks": [{"DiskSize": 9, "DiskType": "CLOUD_PREMIUM"}]}), "InvalidParameterValue.Range"),
        (json!({"DataDisks": [{"DiskSize": 19, "DiskType": "CLOUD_SSD"}]}), "InvalidParameterValue.Range"),
        (json!({"DataDisks": [{"DiskSize": 32001}]}), "InvalidParameterValue.Range"),
        (json!({"DataDisks": [{"DiskSize": 50, "DiskType": "FLOPPY"}]}), "InvalidParameterValue"),
        (json!({"DataDisks": [{"DiskSize": 50, "DiskType": "LOCAL_SSD"}]}), "InvalidParameter.LocalDataDiskNotSupport"),
        (json!({"SystemDisk": {"DiskSize": 19}}), "InvalidParameterValue.Range"),
        (json!({"SystemDisk": {"DiskSize": 1025}}), "InvalidParameterValue.Range"),
        (json!({"InstanceCount": 0}), "InvalidParameterValue.Range"),
        (json!({"InstanceCount": 501}), "InvalidParameterValue.Range"),
        (json!({"InstanceCount": 2, "MinCount": 3}), "InvalidParameterValue.InvalidParameterMinCount"),
        (json!({"UserData": "not base64!"}), "InvalidParameterValue.InvalidUserDataFormat"),
        (json!({"UserData": "A".repeat(21_852)}), "InvalidParameterValue.TooLong"),
        (json!({"InstanceName": "n".repeat(129)}), "InvalidInstanceName.TooLong"),
        (json!({"HostName": "h".repeat(61)}), "InvalidParameter.HostNameIllegal"),
        (json!({"HostName": "-web"}), "InvalidParameter.HostNameIllegal"),
        (json!({"HostName": "a_b"}), "InvalidParameter.HostNameIllegal"),
        (json!({"ClientToken": "t".repeat(65)}), "InvalidClientToken.TooLong"),
        (json!({"ClientToken": "tök"}), "InvalidParameterValue"),
        (json!({"TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "k".repeat(128), "Value": "v"}]}]}), "InvalidParameterValue"),
    ];
    for (extra, code) in cases {
        let v = call(&api, "RunInstances", &with(extra.clone())).await;
        let shown: String = extra.to_string().chars().take(80).collect();
        assert_eq!(
            v["Response"]["Error"]["Code"].as_str(),
            Some(code),
            "{shown}: {v}"
        );
        assert!(v["Response"]["RequestId"].is_string());
    }
    assert_eq!(
        total(&api).await,
        0,
        "a refused request created an instance"
    );
}

#[tokio::test]
async fn the_limits_themselves_are_accepted() {
    let (api, _engine, _dir) = api(false).await;
    let mut disks = vec![json!({"DiskSize": 10, "DiskType": "CLOUD_PREMIUM"})];
    disks.extend(vec![
        json!({"DiskSize": 32000, "DiskType": "CLOUD_SSD"});
        19
    ]);
    let v = call(
        &api,
        "RunInstances",
        &with(json!({
            "InstanceName": "n".repeat(128),
            "HostName": "h".repeat(60),
            "ClientToken": "t".repeat(64),
            "SystemDisk": {"DiskSize": 1024},
            "DataDisks": disks,
            "InstanceCount": 2,
        })),
    )
    .await;
    assert_eq!(
        v["Response"]["InstanceIdSet"].as_array().map(Vec::len),
        Some(2),
        "{v}"
    );
    assert_eq!(total(&api).await, 2);
}

/// Regression (issue 10): a ClientToken whose instance was deleted answered an empty
/// InstanceIdSet; now it launches anew.
#[tokio::test]
async fn a_token_whose_instance_was_deleted_launches_anew() {
    let (api, _engine, _dir) = api(false).await;
    let body = with(json!({"ClientToken": "tok-1"}));
    let v = call(&api, "RunInstances", &body).await;
    let first = v["Response"]["InstanceIdSet"][0]
        .as_str()
        .unwrap()
        .to_string();
    let again = call(&api, "RunInstances", &body).await;
    assert_eq!(again["Response"]["InstanceIdSet"], json!([first]));
    for _ in 0..3000 {
        let v = call(&api, "DescribeInstances", &json!({"InstanceIds": [first]})).await;
        if v["Response"]["InstanceSet"][0]["InstanceState"] == "RUNNING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let v = call(&api, "TerminateInstances", &json!({"InstanceIds": [first]})).await;
    assert!(v["Response"]["Error"].is_null(), "{v}");
    for _ in 0..3000 {
        if total(&api).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(total(&api).await, 0);
    let v = call(&api, "RunInstances", &body).await;
    let ids = v["Response"]["InstanceIdSet"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{v}");
    assert_ne!(ids[0], first.as_str());
}
