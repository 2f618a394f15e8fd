//! The identity rules both wire APIs share (`Engine::iam_*`): typed refusals, two keys per
//! principal, cascades as asked, and races — in one process (the credential lock) and
//! between two nodes sharing one database (the store's constraints) — lost cleanly with the
//! conflict, never as an unavailable store.

use nubis_core::PolicyGrammar;
use nubis_engine::{
    CredentialError, Dependents, Engine, IamError, KeyLookup, MAX_ACCESS_KEYS, NewAccount, Who,
};

const CAM_RO: &str =
    r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:Describe*","resource":"*"}]}"#;

async fn with_account(dir: &std::path::Path) -> Engine {
    let e = nubis_testkit::engine_in(dir, 0.0, Some(("AKIDboot", "boot-secret")), None).await;
    e.create_account(NewAccount {
        name: "team-a".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    e
}

#[tokio::test]
async fn refusals_are_typed() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_account(dir.path()).await;
    let u = e.iam_create_user("team-a", "dev").await.unwrap();
    assert!(matches!(
        e.iam_create_user("team-a", "dev").await,
        Err(IamError::UserExists(_))
    ));
    assert!(matches!(
        e.iam_create_user("team-a", "bad name").await,
        Err(IamError::Invalid { .. })
    ));
    assert!(matches!(
        e.iam_create_user("nope", "dev").await,
        Err(IamError::AccountNotFound(_))
    ));
    assert!(matches!(
        e.iam_user_by_id("team-a", 1),
        Err(IamError::UserNotFound(_))
    ));
    assert!(matches!(
        e.iam_create_policy("team-a", "p", PolicyGrammar::Cam, "{", "").await,
        Err(IamError::Document(d)) if d.kind() == "Syntax"
    ));
    assert!(matches!(
        e.iam_create_policy("team-a", "p", PolicyGrammar::Cam, CAM_RO, &"d".repeat(1025))
            .await,
        Err(IamError::Invalid {
            name: "description",
            ..
        })
    ));
    let p = e
        .iam_create_policy("team-a", "p", PolicyGrammar::Cam, CAM_RO, "read")
        .await
        .unwrap();
    assert_eq!(p.description, "read");
    assert!(matches!(
        e.iam_create_policy("team-a", "p", PolicyGrammar::Ram, CAM_RO, "")
            .await,
        Err(IamError::PolicyExists(_) | IamError::Document(_))
    ));
    // A policy of the other grammar does not exist for that cloud.
    assert!(matches!(
        e.iam_policy_by_id("team-a", p.id, Some(PolicyGrammar::Ram)),
        Err(IamError::PolicyNotFound(_))
    ));
    e.iam_set_attached("team-a", u.id, p.id, None, true)
        .await
        .unwrap();
    assert!(matches!(
        e.iam_set_attached("team-a", u.id, p.id, None, true).await,
        Err(IamError::AlreadyAttached { .. })
    ));
    assert!(matches!(
        e.iam_delete_policies("team-a", &[p.id], PolicyGrammar::Cam, Dependents::Refuse)
            .await,
        Err(IamError::PolicyAttached { count: 1, .. })
    ));
    assert!(matches!(
        e.iam_delete_user("team-a", u.id, Dependents::Refuse, Dependents::Refuse)
            .await,
        Err(IamError::UserHasPolicies { count: 1, .. })
    ));
    // The admin API's answers for the same refusals.
    assert!(matches!(
        CredentialError::from(IamError::UserExists("x".into())),
        CredentialError::Conflict(_)
    ));
    assert!(matches!(
        CredentialError::from(IamError::KeyNotFound("x".into())),
        CredentialError::NotFound(_)
    ));
}

#[tokio::test]
async fn two_keys_per_principal_but_not_for_the_operator() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_account(dir.path()).await;
    let u = e.iam_create_user("team-a", "dev").await.unwrap();
    for who in [Who::Root, Who::User(u.id)] {
        for _ in 0..MAX_ACCESS_KEYS {
            e.iam_create_key("team-a", who).await.unwrap();
        }
        assert!(matches!(
            e.iam_create_key("team-a", who).await,
            Err(IamError::KeyLimit { max: 2 })
        ));
    }
    // The admin API applies the same limit.
    assert!(matches!(
        e.create_access_key_for(Some("team-a"), Some("dev")).await,
        Err(CredentialError::Conflict(_))
    ));
    // The bootstrap admin account's root is the operator's: no limit.
    for _ in 0..3 {
        e.create_access_key().await.unwrap();
    }
    // A key is found only under its owner.
    let keys = e.iam_keys("team-a", Who::User(u.id)).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(matches!(
        e.iam_delete_key("team-a", Who::Root, &keys[0].id).await,
        Err(IamError::KeyNotFound(_))
    ));
    // Deleting the user with its keys (CAM's Force) removes them.
    assert!(matches!(
        e.iam_delete_user("team-a", u.id, Dependents::Refuse, Dependents::Remove)
            .await,
        Err(IamError::UserHasKeys { count: 2, .. })
    ));
    assert_eq!(
        e.iam_delete_user("team-a", u.id, Dependents::Remove, Dependents::Remove)
            .await
            .unwrap(),
        2
    );
    assert_eq!(e.lookup_access_key(&keys[0].id), KeyLookup::Unknown);
}

#[tokio::test]
async fn concurrent_creates_of_one_name_leave_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = with_account(dir.path()).await;
    let tries: Vec<_> = (0..8)
        .map(|_| {
            let e = e.clone();
            tokio::spawn(async move { e.iam_create_user("team-a", "dup").await })
        })
        .collect();
    let mut ok = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(IamError::UserExists(_)) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(ok, 1);
}

/// Two nodes on one database: the second has not seen the first's writes, so only the
/// store's constraints stop the clash — and they answer the domain conflict.
#[tokio::test]
async fn a_clash_with_another_node_is_a_conflict_not_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let a = with_account(dir.path()).await;
    let b = nubis_testkit::start_in(dir.path(), 0.0).await;
    a.iam_create_user("team-a", "dev").await.unwrap();
    assert!(matches!(
        b.iam_create_user("team-a", "dev").await,
        Err(IamError::UserExists(_))
    ));
    a.iam_create_policy("team-a", "p", PolicyGrammar::Cam, CAM_RO, "")
        .await
        .unwrap();
    assert!(matches!(
        b.iam_create_policy("team-a", "p", PolicyGrammar::Cam, CAM_RO, "")
            .await,
        Err(IamError::PolicyExists(_))
    ));
    a.create_account(NewAccount {
        name: "team-b".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    assert!(matches!(
        b.create_account(NewAccount {
            name: "team-b".into(),
            ..Default::default()
        })
        .await,
        Err(CredentialError::Conflict(_))
    ));
    // Nothing of the losing writes was kept: a restart sees one of each.
    drop((a, b));
    let c = nubis_testkit::start_in(dir.path(), 0.0).await;
    assert_eq!(c.iam_users("team-a").unwrap().len(), 1);
    assert_eq!(c.iam_policies("team-a", None).unwrap().len(), 1);
    assert_eq!(c.accounts().len(), 3);
}
