//! The SQLite store against a real database file.

use nubis_core::{Account, KeyPair};
use nubis_store::{SqliteStore, Store, Write};

fn kp(id: &str) -> KeyPair {
    KeyPair {
        id: id.into(),
        key_type: Default::default(),
        account: "a".into(),
        name: id.into(),
        project_id: 0,
        description: String::new(),
        public_key: "ssh-ed25519 AAAA".into(),
        created_at_ms: 1,
        user_id: None,
    }
}

#[tokio::test]
async fn writes_survive_reopen_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.commit(vec![
            Write::Account(Account {
                id: "a".into(),
                name: "a".into(),
                is_admin: false,
                ..Account::default()
            }),
            Write::KeyPair(kp("skey-1")),
        ])
        .await
        .unwrap();
        s.commit(vec![
            Write::KeyPair(kp("skey-2")),
            Write::DeleteKeyPair("skey-1".into()),
        ])
        .await
        .unwrap();
        s.ping().await.unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts.len(), 1);
    assert_eq!(
        snap.key_pairs
            .iter()
            .map(|k| k.id.as_str())
            .collect::<Vec<_>>(),
        ["skey-2"]
    );
}

#[tokio::test]
async fn concurrent_commits_are_grouped_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(SqliteStore::open(&dir.path().join("n.db")).unwrap());
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let s = s.clone();
            tokio::spawn(async move {
                s.commit(vec![Write::KeyPair(kp(&format!("skey-{n}")))])
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.load().await.unwrap().key_pairs.len(), 200);
}

/// Migration 2 (issue 11): user data lives in its own table, read on demand, and goes with
/// its instance.
#[tokio::test]
async fn user_data_round_trips_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    let id = uuid::Uuid::new_v4();
    {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.user_data(id).await.unwrap(), None);
        s.commit(vec![Write::UserData {
            instance: id,
            data: "IyEvYmluL3NoCg==".into(),
        }])
        .await
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(
        s.user_data(id).await.unwrap().as_deref(),
        Some("IyEvYmluL3NoCg==")
    );
    s.commit(vec![Write::DeleteUserData(id)]).await.unwrap();
    assert_eq!(s.user_data(id).await.unwrap(), None);
}

/// A database written before migration 0003 (accounts and keys without the tenancy columns
/// and fields) opens, keeps its records, and takes the new tables and unique numbers.
#[tokio::test]
async fn a_database_from_before_tenancy_is_migrated() {
    use nubis_core::{Attachment, PolicyGrammar, PolicyRecord, SubUser};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../migrations/0001_init.sql"))
            .unwrap();
        conn.execute_batch(include_str!("../migrations/0002_user_data.sql"))
            .unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY);
             INSERT INTO schema_version VALUES (1), (2);
             INSERT INTO accounts VALUES ('admin', '{\"id\":\"admin\",\"name\":\"admin\",\"is_admin\":true}');
             INSERT INTO access_keys VALUES ('AKIDold', 'admin', '{\"id\":\"AKIDold\",\"account\":\"admin\",\"sealed_secret\":\"x\"}');",
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts[0].tencent_owner_uin, 0);
    assert!(snap.accounts[0].is_admin);
    assert_eq!(snap.access_keys[0].user, None);
    let team = |id: &str, uin: u64| Account {
        id: id.into(),
        name: id.into(),
        tencent_owner_uin: uin,
        tencent_app_id: uin,
        aliyun_account_id: uin.to_string(),
        ..Account::default()
    };
    s.commit(vec![
        Write::Account(team("a", 7)),
        Write::SubUser(SubUser {
            id: 100000000001,
            account: "a".into(),
            name: "dev".into(),
            created_at_ms: 1,
        }),
        Write::Policy(PolicyRecord {
            id: 10000001,
            account: "a".into(),
            name: "p".into(),
            grammar: PolicyGrammar::Cam,
            document: "{}".into(),
            description: String::new(),
            created_at_ms: 1,
        }),
        Write::Attach(Attachment {
            user: 100000000001,
            policy: 10000001,
        }),
    ])
    .await
    .unwrap();
    // The database keeps the numbers unique, whatever the memory of one node thinks.
    assert!(matches!(
        s.commit(vec![Write::Account(team("b", 7))]).await,
        Err(nubis_store::StoreError::Conflict(_))
    ));
    // And a sub-user name per account.
    let dup = SubUser {
        id: 100000000002,
        account: "a".into(),
        name: "dev".into(),
        created_at_ms: 1,
    };
    assert!(matches!(
        s.commit(vec![Write::SubUser(dup)]).await,
        Err(nubis_store::StoreError::Conflict(_))
    ));
    let snap = s.load().await.unwrap();
    assert_eq!(snap.accounts.len(), 2);
    assert_eq!(snap.sub_users.len(), 1);
    assert_eq!(snap.policies[0].name, "p");
    assert_eq!(
        snap.attachments,
        [Attachment {
            user: 100000000001,
            policy: 10000001
        }]
    );
    s.commit(vec![
        Write::Detach(Attachment {
            user: 100000000001,
            policy: 10000001,
        }),
        Write::DeletePolicy(10000001),
        Write::DeleteSubUser(100000000001),
        Write::DeleteAccount("a".into()),
    ])
    .await
    .unwrap();
    let snap = s.load().await.unwrap();
    assert_eq!(
        (
            snap.accounts.len(),
            snap.sub_users.len(),
            snap.policies.len(),
            snap.attachments.len()
        ),
        (1, 0, 0, 0)
    );
}

fn event(id: &str, account: &str, time_ms: i64, action: &str) -> nubis_core::audit::AuditEvent {
    nubis_core::audit::AuditEvent {
        id: id.into(),
        time_ms,
        account: account.into(),
        user: "u".into(),
        sub_user: (account == "b").then_some(7),
        is_admin: false,
        role: None,
        credential: format!("AKID{account}"),
        cloud: "tencent".into(),
        service: "cvm".into(),
        version: "2017-03-12".into(),
        action: action.into(),
        read_only: Some(action.starts_with("Describe")),
        region: None,
        resources: vec![format!("ins-{id}")],
        source_ip: "127.0.0.1".into(),
        user_agent: "ua".into(),
        request_id: format!("req-{id}"),
        error_code: (action == "RebootInstances")
            .then(|| "AuthFailure.UnauthorizedOperation".into()),
        error_message: None,
        status: 200,
        parameters: "{}".into(),
    }
}

/// Every event of `account` (any time, newest first, 50 at most) that passes `filters`.
fn audit_query(
    account: &str,
    filters: Vec<nubis_core::audit::AuditFilter>,
) -> nubis_core::audit::AuditQuery {
    nubis_core::audit::AuditQuery {
        account: Some(account.into()),
        since_ms: 0,
        until_ms: i64::MAX,
        filters,
        after: None,
        limit: 50,
        oldest_first: false,
    }
}

fn ids(v: Vec<nubis_core::audit::AuditEvent>) -> Vec<String> {
    v.into_iter().map(|e| e.id).collect()
}

#[tokio::test]
async fn audit_lookups_filter_page_and_sweep() {
    use nubis_core::audit::{AuditCursor, AuditFilter};
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("n.db")).unwrap();
    let mut writes = Vec::new();
    for i in 0..10i64 {
        let action = if i % 2 == 0 {
            "DescribeInstances"
        } else {
            "RebootInstances"
        };
        writes.push(Write::AuditEvent(Box::new(event(
            &format!("e{i:02}"),
            "a",
            1000 + i,
            action,
        ))));
    }
    writes.push(Write::AuditEvent(Box::new(event(
        "x",
        "b",
        1005,
        "RebootInstances",
    ))));
    s.commit(writes).await.unwrap();
    let q = |filters| audit_query("a", filters);
    // Tenancy: the account's own events only, newest first.
    let all = ids(s.audit_events(q(vec![])).await.unwrap());
    assert_eq!(all.len(), 10);
    assert_eq!(all[0], "e09");
    assert!(!all.contains(&"x".to_string()));
    // Filters are AND-ed.
    let got = ids(s
        .audit_events(q(vec![
            AuditFilter::Action("RebootInstances".into()),
            AuditFilter::Resource("ins-e03".into()),
        ]))
        .await
        .unwrap());
    assert_eq!(got, ["e03"]);
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::RequestId("req-e04".into())]))
            .await
            .unwrap()),
        ["e04"]
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ErrorCode(String::new())]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ErrorCode(
                "AuthFailure.UnauthorizedOperation".into()
            )]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ReadOnly(true)]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Credential("AKIDa".into())]))
            .await
            .unwrap())
        .len(),
        10
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Principal("root".into())]))
            .await
            .unwrap())
        .len(),
        10
    );
    let mut other = q(vec![AuditFilter::Principal("7".into())]);
    other.account = Some("b".into());
    assert_eq!(ids(s.audit_events(other).await.unwrap()), ["x"]);
    assert_eq!(
        ids(s
            .audit_events(q(vec![
                AuditFilter::Cloud("tencent".into()),
                AuditFilter::ActionIn(vec!["RebootInstances".into(), "X".into()])
            ]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::ActionNotIn(vec![
                "RebootInstances".into()
            ])]))
            .await
            .unwrap())
        .len(),
        5
    );
    assert_eq!(
        ids(s
            .audit_events(q(vec![AuditFilter::Cloud("aliyun".into())]))
            .await
            .unwrap())
        .len(),
        0
    );
    // The window is inclusive.
    let mut window = q(vec![]);
    window.since_ms = 1002;
    window.until_ms = 1004;
    assert_eq!(
        ids(s.audit_events(window).await.unwrap()),
        ["e04", "e03", "e02"]
    );
    // Pages: limit + 1 rows, then from the cursor; both directions.
    let mut page = q(vec![]);
    page.limit = 3;
    let first = s.audit_events(page.clone()).await.unwrap();
    assert_eq!(first.len(), 4);
    page.after = Some(AuditCursor {
        time_ms: first[2].time_ms,
        id: first[2].id.clone(),
    });
    assert_eq!(
        ids(s.audit_events(page.clone()).await.unwrap()),
        ["e06", "e05", "e04", "e03"]
    );
    page.oldest_first = true;
    page.after = Some(AuditCursor {
        time_ms: 1001,
        id: "e01".into(),
    });
    assert_eq!(
        ids(s.audit_events(page).await.unwrap()),
        ["e02", "e03", "e04", "e05"]
    );
    // The total of a query counts every match, whatever its page and cursor.
    let mut paged = q(vec![AuditFilter::Action("RebootInstances".into())]);
    paged.limit = 2;
    paged.after = Some(AuditCursor {
        time_ms: 1009,
        id: "e09".into(),
    });
    assert_eq!(s.count_audit_events(paged).await.unwrap(), 5);
    assert_eq!(s.count_audit_events(q(vec![])).await.unwrap(), 10);
    let mut none = q(vec![AuditFilter::Cloud("aliyun".into())]);
    none.account = None;
    assert_eq!(s.count_audit_events(none).await.unwrap(), 0);
    // Every account's events for the admin.
    let mut admin = q(vec![]);
    admin.account = None;
    assert_eq!(s.audit_events(admin.clone()).await.unwrap().len(), 11);
    // Retention: only events older than the cut go, in bounded batches.
    assert_eq!(s.sweep_audit(1003, 2).await.unwrap(), 2);
    assert_eq!(s.sweep_audit(1003, 100).await.unwrap(), 1);
    assert_eq!(s.sweep_audit(1003, 100).await.unwrap(), 0);
    let left = ids(s.audit_events(admin).await.unwrap());
    assert_eq!(left.len(), 8);
    assert!(left.iter().all(|id| id.as_str() >= "e03" || id == "x"));
}

/// `Principal("root")` selects the account's own calls: not a sub-user's, nor a role
/// session's (which has no sub-user either).
#[tokio::test]
async fn the_root_filter_leaves_out_role_sessions() {
    use nubis_core::audit::{AuditFilter, AuditRole};
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("n.db")).unwrap();
    let mut role = event("r", "c", 1000, "DescribeInstances");
    role.role = Some(AuditRole {
        id: 4,
        name: "ops".into(),
        session: "s1".into(),
    });
    let root = event("o", "c", 1001, "DescribeInstances");
    s.commit(vec![
        Write::AuditEvent(Box::new(role)),
        Write::AuditEvent(Box::new(root)),
    ])
    .await
    .unwrap();
    let q = |filters| audit_query("c", filters);
    assert_eq!(ids(s.audit_events(q(vec![])).await.unwrap()), ["o", "r"]);
    let by_root = q(vec![AuditFilter::Principal("root".into())]);
    assert_eq!(ids(s.audit_events(by_root).await.unwrap()), ["o"]);
}
