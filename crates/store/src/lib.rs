//! Persistence for nubis. The engine keeps the fleet in memory and writes through this trait;
//! every accepted mutation is committed here before the client gets its RequestId.

mod cluster;
mod hosts;
mod journal;
mod metadefs;
pub mod migrations;
mod postgres;
mod shared;
mod sqlite;

pub use cluster::{ClaimView, ClusterState, NonceSpend};
pub use hosts::{HostDirectory, HostReport};
pub use journal::{Change, ChangeBatch, Identity, Record};
pub use metadefs::MetadefCatalog;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use nubis_core::audit::{AuditEvent, AuditQuery};
use nubis_core::events::SystemEvent;
use nubis_core::flavors::Flavor;
use nubis_core::groups::PlacementGroup;
use nubis_core::images::Image;
use nubis_core::{
    AccessKey, Account, AccountQuota, Attachment, Instance, KeyPair, MfaDeviceRecord, MfaFlags,
    Operation, PolicyRecord, RoleRecord, SubUser, TempCredentialRecord,
};
use thiserror::Error;
use uuid::Uuid;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the write.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A stored document does not decode (a bug or a foreign write).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The batch breaks a uniqueness constraint (another writer to the same database got
    /// there first): nothing of it was committed. The caller answers its conflict code.
    #[error("conflicting write: {0}")]
    Conflict(String),
    /// The batch carried a [`Write::Fence`] this node no longer holds (another node took the
    /// operation over): nothing of it was committed, and the writer must stop.
    #[error("fenced: {0}")]
    Fenced(String),
}

/// One change. A batch of them commits atomically.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new account (insert only: accounts, sub-users and policies are never rewritten, so
    /// a clash with another writer is a [`StoreError::Conflict`]).
    Account(Account),
    /// Forget an account (its ID); its sub-users, policies and attachments go with the same
    /// batch's other writes, not by cascade.
    DeleteAccount(String),
    /// An account's quota overrides (replacing the stored ones).
    Quota(AccountQuota),
    /// Forget an account's quota overrides (its ID): the defaults apply again.
    DeleteQuota(String),
    SubUser(SubUser),
    DeleteSubUser(u64),
    Policy(PolicyRecord),
    DeletePolicy(u64),
    Attach(Attachment),
    Detach(Attachment),
    AccessKey(AccessKey),
    /// Forget an access key (its ID).
    DeleteAccessKey(String),
    /// A whole instance record, written only over its previous generation: the stored row
    /// must have `generation - 1` (or not exist yet), else the batch fails with
    /// [`StoreError::Conflict`] and nothing of it is committed. Instances are never deleted:
    /// a terminated one keeps its row (and generation), so a delayed write from before the
    /// termination is refused like any other stale one.
    Instance(Box<Instance>),
    /// An operation record, unconditional: every write that moves a running operation on
    /// (accepted, a step done, finished, superseded, steps appended) goes in the same batch
    /// as its instance's conditional write, which fences it. (Start-up's count of attempts,
    /// and the end of an operation whose instance is gone from memory, go alone.)
    Operation(Operation),
    KeyPair(KeyPair),
    DeleteKeyPair(String),
    /// A placement group (migration 0013), replacing the stored one.
    PlacementGroup(PlacementGroup),
    /// Forget a placement group (its canonical ID).
    DeletePlacementGroup(String),
    /// A whole image record (migration 0014), conditional like [`Write::Instance`]: it lands
    /// only over generation `generation - 1` (or as a new row), else the batch fails with
    /// [`StoreError::Conflict`]. A deleted image is written with status `deleted`, not removed.
    Image(Box<Image>),
    /// A system event (migration 0019), conditional like [`Write::Image`]: it lands only over
    /// generation `generation - 1` (or as a new row), else [`StoreError::Conflict`].
    SystemEvent(Box<SystemEvent>),
    /// A created instance type (migration 0015), replacing the stored one.
    InstanceType(Flavor),
    /// Forget a created instance type (its Nova flavor ID).
    DeleteInstanceType(String),
    Guest {
        instance: Uuid,
        data: serde_json::Value,
    },
    DeleteGuest(Uuid),
    /// The user data an instance was created with (base64, as given).
    UserData {
        instance: Uuid,
        data: String,
    },
    DeleteUserData(Uuid),
    /// The files an instance is given at its next (re)provisioning (migration 0017),
    /// replacing the stored ones.
    InjectedFiles {
        instance: Uuid,
        files: Vec<nubis_core::InjectedFile>,
    },
    DeleteInjectedFiles(Uuid),
    Meta {
        key: String,
        value: String,
    },
    DeleteMeta(String),
    /// One event of the audit trail (docs/audit.md).
    AuditEvent(Box<AuditEvent>),
    Role(RoleRecord),
    DeleteRole(u64),
    MfaDevice(MfaDeviceRecord),
    /// Forget an MFA device (its `id`).
    DeleteMfaDevice(String),
    MfaFlags(MfaFlags),
    TempCredential(TempCredentialRecord),
    /// Forget temporary credentials that expired before this time (ms).
    SweepTempCredentials(i64),
    /// A Keystone directory object (migration 0006): its kind (`domain`, `project`, `user`,
    /// …), ID, name in its namespace (unique per kind) and JSON document.
    Keystone {
        kind: &'static str,
        id: String,
        name_key: String,
        data: String,
    },
    /// Forget a Keystone directory object (kind, ID).
    DeleteKeystone {
        kind: &'static str,
        id: String,
    },
    /// A new operation's lease, held by this store's node for `ttl_ms` (migration 0011), in
    /// the commit that accepts the operation: no other node takes it over while it is
    /// renewed. Fence 1. Only a shared store keeps leases; SQLite ignores the lease writes.
    Lease {
        operation: Uuid,
        ttl_ms: i64,
    },
    /// A precondition: this node still holds `operation`'s lease with this fence. Otherwise
    /// the batch fails with [`StoreError::Fenced`] and nothing of it is committed.
    Fence {
        operation: Uuid,
        fence: u64,
    },
    /// The operation ended: its lease goes.
    EndLease(Uuid),
    /// The instances a ClientToken's create made, recorded on its claim (migration 0010) in
    /// the create's own commit. A claim taken over since (`claim` no longer the row's) is
    /// left alone.
    ClientToken {
        account: String,
        token: String,
        claim: String,
        instances: Vec<Uuid>,
    },
}

/// Everything the engine needs in memory at start-up.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub accounts: Vec<Account>,
    pub access_keys: Vec<AccessKey>,
    pub sub_users: Vec<SubUser>,
    pub policies: Vec<PolicyRecord>,
    pub attachments: Vec<Attachment>,
    /// Instances that are not terminated.
    /// Shared from the start: the fleet's table keeps each as it was decoded.
    pub instances: Vec<std::sync::Arc<Instance>>,
    /// Operations still OPERATING (left behind by a crash).
    pub unfinished: Vec<Operation>,
    pub key_pairs: Vec<KeyPair>,
    pub placement_groups: Vec<PlacementGroup>,
    /// Images accounts made (deleted ones too: their IDs are never reused).
    pub images: Vec<Image>,
    /// Created instance types (the built-in catalogue is not stored).
    pub instance_types: Vec<Flavor>,
    /// Per-account quota overrides.
    pub quotas: Vec<AccountQuota>,
    /// Each guest's driver record as its stored JSON text (the driver decodes it:
    /// `Driver::restore_json`).
    pub guests: Vec<(Uuid, String)>,
    pub meta: Vec<(String, String)>,
    pub roles: Vec<RoleRecord>,
    pub mfa_devices: Vec<MfaDeviceRecord>,
    pub mfa_flags: Vec<MfaFlags>,
    /// Temporary credentials not yet swept (expired ones included).
    pub temp_credentials: Vec<TempCredentialRecord>,
    /// Keystone directory objects: (kind, JSON document).
    pub keystone: Vec<(String, String)>,
}

/// Which of an account's system events [`Store::system_events`] reads.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub account: String,
    /// One instance's events, or every instance's.
    pub instance: Option<Uuid>,
    /// Only events whose NotBefore is at or after this (ms).
    pub not_before_from: i64,
    /// At most this many.
    pub limit: usize,
}

fn by_id_unsupported() -> StoreError {
    StoreError::Unavailable("this store does not read records by ID".into())
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn load(&self) -> Result<Snapshot, StoreError>;
    /// Commit the writes atomically and durably.
    async fn commit(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Operations on one instance, newest first.
    async fn operations_of_instance(
        &self,
        instance: Uuid,
        limit: usize,
    ) -> Result<Vec<Operation>, StoreError>;
    async fn operations_of_request(&self, request_id: &str) -> Result<Vec<Operation>, StoreError>;
    /// Resize operations with their migration numbers (migration 0018), newest first: on
    /// `instance`, or on every instance; at most `limit`.
    async fn migrations(
        &self,
        instance: Option<Uuid>,
        limit: usize,
    ) -> Result<Vec<(i64, Operation)>, StoreError>;
    /// The system events (migration 0019) `q` asks for, newest published first. Events are
    /// never kept in memory: every read asks the store.
    async fn system_events(&self, q: EventQuery) -> Result<Vec<SystemEvent>, StoreError>;
    /// The stored system events among `ids`.
    async fn system_events_by_id(&self, ids: &[String]) -> Result<Vec<SystemEvent>, StoreError>;
    /// The user data an instance was created with, read on demand (it is not kept in memory).
    async fn user_data(&self, instance: Uuid) -> Result<Option<String>, StoreError>;
    /// The files an instance is to be given when its system disk is next (re)provisioned,
    /// read on demand like the user data (empty: none).
    async fn injected_files(
        &self,
        instance: Uuid,
    ) -> Result<Vec<nubis_core::InjectedFile>, StoreError>;
    /// Audit events matching `q`, in its order: at most `q.limit + 1` (one more than a page,
    /// so the caller knows whether another page follows).
    async fn audit_events(&self, q: AuditQuery) -> Result<Vec<AuditEvent>, StoreError>;
    /// How many audit events match `q` in all (its cursor, limit and order aside): CloudAudit's
    /// `TotalCount`. The default reads them; [`SqliteStore`] and [`PgStore`] count in SQL.
    async fn count_audit_events(&self, q: AuditQuery) -> Result<u64, StoreError> {
        let all = AuditQuery {
            after: None,
            limit: usize::MAX,
            ..q
        };
        Ok(self.audit_events(all).await?.len() as u64)
    }
    /// Deletes up to `max` audit events older than `before_ms`; returns how many it deleted.
    async fn sweep_audit(&self, before_ms: i64, max: usize) -> Result<usize, StoreError>;
    /// The stored records of these instances (terminated ones included; unknown IDs are left
    /// out), as committed: what a writer refused for a stale generation reads back.
    async fn instances(&self, ids: &[Uuid]) -> Result<Vec<Instance>, StoreError>;
    /// The cluster-wide state tables (migration 0010: nonces, rate windows, ClientToken
    /// claims, Keystone tokens), when the backend has them.
    fn cluster(&self) -> Option<&dyn ClusterState> {
        None
    }
    /// The registered agent hosts (migration 0012), when the backend keeps them.
    fn host_directory(&self) -> Option<&dyn HostDirectory> {
        None
    }
    /// Glance's metadata definitions (migration 0016), when the backend keeps them.
    fn metadefs(&self) -> Option<&dyn MetadefCatalog> {
        None
    }

    // The change journal (docs/postgres.md, "Several nodes, one fleet").

    /// Whether other processes may write this database: then the engine replays the change
    /// journal into its cache before each request. False (SQLite, one process): no journal
    /// is kept and catching up costs nothing.
    fn shared(&self) -> bool {
        false
    }
    /// The journal's newest seq (0 without a journal). Read before [`Store::load`], it is a
    /// cursor the snapshot is at least as new as.
    async fn journal_head(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Up to `limit` changes after `cursor`, in commit order, and the cursor past them.
    async fn changes_since(&self, cursor: u64, _limit: usize) -> Result<ChangeBatch, StoreError> {
        Ok(ChangeBatch {
            changes: Vec::new(),
            cursor,
            reset: false,
        })
    }
    /// Forget journal rows older than `older_than_ms` (by the database's clock); returns how
    /// many.
    async fn prune_changes(&self, _older_than_ms: i64) -> Result<usize, StoreError> {
        Ok(0)
    }

    // Operation leases (docs/cluster.md, "Leases and takeover"). A store that is not shared
    // keeps none: one process runs every operation.

    /// Extend the leases this node holds (operation, fence) by `ttl_ms`; returns the
    /// operations another node (or a newer fence) holds now: taken over. A lease that is gone
    /// (its operation ended) is neither.
    async fn renew_leases(
        &self,
        _held: &[(Uuid, u64)],
        _ttl_ms: i64,
    ) -> Result<Vec<Uuid>, StoreError> {
        Ok(Vec::new())
    }
    /// Take over up to `limit` unfinished operations whose lease has expired (or that have
    /// none) for `ttl_ms`; returns them with their new fences, by operation ID. Two nodes
    /// never both get one.
    async fn take_over_leases(
        &self,
        _ttl_ms: i64,
        _limit: usize,
    ) -> Result<Vec<(Uuid, u64)>, StoreError> {
        Ok(Vec::new())
    }
    /// The store's copy of a guest's driver state (what the last commit of a step wrote).
    async fn guest(&self, _id: Uuid) -> Result<Option<serde_json::Value>, StoreError> {
        Err(by_id_unsupported())
    }

    /// Only a [`Store::shared`] store must answer these two reads by ID.
    /// The stored operations among `ids`.
    async fn operations(&self, _ids: &[Uuid]) -> Result<Vec<Operation>, StoreError> {
        Err(by_id_unsupported())
    }
    /// The stored key pairs among `ids`.
    async fn key_pairs(&self, _ids: &[String]) -> Result<Vec<KeyPair>, StoreError> {
        Err(by_id_unsupported())
    }
    /// The stored images among `ids` (canonical IDs), deleted ones included.
    async fn images(&self, _ids: &[String]) -> Result<Vec<Image>, StoreError> {
        Err(by_id_unsupported())
    }

    /// The stored placement groups among `ids`.
    async fn placement_groups(&self, _ids: &[String]) -> Result<Vec<PlacementGroup>, StoreError> {
        Err(by_id_unsupported())
    }
    /// The stored created instance types among `ids`.
    async fn instance_types(&self, _ids: &[String]) -> Result<Vec<Flavor>, StoreError> {
        Err(by_id_unsupported())
    }
    /// The identity part of [`Store::load`] (accounts, keys, directory, credentials, Keystone,
    /// quotas, meta) from one instant; the fleet's fields (instances, operations, key pairs,
    /// placement groups, images, guests) are left empty. The default reads everything.
    async fn load_identity(&self) -> Result<Snapshot, StoreError> {
        let mut s = self.load().await?;
        s.instances.clear();
        s.unfinished.clear();
        s.key_pairs.clear();
        s.placement_groups.clear();
        s.images.clear();
        s.instance_types.clear();
        s.guests.clear();
        Ok(s)
    }
}
