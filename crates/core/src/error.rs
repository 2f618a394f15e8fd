//! Domain errors: transport-agnostic. Each dialect owns one function that maps these to its
//! own code, HTTP status and envelope.

use crate::state::{Action, InstanceState, Restriction};
use thiserror::Error;

/// Why an instance kind cannot do an action (catalogue facts, not state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsupported {
    /// ARM instance type.
    ArmArchitecture,
    /// Instance lives in an edge zone.
    EdgeZone,
    /// Special-purpose instance type.
    SpecialInstanceType,
    /// Bare-metal or otherwise unsupported kind of instance.
    InstanceKind,
    /// Windows guest (key pairs are Linux-only).
    WindowsOs,
    /// Stopped with StoppedMode=STOP_CHARGING: its resources were released.
    StoppedModeStopCharging,
    /// A previous (simulated) reinstall failed.
    ReinstallFailed,
    /// The instance's application role forbids the action.
    ApplicationRole,
    /// An unshelve names a zone, but the guest is still on its host (shelved, not offloaded):
    /// only an offloaded guest may move (Nova's UnshelveInstanceInvalidState).
    UnshelveZoneNotOffloaded,
}

/// Core and the engine name the resources an error is about by canonical ID (instances by
/// UUID, key pairs by ID); a dialect renders its own names with [`DomainError::render`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A required parameter is absent.
    #[error("missing parameter `{0}`")]
    MissingParameter(String),
    /// A parameter the action does not know.
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    /// A parameter value is wrong.
    #[error("invalid value for `{name}`: {reason}")]
    InvalidValue { name: String, reason: String },
    /// A combination of parameters is wrong.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// Too many values (batch size).
    #[error("`{name}` takes at most {max} values, got {got}")]
    TooMany {
        name: String,
        max: usize,
        got: usize,
    },
    /// A string value is too long.
    #[error("`{name}` is longer than {max} characters")]
    TooLong { name: String, max: usize },
    /// An ID has the wrong shape.
    #[error("malformed {kind} ID `{id}`")]
    Malformed { kind: ResourceKind, id: String },
    /// No such resource visible to the caller.
    #[error("{kind} `{id}` not found")]
    NotFound { kind: ResourceKind, id: String },
    /// The password does not meet the policy.
    #[error("invalid password: {0}")]
    InvalidPassword(String),
    /// Key pair name already used in this account.
    #[error("key pair name `{0}` already exists")]
    DuplicateKeyName(String),
    /// Key pair cannot be used for this (e.g. unsupported key type).
    #[error("key pair `{0}` is not supported for this operation")]
    KeyPairNotSupported(String),
    /// Key pair still associated with instances.
    #[error("key pair `{0}` is still associated with instances")]
    KeyPairInUse(String),
    /// The instance's state forbids the action.
    #[error("instance `{id}` is {} and cannot {}", state.as_str(), action.as_str())]
    StateConflict {
        id: String,
        state: InstanceState,
        action: Action,
    },
    /// An operator restriction forbids the action.
    #[error("instance `{id}` is restricted ({restriction:?})")]
    Restricted {
        id: String,
        restriction: Restriction,
    },
    /// The instance kind does not support the action.
    #[error("instance `{id}` does not support this operation ({why:?})")]
    Unsupported { id: String, why: Unsupported },
    /// The owner locked the instance.
    #[error("instance `{id}` is locked")]
    Locked { id: String },
    /// A disk of the instance is in an error state.
    #[error("a disk of instance `{id}` is in an error state")]
    DiskError { id: String },
    /// The KMS key encrypting the instance's disks cannot be used.
    #[error("the KMS key `{key}` of instance `{id}` cannot be used ({state:?})")]
    KmsKey {
        id: String,
        key: String,
        state: crate::op::KmsState,
    },
    /// Another operation holds the instance's lock.
    #[error("instance `{id}` has an operation in progress ({running:?})")]
    OperationInProgress {
        id: String,
        running: Action,
        same_action: bool,
    },
    /// The per-action rate limit is exhausted.
    #[error("request limit exceeded")]
    RateLimited { retry_after_ms: u64 },
    /// A dry run passed every check.
    #[error("dry run succeeded")]
    DryRunOk,
    /// The account's quota cannot hold what the request would create (every resource it
    /// would exceed, in [`crate::rules::quota::QuotaResource`] order; never empty).
    #[error("{}", quota_message(.0))]
    QuotaExceeded(Vec<crate::rules::quota::QuotaOver>),
    /// The principal may not do this.
    #[error("not authorized: {0}")]
    PolicyDenied(String),
    /// A region this deployment does not serve.
    #[error("region `{0}` is not supported")]
    UnsupportedRegion(String),
    /// Zone does not exist in the region.
    #[error("zone `{0}` is not available")]
    InvalidZone(String),
    /// Hosts serve the zone, but none that is up has room for the instance type (the
    /// clouds' sold-out answer; `crate::hosts::place`).
    #[error("no host of zone `{zone}` has room for `{instance_type}`")]
    SoldOut { zone: String, instance_type: String },
    /// The account holds as many placement groups as it may (`groups::GROUPS_PER_ACCOUNT`).
    #[error("the account already has {limit} placement groups")]
    GroupQuota { limit: u32 },
    /// The placement group (canonical ID) cannot take the members a create would add
    /// (`PlacementGroup::max_members`).
    #[error("placement group `{group}` holds at most {limit} instances")]
    GroupFull { group: String, limit: u32 },
    /// A placement group (canonical ID) that still has members cannot be deleted.
    #[error("placement group `{0}` still has instances")]
    GroupNotEmpty(String),
    /// The account holds as many images as it may (`images::IMAGES_PER_ACCOUNT`).
    #[error("the account already has {limit} images")]
    ImageQuota { limit: u32 },
    /// The image (canonical ID) is visible to the caller but not its own to change (a
    /// built-in, public or shared one).
    #[error("image `{0}` does not belong to the account")]
    ImageNotOwned(String),
    /// A protected image (canonical ID) cannot be deleted.
    #[error("image `{0}` is protected and cannot be deleted")]
    ImageProtected(String),
    /// An image (canonical ID) that instances run cannot be deleted (Tencent, Alibaba
    /// without Force; Glance allows it).
    #[error("image `{0}` is in use by instances")]
    ImageInUse(String),
    /// The image (canonical ID) is not in a status that allows this.
    #[error("image `{id}` is {}", status.glance())]
    ImageState {
        id: String,
        status: crate::images::ImageStatus,
    },
    /// The instance type's memory is below what the image needs (Glance `min_ram`).
    #[error(
        "instance type `{instance_type}` has {memory_mib} MiB; image `{image}` needs {min_ram_mib} MiB"
    )]
    ImageNeedsMemory {
        image: String,
        instance_type: String,
        memory_mib: u32,
        min_ram_mib: u32,
    },
    /// The account already has an image of this name (Tencent and Alibaba names are unique).
    #[error("an image named `{0}` already exists")]
    ImageNameInUse(String),
    /// A record changed on another node meanwhile, or an ID a client chose exists already.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A limit of one image was reached (tags, members, properties): what and how many.
    #[error("at most {limit} {what} per image")]
    ImageLimit { what: &'static str, limit: usize },
    /// The store is unreachable.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A fault inside nubis (never bad input).
    #[error("internal error: {0}")]
    Internal(String),
    /// A resize to the type the instance already has.
    #[error("instance `{id}` is already of instance type `{instance_type}`")]
    SameInstanceType { id: String, instance_type: String },
    /// A resize to a type the instance cannot move to (another architecture, a special or
    /// bare-metal type).
    #[error("instance `{id}` cannot change to instance type `{instance_type}`")]
    InstanceTypeNotAllowed { id: String, instance_type: String },
}

/// Nova's wording (`TooManyInstances`, nova/exception.py): "Quota exceeded for cores,
/// instances: Requested 2, 1, but already used 20, 10 of 20, 10 cores, instances".
pub fn quota_message(overs: &[crate::rules::quota::QuotaOver]) -> String {
    let join = |f: &dyn Fn(&crate::rules::quota::QuotaOver) -> String| {
        overs.iter().map(f).collect::<Vec<_>>().join(", ")
    };
    let names = join(&|o| o.resource.nova_name().to_string());
    format!(
        "Quota exceeded for {names}: Requested {}, but already used {} of {} {names}",
        join(&|o| o.requested.to_string()),
        join(&|o| o.used.to_string()),
        join(&|o| o.limit.to_string()),
    )
}

/// How a dialect names resources in its messages: Tencent instances by `ins-` ID, Alibaba
/// instances by `i-` ID and key pairs by name, Nova servers by UUID (the canonical ID).
pub trait Names {
    /// The dialect's ID for the instance with this canonical ID.
    fn instance(&self, canonical: &str) -> Option<String>;
    /// The dialect's name for the key pair with this ID.
    fn key_pair(&self, id: &str) -> Option<String>;
    /// The dialect's ID for the placement group with this canonical ID.
    fn placement_group(&self, _canonical: &str) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Instance,
    KeyPair,
    Image,
    InstanceType,
    Zone,
    PlacementGroup,
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Instance => "instance",
            Self::KeyPair => "key pair",
            Self::Image => "image",
            Self::InstanceType => "instance type",
            Self::Zone => "zone",
            Self::PlacementGroup => "placement group",
        })
    }
}

impl DomainError {
    /// The same error naming resources the way a dialect does. Core and the engine name an
    /// instance by its canonical ID (the UUID) and a key pair by its ID; `names` gives the
    /// dialect's name for each (None: keep the canonical one, e.g. a resource the caller may
    /// not see). IDs a client typed (malformed or unknown ones) are kept as typed.
    pub fn render(self, names: &impl Names) -> Self {
        let inst = |id: String| names.instance(&id).unwrap_or(id);
        let key = |id: String| names.key_pair(&id).unwrap_or(id);
        let group = |id: String| names.placement_group(&id).unwrap_or(id);
        match self {
            Self::NotFound {
                kind: ResourceKind::PlacementGroup,
                id,
            } => Self::NotFound {
                kind: ResourceKind::PlacementGroup,
                id: group(id),
            },
            Self::GroupFull { group: g, limit } => Self::GroupFull {
                group: group(g),
                limit,
            },
            Self::GroupNotEmpty(g) => Self::GroupNotEmpty(group(g)),
            Self::NotFound {
                kind: ResourceKind::Instance,
                id,
            } => Self::NotFound {
                kind: ResourceKind::Instance,
                id: inst(id),
            },
            Self::NotFound {
                kind: ResourceKind::KeyPair,
                id,
            } => Self::NotFound {
                kind: ResourceKind::KeyPair,
                id: key(id),
            },
            Self::KeyPairNotSupported(id) => Self::KeyPairNotSupported(key(id)),
            Self::KeyPairInUse(id) => Self::KeyPairInUse(key(id)),
            Self::StateConflict { id, state, action } => Self::StateConflict {
                id: inst(id),
                state,
                action,
            },
            Self::Restricted { id, restriction } => Self::Restricted {
                id: inst(id),
                restriction,
            },
            Self::Unsupported { id, why } => Self::Unsupported { id: inst(id), why },
            Self::Locked { id } => Self::Locked { id: inst(id) },
            Self::DiskError { id } => Self::DiskError { id: inst(id) },
            Self::KmsKey { id, key, state } => Self::KmsKey {
                id: inst(id),
                key,
                state,
            },
            Self::OperationInProgress {
                id,
                running,
                same_action,
            } => Self::OperationInProgress {
                id: inst(id),
                running,
                same_action,
            },
            Self::SameInstanceType { id, instance_type } => Self::SameInstanceType {
                id: inst(id),
                instance_type,
            },
            Self::InstanceTypeNotAllowed { id, instance_type } => Self::InstanceTypeNotAllowed {
                id: inst(id),
                instance_type,
            },
            other => other,
        }
    }

    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Action, InstanceState};

    /// Instances by an `x-` prefix of their canonical ID; key pairs by an upper-case name.
    struct Prefixed;

    impl Names for Prefixed {
        fn instance(&self, canonical: &str) -> Option<String> {
            uuid::Uuid::parse_str(canonical)
                .ok()
                .map(|u| format!("x-{}", &u.simple().to_string()[..8]))
        }
        fn key_pair(&self, id: &str) -> Option<String> {
            Some(id.to_uppercase())
        }
    }

    #[test]
    fn render_names_canonical_ids_and_keeps_typed_ones() {
        let id = "01234567-89ab-cdef-0123-456789abcdef".to_string();
        let e = DomainError::StateConflict {
            id: id.clone(),
            state: InstanceState::Stopped,
            action: Action::Reboot,
        }
        .render(&Prefixed);
        assert!(e.to_string().contains("`x-01234567`"), "{e}");
        let e = DomainError::KeyPairInUse("skey-1".into()).render(&Prefixed);
        assert_eq!(e, DomainError::KeyPairInUse("SKEY-1".into()));
        // A client's unknown ID is not canonical: kept as typed.
        let e = DomainError::NotFound {
            kind: ResourceKind::Instance,
            id: "ins-typed".into(),
        }
        .render(&Prefixed);
        assert!(e.to_string().contains("ins-typed"), "{e}");
        // Images and others are not renamed.
        let e = DomainError::NotFound {
            kind: ResourceKind::Image,
            id: "skey-x".into(),
        };
        assert_eq!(e.clone().render(&Prefixed), e);
    }
}
