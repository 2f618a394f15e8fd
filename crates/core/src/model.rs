//! Records of the fleet. Dialect-neutral: external IDs for every dialect live side by side.

use crate::op::{Settle, Step};
use crate::state::{Action, InstanceState, OpState, Restriction};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OsFamily {
    Linux,
    Windows,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disk {
    pub id: String,
    pub size_gib: u32,
    pub disk_type: String,
}

/// The instance's lock: held by exactly one unfinished operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpLock {
    pub operation_id: Uuid,
    pub action: Action,
}

/// What LatestOperation* report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestOp {
    pub action: Action,
    pub state: OpState,
    pub request_id: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Canonical ID; also the Nova server UUID.
    pub uuid: Uuid,
    pub tencent_id: String,
    pub aliyun_id: String,
    pub account: String,
    pub region: String,
    pub zone: String,
    pub name: String,
    pub host_name: String,
    pub instance_type: String,
    pub image_id: String,
    pub os: OsFamily,
    pub state: InstanceState,
    pub restriction: Restriction,
    pub lock: Option<OpLock>,
    pub latest_op: Option<LatestOp>,
    pub created_at_ms: i64,
    pub system_disk: Disk,
    pub data_disks: Vec<Disk>,
    pub private_ip: String,
    pub key_ids: Vec<String>,
    pub project_id: i64,
    pub charge_type: String,
    pub security_group_ids: Vec<String>,
    pub tags: Vec<(String, String)>,
    /// Stopped with StoppedMode=STOP_CHARGING.
    pub stop_charging: bool,
    pub reinstall_failed: bool,
    pub application_role: Option<String>,
    /// ClientToken of the create request, for idempotent retries.
    pub client_token: Option<String>,
    /// Fault injection: a disk is in an error state.
    #[serde(default)]
    pub disk_error: bool,
    /// KMS key encrypting the disks, if any.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Locked by its owner (Nova lock): no action until unlocked; the reason, if given.
    #[serde(default)]
    pub locked: Option<String>,
    /// Host address of the guest's SSH server ("127.0.0.1:40022"), when the driver forwards
    /// one (qemu); shown as the `nubis:ssh` tag / metadata item.
    #[serde(default)]
    pub ssh_endpoint: Option<String>,
    /// What the user set and reads back, with no effect on the lifecycle.
    #[serde(default)]
    pub attrs: UserAttrs,
    /// Last change of the record (ms since the epoch; 0 in records from before it was kept:
    /// read as the creation time). Nova's `updated` and `changes-since`.
    #[serde(default)]
    pub updated_at_ms: i64,
    #[serde(default)]
    pub generation: u64,
    /// Public bandwidth cap in Mbit/s given at create (Alibaba InternetMaxBandwidthOut).
    #[serde(default)]
    pub internet_max_bandwidth_out: u32,
    /// The Keystone project (ID) of an instance created through Nova with a project-scoped
    /// token; `None`: the account's default project (instances of the other dialects).
    #[serde(default)]
    pub project: Option<String>,
    /// The Keystone user that created it through Nova (Nova's `user_id`; per-user quotas
    /// count it). `None`: made by another dialect or before nubis recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The agent host it runs on (`hosts::HostRecord::id`); `None`: the embedded driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The instance type before a resize that awaits confirmation (Nova VERIFY_RESIZE):
    /// what revertResize goes back to. `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_from: Option<String>,
    /// The facts of its type (`instance_type`), kept since docs/flavors.md: a created type
    /// may be deleted while instances of it live on. `None` in older records: the built-in
    /// catalogue's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<crate::catalog::InstanceType>,
    /// The facts of `resize_from`, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_from_flavor: Option<crate::catalog::InstanceType>,
    /// The placement group it was created into (`groups::PlacementGroup::id`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_group: Option<String>,
    /// Its image's OS name and administrator account, kept from the image it was created or
    /// reinstalled from (the image may be deleted since). Empty in records from before the
    /// image registry: read from the built-in catalogue ([`Instance::os_name`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_os_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_user: String,
    /// When it was soft-deleted (ms since the epoch), while it is SoftDeleted: the reclaim
    /// deletes it `reclaim_instance_interval` later (docs/deferred-delete.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_deleted_at_ms: Option<i64>,
    /// The image its shelve made (Nova's `<name>-shelved`), deleted when it is unshelved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shelved_image: Option<String>,
}

impl Instance {
    /// The facts of its type: the ones it keeps, else the built-in catalogue's (`None`: a
    /// type neither knows, never accepted at create).
    pub fn type_facts(&self) -> Option<&crate::catalog::InstanceType> {
        crate::catalog::facts_of(self.flavor.as_ref(), &self.instance_type)
    }

    /// The facts of the type a resize awaiting confirmation goes back to.
    pub fn resize_from_facts(&self) -> Option<&crate::catalog::InstanceType> {
        let name = self.resize_from.as_deref()?;
        self.resize_from_flavor
            .as_ref()
            .filter(|t| t.name == name)
            .or_else(|| crate::catalog::instance_type(name))
    }

    /// When the record last changed.
    pub fn updated_ms(&self) -> i64 {
        self.updated_at_ms.max(self.created_at_ms)
    }

    /// Its image's OS name (Tencent OsName, Alibaba OSName).
    pub fn os_name(&self) -> &str {
        match self.image_os_name.as_str() {
            "" => crate::catalog::image(&self.image_id).map_or("", |i| i.os_name),
            name => name,
        }
    }

    /// Its image's administrator account (root, ubuntu, Administrator).
    pub fn os_user(&self) -> &str {
        match self.image_user.as_str() {
            "" => crate::catalog::image(&self.image_id).map_or("root", |i| i.default_user),
            user => user,
        }
    }
}

/// Attributes a user sets and reads back (Nova accessIPv4/accessIPv6), kept in canonical
/// form. User data is not here: it is stored beside the instance (`Store::user_data`) and read
/// only when asked for, so the fleet in memory stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAttrs {
    #[serde(default)]
    pub access_ipv4: Option<String>,
    #[serde(default)]
    pub access_ipv6: Option<String>,
    /// Nova's `OS-DCF:diskConfig` AUTO (true) or MANUAL (false, the default): whether the
    /// root partition is grown to the disk. Recorded and shown; guests' images grow their own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_disk_config: bool,
    /// Nova's scheduler hints as the create request gave them (a JSON object's text, at most
    /// [`MAX_SCHEDULER_HINTS`] bytes), shown from 2.100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_hints: Option<String>,
}

/// The longest scheduler hints (their JSON text) a server keeps.
pub const MAX_SCHEDULER_HINTS: usize = 4096;

/// The tag (Tencent, Alibaba) and metadata item (Nova) that shows a guest's SSH forward.
pub const SSH_TAG: &str = "nubis:ssh";

impl Instance {
    /// Tags as the APIs show them: the user's, then [`SSH_TAG`] when the driver forwards SSH.
    pub fn shown_tags(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(self.ssh_endpoint.as_deref().map(|e| (SSH_TAG, e)))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    pub id: Uuid,
    pub request_id: String,
    pub account: String,
    pub instance: Uuid,
    pub action: Action,
    pub steps: Vec<Step>,
    /// Steps finished and recorded; a resumed operation continues from here.
    pub steps_done: u32,
    /// State shown for the whole operation (e.g. entering rescue), if any.
    pub display: Option<InstanceState>,
    /// The state the instance was in when the operation was accepted.
    pub from_state: InstanceState,
    pub state: OpState,
    /// Times a worker began executing this operation.
    pub attempts: u32,
    pub error: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// How the instance settles when the operation ends, as planned (None in records from
    /// before plans carried it: see [`Operation::settlement`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settle: Option<Settle>,
    /// Who asked for it, when a Keystone token did: the user ID and the project (Nova's
    /// instance actions name them; `None`: the account's, as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

impl Operation {
    /// How the instance settles when the operation ends.
    pub fn settlement(&self) -> Settle {
        self.settle
            .unwrap_or_else(|| Settle::for_action(self.action))
    }

    /// The state shown while the next step runs, for an instance now in `current`; None
    /// when every step is done.
    pub fn shows_next(&self, current: InstanceState) -> Option<InstanceState> {
        let step = self.steps.get(self.steps_done as usize)?;
        Some(self.display.unwrap_or_else(|| step.showing(current)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPair {
    pub id: String,
    #[serde(default)]
    pub key_type: KeyType,
    pub account: String,
    pub name: String,
    pub project_id: i64,
    pub description: String,
    pub public_key: String,
    pub created_at_ms: i64,
    /// The Keystone user that made it through Nova: Nova key pairs belong to their user, so
    /// other Keystone users of the account do not see it. `None`: made through another
    /// dialect or the admin API, shared by the whole account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// OpenSSH key pairs are what guests take; X.509 ones exist for Nova's `"type": "x509"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    #[default]
    Ssh,
    X509,
}

/// A tenant. The bootstrap admin account has no cloud account numbers (0 / empty): it is
/// never refused by a policy, so no denial names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub is_admin: bool,
    /// Tencent owner UIN (`uin/<n>` in `qcs` resource names); unique among accounts.
    #[serde(default)]
    pub tencent_owner_uin: u64,
    /// Tencent AppId; unique among accounts.
    #[serde(default)]
    pub tencent_app_id: u64,
    /// Alibaba account ID (decimal digits; the 4th field of `acs` resource names); unique.
    #[serde(default)]
    pub aliyun_account_id: String,
    /// Creation time (ms since the epoch; 0 for the bootstrap account stored before it was
    /// recorded).
    #[serde(default)]
    pub created_at_ms: i64,
}

/// A sub-user of an account (Tencent CAM sub-account, Alibaba RAM user). Its numeric ID is
/// the Tencent sub-account UIN and (as a decimal string) the Alibaba UserId.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubUser {
    pub id: u64,
    pub account: String,
    /// Unique within the account; a name valid for both CAM and RAM (1–64 of
    /// `A-Za-z0-9 . @ _ -`).
    pub name: String,
    pub created_at_ms: i64,
}

/// The grammar of a stored policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyGrammar {
    /// Tencent CAM (`{"version":"2.0","statement":[…]}`).
    Cam,
    /// Alibaba RAM (`{"Version":"1","Statement":[…]}`).
    Ram,
}

impl PolicyGrammar {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cam => "cam",
            Self::Ram => "ram",
        }
    }
}

/// A policy of an account: the document as given (compiled on write and on load, never
/// stored compiled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub id: u64,
    pub account: String,
    /// Unique within the account.
    pub name: String,
    pub grammar: PolicyGrammar,
    pub document: String,
    /// As CAM's and RAM's CreatePolicy take it (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub created_at_ms: i64,
}

/// A policy attached to a sub-user (both of the same account).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attachment {
    pub user: u64,
    pub policy: u64,
}

/// An API credential. The secret is sealed at rest (see nubis-auth `secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub account: String,
    pub sealed_secret: String,
    /// A disabled key is refused by every dialect (and may be enabled again).
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// Where the key came from. Keys stored before origins were recorded were all made by
    /// the bootstrap (the admin API could not create keys then).
    #[serde(default)]
    pub origin: KeyOrigin,
    /// Creation time (ms since the epoch; 0 for keys stored before it was recorded).
    #[serde(default)]
    pub created_at_ms: i64,
    /// The sub-user the key belongs to; `None`: the account itself (its root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<u64>,
}

fn enabled_default() -> bool {
    true
}

/// Who made an access key: the bootstrap (given by `NUBIS_ADMIN_ACCESS_KEY_*` or generated at
/// first start; replaced when the environment names another key) or the admin API (kept
/// until deleted there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOrigin {
    #[default]
    Bootstrap,
    AdminApi,
}

/// Who is asking: resolved from a credential before any resource is touched. Built with
/// `..Default::default()` for the fields a caller does not set, so that a field added for a
/// new kind of credential does not touch every construction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Principal {
    pub account: String,
    /// A display name: the account's name for its root, the sub-user's name otherwise.
    pub user: String,
    pub is_admin: bool,
    /// The sub-user calling (its ID); `None`: the account root (or the bootstrap admin).
    /// Policies decide what a sub-user may do ([`Principal::sees`] still decides tenancy).
    pub sub_user: Option<u64>,
    /// The ID of the credential the request was signed with (an access key ID), for the
    /// audit trail; empty for Keystone tokens and for the server's own calls.
    pub credential: String,
    /// Policies that name particular instances, checked on each instance the action
    /// touches (set by the pipeline's authorization for a sub-user whose policies have
    /// such statements; `None`: the action-level decision covers every resource).
    pub guard: Option<ResourceGuard>,
    /// Set when the request was signed with a temporary credential (STS): its expiry, its
    /// MFA authentication time and, for an assumed role, the role session.
    pub session: Option<Box<Session>>,
    /// A Keystone project-scoped caller's project: it sees only that project's instances
    /// (unless an admin). `None`: every instance of the account (the other dialects).
    pub project: Option<ProjectScope>,
    /// The address the request came from (the TCP peer), for policy conditions on it
    /// (`qcs:ip`, `acs:SourceIp`); `None` for the server's own calls.
    pub source_ip: Option<std::net::IpAddr>,
    /// A Keystone token's user ID (what Nova's instance actions name as `user_id`).
    pub keystone_user: Option<String>,
}

/// What a temporary credential (STS) adds to its principal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Expiry (ms since the epoch).
    pub expires_at_ms: i64,
    /// When the MFA authentication the credential was issued after happened (ms), if any.
    pub mfa_at_ms: Option<i64>,
    /// The assumed role (its numeric ID) and the session name; `None`: the caller's own
    /// session (Tencent GetSessionToken).
    pub role: Option<RoleSession>,
}

/// An assumed role's session: policies come from the role (narrowed by the session policy).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSession {
    pub role_id: u64,
    pub role_name: String,
    pub session_name: String,
    /// The session policy given to AssumeRole (same grammar as the role's cloud), if any:
    /// the session may do only what both the role and this policy allow.
    pub policy: Option<String>,
}

/// The Keystone project a caller acts in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectScope {
    pub id: String,
    /// The project is its account's default project, which also holds the instances that
    /// carry no project (those the other dialects created).
    pub is_default: bool,
}

impl Principal {
    /// May this principal see (and act on) a resource of `account`? The single visibility
    /// and ownership check: admins see everything, others their own account's resources.
    pub fn sees(&self, account: &str) -> bool {
        self.is_admin || self.account == account
    }

    /// Does this principal see key pair `k`? Its account's (or, for an admin, any), and for a
    /// Keystone user who is no admin only its own and the account's shared ones (Nova key
    /// pairs belong to a user).
    pub fn sees_key_pair(&self, k: &KeyPair) -> bool {
        self.sees(&k.account)
            && (self.is_admin
                || self.keystone_user.is_none()
                || k.user_id.is_none()
                || k.user_id == self.keystone_user)
    }

    /// May this principal act on `inst`, which it [`sees`](Self::sees)? Only a
    /// [`ResourceGuard`] can say no, with the reason a dialect shows.
    pub fn may_touch(&self, inst: &Instance) -> Result<(), String> {
        self.guard.as_ref().map_or(Ok(()), |g| g.0.instance(inst))
    }

    /// The assumed role's session, if the principal is one.
    pub fn role(&self) -> Option<&RoleSession> {
        self.session.as_ref().and_then(|s| s.role.as_ref())
    }

    /// Whether the account's root (or the bootstrap admin) itself is asking: no sub-user,
    /// no assumed role. Roots need no policy.
    pub fn is_root(&self) -> bool {
        self.sub_user.is_none() && self.role().is_none()
    }

    /// May this principal see a resource of Keystone project `project` (`None`: the
    /// account's default project)? Admins and callers without a project scope see every
    /// project of the accounts they see.
    pub fn sees_project(&self, project: Option<&str>) -> bool {
        match (&self.project, project) {
            _ if self.is_admin => true,
            (None, _) => true,
            (Some(s), Some(p)) => s.id == p,
            (Some(s), None) => s.is_default,
        }
    }
}

/// Resource-level authorization: what a policy decides for one resource. Implemented where
/// the policies live (the server's CAM/RAM authorizer); core and the engine only ask.
pub trait ResourcePolicy: Send + Sync {
    /// `Err(reason)` when the policies refuse the action on `inst`.
    fn instance(&self, inst: &Instance) -> Result<(), String>;
}

/// A shared [`ResourcePolicy`] carried by a [`Principal`]. Two guards are equal only when
/// they are the same guard.
#[derive(Clone)]
pub struct ResourceGuard(pub std::sync::Arc<dyn ResourcePolicy>);

impl std::fmt::Debug for ResourceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResourceGuard")
    }
}

impl PartialEq for ResourceGuard {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ResourceGuard {}
