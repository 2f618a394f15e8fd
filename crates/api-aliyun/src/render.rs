//! Records as Alibaba ECS JSON: every list wrapped as `{"Plural": {"Singular": [...]}}` (the
//! Tea SDK's models require it), exact JSON types for the Go SDK. And the XML form.

use nubis_core::{Action, Instance, InstanceState, KeyPair, OsFamily, Restriction, catalog};
use nubis_pipeline::shapes::iso_minutes;
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
        // ModifyInstanceSpec changes a stopped instance's type: it stays Stopped; one
        // awaiting a Nova confirmation shows its power.
        InstanceState::Resizing
        | InstanceState::RevertingResize
        | InstanceState::VerifyResizeStopped => "Stopped",
        InstanceState::VerifyResize => "Running",
        // Alibaba has no paused, suspended or shelved instance: a held guest does not run, so
        // it shows Stopped; going into a hold Stopping, coming out Starting
        // (docs/pause-suspend-shelve.md).
        InstanceState::Paused
        | InstanceState::Suspended
        | InstanceState::Shelved
        | InstanceState::ShelvedOffloaded => "Stopped",
        InstanceState::Pausing
        | InstanceState::Suspending
        | InstanceState::Shelving
        | InstanceState::ShelvingOffloading => "Stopping",
        InstanceState::Unpausing | InstanceState::Resuming | InstanceState::Unshelving => {
            "Starting"
        }
        // Alibaba has no recycle bin: a server Nova soft-deleted is a stopped one (going there
        // Stopping, restored Starting); one an operator marked broken (Nova os-resetState)
        // shows Running, the state whose actions (stop, delete, reinstall) get it out
        // (docs/deferred-delete.md).
        InstanceState::SoftDeleting => "Stopping",
        InstanceState::SoftDeleted => "Stopped",
        InstanceState::Restoring => "Starting",
        InstanceState::Error => "Running",
    }
}

/// DescribeInstancesFullStatus `Status`: the lifecycle status [`status`] names, with its
/// code (ECS documents Running = 1; the others follow the same numbering).
pub fn status_code(s: InstanceState) -> (u32, &'static str) {
    let name = status(s);
    let code = match name {
        "Pending" => 0,
        "Running" => 1,
        "Starting" => 2,
        "Stopping" => 64,
        _ => 80,
    };
    (code, name)
}

/// DescribeInstancesFullStatus `HealthStatus`: what the guest's state says about its health
/// (ECS: Starting → Initializing, Running → Ok, a guest that is not running → NotApplicable;
/// a live migration is maintenance). Only the names are documented as values; the codes are
/// nubis's (Warning = 64 as ECS documents it, unused: nubis raises no warnings).
pub fn health(s: InstanceState) -> (u32, &'static str) {
    match s {
        InstanceState::Running => (0, "Ok"),
        // Running on its new type, not yet kept: a change in progress, like a migration.
        InstanceState::VerifyResize
        | InstanceState::EnteringLiveMigrate
        | InstanceState::LiveMigrating
        | InstanceState::ExitingLiveMigrate => (128, "Maintaining"),
        InstanceState::Pending
        | InstanceState::Starting
        | InstanceState::Rebooting
        | InstanceState::ExitingRescue
        | InstanceState::Unpausing
        | InstanceState::Resuming
        | InstanceState::Unshelving => (2, "Initializing"),
        InstanceState::Stopping
        | InstanceState::EnteringRescue
        | InstanceState::Terminating
        | InstanceState::Stopped
        | InstanceState::Rescue
        | InstanceState::LaunchFailed
        | InstanceState::Terminated
        | InstanceState::Resizing
        | InstanceState::RevertingResize
        | InstanceState::VerifyResizeStopped => (4, "NotApplicable"),
        InstanceState::Pausing
        | InstanceState::Paused
        | InstanceState::Suspending
        | InstanceState::Suspended
        | InstanceState::Shelving
        | InstanceState::Shelved
        | InstanceState::ShelvingOffloading
        | InstanceState::ShelvedOffloaded => (4, "NotApplicable"),
        InstanceState::SoftDeleting | InstanceState::SoftDeleted => (4, "NotApplicable"),
        InstanceState::Restoring => (2, "Initializing"),
        // Marked broken by an operator: ECS's Warning.
        InstanceState::Error => (64, "Warning"),
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
        Action::Resize | Action::ConfirmResize | Action::RevertResize => "ModifyInstanceSpec",
        // Nova's own actions: Alibaba has no name for them.
        Action::Pause => "PauseServer",
        Action::Unpause => "UnpauseServer",
        Action::Suspend => "SuspendServer",
        Action::Resume => "ResumeServer",
        Action::Shelve => "ShelveServer",
        Action::ShelveOffload => "ShelveOffloadServer",
        Action::Unshelve => "UnshelveServer",
        Action::SoftDelete => "SoftDeleteServer",
        Action::Restore => "RestoreServer",
        Action::CreateImage => "CreateImage",
    }
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

/// `i` as DescribeInstances shows it; `deployment_set`: the `ds-` ID of its set, or "".
pub fn instance(i: &Instance, key_name: &str, deployment_set: &str) -> Value {
    let ty = i.type_facts();
    let region = catalog::region(&i.region).map(|r| r.aliyun).unwrap_or("");
    json!({
        "InstanceId": i.aliyun_id,
        "InstanceName": i.name,
        "Description": i.description,
        "HostName": i.host_name,
        "RegionId": region,
        "ZoneId": zone_name(&i.zone),
        "InstanceType": ty.map(|t| t.aliyun.as_ref()).unwrap_or(""),
        "InstanceTypeFamily": ty.map(|t| t.aliyun.rsplit_once('.').map(|(f, _)| f).unwrap_or(&t.aliyun)).unwrap_or(""),
        "Cpu": ty.map(|t| t.cpu).unwrap_or(0),
        "Memory": ty.map(|t| t.memory_mib).unwrap_or(0),
        "Status": status(i.state),
        "OperationLocks": {"LockReason": locks(i)},
        "KeyPairName": key_name,
        "ImageId": i.image_id,
        "OSName": i.os_name(),
        "OSNameEn": i.os_name(),
        "OSType": if i.os == OsFamily::Windows { "windows" } else { "linux" },
        "CreationTime": iso_minutes(i.created_at_ms),
        "StartTime": iso_minutes(i.created_at_ms),
        "ExpiredTime": "2099-12-31T15:59Z",
        "AutoReleaseTime": "",
        "InstanceChargeType": "PostPaid",
        "InternetChargeType": "PayByTraffic",
        "InternetMaxBandwidthIn": 0,
        "InternetMaxBandwidthOut": i.internet_max_bandwidth_out,
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
        "DeploymentSetId": deployment_set,
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
        "CreationTime": iso_minutes(k.created_at_ms),
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
///
/// Well-formed XML 1.0 for ANY value (this is the entry point the fuzz targets drive): exactly
/// one root element (a top-level list becomes `<root><item>…</item>…</root>`), text and names
/// escaped, characters XML 1.0 cannot carry (controls other than tab/newline/CR, U+FFFE,
/// U+FFFF) replaced by U+FFFD, element names reduced to XML name characters. The walk uses an
/// explicit stack: no recursion, whatever the depth of `v`.
pub fn xml(root: &str, v: &Value) -> String {
    enum Frame<'a> {
        Node(&'a str, &'a Value),
        Close(&'a str),
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let mut stack: Vec<Frame<'_>> = Vec::new();
    match v {
        Value::Array(items) => {
            open(&mut out, root);
            stack.push(Frame::Close(root));
            stack.extend(items.iter().rev().map(|i| Frame::Node("item", i)));
        }
        _ => stack.push(Frame::Node(root, v)),
    }
    while let Some(frame) = stack.pop() {
        match frame {
            Frame::Close(name) => close(&mut out, name),
            Frame::Node(name, v) => match v {
                Value::Array(items) => {
                    stack.extend(items.iter().rev().map(|i| Frame::Node(name, i)));
                }
                Value::Object(map) => {
                    open(&mut out, name);
                    stack.push(Frame::Close(name));
                    stack.extend(map.iter().rev().map(|(k, c)| Frame::Node(k.as_str(), c)));
                }
                Value::Null => {
                    out.push('<');
                    push_name(&mut out, name);
                    out.push_str("/>");
                }
                Value::String(s) => {
                    open(&mut out, name);
                    push_text(&mut out, s);
                    close(&mut out, name);
                }
                other => {
                    open(&mut out, name);
                    out.push_str(&other.to_string());
                    close(&mut out, name);
                }
            },
        }
    }
    out
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    push_name(out, name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    push_name(out, name);
    out.push('>');
}

/// An XML element name: ASCII letters, digits, `_`, `-`, `.` (others become `_`), starting
/// with a letter or `_`, never `xml…`-reserved in practice (our names are PascalCase).
fn push_name(out: &mut String, name: &str) {
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.push('_');
    }
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || "_-.".contains(c) {
            c
        } else {
            '_'
        }
    }));
}

/// Is `c` a character XML 1.0 documents may contain?
pub fn xml_char(c: char) -> bool {
    matches!(c as u32, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// Escaped character data; `\r` as a reference so parsers do not fold it into `\n`.
fn push_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DescribeInstancesFullStatus: every state has a lifecycle code that agrees with its
    /// name, and only a running guest is healthy.
    #[test]
    fn full_status_codes_and_health() {
        for s in InstanceState::ALL {
            let (code, name) = status_code(s);
            assert_eq!(name, status(s));
            let want = match name {
                "Pending" => 0,
                "Running" => 1,
                "Starting" => 2,
                "Stopping" => 64,
                "Stopped" => 80,
                other => panic!("{other}"),
            };
            assert_eq!(code, want, "{s:?}");
            let (_, health) = health(s);
            assert_eq!(health == "Ok", s == InstanceState::Running, "{s:?}");
            if name != "Running" && name != "Starting" && name != "Pending" {
                assert_eq!(health, "NotApplicable", "{s:?}");
            }
        }
        assert_eq!(health(InstanceState::LiveMigrating), (128, "Maintaining"));
        assert_eq!(health(InstanceState::Starting), (2, "Initializing"));
    }

    #[test]
    fn xml_lists_repeat_their_element() {
        let v = json!({"RequestId": "R", "Instances": {"Instance": [{"InstanceId": "a"}, {"InstanceId": "b<"}]}});
        assert_eq!(
            xml("DescribeInstancesResponse", &v),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeInstancesResponse><Instances><Instance><InstanceId>a</InstanceId></Instance><Instance><InstanceId>b&lt;</InstanceId></Instance></Instances><RequestId>R</RequestId></DescribeInstancesResponse>"
        );
    }

    /// Regression (issue 10): a stored name with control characters made every later
    /// Format=XML DescribeInstances unparseable.
    #[test]
    fn xml_replaces_characters_xml_cannot_carry() {
        let v = json!({"InstanceName": "a\u{0}b\u{1b}c\u{7}\u{fffe}\u{ffff}d\te\nf\rg&<>\"'"});
        let x = xml("R", &v);
        assert_eq!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R><InstanceName>a\u{fffd}b\u{fffd}c\u{fffd}\u{fffd}\u{fffd}d\te\nf&#13;g&amp;&lt;&gt;&quot;&apos;</InstanceName></R>"
        );
        assert!(x.chars().all(xml_char));
    }

    #[test]
    fn xml_always_has_one_root_and_valid_names() {
        assert_eq!(
            xml("R", &json!([1, "x"])),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R><item>1</item><item>x</item></R>"
        );
        assert_eq!(
            xml("R", &json!([])),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R></R>"
        );
        assert_eq!(
            xml("R", &json!({"a b": 1, "1x": null, "<x>": "y"})),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><R><_1x/><__x_>y</__x_><a_b>1</a_b></R>"
        );
    }

    #[test]
    fn xml_depth_does_not_recurse() {
        let mut v = json!("leaf");
        for _ in 0..100_000 {
            let mut m = serde_json::Map::new();
            m.insert("A".into(), v);
            v = Value::Object(m);
        }
        let x = xml("R", &v);
        assert!(x.ends_with("</A></R>"));
        // Dropping a deep Value recurses in serde_json; unwind it by hand.
        while let Value::Object(mut m) = v {
            v = m.remove("A").unwrap_or(Value::Null);
        }
    }

    #[test]
    fn every_state_renders() {
        for s in InstanceState::ALL {
            assert!(["Pending", "Running", "Starting", "Stopping", "Stopped"].contains(&status(s)));
        }
    }
}
