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
