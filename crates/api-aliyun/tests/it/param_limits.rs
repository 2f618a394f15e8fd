//! Documented parameter limits through the whole pipeline (signature → action → limits →
//! engine): the exact ECS code and status, nothing created or changed, never a panic; and the
//! XML form stays well-formed whatever a stored record holds.

use nubis_api_aliyun::AliyunApi;
use nubis_engine::{AttrChange, Engine};
use nubis_testkit::aliyun::{self, In};
use nubis_testkit::{KEY_ID, SECRET, admin, now};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

const IMAGE: &str = "img-tos31x64";
const TYPE: &str = "ecs.s5.medium4";
const PASSWORD: &str = "Nubis@2026pw";

struct Api {
    api: AliyunApi,
    engine: Engine,
    _dir: nubis_testkit::TempDir,
}

async fn api() -> Api {
    let (api, engine, _dir) = aliyun::api(false).await;
    Api { api, engine, _dir }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A signed call; returns (status, body bytes).
async fn raw(api: &Api, action: &str, extra: &[(&str, String)]) -> (u16, Vec<u8>) {
    let mut all = vec![("RegionId", "cn-hangzhou".to_string())];
    all.extend_from_slice(extra);
    let nonce = format!("n-{}", NONCE.fetch_add(1, Ordering::Relaxed));
    let params = aliyun::signed_v1("POST", action, (KEY_ID, SECRET), now(), &nonce, &all);
    let reply = aliyun::send(&api.api, "POST", In::Form, &params).await;
    (reply.status, reply.body)
}

async fn call(api: &Api, action: &str, extra: &[(&str, String)]) -> (u16, Value) {
    let (status, body) = raw(api, action, extra).await;
    (status, serde_json::from_slice(&body).unwrap())
}

fn base() -> Vec<(&'static str, String)> {
    vec![
        ("ImageId", IMAGE.into()),
        ("InstanceType", TYPE.into()),
        ("Password", PASSWORD.into()),
    ]
}

async fn count(api: &Api) -> u64 {
    let (_, v) = call(api, "DescribeInstances", &[]).await;
    v["TotalCount"].as_u64().unwrap()
}

/// Every case: (extra parameters, status, code). All on RunInstances and CreateInstance.
type Case = (Vec<(&'static str, String)>, u16, &'static str);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let long = "a".repeat(10_000);
    vec![
        // The findings.
        (vec![("DataDisk.1.Size", "-1".into())], 400, "InvalidDataDiskSize.ValueNotSupported"),
        (vec![("DataDisk.1.Size", "1000000000000".into())], 400, "InvalidDataDiskSize.ValueNotSupported"),
        (vec![("InstanceName", long.clone())], 400, "InvalidInstanceName.Malformed"),
        (vec![("HostName", long.clone())], 400, "InvalidHostName.Malformed"),
        (vec![("ClientToken", long.clone())], 400, "InvalidClientToken.ValueNotSupported"),
        (vec![("InstanceName", "web\u{1b}[31m\u{0}".into())], 400, "InvalidInstanceName.Malformed"),
        // Boundaries.
        (vec![("InstanceName", "a".into())], 400, "InvalidInstanceName.Malformed"),
        (vec![("InstanceName", "a".repeat(129))], 400, "InvalidInstanceName.Malformed"),
        (vec![("InstanceName", "1web".into())], 400, "InvalidInstanceName.Malformed"),
        (vec![("HostName", "a".repeat(65))], 400, "InvalidHostName.Malformed"),
        (vec![("HostName", "web..1".into())], 400, "InvalidHostName.Malformed"),
        (vec![("ClientToken", "t".repeat(65))], 400, "InvalidClientToken.ValueNotSupported"),
        (vec![("ClientToken", "tök".into())], 400, "InvalidClientToken.ValueNotSupported"),
        (vec![("Description", "http://evil".into())], 400, "InvalidDescription.Malformed"),
        (vec![("Description", "d".repeat(257))], 400, "InvalidDescription.Malformed"),
        (vec![("DataDisk.17.Size", "40".into())], 400, "InstanceDiskNumber.LimitExceed"),
        (vec![("DataDisk.1.Category", "cloud".into()), ("DataDisk.1.Size", "4".into())], 400, "InvalidDataDiskSize.ValueNotSupported"),
        (vec![("DataDisk.1.Category", "cloud".into()), ("DataDisk.1.Size", "2001".into())], 400, "InvalidDataDiskSize.ValueNotSupported"),
        (vec![("DataDisk.1.Size", "65537".into())], 400, "InvalidDataDiskSize.ValueNotSupported"),
        (vec![("DataDisk.1.Category", "floppy".into())], 400, "InvalidDataDiskCategory.ValueNotSupported"),
        (vec![("SystemDisk.Size", "19".into())], 404, "InvalidSystemDiskSize.LessThanMinSize"),
        (vec![("SystemDisk.Size", "2049".into())], 404, "InvalidSystemDiskSize.MoreThanMaxSize"),
        (vec![("SystemDisk.Category", "cloud".into()), ("SystemDisk.Size", "501".into())], 404, "InvalidSystemDiskSize.MoreThanMaxSize"),
        (vec![("SystemDisk.Size", "-5".into())], 404, "InvalidSystemDiskSize.LessThanMinSize"),
        (vec![("SystemDisk.Category", "tape".into())], 400, "InvalidSystemDiskCategory.ValueNotSupported"),
        (vec![("Tag.21.Key", "k".into())], 400, "InvalidTagCount"),
        (vec![("Tag.1.Key", "acs:x".into())], 400, "InvalidTagKey.Malformed"),
        (vec![("Tag.1.Key", "k".into()), ("Tag.1.Value", "v".repeat(129))], 400, "InvalidTagValue.Malformed"),
        (vec![("UserData", "not base64".into())], 400, "InvalidUserData.Base64FormatInvalid"),
        (vec![("UserData", "A".repeat(43_696))], 400, "InvalidUserData.SizeExceeded"),
        (vec![("InternetMaxBandwidthOut", "101".into())], 400, "InvalidInternetMaxBandwidthOut.Malformed"),
    ]
}

#[tokio::test]
async fn documented_limits_answer_their_codes_and_create_nothing() {
    let api = api().await;
    for action in ["RunInstances", "CreateInstance"] {
        for (extra, status, code) in cases() {
            let mut params = base();
            params.extend(extra.iter().cloned());
            let (got_status, v) = call(&api, action, &params).await;
            let shown: Vec<String> = extra
                .iter()
                .map(|(k, v)| format!("{k}={}", v.chars().take(20).collect::<String>()))
                .collect();
            assert_eq!(
                (got_status, v["Code"].as_str().unwrap_or("")),
                (status, code),
                "{action} {shown:?}: {v}"
            );
            assert!(v["RequestId"].is_string() && v["Recommend"].is_string());
        }
    }
    assert_eq!(
        count(&api).await,
        0,
        "a refused request created an instance"
    );
}

/// 5,000 data disks pass the pre-authentication bound on parameters (1,000, `InvalidParameter`)
/// first; 900 stay under it and meet the documented disk count.
#[tokio::test]
async fn five_thousand_data_disks_are_refused() {
    let api = api().await;
    for (disks, code) in [
        (5000, "InvalidParameter"),
        (900, "InstanceDiskNumber.LimitExceed"),
    ] {
        let mut params = base();
        let sizes: Vec<(String, String)> = (1..=disks)
            .map(|n| (format!("DataDisk.{n}.Size"), "40".to_string()))
            .collect();
        params.extend(sizes.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let (status, v) = call(&api, "RunInstances", &params).await;
        assert_eq!(
            (status, v["Code"].as_str().unwrap_or("")),
            (400, code),
            "{disks} disks: {v}"
        );
    }
    assert_eq!(count(&api).await, 0);
}

#[tokio::test]
async fn the_limits_themselves_are_accepted() {
    let api = api().await;
    let mut params = base();
    params.extend([
        ("InstanceName", format!("a{}", "b".repeat(127))),
        ("HostName", "h".repeat(64)),
        ("ClientToken", "t".repeat(64)),
        ("Description", "d".repeat(256)),
        ("SystemDisk.Size", "2048".into()),
        ("InternetMaxBandwidthOut", "100".into()),
        ("Tag.20.Key", "k".into()),
    ]);
    let disks: Vec<(String, String)> = (1..=16)
        .map(|n| {
            (
                format!("DataDisk.{n}.Size"),
                if n == 1 { "20" } else { "65536" }.to_string(),
            )
        })
        .collect();
    params.extend(disks.iter().map(|(k, v)| (k.as_str(), v.clone())));
    params.push(("DataDisk.2.Category", "cloud".into()));
    params.push(("DataDisk.2.Size", "2000".into()));
    let (status, v) = call(&api, "RunInstances", &params).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(count(&api).await, 1);
}

#[tokio::test]
async fn modify_checks_every_limit_before_changing_anything() {
    let api = api().await;
    let (status, v) = call(&api, "CreateInstance", &base()).await;
    assert_eq!(status, 200, "{v}");
    let id = v["InstanceId"].as_str().unwrap().to_string();
    for (k, val, code) in [
        (
            "InstanceName",
            "x".repeat(10_000),
            "InvalidInstanceName.Malformed",
        ),
        ("HostName", "a_b".to_string(), "InvalidHostName.Malformed"),
        (
            "Description",
            "https://x".to_string(),
            "InvalidDescription.Malformed",
        ),
    ] {
        let params = [
            ("InstanceId", id.clone()),
            (k, val),
            ("Password", "Other@2026pw".to_string()),
        ];
        let (status, v) = call(&api, "ModifyInstanceAttribute", &params).await;
        assert_eq!((status, v["Code"].as_str().unwrap()), (400, code));
    }
    let inst = api.engine.query(&admin(), |_| true, 0, 10).1.remove(0);
    assert!(
        inst.latest_op
            .is_some_and(|o| o.action == nubis_core::Action::Create)
    );
}

/// Regression (issue 10): CreateInstance with a ClientToken whose instance was deleted
/// indexed an empty list and panicked the handler.
#[tokio::test]
async fn a_token_whose_instance_was_deleted_creates_anew() {
    let api = api().await;
    let mut params = base();
    params.push(("ClientToken", "tok-1".into()));
    let (status, v) = call(&api, "CreateInstance", &params).await;
    assert_eq!(status, 200, "{v}");
    let first = v["InstanceId"].as_str().unwrap().to_string();
    let (_, again) = call(&api, "CreateInstance", &params).await;
    assert_eq!(
        again["InstanceId"],
        first.as_str(),
        "the token is idempotent"
    );
    wait(&api, |n| n == 1, &first, "Stopped").await;
    let (status, v) = call(&api, "DeleteInstance", &[("InstanceId", first.clone())]).await;
    assert_eq!(status, 200, "{v}");
    for _ in 0..3000 {
        if count(&api).await == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(count(&api).await, 0);
    let (status, v) = call(&api, "CreateInstance", &params).await;
    assert_eq!(status, 200, "{v}");
    assert_ne!(v["InstanceId"].as_str().unwrap(), first);
    let (status, v) = call(&api, "RunInstances", &params).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["InstanceIdSets"]["InstanceIdSet"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn wait(api: &Api, total: impl Fn(u64) -> bool, id: &str, status: &str) {
    for _ in 0..3000 {
        let (_, v) = call(
            api,
            "DescribeInstances",
            &[("InstanceIds", format!("[\"{id}\"]"))],
        )
        .await;
        if total(v["TotalCount"].as_u64().unwrap())
            && v["Instances"]["Instance"][0]["Status"] == status
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{id} never became {status}");
}

/// Regression (issue 10): a stored name with control characters (written by another dialect
/// or an older version) made every later Format=XML DescribeInstances unparseable.
#[tokio::test]
async fn xml_stays_well_formed_whatever_a_record_holds() {
    let api = api().await;
    let (status, v) = call(&api, "CreateInstance", &base()).await;
    assert_eq!(status, 200, "{v}");
    let uuid = api.engine.query(&admin(), |_| true, 0, 1).1[0].uuid;
    let hostile = "a\u{0}b\u{1}\u{8}\u{b}\u{c}\u{1b}\u{7f}\u{fffe}\u{ffff}<x>&\"'\r\n]]>";
    api.engine
        .modify(
            &admin(),
            uuid,
            AttrChange {
                name: Some(hostile.into()),
                description: Some(hostile.into()),
                host_name: Some(hostile.into()),
            },
        )
        .await
        .unwrap();
    let (status, body) = raw(&api, "DescribeInstances", &[("Format", "XML".into())]).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let name = doc
        .descendants()
        .find(|n| n.has_tag_name("InstanceName"))
        .and_then(|n| n.text())
        .unwrap();
    assert_eq!(
        name,
        "a\u{fffd}b\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{7f}\u{fffd}\u{fffd}<x>&\"'\r\n]]>"
    );
    // And the error form too.
    let (status, body) = raw(
        &api,
        "DescribeInstances",
        &[("Format", "XML".into()), ("PageSize", "1000".into())],
    )
    .await;
    assert_eq!(status, 400);
    roxmltree::Document::parse(std::str::from_utf8(&body).unwrap()).unwrap();
}
