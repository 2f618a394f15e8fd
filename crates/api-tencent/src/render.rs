//! Domain records rendered as Tencent CVM JSON (exact types: the Go SDK is strict).

use nubis_core::{Action, Instance, InstanceState, KeyPair, Restriction, catalog};
use serde_json::{Value, json};

pub fn state(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "PENDING",
        InstanceState::LaunchFailed => "LAUNCH_FAILED",
        InstanceState::Running => "RUNNING",
        InstanceState::Starting => "STARTING",
        InstanceState::Stopping => "STOPPING",
        InstanceState::Stopped => "STOPPED",
        InstanceState::Rebooting => "REBOOTING",
        InstanceState::EnteringRescue => "ENTER_RESCUE_MODE",
        InstanceState::Rescue => "RESCUE_MODE",
        InstanceState::ExitingRescue => "EXIT_RESCUE_MODE",
        InstanceState::Terminating | InstanceState::Terminated => "TERMINATING",
        InstanceState::EnteringLiveMigrate => "ENTER_SERVICE_LIVE_MIGRATE",
        InstanceState::LiveMigrating => "SERVICE_LIVE_MIGRATE",
        InstanceState::ExitingLiveMigrate => "EXIT_SERVICE_LIVE_MIGRATE",
    }
}

/// The Tencent action name for LatestOperation, whichever dialect started it.
pub fn action(a: Action) -> &'static str {
    match a {
        Action::Create => "RunInstances",
        Action::Start => "StartInstances",
        Action::Stop => "StopInstances",
        Action::Reboot => "RebootInstances",
        Action::Terminate => "TerminateInstances",
        Action::ResetPassword => "ResetInstancesPassword",
        Action::EnterRescue => "EnterRescueMode",
        Action::ExitRescue => "ExitRescueMode",
        Action::AssociateKeys => "AssociateInstancesKeyPairs",
        Action::DisassociateKeys => "DisassociateInstancesKeyPairs",
        Action::LiveMigrate => "MigrateInstance",
    }
}

pub fn time_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

pub fn zone_name(id: &str) -> &str {
    catalog::zone(id).map(|z| z.tencent).unwrap_or(id)
}

pub fn instance(i: &Instance) -> Value {
    let ty = catalog::instance_type(&i.instance_type);
    let image = catalog::image(&i.image_id);
    let (restrict, isolated) = match i.restriction {
        Restriction::None => ("NORMAL", "NOTISOLATED"),
        Restriction::Expired => ("EXPIRED", "EXPIRE"),
        Restriction::Isolating
        | Restriction::Frozen
        | Restriction::Banned
        | Restriction::Security => ("PROTECTIVELY_ISOLATED", "MANMADE"),
    };
    json!({
        "Placement": {"Zone": zone_name(&i.zone), "ProjectId": i.project_id, "HostIds": null, "HostId": null},
        "InstanceId": i.tencent_id,
        "Uuid": i.uuid.to_string(),
        "InstanceType": i.instance_type,
        "CPU": ty.map(|t| t.cpu).unwrap_or(0),
        "Memory": ty.map(|t| t.memory_gib).unwrap_or(0),
        "RestrictState": restrict,
        "IsolatedSource": isolated,
        "InstanceName": i.name,
        "InstanceChargeType": i.charge_type,
        "SystemDisk": {"DiskType": i.system_disk.disk_type, "DiskId": i.system_disk.id, "DiskSize": i.system_disk.size_gib},
        "DataDisks": i.data_disks.iter().map(|d| json!({"DiskSize": d.size_gib, "DiskType": d.disk_type, "DiskId": d.id, "DeleteWithInstance": true, "Encrypt": false})).collect::<Vec<_>>(),
        "PrivateIpAddresses": [i.private_ip],
        "PublicIpAddresses": [],
        "InternetAccessible": {"InternetChargeType": "TRAFFIC_POSTPAID_BY_HOUR", "InternetMaxBandwidthOut": 0, "PublicIpAssigned": false},
        "VirtualPrivateCloud": {"VpcId": "vpc-nubis000", "SubnetId": "subnet-nubis000", "AsVpcGateway": false, "PrivateIpAddresses": [i.private_ip]},
        "ImageId": i.image_id,
        "OsName": image.map(|m| m.os_name).unwrap_or(""),
        "RenewFlag": null,
        "CreatedTime": time_ms(i.created_at_ms),
        "ExpiredTime": null,
        "SecurityGroupIds": i.security_group_ids,
        "LoginSettings": {"KeyIds": i.key_ids, "Password": null, "KeepImageLogin": null},
        "InstanceState": state(i.state),
        "Tags": i.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        "StopChargingMode": if i.stop_charging { "STOP_CHARGING" } else { "NOT_APPLICABLE" },
        "LatestOperation": i.latest_op.as_ref().map(|o| action(o.action)),
        "LatestOperationState": i.latest_op.as_ref().map(|o| o.state.as_str()),
        "LatestOperationRequestId": i.latest_op.as_ref().map(|o| o.request_id.clone()),
        "LatestOperationErrorMsg": i.latest_op.as_ref().and_then(|o| o.error.clone()),
        "DisasterRecoverGroupId": "",
        "IPv6Addresses": null,
        "CamRoleName": "",
        "HpcClusterId": "",
        "RdmaIpAddresses": null,
        "DedicatedClusterId": "",
        "DisableApiTermination": false,
        "DefaultLoginUser": image.map(|m| m.default_user).unwrap_or("root"),
        "DefaultLoginPort": if i.os == nubis_core::OsFamily::Windows { 3389 } else { 22 },
        "HostName": i.host_name,
        "LicenseType": "TencentCloud",
    })
}

pub fn key_pair(k: &KeyPair, instances: &[String]) -> Value {
    json!({
        "KeyId": k.id,
        "KeyName": k.name,
        "ProjectId": k.project_id,
        "Description": k.description,
        "PublicKey": k.public_key,
        "PrivateKey": null,
        "AssociatedInstanceIds": instances,
        "CreatedTime": time_ms(k.created_at_ms),
        "Tags": [],
    })
}

pub fn image(m: &catalog::Image) -> Value {
    json!({
        "ImageId": m.id,
        "OsName": m.os_name,
        "ImageType": "PUBLIC_IMAGE",
        "CreatedTime": "2024-01-01T00:00:00Z",
        "ImageName": m.name,
        "ImageDescription": m.name,
        "ImageSize": m.size_gib,
        "Architecture": "x86_64",
        "ImageState": "NORMAL",
        "Platform": m.platform,
        "ImageCreator": "",
        "ImageSource": "OFFICIAL",
        "SyncPercent": 100,
        "IsSupportCloudinit": m.os == nubis_core::OsFamily::Linux,
        "SnapshotSet": [],
        "Tags": [],
        "LicenseType": "TencentCloud",
        "ImageFamily": "",
        "ImageDeprecated": false,
    })
}
