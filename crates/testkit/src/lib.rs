//! The in-process harness the nubis crates' tests share: an engine over a SQLite store in a
//! temporary directory with the sim driver (time scale 0), bootstrapped with one admin key and
//! Keystone password; each dialect's API over it (features `tencent`, `aliyun`, `openstack`);
//! signed requests in each dialect's schemes; a runner for handlers on small stacks.
//!
//! Used only as a `[dev-dependencies]` entry. It panics on set-up failures: a test that cannot
//! set up must fail loudly.

use nubis_auth::secret::SecretBox;
use nubis_core::{CreateSpec, Principal};
use nubis_driver::sim::SimDriver;
use nubis_engine::Engine;
use nubis_pipeline::{Authorizer, Denied};
use nubis_store::{SqliteStore, Store};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use tempfile::TempDir;

#[cfg(feature = "aliyun")]
pub mod aliyun;
pub mod limits;
#[cfg(feature = "openstack")]
pub mod openstack;
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

/// The admin principal the bootstrap creates.
pub fn admin() -> Principal {
    Principal {
        account: "admin".into(),
        user: "admin".into(),
        is_admin: true,
    }
}

/// An authorizer that denies everything and records the policy actions it was asked about
/// (clones share the record, so a test keeps one while the API owns another).
#[derive(Clone, Default)]
pub struct DenyAll(Arc<Mutex<Vec<&'static str>>>);

impl DenyAll {
    /// The policy action asked about last, taken off the record.
    pub fn pop(&self) -> Option<&'static str> {
        self.asked().pop()
    }

    /// Whether no policy action is left on the record.
    pub fn is_empty(&self) -> bool {
        self.asked().is_empty()
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Vec<&'static str>> {
        // A test that panicked while holding the lock has failed already; the record stays
        // readable for the assertions that follow.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Authorizer for DenyAll {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        _: Option<&str>,
    ) -> Result<(), Denied> {
        self.asked().push(policy_action);
        Err(Denied {
            principal: principal.user.clone(),
            policy_action,
        })
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
