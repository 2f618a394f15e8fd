//! Wire shapes the clouds' services share (CAM and RAM, STS, CloudAudit and ActionTrail):
//! how they print times and access key states, and the ASCII name rule their user, role,
//! policy and session names follow. Each service keeps its own codes and messages.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// `YYYY-MM-DDThh:mm:ssZ`: Alibaba's times, Tencent's `Expiration` (UTC).
const ISO_SECONDS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
/// `YYYY-MM-DDThh:mmZ`: ECS's minute-precision times (UTC).
const ISO_MINUTES: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
/// `YYYY-MM-DD hh:mm:ss`: CAM's and CloudAudit's datetimes (UTC, D17).
const DATETIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn format(ms: i64, description: &[FormatItem<'static>]) -> String {
    OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(description)
        .unwrap_or_default()
}

/// Milliseconds since the epoch as `YYYY-MM-DDThh:mm:ssZ` (UTC).
pub fn iso_seconds(ms: i64) -> String {
    format(ms, ISO_SECONDS)
}

/// Milliseconds since the epoch as `YYYY-MM-DDThh:mmZ` (UTC).
pub fn iso_minutes(ms: i64) -> String {
    format(ms, ISO_MINUTES)
}

/// Milliseconds since the epoch as `YYYY-MM-DD hh:mm:ss` (UTC).
pub fn datetime(ms: i64) -> String {
    format(ms, DATETIME)
}

/// `YYYY-MM-DDThh:mm:ssZ` as milliseconds since the epoch.
pub fn parse_iso_seconds(v: &str) -> Option<i64> {
    time::PrimitiveDateTime::parse(v, ISO_SECONDS)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp().saturating_mul(1000))
}

/// An access key's state as both clouds print it.
pub fn key_status(enabled: bool) -> &'static str {
    if enabled { "Active" } else { "Inactive" }
}

/// `name` is `len` bytes of ASCII letters, digits and `extra`.
pub fn ascii_name(name: &str, len: std::ops::RangeInclusive<usize>, extra: &[u8]) -> bool {
    len.contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_utc() {
        let ms = 1_700_000_000_123;
        assert_eq!(iso_seconds(ms), "2023-11-14T22:13:20Z");
        assert_eq!(iso_minutes(ms), "2023-11-14T22:13Z");
        assert_eq!(datetime(ms), "2023-11-14 22:13:20");
        assert_eq!(
            parse_iso_seconds("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_iso_seconds("2023-11-14 22:13:20"), None);
    }

    #[test]
    fn names_are_ascii_within_their_length() {
        assert!(ascii_name("dev.ops@x_y-z", 1..=64, b".@_-"));
        assert!(!ascii_name("", 1..=64, b".@_-"));
        assert!(!ascii_name("a b", 1..=64, b".@_-"));
        assert!(!ascii_name("é", 1..=64, b".@_-"));
        assert!(!ascii_name(&"x".repeat(65), 1..=64, b""));
    }
}
