//! Placement groups over a real SQLite store (docs/placement-groups.md): members placed by
//! their group's policy over two agent hosts of one zone (reported as an agent would, as in
//! `hosts.rs`), the embedded driver as one host per zone, the member and group limits, delete
//! with members, and everything read back after a restart.

use nubis_core::groups::{Flavour, GROUPS_PER_ACCOUNT, Policy};
use nubis_core::hosts::Capacity;
use nubis_core::{CreateSpec, DomainError, ResourceKind};
use nubis_engine::{Engine, GroupChange, IdKind, NewGroup, SoldOut};
use nubis_store::{HostReport, SqliteStore, Store};
use nubis_testkit::{admin, linux_spec};
use std::sync::Arc;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

async fn report(store: &Arc<dyn Store>, host: &str, signed: i64) {
    let stored = store
        .host_directory()
        .unwrap()
        .report_host(
            host,
            &HostReport {
                address: "http://127.0.0.1:9".into(),
                driver: "sim".into(),
                capacity: Capacity {
                    vcpus: 64,
                    memory_mib: 262_144,
                    disk_gib: 10_000,
                },
                seen_ms: now_ms(),
                signed_ms: now_ms() + signed,
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

fn new_group(policy: Policy, flavour: Flavour, max_per_host: u32) -> NewGroup {
    NewGroup {
        name: "g".into(),
        description: String::new(),
        policy,
        flavour,
        max_per_host,
        group_count: 0,
        on_unable_to_redeploy: String::new(),
        client_token: None,
    }
}

/// An engine with two up hosts serving zone `local-a` (`ap-guangzhou-3`).
async fn two_hosts() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let e =
        nubis_testkit::engine_in(dir.path(), 0.0, Some(("AKIDboot", "boot-secret")), None).await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("nubis.db")).unwrap());
    for (n, id) in ["host-a", "host-b"].into_iter().enumerate() {
        e.create_host(id, "ap-guangzhou-3").await.unwrap();
        report(&store, id, n as i64).await;
    }
    e.refresh_hosts().await.unwrap();
    (e, dir)
}

fn hosts_of(made: &[nubis_core::Instance]) -> Vec<String> {
    made.iter().map(|i| i.host.clone().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_spreads_over_the_hosts_and_affinity_keeps_together() {
    let (e, _dir) = two_hosts().await;
    let p = admin();
    let anti = e
        .create_placement_group(&p, new_group(Policy::AntiAffinity, Flavour::Nova, 1))
        .await
        .unwrap();
    let made = e
        .create_in(
            &p,
            "r1",
            spec(2, "local-a"),
            false,
            SoldOut::Refuse,
            Some(&anti.id),
        )
        .await
        .unwrap();
    let mut hosts = hosts_of(&made);
    hosts.sort();
    assert_eq!(hosts, ["host-a", "host-b"]);
    // Both hosts hold a member: a third is sold out (refused), or failed for Nova.
    assert!(matches!(
        e.create_in(
            &p,
            "r2",
            spec(1, "local-a"),
            false,
            SoldOut::Refuse,
            Some(&anti.id)
        )
        .await,
        Err(DomainError::SoldOut { .. })
    ));
    let failed = e
        .create_in(
            &p,
            "r3",
            spec(1, "local-a"),
            false,
            SoldOut::Fail("No valid host"),
            Some(&anti.id),
        )
        .await
        .unwrap();
    assert_eq!(failed[0].host, None);
    // A failed member runs nowhere: raising the limit lets the next one in.
    e.update_placement_group(
        &p,
        &anti.id,
        GroupChange {
            max_per_host: Some(2),
            ..GroupChange::default()
        },
    )
    .await
    .unwrap();
    let third = e
        .create_in(
            &p,
            "r4",
            spec(1, "local-a"),
            false,
            SoldOut::Refuse,
            Some(&anti.id),
        )
        .await
        .unwrap();
    assert!(third[0].host.is_some());

    let aff = e
        .create_placement_group(&p, new_group(Policy::Affinity, Flavour::Nova, 1))
        .await
        .unwrap();
    let made = e
        .create_in(
            &p,
            "r5",
            spec(3, "local-a"),
            false,
            SoldOut::Refuse,
            Some(&aff.id),
        )
        .await
        .unwrap();
    let hosts = hosts_of(&made);
    assert!(hosts.iter().all(|h| *h == hosts[0]), "{hosts:?}");
    // Another zone is another host: affinity refuses it.
    assert!(matches!(
        e.create_in(
            &p,
            "r6",
            spec(1, "local-b"),
            false,
            SoldOut::Refuse,
            Some(&aff.id)
        )
        .await,
        Err(DomainError::SoldOut { .. })
    ));
    let members = e.placement_group_members(IdKind::Tencent);
    assert_eq!(members[&aff.id].len(), 3);
    assert!(members[&aff.id].iter().all(|m| m.id.starts_with("ins-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_deletes_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let p = admin();
    let (group, member) = {
        let e = nubis_testkit::engine_in(dir.path(), 0.0, Some(("AKIDboot", "boot-secret")), None)
            .await;
        let g = e
            .create_placement_group(
                &p,
                new_group(Policy::AntiAffinity, Flavour::TencentSwitch, 1),
            )
            .await
            .unwrap();
        // SW holds 20: a create of 21 is refused before anything exists.
        assert_eq!(
            e.create_in(
                &p,
                "r0",
                spec(21, "local-a"),
                false,
                SoldOut::Refuse,
                Some(&g.id)
            )
            .await
            .unwrap_err(),
            DomainError::GroupFull {
                group: g.id.clone(),
                limit: 20
            }
        );
        // A dry run checks the group too, and the embedded driver is one host per zone.
        assert_eq!(
            e.create_in(
                &p,
                "r1",
                spec(1, "local-a"),
                true,
                SoldOut::Refuse,
                Some(&g.id)
            )
            .await
            .unwrap_err(),
            DomainError::DryRunOk
        );
        let made = e
            .create_in(
                &p,
                "r2",
                spec(1, "local-a"),
                false,
                SoldOut::Refuse,
                Some(&g.id),
            )
            .await
            .unwrap();
        assert!(matches!(
            e.create_in(
                &p,
                "r3",
                spec(1, "local-a"),
                false,
                SoldOut::Refuse,
                Some(&g.id)
            )
            .await,
            Err(DomainError::SoldOut { .. })
        ));
        e.create_in(
            &p,
            "r4",
            spec(1, "local-b"),
            false,
            SoldOut::Refuse,
            Some(&g.id),
        )
        .await
        .unwrap();
        assert_eq!(
            e.delete_placement_groups(&p, std::slice::from_ref(&g.id), false)
                .await
                .unwrap_err(),
            DomainError::GroupNotEmpty(g.id.clone())
        );
        // An unknown group is not found, at create and at delete.
        let unknown = "00000000-0000-0000-0000-000000000000".to_string();
        let nf = DomainError::NotFound {
            kind: ResourceKind::PlacementGroup,
            id: unknown.clone(),
        };
        assert_eq!(
            e.create_in(
                &p,
                "r5",
                spec(1, "local-a"),
                false,
                SoldOut::Refuse,
                Some(&unknown)
            )
            .await
            .unwrap_err(),
            nf
        );
        assert_eq!(
            e.delete_placement_groups(&p, &[unknown], false)
                .await
                .unwrap_err(),
            nf
        );
        // The account's quota of groups.
        let mut extra = Vec::new();
        for _ in 1..GROUPS_PER_ACCOUNT {
            extra.push(
                e.create_placement_group(&p, new_group(Policy::SoftAffinity, Flavour::Nova, 1))
                    .await
                    .unwrap()
                    .id,
            );
        }
        assert_eq!(
            e.create_placement_group(&p, new_group(Policy::SoftAffinity, Flavour::Nova, 1))
                .await
                .unwrap_err(),
            DomainError::GroupQuota {
                limit: GROUPS_PER_ACCOUNT
            }
        );
        e.delete_placement_groups(&p, &extra, false).await.unwrap();
        (g, made[0].clone())
    };
    // Restarted over the same store: the group, its ID forms and its members are back.
    let e = nubis_testkit::start_in(dir.path(), 0.0).await;
    let back = e
        .placement_group(&p, IdKind::Aliyun, &group.aliyun_id)
        .expect("the group after a restart");
    assert_eq!(back, group);
    assert_eq!(e.placement_groups(&p).len(), 1);
    let members = e.placement_group_members(IdKind::Uuid);
    assert_eq!(members[&group.id].len(), 2);
    assert!(
        members[&group.id]
            .iter()
            .any(|m| m.id == member.uuid.to_string())
    );
    // Still the one host of local-a taken.
    assert!(matches!(
        e.create_in(
            &p,
            "r6",
            spec(1, "local-a"),
            false,
            SoldOut::Refuse,
            Some(&group.id)
        )
        .await,
        Err(DomainError::SoldOut { .. })
    ));
    // Nova's delete takes a group with members; they simply leave it.
    e.delete_placement_groups(&p, std::slice::from_ref(&group.id), true)
        .await
        .unwrap();
    assert!(e.placement_groups(&p).is_empty());
    assert!(e.placement_group_members(IdKind::Uuid).is_empty());
}
