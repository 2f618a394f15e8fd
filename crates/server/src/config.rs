//! The operator contract: flags, env vars and an optional TOML file (flags win, then env, then
//! file, then defaults).

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "NUBIS_LISTEN")]
    pub listen: Option<String>,
    /// Data directory (SQLite database, secrets key, generated credentials).
    #[arg(long, env = "NUBIS_DATA")]
    pub data: Option<PathBuf>,
    /// Hypervisor driver: sim or qemu.
    #[arg(long, env = "NUBIS_DRIVER")]
    pub driver: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "NUBIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL; a postgres:// URL selects PostgreSQL.
    #[arg(long = "database", env = "NUBIS_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(flatten)]
    pub limits: crate::limits::LimitArgs,
    /// Public base URL clients reach nubis at (Keystone catalog, links), e.g.
    /// https://cloud.example.com; default http://<listen address>.
    #[arg(long = "public-url", env = "NUBIS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// This node's name in a cluster (log lines, the X-Nubis-Node response header); default
    /// <hostname>-<listen port>.
    #[arg(long = "node-id", env = "NUBIS_NODE_ID")]
    pub node_id: Option<String>,
    /// With --database postgres://: how long an operation's lease lasts unrenewed, in
    /// milliseconds (600-600000; default 10000). A dead node's operations are taken over by
    /// another node this long after its last renewal (docs/cluster.md).
    #[arg(long = "lease-ttl-ms", env = "NUBIS_LEASE_TTL_MS")]
    pub lease_ttl_ms: Option<u64>,
    /// How long an agent host may stay silent before it is lost, in milliseconds
    /// (1000-600000; default 10000): its instances show as unknown, their work waits
    /// (docs/agents.md).
    #[arg(long = "host-timeout-ms", env = "NUBIS_HOST_TIMEOUT_MS")]
    pub host_timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data: Option<PathBuf>,
    driver: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
    node_id: Option<String>,
    lease_ttl_ms: Option<u64>,
    host_timeout_ms: Option<u64>,
    nova_policy_file: Option<PathBuf>,
    rate_limits: Option<bool>,
    sim_time_scale: Option<f64>,
    qemu_images: Option<PathBuf>,
    qemu_accel: Option<String>,
    qemu_binary: Option<PathBuf>,
    qemu_stop_timeout: Option<u64>,
    audit_retention_days: Option<u32>,
    shelved_offload_time: Option<i64>,
    reclaim_instance_interval: Option<u64>,
    /// Keystone's `[security_compliance]` `lockout_failure_attempts`, `lockout_duration`
    /// (seconds) and `unique_last_password_count`.
    lockout_failure_attempts: Option<u32>,
    lockout_duration: Option<u64>,
    unique_last_password_count: Option<u32>,
    /// Glance's `image_size_cap`: bytes, or with a K/KiB/M/MiB/G/GiB/T/TiB suffix.
    image_size_cap: Option<String>,
    /// The `[limits]` table.
    limits: Option<crate::limits::LimitFile>,
    /// The `[quotas]` table: default quotas of every account but the bootstrap admin.
    quotas: Option<QuotaFile>,
}

/// `[quotas]`: each limit `-1` (unlimited) or `0…2147483647`; a key not given keeps Nova's
/// default (10 instances, 20 cores, 51200 MiB, 100 key pairs).
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct QuotaFile {
    instances: Option<i64>,
    cores: Option<i64>,
    ram_mib: Option<i64>,
    key_pairs: Option<i64>,
}

#[derive(Debug)]
pub struct Config {
    pub listen: String,
    pub data: PathBuf,
    pub driver: String,
    pub database_url: Option<String>,
    /// Base of every URL nubis hands out (checked: http/https, host, optional path prefix).
    /// None until given or, by default, set from the bound listen address at start.
    pub public_url: Option<String>,
    /// This node's name (checked); None until given or, by default, set from the host name
    /// and the bound port at start ([`default_node_id`]).
    pub node_id: Option<String>,
    /// How long an operation's lease lasts unrenewed (shared store only).
    pub lease_ttl: Duration,
    /// How long an agent host may stay silent before it is lost.
    pub host_timeout: Duration,
    pub rate_limits: bool,
    pub sim_time_scale: f64,
    /// qemu driver: the guest/build output directory.
    pub qemu_images: PathBuf,
    /// qemu driver: "tcg" (default) or "kvm" (opt-in; boots still time out).
    pub qemu_accel: String,
    pub qemu_binary: PathBuf,
    /// qemu driver: how long a soft stop waits for the guest (seconds).
    pub qemu_stop_timeout: u64,
    /// qemu driver with kvm: how long the start-up probe boot may take (seconds).
    pub qemu_kvm_probe_timeout: u64,
    /// Connection and request limits of the listener.
    pub limits: crate::limits::Limits,
    /// Audit events older than this many days are swept (hourly); 0 keeps them forever.
    pub audit_retention_days: u32,
    /// Nova's `shelved_offload_time`: 0 offloads a shelved server at once (Nova's default),
    /// -1 never (it stays SHELVED until shelveOffload). Nothing else is served.
    pub shelved_offload: bool,
    /// Nova's `reclaim_instance_interval` in seconds: 0 deletes at once (Nova's default);
    /// more soft-deletes a Nova delete and reclaims it this long after
    /// (docs/deferred-delete.md).
    pub reclaim_instance_interval: u64,
    /// Keystone's `[security_compliance]` lockout and password history (docs/keystone-v3.md).
    pub security: nubis_engine::keystone::SecurityCompliance,
    /// Largest Glance image upload, bytes (`NUBIS_IMAGE_SIZE_CAP` / `image_size_cap`;
    /// Glance's default, 1 TiB).
    pub image_size_cap: u64,
    /// Default quotas of every account but the bootstrap admin (which is unlimited unless
    /// set through the admin API).
    pub quotas: nubis_core::QuotaLimits,
    /// How long an MFA authentication covers Tencent's sensitive actions
    /// (`NUBIS_MFA_MAX_AGE_SECS`, default 1800 s; D6).
    pub mfa_max_age_secs: u64,
    /// The shortest STS DurationSeconds accepted (`NUBIS_STS_MIN_DURATION_SECS`, default
    /// 900 s, the clouds' minimum; tests lower it to watch a credential expire).
    pub sts_min_duration_secs: u64,
    /// Nova oslo.policy overrides (the text of `NUBIS_NOVA_POLICY_FILE` / `nova_policy_file`,
    /// JSON or YAML), checked when the API is built.
    pub nova_policy: Option<String>,
}

/// `NUBIS_QUOTA_<NAME>` (wins) or the file's value, else `default`; checked.
fn quota_value(name: &str, file: Option<i64>, default: i64) -> Result<i64> {
    let var = format!("NUBIS_QUOTA_{}", name.to_uppercase());
    let v = match std::env::var(&var) {
        Ok(v) => v
            .parse()
            .with_context(|| format!("{var}={v:?} is not an integer"))?,
        Err(_) => file.unwrap_or(default),
    };
    if !(-1..=nubis_core::rules::quota::MAX_LIMIT).contains(&v) {
        anyhow::bail!("quota {name} = {v}: expected -1 (unlimited) or 0…2147483647");
    }
    Ok(v)
}

/// Largest Nova policy file read (the oslo parser's own bound).
const MAX_POLICY_FILE: u64 = 256 * 1024;

/// The lease TTL given (milliseconds), checked; the engine's default otherwise.
fn lease_ttl(ms: Option<u64>) -> Result<Duration> {
    let Some(ms) = ms else {
        return Ok(nubis_engine::DEFAULT_LEASE_TTL);
    };
    let min = nubis_engine::MIN_LEASE_TTL.as_millis() as u64;
    if !(min..=600_000).contains(&ms) {
        anyhow::bail!(
            "--lease-ttl-ms / NUBIS_LEASE_TTL_MS / lease_ttl_ms {ms}: expected {min}-600000"
        );
    }
    Ok(Duration::from_millis(ms))
}

/// Longest node ID: it is sent in a header and written in every request's log line.
const MAX_NODE_ID: usize = 64;

/// A node ID is 1–64 of `A-Z a-z 0-9 . _ : -`: safe as a header value and a log field
/// without quoting, and unambiguous in a load balancer's server list.
pub fn check_node_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_NODE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if !ok {
        anyhow::bail!(
            "--node-id / NUBIS_NODE_ID / node_id {id:?}: expected 1-{MAX_NODE_ID} characters of A-Z a-z 0-9 . _ : -"
        );
    }
    Ok(())
}

/// The default node ID, `<hostname>-<port>`: distinct for several nodes on one machine
/// (distinct ports) and across machines (distinct host names). Characters a node ID may not
/// hold are replaced, so any host name gives a valid ID.
pub fn default_node_id(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NODE_ID - 6)
        .collect();
    let host = if host.is_empty() {
        "nubis".into()
    } else {
        host
    };
    format!("{host}-{port}")
}

impl Config {
    pub fn resolve(args: ServeArgs) -> Result<Self> {
        let file: FileConfig = match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let rate_limits = match std::env::var("NUBIS_RATE_LIMITS").ok().as_deref() {
            Some("off" | "false" | "0") => false,
            Some(_) => true,
            None => file.rate_limits.unwrap_or(true),
        };
        let sim_time_scale = match std::env::var("NUBIS_SIM_TIME_SCALE") {
            Ok(v) => v
                .parse()
                .with_context(|| format!("NUBIS_SIM_TIME_SCALE={v:?} is not a number"))?,
            Err(_) => file.sim_time_scale.unwrap_or(1.0),
        };
        let env_path = |k: &str| std::env::var_os(k).map(PathBuf::from);
        let qemu_accel = std::env::var("NUBIS_QEMU_ACCEL")
            .ok()
            .or(file.qemu_accel)
            .unwrap_or_else(|| "tcg".into());
        if !matches!(qemu_accel.as_str(), "tcg" | "kvm") {
            anyhow::bail!("NUBIS_QEMU_ACCEL={qemu_accel:?}: expected tcg or kvm");
        }
        let qemu_stop_timeout = match std::env::var("NUBIS_QEMU_STOP_TIMEOUT") {
            Ok(v) => v.parse().with_context(|| {
                format!("NUBIS_QEMU_STOP_TIMEOUT={v:?} is not a number of seconds")
            })?,
            Err(_) => file.qemu_stop_timeout.unwrap_or(30),
        };
        let qemu_kvm_probe_timeout = match std::env::var("NUBIS_QEMU_KVM_PROBE_TIMEOUT") {
            Ok(v) => v.parse().with_context(|| {
                format!("NUBIS_QEMU_KVM_PROBE_TIMEOUT={v:?} is not a number of seconds")
            })?,
            Err(_) => 30,
        };
        let audit_retention_days = match std::env::var("NUBIS_AUDIT_RETENTION_DAYS") {
            Ok(v) => v.parse().with_context(|| {
                format!("NUBIS_AUDIT_RETENTION_DAYS={v:?} is not a number of days")
            })?,
            Err(_) => file.audit_retention_days.unwrap_or(90),
        };
        let shelved_offload_time = match std::env::var("NUBIS_SHELVED_OFFLOAD_TIME") {
            Ok(v) => v.parse().with_context(|| {
                format!("NUBIS_SHELVED_OFFLOAD_TIME={v:?} is not a number of seconds")
            })?,
            Err(_) => file.shelved_offload_time.unwrap_or(0),
        };
        let shelved_offload = match shelved_offload_time {
            0 => true,
            -1 => false,
            other => anyhow::bail!(
                "shelved_offload_time={other}: nubis offloads at once (0) or never (-1)"
            ),
        };
        // Nova's own bound: an interval is an integer number of seconds (a year at most here,
        // far beyond any recycle bin).
        let reclaim_instance_interval = match std::env::var("NUBIS_RECLAIM_INSTANCE_INTERVAL") {
            Ok(v) => v.parse::<u64>().ok().filter(|n| *n <= 31_536_000).with_context(|| {
                format!(
                    "NUBIS_RECLAIM_INSTANCE_INTERVAL={v:?} is not a number of seconds (0-31536000)"
                )
            })?,
            Err(_) => file.reclaim_instance_interval.unwrap_or(0),
        };
        if reclaim_instance_interval > 31_536_000 {
            anyhow::bail!(
                "reclaim_instance_interval={reclaim_instance_interval}: at most 31536000 seconds"
            );
        }
        // Keystone's [security_compliance]; each 0 (off) by default, as Keystone's.
        let bounded = |env: &str, file: Option<u64>, max: u64| -> anyhow::Result<u64> {
            let n = match std::env::var(env) {
                Ok(v) => v
                    .parse::<u64>()
                    .ok()
                    .with_context(|| format!("{env}={v:?} is not a whole number"))?,
                Err(_) => file.unwrap_or(0),
            };
            anyhow::ensure!(n <= max, "{env} (or its config key) is {n}: at most {max}");
            Ok(n)
        };
        let security = nubis_engine::keystone::SecurityCompliance {
            lockout_failure_attempts: bounded(
                "NUBIS_LOCKOUT_FAILURE_ATTEMPTS",
                file.lockout_failure_attempts.map(u64::from),
                1000,
            )? as u32,
            lockout_duration_secs: bounded(
                "NUBIS_LOCKOUT_DURATION",
                file.lockout_duration,
                31_536_000,
            )?,
            unique_last_password_count: bounded(
                "NUBIS_UNIQUE_LAST_PASSWORD_COUNT",
                file.unique_last_password_count.map(u64::from),
                u64::from(nubis_engine::keystone::MAX_PASSWORD_HISTORY),
            )? as u32,
        };
        anyhow::ensure!(
            (security.lockout_failure_attempts == 0) == (security.lockout_duration_secs == 0),
            "NUBIS_LOCKOUT_FAILURE_ATTEMPTS and NUBIS_LOCKOUT_DURATION are set together (both 0: no lockout)"
        );
        let image_size_cap = match std::env::var("NUBIS_IMAGE_SIZE_CAP")
            .ok()
            .or_else(|| file.image_size_cap.clone())
        {
            Some(v) => parse_image_cap(&v).with_context(|| {
                format!(
                    "NUBIS_IMAGE_SIZE_CAP / image_size_cap = {v:?}: a size such as 1TiB or 500M"
                )
            })?,
            None => nubis_api_openstack::image::upload::DEFAULT_SIZE_CAP,
        };
        let secs = |k: &str, default: u64| -> Result<u64> {
            match std::env::var(k) {
                Ok(v) => v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .with_context(|| format!("{k}={v:?} is not a number of seconds (1-86400)")),
                Err(_) => Ok(default),
            }
        };
        let mfa_max_age_secs = secs("NUBIS_MFA_MAX_AGE_SECS", 1800)?;
        let sts_min_duration_secs = secs("NUBIS_STS_MIN_DURATION_SECS", 900)?;
        let limits = crate::limits::Limits::resolve(args.limits, file.limits.unwrap_or_default())?;
        let q = file.quotas.unwrap_or_default();
        let d = nubis_core::QuotaLimits::NOVA_DEFAULTS;
        let quotas = nubis_core::QuotaLimits {
            instances: quota_value("instances", q.instances, d.instances)?,
            cores: quota_value("cores", q.cores, d.cores)?,
            ram_mib: quota_value("ram_mib", q.ram_mib, d.ram_mib)?,
            key_pairs: quota_value("key_pairs", q.key_pairs, d.key_pairs)?,
            items: d.items,
        };
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let public_url = args
            .public_url
            .or(file.public_url)
            .map(|u| {
                nubis_api_openstack::check_public_url(&u)
                    .context("--public-url / NUBIS_PUBLIC_URL / public_url")
            })
            .transpose()?;
        let node_id = args
            .node_id
            .or(file.node_id)
            .map(|n| check_node_id(&n).map(|()| n))
            .transpose()?;
        let lease_ttl = lease_ttl(args.lease_ttl_ms.or(file.lease_ttl_ms))?;
        let host_timeout = match args.host_timeout_ms.or(file.host_timeout_ms) {
            None => nubis_engine::DEFAULT_HOST_TIMEOUT,
            Some(ms @ 1000..=600_000) => Duration::from_millis(ms),
            Some(ms) => anyhow::bail!(
                "--host-timeout-ms / NUBIS_HOST_TIMEOUT_MS / host_timeout_ms {ms}: expected 1000-600000"
            ),
        };
        let nova_policy = match env_path("NUBIS_NOVA_POLICY_FILE").or(file.nova_policy_file) {
            None => None,
            Some(p) => {
                let size = std::fs::metadata(&p)
                    .with_context(|| format!("NUBIS_NOVA_POLICY_FILE {}", p.display()))?
                    .len();
                if size > MAX_POLICY_FILE {
                    anyhow::bail!(
                        "NUBIS_NOVA_POLICY_FILE {}: {size} bytes, at most {MAX_POLICY_FILE}",
                        p.display()
                    );
                }
                Some(
                    std::fs::read_to_string(&p)
                        .with_context(|| format!("NUBIS_NOVA_POLICY_FILE {}", p.display()))?,
                )
            }
        };
        Ok(Self {
            audit_retention_days,
            shelved_offload,
            reclaim_instance_interval,
            security,
            image_size_cap,
            nova_policy,
            limits,
            quotas,
            mfa_max_age_secs,
            sts_min_duration_secs,
            listen,
            public_url,
            node_id,
            lease_ttl,
            host_timeout,
            qemu_kvm_probe_timeout,
            qemu_stop_timeout,
            qemu_images: env_path("NUBIS_QEMU_IMAGES")
                .or(file.qemu_images)
                .unwrap_or_else(|| PathBuf::from("guest/out")),
            qemu_accel,
            qemu_binary: env_path("NUBIS_QEMU_BINARY")
                .or(file.qemu_binary)
                .unwrap_or_else(|| PathBuf::from("qemu-system-x86_64")),
            data: args
                .data
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("nubis-data")),
            driver: args.driver.or(file.driver).unwrap_or_else(|| "sim".into()),
            database_url: args.database_url.or(file.database_url),
            rate_limits,
            sim_time_scale,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        for good in ["a", "node-1", "api_2.eu:8080", &"n".repeat(MAX_NODE_ID)] {
            assert!(check_node_id(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "two words",
            "n\r\nX-Evil: 1",
            "nœud",
            &"n".repeat(MAX_NODE_ID + 1),
        ] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_default_node_id_is_valid_and_names_the_port() {
        let id = default_node_id(65535);
        assert!(id.ends_with("-65535"), "{id}");
        check_node_id(&id).unwrap();
        assert_ne!(default_node_id(8080), default_node_id(8081));
    }
}

/// A size with an optional unit (K/KiB = 1024, M/MiB, G/GiB, T/TiB), at least one byte.
fn parse_image_cap(s: &str) -> Result<u64> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: u64 = n.parse().context("no number")?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" | "KB" => 10,
        "M" | "MiB" | "MB" => 20,
        "G" | "GiB" | "GB" => 30,
        "T" | "TiB" | "TB" => 40,
        other => anyhow::bail!("unknown unit {other:?}"),
    };
    let bytes = n.checked_mul(1u64 << shift).context("too large")?;
    anyhow::ensure!(bytes > 0, "must be at least one byte");
    Ok(bytes)
}

#[cfg(test)]
mod image_cap_tests {
    #[test]
    fn image_cap_units() {
        assert_eq!(super::parse_image_cap("1TiB").unwrap(), 1 << 40);
        assert_eq!(super::parse_image_cap("500M").unwrap(), 500 << 20);
        assert_eq!(super::parse_image_cap("4096").unwrap(), 4096);
        assert!(super::parse_image_cap("0").is_err());
        assert!(super::parse_image_cap("5X").is_err());
        assert!(super::parse_image_cap("99999999999T").is_err());
    }
}
