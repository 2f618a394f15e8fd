//! Domain records rendered as Tencent CVM JSON (exact types: the Go SDK is strict).

use nubis_core::allowance::Allowance;
use nubis_core::{Action, Instance, InstanceState, KeyPair, Restriction, catalog};
use nubis_pipeline::shapes::iso_seconds;
use serde::Serialize;
use serde_json::{Value, json};

/// The one VPC and subnet every instance is in.
pub(crate) const VPC_ID: &str = "vpc-nubis000";
pub(crate) const SUBNET_ID: &str = "subnet-nubis000";

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
        // CVM has no state of its own for a type change: the guest is powered off while its
        // type changes (LatestOperationState says OPERATING); one awaiting a Nova
        // confirmation shows its power.
        InstanceState::Resizing | InstanceState::RevertingResize => "STOPPED",
        InstanceState::VerifyResize => "RUNNING",
        InstanceState::VerifyResizeStopped => "STOPPED",
        // Tencent has no paused, suspended or shelved instance: a held guest does not run, so
        // it shows STOPPED; going into a hold STOPPING, coming out STARTING
        // (docs/pause-suspend-shelve.md).
        InstanceState::Paused
        | InstanceState::Suspended
        | InstanceState::Shelved
        | InstanceState::ShelvedOffloaded => "STOPPED",
        InstanceState::Pausing
        | InstanceState::Suspending
        | InstanceState::Shelving
        | InstanceState::ShelvingOffloading => "STOPPING",
        InstanceState::Unpausing | InstanceState::Resuming | InstanceState::Unshelving => {
            "STARTING"
        }
        // A server Nova soft-deleted is in the recycle bin: SHUTDOWN, CVM's "awaiting
        // destruction" (going there STOPPING, restored STARTING). One an operator marked
        // broken (Nova os-resetState) shows RUNNING, the state whose actions (stop, terminate,
        // reinstall) get it out (docs/deferred-delete.md).
        InstanceState::SoftDeleting => "STOPPING",
        InstanceState::SoftDeleted => "SHUTDOWN",
        InstanceState::Restoring => "STARTING",
        InstanceState::Error => "RUNNING",
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
        Action::Rebuild => "ResetInstance",
        Action::Resize | Action::ConfirmResize | Action::RevertResize => "ResetInstancesType",
        // Nova's own actions: Tencent has no name for them; its LatestOperation shows Nova's.
        Action::Pause => "PauseServer",
        Action::Unpause => "UnpauseServer",
        Action::Suspend => "SuspendServer",
        Action::Resume => "ResumeServer",
        Action::Shelve => "ShelveServer",
        Action::ShelveOffload => "ShelveOffloadServer",
        Action::Unshelve => "UnshelveServer",
        // A soft delete is Tencent's recycle (TerminateInstances of a PREPAID instance) or
        // Nova's deferred delete.
        Action::SoftDelete => "TerminateInstances",
        Action::Restore => "RestoreServer",
        Action::CreateImage => "CreateImage",
    }
}

pub fn zone_name(id: &str) -> &str {
    catalog::zone(id).map(|z| z.tencent).unwrap_or(id)
}

/// One DescribeInstances element, serialized straight from borrowed fields: a page of 100 is
/// the hottest large response, so no intermediate JSON tree is built.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceOut<'a> {
    placement: PlacementOut<'a>,
    instance_id: &'a str,
    uuid: String,
    instance_type: &'a str,
    #[serde(rename = "CPU")]
    cpu: u32,
    memory: u32,
    restrict_state: &'static str,
    isolated_source: &'static str,
    instance_name: &'a str,
    instance_charge_type: &'a str,
    system_disk: DiskOut<'a>,
    data_disks: Vec<DataDiskOut<'a>>,
    private_ip_addresses: [&'a str; 1],
    public_ip_addresses: [&'a str; 0],
    internet_accessible: InternetOut,
    virtual_private_cloud: VpcOut<'a>,
    image_id: &'a str,
    os_name: &'a str,
    renew_flag: Option<&'a str>,
    created_time: String,
    expired_time: Option<&'a str>,
    security_group_ids: &'a [String],
    login_settings: LoginOut<'a>,
    instance_state: &'static str,
    tags: Vec<TagOut<'a>>,
    stop_charging_mode: &'static str,
    latest_operation: Option<&'static str>,
    latest_operation_state: Option<&'static str>,
    latest_operation_request_id: Option<&'a str>,
    latest_operation_error_msg: Option<&'a str>,
    disaster_recover_group_id: &'a str,
    #[serde(rename = "IPv6Addresses")]
    ipv6_addresses: Option<()>,
    cam_role_name: &'static str,
    hpc_cluster_id: &'static str,
    rdma_ip_addresses: Option<()>,
    dedicated_cluster_id: &'static str,
    disable_api_termination: bool,
    default_login_user: &'a str,
    default_login_port: u16,
    host_name: &'a str,
    license_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PlacementOut<'a> {
    zone: &'a str,
    project_id: i64,
    host_ids: Option<()>,
    host_id: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DiskOut<'a> {
    disk_type: &'a str,
    disk_id: &'a str,
    disk_size: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DataDiskOut<'a> {
    disk_size: u32,
    disk_type: &'a str,
    disk_id: &'a str,
    delete_with_instance: bool,
    encrypt: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct InternetOut {
    internet_charge_type: &'static str,
    internet_max_bandwidth_out: u32,
    public_ip_assigned: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct VpcOut<'a> {
    vpc_id: &'static str,
    subnet_id: &'static str,
    as_vpc_gateway: bool,
    private_ip_addresses: [&'a str; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LoginOut<'a> {
    key_ids: &'a [String],
    password: Option<()>,
    keep_image_login: Option<()>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TagOut<'a> {
    key: &'a str,
    value: &'a str,
}

/// `i` as DescribeInstances shows it; `group`: the `ps-` ID of its placement group, or "".
pub fn instance<'a>(i: &'a Instance, group: &'a str) -> InstanceOut<'a> {
    let ty = i.type_facts();
    let (restrict_state, isolated_source) = match i.restriction {
        Restriction::None => ("NORMAL", "NOTISOLATED"),
        Restriction::Expired => ("EXPIRED", "EXPIRE"),
        Restriction::Isolating
        | Restriction::Frozen
        | Restriction::Banned
        | Restriction::Security => ("PROTECTIVELY_ISOLATED", "MANMADE"),
    };
    InstanceOut {
        placement: PlacementOut {
            zone: zone_name(&i.zone),
            project_id: i.project_id,
            host_ids: None,
            host_id: None,
        },
        instance_id: &i.tencent_id,
        uuid: i.uuid.to_string(),
        instance_type: &i.instance_type,
        cpu: ty.map(|t| t.cpu).unwrap_or(0),
        memory: ty.map(|t| t.memory_gib()).unwrap_or(0),
        restrict_state,
        isolated_source,
        instance_name: &i.name,
        instance_charge_type: &i.charge_type,
        system_disk: DiskOut {
            disk_type: &i.system_disk.disk_type,
            disk_id: &i.system_disk.id,
            disk_size: i.system_disk.size_gib,
        },
        data_disks: i
            .data_disks
            .iter()
            .map(|d| DataDiskOut {
                disk_size: d.size_gib,
                disk_type: &d.disk_type,
                disk_id: &d.id,
                delete_with_instance: true,
                encrypt: false,
            })
            .collect(),
        private_ip_addresses: [&i.private_ip],
        public_ip_addresses: [],
        internet_accessible: InternetOut {
            internet_charge_type: "TRAFFIC_POSTPAID_BY_HOUR",
            internet_max_bandwidth_out: 0,
            public_ip_assigned: false,
        },
        virtual_private_cloud: VpcOut {
            vpc_id: VPC_ID,
            subnet_id: SUBNET_ID,
            as_vpc_gateway: false,
            private_ip_addresses: [&i.private_ip],
        },
        image_id: &i.image_id,
        os_name: i.os_name(),
        renew_flag: None,
        created_time: iso_seconds(i.created_at_ms),
        expired_time: None,
        security_group_ids: &i.security_group_ids,
        login_settings: LoginOut {
            key_ids: &i.key_ids,
            password: None,
            keep_image_login: None,
        },
        instance_state: state(i.state),
        tags: i
            .shown_tags()
            .map(|(key, value)| TagOut { key, value })
            .collect(),
        stop_charging_mode: if i.stop_charging {
            "STOP_CHARGING"
        } else {
            "NOT_APPLICABLE"
        },
        latest_operation: i.latest_op.as_ref().map(|o| action(o.action)),
        latest_operation_state: i.latest_op.as_ref().map(|o| o.state.as_str()),
        latest_operation_request_id: i.latest_op.as_ref().map(|o| o.request_id.as_str()),
        latest_operation_error_msg: i.latest_op.as_ref().and_then(|o| o.error.as_deref()),
        disaster_recover_group_id: group,
        ipv6_addresses: None,
        cam_role_name: "",
        hpc_cluster_id: "",
        rdma_ip_addresses: None,
        dedicated_cluster_id: "",
        disable_api_termination: false,
        default_login_user: i.os_user(),
        default_login_port: if i.os == nubis_core::OsFamily::Windows {
            3389
        } else {
            22
        },
        host_name: &i.host_name,
        license_type: "TencentCloud",
    }
}

/// One OperationCountLimit: -1 where the operation is not counted for the instance.
pub fn operation_limit(i: &Instance, operation: &str, a: Allowance) -> Value {
    let count = |n: Option<u32>| n.map_or(-1, i64::from);
    json!({"Operation": operation, "InstanceId": i.tencent_id, "CurrentCount": count(a.used), "LimitCount": count(a.limit)})
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
        "CreatedTime": iso_seconds(k.created_at_ms),
        "Tags": [],
    })
}
