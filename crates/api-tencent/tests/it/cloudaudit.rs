//! CloudAudit LookUpEvents in process (docs/identity-wire.md §5, D12, D13): calls of the
//! account are found with their RequestIds and codes, window and limit errors, pages,
//! tenancy, no secret in any event.

use nubis_api_tencent::{Reply, TencentApi};
use nubis_testkit::tencent::{CVM, To, audited_api, tc3_to, tc3_token_at};
use nubis_testkit::{KEY_ID, SECRET, items, now, strs};
use serde_json::{Value, json};

async fn cvm(api: &TencentApi, key: (&str, &str), action: &str, body: Value) -> (Reply, Value) {
    tc3_to(api, CVM, key, action, &body).await
}

async fn lookup(api: &TencentApi, key: (&str, &str), body: Value) -> Value {
    let to = To {
        version: "2019-03-19",
        service: "cloudaudit",
        region: Some("ap-guangzhou"),
    };
    tc3_to(api, to, key, "LookUpEvents", &body).await.1
}

fn code(v: &Value) -> &str {
    v["Error"]["Code"].as_str().unwrap_or("OK")
}

fn window() -> Value {
    json!({"StartTime": now() - 3600, "EndTime": now() + 60})
}

fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

#[tokio::test]
async fn calls_are_found_with_their_request_ids_and_codes() {
    let (api, _engine, _dir) = audited_api().await;
    let admin = (KEY_ID, SECRET);
    let (ok, _) = cvm(&api, admin, "DescribeInstances", json!({})).await;
    let (bad, v) = cvm(
        &api,
        admin,
        "RebootInstances",
        json!({"InstanceIds": ["ins-nothere1"], "Password": "Secret-pass1"}),
    )
    .await;
    assert_eq!(code(&v), "UnknownParameter");
    let (refused, v) = cvm(
        &api,
        admin,
        "RebootInstances",
        json!({"InstanceIds": ["ins-nothere2"]}),
    )
    .await;
    assert_eq!(code(&v), "InvalidInstanceId.NotFound");

    let r = lookup(&api, admin, window()).await;
    assert_eq!(code(&r), "OK", "{r}");
    let events = r["Events"].as_array().unwrap();
    assert_eq!(r["ListOver"], json!(true));
    let find = |rid: &str| events.iter().find(|e| e["RequestID"] == rid).cloned();
    let e = find(&ok.request_id).expect("DescribeInstances is in the trail");
    assert_eq!(e["EventName"], "DescribeInstances");
    assert_eq!(e["ErrorCode"], 0);
    assert_eq!(e["SecretId"], KEY_ID);
    assert_eq!(e["SourceIPAddress"], "192.0.2.7");
    assert_eq!(e["EventSource"], "cvm.tencentcloudapi.com");
    assert!(e["EventTime"].is_string(), "EventTime is a string: {e}");
    let inner: Value = serde_json::from_str(e["CloudAuditEvent"].as_str().unwrap()).unwrap();
    assert_eq!(inner["userAgent"], "test-agent/1.0");
    assert_eq!(inner["actionType"], "Read");
    let e = find(&refused.request_id).expect("the failed reboot is in the trail");
    assert_eq!(e["ErrorCode"], 1);
    let inner: Value = serde_json::from_str(e["CloudAuditEvent"].as_str().unwrap()).unwrap();
    assert_eq!(inner["apiErrorCode"], "InvalidInstanceId.NotFound");
    assert_eq!(e["Resources"]["ResourceName"], "ins-nothere2");
    // The secret given as a parameter is nowhere.
    let e = find(&bad.request_id).expect("the refused reboot is in the trail");
    let text = e.to_string();
    assert!(
        !text.contains("Secret-pass1") && !text.contains("Password"),
        "{text}"
    );
    assert!(!r.to_string().contains(SECRET));

    // Attributes are AND-ed.
    let r = lookup(
        &api,
        admin,
        with(
            window(),
            json!({"LookupAttributes": [
                {"AttributeKey": "EventName", "AttributeValue": "RebootInstances"},
                {"AttributeKey": "ResourceId", "AttributeValue": "ins-nothere2"},
            ]}),
        ),
    )
    .await;
    let got: Vec<&Value> = items(&r["Events"])
        .iter()
        .map(|e| &e["RequestID"])
        .collect();
    assert_eq!(got, [&json!(refused.request_id)]);
    let r = lookup(
        &api,
        admin,
        with(window(), json!({"LookupAttributes": [{"AttributeKey": "RequestId", "AttributeValue": ok.request_id}]})),
    )
    .await;
    assert_eq!(r["Events"].as_array().unwrap().len(), 1);
    let r = lookup(
        &api,
        admin,
        with(window(), json!({"LookupAttributes": [{"AttributeKey": "ActionType", "AttributeValue": "Write"}]})),
    )
    .await;
    assert!(
        items(&r["Events"])
            .iter()
            .all(|e| e["EventName"] == "RebootInstances")
    );

    // TotalCount is every match of the query, not the page's count.
    let reboots = json!({"LookupAttributes": [
        {"AttributeKey": "EventName", "AttributeValue": "RebootInstances"}]});
    let all = lookup(&api, admin, with(window(), reboots.clone())).await;
    let n = all["Events"].as_array().unwrap().len();
    assert!(n >= 2, "{all}");
    assert_eq!(all["TotalCount"], json!(n));
    let page = lookup(
        &api,
        admin,
        with(with(window(), reboots), json!({"MaxResults": 1})),
    )
    .await;
    assert_eq!(page["Events"].as_array().unwrap().len(), 1);
    assert_eq!(page["TotalCount"], json!(n), "{page}");
    assert_eq!(page["ListOver"], json!(false));

    // Pages of one, newest first, chained by NextToken; the token is bound to its query.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let fixed = window();
    loop {
        let mut body = with(fixed.clone(), json!({"MaxResults": 1}));
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let r = lookup(&api, admin, body).await;
        assert_eq!(code(&r), "OK", "{r}");
        seen.extend(items(&r["Events"]).iter().map(|e| e["EventId"].clone()));
        match r["NextToken"].as_str() {
            Some(t) => {
                assert_eq!(r["ListOver"], json!(false));
                let other = lookup(
                    &api,
                    admin,
                    with(fixed.clone(), json!({"MaxResults": 2, "NextToken": t})),
                )
                .await;
                assert_eq!(code(&other), "InvalidParameterValue");
                token = Some(t.to_string());
            }
            None => break,
        }
    }
    // Each page's lookup is itself recorded, after its page was read.
    assert!(seen.len() >= 4, "{seen:?}");
    let unique: std::collections::HashSet<String> = seen.iter().map(|v| v.to_string()).collect();
    assert_eq!(unique.len(), seen.len(), "no event twice");
}

#[tokio::test]
async fn bad_lookups_get_cloudaudit_codes() {
    let (api, _engine, _dir) = audited_api().await;
    let k = (KEY_ID, SECRET);
    let n = now();
    for (body, want) in [
        (json!({}), "InvalidParameter.Time"),
        (json!({"StartTime": n}), "InvalidParameter.Time"),
        (
            json!({"StartTime": "soon", "EndTime": n}),
            "InvalidParameter.Time",
        ),
        (
            json!({"StartTime": n, "EndTime": n - 1}),
            "InvalidParameterValue.Time",
        ),
        (
            json!({"StartTime": n - 8 * 86400, "EndTime": n}),
            "LimitExceeded.OverTime",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "MaxResults": 51}),
            "InvalidParameterValue.MaxResult",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "MaxResults": 0}),
            "InvalidParameterValue.MaxResult",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "LookupAttributes": [{"AttributeKey": "Nope", "AttributeValue": "x"}]}),
            "InvalidParameterValue.attributeKey",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "NextToken": "garbage"}),
            "InvalidParameterValue",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "Mode": "slow"}),
            "InvalidParameterValue",
        ),
        (
            json!({"StartTime": n - 60, "EndTime": n, "Extra": 1}),
            "UnknownParameter",
        ),
    ] {
        let r = lookup(&api, k, body.clone()).await;
        assert_eq!(code(&r), want, "{body} → {r}");
    }
    // Exactly 7 days is allowed; so are 50 results and a key the trail never matches.
    for body in [
        json!({"StartTime": n - 7 * 86400, "EndTime": n}),
        json!({"StartTime": n - 60, "EndTime": n, "MaxResults": 50}),
        json!({"StartTime": n - 60, "EndTime": n, "LookupAttributes": [{"AttributeKey": "Tags", "AttributeValue": "k&v"}]}),
    ] {
        let r = lookup(&api, k, body.clone()).await;
        assert_eq!(code(&r), "OK", "{body} → {r}");
    }
}

#[tokio::test]
async fn an_account_sees_only_its_own_events() {
    let (api, engine, _dir) = audited_api().await;
    let (b, b_secret) = nubis_testkit::team_b(&engine).await;
    let (mine, _) = cvm(&api, (KEY_ID, SECRET), "DescribeInstances", json!({})).await;
    let (theirs, _) = cvm(&api, (&b, &b_secret), "DescribeInstances", json!({})).await;
    let r = lookup(&api, (&b, &b_secret), window()).await;
    let ids = strs(&r["Events"], "RequestID");
    assert!(ids.contains(&theirs.request_id.as_str()));
    assert!(
        !ids.contains(&mine.request_id.as_str()),
        "another account's event is not visible"
    );
    assert!(
        items(&r["Events"])
            .iter()
            .all(|e| e["AccountID"] == 100000000002u64)
    );
    // Even by its RequestId.
    let r = lookup(
        &api,
        (&b, &b_secret),
        with(window(), json!({"LookupAttributes": [{"AttributeKey": "RequestId", "AttributeValue": mine.request_id}]})),
    )
    .await;
    assert_eq!(r["Events"], json!([]));
}

/// An identified but expired temporary credential (its token binds it, its signature checks
/// out) is recorded with AuthFailure.TokenFailure under its key; a foreign token or a bad
/// signature is not authenticated and is not recorded (docs/audit.md).
#[tokio::test]
async fn an_expired_temporary_credential_is_recorded_a_foreign_token_is_not() {
    let (api, engine, _dir) = audited_api().await;
    let (root, _) = engine.access_key(KEY_ID).unwrap();
    let tmp = engine
        .issue_session_token(&root, nubis_engine::Issuer::Tencent, 60, None)
        .await
        .unwrap();
    let key = (tmp.id.as_str(), tmp.secret.as_str());
    let empty = json!({});
    let describe =
        |key, token, ts| tc3_token_at(&api, CVM, key, token, ts, "DescribeInstances", &empty);
    let (live, v) = describe(key, Some(&tmp.token), now()).await;
    assert_eq!(code(&v), "OK", "{v}");
    // Received two minutes later: past the expiry.
    let later = now() + 120;
    let (expired, v) = describe(key, Some(&tmp.token), later).await;
    assert_eq!(code(&v), "AuthFailure.TokenFailure", "{v}");
    let (foreign, v) = describe(key, Some("garbage"), later).await;
    assert_eq!(code(&v), "AuthFailure.TokenFailure", "{v}");
    let forged = (tmp.id.as_str(), "not-the-secret-at-all-0123456789");
    let (unsigned, v) = describe(forged, Some(&tmp.token), later).await;
    assert_eq!(code(&v), "AuthFailure.TokenFailure", "{v}");

    let r = lookup(&api, (KEY_ID, SECRET), window()).await;
    let events = r["Events"].as_array().unwrap();
    let find = |rid: &str| events.iter().find(|e| e["RequestID"] == rid);
    assert!(find(&live.request_id).is_some(), "{r}");
    let e = find(&expired.request_id).expect("the expired credential's call is recorded");
    let inner: Value = serde_json::from_str(e["CloudAuditEvent"].as_str().unwrap()).unwrap();
    assert_eq!(inner["apiErrorCode"], "AuthFailure.TokenFailure");
    assert_eq!(
        (&e["SecretId"], &e["EventName"]),
        (&json!(tmp.id), &json!("DescribeInstances"))
    );
    assert!(
        find(&foreign.request_id).is_none(),
        "a foreign token is not recorded"
    );
    assert!(
        find(&unsigned.request_id).is_none(),
        "a bad signature is not recorded"
    );
    assert!(!r.to_string().contains(&tmp.token) && !r.to_string().contains(&tmp.secret));
}
