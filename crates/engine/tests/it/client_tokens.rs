//! ClientToken idempotency across nodes (client_tokens.rs, docs/postgres.md "Cluster-wide
//! state"): two engines, each on its own PgStore, on one fresh PostgreSQL database (made on
//! the server named by `NUBIS_TEST_DATABASE_URL`, dropped at the end; an unreachable server
//! fails the test, never skipped). SQLite keeps its in-memory path and writes no claim.

use nubis_auth::secret::SecretBox;
use nubis_core::{CreateSpec, DomainError};
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::{PgStore, SqliteStore, Store};
use nubis_testkit::pg::PgDb;
use nubis_testkit::{KEY_ID, SECRET, admin, linux_spec};
use std::sync::Arc;

/// A node: an engine on its own PgStore over `url`, bootstrapped like the server.
async fn node(url: &str) -> (Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(url).await.unwrap());
    let e = Engine::start(
        store.clone(),
        Arc::new(SimDriver::new(0.0)),
        SecretBox::from_key([7; 32]),
    )
    .await
    .unwrap();
    e.bootstrap(Some((KEY_ID.into(), SECRET.into())), None)
        .await
        .unwrap();
    (e, store)
}

fn with_token(token: &str, count: u32) -> CreateSpec {
    CreateSpec {
        client_token: Some(token.into()),
        count,
        ..linux_spec()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_many_nodes_one_set_of_instances() {
    let db = PgDb::create().await;
    let (a, store) = node(&db.url).await;
    let (b, _) = node(&db.url).await;
    assert!(a.cluster().is_some() && b.cluster().is_some());
    let creates: Vec<_> = (0..20)
        .map(|i| {
            let e = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                e.create(&admin(), &format!("r{i}"), with_token("tok", 2), false)
                    .await
                    .map(|v| v.iter().map(|i| i.uuid).collect::<Vec<_>>())
            })
        })
        .collect();
    let mut answers = Vec::new();
    for c in creates {
        answers.push(c.await.unwrap().unwrap());
    }
    assert_eq!(answers[0].len(), 2);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // Exactly those two instances exist in the store.
    let snap = store.load().await.unwrap();
    let mut stored: Vec<_> = snap
        .instances
        .iter()
        .filter(|i| i.client_token.as_deref() == Some("tok"))
        .map(|i| i.uuid)
        .collect();
    stored.sort();
    let mut want = answers[0].clone();
    want.sort();
    assert_eq!(stored, want);
    // The claim names them.
    let claim = store
        .cluster()
        .unwrap()
        .client_token(&admin().account, "tok")
        .await
        .unwrap()
        .unwrap();
    let mut recorded: Vec<_> = claim.instances.unwrap().iter().map(|i| i.uuid).collect();
    recorded.sort();
    assert_eq!(recorded, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_or_a_failed_create_leaves_no_claim() {
    let db = PgDb::create().await;
    let (a, store) = node(&db.url).await;
    let state = store.cluster().unwrap();
    let acct = admin().account;
    assert_eq!(
        a.create(&admin(), "r1", with_token("dry", 1), true)
            .await
            .unwrap_err(),
        DomainError::DryRunOk
    );
    assert!(state.client_token(&acct, "dry").await.unwrap().is_none());
    // An invalid spec fails after the claim: the claim goes with it (in the background).
    let bad = CreateSpec {
        image_id: "img-nope".into(),
        ..with_token("bad", 1)
    };
    assert!(a.create(&admin(), "r2", bad, false).await.is_err());
    let mut gone = false;
    for _ in 0..200 {
        if state.client_token(&acct, "bad").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(gone, "the failed create's claim was not released");
    // The token then launches normally.
    let made = a
        .create(&admin(), "r3", with_token("bad", 1), false)
        .await
        .unwrap();
    assert_eq!(made.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_tokens_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("n.db")).unwrap());
    let e = Engine::start(
        store.clone(),
        Arc::new(SimDriver::new(0.0)),
        SecretBox::from_key([7; 32]),
    )
    .await
    .unwrap();
    e.bootstrap(Some((KEY_ID.into(), SECRET.into())), None)
        .await
        .unwrap();
    assert!(e.cluster().is_none());
    let first = e
        .create(&admin(), "r1", with_token("t", 1), false)
        .await
        .unwrap();
    let again = e
        .create(&admin(), "r2", with_token("t", 1), false)
        .await
        .unwrap();
    assert_eq!(first[0].uuid, again[0].uuid);
    let state = store.cluster().unwrap();
    assert!(
        state
            .client_token(&admin().account, "t")
            .await
            .unwrap()
            .is_none()
    );
}
