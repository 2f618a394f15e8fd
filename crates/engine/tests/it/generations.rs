//! Generation-checked writes, commit-then-apply (docs/postgres.md, "Generations"): a delayed
//! write of an older instance record is refused and a writer that lost a race re-plans on the
//! newer record; nothing a mutation changes is visible before its commit; a runner that lost
//! its instance's lock to another writer stops; two engines on one PostgreSQL database racing
//! on one instance accept exactly one operation.

use nubis_auth::secret::SecretBox;
use nubis_core::{CreateSpec, DomainError, Instance, InstanceState, OpState, Operation, StopMode};
use nubis_driver::sim::{SimDriver, Timings};
use nubis_engine::{AttrChange, Command, Engine};
use nubis_store::{PgStore, SqliteStore, Store, StoreError, Write};
use nubis_testkit::hooked::{CommitHook, Hooked};
use nubis_testkit::pg::PgDb;
use nubis_testkit::{TempDir, admin, linux_spec as spec};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use uuid::Uuid;

/// Holds the store's next commit until the test lets it go.
#[derive(Default)]
struct Hold {
    /// (tell the test a commit is held, wait for its release).
    next: parking_lot::Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>,
    /// Fail the held commit once it is let go (the database went away meanwhile).
    fail: std::sync::atomic::AtomicBool,
}

impl Hold {
    /// Hold the next commit: the first receiver fires when it is held, the sender lets it go.
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (held_tx, held_rx) = oneshot::channel();
        let (go_tx, go_rx) = oneshot::channel();
        *self.next.lock() = Some((held_tx, go_rx));
        (held_rx, go_tx)
    }
}

#[async_trait::async_trait]
impl CommitHook for Hold {
    async fn before_commit(&self) -> Result<(), StoreError> {
        let hold = self.next.lock().take();
        if let Some((held, go)) = hold {
            let _ = held.send(());
            let _ = go.await;
            if self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Unavailable("gone".into()));
            }
        }
        Ok(())
    }
}

/// Instances launch at once; stops (and so reboots) never end within a test.
fn slow_stops() -> SimDriver {
    SimDriver::with_timings(
        1.0,
        Timings {
            provision: 0.0,
            boot: 0.0,
            soft_stop: 1000.0,
            hard_stop: 1000.0,
            soft_stop_timeout: 1000.0,
            soft_reboot: 1000.0,
            hard_reboot: 1000.0,
            guest_change: 0.0,
            ..Timings::default()
        },
    )
}

/// An engine over `store`, bootstrapped, with `n` running instances whose creation is on
/// disk.
async fn with_instances(store: Arc<dyn Store>, dir: &TempDir, n: u32) -> (Engine, Vec<Uuid>) {
    let secrets = SecretBox::load_or_create(dir.path().join("master.key")).unwrap();
    let e = Engine::start(store, Arc::new(slow_stops()), secrets)
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
    wait_finished(&e, "req-create", n as usize).await;
    (e, ids)
}

/// Waits until the store records `count` operations of `request_id`, all finished.
async fn wait_finished(e: &Engine, request_id: &str, count: usize) {
    for _ in 0..3000 {
        let ops = e.admin_operations_by_request(request_id).await.unwrap();
        if ops.len() == count && ops.iter().all(|o| o.state != OpState::Operating) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{request_id} never finished");
}

async fn stored(store: &Arc<dyn Store>, id: Uuid) -> Instance {
    store.instances(&[id]).await.unwrap().remove(0)
}

fn rename(name: &str) -> AttrChange {
    AttrChange {
        name: Some(name.into()),
        ..AttrChange::default()
    }
}

fn reboot() -> Command {
    Command::Reboot {
        mode: StopMode::Soft,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_older_record_is_refused_and_a_lost_race_replans() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("n.db")).unwrap());
    let (e, ids) = with_instances(store.clone(), &dir, 1).await;
    let id = ids[0];
    let old = e.instance(id).unwrap();
    e.modify(&admin(), id, rename("newer")).await.unwrap();
    let newer = e.instance(id).unwrap();
    assert_eq!(newer.generation, old.generation + 1);
    assert_eq!(stored(&store, id).await, newer);

    // A whole-record write planned from the older record (a delayed writer) is refused.
    let mut late = old.clone();
    late.name = "late".into();
    late.generation += 1;
    let r = store.commit(vec![Write::Instance(Box::new(late))]).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(stored(&store, id).await.name, "newer");
    assert_eq!(e.instance(id).unwrap().name, "newer");

    // Another writer (a second node) moves the record on behind the engine's back: the
    // engine's next change loses the race, reads the record back and keeps both changes.
    let mut theirs = newer.clone();
    theirs.locked = Some("theirs".into());
    theirs.generation += 1;
    store
        .commit(vec![Write::Instance(Box::new(theirs))])
        .await
        .unwrap();
    e.modify(&admin(), id, rename("ours")).await.unwrap();
    let now = stored(&store, id).await;
    assert_eq!(now.generation, newer.generation + 2);
    assert_eq!(now.name, "ours");
    assert_eq!(now.locked.as_deref(), Some("theirs"));
    assert_eq!(e.instance(id).unwrap(), now);

    // The same for an operation: the plan is made again on the newer record.
    e.set_locked(&admin(), id, None).await.unwrap();
    let now = e.instance(id).unwrap();
    let mut stopped = now.clone();
    stopped.state = InstanceState::Stopped;
    stopped.locked = None;
    stopped.generation += 1;
    store
        .commit(vec![Write::Instance(Box::new(stopped))])
        .await
        .unwrap();
    let r = e
        .submit(&admin(), "req-reboot", &[id], reboot(), false)
        .await;
    assert!(
        matches!(r, Err(DomainError::StateConflict { .. })),
        "a reboot of what is now a stopped instance: {r:?}"
    );
    assert_eq!(e.instance(id).unwrap().state, InstanceState::Stopped);
    assert!(
        e.admin_operations_by_request("req-reboot")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_visible_before_its_commit() {
    let dir = tempfile::tempdir().unwrap();
    let holding = Arc::new(Hooked {
        inner: Arc::new(SqliteStore::open(&dir.path().join("n.db")).unwrap()),
        hook: Hold::default(),
    });
    let (e, ids) = with_instances(holding.clone(), &dir, 1).await;
    let id = ids[0];
    let before = e.instance(id).unwrap();
    let page = |e: &Engine| e.query(&admin(), |_| true, 0, 10).1;

    // An attribute change.
    let (held, go) = holding.hook.arm();
    let task = tokio::spawn({
        let e = e.clone();
        async move { e.modify(&admin(), id, rename("renamed")).await }
    });
    held.await.unwrap();
    assert_eq!(e.instance(id).unwrap(), before);
    assert_eq!(page(&e), vec![before.clone()]);
    go.send(()).unwrap();
    task.await.unwrap().unwrap();
    let renamed = e.instance(id).unwrap();
    assert_eq!(renamed.name, "renamed");

    // An operation: no state, lock or running operation before the commit.
    let (held, go) = holding.hook.arm();
    let task = tokio::spawn({
        let e = e.clone();
        async move {
            e.submit(&admin(), "req-reboot", &[id], reboot(), false)
                .await
        }
    });
    held.await.unwrap();
    assert_eq!(e.instance(id).unwrap(), renamed);
    assert_eq!(page(&e), vec![renamed.clone()]);
    assert_eq!(e.running_operations(), 0);
    go.send(()).unwrap();
    task.await.unwrap().unwrap();
    let rebooting = e.instance(id).unwrap();
    assert_eq!(rebooting.state, InstanceState::Rebooting);
    assert!(rebooting.lock.is_some());
    assert_eq!(e.running_operations(), 1);

    // A create: no instance before the commit.
    let (held, go) = holding.hook.arm();
    let task = tokio::spawn({
        let e = e.clone();
        async move { e.create(&admin(), "req-create-2", spec(), false).await }
    });
    held.await.unwrap();
    assert_eq!(page(&e).len(), 1);
    go.send(()).unwrap();
    let created = task.await.unwrap().unwrap();
    assert_eq!(page(&e).len(), 2);
    assert!(e.instance(created[0].uuid).is_some());

    // A commit that fails leaves nothing behind either (once the new instance's runner,
    // which commits too, is done).
    wait_finished(&e, "req-create-2", 1).await;
    let (held, go) = holding.hook.arm();
    holding
        .hook
        .fail
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let task = tokio::spawn({
        let e = e.clone();
        async move { e.modify(&admin(), id, rename("never")).await }
    });
    held.await.unwrap();
    go.send(()).unwrap();
    let r = task.await.unwrap();
    assert!(matches!(r, Err(DomainError::Unavailable(_))), "{r:?}");
    assert_eq!(e.instance(id).unwrap().name, "renamed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_whose_write_loses_its_lock_stops() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("n.db")).unwrap());
    let secrets = SecretBox::load_or_create(dir.path().join("master.key")).unwrap();
    // A stop's one step takes a second: time to take its instance away meanwhile.
    let driver = SimDriver::with_timings(
        1.0,
        Timings {
            provision: 0.0,
            boot: 0.0,
            soft_stop: 1.0,
            hard_stop: 1.0,
            guest_change: 0.0,
            ..Timings::default()
        },
    );
    let e = Engine::start(store.clone(), Arc::new(driver), secrets)
        .await
        .unwrap();
    e.bootstrap(Some(("AKIDtest".into(), "secret".into())), None)
        .await
        .unwrap();
    let id = e
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()[0]
        .uuid;
    wait_finished(&e, "req-create", 1).await;
    let stop = Command::Stop {
        mode: StopMode::Soft,
        stop_charging: false,
    };
    e.submit(&admin(), "req-stop", &[id], stop, false)
        .await
        .unwrap();
    let mut op = e
        .admin_operations_by_request("req-stop")
        .await
        .unwrap()
        .remove(0);
    // Another node supersedes the stop while its step runs: its operation ends, the record
    // names another lock holder.
    let mut theirs = stored(&store, id).await;
    theirs.lock = Some(nubis_core::OpLock {
        operation_id: Uuid::now_v7(),
        action: nubis_core::Action::Reboot,
    });
    theirs.name = "theirs".into();
    theirs.generation += 1;
    op.state = OpState::Failed;
    op.error = Some("superseded elsewhere".into());
    store
        .commit(vec![
            Write::Instance(Box::new(theirs.clone())),
            Write::Operation(op.clone()),
        ])
        .await
        .unwrap();
    // The step ends, its record loses the race, the runner reads back and stops.
    for _ in 0..500 {
        if e.running_operations() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(e.running_operations(), 0, "the runner stopped");
    assert_eq!(stored(&store, id).await, theirs, "and wrote nothing more");
    assert_eq!(e.instance(id).unwrap(), theirs);
    let ops = e.admin_operations_by_request("req-stop").await.unwrap();
    assert_eq!(ops[0].state, OpState::Failed);
    assert_eq!(ops[0].steps_done, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_postgres_accept_one_of_two_racing_reboots() {
    const ROUNDS: usize = 30;
    let db = PgDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let store_a: Arc<dyn Store> = Arc::new(PgStore::open(&db.url).await.unwrap());
    let (a, ids) = with_instances(store_a, &dir, ROUNDS as u32).await;
    // B loads the fleet A made (catching up later changes is not B's to do here).
    let store_b: Arc<dyn Store> = Arc::new(PgStore::open(&db.url).await.unwrap());
    let secrets = SecretBox::load_or_create(dir.path().join("master.key")).unwrap();
    let b = Engine::start(store_b.clone(), Arc::new(slow_stops()), secrets)
        .await
        .unwrap();
    for (round, id) in ids.iter().copied().enumerate() {
        assert_eq!(b.instance(id).unwrap().state, InstanceState::Running);
        let ra = tokio::spawn({
            let a = a.clone();
            async move {
                a.submit(&admin(), &format!("a-{round}"), &[id], reboot(), false)
                    .await
            }
        });
        let rb = tokio::spawn({
            let b = b.clone();
            async move {
                b.submit(&admin(), &format!("b-{round}"), &[id], reboot(), false)
                    .await
            }
        });
        let (ra, rb) = (ra.await.unwrap(), rb.await.unwrap());
        assert!(
            ra.is_ok() != rb.is_ok(),
            "round {round}: exactly one reboot is accepted: {ra:?} {rb:?}"
        );
        let (winner, refused) = if ra.is_ok() { ("a", rb) } else { ("b", ra) };
        assert!(
            matches!(
                refused,
                Err(DomainError::OperationInProgress { .. } | DomainError::StateConflict { .. })
            ),
            "round {round}: the other gets the state or lock error: {refused:?}"
        );
        // One operation in the store, and the record holds its lock.
        let ops = store_b.operations_of_instance(id, 10).await.unwrap();
        let reboots: Vec<&Operation> = ops
            .iter()
            .filter(|o| o.action == nubis_core::Action::Reboot)
            .collect();
        assert_eq!(reboots.len(), 1, "round {round} ({winner}): {ops:?}");
        let rec = stored(&store_b, id).await;
        assert_eq!(
            rec.lock.map(|l| l.operation_id),
            Some(reboots[0].id),
            "round {round}"
        );
    }
}
