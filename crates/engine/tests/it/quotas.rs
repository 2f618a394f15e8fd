//! Per-account quotas over a real SQLite store: the instance (vCPU, memory, key pair) over
//! the limit is refused and nothing is created; two creates racing for the last slot: one
//! wins; limits set for an account survive a restart and go with the account; the bootstrap
//! admin is unlimited by default.

use nubis_core::{
    Command, CreateSpec, DomainError, Principal, QuotaLimits, QuotaOverrides, QuotaResource,
};
use nubis_engine::{CredentialError, Engine, NewAccount, QuotaDefaults};
use nubis_testkit::{admin, linux_spec};
use std::path::Path;

async fn start(dir: &Path) -> Engine {
    nubis_testkit::engine_in(dir, 0.0, Some(("AKIDboot", "boot-secret")), None).await
}

async fn team(e: &Engine, name: &str) -> Principal {
    e.create_account(NewAccount {
        name: name.into(),
        ..Default::default()
    })
    .await
    .unwrap();
    Principal {
        account: name.into(),
        user: name.into(),
        ..Default::default()
    }
}

fn set(instances: Option<i64>, cores: Option<i64>, key_pairs: Option<i64>) -> QuotaOverrides {
    QuotaOverrides {
        instances,
        cores,
        key_pairs,
        ..Default::default()
    }
}

fn over(r: Result<impl std::fmt::Debug, DomainError>) -> Vec<QuotaResource> {
    match r {
        Err(DomainError::QuotaExceeded(o)) => o.iter().map(|o| o.resource).collect(),
        other => panic!("expected a quota refusal, got {other:?}"),
    }
}

/// Until every operation has finished (time scale 0: at once, but on the runners' tasks).
async fn settle(e: &Engine) {
    for _ in 0..500 {
        if e.running_operations() == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("operations did not finish");
}

/// Terminate `p`'s newest instance once every operation has finished, and wait (up to two
/// seconds) until its account holds `instances` again.
async fn terminate_newest(e: &Engine, p: &Principal, request_id: &str, instances: u64) {
    settle(e).await;
    let newest: Vec<_> = e
        .query(p, |_| true, 0, 1)
        .1
        .iter()
        .map(|i| i.uuid)
        .collect();
    let terminate = Command::Terminate { force: true };
    e.submit(p, request_id, &newest, terminate, false)
        .await
        .unwrap();
    for _ in 0..200 {
        if e.quota(&p.account).unwrap().usage.instances == instances {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

fn spec(count: u32, instance_type: &str) -> CreateSpec {
    CreateSpec {
        count,
        instance_type: instance_type.into(),
        ..linux_spec()
    }
}

#[tokio::test]
async fn the_instance_over_the_limit_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    let p = team(&e, "team-a").await;
    // Defaults: Nova's.
    let v = e.quota("team-a").unwrap();
    assert_eq!(v.limits, QuotaLimits::NOVA_DEFAULTS);
    assert_eq!(v.usage.instances, 0);

    e.set_quota("team-a", &set(Some(2), None, None))
        .await
        .unwrap();
    e.create(&p, "r1", spec(2, "S5.MEDIUM4"), false)
        .await
        .unwrap();
    // A dry run is refused the same way; a batch that does not fit creates nothing.
    assert_eq!(
        over(e.create(&p, "r2", spec(1, "S5.MEDIUM4"), true).await),
        [QuotaResource::Instances]
    );
    assert_eq!(
        over(e.create(&p, "r3", spec(1, "S5.MEDIUM4"), false).await),
        [QuotaResource::Instances]
    );
    let v = e.quota("team-a").unwrap();
    assert_eq!(
        (v.usage.instances, v.usage.cores, v.usage.ram_mib),
        (2, 4, 8192)
    );
    assert_eq!(e.query(&p, |_| true, 0, 100).0, 2);

    // vCPUs: 4 used of 5; a 2-vCPU type no longer fits, a 1-vCPU one does.
    e.set_quota("team-a", &set(Some(10), Some(5), None))
        .await
        .unwrap();
    assert_eq!(
        over(e.create(&p, "r4", spec(1, "S5.MEDIUM4"), false).await),
        [QuotaResource::Cores]
    );
    e.create(&p, "r5", spec(1, "S5.SMALL2"), false)
        .await
        .unwrap();

    // A terminated instance gives its share back.
    terminate_newest(&e, &p, "r6", 2).await;
    assert_eq!(e.quota("team-a").unwrap().usage.cores, 4);
    e.create(&p, "r7", spec(1, "S5.SMALL2"), false)
        .await
        .unwrap();

    // The admin is unlimited by default, whatever other accounts hold.
    e.create(&admin(), "r8", spec(20, "S5.LARGE8"), false)
        .await
        .unwrap();
    assert_eq!(e.quota("admin").unwrap().limits, QuotaLimits::UNLIMITED);
}

#[tokio::test]
async fn two_creates_racing_for_the_last_slot_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    let p = team(&e, "team-a").await;
    e.set_quota("team-a", &set(Some(3), None, None))
        .await
        .unwrap();
    e.create(&p, "r0", spec(2, "S5.SMALL2"), false)
        .await
        .unwrap();
    for round in 0..5 {
        let racers: Vec<_> = (0..8)
            .map(|n| {
                let (e, p) = (e.clone(), p.clone());
                tokio::spawn(async move {
                    e.create(
                        &p,
                        &format!("race-{round}-{n}"),
                        spec(1, "S5.SMALL2"),
                        false,
                    )
                    .await
                })
            })
            .collect();
        let mut won = 0;
        for r in racers {
            match r.await.unwrap() {
                Ok(v) => won += v.len(),
                Err(DomainError::QuotaExceeded(_)) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        assert_eq!(e.quota("team-a").unwrap().usage.instances, 3);
        // Free the slot again for the next round.
        terminate_newest(&e, &p, &format!("free-{round}"), 2).await;
        assert_eq!(e.quota("team-a").unwrap().usage.instances, 2);
    }
}

#[tokio::test]
async fn key_pairs_have_a_quota_and_racing_creates_cannot_pass_it_together() {
    let dir = tempfile::tempdir().unwrap();
    let e = start(dir.path()).await;
    let p = team(&e, "team-a").await;
    e.set_quota("team-a", &set(None, None, Some(2)))
        .await
        .unwrap();
    e.create_key_pair(&p, "k1", 0, None).await.unwrap();
    let racers: Vec<_> = (0..6)
        .map(|n| {
            let (e, p) = (e.clone(), p.clone());
            tokio::spawn(async move { e.create_key_pair(&p, &format!("k-{n}"), 0, None).await })
        })
        .collect();
    let mut won = 0;
    for r in racers {
        match r.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(over(Err::<(), _>(e)), [QuotaResource::KeyPairs]),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(e.key_pairs(&p).len(), 2);
    // Same name twice at once: one wins (the name is taken before the commit).
    e.set_quota("team-a", &set(None, None, Some(-1)))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        e.create_key_pair(&p, "twin", 0, None),
        e.create_key_pair(&p, "twin", 0, None)
    );
    assert!(a.is_ok() != b.is_ok(), "{:?} {:?}", a.is_ok(), b.is_ok());
}

#[tokio::test]
async fn limits_survive_a_restart_reset_to_defaults_and_go_with_the_account() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = start(dir.path()).await;
        team(&e, "team-a").await;
        let v = e
            .set_quota("team-a", &set(Some(1), Some(-1), None))
            .await
            .unwrap();
        assert_eq!((v.limits.instances, v.limits.cores), (1, -1));
        // Fields not given keep what was set.
        let v = e
            .set_quota("team-a", &set(None, None, Some(7)))
            .await
            .unwrap();
        assert_eq!((v.limits.instances, v.limits.key_pairs), (1, 7));
        // Bad values and unknown accounts.
        for bad in [-2, i64::from(i32::MAX) + 1] {
            assert!(matches!(
                e.set_quota("team-a", &set(Some(bad), None, None)).await,
                Err(CredentialError::Domain(DomainError::InvalidValue { .. }))
            ));
        }
        assert!(matches!(
            e.set_quota("nope", &set(Some(1), None, None)).await,
            Err(CredentialError::NotFound(_))
        ));
        assert!(matches!(e.quota("nope"), Err(CredentialError::NotFound(_))));
    }
    let e = start(dir.path()).await;
    e.set_quota_defaults(QuotaDefaults {
        accounts: QuotaLimits {
            cores: 64,
            ..QuotaLimits::NOVA_DEFAULTS
        },
        ..Default::default()
    })
    .unwrap();
    let v = e.quota("team-a").unwrap();
    assert_eq!(
        (v.limits.instances, v.limits.cores, v.limits.key_pairs),
        (1, -1, 7)
    );
    assert_eq!(v.defaults.cores, 64);
    let v = e.reset_quota("team-a").await.unwrap();
    assert_eq!(v.limits.cores, 64);
    assert_eq!(v.limits.instances, 10);
    // Deleted with its account: a new account of the same name starts from the defaults.
    e.set_quota("team-a", &set(Some(1), None, None))
        .await
        .unwrap();
    e.delete_account("team-a").await.unwrap();
    team(&e, "team-a").await;
    assert_eq!(e.quota("team-a").unwrap().limits.instances, 10);
}
