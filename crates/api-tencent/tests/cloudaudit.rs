//! CloudAudit LookUpEvents in process (docs/identity-wire.md §5, D12, D13): calls of the
//! account are found with their RequestIds and codes, window and limit errors, pages,
//! tenancy, no secret in any event.

use nubis_api_tencent::{RawRequest, Reply, TencentApi};
use nubis_auth::tencent::sign_tc3;
use nubis_engine::{Engine, NewAccount};
use nubis_testkit::{KEY_ID, SECRET, now};
use serde_json::{Value, json};
use std::sync::Arc;

struct ToEngine(Engine);

#[async_trait::async_trait]
impl nubis_pipeline::Auditor for ToEngine {
    async fn record(&self, e: nubis_core::audit::AuditEvent) {
        self.0.record_audit(e).await.unwrap();
    }
}

const HOST: &str = "127.0.0.1:8080";

async fn call(
    api: &TencentApi,
    key: (&str, &str),
    version: &str,
    service: &str,
    action: &str,
    body: Value,
) -> (Reply, Value) {
    let body = body.to_string();
    let ts = now();
    let auth = sign_tc3(
        "POST",
        HOST,
        "",
        "application/json",
        body.as_bytes(),
        key.0,
        key.1,
        ts,
        service,
    );
    let headers: Vec<(String, String)> = [
        ("authorization", auth),
        ("content-type", "application/json".into()),
        ("host", HOST.into()),
        ("x-tc-action", action.into()),
        ("x-tc-version", version.into()),
        ("x-tc-timestamp", ts.to_string()),
        ("x-tc-region", "ap-guangzhou".into()),
        ("user-agent", "test-agent/1.0".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let reply = api
        .handle(RawRequest {
            http: nubis_auth::HttpRequestParts {
                method: "POST",
                host: HOST,
                path: "/",
                raw_query: "",
                headers: &headers,
                body: body.as_bytes(),
                peer: Some([192, 0, 2, 7].into()),
            },
            now: ts,
        })
        .await;
    let v: Value = serde_json::from_slice(&reply.body).unwrap();
    (reply, v["Response"].clone())
}

async fn cvm(api: &TencentApi, key: (&str, &str), action: &str, body: Value) -> (Reply, Value) {
    call(api, key, "2017-03-12", "cvm", action, body).await
}

async fn lookup(api: &TencentApi, key: (&str, &str), body: Value) -> Value {
    call(api, key, "2019-03-19", "cloudaudit", "LookUpEvents", body)
        .await
        .1
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
    let (engine, _dir) = nubis_testkit::engine().await;
    let api =
        TencentApi::new(engine.clone(), false).with_auditor(Arc::new(ToEngine(engine.clone())));
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
    let got: Vec<&Value> = r["Events"]
        .as_array()
        .unwrap()
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
        r["Events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["EventName"] == "RebootInstances")
    );

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
        seen.extend(
            r["Events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["EventId"].clone()),
        );
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
    let (engine, _dir) = nubis_testkit::engine().await;
    let api =
        TencentApi::new(engine.clone(), false).with_auditor(Arc::new(ToEngine(engine.clone())));
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
    let (engine, _dir) = nubis_testkit::engine().await;
    let api =
        TencentApi::new(engine.clone(), false).with_auditor(Arc::new(ToEngine(engine.clone())));
    engine
        .create_account(NewAccount {
            name: "team-b".into(),
            tencent_owner_uin: Some(100000000002),
            ..Default::default()
        })
        .await
        .unwrap();
    let (b, b_secret) = engine
        .create_access_key_for(Some("team-b"), None)
        .await
        .unwrap();
    let (mine, _) = cvm(&api, (KEY_ID, SECRET), "DescribeInstances", json!({})).await;
    let (theirs, _) = cvm(&api, (&b.id, &b_secret), "DescribeInstances", json!({})).await;
    let r = lookup(&api, (&b.id, &b_secret), window()).await;
    let ids: Vec<&str> = r["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["RequestID"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&theirs.request_id.as_str()));
    assert!(
        !ids.contains(&mine.request_id.as_str()),
        "another account's event is not visible"
    );
    assert!(
        r["Events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["AccountID"] == 100000000002u64)
    );
    // Even by its RequestId.
    let r = lookup(
        &api,
        (&b.id, &b_secret),
        with(window(), json!({"LookupAttributes": [{"AttributeKey": "RequestId", "AttributeValue": mine.request_id}]})),
    )
    .await;
    assert_eq!(r["Events"], json!([]));
}
