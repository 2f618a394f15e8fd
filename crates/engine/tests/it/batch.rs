//! Batch acceptance as data: all or nothing leaves nothing behind on one refusal; SuccessFirst
//! accepts the admissible instances in one commit and reports each refusal; attribute changes
//! ride in the batch's commit.

use nubis_auth::secret::SecretBox;
use nubis_core::{
    Command, CreateSpec, DomainError, Instance, InstanceState, OpState, StopMode, WhenRunning,
};
use nubis_driver::sim::{SimDriver, Timings};
use nubis_engine::{AttrChange, Batch, BatchMode, Engine};
use nubis_store::{SqliteStore, Store, StoreError};
use nubis_testkit::hooked::{CommitHook, Hooked};
use nubis_testkit::{TempDir, admin, linux_spec as spec};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// Counts the store's commits.
struct Counting(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl CommitHook for Counting {
    async fn before_commit(&self) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An engine over a commit-counting SQLite store in its own directory, and its instances.
struct Fleet {
    e: Engine,
    commits: Arc<AtomicUsize>,
    ids: Vec<Uuid>,
    _dir: TempDir,
}

impl Fleet {
    /// The commits so far.
    fn commits(&self) -> usize {
        self.commits.load(Ordering::SeqCst)
    }

    /// `batch`, submitted by the admin as request `request_id`.
    async fn submit(
        &self,
        request_id: &str,
        batch: Batch<'_>,
    ) -> Result<Vec<Result<(), DomainError>>, DomainError> {
        self.e.submit_batch(&admin(), request_id, batch).await
    }
}

/// An engine whose instances launch at once and whose stops never end (within a test), with
/// `n` running instances whose creation is on disk.
async fn fleet(n: u32) -> Fleet {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(AtomicUsize::new(0));
    let store: Arc<dyn Store> = Arc::new(Hooked {
        inner: Arc::new(SqliteStore::open(&dir.path().join("nubis.db")).unwrap()),
        hook: Counting(commits.clone()),
    });
    let secrets = SecretBox::load_or_create(dir.path().join("master.key")).unwrap();
    let timings = Timings {
        provision: 0.0,
        boot: 0.0,
        soft_stop: 1000.0,
        hard_stop: 1000.0,
        soft_stop_timeout: 1000.0,
        guest_change: 0.0,
        ..Timings::default()
    };
    let e = Engine::start(
        store,
        Arc::new(SimDriver::with_timings(1.0, timings)),
        secrets,
    )
    .await
    .unwrap();
    e.bootstrap(Some(("AKIDtest".into(), "secret".into())), None)
        .await
        .unwrap();
    let ids: Vec<Uuid> = e
        .create(
            &admin(),
            "req-create",
            CreateSpec { count: n, ..spec() },
            false,
        )
        .await
        .unwrap()
        .iter()
        .map(|i| i.uuid)
        .collect();
    for _ in 0..3000 {
        let ops = e.admin_operations_by_request("req-create").await.unwrap();
        if ops.len() == n as usize && ops.iter().all(|o| o.state == OpState::Success) {
            return Fleet {
                e,
                commits,
                ids,
                _dir: dir,
            };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the instances were never recorded as created");
}

fn state(e: &Engine, id: Uuid) -> Instance {
    e.instance(id).unwrap()
}

fn stop() -> Command {
    Command::Stop {
        mode: StopMode::SoftFirst,
        stop_charging: false,
    }
}

/// A soft stop of `ids`, accepted as `mode` says.
fn stops(ids: &[Uuid], mode: BatchMode) -> Batch<'_> {
    Batch::new(ids, stop(), mode)
}

/// Alibaba's password change of a running instance: written for its next boot.
fn next_boot_password(password: &str) -> Command {
    Command::ResetPassword {
        user: None,
        password: password.into(),
        when_running: WhenRunning::NextBoot,
        rule: nubis_core::password::PasswordRule::Complexity,
    }
}

/// Three running instances, the first of which is then stopping (for ever): a stop of it is
/// refused.
async fn one_stopping() -> (Fleet, [Uuid; 3]) {
    let f = fleet(3).await;
    let [a, b, c] = f.ids[..] else {
        panic!("three instances")
    };
    f.e.submit(&admin(), "req-a", &[a], stop(), false)
        .await
        .unwrap();
    assert_eq!(state(&f.e, a).state, InstanceState::Stopping);
    (f, [a, b, c])
}

#[tokio::test(flavor = "multi_thread")]
async fn all_or_nothing_leaves_nothing_on_one_refusal() {
    let (f, [a, b, c]) = one_stopping().await;
    let e = &f.e;
    let before = f.commits();
    let err = f
        .submit("req-all", stops(&[b, a, c], BatchMode::AllOrNothing))
        .await
        .unwrap_err();
    // The error names the instance by its canonical ID (dialects render their own).
    assert_eq!(
        err,
        DomainError::StateConflict {
            id: a.to_string(),
            state: InstanceState::Stopping,
            action: nubis_core::Action::Stop,
        }
    );
    for id in [b, c] {
        let i = state(e, id);
        assert_eq!((i.state, i.lock), (InstanceState::Running, None));
        assert_eq!(i.latest_op.unwrap().request_id, "req-create");
    }
    assert_eq!(e.running_operations(), 1);
    assert_eq!(f.commits(), before, "nothing written");
    assert!(
        e.admin_operations_by_request("req-all")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn success_first_accepts_the_admissible_in_one_commit() {
    let (f, [a, b, c]) = one_stopping().await;
    let e = &f.e;
    let before = f.commits();
    // A dry run reports each instance and writes nothing.
    let dry = f
        .submit(
            "req-dry",
            Batch {
                dry_run: true,
                ..stops(&[a, b, c], BatchMode::SuccessFirst)
            },
        )
        .await
        .unwrap();
    assert!(matches!(dry[0], Err(DomainError::StateConflict { .. })));
    assert_eq!(
        dry[1..],
        [Err(DomainError::DryRunOk), Err(DomainError::DryRunOk)]
    );
    assert_eq!(state(e, b).state, InstanceState::Running);
    assert_eq!(f.commits(), before);
    // B is named twice: acted on once, reported twice.
    let results = f
        .submit("req-sf", stops(&[a, b, c, b], BatchMode::SuccessFirst))
        .await
        .unwrap();
    assert_eq!(results.len(), 4);
    assert!(matches!(
        &results[0],
        Err(DomainError::StateConflict { id, .. }) if *id == a.to_string()
    ));
    assert_eq!(results[1..], [Ok(()), Ok(()), Ok(())]);
    assert_eq!(f.commits(), before + 1, "one commit");
    for id in [b, c] {
        let i = state(e, id);
        assert_eq!(i.state, InstanceState::Stopping);
        assert!(i.lock.is_some());
    }
    let ops = e.admin_operations_by_request("req-sf").await.unwrap();
    assert_eq!(ops.len(), 2);
    assert_eq!(e.running_operations(), 3);
}

/// Alibaba ModifyInstanceAttribute with a Password: the next-boot password and the new
/// attributes are one commit.
#[tokio::test(flavor = "multi_thread")]
async fn attributes_ride_in_the_batch_commit() {
    let f = fleet(1).await;
    let (e, ids) = (&f.e, &f.ids);
    let before = f.commits();
    let batch = Batch {
        attrs: AttrChange {
            name: Some("renamed".into()),
            description: Some("d".into()),
            host_name: None,
        },
        ..Batch::new(
            ids,
            next_boot_password("Nubis@2027pw"),
            BatchMode::AllOrNothing,
        )
    };
    f.submit("req-mod", batch).await.unwrap();
    assert_eq!(f.commits(), before + 1, "one commit");
    let i = state(e, ids[0]);
    assert_eq!((i.name.as_str(), i.description.as_str()), ("renamed", "d"));
    assert_eq!(i.state, InstanceState::Running);
    assert_eq!(i.latest_op.unwrap().state, OpState::Success);
    // A refused password changes no attribute either.
    let batch = Batch {
        attrs: AttrChange {
            name: Some("again".into()),
            ..AttrChange::default()
        },
        ..Batch::new(ids, next_boot_password("short"), BatchMode::AllOrNothing)
    };
    assert!(matches!(
        f.submit("req-bad", batch).await,
        Err(DomainError::InvalidPassword(_))
    ));
    assert_eq!(state(e, ids[0]).name, "renamed");
}
