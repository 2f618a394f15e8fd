//! RAM 2015-05-01 over the Alibaba listener, in process: every refusal with RAM's code,
//! status and message, the rules the engine keeps (two keys per principal, unique names, no
//! cascading deletes), paging, and tenancy.

use nubis_api_aliyun::{AliyunApi, ram};
use nubis_engine::{Engine, KeyLookup, NewAccount};
use nubis_testkit::aliyun::{json as body, v1};
use nubis_testkit::now;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

static NONCE: AtomicU64 = AtomicU64::new(0);

struct Caller {
    id: String,
    secret: String,
}

struct Ram {
    api: AliyunApi,
    engine: Engine,
    _dir: nubis_testkit::TempDir,
}

const READ_ONLY: &str =
    r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:Describe*","Resource":"*"}]}"#;

impl Ram {
    async fn new() -> Self {
        let (engine, dir) = nubis_testkit::engine().await;
        Self {
            api: AliyunApi::new(engine.clone(), false),
            engine,
            _dir: dir,
        }
    }

    async fn account(&self, name: &str) -> Caller {
        self.engine
            .create_account(NewAccount {
                name: name.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let (k, secret) = self
            .engine
            .create_access_key_for(Some(name), None)
            .await
            .unwrap();
        Caller { id: k.id, secret }
    }

    async fn call(&self, c: &Caller, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let nonce = format!("n-{}", NONCE.fetch_add(1, Ordering::Relaxed));
        let mut extra: Vec<(&str, String)> = vec![("Version", ram::VERSION.to_string())];
        extra.extend(params.iter().map(|(k, v)| (*k, v.to_string())));
        let reply = v1(
            &self.api,
            "POST",
            action,
            (&c.id, &c.secret),
            now(),
            &nonce,
            &extra,
        )
        .await;
        (reply.status, body(&reply))
    }

    async fn ok(&self, c: &Caller, action: &str, params: &[(&str, &str)]) -> Value {
        let (status, v) = self.call(c, action, params).await;
        assert_eq!(status, 200, "{action} {params:?}: {v}");
        v
    }

    /// (status, code) of a refused call.
    async fn err(&self, c: &Caller, action: &str, params: &[(&str, &str)]) -> (u16, String) {
        let (status, v) = self.call(c, action, params).await;
        let code = v["Code"]
            .as_str()
            .unwrap_or_else(|| panic!("{action} {params:?} succeeded: {v}"));
        (status, code.to_string())
    }
}

fn is(want: (u16, &str)) -> (u16, String) {
    (want.0, want.1.to_string())
}

#[test]
fn catalogue_matches_the_registry() {
    nubis_testkit::check_catalogue(&ram::REGISTRY, &[]);
    assert!(nubis_api_aliyun::SERVICES.serves(ram::VERSION));
}

#[tokio::test]
async fn users_are_created_listed_and_never_deleted_with_dependents() {
    let t = Ram::new().await;
    let root = t.account("team-a").await;
    let v = t
        .ok(
            &root,
            "CreateUser",
            &[("UserName", "dev"), ("DisplayName", "Dev")],
        )
        .await;
    let uid = v["User"]["UserId"].as_str().unwrap().to_string();
    assert!(uid.parse::<u64>().is_ok());
    assert!(v["User"]["CreateDate"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        t.err(&root, "CreateUser", &[("UserName", "dev")]).await,
        is((409, "EntityAlreadyExists.User"))
    );
    assert_eq!(
        t.err(&root, "CreateUser", &[("UserName", "a b")]).await,
        is((400, "InvalidParameter.UserName.InvalidChars"))
    );
    assert_eq!(
        t.err(&root, "CreateUser", &[("UserName", &"x".repeat(65))])
            .await,
        is((400, "InvalidParameter.UserName.Length"))
    );
    assert_eq!(
        t.err(
            &root,
            "CreateUser",
            &[("UserName", "y"), ("DisplayName", &"d".repeat(129))]
        )
        .await,
        is((400, "InvalidParameter.DisplayName.Length"))
    );
    assert_eq!(
        t.err(&root, "CreateUser", &[("UserName", "y"), ("Email", "nope")])
            .await,
        is((400, "InvalidParameter.Email.Format"))
    );
    assert_eq!(
        t.err(
            &root,
            "CreateUser",
            &[("UserName", "y"), ("MobilePhone", "12345")]
        )
        .await,
        is((400, "InvalidParameter.MobilePhone.Format"))
    );
    assert_eq!(
        t.err(&root, "CreateUser", &[]).await,
        is((400, "MissingParameter"))
    );
    let got = t.ok(&root, "GetUser", &[("UserName", "dev")]).await;
    assert_eq!(got["User"]["UserId"].as_str(), Some(uid.as_str()));
    assert_eq!(
        t.err(&root, "GetUser", &[("UserName", "nobody")]).await,
        is((404, "EntityNotExist.User"))
    );
    // Paging by Marker/MaxItems.
    for n in ["u1", "u2", "u3"] {
        t.ok(&root, "CreateUser", &[("UserName", n)]).await;
    }
    let page1 = t.ok(&root, "ListUsers", &[("MaxItems", "2")]).await;
    assert_eq!(page1["IsTruncated"], true);
    let names = |v: &Value| -> Vec<String> {
        v["Users"]["User"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["UserName"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&page1), ["dev", "u1"]);
    let marker = page1["Marker"].as_str().unwrap().to_string();
    let page2 = t
        .ok(
            &root,
            "ListUsers",
            &[("MaxItems", "2"), ("Marker", &marker)],
        )
        .await;
    assert_eq!(names(&page2), ["u2", "u3"]);
    assert_eq!(page2["IsTruncated"], false);
    assert!(page2.get("Marker").is_none());
    assert_eq!(
        t.err(&root, "ListUsers", &[("MaxItems", "0")]).await,
        is((400, "InvalidParameter.MaxItems"))
    );
    assert_eq!(
        t.err(&root, "ListUsers", &[("MaxItems", "1001")]).await,
        is((400, "InvalidParameter.MaxItems"))
    );
    // Never cascades: keys, then policies, must go first.
    let key = t.ok(&root, "CreateAccessKey", &[("UserName", "dev")]).await;
    let key = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    t.ok(
        &root,
        "CreatePolicy",
        &[("PolicyName", "ro"), ("PolicyDocument", READ_ONLY)],
    )
    .await;
    let attach = [
        ("PolicyName", "ro"),
        ("PolicyType", "Custom"),
        ("UserName", "dev"),
    ];
    t.ok(&root, "AttachPolicyToUser", &attach).await;
    assert_eq!(
        t.err(&root, "DeleteUser", &[("UserName", "dev")]).await,
        is((409, "DeleteConflict.User.AccessKey"))
    );
    t.ok(
        &root,
        "DeleteAccessKey",
        &[("UserAccessKeyId", &key), ("UserName", "dev")],
    )
    .await;
    assert_eq!(
        t.err(&root, "DeleteUser", &[("UserName", "dev")]).await,
        is((409, "DeleteConflict.User.Policy"))
    );
    t.ok(&root, "DetachPolicyFromUser", &attach).await;
    t.ok(&root, "DeleteUser", &[("UserName", "dev")]).await;
    assert_eq!(
        t.err(&root, "DeleteUser", &[("UserName", "dev")]).await,
        is((404, "EntityNotExist.User"))
    );
}

#[tokio::test]
async fn access_keys_are_two_per_principal() {
    let t = Ram::new().await;
    let root = t.account("team-a").await;
    t.ok(&root, "CreateUser", &[("UserName", "dev")]).await;
    t.ok(&root, "CreateUser", &[("UserName", "other")]).await;
    let k = t.ok(&root, "CreateAccessKey", &[("UserName", "dev")]).await;
    assert_eq!(k["AccessKey"]["Status"], "Active");
    assert_eq!(
        k["AccessKey"]["AccessKeySecret"].as_str().map(str::len),
        Some(32)
    );
    let k1 = k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_string();
    t.ok(&root, "CreateAccessKey", &[("UserName", "dev")]).await;
    assert_eq!(
        t.err(&root, "CreateAccessKey", &[("UserName", "dev")])
            .await,
        is((409, "LimitExceeded.User.AccessKey"))
    );
    assert_eq!(
        t.err(&root, "CreateAccessKey", &[("UserName", "ghost")])
            .await,
        is((404, "EntityNotExist.User"))
    );
    // The root: its own key plus one.
    t.ok(&root, "CreateAccessKey", &[]).await;
    assert_eq!(
        t.err(&root, "CreateAccessKey", &[]).await,
        is((409, "LimitExceeded.User.AccessKey"))
    );
    let list = t.ok(&root, "ListAccessKeys", &[("UserName", "dev")]).await;
    assert_eq!(
        list["AccessKeys"]["AccessKey"].as_array().map(Vec::len),
        Some(2)
    );
    t.ok(
        &root,
        "UpdateAccessKey",
        &[
            ("UserAccessKeyId", &k1),
            ("Status", "Inactive"),
            ("UserName", "dev"),
        ],
    )
    .await;
    assert_eq!(t.engine.lookup_access_key(&k1), KeyLookup::Disabled);
    assert_eq!(
        t.err(
            &root,
            "UpdateAccessKey",
            &[
                ("UserAccessKeyId", &k1),
                ("Status", "Off"),
                ("UserName", "dev")
            ]
        )
        .await,
        is((400, "InvalidParameter.Status"))
    );
    assert_eq!(
        t.err(
            &root,
            "UpdateAccessKey",
            &[("UserAccessKeyId", &k1), ("UserName", "dev")]
        )
        .await,
        is((400, "MissingParameter"))
    );
    assert_eq!(
        t.err(
            &root,
            "DeleteAccessKey",
            &[("UserAccessKeyId", &k1), ("UserName", "other")]
        )
        .await,
        is((404, "EntityNotExist.User.AccessKey"))
    );
    assert_eq!(
        t.err(&root, "DeleteAccessKey", &[("UserAccessKeyId", &k1)])
            .await,
        is((404, "EntityNotExist.User.AccessKey"))
    );
    t.ok(
        &root,
        "DeleteAccessKey",
        &[("UserAccessKeyId", &k1), ("UserName", "dev")],
    )
    .await;
    assert_eq!(t.engine.lookup_access_key(&k1), KeyLookup::Unknown);
}

#[tokio::test]
async fn policies_are_created_attached_and_deleted_with_rams_codes() {
    let t = Ram::new().await;
    let root = t.account("team-a").await;
    t.ok(&root, "CreateUser", &[("UserName", "dev")]).await;
    let v = t
        .ok(
            &root,
            "CreatePolicy",
            &[
                ("PolicyName", "ro"),
                ("PolicyDocument", READ_ONLY),
                ("Description", "read"),
            ],
        )
        .await;
    assert_eq!(
        (
            v["Policy"]["PolicyType"].as_str(),
            v["Policy"]["DefaultVersion"].as_str()
        ),
        (Some("Custom"), Some("v1"))
    );
    assert_eq!(
        t.err(
            &root,
            "CreatePolicy",
            &[("PolicyName", "ro"), ("PolicyDocument", READ_ONLY)]
        )
        .await,
        is((409, "EntityAlreadyExists.Policy"))
    );
    assert_eq!(
        t.err(
            &root,
            "CreatePolicy",
            &[("PolicyName", "a_b"), ("PolicyDocument", READ_ONLY)]
        )
        .await,
        is((400, "InvalidParameter.PolicyName.InvalidChars"))
    );
    for doc in [
        "{",
        r#"{"Version":"2","Statement":[]}"#,
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"ecs:*","NotResource":"*"}]}"#,
    ] {
        assert_eq!(
            t.err(
                &root,
                "CreatePolicy",
                &[("PolicyName", "bad"), ("PolicyDocument", doc)]
            )
            .await,
            is((400, "MalformedPolicyDocument")),
            "{doc}"
        );
    }
    assert_eq!(
        t.err(
            &root,
            "CreatePolicy",
            &[("PolicyName", "big"), ("PolicyDocument", &"x".repeat(6145))]
        )
        .await,
        is((400, "InvalidParameter.PolicyDocument.Length"))
    );
    assert_eq!(
        t.err(
            &root,
            "CreatePolicy",
            &[
                ("PolicyName", "d"),
                ("PolicyDocument", READ_ONLY),
                ("Description", &"d".repeat(1025))
            ]
        )
        .await,
        is((400, "InvalidParameter.Description.Length"))
    );
    let got = t
        .ok(
            &root,
            "GetPolicy",
            &[("PolicyName", "ro"), ("PolicyType", "Custom")],
        )
        .await;
    assert_eq!(
        got["DefaultPolicyVersion"]["PolicyDocument"].as_str(),
        Some(READ_ONLY)
    );
    assert_eq!(got["Policy"]["Description"], "read");
    assert_eq!(
        t.err(
            &root,
            "GetPolicy",
            &[("PolicyName", "ro"), ("PolicyType", "System")]
        )
        .await,
        is((404, "EntityNotExist.Policy"))
    );
    assert_eq!(
        t.err(
            &root,
            "GetPolicy",
            &[("PolicyName", "ro"), ("PolicyType", "Mine")]
        )
        .await,
        is((400, "InvalidParameter.PolicyType"))
    );
    assert_eq!(
        t.err(&root, "GetPolicy", &[("PolicyName", "ro")]).await,
        is((400, "MissingParameter"))
    );
    let list = t
        .ok(&root, "ListPolicies", &[("PolicyType", "Custom")])
        .await;
    assert_eq!(list["Policies"]["Policy"][0]["PolicyName"], "ro");
    assert_eq!(list["IsTruncated"], false);
    let sys = t
        .ok(&root, "ListPolicies", &[("PolicyType", "System")])
        .await;
    assert_eq!(sys["Policies"]["Policy"], serde_json::json!([]));
    let attach = [
        ("PolicyName", "ro"),
        ("PolicyType", "Custom"),
        ("UserName", "dev"),
    ];
    t.ok(&root, "AttachPolicyToUser", &attach).await;
    assert_eq!(
        t.err(&root, "AttachPolicyToUser", &attach).await,
        is((409, "EntityAlreadyExists.User.Policy"))
    );
    assert_eq!(
        t.err(
            &root,
            "AttachPolicyToUser",
            &[
                ("PolicyName", "ro"),
                ("PolicyType", "Custom"),
                ("UserName", "ghost")
            ]
        )
        .await,
        is((404, "EntityNotExist.User"))
    );
    assert_eq!(
        t.err(
            &root,
            "AttachPolicyToUser",
            &[
                ("PolicyName", "nope"),
                ("PolicyType", "Custom"),
                ("UserName", "dev")
            ]
        )
        .await,
        is((404, "EntityNotExist.Policy"))
    );
    let attached = t
        .ok(&root, "ListPoliciesForUser", &[("UserName", "dev")])
        .await;
    assert_eq!(attached["Policies"]["Policy"][0]["PolicyName"], "ro");
    assert_eq!(
        t.err(&root, "ListPoliciesForUser", &[("UserName", "ghost")])
            .await,
        is((404, "EntityNotExist.User"))
    );
    assert_eq!(
        t.err(&root, "DeletePolicy", &[("PolicyName", "ro")]).await,
        is((409, "DeleteConflict.Policy.User"))
    );
    t.ok(&root, "DetachPolicyFromUser", &attach).await;
    assert_eq!(
        t.err(&root, "DetachPolicyFromUser", &attach).await,
        is((404, "EntityNotExist.User.Policy"))
    );
    t.ok(&root, "DeletePolicy", &[("PolicyName", "ro")]).await;
    assert_eq!(
        t.err(&root, "DeletePolicy", &[("PolicyName", "ro")]).await,
        is((404, "EntityNotExist.Policy"))
    );
}

#[tokio::test]
async fn ram_is_global_and_tenant_scoped() {
    let t = Ram::new().await;
    let a = t.account("team-a").await;
    let b = t.account("team-b").await;
    // Any RegionId is accepted and ignored (D3).
    t.ok(
        &a,
        "CreateUser",
        &[("UserName", "dev"), ("RegionId", "xx-nowhere")],
    )
    .await;
    t.ok(
        &a,
        "CreatePolicy",
        &[("PolicyName", "ro"), ("PolicyDocument", READ_ONLY)],
    )
    .await;
    assert_eq!(
        t.err(&b, "GetUser", &[("UserName", "dev")]).await,
        is((404, "EntityNotExist.User"))
    );
    assert_eq!(
        t.err(
            &b,
            "GetPolicy",
            &[("PolicyName", "ro"), ("PolicyType", "Custom")]
        )
        .await,
        is((404, "EntityNotExist.Policy"))
    );
    assert_eq!(
        t.err(&b, "CreateAccessKey", &[("UserName", "dev")]).await,
        is((404, "EntityNotExist.User"))
    );
    // An ECS action under RAM's version does not exist.
    assert_eq!(
        t.err(&a, "DescribeInstances", &[]).await,
        is((404, "InvalidAction.NotFound"))
    );
}
