//! RAM 2015-05-01 over the Alibaba listener, in process: every refusal with RAM's code,
//! status and message, the rules the engine keeps (two keys per principal, unique names, no
//! cascading deletes), paging, and tenancy.

use nubis_api_aliyun::{AliyunApi, ram};
use nubis_engine::{Engine, KeyLookup};
use nubis_testkit::aliyun::{json as body, rpc};
use nubis_testkit::strs;
use serde_json::Value;

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
        let (api, engine, _dir) = nubis_testkit::aliyun::api(false).await;
        Self { api, engine, _dir }
    }

    async fn account(&self, name: &str) -> Caller {
        let (id, secret) = nubis_testkit::account(&self.engine, name).await;
        Caller { id, secret }
    }

    async fn call(&self, c: &Caller, action: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let reply = rpc(&self.api, (&c.id, &c.secret), ram::VERSION, action, params).await;
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

    /// The caller's read-only RAM policy `ro`.
    async fn read_only_policy(&self, c: &Caller) {
        let doc = [("PolicyName", "ro"), ("PolicyDocument", READ_ONLY)];
        self.ok(c, "CreatePolicy", &doc).await;
    }

    /// Each call is refused with its status and code, in turn.
    async fn refuses(&self, c: &Caller, calls: &[Refusal<'_>]) {
        for (action, params, status, code) in calls {
            let got = self.err(c, action, params).await;
            assert_eq!(got, is((*status, code)), "{action} {params:?}");
        }
    }
}

/// A call and how it is refused: action, parameters, status, code.
type Refusal<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);

fn is(want: (u16, &str)) -> (u16, String) {
    (want.0, want.1.to_string())
}

#[test]
fn catalogue_matches_the_registry() {
    nubis_testkit::check_served(&nubis_api_aliyun::SERVICES, &[&ram::REGISTRY]);
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("CreateUser", &[("UserName", "dev")], 409, "EntityAlreadyExists.User"),
        ("CreateUser", &[("UserName", "a b")], 400, "InvalidParameter.UserName.InvalidChars"),
        ("CreateUser", &[("UserName", &"x".repeat(65))], 400, "InvalidParameter.UserName.Length"),
        ("CreateUser", &[("UserName", "y"), ("DisplayName", &"d".repeat(129))], 400, "InvalidParameter.DisplayName.Length"),
        ("CreateUser", &[("UserName", "y"), ("Email", "nope")], 400, "InvalidParameter.Email.Format"),
        ("CreateUser", &[("UserName", "y"), ("MobilePhone", "12345")], 400, "InvalidParameter.MobilePhone.Format"),
        ("CreateUser", &[], 400, "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
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
    assert_eq!(strs(&page1["Users"]["User"], "UserName"), ["dev", "u1"]);
    let marker = page1["Marker"].as_str().unwrap().to_string();
    let page2 = t
        .ok(
            &root,
            "ListUsers",
            &[("MaxItems", "2"), ("Marker", &marker)],
        )
        .await;
    assert_eq!(strs(&page2["Users"]["User"], "UserName"), ["u2", "u3"]);
    assert_eq!(page2["IsTruncated"], false);
    assert!(page2.get("Marker").is_none());
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("ListUsers", &[("MaxItems", "0")], 400, "InvalidParameter.MaxItems"),
        ("ListUsers", &[("MaxItems", "1001")], 400, "InvalidParameter.MaxItems"),
    ];
    t.refuses(&root, refusals).await;
    // Never cascades: keys, then policies, must go first.
    let key = t.ok(&root, "CreateAccessKey", &[("UserName", "dev")]).await;
    let key = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    t.read_only_policy(&root).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("CreateAccessKey", &[("UserName", "dev")], 409, "LimitExceeded.User.AccessKey"),
        ("CreateAccessKey", &[("UserName", "ghost")], 404, "EntityNotExist.User"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("UpdateAccessKey", &[("UserAccessKeyId", &k1), ("Status", "Off"), ("UserName", "dev")], 400, "InvalidParameter.Status"),
        ("UpdateAccessKey", &[("UserAccessKeyId", &k1), ("UserName", "dev")], 400, "MissingParameter"),
        ("DeleteAccessKey", &[("UserAccessKeyId", &k1), ("UserName", "other")], 404, "EntityNotExist.User.AccessKey"),
        ("DeleteAccessKey", &[("UserAccessKeyId", &k1)], 404, "EntityNotExist.User.AccessKey"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("CreatePolicy", &[("PolicyName", "ro"), ("PolicyDocument", READ_ONLY)], 409, "EntityAlreadyExists.Policy"),
        ("CreatePolicy", &[("PolicyName", "a_b"), ("PolicyDocument", READ_ONLY)], 400, "InvalidParameter.PolicyName.InvalidChars"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("CreatePolicy", &[("PolicyName", "big"), ("PolicyDocument", &"x".repeat(6145))], 400, "InvalidParameter.PolicyDocument.Length"),
        ("CreatePolicy", &[("PolicyName", "d"), ("PolicyDocument", READ_ONLY), ("Description", &"d".repeat(1025))], 400, "InvalidParameter.Description.Length"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("GetPolicy", &[("PolicyName", "ro"), ("PolicyType", "System")], 404, "EntityNotExist.Policy"),
        ("GetPolicy", &[("PolicyName", "ro"), ("PolicyType", "Mine")], 400, "InvalidParameter.PolicyType"),
        ("GetPolicy", &[("PolicyName", "ro")], 400, "MissingParameter"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("AttachPolicyToUser", &attach, 409, "EntityAlreadyExists.User.Policy"),
        ("AttachPolicyToUser", &[("PolicyName", "ro"), ("PolicyType", "Custom"), ("UserName", "ghost")], 404, "EntityNotExist.User"),
        ("AttachPolicyToUser", &[("PolicyName", "nope"), ("PolicyType", "Custom"), ("UserName", "dev")], 404, "EntityNotExist.Policy"),
    ];
    t.refuses(&root, refusals).await;
    let attached = t
        .ok(&root, "ListPoliciesForUser", &[("UserName", "dev")])
        .await;
    assert_eq!(attached["Policies"]["Policy"][0]["PolicyName"], "ro");
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("ListPoliciesForUser", &[("UserName", "ghost")], 404, "EntityNotExist.User"),
        ("DeletePolicy", &[("PolicyName", "ro")], 409, "DeleteConflict.Policy.User"),
    ];
    t.refuses(&root, refusals).await;
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
    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("GetUser", &[("UserName", "dev")], 404, "EntityNotExist.User"),
        ("GetPolicy", &[("PolicyName", "ro"), ("PolicyType", "Custom")], 404, "EntityNotExist.Policy"),
        ("CreateAccessKey", &[("UserName", "dev")], 404, "EntityNotExist.User"),
    ];
    t.refuses(&b, refusals).await;
    // An ECS action under RAM's version does not exist.
    assert_eq!(
        t.err(&a, "DescribeInstances", &[]).await,
        is((404, "InvalidAction.NotFound"))
    );
}

#[tokio::test]
async fn roles_are_listed_updated_and_deleted_only_without_policies() {
    let t = Ram::new().await;
    let root = t.account("team-r").await;
    let trust = r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"RAM":["acs:ram::1:root"]}}]}"#;
    for name in ["r-a", "r-b", "r-c"] {
        t.ok(
            &root,
            "CreateRole",
            &[("RoleName", name), ("AssumeRolePolicyDocument", trust)],
        )
        .await;
    }
    t.read_only_policy(&root).await;
    let attach = [
        ("PolicyType", "Custom"),
        ("PolicyName", "ro"),
        ("RoleName", "r-a"),
    ];
    t.ok(&root, "AttachPolicyToRole", &attach).await;

    let v = t.ok(&root, "ListRoles", &[("MaxItems", "2")]).await;
    let names = |v: &Value| strs(&v["Roles"]["Role"], "RoleName").join(",");
    assert_eq!(
        (names(&v), v["IsTruncated"].as_bool(), v["Marker"].as_str()),
        ("r-a,r-b".to_string(), Some(true), Some("r-c"))
    );
    let v = t
        .ok(
            &root,
            "UpdateRole",
            &[("RoleName", "r-b"), ("NewDescription", "d")],
        )
        .await;
    assert_eq!(v["Role"]["Description"], "d");
    let listed = t
        .ok(&root, "ListPoliciesForRole", &[("RoleName", "r-a")])
        .await;
    assert_eq!(listed["Policies"]["Policy"][0]["PolicyName"], "ro");

    #[rustfmt::skip]
    let refusals: &[Refusal] = &[
        ("DeleteRole", &[("RoleName", "r-a")], 409, "DeleteConflict.Role.Policy"),
        ("DeleteRole", &[("RoleName", "nope")], 404, "EntityNotExist.Role"),
        ("DeleteRole", &[("RoleName", "a b")], 400, "InvalidParameter.RoleName.InvalidChars"),
        ("DeleteRole", &[], 400, "MissingParameter"),
        ("ListRoles", &[("MaxItems", "0")], 400, "InvalidParameter.MaxItems"),
        ("UpdateRole", &[("RoleName", "r-b"), ("NewMaxSessionDuration", "43201")], 400, "InvalidParameter.NewMaxSessionDuration"),
        ("UpdateRole", &[("RoleName", "r-b"), ("NewAssumeRolePolicyDocument", "[]")], 400, "MalformedPolicyDocument"),
        ("DetachPolicyFromRole", &[("PolicyType", "Custom"), ("PolicyName", "ro"), ("RoleName", "r-b")], 404, "EntityNotExist.Role.Policy"),
        ("DetachPolicyFromRole", &[("PolicyType", "Custom"), ("PolicyName", "nope"), ("RoleName", "r-a")], 404, "EntityNotExist.Policy"),
        ("DetachPolicyFromRole", &[("PolicyType", "Mine"), ("PolicyName", "ro"), ("RoleName", "r-a")], 400, "InvalidParameter.PolicyType"),
    ];
    t.refuses(&root, refusals).await;
    // A refused change changed nothing.
    let v = t.ok(&root, "GetRole", &[("RoleName", "r-b")]).await;
    assert_eq!(
        (&v["Role"]["Description"], &v["Role"]["MaxSessionDuration"]),
        (&Value::from("d"), &Value::from(3600))
    );
    t.ok(&root, "DetachPolicyFromRole", &attach).await;
    t.ok(&root, "DeleteRole", &[("RoleName", "r-a")]).await;
    let v = t.ok(&root, "ListRoles", &[]).await;
    assert_eq!(names(&v), "r-b,r-c");
    // Another account sees none of them.
    let other = t.account("team-s").await;
    let refused = t.err(&other, "DeleteRole", &[("RoleName", "r-b")]).await;
    assert_eq!(refused, is((404, "EntityNotExist.Role")));
}
