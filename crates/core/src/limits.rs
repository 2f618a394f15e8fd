//! Documented parameter limits, checked once.
//!
//! Each dialect keeps its cloud's limits as data — one `const` table of [`Constraint`]s (and one
//! of [`DiskRange`]s) — and asks this module whether a value fits. The checker never decides a
//! code: a row carries its cloud's codes, so the dialect only wraps the [`Violation`] in its
//! envelope. docs/parameter-limits.md lists every row, its source and its code.

/// What a value must satisfy.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// A string of `min..=max` characters (Unicode scalar values), every character printable
    /// (see [`printable`]), and `shape` (if any) true of the whole string.
    Text {
        min: usize,
        max: usize,
        shape: Option<fn(&str) -> bool>,
    },
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A list of at most `max` items.
    Count { max: usize },
}

/// One documented limit of one parameter in one dialect.
#[derive(Debug, Clone, Copy)]
pub struct Constraint {
    /// The parameter as the cloud spells it (lists as `Name.N`).
    pub param: &'static str,
    pub rule: Rule,
    /// The cloud's code for a violation …
    pub code: &'static str,
    /// … unless the value is too long / too large / too many, when this code applies …
    pub code_high: Option<&'static str>,
    /// … or too short / too small, when this one does.
    pub code_low: Option<&'static str>,
    /// HTTP status of the error where the dialect has one (Alibaba); 0 where it has not.
    pub status: u16,
}

impl Constraint {
    /// A `Text` row with one code and no status (`with_*` add the rest).
    pub const fn text(
        param: &'static str,
        min: usize,
        max: usize,
        shape: Option<fn(&str) -> bool>,
        code: &'static str,
    ) -> Self {
        Self::new(param, Rule::Text { min, max, shape }, code)
    }

    /// An `Int` row with one code and no status.
    pub const fn int(param: &'static str, min: i64, max: i64, code: &'static str) -> Self {
        Self::new(param, Rule::Int { min, max }, code)
    }

    /// A `Count` row with one code and no status.
    pub const fn count(param: &'static str, max: usize, code: &'static str) -> Self {
        Self::new(param, Rule::Count { max }, code)
    }

    const fn new(param: &'static str, rule: Rule, code: &'static str) -> Self {
        Self {
            param,
            rule,
            code,
            code_high: None,
            code_low: None,
            status: 0,
        }
    }

    /// The row with its HTTP status.
    pub const fn with_status(self, status: u16) -> Self {
        Self { status, ..self }
    }

    /// The row with a code of its own for a value too long / too large / too many.
    pub const fn with_code_high(self, code: &'static str) -> Self {
        Self {
            code_high: Some(code),
            ..self
        }
    }

    /// The row with a code of its own for a value too short / too small.
    pub const fn with_code_low(self, code: &'static str) -> Self {
        Self {
            code_low: Some(code),
            ..self
        }
    }

    /// A `Count` row's maximum.
    pub const fn max_count(&self) -> Option<usize> {
        match self.rule {
            Rule::Count { max } => Some(max),
            _ => None,
        }
    }

    /// The code for `v`.
    pub fn code_for(&self, v: &Violation) -> &'static str {
        match v {
            Violation::TooLong { .. } | Violation::TooLarge { .. } | Violation::TooMany { .. } => {
                self.code_high.unwrap_or(self.code)
            }
            Violation::TooShort { .. } | Violation::TooSmall { .. } => {
                self.code_low.unwrap_or(self.code)
            }
            _ => self.code,
        }
    }
}

/// Why a value does not fit. `Display` is the message's tail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("must be at least {min} characters long")]
    TooShort { min: usize },
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("contains a character that is not allowed")]
    BadChar,
    #[error("has an invalid format")]
    BadShape,
    #[error("is not an integer")]
    NotInteger,
    #[error("must be at least {min}")]
    TooSmall { min: i64 },
    #[error("must be at most {max}")]
    TooLarge { max: i64 },
    #[error("takes at most {max} values, got {got}")]
    TooMany { max: usize, got: usize },
}

/// A character any stored text may hold: no control characters (C0, DEL, C1), no
/// noncharacters (U+FDD0..U+FDEF, U+xFFFE/U+xFFFF). These are what break XML 1.0 and terminals.
pub fn printable(c: char) -> bool {
    let u = c as u32;
    !(c.is_control() || (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE)
}

/// Check a string against a `Text` row (other rules: `BadShape`).
pub fn check_text(c: &Constraint, value: &str) -> Result<(), Violation> {
    let Rule::Text { min, max, shape } = c.rule else {
        return Err(Violation::BadShape);
    };
    // Count at most max+1 characters: a 1 MB value costs no more than a short one.
    let len = value.chars().take(max.saturating_add(1)).count();
    if len > max {
        return Err(Violation::TooLong { max });
    }
    if len < min {
        return Err(Violation::TooShort { min });
    }
    if !value.chars().all(printable) {
        return Err(Violation::BadChar);
    }
    if let Some(shape) = shape
        && !shape(value)
    {
        return Err(Violation::BadShape);
    }
    Ok(())
}

/// Check an integer against an `Int` row.
pub fn check_int(c: &Constraint, value: i64) -> Result<(), Violation> {
    let Rule::Int { min, max } = c.rule else {
        return Err(Violation::BadShape);
    };
    if value < min {
        return Err(Violation::TooSmall { min });
    }
    if value > max {
        return Err(Violation::TooLarge { max });
    }
    Ok(())
}

/// Parse (decimal, optional sign, surrounding blanks ignored) and check an integer.
pub fn check_int_str(c: &Constraint, value: &str) -> Result<i64, Violation> {
    let n = value
        .trim()
        .parse::<i64>()
        .map_err(|_| Violation::NotInteger)?;
    check_int(c, n)?;
    Ok(n)
}

/// Check a list length against a `Count` row.
pub fn check_count(c: &Constraint, got: usize) -> Result<(), Violation> {
    let Rule::Count { max } = c.rule else {
        return Err(Violation::BadShape);
    };
    if got > max {
        return Err(Violation::TooMany { max, got });
    }
    Ok(())
}

/// Size range (GiB) of one disk category, as data and as system disk.
#[derive(Debug, Clone, Copy)]
pub struct DiskRange {
    /// The category as the cloud spells it (`cloud_essd`, `CLOUD_PREMIUM`); a performance
    /// level where it changes the range (`cloud_essd:PL0`).
    pub category: &'static str,
    pub data: (i64, i64),
    /// `None`: the category cannot be a system disk.
    pub system: Option<(i64, i64)>,
}

/// The range row of `category` (`None`: the category is not one the cloud offers).
pub fn disk_range<'a>(table: &'a [DiskRange], category: &str) -> Option<&'a DiskRange> {
    table.iter().find(|d| d.category == category)
}

/// Check a disk size against its category's `range` (a [`DiskRange`]'s) under the codes of
/// the size row `c`, which only bounds the parse.
pub fn check_disk_size(c: &Constraint, size: i64, range: (i64, i64)) -> Result<u32, Violation> {
    let (min, max) = range;
    let bounded = Constraint {
        rule: Rule::Int { min, max },
        ..*c
    };
    check_int(&bounded, size)?;
    u32::try_from(size).map_err(|_| Violation::TooSmall { min })
}

/// The HostName row for an image's OS: the Windows rules for Windows, else the Linux ones
/// (also when the image is unknown: the engine then refuses the image).
pub fn host_name_row<'a>(
    os: Option<crate::OsFamily>,
    linux: &'a Constraint,
    windows: &'a Constraint,
) -> &'a Constraint {
    if os == Some(crate::OsFamily::Windows) {
        windows
    } else {
        linux
    }
}

// -- shapes the clouds document ------------------------------------------------------------

/// Neither `http://` nor `https://` at the start (Alibaba names and descriptions).
pub fn no_url_prefix(s: &str) -> bool {
    let lower: String = s.chars().take(8).collect::<String>().to_ascii_lowercase();
    !lower.starts_with("http://") && !lower.starts_with("https://")
}

/// Alibaba names (InstanceName, KeyPairName, DiskName): start with a letter (Unicode letters,
/// so Chinese too); then letters, digits, `.`, `_`, `:`, `-`; not a URL.
pub fn aliyun_name(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_alphabetic)
        && s.chars().all(|c| c.is_alphanumeric() || ".:_-".contains(c))
        && no_url_prefix(s)
}

/// Alibaba key pair names: as [`aliyun_name`] without `.` (ECS: "digits, colons, underscores
/// and hyphens").
pub fn aliyun_key_name(s: &str) -> bool {
    aliyun_name(s) && !s.contains('.')
}

/// A host name as both clouds document it. Common: no `.` or `-` first or last, never two of
/// them in a row. Windows: letters, digits and `-` only, not all digits. Others: segments of
/// letters, digits and `-` separated by single dots. Lengths are the table's business.
pub fn host_name(s: &str, windows: bool) -> bool {
    let sep = |c: char| c == '.' || c == '-';
    if s.starts_with(sep) || s.ends_with(sep) {
        return false;
    }
    let b: Vec<char> = s.chars().collect();
    if b.windows(2).any(|w| sep(w[0]) && sep(w[1])) {
        return false;
    }
    if windows {
        b.iter().all(|c| c.is_ascii_alphanumeric() || *c == '-')
            && !b.iter().all(char::is_ascii_digit)
    } else {
        b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
    }
}

pub fn linux_host_name(s: &str) -> bool {
    host_name(s, false)
}

pub fn windows_host_name(s: &str) -> bool {
    host_name(s, true)
}

/// The decoded size of standard, padded base64 text; `None` if it is not that.
pub fn base64_decoded_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    if pad > 2 {
        return None;
    }
    let body = &b[..b.len() - pad];
    if !body
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
    {
        return None;
    }
    Some(b.len() / 4 * 3 - pad)
}

/// Characters needed to carry `bytes` bytes in padded base64.
pub const fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// Only ASCII (idempotency tokens).
pub fn ascii(s: &str) -> bool {
    s.is_ascii()
}

/// Boundary values of a row, for table tests: (value, expected outcome). Text rows give
/// min−1, min, max, max+1 characters and a control character; Int rows min−1, min, max, max+1.
/// `fill` is a valid character for the row's shape (used to build lengths), `first` a valid
/// first character.
pub fn boundary_cases(c: &Constraint, fill: &str) -> Vec<(String, bool)> {
    match c.rule {
        Rule::Text { min, max, .. } => {
            let mk = |n: usize| fill.chars().cycle().take(n).collect::<String>();
            let mut v = Vec::new();
            if min > 0 {
                v.push((mk(min - 1), false));
            }
            v.push((mk(min), true));
            v.push((mk(max), true));
            v.push((mk(max + 1), false));
            let mut bad = mk(min.max(2));
            bad.insert(1, '\u{7}');
            if bad.chars().count() > max {
                bad = bad.chars().take(max).collect();
            }
            v.push((bad, false));
            v
        }
        Rule::Int { min, max } => vec![
            ((min.saturating_sub(1)).to_string(), min == i64::MIN),
            (min.to_string(), true),
            (max.to_string(), true),
            ((max.saturating_add(1)).to_string(), max == i64::MAX),
            ("x".into(), false),
        ],
        Rule::Count { .. } => Vec::new(),
    }
}

/// One value at a row's boundary, and what the checker says of it (see [`check_table`]).
#[cfg(any(test, feature = "fixtures"))]
#[derive(Debug)]
pub struct Probe<'t> {
    pub row: &'t Constraint,
    /// The value (Text and Int rows) or the number of items (Count rows).
    pub value: String,
    pub got: Result<(), Violation>,
}

/// The table test of a dialect's limits: every row of `table` at its boundaries
/// ([`boundary_cases`] of Text and Int rows, lengths built from `fill(row)`; `max` and `max + 1`
/// items of Count rows) must fit or not as expected. Returns every probe, so that the dialect
/// checks how it renders the refused ones (its codes, its statuses).
#[cfg(any(test, feature = "fixtures"))]
pub fn check_table<'t>(
    table: impl IntoIterator<Item = &'t Constraint>,
    fill: impl Fn(&Constraint) -> &'static str,
) -> Vec<Probe<'t>> {
    let mut probes = Vec::new();
    for c in table {
        let cases: Vec<(String, bool, Result<(), Violation>)> = match c.rule {
            Rule::Count { max } => [(max, true), (max + 1, false)]
                .into_iter()
                .map(|(n, ok)| (n.to_string(), ok, check_count(c, n)))
                .collect(),
            Rule::Text { .. } | Rule::Int { .. } => boundary_cases(c, fill(c))
                .into_iter()
                .map(|(v, ok)| {
                    let got = match c.rule {
                        Rule::Text { .. } => check_text(c, &v),
                        _ => check_int_str(c, &v).map(|_| ()),
                    };
                    (v, ok, got)
                })
                .collect(),
        };
        assert!(!cases.is_empty(), "{}", c.param);
        for (value, ok, got) in cases {
            assert_eq!(got.is_ok(), ok, "{} = {value:?}: {got:?}", c.param);
            probes.push(Probe { row: c, value, got });
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: Constraint = Constraint {
        param: "Name",
        rule: Rule::Text {
            min: 2,
            max: 5,
            shape: Some(aliyun_name),
        },
        code: "Bad",
        code_high: None,
        code_low: None,
        status: 400,
    };
    const SIZE: Constraint = Constraint {
        param: "Size",
        rule: Rule::Int { min: 20, max: 100 },
        code: "Low",
        code_high: Some("High"),
        code_low: None,
        status: 404,
    };
    const DISKS: Constraint = Constraint {
        param: "Disks",
        rule: Rule::Count { max: 16 },
        code: "TooMany",
        code_high: None,
        code_low: None,
        status: 400,
    };

    #[test]
    fn text_boundaries() {
        let c = &NAME;
        check_table([c], |_| "ab");
        assert_eq!(check_text(c, "a"), Err(Violation::TooShort { min: 2 }));
        assert_eq!(check_text(c, "abcdef"), Err(Violation::TooLong { max: 5 }));
        assert_eq!(check_text(c, "a\u{0}b"), Err(Violation::BadChar));
        assert_eq!(check_text(c, "1abc"), Err(Violation::BadShape));
        assert_eq!(check_text(c, "名字"), Ok(()));
        // A huge value is rejected for its length without walking all of it.
        assert!(check_text(c, &"a".repeat(1_000_000)).is_err());
    }

    #[test]
    fn int_and_count_boundaries_and_codes() {
        let c = &SIZE;
        check_table([c], |_| "");
        assert_eq!(c.code_for(&check_int(c, 19).unwrap_err()), "Low");
        assert_eq!(c.code_for(&check_int(c, 101).unwrap_err()), "High");
        assert_eq!(check_int_str(c, "1e3"), Err(Violation::NotInteger));
        assert_eq!(
            check_int_str(c, "99999999999999999999"),
            Err(Violation::NotInteger)
        );
        let d = &DISKS;
        assert!(check_count(d, 16).is_ok());
        assert_eq!(
            check_count(d, 17),
            Err(Violation::TooMany { max: 16, got: 17 })
        );
    }

    #[test]
    fn a_table_is_probed_at_every_boundary() {
        let probes = check_table([&NAME, &SIZE, &DISKS], |_| "ab");
        assert_eq!(probes.len(), 12);
        let refused: Vec<(&str, &str)> = probes
            .iter()
            .filter(|p| p.got.is_err())
            .map(|p| (p.row.param, p.value.as_str()))
            .collect();
        assert_eq!(
            refused,
            [
                ("Name", "a"),
                ("Name", "ababab"),
                ("Name", "a\u{7}b"),
                ("Size", "19"),
                ("Size", "101"),
                ("Size", "x"),
                ("Disks", "17"),
            ]
        );
    }

    #[test]
    fn printable_excludes_what_xml_cannot_carry() {
        for c in [
            '\u{0}',
            '\u{7}',
            '\u{1b}',
            '\u{7f}',
            '\u{85}',
            '\u{fffe}',
            '\u{ffff}',
            '\u{1fffe}',
        ] {
            assert!(!printable(c), "{c:?}");
        }
        for c in ['a', ' ', '名', '\u{1F600}', '\u{fffd}'] {
            assert!(printable(c), "{c:?}");
        }
    }

    #[test]
    fn host_names() {
        for (h, win, ok) in [
            ("web-1", false, true),
            ("web.example-1.local", false, true),
            ("-web", false, false),
            ("web.", false, false),
            ("a..b", false, false),
            ("a--b", false, false),
            ("a.-b", false, false),
            ("a_b", false, false),
            ("a b", false, false),
            ("web-1", true, true),
            ("web.1", true, false),
            ("12345", true, false),
            ("12345", false, true),
        ] {
            assert_eq!(host_name(h, win), ok, "{h} windows={win}");
        }
    }

    #[test]
    fn base64_sizes() {
        assert_eq!(base64_decoded_len(""), Some(0));
        assert_eq!(base64_decoded_len("aGk="), Some(2));
        assert_eq!(base64_decoded_len("aGVsbG8h"), Some(6));
        assert_eq!(base64_decoded_len("aGk"), None);
        assert_eq!(base64_decoded_len("a=Gk"), None);
        assert_eq!(base64_decoded_len("a==="), None);
        assert_eq!(base64_decoded_len("aG k"), None);
        assert_eq!(base64_len(16384), 21848);
        assert_eq!(base64_len(32768), 43692);
    }

    #[test]
    fn aliyun_names() {
        assert!(aliyun_name("web:01_a.b-c"));
        assert!(aliyun_name("服务器1"));
        assert!(!aliyun_name("1web"));
        assert!(!aliyun_name("_web"));
        assert!(!aliyun_name("web name"));
        assert!(!aliyun_name("http://x"));
        assert!(!aliyun_name("HTTPS://x"));
        assert!(aliyun_name("httpd"));
        assert!(!aliyun_key_name("a.b"));
    }
}

/// Batch limits: how many things one request may name. Every dialect's limit tables use these
/// (with its own codes), and the engine holds every batch to them.
pub mod batch {
    /// Instance IDs one batch action names (Tencent `InstanceIds.N`, Alibaba `InstanceIds`).
    pub const INSTANCES: usize = 100;
    /// Instances one Alibaba AttachKeyPair / DetachKeyPair names.
    pub const KEY_PAIR_INSTANCES: usize = 50;
    /// Key pairs one delete names (Alibaba `KeyPairNames`).
    pub const KEY_PAIRS: usize = 100;
    /// Instances one Tencent RunInstances launches (`InstanceCount`).
    pub const TENCENT_LAUNCH: u32 = 500;
    /// Instances one Alibaba RunInstances (`Amount`) or Nova create (`min_count`/`max_count`)
    /// launches.
    pub const LAUNCH: u32 = 100;
}

/// The most instances any one create launches (the largest of the dialects' limits).
pub const MAX_LAUNCH_COUNT: u32 = if batch::TENCENT_LAUNCH > batch::LAUNCH {
    batch::TENCENT_LAUNCH
} else {
    batch::LAUNCH
};
