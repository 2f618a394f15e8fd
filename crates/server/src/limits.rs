//! Connection and request limits of the listener: flags, env vars and the TOML `[limits]`
//! table (flags win, then env, then file, then the defaults below; README's operator table
//! says why each default is what it is).

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;
use std::time::Duration;

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
pub const DEFAULT_MAX_INFLIGHT: usize = 256;
/// A quarter of the in-flight cap: one source can no longer hold every slot (slow bodies).
pub const DEFAULT_MAX_INFLIGHT_PER_SOURCE: usize = 64;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_BODY: usize = 2 * 1024 * 1024;

#[derive(Args, Debug, Default)]
pub struct LimitArgs {
    /// Open connections at most (clamped to what the open-file limit allows); further
    /// clients wait in the kernel's accept queue.
    #[arg(long, env = "NUBIS_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests being handled at once (/healthz excepted); more are refused with each
    /// dialect's throttling error.
    #[arg(long, env = "NUBIS_MAX_INFLIGHT")]
    pub max_inflight: Option<usize>,
    /// Requests one client address may have in flight at once (never more than
    /// --max-inflight); more are refused with the dialect's throttling error.
    #[arg(long, env = "NUBIS_MAX_INFLIGHT_PER_SOURCE")]
    pub max_inflight_per_source: Option<usize>,
    /// Time a client has to send a whole request head (e.g. 10s, 500ms).
    #[arg(long, env = "NUBIS_HEADER_TIMEOUT", value_parser = parse_duration)]
    pub header_timeout: Option<Duration>,
    /// Time a client has to send a whole request body.
    #[arg(long, env = "NUBIS_BODY_TIMEOUT", value_parser = parse_duration)]
    pub body_timeout: Option<Duration>,
    /// Time a keep-alive connection may sit idle between requests.
    #[arg(long, env = "NUBIS_IDLE_TIMEOUT", value_parser = parse_duration)]
    pub idle_timeout: Option<Duration>,
    /// Largest request body (bytes; K/KiB/M/MiB suffixes).
    #[arg(long, env = "NUBIS_MAX_BODY", value_parser = parse_size)]
    pub max_body: Option<usize>,
}

/// The `[limits]` table of the TOML file: durations as strings (`"10s"`) or seconds.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct LimitFile {
    max_connections: Option<usize>,
    max_inflight: Option<usize>,
    max_inflight_per_source: Option<usize>,
    header_timeout: Option<DurationValue>,
    body_timeout: Option<DurationValue>,
    idle_timeout: Option<DurationValue>,
    max_body: Option<SizeValue>,
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum DurationValue {
    Seconds(u64),
    Fraction(f64),
    Text(String),
}

impl DurationValue {
    fn get(&self, name: &str) -> Result<Duration> {
        match self {
            Self::Seconds(s) => Ok(Duration::from_secs(*s)),
            Self::Fraction(s) => parse_duration(&s.to_string()),
            Self::Text(t) => parse_duration(t),
        }
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("[limits] {name}"))
    }
}

#[derive(Deserialize, Debug)]
#[serde(untagged)]
enum SizeValue {
    Bytes(usize),
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_inflight: usize,
    pub max_inflight_per_source: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            max_inflight_per_source: DEFAULT_MAX_INFLIGHT_PER_SOURCE,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl Limits {
    pub fn resolve(args: LimitArgs, file: LimitFile) -> Result<Self> {
        let d = Self::default();
        let dur = |flag: Option<Duration>, file: &Option<DurationValue>, name, default| match (
            flag, file,
        ) {
            (Some(v), _) => Ok(v),
            (None, Some(v)) => v.get(name),
            (None, None) => Ok(default),
        };
        let max_body = match (args.max_body, &file.max_body) {
            (Some(v), _) => v,
            (None, Some(SizeValue::Bytes(n))) => *n,
            (None, Some(SizeValue::Text(t))) => parse_size(t)
                .map_err(anyhow::Error::msg)
                .context("[limits] max_body")?,
            (None, None) => d.max_body,
        };
        let max_inflight = args
            .max_inflight
            .or(file.max_inflight)
            .unwrap_or(d.max_inflight);
        let limits = Self {
            max_connections: args
                .max_connections
                .or(file.max_connections)
                .unwrap_or(d.max_connections),
            max_inflight,
            max_inflight_per_source: args
                .max_inflight_per_source
                .or(file.max_inflight_per_source)
                .unwrap_or(d.max_inflight_per_source)
                .min(max_inflight),
            header_timeout: dur(
                args.header_timeout,
                &file.header_timeout,
                "header_timeout",
                d.header_timeout,
            )?,
            body_timeout: dur(
                args.body_timeout,
                &file.body_timeout,
                "body_timeout",
                d.body_timeout,
            )?,
            idle_timeout: dur(
                args.idle_timeout,
                &file.idle_timeout,
                "idle_timeout",
                d.idle_timeout,
            )?,
            max_body,
        };
        if limits.max_connections == 0
            || limits.max_inflight == 0
            || limits.max_inflight_per_source == 0
        {
            bail!(
                "NUBIS_MAX_CONNECTIONS, NUBIS_MAX_INFLIGHT and NUBIS_MAX_INFLIGHT_PER_SOURCE must be at least 1"
            );
        }
        for (name, v) in [
            ("NUBIS_HEADER_TIMEOUT", limits.header_timeout),
            ("NUBIS_BODY_TIMEOUT", limits.body_timeout),
            ("NUBIS_IDLE_TIMEOUT", limits.idle_timeout),
        ] {
            if v.is_zero() {
                bail!("{name} must be more than zero");
            }
        }
        Ok(limits)
    }
}

/// `10s`, `500ms`, `2m`, or a number of seconds (`10`, `0.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        other => return Err(format!("unknown duration unit {other:?} (ms, s or m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a valid duration"))
}

/// `2097152`, `64K`/`64KiB`, `2M`/`2MiB` (powers of 1024).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 2097152, 64KiB or 2MiB"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1024,
        "M" | "MiB" => 1024 * 1024,
        other => return Err(format!("unknown size unit {other:?} (K, KiB, M or MiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_sizes() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
        assert_eq!(parse_size("2MiB"), Ok(2 * 1024 * 1024));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("1G").is_err());
        assert!(parse_size("99999999999999999999M").is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_defaults_fill_the_rest() {
        let file: LimitFile = toml::from_str(
            "max_inflight = 7\nheader_timeout = \"2s\"\nidle_timeout = 5\nmax_body = \"1K\"",
        )
        .expect("valid table");
        let args = LimitArgs {
            max_inflight: Some(9),
            ..Default::default()
        };
        let l = Limits::resolve(args, file).expect("valid limits");
        assert_eq!(l.max_inflight, 9);
        assert_eq!(l.header_timeout, Duration::from_secs(2));
        assert_eq!(l.idle_timeout, Duration::from_secs(5));
        assert_eq!(l.max_body, 1024);
        assert_eq!(l.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(l.body_timeout, DEFAULT_BODY_TIMEOUT);
        assert!(toml::from_str::<LimitFile>("max_conections = 1").is_err());
        let zero = LimitArgs {
            max_inflight: Some(0),
            ..Default::default()
        };
        assert!(Limits::resolve(zero, LimitFile::default()).is_err());
    }
}
