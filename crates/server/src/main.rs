//! `nubis`: the control plane binary.

mod admin;
mod agent;
mod audit;
mod authz;
mod config;
mod console;
mod files;
mod guard;
mod host;
mod http;
mod limits;
mod listener;
mod peer;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use nubis_auth::secret::SecretBox;
use nubis_driver::Driver;
use nubis_driver::qemu::{Accel, QemuConfig, QemuDriver};
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_store::{PgStore, SqliteStore, Store};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "nubis",
    version,
    about = "One fleet of VMs behind the Tencent Cloud CVM, Alibaba Cloud ECS and OpenStack APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve every dialect on one listener.
    Serve(config::ServeArgs),
    /// Run one compute host for a control plane (docs/agents.md).
    Agent(host::AgentArgs),
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns the memory freed so far to the OS. After a large fleet's load, most of what the
/// decoding allocated is free but still resident until traffic makes the allocator purge
/// (100,000 instances: 508 MB resident after start-up, 340 MB after this).
fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointer and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Lets the allocator back its arenas with transparent huge pages (where the kernel allows them
/// on request, Debian's default `madvise`): a million-instance start-up faults in gigabytes,
/// and 4 KiB page faults were half its time (22 s → 14 s; docs/fleet-index.md). mimalloc reads
/// its options from the environment when the process starts, before `main`, so the process
/// sets the variable and replaces itself once (same PID, same arguments). An operator's own
/// `MIMALLOC_ALLOW_LARGE_OS_PAGES` (0 turns it off) is left as it is.
fn use_huge_pages() {
    const VAR: &str = "MIMALLOC_ALLOW_LARGE_OS_PAGES";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt as _;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VAR, "1")
        .exec();
    // Only on failure: carry on with 4 KiB pages.
    eprintln!("nubis: could not re-execute with huge pages ({err}); continuing without");
}

fn main() -> Result<()> {
    use_huge_pages();
    let cli = Cli::parse();
    // Before any thread or file exists: whatever the operator's umask, nothing this process
    // creates is readable by other users.
    files::private_umask();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Cmd::Serve(args) => runtime.block_on(serve(args)),
        Cmd::Agent(args) => runtime.block_on(run_agent(args)),
    }
}

fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("NUBIS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
}

async fn run_agent(args: host::AgentArgs) -> Result<()> {
    init_logging();
    // The driver settings (NUBIS_QEMU_*, NUBIS_SIM_TIME_SCALE) are read as `serve` reads them.
    let cfg = config::Config::resolve(config::ServeArgs {
        driver: Some(args.driver.clone()),
        data: Some(args.data.clone()),
        ..Default::default()
    })?;
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data dir {}", cfg.data.display()))?;
    files::secure_tree(&cfg.data)?;
    let driver = build_driver(&cfg).await?;
    host::run(args, driver).await
}

/// The hypervisor driver `cfg` names.
async fn build_driver(cfg: &config::Config) -> Result<Arc<dyn Driver>> {
    Ok(match cfg.driver.as_str() {
        "sim" => Arc::new(
            SimDriver::new(cfg.sim_time_scale)
                .with_image_store(std::path::absolute(cfg.data.join("images"))?),
        ),
        "qemu" => {
            let mut q = QemuConfig::new(
                std::path::absolute(&cfg.qemu_images)?,
                std::path::absolute(cfg.data.join("qemu"))?,
            );
            q.qemu_binary = cfg.qemu_binary.clone();
            q.image_store = Some(std::path::absolute(cfg.data.join("images"))?);
            q.soft_stop_timeout = std::time::Duration::from_secs(cfg.qemu_stop_timeout);
            if cfg.qemu_accel == "kvm" {
                q.accel = Accel::Kvm;
            }
            let d = QemuDriver::new(q).context("starting the qemu driver")?;
            let accel = d
                .probe_accel(Duration::from_secs(cfg.qemu_kvm_probe_timeout))
                .await;
            tracing::info!(?accel, images = %cfg.qemu_images.display(), "qemu driver ready");
            d
        }
        other => bail!("unknown driver {other:?}: expected sim or qemu"),
    })
}

async fn serve(args: config::ServeArgs) -> Result<()> {
    let mut cfg = config::Config::resolve(args)?;
    init_logging();
    std::fs::create_dir_all(&cfg.data)
        .with_context(|| format!("creating data dir {}", cfg.data.display()))?;
    // Data dirs of older versions (or made under a permissive umask) become private too.
    files::secure_tree(&cfg.data)?;
    if let Some(nofile) = files::raise_nofile() {
        let fit = nofile.saturating_sub(files::RESERVED_FDS).max(1);
        if (cfg.limits.max_connections as u64) > fit {
            tracing::warn!(
                max_connections = cfg.limits.max_connections,
                nofile,
                "the open-file limit allows fewer connections; capping them at {fit}"
            );
            cfg.limits.max_connections = fit as usize;
        }
    }
    let secrets = SecretBox::load_or_create(cfg.data.join("master.key"))
        .context("loading the secrets key")?;
    // The data dir keeps master.key and admin-credentials whichever store holds the fleet.
    let store: Arc<dyn Store> = match cfg.database_url.as_deref() {
        None => Arc::new(
            SqliteStore::open(&cfg.data.join("nubis.db")).context("opening the SQLite store")?,
        ),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Arc::new(
                PgStore::open(url)
                    .await
                    .context("opening the PostgreSQL store")?,
            )
        }
        Some(_) => bail!("unsupported --database URL: expected postgres://… or postgresql://…"),
    };
    let driver = build_driver(&cfg).await?;
    let options = nubis_engine::Options {
        lease_ttl: cfg.lease_ttl,
        host_timeout: cfg.host_timeout,
        image_dir: Some(cfg.data.join("images")),
        reclaim_interval: (cfg.reclaim_instance_interval > 0)
            .then(|| std::time::Duration::from_secs(cfg.reclaim_instance_interval)),
        security: cfg.security,
    };
    let engine = Engine::start_with(store, driver, secrets, options)
        .await
        .context("starting the engine")?;
    release_freed_memory();
    engine
        .set_quota_defaults(nubis_engine::QuotaDefaults {
            accounts: cfg.quotas,
            ..Default::default()
        })
        .context("quota defaults")?;
    if cfg.audit_retention_days > 0 {
        engine.spawn_audit_sweeper(
            Duration::from_secs(u64::from(cfg.audit_retention_days) * 86_400),
            Duration::from_secs(3600),
        );
    }

    let env_key = match (
        std::env::var("NUBIS_ADMIN_ACCESS_KEY_ID"),
        std::env::var("NUBIS_ADMIN_ACCESS_KEY_SECRET"),
    ) {
        (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => Some((id, secret)),
        _ => None,
    };
    let admin_key_id = env_key.as_ref().map(|(id, _)| id.clone());
    let generated = engine
        .bootstrap(env_key, std::env::var("NUBIS_ADMIN_PASSWORD").ok())
        .await
        .context("bootstrapping the admin account")?;
    let mut shown_key = admin_key_id.map(|id| (id, "$NUBIS_ADMIN_ACCESS_KEY_SECRET".to_string()));
    if let Some(g) = &generated {
        // Only what nubis made up is written and shown; given credentials stay with the operator.
        let path = cfg.data.join("admin-credentials");
        let mut text = String::new();
        println!(
            "Generated admin credentials (shown once; also in {}):",
            path.display()
        );
        if let Some((id, secret)) = &g.access_key {
            text.push_str(&format!(
                "NUBIS_ADMIN_ACCESS_KEY_ID={id}\nNUBIS_ADMIN_ACCESS_KEY_SECRET={secret}\n"
            ));
            println!("  access key id:     {id}");
            println!("  access key secret: {secret}");
            shown_key = Some((id.clone(), secret.clone()));
        }
        if let Some(password) = &g.password {
            text.push_str(&format!("NUBIS_ADMIN_PASSWORD={password}\n"));
            println!("  keystone password: {password} (user admin, project admin, domain Default)");
        }
        write_private(&path, &text)?;
    }

    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    if cfg.public_url.is_none() {
        // Default: the address actually bound (so `--listen 127.0.0.1:0` works too).
        cfg.public_url = Some(
            nubis_api_openstack::check_public_url(&format!("http://{addr}"))
                .context("the listen address as a public URL (set --public-url)")?,
        );
    }
    let node = cfg
        .node_id
        .get_or_insert_with(|| config::default_node_id(addr.port()))
        .clone();
    tracing::info!(node = %node, listen = %addr, "node identity");
    print_banner(&addr.to_string(), &cfg, shown_key.as_ref());
    let app = http::router(engine, &cfg)?;
    listener::serve(listener, app, cfg.limits, shutdown()).await?;
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // `mode` applies only when the file is created: an existing one is made private here.
    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
        files::FILE_MODE,
    ))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

fn print_banner(addr: &str, cfg: &config::Config, key: Option<&(String, String)>) {
    let (id, secret) = key
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .unwrap_or(("<see admin-credentials in the data dir>", "<secret>"));
    println!(
        "nubis listening on http://{addr} (data: {}, driver: {}, store: {})",
        cfg.data.display(),
        cfg.driver,
        if cfg.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    let public = cfg.public_url.as_deref().unwrap_or_default();
    let node = cfg.node_id.as_deref().unwrap_or_default();
    println!("  node                    {node}   (X-Nubis-Node header; --node-id)");
    println!("  public URL              {public}   (Keystone catalog and links; --public-url)");
    println!("  Tencent CVM 2017-03-12  http://{addr}/   region ap-guangzhou");
    println!("  Alibaba ECS 2014-05-26  http://{addr}/   region cn-hangzhou");
    println!(
        "  OpenStack Keystone v3   {public}/identity/v3   (Nova /compute/v2.1, Glance /image)   region RegionOne"
    );
    println!(
        "  web console             {public}/console   (a Keystone user and password, or an access key)"
    );
    println!("  health                  http://{addr}/healthz   metrics http://{addr}/metrics");
    if cfg.driver == "qemu" {
        println!(
            "  guests                  real QEMU VMs; SSH: the instance's `nubis:ssh` tag (Nova: metadata), e.g. ssh -p PORT root@127.0.0.1"
        );
    }
    println!();
    println!("tccli:");
    println!(
        "  tccli cvm DescribeInstances --endpoint http://{addr} --region ap-guangzhou --secretId {id} --secretKey {secret}"
    );
    println!("tencentcloud-sdk-python:");
    println!("  hp = HttpProfile(endpoint=\"{addr}\", protocol=\"http\")");
    println!(
        "  client = cvm_client.CvmClient(credential.Credential(\"{id}\", \"{secret}\"), \"ap-guangzhou\", ClientProfile(httpProfile=hp))"
    );
    println!("alibabacloud-ecs20140526 (Tea SDK):");
    println!(
        "  ecs = Client(Config(access_key_id=\"{id}\", access_key_secret=\"{secret}\", endpoint=\"{addr}\", protocol=\"http\", region_id=\"cn-hangzhou\"))"
    );
    println!("openstack CLI / openstacksdk:");
    println!(
        "  export OS_AUTH_URL={public}/identity/v3 OS_USERNAME=admin OS_PASSWORD=$NUBIS_ADMIN_PASSWORD OS_PROJECT_NAME=admin OS_USER_DOMAIN_NAME=Default OS_PROJECT_DOMAIN_NAME=Default OS_IDENTITY_API_VERSION=3"
    );
    println!("aliyun-python-sdk-core:");
    println!(
        "  client = AcsClient(\"{id}\", \"{secret}\", \"cn-hangzhou\"); request.set_endpoint(\"{addr}\")"
    );
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
}
