//! The in-process harness the nubis crates' tests share: an engine over a SQLite store in a
//! temporary directory with the sim driver (time scale 0), bootstrapped with one admin key and
//! Keystone password; each dialect's API over it (features `tencent`, `aliyun`, `openstack`);
//! signed requests in each dialect's schemes; a runner for handlers on small stacks.
//!
//! Used only as a `[dev-dependencies]` entry. It panics on set-up failures: a test that cannot
//! set up must fail loudly.

use nubis_auth::secret::SecretBox;
use nubis_core::audit::AuditEvent;
use nubis_core::{CreateSpec, Principal};
use nubis_driver::sim::SimDriver;
use nubis_engine::{Engine, NewAccount};
use nubis_pipeline::{Auditor, Column, Registry, Services};
use nubis_store::{SqliteStore, Store};
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

pub use nubis_pipeline::DenyAll;
pub use tempfile::TempDir;

#[cfg(feature = "aliyun")]
pub mod aliyun;
pub mod hooked;
pub mod limits;
#[cfg(feature = "openstack")]
pub mod openstack;
pub mod pg;
#[cfg(feature = "tencent")]
pub mod tencent;

/// The bootstrap access key's ID and secret (every dialect signs with them).
pub const KEY_ID: &str = "AKIDtest";
pub const SECRET: &str = "secretsecret";
/// The Keystone admin's bootstrap password.
pub const PASSWORD: &str = "Adm1n-Passw0rd";

/// Starts an engine over the store and key file in `dir` (the same files on every call, so a
/// second call is a restart), without bootstrapping it.
pub async fn start_in(dir: &Path, time_scale: f64) -> Engine {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join("nubis.db")).expect("open the store"));
    let secrets = SecretBox::load_or_create(dir.join("master.key")).expect("the key file");
    Engine::start(store, Arc::new(SimDriver::new(time_scale)), secrets)
        .await
        .expect("start the engine")
}

/// [`start_in`], then the bootstrap the server runs with this key and Keystone password.
pub async fn engine_in(
    dir: &Path,
    time_scale: f64,
    key: Option<(&str, &str)>,
    password: Option<&str>,
) -> Engine {
    let e = start_in(dir, time_scale).await;
    e.bootstrap(
        key.map(|(id, secret)| (id.to_string(), secret.to_string())),
        password.map(str::to_string),
    )
    .await
    .expect("bootstrap");
    e
}

/// An engine in a fresh temporary directory (kept as long as the `TempDir`), time scale 0,
/// bootstrapped with [`KEY_ID`]/[`SECRET`] and [`PASSWORD`].
pub async fn engine() -> (Engine, TempDir) {
    engine_with(Some((KEY_ID, SECRET)), Some(PASSWORD)).await
}

/// [`engine`] with other bootstrap credentials.
pub async fn engine_with(key: Option<(&str, &str)>, password: Option<&str>) -> (Engine, TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let e = engine_in(dir.path(), 0.0, key, password).await;
    (e, dir)
}

/// Creates `account` and an access key of its root: the key's ID and secret.
pub async fn account_with_key(engine: &Engine, account: NewAccount) -> (String, String) {
    let name = account.name.clone();
    engine
        .create_account(account)
        .await
        .expect("create the account");
    let (key, secret) = engine
        .create_access_key_for(Some(&name), None)
        .await
        .expect("create the root's key");
    (key.id, secret)
}

/// [`account_with_key`] for an account with nothing but its name.
pub async fn account(engine: &Engine, name: &str) -> (String, String) {
    let account = NewAccount {
        name: name.into(),
        ..Default::default()
    };
    account_with_key(engine, account).await
}

/// `team-b`, a second account with fixed numbers in both clouds (Tencent owner UIN
/// 100000000002, Alibaba account ID 1000000000000002), and its root's key.
pub async fn team_b(engine: &Engine) -> (String, String) {
    let account = NewAccount {
        name: "team-b".into(),
        tencent_owner_uin: Some(100000000002),
        aliyun_account_id: Some("1000000000000002".into()),
        ..Default::default()
    };
    account_with_key(engine, account).await
}

/// The elements of the JSON array `list` (panics on another shape).
pub fn items(list: &serde_json::Value) -> &[serde_json::Value] {
    list.as_array().expect("a JSON array")
}

/// The string `field` of each element of the JSON array `list` (panics on another shape).
pub fn strs<'a>(list: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    let field = |item: &'a serde_json::Value| item[field].as_str().expect("a string field");
    items(list).iter().map(field).collect()
}

/// An audit trail into `engine`'s store, as the server records it (a failure panics).
pub fn audit_trail(engine: &Engine) -> Arc<dyn Auditor> {
    Arc::new(ToEngine(engine.clone()))
}

struct ToEngine(Engine);

#[async_trait::async_trait]
impl Auditor for ToEngine {
    async fn record(&self, e: AuditEvent) {
        self.0.record_audit(e).await.expect("record the event");
    }
}

/// The admin principal the bootstrap creates.
pub fn admin() -> Principal {
    Principal {
        account: "admin".into(),
        user: "admin".into(),
        is_admin: true,
        sub_user: None,
        ..Default::default()
    }
}

/// What a dialect answers a request signed with a key that works, is disabled, is deleted.
pub struct KeyAnswers<T> {
    pub ok: T,
    pub disabled: T,
    pub deleted: T,
}

/// The access-key life every signing dialect honours, one scenario for all: `call(id, secret)`
/// is one request signed with that key through the dialect's API over `engine`, whose
/// bootstrap key is `boot`. A key created through the admin API works at once; a disabled key
/// is refused until it is enabled again; a deleted key is refused, whether it was enabled or
/// disabled.
pub async fn key_lifecycle<T: PartialEq + Debug>(
    engine: &Engine,
    boot: (&str, &str),
    call: impl AsyncFn(&str, &str) -> T,
    want: KeyAnswers<T>,
) {
    let (boot_id, boot_secret) = boot;
    let (k, secret) = engine.create_access_key().await.expect("a new key");
    assert_eq!(call(&k.id, &secret).await, want.ok, "a new key");
    assert_eq!(
        call(boot_id, boot_secret).await,
        want.ok,
        "the bootstrap key"
    );
    engine
        .set_access_key_enabled(boot_id, false)
        .await
        .expect("disable");
    assert_eq!(call(boot_id, boot_secret).await, want.disabled, "disabled");
    engine
        .set_access_key_enabled(boot_id, true)
        .await
        .expect("enable");
    assert_eq!(call(boot_id, boot_secret).await, want.ok, "enabled again");
    engine.delete_access_key(&k.id).await.expect("delete");
    assert_eq!(call(&k.id, &secret).await, want.deleted, "deleted");
    // A disabled key may be deleted once another is enabled.
    let (other, other_secret) = engine.create_access_key().await.expect("a new key");
    engine
        .set_access_key_enabled(boot_id, false)
        .await
        .expect("disable");
    engine.delete_access_key(boot_id).await.expect("delete");
    assert_eq!(
        call(boot_id, boot_secret).await,
        want.deleted,
        "deleted while disabled"
    );
    assert_eq!(
        call(&other.id, &other_secret).await,
        want.ok,
        "the other key"
    );
}

/// Checks that `registry`'s declarations are valid and that its committed catalogue,
/// `docs/catalogue/<cloud>-<service>.md` (with the service's own `columns`), is what it
/// declares; under `NUBIS_UPDATE_CATALOGUE=1` the file is written instead.
pub fn check_catalogue<H>(registry: &Registry<H>, columns: &[Column<H>]) {
    if let Err(e) = registry.validate() {
        panic!("{}-{}: {e}", registry.cloud, registry.service);
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/catalogue")
        .join(format!("{}-{}.md", registry.cloud, registry.service));
    if let Err(e) = registry.check_catalogue_with(&path, columns) {
        panic!("{}: {e}", path.display());
    }
}

/// [`check_catalogue`] for each of `registries`, each served by `services` under its version.
pub fn check_served<H>(services: &Services<H>, registries: &[&Registry<H>]) {
    for r in registries {
        check_catalogue(r, &[]);
        let name = format!("{}-{}", r.cloud, r.service);
        assert!(services.serves(r.version), "{name} is not served");
    }
}

/// A create of one Linux instance that boots.
pub fn linux_spec() -> CreateSpec {
    CreateSpec {
        name: Some("r".into()),
        ..nubis_core::rules::fixture::spec()
    }
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The stack the small-stack runner gives each handler: any recursion over attacker input
/// overflows it reliably.
pub const SMALL_STACK: usize = 256 * 1024;

/// A runtime (one worker) for [`on_small_stacks`].
pub fn small_stack_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `run(item)` for each item, one after another, each on a fresh thread with a
/// [`SMALL_STACK`] stack (the future is built and polled there), on `rt`.
pub fn on_small_stacks<I, T, F>(
    rt: &tokio::runtime::Runtime,
    items: Vec<I>,
    run: impl Fn(I) -> F + Sync,
) -> Vec<T>
where
    I: Send,
    T: Send,
    F: Future<Output = T>,
{
    let handle = rt.handle();
    let run = &run;
    items
        .into_iter()
        .map(|item| {
            std::thread::scope(|s| {
                std::thread::Builder::new()
                    .stack_size(SMALL_STACK)
                    .spawn_scoped(s, move || handle.block_on(run(item)))
                    .expect("spawn a thread")
                    .join()
                    .expect("the handler must not crash")
            })
        })
        .collect()
}
