//! Accounts, sub-users, policies and attachments over a real SQLite store: validated,
//! unique, durable across restarts (policies recompiled on load), and deletions refused
//! while something still depends on them.

use nubis_core::{KeyOrigin, PolicyGrammar};
use nubis_engine::{CredentialError, Engine, KeyLookup, NewAccount};
use nubis_identity::{Decision, RequestContext};
use std::path::Path;

const READ_ONLY: &str =
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:Describe*","resource":"*"}]}"#;

async fn start(dir: &Path) -> Engine {
    nubis_testkit::engine_in(dir, 0.0, Some(("AKIDboot", "boot-secret")), None).await
}

fn account(name: &str) -> NewAccount {
    NewAccount {
        name: name.into(),
        ..Default::default()
    }
}

fn is_invalid<T: std::fmt::Debug>(r: Result<T, CredentialError>, what: &str) {
    assert!(
        matches!(r, Err(CredentialError::Invalid { .. })),
        "{what}: {r:?}"
    );
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, CredentialError>, what: &str) {
    assert!(
        matches!(r, Err(CredentialError::Conflict(_))),
        "{what}: {r:?}"
    );
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, CredentialError>, what: &str) {
    assert!(
        matches!(r, Err(CredentialError::NotFound(_))),
        "{what}: {r:?}"
    );
}

fn allowed(e: &Engine, p: &nubis_core::Principal, action: &str) -> bool {
    let now = time::OffsetDateTime::now_utc();
    matches!(
        e.authorize(p, action, "*", RequestContext::at(now)),
        Decision::Allow(_)
    )
}

#[tokio::test]
async fn accounts_get_unique_numbers_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    let a = e.create_account(account("team-a")).await.unwrap();
    let b = e
        .create_account(NewAccount {
            name: "team-b".into(),
            tencent_owner_uin: Some(100000000042),
            tencent_app_id: Some(1250000042),
            aliyun_account_id: Some("1234567890123456".into()),
        })
        .await
        .unwrap();
    assert_ne!(a.tencent_owner_uin, b.tencent_owner_uin);
    assert!(a.tencent_owner_uin >= 100_000_000_000 && a.tencent_app_id > 0);
    assert_eq!(a.aliyun_account_id.len(), 16);
    assert_eq!(b.tencent_owner_uin, 100000000042);
    for name in ["", "Team", "-x", "a b", &"x".repeat(65), "a/b"] {
        is_invalid(e.create_account(account(name)).await, name);
    }
    is_conflict(e.create_account(account("team-a")).await, "same name");
    is_conflict(e.create_account(account("admin")).await, "the admin's name");
    for (uin, app, ali) in [
        (Some(100000000042), None, None),
        (None, Some(1250000042), None),
        (None, None, Some("1234567890123456")),
    ] {
        let r = e
            .create_account(NewAccount {
                name: "team-c".into(),
                tencent_owner_uin: uin,
                tencent_app_id: app,
                aliyun_account_id: ali.map(str::to_string),
            })
            .await;
        is_conflict(r, "a number of another account");
    }
    for (uin, ali) in [(Some(0), None), (None, Some("0123")), (None, Some("12a"))] {
        let r = e
            .create_account(NewAccount {
                name: "team-c".into(),
                tencent_owner_uin: uin,
                aliyun_account_id: ali.map(str::to_string),
                ..Default::default()
            })
            .await;
        is_invalid(r, "a bad number");
    }
    // Durable, numbers included.
    drop(e);
    let e = start(dir.path()).await;
    assert_eq!(e.account("team-b"), Some(b));
    assert_eq!(e.accounts().len(), 3);
}

#[tokio::test]
async fn sub_users_policies_and_keys_survive_a_restart_and_gate_actions() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    e.create_account(account("team-a")).await.unwrap();
    let dev = e.create_sub_user("team-a", "dev.ops@x_1-2").await.unwrap();
    for name in ["", "a b", "a+b", &"u".repeat(65)] {
        is_invalid(e.create_sub_user("team-a", name).await, name);
    }
    is_conflict(
        e.create_sub_user("team-a", "dev.ops@x_1-2").await,
        "same user",
    );
    is_not_found(e.create_sub_user("nobody", "dev").await, "no account");
    // The same name in another account is another user.
    e.create_account(account("team-b")).await.unwrap();
    e.create_sub_user("team-b", "dev.ops@x_1-2").await.unwrap();

    // Policies: compiled on write, refused with the parser's error.
    let r = e
        .create_policy("team-a", "bad", PolicyGrammar::Cam, r#"{"version":"2.0"}"#)
        .await;
    match r {
        Err(CredentialError::Invalid { name, reason }) => {
            assert_eq!(name, "document");
            assert!(reason.contains("statement"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    is_invalid(
        e.create_policy("team-a", "cam", PolicyGrammar::Ram, READ_ONLY)
            .await,
        "a CAM document under the RAM grammar",
    );
    is_invalid(
        e.create_policy("team-a", "a.b", PolicyGrammar::Ram, READ_ONLY)
            .await,
        "RAM names take no dots",
    );
    e.create_policy("team-a", "read-only", PolicyGrammar::Cam, READ_ONLY)
        .await
        .unwrap();
    is_conflict(
        e.create_policy("team-a", "read-only", PolicyGrammar::Cam, READ_ONLY)
            .await,
        "same policy",
    );
    is_not_found(
        e.set_attached("team-b", "dev.ops@x_1-2", "read-only", true)
            .await,
        "another account's policy",
    );
    e.set_attached("team-a", "dev.ops@x_1-2", "read-only", true)
        .await
        .unwrap();
    is_conflict(
        e.set_attached("team-a", "dev.ops@x_1-2", "read-only", true)
            .await,
        "attached twice",
    );

    // Keys: the root's and the sub-user's resolve to their principals.
    let (root_key, _) = e.create_access_key_for(Some("team-a"), None).await.unwrap();
    let (dev_key, dev_secret) = e
        .create_access_key_for(Some("team-a"), Some("dev.ops@x_1-2"))
        .await
        .unwrap();
    assert_eq!(dev_key.user, Some(dev.id));
    assert_eq!(dev_key.origin, KeyOrigin::AdminApi);
    is_not_found(
        e.create_access_key_for(Some("team-a"), Some("nobody"))
            .await,
        "no such sub-user",
    );
    is_not_found(
        e.create_access_key_for(Some("nope"), None).await,
        "no account",
    );

    drop(e);
    let e = start(dir.path()).await;
    let (root, _) = e.access_key(&root_key.id).unwrap();
    assert_eq!(
        (root.account.as_str(), root.sub_user, root.is_admin),
        ("team-a", None, false)
    );
    let KeyLookup::Active(p, secret) = e.lookup_access_key(&dev_key.id) else {
        panic!("the sub-user's key is durable");
    };
    assert_eq!(secret, dev_secret);
    assert_eq!(
        (p.account.as_str(), p.user.as_str(), p.sub_user),
        ("team-a", "dev.ops@x_1-2", Some(dev.id))
    );
    assert!(!p.is_admin);
    // The policy was recompiled on load and still gates.
    assert!(allowed(&e, &p, "cvm:DescribeInstances"));
    assert!(!allowed(&e, &p, "cvm:RebootInstances"));
    assert!(allowed(&e, &root, "cvm:RebootInstances"));
    assert_eq!(
        e.attached_policies("team-a", "dev.ops@x_1-2").unwrap()[0].name,
        "read-only"
    );

    // Deletions refused while something depends on them.
    is_conflict(e.delete_policy("team-a", "read-only").await, "attached");
    is_conflict(
        e.delete_sub_user("team-a", "dev.ops@x_1-2").await,
        "has keys",
    );
    is_conflict(e.delete_account("team-a").await, "owns keys");
    is_conflict(e.delete_account("admin").await, "bootstrap account");
    e.delete_access_key(&dev_key.id).await.unwrap();
    e.delete_sub_user("team-a", "dev.ops@x_1-2").await.unwrap();
    assert!(
        e.policy_users(&e.policy("team-a", "read-only").unwrap())
            .is_empty()
    );
    e.delete_access_key(&root_key.id).await.unwrap();
    let kp = e.create_key_pair(&root, "k1", 0, None).await.unwrap();
    is_conflict(e.delete_account("team-a").await, "owns a key pair");
    e.delete_key_pairs(&root, &[kp.key_pair.id], true)
        .await
        .unwrap();
    e.delete_account("team-a").await.unwrap();
    is_not_found(e.policies("team-a"), "gone with its account");
    drop(e);
    let e = start(dir.path()).await;
    assert!(e.account("team-a").is_none());
    assert_eq!(e.sub_users("team-b").unwrap().len(), 1);
    // The name is free again, its policies gone.
    e.create_account(account("team-a")).await.unwrap();
    assert!(e.policies("team-a").unwrap().is_empty());
}
