//! Several nodes, one fleet: two engines, each over its own `PgStore` on one fresh
//! PostgreSQL database (like two `nubis serve` processes), see each other's writes after
//! `sync()` (docs/postgres.md, "Several nodes, one fleet"). The database is made on the
//! server named by `NUBIS_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and dropped at the end; an unreachable server
//! fails these tests.

use nubis_auth::secret::SecretBox;
use nubis_core::{DomainError, InstanceState, OpState, StopMode};
use nubis_driver::sim::{SimDriver, Timings};
use nubis_engine::keystone::DomainRef;
use nubis_engine::{Command, Engine, IdKind, KeyLookup, NewAccount, Options, Who};
use nubis_store::{PgStore, Store};
use nubis_testkit::pg::{PgDb, connect};
use nubis_testkit::{KEY_ID, PASSWORD, SECRET, admin, linux_spec as spec};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A database of its own (dropped with it) and the data dir the nodes share (`master.key`:
/// every node must unseal the same secrets).
struct Cluster {
    db: PgDb,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn new() -> Self {
        Cluster {
            db: PgDb::create().await,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A node's store.
    async fn store(&self) -> Arc<PgStore> {
        Arc::new(PgStore::open(&self.db.url).await.unwrap())
    }

    /// A node, not bootstrapped, with the sim driver at these timings (seconds).
    async fn start(&self, timings: Timings) -> (Engine, Arc<PgStore>) {
        let store = self.store().await;
        let e = start_on(self.dir.path(), store.clone(), timings).await;
        (e, store)
    }

    /// A bootstrapped node whose operations end at once, except reboots (3 s).
    async fn node(&self) -> Engine {
        let (e, _) = self.start(slow_reboots()).await;
        e.bootstrap(Some((KEY_ID.into(), SECRET.into())), Some(PASSWORD.into()))
            .await
            .unwrap();
        e
    }
}

async fn start_on(dir: &Path, store: Arc<PgStore>, timings: Timings) -> Engine {
    let secrets = SecretBox::load_or_create(dir.join("master.key")).unwrap();
    let store: Arc<dyn Store> = store;
    // Short leases: a dead node's operations move within a second or two.
    let options = Options {
        lease_ttl: LEASE_TTL,
        ..Options::default()
    };
    Engine::start_with(
        store,
        Arc::new(SimDriver::with_timings(1.0, timings)),
        secrets,
        options,
    )
    .await
    .unwrap()
}

const LEASE_TTL: Duration = Duration::from_secs(1);

/// Everything instant but reboots, which take 3 s: a reboot is in flight for a while.
fn slow_reboots() -> Timings {
    Timings {
        provision: 0.0,
        boot: 0.0,
        soft_stop: 0.0,
        hard_stop: 0.0,
        soft_stop_timeout: 0.0,
        soft_reboot: 3.0,
        hard_reboot: 3.0,
        guest_change: 0.0,
        rescue_boot: 0.0,
        destroy: 0.0,
        live_migrate: 0.0,
    }
}

/// Wait until `e` has recorded every operation of `request_id` as finished.
async fn wait_recorded(e: &Engine, request_id: &str) {
    for _ in 0..1000 {
        let ops = e.admin_operations_by_request(request_id).await.unwrap();
        if !ops.is_empty() && ops.iter().all(|o| o.state != OpState::Operating) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the operations of {request_id} were never recorded as finished");
}

fn ids_of(e: &Engine, kind: IdKind, id: &str) -> Result<Vec<uuid::Uuid>, DomainError> {
    e.resolve(&admin(), kind, &[id.to_string()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_made_on_one_node_is_seen_on_the_other_in_every_namespace() {
    let c = Cluster::new().await;
    let a = c.node().await;
    let b = c.node().await;
    let inst = a
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    // No wait: what A committed before answering, B shows after one catch-up.
    b.sync().await.unwrap();
    for (kind, id) in [
        (IdKind::Tencent, inst.tencent_id.clone()),
        (IdKind::Aliyun, inst.aliyun_id.clone()),
        (IdKind::Uuid, inst.uuid.to_string()),
    ] {
        assert_eq!(ids_of(&b, kind, &id).unwrap(), vec![inst.uuid], "{kind:?}");
    }
    wait_recorded(&a, "req-create").await;
    b.sync().await.unwrap();
    let seen = b.instance(inst.uuid).unwrap();
    assert_eq!(seen.state, InstanceState::Running);
    assert!(seen.lock.is_none());
    assert_eq!(b.running_operations(), 0, "the create ended on A");
    let (total, page) = b.query(&admin(), |_| true, 0, 10);
    assert_eq!((total, page[0].uuid), (1, inst.uuid));
    // B's own create is seen by A as well, and B keeps its own record.
    let other = b
        .create(&admin(), "req-create-b", spec(), false)
        .await
        .unwrap()
        .remove(0);
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    assert!(a.instance(other.uuid).is_some());
    assert!(b.instance(other.uuid).is_some());
    assert_eq!(a.query(&admin(), |_| true, 0, 10).0, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_and_a_terminate_accepted_on_one_node_show_on_the_other() {
    let c = Cluster::new().await;
    let a = c.node().await;
    let b = c.node().await;
    let inst = a
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    wait_recorded(&a, "req-create").await;
    let reboot = Command::Reboot {
        mode: StopMode::Soft,
    };
    a.submit(&admin(), "req-reboot", &[inst.uuid], reboot.clone(), false)
        .await
        .unwrap();
    b.sync().await.unwrap();
    let seen = b.instance(inst.uuid).unwrap();
    assert_eq!(seen.state, InstanceState::Rebooting);
    let lock = seen.lock.clone().expect("B shows A's lock");
    assert_eq!(b.running_operations(), 1, "A's reboot, shown on B");
    let ops = b.admin_operations(&inst.uuid.to_string()).await.unwrap();
    assert_eq!(ops[0].id, lock.operation_id);
    assert_eq!(ops[0].request_id, "req-reboot");
    assert_eq!(ops[0].state, OpState::Operating);
    // B refuses a second reboot as A does: the state and lock are the same everywhere.
    let on_b = b
        .submit(
            &admin(),
            "req-reboot-b",
            &[inst.uuid],
            reboot.clone(),
            false,
        )
        .await
        .expect_err("B accepted a reboot of a rebooting instance");
    let on_a = a
        .submit(&admin(), "req-reboot-a", &[inst.uuid], reboot, false)
        .await
        .expect_err("A accepted a reboot of a rebooting instance");
    assert_eq!(format!("{on_b:?}"), format!("{on_a:?}"));

    // A's end of the reboot, on B.
    wait_recorded(&a, "req-reboot").await;
    b.sync().await.unwrap();
    let seen = b.instance(inst.uuid).unwrap();
    assert_eq!(seen.state, InstanceState::Running);
    assert!(seen.lock.is_none());
    let latest = seen.latest_op.expect("the reboot, as B shows it");
    assert_eq!(
        (latest.request_id.as_str(), latest.state),
        ("req-reboot", OpState::Success)
    );
    assert_eq!(b.running_operations(), 0, "A's reboot left B's running set");

    a.submit(
        &admin(),
        "req-terminate",
        &[inst.uuid],
        Command::Terminate { force: true },
        false,
    )
    .await
    .unwrap();
    wait_recorded(&a, "req-terminate").await;
    b.sync().await.unwrap();
    assert!(b.instance(inst.uuid).is_none(), "terminated on A");
    assert!(matches!(
        ids_of(&b, IdKind::Tencent, &inst.tencent_id),
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(b.running_operations(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_pairs_and_credentials_made_on_one_node_work_on_the_other() {
    let c = Cluster::new().await;
    let a = c.node().await;
    let b = c.node().await;
    let kp = a
        .create_key_pair(&admin(), "kp1", 0, None)
        .await
        .unwrap()
        .key_pair;
    let spare = a
        .create_key_pair(&admin(), "kp2", 0, None)
        .await
        .unwrap()
        .key_pair;
    b.sync().await.unwrap();
    assert_eq!(b.key_pair_by_name(&admin(), "kp1").unwrap().id, kp.id);
    // Usable on B: an instance created there with it.
    let with_key = nubis_core::CreateSpec {
        key_ids: vec![kp.id.clone()],
        ..spec()
    };
    let inst = b
        .create(&admin(), "req-create", with_key, false)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(inst.key_ids, vec![kp.id.clone()]);
    a.delete_key_pairs(&admin(), std::slice::from_ref(&spare.id), true)
        .await
        .unwrap();
    b.sync().await.unwrap();
    assert!(
        b.key_pair_by_name(&admin(), "kp2").is_none(),
        "deleted on A"
    );

    // An account, a sub-user and its access key made on A sign requests on B.
    a.create_account(NewAccount {
        name: "team".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let alice = a.iam_create_user("team", "alice").await.unwrap();
    let (key, secret) = a.iam_create_key("team", Who::User(alice.id)).await.unwrap();
    b.sync().await.unwrap();
    match b.lookup_access_key(&key.id) {
        KeyLookup::Active(p, s) => {
            assert_eq!(s, secret);
            assert_eq!((p.account.as_str(), p.sub_user), ("team", Some(alice.id)));
        }
        other => panic!("B does not know A's key: {other:?}"),
    }
    assert_eq!(b.iam_user("team", "alice").unwrap().id, alice.id);
    // A change to it, too.
    a.iam_set_key_enabled("team", Who::User(alice.id), &key.id, false)
        .await
        .unwrap();
    b.sync().await.unwrap();
    assert_eq!(b.lookup_access_key(&key.id), KeyLookup::Disabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_changes_reload_on_the_other_node() {
    let c = Cluster::new().await;
    let a = c.node().await;
    let b = c.node().await;
    a.add_keystone_user("ops", "0ps-Passw0rd", vec!["member".into()])
        .await
        .unwrap();
    let project = a
        .ks_create_project("web", "default", "", true, None, Vec::new())
        .await
        .unwrap();
    a.create_account(NewAccount {
        name: "team".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    a.set_quota(
        "team",
        &nubis_core::QuotaOverrides {
            instances: Some(3),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    b.sync().await.unwrap();
    assert_eq!(
        b.verify_keystone_user("ops", "0ps-Passw0rd").await,
        Some(vec!["member".to_string()])
    );
    let seen = b
        .ks_project_named("web", &DomainRef::Id("default".into()))
        .expect("A's project on B");
    assert_eq!(seen.id, project.id);
    assert_eq!(b.quota("team").unwrap().overrides.instances, Some(3));
    // B's own identity change stays while A's arrive.
    b.add_keystone_user("dev", "d3v-Passw0rd", vec!["reader".into()])
        .await
        .unwrap();
    a.delete_keystone_user("ops").await.unwrap();
    b.sync().await.unwrap();
    assert!(
        b.verify_keystone_user("ops", "0ps-Passw0rd")
            .await
            .is_none()
    );
    assert!(
        b.verify_keystone_user("dev", "d3v-Passw0rd")
            .await
            .is_some()
    );
    a.sync().await.unwrap();
    assert!(
        a.verify_keystone_user("dev", "d3v-Passw0rd")
            .await
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_the_pruned_journal_reloads_everything() {
    let c = Cluster::new().await;
    let (a, store) = c.start(slow_reboots()).await;
    a.bootstrap(Some((KEY_ID.into(), SECRET.into())), None)
        .await
        .unwrap();
    let b = c.node().await;
    let inst = a
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    a.create_account(NewAccount {
        name: "team".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    // Every row gone (older than -60 s: all of them): B's cursor is below what was pruned.
    assert!(store.prune_changes(-60_000).await.unwrap() > 0);
    b.sync().await.unwrap();
    assert!(b.instance(inst.uuid).is_some());
    assert!(b.account("team").is_some());
    // And it goes on from the head.
    a.create_key_pair(&admin(), "kp", 0, None).await.unwrap();
    b.sync().await.unwrap();
    assert!(b.key_pair_by_name(&admin(), "kp").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_bootstrapping_at_once_share_one_admin() {
    let c = Cluster::new().await;
    let (a, _) = c.start(slow_reboots()).await;
    let (b, _) = c.start(slow_reboots()).await;
    // Both loaded an empty database; neither was given credentials, so each would generate.
    let (ra, rb) = tokio::join!(a.bootstrap(None, None), b.bootstrap(None, None));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let generated: Vec<_> = [ra, rb].into_iter().flatten().collect();
    assert_eq!(generated.len(), 1, "the first node wins, the other adopts");
    let (id, secret) = generated[0].access_key.clone().unwrap();
    for e in [&a, &b] {
        e.sync().await.unwrap();
        match e.lookup_access_key(&id) {
            KeyLookup::Active(p, s) => assert!(p.is_admin && s == secret),
            other => panic!("{other:?}"),
        }
        assert_eq!(e.accounts().len(), 1);
    }
    // A third node with the same key in its environment changes nothing.
    let (third, _) = c.start(slow_reboots()).await;
    assert!(
        third
            .bootstrap(Some((id.clone(), secret.clone())), None)
            .await
            .unwrap()
            .is_none()
    );
    a.sync().await.unwrap();
    assert!(matches!(a.lookup_access_key(&id), KeyLookup::Active(..)));
}

// Leases and takeover (docs/cluster.md).

/// Wait until the stored operations of `request_id` (read on `e`) have all finished; their
/// count and states.
async fn wait_finished(
    e: &Engine,
    request_id: &str,
    within: Duration,
) -> Vec<nubis_core::Operation> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let ops = e.admin_operations_by_request(request_id).await.unwrap();
        if !ops.is_empty() && ops.iter().all(|o| o.state != OpState::Operating) {
            return ops;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{request_id} not finished within {within:?}: {ops:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn lease_rows(c: &Cluster) -> Vec<(String, String, i64)> {
    connect(&c.db.url)
        .await
        .query(
            "SELECT operation_id, node, fence FROM operation_leases ORDER BY operation_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn run_sql(c: &Cluster, sql: &str) {
    connect(&c.db.url).await.batch_execute(sql).await.unwrap();
}

/// A node dies (its runtime, runners, lease renewals and database connections stop at once,
/// as on kill -9) in the middle of a reboot it accepted: once the lease expires the other
/// node takes the reboot over, finishes it exactly once from the last committed step, and
/// no lock or lease survives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_operation_is_taken_over_once_its_lease_expires() {
    let c = Arc::new(Cluster::new().await);
    let b = c.node().await;
    let inst = b
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    wait_recorded(&b, "req-create").await;
    let restarts = |e: &Engine| {
        e.driver().inspect(inst.uuid).unwrap()["restarts"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let restarted_before = restarts(&b);
    // Node A on a runtime of its own, so that it can die alone.
    let rt_a = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let on_a = c.clone();
    let a = rt_a
        .spawn(async move {
            let a = on_a.node().await;
            a.sync().await.unwrap();
            let reboot = Command::Reboot {
                mode: StopMode::Hard,
            };
            a.submit(&admin(), "req-reboot", &[inst.uuid], reboot, false)
                .await
                .unwrap();
            a
        })
        .await
        .unwrap();
    b.sync().await.unwrap();
    assert_eq!(
        b.instance(inst.uuid).unwrap().state,
        InstanceState::Rebooting
    );
    let held = lease_rows(&c).await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].2, 1, "fence 1: A's own lease");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = tokio::time::Instant::now();
    rt_a.shutdown_background();
    drop(a);

    let ops = wait_finished(&b, "req-reboot", LEASE_TTL + Duration::from_secs(10)).await;
    let took = killed.elapsed();
    assert_eq!(ops.len(), 1);
    let op = &ops[0];
    assert_eq!(op.state, OpState::Success, "{op:?}");
    assert_eq!(op.attempts, 2, "resumed once, on B");
    // The 3-s reboot ran again in full on B after the lease expired.
    assert!(
        took >= LEASE_TTL,
        "taken over after {took:?}, before the lease expired"
    );
    b.sync().await.unwrap();
    let seen = b.instance(inst.uuid).unwrap();
    assert_eq!(seen.state, InstanceState::Running);
    assert!(seen.lock.is_none(), "no lock outlives its operation");
    assert_eq!(b.running_operations(), 0);
    assert_eq!(
        lease_rows(&c).await,
        vec![],
        "the lease ended with the operation"
    );
    // The guest rebooted once (the sim's restart history, as B carried it on).
    assert_eq!(restarts(&b), restarted_before + 1);
}

/// A node whose lease was taken (stalled past its TTL while another node took over) records
/// no further step: its commit carries the old fence and is refused whole; it shows the
/// operation as another node's. When that lease expires in turn, it takes the operation
/// back with a new fence and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_lease_records_nothing_more() {
    let c = Cluster::new().await;
    let a = c.node().await;
    let inst = a
        .create(&admin(), "req-create", spec(), false)
        .await
        .unwrap()
        .remove(0);
    wait_recorded(&a, "req-create").await;
    let reboot = Command::Reboot {
        mode: StopMode::Hard,
    };
    a.submit(&admin(), "req-reboot", &[inst.uuid], reboot, false)
        .await
        .unwrap();
    let before = a.admin_operations_by_request("req-reboot").await.unwrap()[0].clone();
    assert_eq!(before.state, OpState::Operating);
    // Another node takes the lease (a live one, renewed by nobody here).
    run_sql(
        &c,
        "UPDATE operation_leases SET node = 'thief', fence = fence + 1, \
         expires_at_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 600000",
    )
    .await;
    // A's reboot step ends after 3 s; its record is refused.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ops = a.admin_operations_by_request("req-reboot").await.unwrap();
    assert_eq!(ops[0].state, OpState::Operating);
    assert_eq!(
        ops[0].steps_done, before.steps_done,
        "no step recorded under a lost lease: {:?}",
        before.steps
    );
    assert_eq!(
        a.instance(inst.uuid).unwrap().state,
        InstanceState::Rebooting
    );
    // The thief's lease expires: A takes the reboot over (fence 3) and finishes it.
    run_sql(&c, "UPDATE operation_leases SET expires_at_ms = 0").await;
    let ops = wait_finished(&a, "req-reboot", Duration::from_secs(10)).await;
    assert_eq!((ops[0].state, ops[0].attempts), (OpState::Success, 2));
    assert!(a.instance(inst.uuid).unwrap().lock.is_none());
    assert_eq!(lease_rows(&c).await, vec![]);
}
