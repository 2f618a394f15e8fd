//! ActionTrail LookupEvents in process (docs/identity-wire.md §7, D12, D13): the account's
//! calls with their RequestIds and codes, one attribute, pages both ways, errors, tenancy.

use nubis_api_aliyun::AliyunApi;
use nubis_testkit::aliyun::{audited_api, json, rpc};
use nubis_testkit::{KEY_ID, SECRET, items, now, strs};
use serde_json::Value;

async fn ecs(
    api: &AliyunApi,
    key: (&str, &str),
    action: &str,
    extra: &[(&str, &str)],
) -> (String, Value) {
    let r = rpc(api, key, "2014-05-26", action, extra).await;
    (r.request_id.clone(), json(&r))
}

async fn lookup(api: &AliyunApi, key: (&str, &str), extra: &[(&str, &str)]) -> Value {
    json(&rpc(api, key, "2020-07-06", "LookupEvents", extra).await)
}

fn code(v: &Value) -> &str {
    v["Code"].as_str().unwrap_or("OK")
}

#[tokio::test]
async fn calls_are_found_paged_and_filtered() {
    let (api, _engine, _dir) = audited_api().await;
    let k = (KEY_ID, SECRET);
    let (ok, _) = ecs(&api, k, "DescribeInstances", &[("RegionId", "cn-hangzhou")]).await;
    let (bad, v) = ecs(
        &api,
        k,
        "RebootInstance",
        &[("InstanceId", "i-nothere"), ("Password", "Secret-pass1")],
    )
    .await;
    assert_eq!(code(&v), "InvalidInstanceId.NotFound", "{v}");
    let r = lookup(&api, k, &[]).await;
    assert_eq!(code(&r), "OK", "{r}");
    let events = r["Events"].as_array().unwrap();
    let find = |rid: &str| events.iter().find(|e| e["requestId"] == rid).cloned();
    let e = find(&ok).expect("DescribeInstances is in the trail");
    assert_eq!(e["eventName"], "DescribeInstances");
    assert_eq!(e["eventRW"], "Read");
    assert_eq!(e["serviceName"], "Ecs");
    assert_eq!(e["userIdentity"]["accessKeyId"], KEY_ID);
    assert_eq!(e["errorCode"], "");
    let e = find(&bad).expect("the failed reboot is in the trail");
    assert_eq!(e["errorCode"], "InvalidInstanceId.NotFound");
    assert_eq!(e["resourceName"], "i-nothere");
    assert_eq!(e["requestParameters"]["InstanceId"], "i-nothere");
    let text = r.to_string();
    for secret in ["Secret-pass1", "Password", SECRET, "Signature"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(r["StartTime"].as_str().unwrap().ends_with('Z'));

    // One attribute.
    let r = lookup(
        &api,
        k,
        &[
            ("LookupAttribute.1.Key", "EventName"),
            ("LookupAttribute.1.Value", "RebootInstance"),
        ],
    )
    .await;
    let names: Vec<&Value> = items(&r["Events"])
        .iter()
        .map(|e| &e["eventName"])
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| *n == "RebootInstance"),
        "{r}"
    );
    let r = lookup(
        &api,
        k,
        &[
            ("LookupAttribute.1.Key", "ServiceName"),
            ("LookupAttribute.1.Value", "Ecs"),
        ],
    )
    .await;
    assert!(r["Events"].as_array().unwrap().len() >= 2, "{r}");

    // Pages of one, both directions; a token is bound to its query.
    let start = nubis_testkit::aliyun::stamp(now() - 3600);
    // The window closes before the paging starts: forward pages would otherwise go on
    // finding the lookups themselves.
    let end = nubis_testkit::aliyun::stamp(now());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for direction in ["FORWARD", "BACKWARD"] {
        let mut seen: Vec<String> = Vec::new();
        let mut token = String::new();
        loop {
            let mut extra = vec![
                ("MaxResults", "1"),
                ("Direction", direction),
                ("StartTime", start.as_str()),
                ("EndTime", end.as_str()),
            ];
            if !token.is_empty() {
                extra.push(("NextToken", token.as_str()));
            }
            let r = lookup(&api, k, &extra).await;
            assert_eq!(code(&r), "OK", "{r}");
            seen.extend(r["Events"].as_array().unwrap().iter().map(|e| {
                e["eventTime"].as_str().unwrap().to_string() + e["eventId"].as_str().unwrap()
            }));
            match r["NextToken"].as_str() {
                Some(t) => {
                    let other = lookup(&api, k, &[("MaxResults", "2"), ("NextToken", t)]).await;
                    assert_eq!(code(&other), "InvalidParameter");
                    token = t.to_string();
                }
                None => break,
            }
            assert!(seen.len() < 100);
        }
        let mut sorted = seen.clone();
        sorted.sort();
        if direction == "BACKWARD" {
            sorted.reverse();
        }
        assert_eq!(seen, sorted, "{direction}");
        assert!(seen.len() >= 3);
    }
}

#[tokio::test]
async fn bad_lookups_are_refused() {
    let (api, _engine, _dir) = audited_api().await;
    let k = (KEY_ID, SECRET);
    for extra in [
        vec![("MaxResults", "51")],
        vec![("MaxResults", "ten")],
        vec![("Direction", "SIDEWAYS")],
        vec![("StartTime", "yesterday")],
        vec![
            ("StartTime", "2026-01-02T00:00:00Z"),
            ("EndTime", "2026-01-01T00:00:00Z"),
        ],
        vec![
            ("LookupAttribute.1.Key", "EventName"),
            ("LookupAttribute.1.Value", "A"),
            ("LookupAttribute.2.Key", "User"),
            ("LookupAttribute.2.Value", "B"),
        ],
        vec![
            ("LookupAttribute.1.Key", "Nope"),
            ("LookupAttribute.1.Value", "A"),
        ],
        vec![("NextToken", "garbage")],
    ] {
        let r = lookup(&api, k, &extra).await;
        assert_eq!(code(&r), "InvalidParameter", "{extra:?} → {r}");
    }
    for extra in [
        vec![("MaxResults", "0")],
        vec![("MaxResults", "50")],
        vec![
            ("LookupAttribute.1.Key", "ResourceType"),
            ("LookupAttribute.1.Value", "ACS::ECS::Instance"),
        ],
    ] {
        let r = lookup(&api, k, &extra).await;
        assert_eq!(code(&r), "OK", "{extra:?} → {r}");
    }
}

#[tokio::test]
async fn an_account_sees_only_its_own_events() {
    let (api, engine, _dir) = audited_api().await;
    let (b, b_secret) = nubis_testkit::team_b(&engine).await;
    let (mine, _) = ecs(
        &api,
        (KEY_ID, SECRET),
        "DescribeInstances",
        &[("RegionId", "cn-hangzhou")],
    )
    .await;
    let (theirs, _) = ecs(
        &api,
        (&b, &b_secret),
        "DescribeInstances",
        &[("RegionId", "cn-hangzhou")],
    )
    .await;
    let r = lookup(&api, (&b, &b_secret), &[]).await;
    let ids = strs(&r["Events"], "requestId");
    assert!(ids.contains(&theirs.as_str()));
    assert!(!ids.contains(&mine.as_str()));
    assert!(
        items(&r["Events"])
            .iter()
            .all(|e| e["userIdentity"]["accountId"] == "1000000000000002")
    );
}
