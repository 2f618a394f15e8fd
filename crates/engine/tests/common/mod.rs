//! What the engine's integration tests share: the admin principal and a create.

use nubis_core::{CreateSpec, Principal};

pub fn admin() -> Principal {
    Principal {
        account: "admin".into(),
        user: "admin".into(),
        is_admin: true,
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
        name: Some("r".into()),
        host_name: None,
        password: Some("Nubis@2026pw".into()),
        key_ids: vec![],
        client_token: None,
        system_disk_gib: 50,
        system_disk_type: "CLOUD_PREMIUM".into(),
        data_disks: vec![],
        project_id: 0,
        charge_type: "POSTPAID_BY_HOUR".into(),
        security_group_ids: vec![],
        tags: vec![],
        description: None,
        start: true,
        attrs: Default::default(),
        rule: nubis_core::password::PasswordRule::Complexity,
        user_data: None,
        internet_max_bandwidth_out: 0,
    }
}
