//! A test instance and a test create for the rules' tables, and (feature `fixtures`, through
//! the test kit) for the other crates' tests.

use crate::model::{Disk, Instance, OpLock, OsFamily};
use crate::password::PasswordRule;
use crate::request::CreateSpec;
use crate::state::{Action, InstanceState, Restriction};

/// A Linux instance in `state`, with nothing in flight.
pub fn inst(state: InstanceState) -> Instance {
    Instance {
        uuid: uuid::Uuid::nil(),
        tencent_id: "ins-aaaaaaaa".into(),
        aliyun_id: "i-aaaaaaaaaaaaaaaaaaaa".into(),
        account: "a".into(),
        region: "local".into(),
        zone: "local-a".into(),
        name: "n".into(),
        host_name: "h".into(),
        instance_type: "S5.MEDIUM4".into(),
        image_id: "img-tos31x64".into(),
        os: OsFamily::Linux,
        state,
        restriction: Restriction::None,
        lock: None,
        latest_op: None,
        created_at_ms: 0,
        system_disk: Disk {
            id: "disk-1".into(),
            size_gib: 50,
            disk_type: "CLOUD_PREMIUM".into(),
        },
        data_disks: vec![],
        private_ip: "10.0.0.2".into(),
        key_ids: vec![],
        project_id: 0,
        charge_type: "POSTPAID_BY_HOUR".into(),
        security_group_ids: vec![],
        tags: vec![],
        stop_charging: false,
        reinstall_failed: false,
        application_role: None,
        client_token: None,
        disk_error: false,
        kms_key_id: None,
        description: String::new(),
        locked: None,
        ssh_endpoint: None,
        attrs: Default::default(),
        updated_at_ms: 0,
        generation: 0,
        internet_max_bandwidth_out: 0,
        project: None,
        user_id: None,
        host: None,
        resize_from: None,
        flavor: None,
        resize_from_flavor: None,
        placement_group: None,
        image_os_name: String::new(),
        image_user: String::new(),
        soft_deleted_at_ms: None,
        shelved_image: None,
    }
}

/// [`inst`] in `state`, locked by an operation of `action`.
pub fn locked(state: InstanceState, action: Action) -> Instance {
    Instance {
        lock: Some(OpLock {
            operation_id: uuid::Uuid::nil(),
            action,
        }),
        ..inst(state)
    }
}

/// A create of one Linux instance that boots.
pub fn spec() -> CreateSpec {
    CreateSpec {
        region: "local".into(),
        zone: "local-a".into(),
        instance_type: "S5.MEDIUM4".into(),
        image_id: "img-tos31x64".into(),
        count: 1,
        name: None,
        host_name: None,
        password: Some("Nubis@2026pw".into()),
        key_ids: vec![],
        client_token: None,
        system_disk_gib: 50,
        system_disk_type: "CLOUD_PREMIUM".into(),
        data_disks: vec![],
        rule: PasswordRule::Complexity,
        project_id: 0,
        charge_type: "POSTPAID_BY_HOUR".into(),
        security_group_ids: vec![],
        tags: vec![],
        description: None,
        start: true,
        attrs: Default::default(),
        user_data: None,
        files: Vec::new(),
        internet_max_bandwidth_out: 0,
    }
}
