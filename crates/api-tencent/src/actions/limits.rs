//! Every documented limit of the dialect as data, and the checks that apply it.

use crate::errors::ApiError;
use nubis_core::limits::{self, Constraint, DiskRange, Violation};

// -- documented limits -------------------------------------------------------------------
//
// Every limit of the dialect as data: one row per parameter (checked by nubis_core::limits),
// the table docs/parameter-limits.md mirrors. Codes are CVM's.

pub(super) fn key_name_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RunInstances InstanceName: at most 128 characters (the current reference; the error code's
/// text still says 60 bytes).
pub(super) const INSTANCE_NAME: Constraint =
    Constraint::text("InstanceName", 1, 128, None, "InvalidParameterValue")
        .with_code_high("InvalidInstanceName.TooLong");
/// HostName of a Linux (non-Windows) instance: 2–60, dot-separated segments.
pub(super) const HOST_NAME_LINUX: Constraint = Constraint::text(
    "HostName",
    2,
    60,
    Some(limits::linux_host_name),
    "InvalidParameter.HostNameIllegal",
);
/// HostName of a Windows instance: 2–15, no dots, not all digits.
pub(super) const HOST_NAME_WINDOWS: Constraint = Constraint::text(
    "HostName",
    2,
    15,
    Some(limits::windows_host_name),
    "InvalidParameter.HostNameIllegal",
);
pub(super) const CLIENT_TOKEN: Constraint = Constraint::text(
    "ClientToken",
    1,
    64,
    Some(limits::ascii),
    "InvalidParameterValue",
)
.with_code_high("InvalidClientToken.TooLong");
/// CreateKeyPair/ImportKeyPair KeyName: 1–25 letters, digits, `_`, a code per violation.
pub(super) const KEY_NAME: Constraint = Constraint::text(
    "KeyName",
    1,
    25,
    Some(key_name_chars),
    "InvalidKeyPairNameIncludeIllegalChar",
)
.with_code_high("InvalidKeyPairNameTooLong")
.with_code_low("InvalidKeyPairNameEmpty");
/// TagSpecification.N.Tags.N.Key / .Value (Tencent Cloud tag rules).
pub(super) const TAG_KEY: Constraint =
    Constraint::text("Tags.N.Key", 1, 127, None, "InvalidParameterValue");
pub(super) const TAG_VALUE: Constraint =
    Constraint::text("Tags.N.Value", 0, 255, None, "InvalidParameterValue");
pub(super) const INSTANCE_COUNT: Constraint = Constraint::int(
    "InstanceCount",
    1,
    limits::batch::TENCENT_LAUNCH as i64,
    "InvalidParameterValue.Range",
);
/// MinCount: a positive integer not above InstanceCount (checked against it too).
pub(super) const MIN_COUNT: Constraint = Constraint::int(
    "MinCount",
    1,
    500,
    "InvalidParameterValue.InvalidParameterMinCount",
);
/// UserData: base64 of at most 16 KiB.
pub(super) fn user_data_shape(s: &str) -> bool {
    limits::base64_decoded_len(s).is_some_and(|n| n <= 16 * 1024)
}
pub(super) const USER_DATA: Constraint = Constraint::text(
    "UserData",
    0,
    limits::base64_len(16 * 1024),
    Some(user_data_shape),
    "InvalidParameterValue.InvalidUserDataFormat",
)
.with_code_high("InvalidParameterValue.TooLong");
/// Codes and parse bounds of disk sizes; the range itself is the disk type's (DISK_RANGES).
pub(super) const SYSTEM_DISK_SIZE: Constraint = Constraint::int(
    "SystemDisk.DiskSize",
    1,
    32000,
    "InvalidParameterValue.Range",
);
pub(super) const DATA_DISK_SIZE: Constraint = Constraint::int(
    "DataDisks.N.DiskSize",
    1,
    32000,
    "InvalidParameterValue.Range",
);
/// At most 21 data disks: up to 20 cloud disks and 1 local disk.
pub(super) const DATA_DISKS: Constraint =
    Constraint::count("DataDisks", 21, "InvalidParameterValue.LimitExceeded");
pub(super) const CLOUD_DATA_DISKS: Constraint = Constraint::count(
    "DataDisks (cloud)",
    20,
    "InvalidParameterValue.LimitExceeded",
);
pub(super) const TAGS: Constraint =
    Constraint::count("Tags", 50, "InvalidParameterValue.LimitExceeded");
pub(super) const LIMIT: Constraint = Constraint::int("Limit", 1, 100, "InvalidParameterValue");
pub(super) const OFFSET: Constraint =
    Constraint::int("Offset", 0, i64::MAX, "InvalidParameterValue");
/// InstanceIds / KeyIds of one request.
pub(super) const BATCH: Constraint = Constraint::count(
    "InstanceIds",
    limits::batch::INSTANCES,
    "InvalidParameterValue.LimitExceeded",
);
pub(super) const FILTERS: Constraint =
    Constraint::count("Filters", 10, "InvalidFilterValue.LimitExceeded");
pub(super) const FILTER_VALUES: Constraint =
    Constraint::count("Filters.N.Values", 5, "InvalidFilterValue.LimitExceeded");
/// CreateDisasterRecoverGroup / ModifyDisasterRecoverGroupAttribute Name: 1–60 characters.
pub(super) const GROUP_NAME: Constraint =
    Constraint::text("Name", 1, 60, None, "InvalidParameterValue")
        .with_code_high("InvalidParameterValue.TooLong");
/// DescribeDisasterRecoverGroups Name (a substring to match): at most 60 characters.
pub(super) const GROUP_NAME_FILTER: Constraint =
    Constraint::text("Name", 0, 60, None, "InvalidParameterValue")
        .with_code_high("InvalidParameterValue.TooLong");
/// Affinity: members of a group on one host, 1–10 (raised only).
pub(super) const GROUP_AFFINITY: Constraint =
    Constraint::int("Affinity", 1, 10, "InvalidParameterValue.Range");
/// DisasterRecoverGroupIds of Describe/Delete: at most 10 a request.
pub(super) const GROUP_IDS: Constraint = Constraint::count(
    "DisasterRecoverGroupIds",
    10,
    "InvalidParameterValue.LimitExceeded",
);
/// RunInstances DisasterRecoverGroupIds: one group ("目前仅支持输入一个").
pub(super) const LAUNCH_GROUP_IDS: Constraint = Constraint::count(
    "DisasterRecoverGroupIds",
    1,
    "InvalidParameterValue.LimitExceeded",
);

/// Every limit of the dialect.
#[allow(dead_code)] // walked by the table tests; docs/parameter-limits.md mirrors it
pub(crate) const LIMITS: &[Constraint] = &[
    INSTANCE_NAME,
    HOST_NAME_LINUX,
    HOST_NAME_WINDOWS,
    CLIENT_TOKEN,
    KEY_NAME,
    TAG_KEY,
    TAG_VALUE,
    INSTANCE_COUNT,
    MIN_COUNT,
    USER_DATA,
    SYSTEM_DISK_SIZE,
    DATA_DISK_SIZE,
    DATA_DISKS,
    CLOUD_DATA_DISKS,
    TAGS,
    LIMIT,
    OFFSET,
    BATCH,
    FILTERS,
    FILTER_VALUES,
    GROUP_NAME,
    GROUP_NAME_FILTER,
    GROUP_AFFINITY,
    GROUP_IDS,
    LAUNCH_GROUP_IDS,
];

/// Cloud disk sizes (GiB) by type (CVM storage overview). Local disks depend on the instance
/// type, and no type in the catalogue has them: they are refused.
pub(crate) const DISK_RANGES: &[DiskRange] = &[
    DiskRange {
        category: "CLOUD_BASIC",
        data: (10, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_PREMIUM",
        data: (10, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_SSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_BSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_HSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
    DiskRange {
        category: "CLOUD_TSSD",
        data: (20, 32000),
        system: Some((20, 1024)),
    },
];

pub(super) const LOCAL_DISK_TYPES: &[&str] =
    &["LOCAL_BASIC", "LOCAL_SSD", "LOCAL_NVME", "LOCAL_PRO"];

pub(super) fn reject(c: &Constraint, name: &str, v: Violation) -> ApiError {
    ApiError::new(
        c.code_for(&v),
        format!("The value of `{name}` is invalid: it {v}"),
    )
}

pub(super) fn check_text(c: &Constraint, name: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value {
        Some(v) => limits::check_text(c, v).map_err(|e| reject(c, name, e)),
        None => Ok(()),
    }
}

pub(super) fn check_int(c: &Constraint, name: &str, value: i64) -> Result<(), ApiError> {
    limits::check_int(c, value).map_err(|e| reject(c, name, e))
}

pub(super) fn check_count(c: &Constraint, name: &str, got: usize) -> Result<(), ApiError> {
    limits::check_count(c, got).map_err(|e| reject(c, name, e))
}

/// A disk size within its type's range (`range`), else the row's code.
pub(super) fn disk_size(
    row: &Constraint,
    name: &str,
    size: i64,
    range: (i64, i64),
) -> Result<u32, ApiError> {
    limits::check_disk_size(row, size, range).map_err(|e| reject(row, name, e))
}

pub(super) fn host_name_rule(os: Option<nubis_core::OsFamily>) -> &'static Constraint {
    limits::host_name_row(os, &HOST_NAME_LINUX, &HOST_NAME_WINDOWS)
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// Every row at its boundaries (UserData, base64: its own test below), with the row's own
    /// codes.
    #[test]
    fn every_row_at_its_boundaries() {
        nubis_testkit::limits::every_row_at_its_boundaries(
            LIMITS.iter().filter(|c| c.param != "UserData"),
            |_| "ab",
            |c, v| reject(c, c.param, v).code,
        );
    }

    #[test]
    fn documented_codes() {
        let code = |c: &Constraint, v: &str| {
            reject(c, c.param, limits::check_text(c, v).unwrap_err()).code
        };
        assert_eq!(
            code(&INSTANCE_NAME, &"n".repeat(129)),
            "InvalidInstanceName.TooLong"
        );
        assert_eq!(code(&INSTANCE_NAME, "a\u{1b}b"), "InvalidParameterValue");
        assert_eq!(
            code(&CLIENT_TOKEN, &"t".repeat(65)),
            "InvalidClientToken.TooLong"
        );
        assert_eq!(code(&CLIENT_TOKEN, "tök"), "InvalidParameterValue");
        assert_eq!(code(&KEY_NAME, ""), "InvalidKeyPairNameEmpty");
        assert_eq!(
            code(&KEY_NAME, &"k".repeat(26)),
            "InvalidKeyPairNameTooLong"
        );
        assert_eq!(
            code(&KEY_NAME, "a-b"),
            "InvalidKeyPairNameIncludeIllegalChar"
        );
        assert_eq!(
            code(&HOST_NAME_LINUX, "a..b"),
            "InvalidParameter.HostNameIllegal"
        );
        assert_eq!(
            code(&HOST_NAME_WINDOWS, "web.1"),
            "InvalidParameter.HostNameIllegal"
        );
        assert_eq!(
            code(&HOST_NAME_LINUX, &"h".repeat(61)),
            "InvalidParameter.HostNameIllegal"
        );
        assert!(limits::check_text(&HOST_NAME_LINUX, &"h".repeat(60)).is_ok());
        assert!(limits::check_text(&HOST_NAME_WINDOWS, &"h".repeat(16)).is_err());
    }

    #[test]
    fn user_data_is_base64_of_at_most_16_kib() {
        // 16 KiB = 5461 groups of 3 bytes and 1 byte more: 21,846 characters and "==".
        // One byte more fits the length but not the size.
        let over = "A".repeat(limits::base64_len(16 * 1024));
        nubis_testkit::limits::base64_row(
            &USER_DATA,
            16 * 1024,
            |c, v| reject(c, "UserData", v).code,
            "InvalidParameterValue.TooLong",
            &[
                (&over, "InvalidParameterValue.InvalidUserDataFormat"),
                ("not base64!", "InvalidParameterValue.InvalidUserDataFormat"),
            ],
        );
        assert!(limits::check_text(&USER_DATA, "aGk=").is_ok());
    }

    #[test]
    fn disk_ranges_fit_the_parse_bounds() {
        for d in DISK_RANGES {
            assert!(d.data.0 >= 1 && d.data.1 <= 32000, "{}", d.category);
            let (lo, hi) = d.system.unwrap();
            assert!(lo >= 1 && hi <= 32000, "{}", d.category);
        }
    }
}
