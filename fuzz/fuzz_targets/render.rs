//! The renderers fed arbitrary strings: an instance and a key pair whose every user-settable
//! string (names, host names, tags, descriptions, key material, ids) is attacker-chosen,
//! rendered by Tencent (JSON), Alibaba (JSON and Format=XML) and Nova (JSON); every output must
//! parse back, and the strings must survive the round trip unchanged.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use nubis_api_openstack::microversion::Version;
use nubis_api_openstack::render::{ServerCtx, key_pair_detail, server};
use nubis_api_openstack::state::Extra;
use nubis_core::hosts::HostHealth;
use nubis_core::{Disk, Instance, InstanceState, KeyPair, OsFamily, Restriction, catalog};
use nubis_fuzz::{must_json, must_xml};
use serde_json::json;

fn s(u: &mut Unstructured<'_>) -> Result<String> {
    u.arbitrary()
}

fn build(u: &mut Unstructured<'_>) -> Result<(Instance, KeyPair)> {
    let images = catalog::IMAGES;
    let types = catalog::INSTANCE_TYPES;
    let restrictions = [
        Restriction::None,
        Restriction::Expired,
        Restriction::Isolating,
        Restriction::Frozen,
        Restriction::Banned,
        Restriction::Security,
    ];
    let mut tags = Vec::new();
    for _ in 0..u.int_in_range(0..=3)? {
        tags.push((s(u)?, s(u)?));
    }
    let inst = Instance {
        uuid: uuid::Uuid::from_u128(u.arbitrary()?),
        tencent_id: s(u)?,
        aliyun_id: s(u)?,
        account: s(u)?,
        region: if u.arbitrary()? { "gz".into() } else { s(u)? },
        zone: s(u)?,
        name: s(u)?,
        host_name: s(u)?,
        instance_type: if u.arbitrary()? {
            types[u.choose_index(types.len())?].name.to_string()
        } else {
            s(u)?
        },
        image_id: if u.arbitrary()? {
            images[u.choose_index(images.len())?].id.to_string()
        } else {
            s(u)?
        },
        os: if u.arbitrary()? {
            OsFamily::Linux
        } else {
            OsFamily::Windows
        },
        state: InstanceState::ALL[u.choose_index(InstanceState::ALL.len())?],
        restriction: restrictions[u.choose_index(restrictions.len())?],
        lock: None,
        latest_op: None,
        created_at_ms: u.arbitrary()?,
        system_disk: Disk {
            id: s(u)?,
            size_gib: u.arbitrary()?,
            disk_type: s(u)?,
        },
        data_disks: vec![Disk {
            id: s(u)?,
            size_gib: u.arbitrary()?,
            disk_type: s(u)?,
        }],
        private_ip: s(u)?,
        key_ids: vec![s(u)?],
        project_id: u.arbitrary()?,
        charge_type: s(u)?,
        security_group_ids: vec![s(u)?],
        tags,
        stop_charging: u.arbitrary()?,
        reinstall_failed: u.arbitrary()?,
        application_role: u.arbitrary()?,
        project: u.arbitrary()?,
        user_id: u.arbitrary()?,
        // The agent host it runs on (any string: it is rendered as Nova's host).
        host: u.arbitrary()?,
        client_token: u.arbitrary()?,
        disk_error: u.arbitrary()?,
        kms_key_id: u.arbitrary()?,
        description: s(u)?,
        locked: u.arbitrary()?,
        ssh_endpoint: u.arbitrary()?,
        attrs: nubis_core::UserAttrs {
            access_ipv4: u.arbitrary()?,
            access_ipv6: u.arbitrary()?,
            auto_disk_config: u.arbitrary()?,
            scheduler_hints: u.arbitrary()?,
        },
        updated_at_ms: u.arbitrary()?,
        generation: u.arbitrary()?,
        internet_max_bandwidth_out: u.arbitrary()?,
        // The type a resize awaiting confirmation goes back to, the placement group.
        resize_from: u.arbitrary()?,
        // The facts of a created type (docs/flavors.md), named as the record's type or not.
        flavor: match u.arbitrary::<bool>()? {
            true => Some(catalog::InstanceType {
                name: s(u)?.into(),
                aliyun: s(u)?.into(),
                family: s(u)?.into(),
                cpu: u.arbitrary()?,
                memory_mib: u.arbitrary()?,
                arch: catalog::Arch::X86_64,
                kind: catalog::TypeKind::Standard,
            }),
            false => None,
        },
        resize_from_flavor: None,
        placement_group: u.arbitrary()?,
        image_os_name: u.arbitrary()?,
        image_user: u.arbitrary()?,
        shelved_image: u.arbitrary()?,
        soft_deleted_at_ms: u.arbitrary()?,
    };
    let key = KeyPair {
        id: s(u)?,
        key_type: Default::default(),
        account: s(u)?,
        name: s(u)?,
        project_id: u.arbitrary()?,
        description: s(u)?,
        public_key: s(u)?,
        created_at_ms: u.arbitrary()?,
        user_id: u.arbitrary()?,
    };
    Ok((inst, key))
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((inst, key)) = build(&mut u) else {
        return;
    };

    // Tencent.
    let t = serde_json::to_vec(&json!({"Response": {"InstanceSet": [nubis_api_tencent::render::instance(&inst, inst.placement_group.as_deref().unwrap_or_default())], "KeyPairSet": [nubis_api_tencent::render::key_pair(&key, std::slice::from_ref(&inst.tencent_id))], "RequestId": "r"}}))
        .expect("serialize");
    let v = must_json("tencent instance", &t);
    assert_eq!(
        v["Response"]["InstanceSet"][0]["InstanceName"],
        json!(inst.name)
    );

    // Alibaba, JSON and XML.
    let a = json!({"Instances": {"Instance": [nubis_api_aliyun::render::instance(&inst, &key.name, inst.placement_group.as_deref().unwrap_or_default())]}, "KeyPairs": {"KeyPair": [nubis_api_aliyun::render::key_pair(&key, true)]}, "RequestId": "r"});
    let text = serde_json::to_vec(&a).expect("serialize");
    must_json("aliyun instance", &text);
    must_xml(
        "aliyun instance XML",
        nubis_api_aliyun::render::xml("DescribeInstancesResponse", &a).as_bytes(),
    );
    let err = json!({"RequestId": "r", "HostId": "h", "Code": inst.name, "Message": inst.host_name, "Recommend": inst.description});
    must_xml(
        "aliyun error XML",
        nubis_api_aliyun::render::xml("Error", &err).as_bytes(),
    );

    // Nova.
    let ctx = ServerCtx {
        base: "http://127.0.0.1:8080/compute",
        version: Version(2, u.int_in_range(1..=100).unwrap_or(1)),
        admin: u.arbitrary().unwrap_or(true),
        extra: Extra::default(),
        key_name: Some(key.name.clone()),
        show: u.arbitrary().unwrap_or(true),
        user_data: u.arbitrary().unwrap_or_default(),
        // An aggregate's zone for the server's host: attacker-chosen (an admin names it).
        host_zone: u.arbitrary().unwrap_or_default(),
        // Whether the server's agent host answers.
        host_health: [
            None,
            Some(HostHealth::Up),
            Some(HostHealth::Lost),
            Some(HostHealth::New),
        ][u.choose_index(4).unwrap_or(0)],
        image_uuid: uuid::Uuid::from_u128(u.arbitrary().unwrap_or_default()),
        // Glance properties are any strings a user sets (2.98); hints any JSON text (2.100).
        image_properties: u
            .arbitrary::<Vec<(String, String)>>()
            .ok()
            .map(|p| p.into_iter().map(|(k, v)| (k, json!(v))).collect()),
        scheduler_hints: inst
            .attrs
            .scheduler_hints
            .as_deref()
            .and_then(|h| serde_json::from_str(h).ok()),
    };
    let n = serde_json::to_vec(
        &json!({"server": server(&inst, &ctx), "keypair": key_pair_detail(&key, ctx.version)}),
    )
    .expect("serialize");
    let v = must_json("nova server", &n);
    assert_eq!(v["server"]["name"], json!(inst.name));
});
