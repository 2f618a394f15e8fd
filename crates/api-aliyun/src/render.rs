//! Records as Alibaba ECS JSON: every list wrapped as `{"Plural": {"Singular": [...]}}` (the
//! Tea SDK's models require it), exact JSON types for the Go SDK. And the XML form.

use nubis_core::{Action, Instance, InstanceState, KeyPair, OsFamily, Restriction, catalog};
use serde_json::{Value, json};

/// Alibaba Status for a core state (DESIGN.md "One state, three spellings").
pub fn status(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "Pending",
        InstanceState::Running
        | InstanceState::EnteringLiveMigrate
        | InstanceState::LiveMigrating
        | InstanceState::ExitingLiveMigrate => "Running",
        InstanceState::Starting | InstanceState::Rebooting | InstanceState::ExitingRescue => {
            "Starting"
        }
        InstanceState::Stopping | InstanceState::EnteringRescue | InstanceState::Terminating => {
            "Stopping"
        }
        InstanceState::Stopped | InstanceState::Rescue => "Stopped",
        // Not listed by Alibaba; the closest visible state.
        InstanceState::LaunchFailed | InstanceState::Terminated => "Stopped",
    }
}

/// The Alibaba action name for an operation, whichever dialect started it.
pub fn action(a: Action) -> &'static str {
    match a {
        Action::Create => "RunInstances",
        Action::Start => "StartInstance",
        Action::Stop => "StopInstance",
        Action::Reboot => "RebootInstance",
        Action::Terminate => "DeleteInstance",
        Action::ResetPassword => "ModifyInstanceAttribute",
        Action::EnterRescue => "EnterRescueMode",
        Action::ExitRescue => "ExitRescueMode",
        Action::AssociateKeys => "AttachKeyPair",
        Action::DisassociateKeys => "DetachKeyPair",
        Action::LiveMigrate => "MigrateInstance",
        Action::Rebuild => "ReplaceSystemDisk",
    }
}

/// `yyyy-MM-ddTHH:mmZ`, Alibaba's minute-precision UTC time.
pub fn time_minutes(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]Z"
    ))
    .unwrap_or_default()
}

pub fn zone_name(id: &str) -> &str {
    catalog::zone(id).map(|z| z.aliyun).unwrap_or(id)
}

pub fn locks(i: &Instance) -> Vec<Value> {
    let mut out = Vec::new();
    match i.restriction {
        Restriction::Security | Restriction::Banned | Restriction::Frozen => {
            out.push(json!({"LockReason": "security", "LockMsg": ""}))
        }
        Restriction::Expired | Restriction::Isolating => {
            out.push(json!({"LockReason": "financial", "LockMsg": ""}))
        }
        Restriction::None => {}
    }
    // Rescue has no Alibaba state of its own: Stopped plus a lock (DESIGN.md).
    if matches!(
        i.state,
        InstanceState::Rescue | InstanceState::EnteringRescue | InstanceState::ExitingRescue
    ) {
        out.push(json!({"LockReason": "rescue", "LockMsg": "the instance is in rescue mode"}));
    }
    out
}

pub fn instance(i: &Instance, key_name: &str) -> Value {
    let ty = catalog::instance_type(&i.instance_type);
    let image = catalog::image(&i.image_id);
    let region = catalog::region(&i.region).map(|r| r.aliyun).unwrap_or("");
    json!({
        "InstanceId": i.aliyun_id,
        "InstanceName": i.name,
        "Description": i.description,
        "HostName": i.host_name,
        "RegionId": region,
        "ZoneId": zone_name(&i.zone),
        "InstanceType": ty.map(|t| t.aliyun).unwrap_or(""),
        "InstanceTypeFamily": ty.map(|t| t.aliyun.rsplit_once('.').map(|(f, _)| f).unwrap_or(t.aliyun)).unwrap_or(""),
        "Cpu": ty.map(|t| t.cpu).unwrap_or(0),
        "Memory": ty.map(|t| t.memory_gib * 1024).unwrap_or(0),
        "Status": status(i.state),
        "OperationLocks": {"LockReason": locks(i)},
        "KeyPairName": key_name,
        "ImageId": i.image_id,
        "OSName": image.map(|m| m.os_name).unwrap_or(""),
        "OSNameEn": image.map(|m| m.os_name).unwrap_or(""),
        "OSType": if i.os == OsFamily::Windows { "windows" } else { "linux" },
        "CreationTime": time_minutes(i.created_at_ms),
        "StartTime": time_minutes(i.created_at_ms),
        "ExpiredTime": "2099-12-31T15:59Z",
        "AutoReleaseTime": "",
        "InstanceChargeType": "PostPaid",
        "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": 0,
        "InternetMaxBandwidthOut": 0,
        "InstanceNetworkType": "vpc",
        "VpcAttributes": {"VpcId": "vpc-nubis000", "VSwitchId": "vsw-nubis000", "PrivateIpAddress": {"IpAddress": [i.private_ip]}, "NatIpAddress": ""},
        "PublicIpAddress": {"IpAddress": []},
        "InnerIpAddress": {"IpAddress": []},
        "RdmaIpAddress": {"IpAddress": []},
        "EipAddress": {"AllocationId": "", "IpAddress": "", "InternetChargeType": "", "Bandwidth": 0, "IsSupportUnassociate": false},
        "SecurityGroupIds": {"SecurityGroupId": i.security_group_ids},
        "NetworkInterfaces": {"NetworkInterface": []},
        "Tags": {"Tag": i.shown_tags().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect::<Vec<_>>()},
        "StoppedMode": if i.state == InstanceState::Stopped { if i.stop_charging { "StopCharging" } else { "KeepCharging" } } else { "Not-applicable" },
        "DeletionProtection": false,
        "IoOptimized": true,
        "DeviceAvailable": true,
        "Recyclable": false,
        "SerialNumber": i.uuid.to_string(),
        "GPUAmount": 0,
        "LocalStorageAmount": 0,
        "LocalStorageCapacity": 0,
        "DeploymentSetGroupNo": 0,
        "SpotStrategy": "NoSpot",
        "ResourceGroupId": "",
        "CreditSpecification": "",
        "SaleCycle": "",
        "DeploymentSetId": "",
        "HpcClusterId": "",
        "ClusterId": "",
        "VlanId": "",
        "GPUSpec": "",
    })
}

pub use nubis_engine::md5_fingerprint as fingerprint;

pub fn key_pair(k: &KeyPair, include_public: bool) -> Value {
    let mut v = json!({
        "KeyPairName": k.name,
        "KeyPairFingerPrint": fingerprint(&k.public_key),
        "CreationTime": time_minutes(k.created_at_ms),
        "ResourceGroupId": "",
        "Tags": {"Tag": []},
    });
    if include_public {
        v["PublicKey"] = json!(k.public_key);
    }
    v
}

/// The XML form (Format=XML): objects become elements; a list under key K becomes repeated
/// `<K>` elements, which is exactly how `{"Instances": {"Instance": [...]}}` reads in XML.
pub fn xml(root: &str, v: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    element(&mut out, root, v);
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn element(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, child) in map {
                element(out, k, child);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}/>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_lists_repeat_their_element() {
        let v = json!({"RequestId": "R", "Instances": {"Instance": [{"InstanceId": "a"}, {"InstanceId": "b<"}]}});
        assert_eq!(
            xml("DescribeInstancesResponse", &v),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeInstancesResponse><Instances><Instance><InstanceId>a</InstanceId></Instance><Instance><InstanceId>b&lt;</InstanceId></Instance></Instances><RequestId>R</RequestId></DescribeInstancesResponse>"
        );
    }

    #[test]
    fn every_state_renders() {
        for s in InstanceState::ALL {
            assert!(["Pending", "Running", "Starting", "Stopping", "Stopped"].contains(&status(s)));
        }
    }
}
