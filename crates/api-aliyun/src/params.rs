//! RPC parameters: a flat name → value map with typed, 1-based list and JSON-array access;
//! and the documented limits of every parameter the dialect accepts ([`LIMITS`], checked by
//! `nubis_core::limits`; docs/parameter-limits.md lists each row with its source).

use crate::errors::ApiError;
use nubis_core::limits::{
    self, Constraint, DiskRange, Violation, aliyun_key_name, aliyun_name, ascii, linux_host_name,
    no_url_prefix, windows_host_name,
};
use std::collections::HashMap;

// Every ECS parameter error is HTTP 400 unless its row says otherwise.
const fn text(
    param: &'static str,
    min: usize,
    max: usize,
    shape: Option<fn(&str) -> bool>,
    code: &'static str,
) -> Constraint {
    Constraint::text(param, min, max, shape, code).with_status(400)
}

const fn int(param: &'static str, min: i64, max: i64, code: &'static str) -> Constraint {
    Constraint::int(param, min, max, code).with_status(400)
}

const fn count(param: &'static str, max: usize, code: &'static str) -> Constraint {
    Constraint::count(param, max, code).with_status(400)
}

/// A tag key: not `aliyun`/`acs:` prefixed, not a URL (ECS Tag.N.Key).
fn tag_key(s: &str) -> bool {
    no_url_prefix(s) && !s.starts_with("aliyun") && !s.starts_with("acs:")
}

/// ECS InstanceName: 2–128, starts with a letter, letters/digits/`.`/`_`/`:`/`-`.
pub const INSTANCE_NAME: Constraint = text(
    "InstanceName",
    2,
    128,
    Some(aliyun_name),
    "InvalidInstanceName.Malformed",
);
/// ECS HostName of a Linux (non-Windows) instance: 2–64.
pub const HOST_NAME_LINUX: Constraint = text(
    "HostName",
    2,
    64,
    Some(linux_host_name),
    "InvalidHostName.Malformed",
);
/// ECS HostName of a Windows instance: 2–15, no dots, not all digits.
pub const HOST_NAME_WINDOWS: Constraint = text(
    "HostName",
    2,
    15,
    Some(windows_host_name),
    "InvalidHostName.Malformed",
);
pub const DESCRIPTION: Constraint = text(
    "Description",
    2,
    256,
    Some(no_url_prefix),
    "InvalidDescription.Malformed",
);
pub const CLIENT_TOKEN: Constraint = text(
    "ClientToken",
    1,
    64,
    Some(ascii),
    "InvalidClientToken.ValueNotSupported",
);
pub const KEY_PAIR_NAME: Constraint = text(
    "KeyPairName",
    2,
    128,
    Some(aliyun_key_name),
    "InvalidKeyPairName.Malformed",
);
pub const TAG_KEY: Constraint = text(
    "Tag.N.Key",
    1,
    128,
    Some(tag_key),
    "InvalidTagKey.Malformed",
);
pub const TAG_VALUE: Constraint = text(
    "Tag.N.Value",
    0,
    128,
    Some(no_url_prefix),
    "InvalidTagValue.Malformed",
);
fn user_data_shape(s: &str) -> bool {
    limits::base64_decoded_len(s).is_some_and(|n| n <= 32 * 1024)
}
/// UserData: base64 of at most 32 KiB.
pub const USER_DATA: Constraint = text(
    "UserData",
    0,
    limits::base64_len(32 * 1024),
    Some(user_data_shape),
    "InvalidUserData.Base64FormatInvalid",
)
.with_code_high("InvalidUserData.SizeExceeded");
pub const AMOUNT: Constraint = int(
    "Amount",
    1,
    limits::batch::LAUNCH as i64,
    "InvalidParameter",
);
pub const BANDWIDTH_OUT: Constraint = int(
    "InternetMaxBandwidthOut",
    0,
    100,
    "InvalidInternetMaxBandwidthOut.Malformed",
);
/// Not a range of its own: every size is checked against [`DISK_RANGES`]; this row carries
/// the codes (and bounds the parse).
pub const DATA_DISK_SIZE: Constraint = int(
    "DataDisk.N.Size",
    1,
    65536,
    "InvalidDataDiskSize.ValueNotSupported",
);
/// As [`DATA_DISK_SIZE`]; ECS documents these two codes with HTTP 404.
pub const SYSTEM_DISK_SIZE: Constraint = Constraint::int(
    "SystemDisk.Size",
    1,
    2048,
    "InvalidSystemDiskSize.LessThanMinSize",
)
.with_code_high("InvalidSystemDiskSize.MoreThanMaxSize")
.with_status(404);
pub const DATA_DISKS: Constraint = count("DataDisk.N", 16, "InstanceDiskNumber.LimitExceed");
pub const TAGS: Constraint = count("Tag.N", 20, "InvalidTagCount");
/// TagResources, UntagResources, ListTagResources: ResourceId.N (1 to 50) and TagKey.N (20).
pub const TAG_RESOURCE_IDS: Constraint = count("ResourceId.N", 50, "InvalidResourceId.TooMany");
pub const TAG_KEYS: Constraint = count("TagKey.N", 20, "InvalidTagCount");
pub const PAGE_NUMBER: Constraint = int("PageNumber", 1, i32::MAX as i64, "InvalidParameter");
/// DescribeInstances, DescribeImages.
pub const PAGE_SIZE_100: Constraint = int("PageSize", 1, 100, "InvalidParameter");
/// DescribeInstanceStatus, DescribeKeyPairs.
pub const PAGE_SIZE_50: Constraint = int("PageSize", 1, 50, "InvalidParameter");
pub const MAX_RESULTS: Constraint = int("MaxResults", 1, 100, "InvalidParameter");
/// DescribeInstances `InstanceIds` (JSON array), batch `InstanceId.N`.
pub const INSTANCE_IDS: Constraint =
    count("InstanceIds", limits::batch::INSTANCES, "InvalidParameter");
/// AttachKeyPair / DetachKeyPair `InstanceIds`.
pub const KEY_PAIR_INSTANCE_IDS: Constraint = count(
    "InstanceIds",
    limits::batch::KEY_PAIR_INSTANCES,
    "InvalidParameter",
);
pub const KEY_PAIR_NAMES: Constraint =
    count("KeyPairNames", limits::batch::KEY_PAIRS, "InvalidParameter");
/// DescribeInstancesFullStatus `InstanceId.N`: its own code and status (ECS reference).
pub const FULL_STATUS_INSTANCE_IDS: Constraint = Constraint::count(
    "InstanceId.N",
    limits::batch::INSTANCES,
    "InstanceIdLimitExceeded",
)
.with_status(403);
/// `EventId.N` of the system event actions (DescribeInstancesFullStatus,
/// DescribeInstanceHistoryEvents, CancelSimulatedSystemEvents).
pub const EVENT_IDS: Constraint =
    Constraint::count("EventId.N", 100, "EventIdLimitExceeded").with_status(403);
/// CancelSimulatedSystemEvents `EventId.N`: the same limit, answered 400 (its reference).
pub const CANCEL_EVENT_IDS: Constraint =
    Constraint::count("EventId.N", 100, "EventIdLimitExceeded").with_status(400);
/// `InstanceEventType.N` (up to 30) and `InstanceEventCycleStatus.N` (up to 7) of the event
/// filters; `ResourceId.N` of DescribeInstanceHistoryEvents (up to 100). ECS answers them 403.
pub const EVENT_TYPES: Constraint =
    Constraint::count("InstanceEventType.N", 30, "InvalidParameter").with_status(403);
pub const EVENT_STATUSES: Constraint =
    Constraint::count("InstanceEventCycleStatus.N", 7, "InvalidParameter").with_status(403);
pub const EVENT_RESOURCE_IDS: Constraint =
    Constraint::count("ResourceId.N", 100, "InvalidParameter").with_status(403);
/// CreateDeploymentSet / ModifyDeploymentSetAttribute DeploymentSetName: 2–128, starts with
/// a letter, letters/digits/`.`/`_`/`:`/`-`.
pub const DEPLOYMENT_SET_NAME: Constraint = text(
    "DeploymentSetName",
    2,
    128,
    Some(aliyun_name),
    "InvalidDeploymentSetName.Malformed",
);
/// CreateDeploymentSet GroupCount (AvailabilityGroup): 1–7.
pub const GROUP_COUNT: Constraint = int("GroupCount", 1, 7, "InvalidParameter.GroupCount");
/// CreateDeploymentSet Affinity: members on one host, 1–10.
pub const DEPLOYMENT_AFFINITY: Constraint = int("Affinity", 1, 10, "InvalidParameter.Affinity");
/// DescribeDeploymentSets DeploymentSetIds: a JSON array of at most 100 IDs.
pub const DEPLOYMENT_SET_IDS: Constraint =
    count("DeploymentSetIds", 100, "InvalidParameter.DeploymentSetIds");

/// Every limit of the dialect (the table docs/parameter-limits.md mirrors).
pub const LIMITS: &[Constraint] = &[
    INSTANCE_NAME,
    HOST_NAME_LINUX,
    HOST_NAME_WINDOWS,
    DESCRIPTION,
    CLIENT_TOKEN,
    KEY_PAIR_NAME,
    TAG_KEY,
    TAG_VALUE,
    USER_DATA,
    AMOUNT,
    BANDWIDTH_OUT,
    DATA_DISK_SIZE,
    SYSTEM_DISK_SIZE,
    DATA_DISKS,
    TAGS,
    PAGE_NUMBER,
    PAGE_SIZE_100,
    PAGE_SIZE_50,
    MAX_RESULTS,
    INSTANCE_IDS,
    KEY_PAIR_INSTANCE_IDS,
    KEY_PAIR_NAMES,
    FULL_STATUS_INSTANCE_IDS,
    EVENT_IDS,
    CANCEL_EVENT_IDS,
    EVENT_TYPES,
    EVENT_STATUSES,
    EVENT_RESOURCE_IDS,
    TAG_RESOURCE_IDS,
    TAG_KEYS,
    DEPLOYMENT_SET_NAME,
    GROUP_COUNT,
    DEPLOYMENT_AFFINITY,
    DEPLOYMENT_SET_IDS,
];

/// Disk sizes (GiB) by category (ESSD by performance level, PL1 the default), as the ECS
/// RunInstances reference gives them (`DataDisk.N.Size`, `SystemDisk.Size`).
pub const DISK_RANGES: &[DiskRange] = &[
    DiskRange {
        category: "cloud_efficiency",
        data: (20, 32768),
        system: Some((20, 2048)),
    },
    DiskRange {
        category: "cloud_ssd",
        data: (20, 32768),
        system: Some((20, 2048)),
    },
    DiskRange {
        category: "cloud_essd",
        data: (20, 65536),
        system: Some((20, 2048)),
    },
    DiskRange {
        category: "cloud_essd:PL0",
        data: (1, 65536),
        system: Some((1, 2048)),
    },
    DiskRange {
        category: "cloud_essd:PL1",
        data: (20, 65536),
        system: Some((20, 2048)),
    },
    DiskRange {
        category: "cloud_essd:PL2",
        data: (461, 65536),
        system: Some((461, 2048)),
    },
    DiskRange {
        category: "cloud_essd:PL3",
        data: (1261, 65536),
        system: Some((1261, 2048)),
    },
    DiskRange {
        category: "cloud",
        data: (5, 2000),
        system: Some((20, 500)),
    },
    DiskRange {
        category: "cloud_auto",
        data: (1, 65536),
        system: Some((1, 2048)),
    },
    DiskRange {
        category: "cloud_essd_entry",
        data: (10, 32768),
        system: Some((20, 2048)),
    },
];

/// The dialect's error for a value that breaks `c` (`name`: the parameter as sent, e.g.
/// `DataDisk.3.Size`).
pub fn reject(c: &Constraint, name: &str, v: Violation) -> ApiError {
    ApiError::new(
        c.status,
        c.code_for(&v),
        format!("The specified parameter \"{name}\" is not valid: it {v}."),
    )
}

/// Check an optional text value.
pub fn check_text(c: &Constraint, name: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) => limits::check_text(c, v).map_err(|e| reject(c, name, e)),
        None => Ok(()),
    }
}

/// Check a list length.
pub fn check_count(c: &Constraint, got: usize) -> Result<(), ApiError> {
    limits::check_count(c, got).map_err(|e| reject(c, c.param, e))
}

pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// The parameters as one JSON object of strings (the audit trail's copy).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        )
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-empty string.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.str(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        self.opt(name).ok_or_else(|| ApiError::missing(name))
    }

    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.str(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(name, v)),
        }
    }

    /// An integer parameter within its table row `c` (named `c.param`); `default` if absent.
    pub fn int(&self, c: &Constraint, default: i64) -> Result<i64, ApiError> {
        match self.str(c.param) {
            None | Some("") => Ok(default),
            Some(v) => limits::check_int_str(c, v).map_err(|e| reject(c, c.param, e)),
        }
    }

    /// A non-empty text parameter within its table row `c` (named `c.param`).
    pub fn text(&self, c: &Constraint) -> Result<Option<String>, ApiError> {
        let v = self.opt(c.param);
        check_text(c, c.param, v.as_deref())?;
        Ok(v)
    }

    /// The largest `N` of `Name.N…` parameters (0 if none): a list may not skip past its limit.
    pub fn max_index(&self, name: &str) -> usize {
        let prefix = format!("{name}.");
        self.0
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(&prefix)?;
                rest.split('.').next()?.parse::<usize>().ok()
            })
            .max()
            .unwrap_or(0)
    }

    /// `Name.1`, `Name.2`, … in order (repeat lists are 1-based).
    pub fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        let mut items: Vec<(usize, String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix)
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, v.clone()))
            })
            .collect();
        items.sort();
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `Name.N.Field` groups, e.g. `Tag.1.Key`/`Tag.1.Value`, in order.
    pub fn groups(&self, name: &str) -> Vec<HashMap<String, String>> {
        let prefix = format!("{name}.");
        let mut by_index: std::collections::BTreeMap<usize, HashMap<String, String>> =
            Default::default();
        for (k, v) in &self.0 {
            if let Some(rest) = k.strip_prefix(&prefix)
                && let Some((n, field)) = rest.split_once('.')
                && let Ok(n) = n.parse::<usize>()
            {
                by_index
                    .entry(n)
                    .or_default()
                    .insert(field.to_string(), v.clone());
            }
        }
        by_index.into_values().collect()
    }

    /// A JSON array of strings sent as one parameter (`InstanceIds=["i-a","i-b"]`).
    pub fn json_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.str(name) {
            None | Some("") => Ok(None),
            Some(v) => serde_json::from_str::<Vec<String>>(v)
                .map(Some)
                .map_err(|_| ApiError::invalid(name, "expected a JSON array of strings")),
        }
    }
}

/// Parameters from literal pairs, for the dialect's unit tests.
#[cfg(test)]
pub(crate) fn test_params(pairs: &[(&str, &str)]) -> Params {
    Params::new(
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_params as p;

    #[test]
    fn lists_are_one_based_and_ordered() {
        let ps = p(&[
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
            ("InstanceId.10", "c"),
        ]);
        assert_eq!(ps.list("InstanceId"), ["a", "b", "c"]);
        let ps = p(&[("Tag.1.Key", "env"), ("Tag.1.Value", "dev")]);
        assert_eq!(ps.groups("Tag")[0]["Key"], "env");
    }

    #[test]
    fn scalars() {
        let ps = p(&[
            ("DryRun", "True"),
            ("PageSize", "101"),
            ("Ids", r#"["i-a"]"#),
            ("Bad", "[1"),
            ("Flag", "yes"),
        ]);
        assert!(ps.bool("DryRun").unwrap());
        assert!(ps.bool("Flag").is_err());
        assert!(ps.int(&PAGE_SIZE_100, 10).is_err());
        assert_eq!(ps.json_list("Ids").unwrap().unwrap(), ["i-a"]);
        assert!(ps.json_list("Bad").is_err());
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// A character valid in every position of each text row, to build lengths from.
    fn fill(c: &Constraint) -> &'static str {
        match c.param {
            "ClientToken" | "Tag.N.Key" | "Tag.N.Value" | "Description" => "a",
            _ => "ab",
        }
    }

    /// Every row at its boundaries (UserData, base64: its own test below), with the row's own
    /// codes and a 4xx status.
    #[test]
    fn every_row_at_its_boundaries() {
        nubis_testkit::limits::every_row_at_its_boundaries(
            LIMITS.iter().filter(|c| c.param != "UserData"),
            fill,
            |c, v| {
                let e = reject(c, c.param, v);
                assert!((400..500).contains(&e.status), "{}", c.param);
                e.code
            },
        );
    }

    #[test]
    fn documented_shapes() {
        let bad = [
            (&INSTANCE_NAME, "1abc"),
            (&INSTANCE_NAME, "ab cd"),
            (&INSTANCE_NAME, "https://x"),
            (&HOST_NAME_LINUX, "a..b"),
            (&HOST_NAME_LINUX, "-ab"),
            (&HOST_NAME_WINDOWS, "a.b"),
            (&HOST_NAME_WINDOWS, "123"),
            (&DESCRIPTION, "http://x"),
            (&CLIENT_TOKEN, "tök"),
            (&KEY_PAIR_NAME, "a.b"),
            (&TAG_KEY, "aliyun-x"),
            (&TAG_KEY, "acs:x"),
        ];
        for (c, v) in bad {
            assert_eq!(limits::check_text(c, v), Err(Violation::BadShape), "{v}");
        }
        for (c, v) in [
            (&INSTANCE_NAME, "web:01_a.b-c"),
            (&INSTANCE_NAME, "服务器"),
            (&HOST_NAME_LINUX, "web-1.example"),
            (&DESCRIPTION, "any text, even 中文!"),
        ] {
            assert_eq!(limits::check_text(c, v), Ok(()), "{v}");
        }
    }

    #[test]
    fn user_data_is_base64_of_at_most_32_kib() {
        nubis_testkit::limits::base64_row(
            &USER_DATA,
            32 * 1024,
            |c, v| reject(c, "UserData", v).code,
            "InvalidUserData.SizeExceeded",
            &[("not base64", "InvalidUserData.Base64FormatInvalid")],
        );
    }

    #[test]
    fn system_disk_codes_split_low_and_high() {
        let low = limits::check_int(&SYSTEM_DISK_SIZE, 0).unwrap_err();
        let high = limits::check_int(&SYSTEM_DISK_SIZE, 2049).unwrap_err();
        assert_eq!(
            reject(&SYSTEM_DISK_SIZE, "SystemDisk.Size", low).code,
            "InvalidSystemDiskSize.LessThanMinSize"
        );
        assert_eq!(
            reject(&SYSTEM_DISK_SIZE, "SystemDisk.Size", high).code,
            "InvalidSystemDiskSize.MoreThanMaxSize"
        );
    }

    #[test]
    fn every_disk_range_is_inside_the_parse_bounds() {
        for d in DISK_RANGES {
            assert!(d.data.0 >= 1 && d.data.1 <= 65536, "{}", d.category);
            let (lo, hi) = d.system.unwrap();
            assert!(lo >= 1 && hi <= 2048, "{}", d.category);
        }
    }
}
