//! The durable operation engine: the one place where requests from every dialect become
//! operations. Accepting a command writes the operation and takes the instance's lock in one
//! committed transaction; a worker then runs its steps through the driver, recording each.
//!
//! The fleet lives in memory (constant-time lookups by any external ID) and is written through
//! to the store; after a crash, start-up resumes every unfinished operation from its last
//! recorded step.

mod accounts;
pub mod admin;
mod audit;
mod client_tokens;
mod cluster_state;
mod console;
mod create;
mod credentials;
mod deferred;
mod dialect_meta;
pub mod events;
mod flavors;
mod generations;
mod groups;
mod hosts;
mod iam;
mod images;
mod keys;
pub mod keystone;
mod leases;
mod metadefs;
mod names;
mod quotas;
mod record;
mod runner;
mod submit;
mod sync;
mod table;
mod tenancy;
mod update;

pub use accounts::{CredentialError, Generated, KeyInfo, KeyLookup, KeystoneUserInfo};
pub use cluster_state::Cluster;
pub use create::SoldOut;
pub use credentials::{
    AssumeRole, IssuedCredential, Issuer, MfaRefusal, RoleUpdate, SWEEP_GRACE_MS, TempRefusal,
    base32, tencent_serial, unbase32,
};
pub use flavors::{FlavorChange, FlavorError, TypeViewer, built_in_flavor};
pub use groups::{GroupChange, Member, NewGroup};
pub use hosts::{DEFAULT_HOST_TIMEOUT, HostCallError, HostView, REPORT_EVERY};
pub use iam::{
    Dependents, IamError, MAX_ACCESS_KEYS, MAX_ATTACHED, MAX_POLICIES, MAX_USERS, NameRule,
    USER_NAME, Who, policy_name,
};
pub use images::NewImage;
pub use keys::{NewKeyPair, colon_hex, md5_fingerprint};
pub use leases::{DEFAULT_LEASE_TTL, MIN_LEASE_TTL};
pub use names::{DialectNames, KeyNaming};
pub use nubis_core::{Command, CreateSpec};
pub use quotas::{QuotaDefaults, QuotaScope, QuotaView};
pub use submit::{Batch, BatchMode, RebuildGuest};
pub use tenancy::{NewAccount, Numbers};
pub use update::AttrChange;

use nubis_auth::secret::SecretBox;
use nubis_core::select::Selection;
use nubis_core::{
    AccessKey, Account, DomainError, Instance, InstanceState, KeyPair, KmsState, Operation,
    Principal, ResourceKind,
};
use nubis_driver::{Driver, VmSpec};
use nubis_store::{Store, StoreError, Write};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

#[derive(Default)]
pub(crate) struct Fleet {
    /// The instances with their external IDs and listing indexes (`table.rs`): changed only
    /// here, under the fleet's mutex; read by listings without it.
    pub instances: table::Table,
    pub key_pairs: HashMap<String, KeyPair>,
    /// Placement groups by canonical ID (`groups.rs`).
    pub placement_groups: HashMap<String, nubis_core::groups::PlacementGroup>,
    /// The image registry (`images.rs`): built-in and stored images by canonical ID, deleted
    /// ones included (their IDs are never reused).
    pub images: HashMap<String, nubis_core::images::Image>,
    /// Glance/Nova UUID → canonical image ID.
    pub image_uuids: HashMap<Uuid, String>,
    /// Created instance types by Nova flavor ID (`flavors.rs`); the built-in catalogue is not
    /// here.
    pub instance_types: HashMap<String, nubis_core::flavors::Flavor>,
    pub accounts: HashMap<String, Account>,
    /// Access key id → (record, secret in clear; held only in memory).
    pub access_keys: HashMap<String, (AccessKey, String)>,
    /// (account, ClientToken) → the instances that token launched. An entry lives while one of
    /// its instances exists and for at most [`CLIENT_TOKEN_TTL_MS`] (docs/parameter-limits.md):
    /// it is dropped with its last instance, so the map never outgrows the fleet.
    pub client_tokens: HashMap<(String, String), TokenEntry>,
    /// Operations not yet finished.
    pub running: HashMap<Uuid, Operation>,
    /// KMS key registry (operator-managed); a key not in it counts as deleted.
    pub kms_keys: HashMap<String, KmsState>,
    /// SHA-512 crypt hash of the Keystone password of user `admin`.
    pub admin_password_hash: Option<String>,
    /// Records a dialect keeps in the store's meta table (`dialect_meta.rs`), by key without
    /// the namespace.
    pub dialect_meta: std::collections::BTreeMap<String, String>,
    /// Further Keystone users of the admin account: name → (password hash, roles).
    pub keystone_users: HashMap<String, (String, Vec<String>)>,
    /// Per-account quota overrides (account → what the operator set).
    pub quotas: HashMap<String, nubis_core::QuotaOverrides>,
    /// The configured default quotas.
    pub quota_defaults: QuotaDefaults,
    /// Instances of creates being committed: not in the fleet (readers see nothing before its
    /// commit), but counted by quotas and found by their ClientToken, so two racing creates
    /// cannot both take the last slot or both launch for one token.
    pub pending_creates: Vec<Instance>,
    /// Which agent host each instance runs on, for the driver router (`hosts.rs`): kept with
    /// the instances, by `insert_instance` and `remove_instance`.
    pub placements: Arc<nubis_driver::router::Placements>,
}

/// The instance `found` under `id` if `p` may act on it: NotFound when `p` may not see it
/// ([`Engine::visible`] without the policy check: the same answer as for an instance that
/// does not exist), PolicyDenied when a policy naming instances refuses it
/// ([`Principal::may_touch`]). `found` is the fleet's `get` or `get_mut`.
pub(crate) fn visible_or_not_found<I: std::borrow::Borrow<Instance>>(
    found: Option<I>,
    p: &Principal,
    id: Uuid,
) -> Result<I, DomainError> {
    let inst = found
        .filter(|i| Engine::seen(p, i.borrow()))
        .ok_or_else(|| DomainError::NotFound {
            kind: ResourceKind::Instance,
            id: id.to_string(),
        })?;
    p.may_touch(inst.borrow())
        .map_err(DomainError::PolicyDenied)?;
    Ok(inst)
}

/// How long a ClientToken makes RunInstances/CreateInstance idempotent: 24 hours.
pub const CLIENT_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Default)]
pub(crate) struct TokenEntry {
    pub created_at_ms: i64,
    pub ids: Vec<Uuid>,
}

impl Fleet {
    /// The instances a ClientToken launched, if the token is still remembered: younger than
    /// the TTL and with at least one instance that still exists. Otherwise it is forgotten
    /// here and the same token launches anew.
    pub(crate) fn token_instances(
        &mut self,
        account: &str,
        token: &str,
        now_ms: i64,
    ) -> Option<Vec<Instance>> {
        let key = (account.to_string(), token.to_string());
        let entry = self.client_tokens.get(&key)?;
        let live: Vec<Instance> = entry
            .ids
            .iter()
            .filter_map(|id| self.instances.get(id))
            .filter(|i| i.state.is_listed())
            .map(Arc::unwrap_or_clone)
            .collect();
        if live.is_empty() || now_ms.saturating_sub(entry.created_at_ms) >= CLIENT_TOKEN_TTL_MS {
            self.client_tokens.remove(&key);
            return None;
        }
        Some(live)
    }

    pub(crate) fn kms_state(&self, key: &str) -> KmsState {
        self.kms_keys.get(key).copied().unwrap_or(KmsState::Deleted)
    }

    pub(crate) fn insert_instance(&mut self, inst: impl Into<Arc<Instance>>) {
        let inst: Arc<Instance> = inst.into();
        self.placements.set(inst.uuid, inst.host.as_deref());
        // A token older than the TTL (e.g. read back at start-up) is not remembered.
        if let Some(token) = &inst.client_token
            && inst.state.is_listed()
            && now_ms().saturating_sub(inst.created_at_ms) < CLIENT_TOKEN_TTL_MS
        {
            let entry = self
                .client_tokens
                .entry((inst.account.clone(), token.clone()))
                .or_insert_with(|| TokenEntry {
                    created_at_ms: inst.created_at_ms,
                    ids: Vec::new(),
                });
            entry.created_at_ms = entry.created_at_ms.min(inst.created_at_ms);
            entry.ids.push(inst.uuid);
        }
        self.instances.put(inst);
    }

    pub(crate) fn remove_instance(&mut self, id: Uuid) {
        if let Some(inst) = self.instances.remove(&id) {
            self.placements.set(id, None);
            if let Some(token) = &inst.client_token {
                let key = (inst.account.clone(), token.clone());
                if let Some(entry) = self.client_tokens.get_mut(&key) {
                    entry.ids.retain(|u| *u != id);
                    if entry.ids.is_empty() {
                        self.client_tokens.remove(&key);
                    }
                }
            }
        }
    }
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    /// The router over this process's driver and the agent hosts (`hosts.rs`).
    pub driver: Arc<dyn Driver>,
    pub router: Arc<nubis_driver::router::Router>,
    /// The host table as this node last read it.
    pub hosts: hosts::HostCache,
    pub secrets: SecretBox,
    pub fleet: Mutex<Fleet>,
    /// The fleet's instance table (the same as `fleet.instances`), for readers that need no
    /// fleet lock: lookups by ID and listings.
    pub table: table::Table,
    /// Sub-users, policies, attachments. Lock order: `fleet` before `directory`.
    pub directory: parking_lot::RwLock<tenancy::Directory>,
    /// Roles, MFA devices and flags, temporary credentials. Lock order: `creds` before
    /// `fleet` and `directory` (never taken while holding either).
    pub creds: parking_lot::RwLock<credentials::Creds>,
    /// The shortest STS DurationSeconds accepted (config; the clouds' 900 s by default).
    pub sts_min_duration_secs: std::sync::atomic::AtomicU64,
    /// The Keystone directory. Never held while taking `fleet` (so `fleet` may be held
    /// while taking it).
    pub keystone: parking_lot::RwLock<keystone::KsDir>,
    /// Fault injection: behave as if the database were unreachable.
    pub store_down: std::sync::atomic::AtomicBool,
    /// Serializes credential changes (check, commit, apply): two concurrent disables must not
    /// both see the other key enabled, two creates of one user must not both succeed.
    pub credentials: tokio::sync::Mutex<()>,
    /// One gate per instance with work in flight: steps on one instance never overlap (a
    /// delete that supersedes an operation waits for that operation's step in flight).
    pub gates: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// Catching up with other nodes' writes (`sync.rs`).
    pub sync: sync::SyncState,
    /// The operation leases this node holds (`leases.rs`).
    pub leases: leases::Leases,
    /// Where image bytes are kept (`Options::image_dir`).
    pub image_dir: Option<std::path::PathBuf>,
    /// Keystone's `[security_compliance]` (`Options::security`).
    pub security: keystone::SecurityCompliance,
    /// Read events being committed after their replies (`audit.rs`): one permit each.
    pub audit_reads: Arc<tokio::sync::Semaphore>,
    /// Read events waiting for the one flusher to hand them to the writer (`audit.rs`).
    pub(crate) audit_pending: Mutex<audit::Pending>,
}

/// How an engine runs (the operator's flags).
#[derive(Debug, Clone)]
pub struct Options {
    /// How long an operation's lease lasts unrenewed on a shared store: a dead node's
    /// operations are taken over this long after its last renewal.
    pub lease_ttl: std::time::Duration,
    /// How long an agent host may stay silent before it is lost (`hosts.rs`).
    pub host_timeout: std::time::Duration,
    /// Where image bytes are kept (`images.rs`); `None`: images cannot hold data.
    pub image_dir: Option<std::path::PathBuf>,
    /// Nova's `reclaim_instance_interval`: how long a soft-deleted instance is kept before
    /// it is deleted for good. `None`: nothing is soft-deleted, nothing reclaimed.
    pub reclaim_interval: Option<std::time::Duration>,
    /// Keystone's `[security_compliance]`: account lockout and password history.
    pub security: keystone::SecurityCompliance,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lease_ttl: DEFAULT_LEASE_TTL,
            host_timeout: DEFAULT_HOST_TIMEOUT,
            image_dir: None,
            reclaim_interval: None,
            security: keystone::SecurityCompliance::default(),
        }
    }
}

/// Cheap to clone; shared by every dialect.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn store_err(e: StoreError) -> DomainError {
    match e {
        StoreError::Unavailable(m) => DomainError::Unavailable(m),
        StoreError::Corrupt(m) => DomainError::Internal(m),
        // Only tenancy tables carry uniqueness constraints beyond primary keys; their
        // writers commit through `Engine::commit_iam`, which answers a conflict. Instance
        // writers commit through `Engine::commit_fenced`, which re-plans after a stale
        // generation. Elsewhere a clash is a bug.
        StoreError::Conflict(m) => DomainError::Internal(m),
        // Only runners write fences, and they stop on this (`runner.rs`).
        StoreError::Fenced(m) => DomainError::Internal(m),
    }
}

/// A driver's refusal as the dialects see it: a host that does not answer is a service that
/// is unavailable for now; anything else is nubis's fault.
pub(crate) fn driver_err(e: nubis_driver::DriverError) -> DomainError {
    match e {
        nubis_driver::DriverError::Unreachable(host) => {
            DomainError::Unavailable(format!("host {host} does not answer"))
        }
        e => DomainError::Internal(e.to_string()),
    }
}

pub(crate) fn vm_spec(inst: &Instance) -> VmSpec {
    let ty = inst.type_facts();
    VmSpec {
        uuid: inst.uuid,
        os: inst.os,
        image_id: inst.image_id.clone(),
        system_disk: inst.system_disk.id.clone(),
        data_disks: inst
            .data_disks
            .iter()
            .map(|d| (d.id.clone(), d.size_gib))
            .collect(),
        default_user: default_user(inst).to_string(),
        host: inst.host.clone(),
        cpu: ty.map_or(0, |t| t.cpu),
        memory_mib: ty.map_or(0, |t| t.memory_mib),
    }
}

/// The image's administrator account (root, ubuntu, Administrator).
pub fn default_user(inst: &Instance) -> &str {
    nubis_core::rules::default_user(inst)
}

/// Which external ID namespace a lookup uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Tencent,
    Aliyun,
    Uuid,
}

impl IdKind {
    /// `inst`'s ID in this namespace.
    pub fn id_of(self, inst: &Instance) -> String {
        match self {
            Self::Tencent => inst.tencent_id.clone(),
            Self::Aliyun => inst.aliyun_id.clone(),
            Self::Uuid => inst.uuid.to_string(),
        }
    }
}

impl Engine {
    /// [`Engine::start_with`] the default [`Options`].
    pub async fn start(
        store: Arc<dyn Store>,
        driver: Arc<dyn Driver>,
        secrets: SecretBox,
    ) -> Result<Self, DomainError> {
        Self::start_with(store, driver, secrets, Options::default()).await
    }

    /// Load the fleet from the store, re-adopt VMs in the driver, resume unfinished work: all
    /// of it on a store of one process; on a shared store, what no live node holds a lease
    /// on (`leases.rs`).
    pub async fn start_with(
        store: Arc<dyn Store>,
        driver: Arc<dyn Driver>,
        secrets: SecretBox,
        options: Options,
    ) -> Result<Self, DomainError> {
        // Before the snapshot: replaying from here may repeat a change, never miss one.
        let journal_head = store.journal_head().await.map_err(store_err)?;
        let started = std::time::Instant::now();
        let snap = store.load().await.map_err(store_err)?;
        tracing::info!(
            instances = snap.instances.len(),
            guests = snap.guests.len(),
            ms = started.elapsed().as_millis() as u64,
            "start-up: store read"
        );
        let router = Arc::new(nubis_driver::router::Router::new(driver));
        let driver: Arc<dyn Driver> = router.clone();
        let mut fleet = Fleet {
            placements: router.placements(),
            ..Fleet::default()
        };
        for a in snap.accounts {
            fleet.accounts.insert(a.id.clone(), a);
        }
        for k in snap.access_keys {
            let secret = secrets
                .open(&k.sealed_secret)
                .map_err(|e| DomainError::Internal(format!("access key {}: {e}", k.id)))?;
            fleet.access_keys.insert(k.id.clone(), (k, secret));
        }
        sync::apply_meta(&mut fleet, &snap.meta);
        let directory = Engine::load_directory(
            &fleet.accounts,
            snap.sub_users,
            snap.policies,
            snap.attachments,
        )?;
        let creds = credentials::Creds::load(
            snap.roles,
            snap.mfa_devices,
            snap.mfa_flags,
            snap.temp_credentials,
            &secrets,
        )?;
        let keystone_dir = keystone::KsDir::load(&snap.keystone)?;
        for k in snap.key_pairs {
            fleet.key_pairs.insert(k.id.clone(), k);
        }
        for g in snap.placement_groups {
            fleet.placement_groups.insert(g.id.clone(), g);
        }
        for i in nubis_core::images::Image::builtin_all().chain(snap.images) {
            fleet.put_image(i);
        }
        for f in snap.instance_types {
            fleet.instance_types.insert(f.id.clone(), f);
        }
        for q in snap.quotas {
            fleet.quotas.insert(q.account, q.overrides);
        }
        // No lock may outlive its operation.
        let unfinished: std::collections::HashSet<Uuid> =
            snap.unfinished.iter().map(|o| o.id).collect();
        let mut repairs = Vec::new();
        // Creation order, by sorting the order rather than the records: a record is a
        // kilobyte, and a million of them moved twenty times over took seconds.
        let mut order: Vec<(i64, Uuid, usize)> = snap
            .instances
            .iter()
            .enumerate()
            .map(|(k, i)| (i.created_at_ms, i.uuid, k))
            .collect();
        order.sort_unstable();
        // The router sends each guest to its host's driver by the placements: they are set
        // first, so that the guests can be restored while the instances are indexed.
        for i in snap.instances.iter().filter(|i| i.host.is_some()) {
            fleet.placements.set(i.uuid, i.host.as_deref());
        }
        fleet.instances.reserve(order.len());
        let mut records: Vec<Option<Arc<Instance>>> =
            snap.instances.into_iter().map(Some).collect();
        let instances = order
            .into_iter()
            .filter_map(|(_, _, k)| records.get_mut(k).and_then(Option::take));
        // Guests are restored on every other core while this one indexes the instances (the
        // table is one structure), then on this one too. Each guest's record is decoded outside
        // the driver's lock, in this runtime's context (a real guest still running is watched
        // by a task of it).
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let runtime = tokio::runtime::Handle::current();
        let mut guests = snap.guests;
        let parts = parking_lot::Mutex::new(guests.chunks_mut(4096));
        let restore = || {
            let _in_runtime = runtime.enter();
            loop {
                // The lock held for the take only, not for the part's work.
                let Some(part) = parts.lock().next() else {
                    break;
                };
                for (id, data) in part {
                    // Each text freed once read: the decoded guests take its place.
                    let data = std::mem::take(data);
                    if let Err(e) = driver.restore_json(*id, &data) {
                        tracing::warn!(instance = %id, error = %e, "could not restore VM state");
                    }
                }
            }
        };
        std::thread::scope(|s| {
            for _ in 1..threads {
                s.spawn(restore);
            }
            for mut inst in instances {
                if inst
                    .lock
                    .as_ref()
                    .is_some_and(|l| !unfinished.contains(&l.operation_id))
                {
                    tracing::warn!(instance = %inst.tencent_id, "releasing a lock whose operation is gone");
                    let repaired = Arc::make_mut(&mut inst);
                    repaired.lock = None;
                    generations::bump(repaired);
                    repairs.push(Write::Instance(Box::new(repaired.clone())));
                }
                fleet.insert_instance(inst);
            }
            tracing::info!(
                ms = started.elapsed().as_millis() as u64,
                "start-up: instances indexed"
            );
            restore();
        });
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "start-up: guests restored"
        );
        let mut resumed = Vec::new();
        let mut foreign = std::collections::HashSet::new();
        for mut op in snap.unfinished {
            if store.shared() {
                // Run by whichever node holds its lease; the lease tick adopts it here if
                // that lease has expired.
                foreign.insert(op.id);
            } else {
                op.attempts += 1;
                repairs.push(Write::Operation(op.clone()));
                resumed.push(op.id);
            }
            fleet.running.insert(op.id, op);
        }
        store.commit(repairs).await.map_err(store_err)?;
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                driver,
                router,
                hosts: hosts::HostCache::new(options.host_timeout),
                secrets,
                table: fleet.instances.clone(),
                fleet: Mutex::new(fleet),
                directory: parking_lot::RwLock::new(directory),
                creds: parking_lot::RwLock::new(creds),
                sts_min_duration_secs: std::sync::atomic::AtomicU64::new(
                    credentials::DEFAULT_STS_MIN_DURATION_SECS,
                ),
                keystone: parking_lot::RwLock::new(keystone_dir),
                store_down: Default::default(),
                credentials: Default::default(),
                gates: Default::default(),
                sync: sync::SyncState::new(journal_head, foreign),
                leases: leases::Leases::new(options.lease_ttl),
                image_dir: options.image_dir.clone(),
                security: options.security,
                audit_reads: Arc::new(tokio::sync::Semaphore::new(audit::READS_IN_FLIGHT)),
                audit_pending: Default::default(),
            }),
        };
        let known: Vec<Uuid> = engine.inner.table.keys();
        engine.inner.driver.reconcile(&known);
        // Before resuming: an operation on an agent's VM needs its host's address.
        if let Err(e) = engine.refresh_hosts().await {
            tracing::warn!(error = %e, "reading the host table failed");
        }
        if let Some(events) = engine.inner.driver.take_events() {
            engine.spawn_watcher(events);
        }
        if !resumed.is_empty() {
            tracing::info!(count = resumed.len(), "resuming unfinished operations");
        }
        for id in resumed {
            engine.spawn_runner(id);
        }
        engine.spawn_sync_tick();
        engine.spawn_host_tick();
        engine.spawn_lease_tick();
        if let Some(every) = options.reclaim_interval {
            engine.spawn_reclaim_tick(every);
        }
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "start-up: engine ready"
        );
        Ok(engine)
    }

    pub async fn ping(&self) -> Result<(), DomainError> {
        self.check_store()?;
        self.inner.store.ping().await.map_err(store_err)
    }

    fn check_store(&self) -> Result<(), DomainError> {
        if self
            .inner
            .store_down
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(DomainError::Unavailable(
                "the store is unavailable (injected fault)".into(),
            ));
        }
        Ok(())
    }

    /// The bootstrap admin account's principal.
    pub fn admin_principal(&self) -> Option<Principal> {
        let fleet = self.inner.fleet.lock();
        fleet
            .accounts
            .values()
            .find(|a| a.is_admin)
            .map(|a| Principal {
                account: a.id.clone(),
                user: a.name.clone(),
                is_admin: true,
                sub_user: None,
                ..Default::default()
            })
    }

    /// May `p` see and act on this instance? Listed (not terminated), visible to `p`
    /// ([`Principal::sees`], the one ownership check) and not refused by a policy naming it
    /// (listings leave such instances out).
    pub(crate) fn visible(p: &Principal, inst: &Instance) -> bool {
        Self::seen(p, inst) && p.may_touch(inst).is_ok()
    }

    /// Listed and of an account `p` sees: what tenancy alone decides.
    fn seen(p: &Principal, inst: &Instance) -> bool {
        Self::seen_as(p, inst.state, &inst.account, inst.project.as_deref())
    }

    /// [`Engine::seen`] of an instance in this state, account and Keystone project.
    pub(crate) fn seen_as(
        p: &Principal,
        state: InstanceState,
        account: &str,
        project: Option<&str>,
    ) -> bool {
        state.is_listed() && p.sees(account) && p.sees_project(project)
    }

    /// The canonical type names whose facts `wanted` accepts, for a facet clause standing
    /// for a test of each instance's type facts (Alibaba's `InstanceType`); `None` when no
    /// set of names is exactly that test (the caller then tests each candidate).
    pub fn type_names_where(
        &self,
        wanted: impl Fn(&nubis_core::catalog::InstanceType) -> bool,
    ) -> Option<Vec<String>> {
        self.inner.table.read().type_names_where(wanted)
    }

    /// Map external IDs to canonical ones, in order. Unknown or invisible → NotFound.
    pub fn resolve(
        &self,
        p: &Principal,
        kind: IdKind,
        ids: &[String],
    ) -> Result<Vec<Uuid>, DomainError> {
        let table = self.inner.table.read();
        ids.iter()
            .map(|id| {
                let uuid = match kind {
                    IdKind::Tencent => table.by_tencent(id),
                    IdKind::Aliyun => table.by_aliyun(id),
                    IdKind::Uuid => Uuid::parse_str(id).ok(),
                };
                let uuid =
                    uuid.filter(|u| table.seen(p, u))
                        .ok_or_else(|| DomainError::NotFound {
                            kind: ResourceKind::Instance,
                            id: id.clone(),
                        })?;
                // A named instance the policies refuse is refused, not hidden. (Built only
                // for a policy to look at: tenancy is read from the record.)
                if p.guard.is_some()
                    && let Some(inst) = table.get(&uuid)
                {
                    p.may_touch(&inst).map_err(DomainError::PolicyDenied)?;
                }
                Ok(uuid)
            })
            .collect()
    }

    /// Seals `text` with the server's secrets key (every node of a cluster holds the same):
    /// what only this server may read back, such as the web console's session cookie.
    pub fn seal(&self, text: &str) -> String {
        self.inner.secrets.seal(text)
    }

    /// Opens what [`Engine::seal`] sealed; `None` for anything else (tampered, another key).
    pub fn unseal(&self, sealed: &str) -> Option<String> {
        self.inner.secrets.open(sealed).ok()
    }

    pub fn instance(&self, id: Uuid) -> Option<Instance> {
        self.inner.table.get(&id).map(Arc::unwrap_or_clone)
    }

    /// Page through the caller's instances, newest first, without copying non-matching ones:
    /// each one checked by `filter` (a scan of the caller's instances; [`Engine::select`]
    /// answers from the indexes).
    pub fn query(
        &self,
        p: &Principal,
        filter: impl Fn(&Instance) -> bool,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Instance>) {
        self.select(p, &Selection::default(), Some(&filter), offset, limit)
    }

    /// A page of the caller's instances that meet `sel` (answered from the indexes) and `rest`
    /// (what the indexes do not hold, checked on each candidate), newest first, with how many
    /// there are in all. Takes no fleet lock: a listing never waits for another or for a
    /// writer's work, only for the few index updates of one record.
    pub fn select(
        &self,
        p: &Principal,
        sel: &Selection,
        rest: Option<&dyn Fn(&Instance) -> bool>,
        offset: usize,
        limit: usize,
    ) -> (usize, Vec<Instance>) {
        let (total, page) = self.inner.table.read().select(p, sel, rest, offset, limit);
        (total, page.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    /// Up to `limit` of the caller's instances that meet `sel` and `rest`, newest first, after
    /// the instance `after` (a listing's marker; `None` when it is not one of them). The walk
    /// stops at the page's end: no total is counted.
    pub fn select_after(
        &self,
        p: &Principal,
        sel: &Selection,
        rest: Option<&dyn Fn(&Instance) -> bool>,
        after: Option<Uuid>,
        limit: usize,
    ) -> Option<Vec<Instance>> {
        let page = self
            .inner
            .table
            .read()
            .select_after(p, sel, rest, after, limit)?;
        Some(page.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    /// The instances with these IDs as the fleet holds them, else (released ones) as the store
    /// last recorded them: one store read for all that are gone; unknown IDs are absent.
    pub(crate) async fn instances_live_or_stored(
        &self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Arc<Instance>>, DomainError> {
        let mut found: HashMap<Uuid, Arc<Instance>> = {
            let table = self.inner.table.read();
            ids.iter()
                .filter_map(|id| table.get(id).map(|i| (*id, i)))
                .collect()
        };
        let missing: Vec<Uuid> = ids
            .iter()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            let stored = self
                .inner
                .store
                .instances(&missing)
                .await
                .map_err(store_err)?;
            found.extend(stored.into_iter().map(|i| (i.uuid, Arc::new(i))));
        }
        Ok(found)
    }

    /// Instances by canonical ID in the given order, skipping unknown ones.
    pub fn instances_by_id(&self, p: &Principal, ids: &[Uuid]) -> Vec<Instance> {
        let table = self.inner.table.read();
        ids.iter()
            .filter_map(|id| table.get(id))
            .filter(|i| Self::visible(p, i))
            .map(Arc::unwrap_or_clone)
            .collect()
    }

    pub(crate) async fn commit(&self, writes: Vec<Write>) -> Result<(), DomainError> {
        self.check_store()?;
        self.inner.store.commit(writes).await.map_err(store_err)
    }

    /// Commit one key of the store's meta table.
    pub(crate) async fn commit_meta(&self, key: String, value: String) -> Result<(), DomainError> {
        self.commit(vec![Write::Meta { key, value }]).await
    }

    pub(crate) fn guest_write(&self, id: Uuid) -> Option<Write> {
        self.inner
            .driver
            .snapshot(id)
            .map(|data| Write::Guest { instance: id, data })
    }

    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.driver
    }

    /// Count of operations not yet finished (for metrics and tests).
    pub fn running_operations(&self) -> usize {
        self.inner.fleet.lock().running.len()
    }

    /// Instances by state, for metrics.
    pub fn state_counts(&self) -> HashMap<InstanceState, usize> {
        let table = self.inner.table.read();
        let mut m = HashMap::new();
        for state in table.states() {
            *m.entry(state).or_insert(0) += 1;
        }
        m
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;

    fn inst(n: u8, token: &str, created_at_ms: i64) -> Instance {
        Instance {
            uuid: Uuid::from_bytes([n; 16]),
            tencent_id: format!("ins-{n:08}"),
            aliyun_id: format!("i-{n:020}"),
            created_at_ms,
            client_token: Some(token.into()),
            ..nubis_core::rules::fixture::inst(InstanceState::Running)
        }
    }

    #[test]
    fn a_token_is_remembered_while_an_instance_lives_and_within_the_ttl() {
        let now = now_ms();
        let mut f = Fleet::default();
        f.insert_instance(inst(1, "t", now));
        f.insert_instance(inst(2, "t", now));
        assert_eq!(f.token_instances("a", "t", now).map(|v| v.len()), Some(2));
        assert!(
            f.token_instances("b", "t", now).is_none(),
            "tokens are per account"
        );
        f.remove_instance(Uuid::from_bytes([1; 16]));
        assert_eq!(f.token_instances("a", "t", now).map(|v| v.len()), Some(1));
        // Past the TTL the token is forgotten (and dropped from the map).
        assert!(
            f.token_instances("a", "t", now + CLIENT_TOKEN_TTL_MS)
                .is_none()
        );
        assert!(f.client_tokens.is_empty());
    }

    #[test]
    fn the_map_never_outgrows_the_fleet() {
        let now = now_ms();
        let mut f = Fleet::default();
        for n in 0..50u8 {
            f.insert_instance(inst(n, &format!("t{n}"), now));
        }
        assert_eq!(f.client_tokens.len(), 50);
        for n in 0..50u8 {
            f.remove_instance(Uuid::from_bytes([n; 16]));
        }
        assert!(f.client_tokens.is_empty());
    }

    #[test]
    fn an_old_or_terminated_instance_does_not_index_its_token() {
        let now = now_ms();
        let mut f = Fleet::default();
        f.insert_instance(inst(1, "old", now - CLIENT_TOKEN_TTL_MS - 1));
        let mut gone = inst(2, "gone", now);
        gone.state = InstanceState::Terminated;
        f.insert_instance(gone);
        assert!(f.client_tokens.is_empty());
        assert!(f.token_instances("a", "old", now).is_none());
        assert!(f.token_instances("a", "gone", now).is_none());
    }
}
