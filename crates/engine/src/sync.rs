//! Catch-up: several API nodes on one PostgreSQL database serve one fleet
//! (docs/postgres.md, "Several nodes, one fleet").
//!
//! Each node caches the fleet in memory and writes through. Every batch committed on a shared
//! store adds journal rows naming the records it wrote, numbered in commit order; a node
//! replays the rows past its cursor before it answers a request: the instances, operations
//! and key pairs named are read again by ID, and an identity change reloads the identity
//! state from one snapshot. Its own rows it skips: write-through put them in its memory
//! first. No notification is needed for correctness: the journal is read on every request.
//!
//! Single flight: one catch-up runs at a time; a request waits for one that *started* after
//! it arrived (so it sees every commit that finished before it arrived: read-your-writes
//! across nodes), and every request waiting together shares the next one. A tick keeps idle
//! nodes warm and prunes the journal.

use crate::accounts::ADMIN_ACCOUNT;
use crate::{Engine, Fleet, credentials, dialect_meta, keystone, store_err};
use nubis_core::groups::PlacementGroup;
use nubis_core::{DomainError, Instance, InstanceState, KeyPair, OpState, Operation};
use nubis_store::{ChangeBatch, Record, Snapshot};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Journal rows read per round trip.
const PAGE: usize = 512;
/// How often an idle node catches up.
const TICK: Duration = Duration::from_secs(1);
/// How long the journal keeps a row: a node that has not caught up for longer reloads
/// everything.
pub const RETENTION: Duration = Duration::from_secs(600);
/// How often a node sweeps rows past the retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// A node's place in the journal.
#[derive(Debug, Default)]
struct Cursor {
    seq: u64,
    /// Journal seqs of this node's own identity changes that the last identity reload may
    /// have overwritten in memory with an older snapshot: they committed while it read (see
    /// [`Engine::reload_identity`]). An own identity change in this range reloads again.
    risk: Option<(u64, u64)>,
}

/// The catch-up state of one engine.
#[derive(Debug)]
pub(crate) struct SyncState {
    /// Held by the one catch-up running.
    cursor: tokio::sync::Mutex<Cursor>,
    /// Catch-ups begun, and the number of the last one that finished.
    started: AtomicU64,
    done: AtomicU64,
    /// Operations of other nodes in `fleet.running` (shown, not run here). Lock order: after
    /// `fleet`.
    foreign: parking_lot::Mutex<HashSet<Uuid>>,
}

impl SyncState {
    /// At `seq`: the journal head read before the start-up snapshot; `foreign`: the
    /// unfinished operations it showed, run by other nodes.
    pub(crate) fn new(seq: u64, foreign: HashSet<Uuid>) -> Self {
        Self {
            cursor: tokio::sync::Mutex::new(Cursor { seq, risk: None }),
            started: AtomicU64::new(0),
            done: AtomicU64::new(0),
            foreign: parking_lot::Mutex::new(foreign),
        }
    }
}

/// The identity state built from a snapshot, ready to swap in.
struct IdentityState {
    accounts: HashMap<String, nubis_core::Account>,
    access_keys: HashMap<String, (nubis_core::AccessKey, String)>,
    quotas: HashMap<String, nubis_core::QuotaOverrides>,
    meta: Vec<(String, String)>,
    directory: crate::tenancy::Directory,
    creds: credentials::Creds,
    keystone: keystone::KsDir,
}

/// The fleet's view of the store's meta table (also read at start-up).
pub(crate) fn apply_meta(fleet: &mut Fleet, meta: &[(String, String)]) {
    fleet.admin_password_hash = None;
    fleet.dialect_meta.clear();
    fleet.keystone_users.clear();
    fleet.kms_keys.clear();
    for (key, value) in meta {
        if key == "admin_password_hash" {
            fleet.admin_password_hash = Some(value.clone());
        }
        if let Some(k) = key.strip_prefix(dialect_meta::NAMESPACE) {
            fleet.dialect_meta.insert(k.to_string(), value.clone());
        }
        if let Some(name) = key.strip_prefix("keystone_user:")
            && let Ok(user) = serde_json::from_str::<(String, Vec<String>)>(value)
        {
            fleet.keystone_users.insert(name.to_string(), user);
        }
        if let Some(id) = key.strip_prefix("kms:")
            && let Ok(state) = serde_json::from_value(serde_json::Value::String(value.clone()))
        {
            fleet.kms_keys.insert(id.to_string(), state);
        }
    }
}

/// What one page of the journal asks this node to do.
#[derive(Default)]
struct Work {
    instances: Vec<Uuid>,
    operations: Vec<Uuid>,
    key_pairs: Vec<String>,
    placement_groups: Vec<String>,
    images: Vec<String>,
    instance_types: Vec<String>,
    identity: bool,
    everything: bool,
}

impl Work {
    fn of(batch: &ChangeBatch, risk: Option<(u64, u64)>) -> Self {
        let mut w = Work {
            everything: batch.reset,
            ..Work::default()
        };
        let (mut inst, mut ops, mut keys) = (HashSet::new(), HashSet::new(), HashSet::new());
        let (mut groups, mut images, mut types) = (HashSet::new(), HashSet::new(), HashSet::new());
        for c in &batch.changes {
            match &c.record {
                Record::Identity(_) => {
                    let at_risk = risk.is_some_and(|(lo, hi)| c.seq > lo && c.seq <= hi);
                    w.identity |= !c.own || at_risk;
                }
                Record::Unknown(_) => w.everything = true,
                // This node's own writes are in its memory already (write-through).
                _ if c.own => {}
                Record::Instance(id) => {
                    if inst.insert(*id) {
                        w.instances.push(*id);
                    }
                }
                Record::Operation(id) => {
                    if ops.insert(*id) {
                        w.operations.push(*id);
                    }
                }
                Record::KeyPair(id) => {
                    if keys.insert(id.clone()) {
                        w.key_pairs.push(id.clone());
                    }
                }
                Record::PlacementGroup(id) => {
                    if groups.insert(id.clone()) {
                        w.placement_groups.push(id.clone());
                    }
                }
                Record::Image(id) => {
                    if images.insert(id.clone()) {
                        w.images.push(id.clone());
                    }
                }
                Record::InstanceType(id) => {
                    if types.insert(id.clone()) {
                        w.instance_types.push(id.clone());
                    }
                }
            }
        }
        w
    }
}

impl Engine {
    /// Bring this node's cache up to every change committed before the call (by any node).
    /// Free on a store no other process writes (SQLite). Concurrent callers share catch-ups.
    pub async fn sync(&self) -> Result<(), DomainError> {
        if !self.inner.store.shared() {
            return Ok(());
        }
        self.check_store()?;
        let s = &self.inner.sync;
        let arrived = s.started.load(Ordering::SeqCst);
        let mut cursor = s.cursor.lock().await;
        // A catch-up numbered above `arrived` began after this call did.
        if s.done.load(Ordering::SeqCst) > arrived {
            return Ok(());
        }
        let n = s.started.fetch_add(1, Ordering::SeqCst) + 1;
        self.catch_up_journal(&mut cursor).await?;
        s.done.store(n, Ordering::SeqCst);
        Ok(())
    }

    /// The background catch-up and journal sweep of a shared store (a no-op otherwise). The
    /// task ends with the engine.
    pub(crate) fn spawn_sync_tick(&self) {
        if !self.inner.store.shared() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut last_prune: Option<Instant> = None;
            loop {
                tokio::time::sleep(TICK).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let engine = Engine { inner };
                if let Err(e) = engine.sync().await {
                    tracing::warn!(error = %e, "catching up with the change journal failed");
                }
                if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(Instant::now());
                    let older = i64::try_from(RETENTION.as_millis()).unwrap_or(i64::MAX);
                    if let Err(e) = engine.inner.store.prune_changes(older).await {
                        tracing::warn!(error = %e, "pruning the change journal failed");
                    }
                }
            }
        });
    }

    async fn catch_up_journal(&self, cursor: &mut Cursor) -> Result<(), DomainError> {
        loop {
            let batch = self
                .inner
                .store
                .changes_since(cursor.seq, PAGE)
                .await
                .map_err(store_err)?;
            let work = Work::of(&batch, cursor.risk);
            if work.everything {
                tracing::info!(
                    from = cursor.seq,
                    "the change journal no longer covers this node's cache; reloading everything"
                );
                return self.reload_all(cursor).await;
            }
            self.apply_records(&work).await?;
            if work.identity {
                self.reload_identity(cursor).await?;
            }
            let full = batch.changes.len() >= PAGE;
            cursor.seq = cursor.seq.max(batch.cursor);
            if cursor.risk.is_some_and(|(_, hi)| cursor.seq >= hi) {
                cursor.risk = None;
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Read the named instances, operations and key pairs again and put them in the cache.
    async fn apply_records(&self, work: &Work) -> Result<(), DomainError> {
        let store = &self.inner.store;
        let instances = match work.instances.is_empty() {
            true => Vec::new(),
            false => store.instances(&work.instances).await.map_err(store_err)?,
        };
        let operations = match work.operations.is_empty() {
            true => Vec::new(),
            false => store
                .operations(&work.operations)
                .await
                .map_err(store_err)?,
        };
        let key_pairs = match work.key_pairs.is_empty() {
            true => Vec::new(),
            false => store.key_pairs(&work.key_pairs).await.map_err(store_err)?,
        };
        let placement_groups = match work.placement_groups.is_empty() {
            true => Vec::new(),
            false => store
                .placement_groups(&work.placement_groups)
                .await
                .map_err(store_err)?,
        };
        let images = match work.images.is_empty() {
            true => Vec::new(),
            false => store.images(&work.images).await.map_err(store_err)?,
        };
        let instance_types = match work.instance_types.is_empty() {
            true => Vec::new(),
            false => store
                .instance_types(&work.instance_types)
                .await
                .map_err(store_err)?,
        };
        let mut fleet = self.inner.fleet.lock();
        let gone: Vec<Uuid> = work
            .instances
            .iter()
            .filter(|id| !instances.iter().any(|i| i.uuid == **id))
            .copied()
            .collect();
        self.put_instances(&mut fleet, instances);
        for id in gone {
            self.drop_instance(&mut fleet, id);
        }
        self.put_operations(&mut fleet, operations, &work.operations);
        for id in &work.key_pairs {
            fleet.key_pairs.remove(id);
        }
        for k in key_pairs {
            fleet.key_pairs.insert(k.id.clone(), k);
        }
        for id in &work.placement_groups {
            fleet.placement_groups.remove(id);
        }
        for g in placement_groups {
            fleet.placement_groups.insert(g.id.clone(), g);
        }
        // Images are never removed from the store (a deleted one is rewritten as such), and a
        // write that lost its race was refused by its generation: the newest generation wins.
        for i in images {
            fleet.put_image(i);
        }
        for id in &work.instance_types {
            fleet.instance_types.remove(id);
        }
        for f in instance_types {
            fleet.instance_types.insert(f.id.clone(), f);
        }
        Ok(())
    }

    fn drop_instance(&self, fleet: &mut Fleet, id: Uuid) {
        fleet.remove_instance(id);
        self.inner.gates.lock().remove(&id);
    }

    /// Stored instances into the cache: a terminated one leaves it; another replaces the
    /// cached record unless that one is newer (a higher generation: this node's own change,
    /// in memory before its commit).
    fn put_instances(&self, fleet: &mut Fleet, mut stored: Vec<Instance>) {
        // New ones join in creation order (pages are walked by position).
        stored.sort_by_key(|i| (i.created_at_ms, i.uuid));
        for inst in stored {
            if inst.state == InstanceState::Terminated {
                self.drop_instance(fleet, inst.uuid);
                continue;
            }
            match fleet
                .instances
                .get(&inst.uuid)
                .map(|cached| cached.generation)
            {
                // Its external IDs and ClientToken never change: the indexes stay right.
                Some(cached) if inst.generation >= cached => fleet.instances.put(inst),
                Some(_) => {}
                None => fleet.insert_instance(inst),
            }
        }
    }

    /// Other nodes' operations: an unfinished one is shown in `running` (no runner here:
    /// the node that accepted it runs it); a finished one leaves `running` — also one this
    /// node runs, when another node ended it (superseded it): its runner stops at its next
    /// step.
    fn put_operations(&self, fleet: &mut Fleet, stored: Vec<Operation>, asked: &[Uuid]) {
        let mut foreign = self.inner.sync.foreign.lock();
        for id in asked {
            if !stored.iter().any(|o| o.id == *id) && foreign.remove(id) {
                fleet.running.remove(id);
            }
        }
        for op in stored {
            if op.state != OpState::Operating {
                fleet.running.remove(&op.id);
                foreign.remove(&op.id);
                continue;
            }
            let runs_here = fleet.running.contains_key(&op.id) && !foreign.contains(&op.id);
            if !runs_here {
                foreign.insert(op.id);
                fleet.running.insert(op.id, op);
            }
        }
        // Ids of foreign operations this node superseded itself.
        foreign.retain(|id| fleet.running.contains_key(id));
    }

    /// An operation this node runs from now on (taken over): in `running`, not foreign.
    pub(crate) fn run_here(&self, op: Operation) {
        let mut fleet = self.inner.fleet.lock();
        self.inner.sync.foreign.lock().remove(&op.id);
        fleet.running.insert(op.id, op);
    }

    /// An operation this node no longer runs (another took it over): still shown while
    /// unfinished, updated from the journal like any other node's.
    pub(crate) fn mark_foreign(&self, op: Uuid) {
        let fleet = self.inner.fleet.lock();
        if fleet.running.contains_key(&op) {
            self.inner.sync.foreign.lock().insert(op);
        }
    }

    /// Reload the identity state (accounts, keys, quotas, meta, sub-users, policies, roles,
    /// MFA, temporary credentials, the Keystone directory) from one snapshot.
    ///
    /// The snapshot may predate one of this node's own identity commits whose in-memory
    /// apply lands before the swap: that change would be lost from memory, and its journal
    /// row is skipped as this node's own. The heads read around the reload bound such
    /// commits; the next catch-up reloads again if it meets one of them.
    async fn reload_identity(&self, cursor: &mut Cursor) -> Result<(), DomainError> {
        let store = &self.inner.store;
        let lo = store.journal_head().await.map_err(store_err)?;
        let snap = store.load_identity().await.map_err(store_err)?;
        let state = self.identity_state(snap)?;
        self.install_identity(state);
        let hi = store.journal_head().await.map_err(store_err)?;
        cursor.risk = (hi > lo).then_some((lo, hi));
        Ok(())
    }

    /// Reload everything: the journal no longer reaches back to this node's cursor.
    async fn reload_all(&self, cursor: &mut Cursor) -> Result<(), DomainError> {
        let store = &self.inner.store;
        let lo = store.journal_head().await.map_err(store_err)?;
        let mut snap = store.load().await.map_err(store_err)?;
        let instances: Vec<Instance> = std::mem::take(&mut snap.instances)
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect();
        let unfinished = std::mem::take(&mut snap.unfinished);
        let key_pairs: HashMap<String, KeyPair> = std::mem::take(&mut snap.key_pairs)
            .into_iter()
            .map(|k| (k.id.clone(), k))
            .collect();
        let placement_groups: HashMap<String, PlacementGroup> =
            std::mem::take(&mut snap.placement_groups)
                .into_iter()
                .map(|g| (g.id.clone(), g))
                .collect();
        let images = std::mem::take(&mut snap.images);
        let instance_types: HashMap<String, nubis_core::flavors::Flavor> =
            std::mem::take(&mut snap.instance_types)
                .into_iter()
                .map(|f| (f.id.clone(), f))
                .collect();
        let state = self.identity_state(snap)?;
        self.install_identity(state);
        {
            let mut fleet = self.inner.fleet.lock();
            let listed: HashSet<Uuid> = instances.iter().map(|i| i.uuid).collect();
            // Gone from the store: terminated elsewhere. Not those this node is creating
            // (locked by an operation it runs), which may not be committed yet.
            let gone: Vec<Uuid> = {
                let foreign = self.inner.sync.foreign.lock();
                fleet
                    .instances
                    .read()
                    .rows()
                    .filter(|r| !listed.contains(&r.uuid()))
                    .filter(|r| {
                        !r.lock().is_some_and(|l| {
                            fleet.running.contains_key(&l.operation_id)
                                && !foreign.contains(&l.operation_id)
                        })
                    })
                    .map(|r| r.uuid())
                    .collect()
            };
            for id in gone {
                self.drop_instance(&mut fleet, id);
            }
            self.put_instances(&mut fleet, instances);
            fleet.key_pairs = key_pairs;
            fleet.placement_groups = placement_groups;
            for i in images {
                fleet.put_image(i);
            }
            fleet.instance_types = instance_types;
            let ids: Vec<Uuid> = {
                let foreign = self.inner.sync.foreign.lock();
                foreign
                    .iter()
                    .filter(|id| !unfinished.iter().any(|o| o.id == **id))
                    .copied()
                    .collect()
            };
            self.put_operations(&mut fleet, unfinished, &ids);
        }
        let hi = store.journal_head().await.map_err(store_err)?;
        cursor.seq = cursor.seq.max(lo);
        cursor.risk = (hi > lo).then_some((lo, hi));
        Ok(())
    }

    /// Build the identity state of a snapshot (fallible: a stored secret that does not
    /// unseal, a policy that no longer compiles), outside every lock.
    fn identity_state(&self, snap: Snapshot) -> Result<IdentityState, DomainError> {
        let accounts: HashMap<String, nubis_core::Account> = snap
            .accounts
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let mut access_keys = HashMap::with_capacity(snap.access_keys.len());
        for k in snap.access_keys {
            let secret = self
                .inner
                .secrets
                .open(&k.sealed_secret)
                .map_err(|e| DomainError::Internal(format!("access key {}: {e}", k.id)))?;
            access_keys.insert(k.id.clone(), (k, secret));
        }
        let directory =
            Engine::load_directory(&accounts, snap.sub_users, snap.policies, snap.attachments)?;
        let creds = credentials::Creds::load(
            snap.roles,
            snap.mfa_devices,
            snap.mfa_flags,
            snap.temp_credentials,
            &self.inner.secrets,
        )?;
        let keystone = keystone::KsDir::load(&snap.keystone)?;
        Ok(IdentityState {
            accounts,
            access_keys,
            quotas: snap
                .quotas
                .into_iter()
                .map(|q| (q.account, q.overrides))
                .collect(),
            meta: snap.meta,
            directory,
            creds,
            keystone,
        })
    }

    /// Swap the identity state in, one lock at a time in the documented order (`creds`,
    /// then `fleet`, then `directory`; `keystone` alone).
    fn install_identity(&self, s: IdentityState) {
        *self.inner.creds.write() = s.creds;
        {
            let mut fleet = self.inner.fleet.lock();
            if !s.accounts.contains_key(ADMIN_ACCOUNT) && fleet.accounts.contains_key(ADMIN_ACCOUNT)
            {
                tracing::warn!("the stored identity state has no admin account");
            }
            fleet.accounts = s.accounts;
            fleet.access_keys = s.access_keys;
            fleet.quotas = s.quotas;
            apply_meta(&mut fleet, &s.meta);
        }
        *self.inner.directory.write() = s.directory;
        *self.inner.keystone.write() = s.keystone;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_store::{Change, Identity};

    fn change(seq: u64, own: bool, record: Record) -> Change {
        Change { seq, own, record }
    }

    #[test]
    fn own_fleet_changes_are_skipped_and_identity_reloads_when_foreign_or_at_risk() {
        let id = Uuid::from_bytes([1; 16]);
        let batch = ChangeBatch {
            changes: vec![
                change(1, true, Record::Instance(id)),
                change(2, false, Record::Instance(id)),
                change(3, false, Record::Instance(id)),
                change(4, true, Record::Operation(id)),
                change(5, false, Record::KeyPair("k".into())),
                change(6, true, Record::Identity(Identity::Accounts)),
            ],
            cursor: 6,
            reset: false,
        };
        let w = Work::of(&batch, None);
        assert_eq!(w.instances, vec![id], "each record once");
        assert!(w.operations.is_empty(), "own operation skipped");
        assert_eq!(w.key_pairs, vec!["k".to_string()]);
        assert!(
            !w.identity,
            "an own identity change outside the risk window"
        );
        assert!(!w.everything);
        assert!(Work::of(&batch, Some((5, 6))).identity, "inside the window");
        assert!(
            !Work::of(&batch, Some((6, 9))).identity,
            "the window is (lo, hi]"
        );

        let foreign = ChangeBatch {
            changes: vec![change(7, false, Record::Identity(Identity::Keystone))],
            cursor: 7,
            reset: false,
        };
        assert!(Work::of(&foreign, None).identity);
        let unknown = ChangeBatch {
            changes: vec![change(8, true, Record::Unknown("widgets".into()))],
            cursor: 8,
            reset: false,
        };
        assert!(Work::of(&unknown, None).everything);
        let reset = ChangeBatch {
            changes: vec![],
            cursor: 9,
            reset: true,
        };
        assert!(Work::of(&reset, None).everything);
    }
}
