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
