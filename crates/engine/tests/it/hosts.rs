//! Placement onto agent hosts over a real SQLite store (docs/agents.md): the hosts' reports
//! are written to the store as an agent's would be, no agent runs (their operations wait).
//! Instances spread over the up hosts of their zone by free capacity, a zone without hosts
//! stays with the embedded driver, a full zone is sold out (refused, or failed for Nova),
//! and a lost host takes nothing.

use nubis_core::hosts::{Capacity, HostHealth};
use nubis_core::{CreateSpec, DomainError, InstanceState, OpState};
use nubis_engine::{Engine, SoldOut};
use nubis_store::{HostReport, SqliteStore, Store};
use nubis_testkit::{admin, linux_spec};
use std::sync::Arc;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Report `host` as an agent would, seen `ago_ms` ago, offering `vcpus`; each report signed
/// later than the one before (else it is a replay).
async fn report(store: &Arc<dyn Store>, host: &str, vcpus: u32, ago_ms: i64) {
    static SIGNED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let seen = now_ms() - ago_ms;
    let signed = SIGNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + now_ms();
    let stored = store
        .host_directory()
        .unwrap()
        .report_host(
            host,
            &HostReport {
                address: "http://127.0.0.1:9".into(),
                driver: "sim".into(),
                capacity: Capacity {
                    vcpus,
                    memory_mib: 65536,
                    disk_gib: 1000,
                },
                seen_ms: seen,
                signed_ms: signed,
            },
        )
        .await
        .unwrap();
    assert!(stored);
}

fn spec(count: u32, zone: &str) -> CreateSpec {
    CreateSpec {
        count,
        zone: zone.into(),
        ..linux_spec()
    }
}

async fn setup() -> (Engine, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let e =
        nubis_testkit::engine_in(dir.path(), 0.0, Some(("AKIDboot", "boot-secret")), None).await;
    // A second handle on the same database: what another process (the reporting node) writes.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nubis.db")).unwrap());
    for (id, zone) in [("host-a", "ap-guangzhou-3"), ("host-b", "cn-hangzhou-h")] {
        let (view, secret) = e.create_host(id, zone).await.unwrap();
        assert_eq!(
            (view.zone.as_str(), view.health),
            ("local-a", HostHealth::New)
        );
        assert_eq!(secret.len(), 64);
    }
    (e, store, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_spread_by_free_capacity_and_a_full_zone_is_sold_out() {
    let (e, store, _dir) = setup().await;
    let p = admin();
    // Hosts that never reported take nothing: the zone is served by hosts, none up.
    assert!(matches!(
        e.create(&p, "r0", spec(1, "local-a"), false).await,
        Err(DomainError::SoldOut { .. })
    ));
    report(&store, "host-a", 4, 0).await;
    report(&store, "host-b", 6, 0).await;
    e.refresh_hosts().await.unwrap();
    // S5.MEDIUM4 takes 2 vCPUs: b (6 free) first, then the freest each time.
    let made = e.create(&p, "r1", spec(4, "local-a"), false).await.unwrap();
    let hosts: Vec<_> = made.iter().map(|i| i.host.clone().unwrap()).collect();
    assert_eq!(hosts, ["host-b", "host-a", "host-b", "host-a"]);
    let views = e.hosts();
    let b = views.iter().find(|h| h.id == "host-b").unwrap();
    assert_eq!(
        (b.instances, b.used.vcpus, b.health),
        (2, 4, HostHealth::Up)
    );
    // 2 vCPUs left in all (on host-b): a batch of two does not fit and is refused whole.
    let before = e.query(&p, |_| true, 0, 100).0;
    let err = e
        .create(&p, "r2", spec(2, "local-a"), false)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        DomainError::SoldOut {
            zone: "local-a".into(),
            instance_type: "S5.MEDIUM4".into()
        }
    );
    assert_eq!(e.query(&p, |_| true, 0, 100).0, before, "nothing created");
    let last = e.create(&p, "r3", spec(1, "local-a"), false).await.unwrap();
    assert_eq!(last[0].host.as_deref(), Some("host-b"));
    // Nova's way: accepted, the instance failed to launch with the fault, no operation runs.
    let failed = e
        .create_with(
            &p,
            "r4",
            spec(1, "local-a"),
            false,
            SoldOut::Fail("No valid host"),
        )
        .await
        .unwrap();
    assert_eq!(failed[0].state, InstanceState::LaunchFailed);
    assert_eq!(failed[0].host, None);
    assert!(failed[0].lock.is_none());
    let op = failed[0].latest_op.as_ref().unwrap();
    assert_eq!(
        (op.state, op.error.as_deref()),
        (OpState::Failed, Some("No valid host"))
    );
    // A zone without hosts stays with the embedded driver, and runs at once.
    let local = e.create(&p, "r5", spec(1, "local-b"), false).await.unwrap();
    assert_eq!(local[0].host, None);
    assert_eq!(e.host_health(&local[0]), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_host_takes_nothing_and_its_instances_are_unknown() {
    let (e, store, _dir) = setup().await;
    let p = admin();
    report(&store, "host-a", 8, 0).await;
    e.refresh_hosts().await.unwrap();
    let made = e.create(&p, "r1", spec(1, "local-a"), false).await.unwrap();
    assert_eq!(e.host_health(&made[0]), Some(HostHealth::Up));
    // Its last report is older than the timeout (10 s by default): lost.
    report(&store, "host-a", 8, 60_000).await;
    e.refresh_hosts().await.unwrap();
    assert_eq!(e.host_health(&made[0]), Some(HostHealth::Lost));
    assert!(matches!(
        e.create(&p, "r2", spec(1, "local-a"), false).await,
        Err(DomainError::SoldOut { .. })
    ));
    // Its create waits for the host (nothing answers at its address): still running.
    assert_eq!(e.running_operations(), 1);
    // A host with instances is not removed.
    assert!(e.delete_host("host-a").await.is_err());
    assert!(e.delete_host("host-b").await.is_ok());
    assert!(e.delete_host("host-b").await.is_err());
}
