//! CAM 2019-01-16 over the Tencent listener, in process: every refusal of every action with
//! CAM's code, the rules the engine keeps (two keys per principal, unique names, cascades),
//! and tenancy (another account's users, keys and policies do not exist here).

use nubis_api_tencent::{TencentApi, cam};
use nubis_engine::{Engine, KeyLookup};
use nubis_testkit::tencent::{To, tc3_to};
use nubis_testkit::{items, strs};
use serde_json::{Value, json};

/// An account's root: its access key.
struct Caller {
    id: String,
    secret: String,
}

struct Cam {
    api: TencentApi,
    engine: Engine,
    _dir: nubis_testkit::TempDir,
}

impl Cam {
    async fn new() -> Self {
        let (api, engine, _dir) = nubis_testkit::tencent::api(false).await;
        Self { api, engine, _dir }
    }

    /// A new account and its root's key.
    async fn account(&self, name: &str) -> Caller {
        let (id, secret) = nubis_testkit::account(&self.engine, name).await;
        Caller { id, secret }
    }

    async fn raw(&self, c: &Caller, action: &str, body: &Value, region: Option<&str>) -> Value {
        let to = To {
            version: cam::VERSION,
            service: "cam",
            region,
        };
        tc3_to(&self.api, to, (&c.id, &c.secret), action, body)
            .await
            .1
    }

    async fn call(&self, c: &Caller, action: &str, body: Value) -> Value {
        self.raw(c, action, &body, None).await
    }

    /// The call's error code (panics on success).
    async fn err(&self, c: &Caller, action: &str, body: Value) -> String {
        let v = self.call(c, action, body.clone()).await;
        v["Error"]["Code"]
            .as_str()
            .unwrap_or_else(|| panic!("{action} {body} succeeded: {v}"))
            .to_string()
    }

    /// The call's answer (panics on an error).
    async fn ok(&self, c: &Caller, action: &str, body: Value) -> Value {
        let v = self.call(c, action, body.clone()).await;
        assert!(v.get("Error").is_none(), "{action} {body}: {v}");
        v
    }

    /// AddUser's answer's Uin.
    async fn add_user(&self, c: &Caller, name: &str) -> u64 {
        let v = self.ok(c, "AddUser", json!({ "Name": name })).await;
        v["Uin"].as_u64().expect("a Uin")
    }

    /// CreatePolicy's answer's PolicyId.
    async fn create_policy(&self, c: &Caller, body: Value) -> u64 {
        let v = self.ok(c, "CreatePolicy", body).await;
        v["PolicyId"].as_u64().expect("a PolicyId")
    }

    /// Each call (action, body) is refused with its code, in turn.
    async fn refuses(&self, c: &Caller, calls: &[(&str, Value, &str)]) {
        for (action, body, code) in calls {
            let got = self.err(c, action, body.clone()).await;
            assert_eq!(got, *code, "{action} {body}");
        }
    }
}

const READ_ONLY: &str = r#"{"version":"2.0","statement":[{"effect":"allow","action":["cvm:Describe*"],"resource":"*"}]}"#;

#[test]
fn catalogue_matches_the_registry() {
    nubis_testkit::check_served(&nubis_api_tencent::SERVICES, &[&cam::REGISTRY]);
}

#[tokio::test]
async fn users_are_added_listed_and_deleted_with_cams_codes() {
    let t = Cam::new().await;
    let root = t.account("team-a").await;
    let v = t.ok(&root, "AddUser", json!({"Name": "dev"})).await;
    let uin = v["Uin"].as_u64().unwrap();
    assert_eq!(v["Uid"].as_u64(), Some(uin));
    assert!(v.get("SecretId").is_none());
    #[rustfmt::skip]
    let refusals = &[
        ("AddUser", json!({"Name": "dev"}), "InvalidParameter.SubUserNameInUse"),
        ("AddUser", json!({"Name": "a b"}), "InvalidParameter.UserNameIllegal"),
        ("AddUser", json!({"Name": "x".repeat(65)}), "InvalidParameter.UserNameIllegal"),
        ("AddUser", json!({}), "MissingParameter"),
        ("AddUser", json!({"Name": "y", "Nope": 1}), "UnknownParameter"),
        ("AddUser", json!({"Name": "y", "UseApi": 2}), "InvalidParameter.ParamError"),
        ("AddUser", json!({"Name": "y", "UseApi": "x"}), "InvalidParameter"),
    ];
    t.refuses(&root, refusals).await;
    // UseApi=1 hands out a working key.
    let v = t
        .ok(
            &root,
            "AddUser",
            json!({"Name": "ops", "UseApi": 1, "Remark": "r"}),
        )
        .await;
    let sid = v["SecretId"].as_str().unwrap().to_string();
    assert!(matches!(
        t.engine.lookup_access_key(&sid),
        KeyLookup::Active(..)
    ));
    let got = t.ok(&root, "GetUser", json!({"Name": "dev"})).await;
    assert_eq!(
        (got["Uin"].as_u64(), got["Name"].as_str()),
        (Some(uin), Some("dev"))
    );
    assert_eq!(got["ConsoleLogin"], 0);
    #[rustfmt::skip]
    let refusals = &[
        ("GetUser", json!({"Name": "nobody"}), "ResourceNotFound.UserNotExist"),
        ("GetUser", json!({}), "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
    let list = t.ok(&root, "ListUsers", json!({})).await;
    assert_eq!(strs(&list["Data"], "Name"), ["dev", "ops"]);
    let ct = list["Data"][0]["CreateTime"].as_str().unwrap();
    assert_eq!((ct.len(), &ct[10..11]), (19, " "), "{ct}");
    assert_eq!(
        t.err(&root, "ListUsers", json!({"Page": 1})).await,
        "UnknownParameter"
    );
    // A user with keys is deleted only with Force, which deletes the keys too.
    #[rustfmt::skip]
    let refusals = &[
        ("DeleteUser", json!({"Name": "ops"}), "OperationDenied.HaveKeys"),
        ("DeleteUser", json!({"Name": "ops", "Force": 0}), "OperationDenied.HaveKeys"),
    ];
    t.refuses(&root, refusals).await;
    t.ok(&root, "DeleteUser", json!({"Name": "ops", "Force": 1}))
        .await;
    assert_eq!(t.engine.lookup_access_key(&sid), KeyLookup::Unknown);
    assert_eq!(
        t.err(&root, "DeleteUser", json!({"Name": "ops"})).await,
        "ResourceNotFound.UserNotExist"
    );
    // Attached policies go with the user.
    let pid = t
        .create_policy(
            &root,
            json!({"PolicyName": "ro", "PolicyDocument": READ_ONLY}),
        )
        .await;
    t.ok(
        &root,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": uin}),
    )
    .await;
    t.ok(&root, "DeleteUser", json!({"Name": "dev"})).await;
    assert_eq!(t.engine.iam_attachment_count(pid), 0);
}

#[tokio::test]
async fn access_keys_are_two_per_principal_and_scoped_to_their_owner() {
    let t = Cam::new().await;
    let root = t.account("team-a").await;
    let uin = t.add_user(&root, "dev").await;
    let other = t.add_user(&root, "other").await;
    let k1 = t
        .ok(
            &root,
            "CreateAccessKey",
            json!({"TargetUin": uin, "Description": "ci"}),
        )
        .await;
    let k1 = &k1["AccessKey"];
    assert_eq!(
        (k1["Status"].as_str(), k1["Description"].as_str()),
        (Some("Active"), Some("ci"))
    );
    assert_eq!(k1["SecretAccessKey"].as_str().map(str::len), Some(32));
    let k1 = k1["AccessKeyId"].as_str().unwrap().to_string();
    t.ok(&root, "CreateAccessKey", json!({"TargetUin": uin}))
        .await;
    assert_eq!(
        t.err(&root, "CreateAccessKey", json!({"TargetUin": uin}))
            .await,
        "OperationDenied.AccessKeyOverLimit"
    );
    // The root already has one key (the caller's): one more, then the limit.
    t.ok(&root, "CreateAccessKey", json!({})).await;
    #[rustfmt::skip]
    let refusals = &[
        ("CreateAccessKey", json!({}), "OperationDenied.AccessKeyOverLimit"),
        ("CreateAccessKey", json!({"TargetUin": 123}), "InvalidParameter.UserNotExist"),
        ("CreateAccessKey", json!({"TargetUin": -1}), "InvalidParameter.UserNotExist"),
        ("CreateAccessKey", json!({"Description": "no spaces"}), "InvalidParameter.ParamError"),
    ];
    t.refuses(&root, refusals).await;
    let list = t
        .ok(&root, "ListAccessKeys", json!({"TargetUin": uin}))
        .await;
    assert_eq!(list["AccessKeys"].as_array().map(Vec::len), Some(2));
    assert!(list["AccessKeys"][0].get("SecretAccessKey").is_none());
    // Disable and enable.
    t.ok(
        &root,
        "UpdateAccessKey",
        json!({"AccessKeyId": k1, "Status": "Inactive", "TargetUin": uin}),
    )
    .await;
    assert_eq!(t.engine.lookup_access_key(&k1), KeyLookup::Disabled);
    let list = t
        .ok(&root, "ListAccessKeys", json!({"TargetUin": uin}))
        .await;
    assert!(
        items(&list["AccessKeys"])
            .iter()
            .any(|k| k["Status"] == "Inactive")
    );
    #[rustfmt::skip]
    let refusals = &[
        ("UpdateAccessKey", json!({"AccessKeyId": k1, "Status": "Off", "TargetUin": uin}), "InvalidParameter.ParamError"),
        ("UpdateAccessKey", json!({"AccessKeyId": k1}), "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
    // Another principal's key does not exist under this one.
    #[rustfmt::skip]
    let refusals = &[
        ("UpdateAccessKey", json!({"AccessKeyId": k1, "Status": "Active", "TargetUin": other}), "ResourceNotFound.SecretNotExist"),
        ("DeleteAccessKey", json!({"AccessKeyId": k1}), "ResourceNotFound.SecretNotExist"),
        ("DeleteAccessKey", json!({"AccessKeyId": "AKIDnope", "TargetUin": uin}), "ResourceNotFound.SecretNotExist"),
    ];
    t.refuses(&root, refusals).await;
    t.ok(
        &root,
        "DeleteAccessKey",
        json!({"AccessKeyId": k1, "TargetUin": uin}),
    )
    .await;
    assert_eq!(t.engine.lookup_access_key(&k1), KeyLookup::Unknown);
    // A freed slot takes a new key.
    t.ok(&root, "CreateAccessKey", json!({"TargetUin": uin}))
        .await;
}

#[tokio::test]
async fn policies_are_created_attached_and_deleted_with_cams_codes() {
    let t = Cam::new().await;
    let root = t.account("team-a").await;
    let uin = t.add_user(&root, "dev").await;
    let create = |name: &str, doc: &str| json!({"PolicyName": name, "PolicyDocument": doc});
    let pid = t
        .create_policy(
            &root,
            json!({"PolicyName": "ro", "PolicyDocument": READ_ONLY, "Description": "read"}),
        )
        .await;
    for (doc, code) in [
        ("{", "InvalidParameter.PolicyDocumentError"),
        (
            r#"{"version":"1.0","statement":[]}"#,
            "InvalidParameter.VersionError",
        ),
        (
            r#"{"version":"2.0","statement":[{"effect":"maybe","action":"cvm:*","resource":"*"}]}"#,
            "InvalidParameter.EffectError",
        ),
        (
            r#"{"version":"2.0","statement":[{"effect":"allow","resource":"*"}]}"#,
            "InvalidParameter.ActionMiss",
        ),
        (
            r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:*","resource":"*","condition":{"no_such_op":{"qcs:ip":"1.1.1.1"}}}]}"#,
            "InvalidParameter.ConditionTypeError",
        ),
    ] {
        assert_eq!(
            t.err(&root, "CreatePolicy", create("bad", doc)).await,
            code,
            "{doc}"
        );
    }
    let huge = format!(
        r#"{{"version":"2.0","statement":[{{"effect":"allow","action":"cvm:*","resource":"{}"}}]}}"#,
        "*".repeat(7000)
    );
    #[rustfmt::skip]
    let refusals = &[
        ("CreatePolicy", create("big", &huge), "InvalidParameter.PolicyDocumentLengthOverLimit"),
        ("CreatePolicy", create("ro", READ_ONLY), "FailedOperation.PolicyNameInUse"),
        ("CreatePolicy", create("a b", READ_ONLY), "InvalidParameter.PolicyNameError"),
        ("CreatePolicy", json!({"PolicyName": "d", "PolicyDocument": READ_ONLY, "Description": "x".repeat(301)}), "InvalidParameter.DescriptionLengthOverlimit"),
        ("CreatePolicy", json!({"PolicyName": "d"}), "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
    // Read back.
    let got = t.ok(&root, "GetPolicy", json!({"PolicyId": pid})).await;
    assert_eq!(
        (
            got["PolicyName"].as_str(),
            got["PolicyDocument"].as_str(),
            got["Description"].as_str(),
            got["Type"].as_u64()
        ),
        (Some("ro"), Some(READ_ONLY), Some("read"), Some(1))
    );
    #[rustfmt::skip]
    let refusals = &[
        ("GetPolicy", json!({"PolicyId": 1}), "ResourceNotFound.PolicyIdNotFound"),
        ("GetPolicy", json!({"PolicyId": 0}), "InvalidParameter.PolicyIdError"),
    ];
    t.refuses(&root, refusals).await;
    let list = t
        .ok(
            &root,
            "ListPolicies",
            json!({"Keyword": "r", "Scope": "Local"}),
        )
        .await;
    assert_eq!(list["TotalNum"], 1);
    assert_eq!(list["List"][0]["PolicyId"].as_u64(), Some(pid));
    assert_eq!(
        t.ok(&root, "ListPolicies", json!({"Scope": "QCS"})).await["TotalNum"],
        0
    );
    #[rustfmt::skip]
    let refusals = &[
        ("ListPolicies", json!({"Rp": 0}), "InvalidParameter.ParamError"),
        ("ListPolicies", json!({"Page": 201}), "InvalidParameter.ParamError"),
        ("ListPolicies", json!({"Scope": "Mine"}), "InvalidParameter.ScopeError"),
    ];
    t.refuses(&root, refusals).await;
    // Attach (twice: idempotent), list, detach (twice).
    let attach = json!({"PolicyId": pid, "AttachUin": uin});
    t.ok(&root, "AttachUserPolicy", attach.clone()).await;
    t.ok(&root, "AttachUserPolicy", attach).await;
    #[rustfmt::skip]
    let refusals = &[
        ("AttachUserPolicy", json!({"PolicyId": pid, "AttachUin": 42}), "ResourceNotFound.UserNotExist"),
        ("AttachUserPolicy", json!({"PolicyId": 42, "AttachUin": uin}), "ResourceNotFound.PolicyIdNotFound"),
        ("AttachUserPolicy", json!({"PolicyId": pid}), "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
    let attached = t
        .ok(&root, "ListAttachedUserPolicies", json!({"TargetUin": uin}))
        .await;
    assert_eq!(attached["TotalNum"], 1);
    assert_eq!(attached["List"][0]["PolicyName"], "ro");
    assert_eq!(attached["List"][0]["PolicyType"], "User");
    #[rustfmt::skip]
    let refusals = &[
        ("ListAttachedUserPolicies", json!({"TargetUin": 42}), "ResourceNotFound.UserNotExist"),
        ("ListAttachedUserPolicies", json!({}), "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
    let detach = json!({"PolicyId": pid, "DetachUin": uin});
    t.ok(&root, "DetachUserPolicy", detach.clone()).await;
    t.ok(&root, "DetachUserPolicy", detach).await;
    assert_eq!(
        t.ok(&root, "ListAttachedUserPolicies", json!({"TargetUin": uin}))
            .await["TotalNum"],
        0
    );
    // DeletePolicy is all or nothing; an attached policy is detached with it.
    t.ok(
        &root,
        "AttachUserPolicy",
        json!({"PolicyId": pid, "AttachUin": uin}),
    )
    .await;
    assert_eq!(
        t.err(&root, "DeletePolicy", json!({"PolicyId": [pid, 42]}))
            .await,
        "ResourceNotFound.PolicyIdNotFound"
    );
    t.ok(&root, "GetPolicy", json!({"PolicyId": pid})).await;
    #[rustfmt::skip]
    let refusals = &[
        ("DeletePolicy", json!({"PolicyId": []}), "InvalidParameter.ParamError"),
        ("DeletePolicy", json!({"PolicyId": (1..=101).collect::<Vec<u64>>()}), "InvalidParameter.OperatePoliciesOverLimit"),
        ("DeletePolicy", json!({"PolicyId": pid}), "InvalidParameter"),
    ];
    t.refuses(&root, refusals).await;
    t.ok(&root, "DeletePolicy", json!({"PolicyId": [pid]}))
        .await;
    assert_eq!(
        t.err(&root, "GetPolicy", json!({"PolicyId": pid})).await,
        "ResourceNotFound.PolicyIdNotFound"
    );
    assert_eq!(
        t.ok(&root, "ListAttachedUserPolicies", json!({"TargetUin": uin}))
            .await["TotalNum"],
        0
    );
}

#[tokio::test]
async fn another_accounts_users_keys_and_policies_do_not_exist_here() {
    let t = Cam::new().await;
    let a = t.account("team-a").await;
    let b = t.account("team-b").await;
    let uin = t
        .ok(&a, "AddUser", json!({"Name": "dev", "UseApi": 1}))
        .await;
    let key = uin["SecretId"].as_str().unwrap().to_string();
    let uin = uin["Uin"].as_u64().unwrap();
    let pid = t
        .create_policy(&a, json!({"PolicyName": "ro", "PolicyDocument": READ_ONLY}))
        .await;
    assert_eq!(
        t.err(&b, "GetUser", json!({"Name": "dev"})).await,
        "ResourceNotFound.UserNotExist"
    );
    assert_eq!(t.ok(&b, "ListUsers", json!({})).await["Data"], json!([]));
    #[rustfmt::skip]
    let refusals = &[
        ("ListAccessKeys", json!({"TargetUin": uin}), "InvalidParameter.UserNotExist"),
        ("DeleteAccessKey", json!({"AccessKeyId": key}), "ResourceNotFound.SecretNotExist"),
        ("GetPolicy", json!({"PolicyId": pid}), "ResourceNotFound.PolicyIdNotFound"),
        ("DeletePolicy", json!({"PolicyId": [pid]}), "ResourceNotFound.PolicyIdNotFound"),
    ];
    t.refuses(&b, refusals).await;
    // B may use the same names: they are per account.
    t.ok(&b, "AddUser", json!({"Name": "dev"})).await;
    t.ok(
        &b,
        "CreatePolicy",
        json!({"PolicyName": "ro", "PolicyDocument": READ_ONLY}),
    )
    .await;
    // A RAM policy of A is not a CAM policy.
    let ram = t
        .engine
        .create_policy(
            "team-a",
            "ram-ro",
            nubis_core::PolicyGrammar::Ram,
            r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}]}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        t.err(&a, "GetPolicy", json!({"PolicyId": ram.id})).await,
        "ResourceNotFound.PolicyIdNotFound"
    );
    assert_eq!(t.ok(&a, "ListPolicies", json!({})).await["TotalNum"], 1);
}

#[tokio::test]
async fn cam_is_region_less_and_serves_only_its_actions() {
    let t = Cam::new().await;
    let root = t.account("team-a").await;
    // Any region is accepted and ignored (D3), even one nubis does not serve.
    let v = t
        .raw(&root, "ListUsers", &json!({}), Some("xx-nowhere"))
        .await;
    assert!(v.get("Error").is_none(), "{v}");
    // A CVM action under CAM's version does not exist.
    assert_eq!(
        t.err(&root, "DescribeInstances", json!({})).await,
        "InvalidAction"
    );
}

#[tokio::test]
async fn concurrent_adds_of_one_name_leave_one_user() {
    let t = Cam::new().await;
    let root = t.account("team-a").await;
    let calls = (0..8).map(|_| t.call(&root, "AddUser", json!({"Name": "dup"})));
    let replies = futures_join(calls).await;
    let ok = replies.iter().filter(|v| v.get("Error").is_none()).count();
    assert_eq!(ok, 1, "{replies:?}");
    assert!(
        replies
            .iter()
            .filter(|v| v.get("Error").is_some())
            .all(|v| v["Error"]["Code"] == "InvalidParameter.SubUserNameInUse")
    );
}

/// Run the futures concurrently on this task (no extra dependency).
async fn futures_join<F: std::future::Future<Output = Value>>(
    futs: impl Iterator<Item = F>,
) -> Vec<Value> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = vec![Value::Null; set.len()];
    let mut done = vec![false; set.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => {
                    out[i] = v;
                    done[i] = true;
                }
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out
}
