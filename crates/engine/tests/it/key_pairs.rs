//! Key pairs are canonical records; the instances a key pair is associated with are named in
//! the namespace of the dialect that asks.

use nubis_core::{CreateSpec, Instance, KeyPair, Principal};
use nubis_engine::{Engine, IdKind};
use nubis_testkit::{admin, linux_spec};

/// How a test reads an instance's ID in one namespace straight from its record.
type IdField = fn(&Instance) -> String;

/// A new key pair `name` of `p` (generated).
async fn key_pair(e: &Engine, p: &Principal, name: &str) -> KeyPair {
    e.create_key_pair(p, name, 0, None).await.unwrap().key_pair
}

/// `count` instances of `p` created with key pair `key`.
async fn create_with_key(
    e: &Engine,
    p: &Principal,
    request_id: &str,
    count: u32,
    key: &KeyPair,
) -> Vec<Instance> {
    let spec = CreateSpec {
        count,
        key_ids: vec![key.id.clone()],
        ..linux_spec()
    };
    e.create(p, request_id, spec, false).await.unwrap()
}

#[tokio::test]
async fn key_pairs_are_canonical_and_each_dialect_names_their_instances() {
    let (e, _dir) = nubis_testkit::engine().await;
    let p = admin();
    let used = key_pair(&e, &p, "used").await;
    let unused = key_pair(&e, &p, "unused").await;
    let insts = create_with_key(&e, &p, "req-keys", 2, &used).await;

    let mut want = vec![used.clone(), unused.clone()];
    want.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
    assert_eq!(e.key_pairs(&p), want);

    let by_field: [(IdKind, IdField); 3] = [
        (IdKind::Tencent, |i| i.tencent_id.clone()),
        (IdKind::Aliyun, |i| i.aliyun_id.clone()),
        (IdKind::Uuid, |i| i.uuid.to_string()),
    ];
    for (kind, id) in by_field {
        let associated = e.key_pair_instances(&p, kind);
        let want: Vec<String> = insts.iter().map(id).collect();
        assert_eq!(associated.get(&used.id), Some(&want), "{kind:?}");
        assert_eq!(associated.get(&unused.id), None, "{kind:?}");
    }

    // Another account sees neither the key pairs nor their associations.
    let other = Principal {
        account: "other".into(),
        user: "other".into(),
        is_admin: false,
        sub_user: None,
        ..Default::default()
    };
    assert!(e.key_pairs(&other).is_empty());
    assert!(e.key_pair_instances(&other, IdKind::Tencent).is_empty());

    // A key of `other` that an admin put on an admin instance: its owner sees the key pair
    // but not the instance of another account.
    let theirs = key_pair(&e, &other, "theirs").await;
    let admins = create_with_key(&e, &p, "req-cross", 1, &theirs).await;
    assert_eq!(e.key_pairs(&other), vec![theirs.clone()]);
    assert!(e.key_pair_instances(&other, IdKind::Tencent).is_empty());
    assert_eq!(
        e.key_pair_instances(&p, IdKind::Tencent).get(&theirs.id),
        Some(&vec![admins[0].tencent_id.clone()])
    );
}
