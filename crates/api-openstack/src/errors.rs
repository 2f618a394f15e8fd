//! Nova faults and the one mapping from domain errors to them.
//!
//! Body `{"<name>": {"code": N, "message": "..."}}`; the name follows from the status
//! (nova/api/openstack/wsgi.py `_FAULT_NAMES`).

use crate::state::{Extra, action_name, nova_state, task_of};
use nubis_core::{DomainError, KmsState, ResourceKind, Unsupported};
use serde_json::{Value, json};
use uuid::Uuid;

/// nova.exception.NoValidHost: the fault of a server no host had room for.
pub(crate) const NO_VALID_HOST: &str =
    "No valid host was found. There are not enough hosts available.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    pub message: String,
}

impl Fault {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }
    pub fn server_not_found(id: &str) -> Self {
        Self::not_found(format!("Instance {id} could not be found."))
    }
    pub fn malformed() -> Self {
        Self::bad_request("Malformed request body")
    }

    pub fn name(&self) -> &'static str {
        fault_name(self.status)
    }

    pub fn body(&self) -> Value {
        json!({ self.name(): {"code": self.status, "message": self.message} })
    }
}

pub fn fault_name(status: u16) -> &'static str {
    match status {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

/// Keystone's error envelope, `{"error":{"code","title","message"}}` (keystone/exception.py
/// titles). The listener uses it for refusals made before a request reaches the dialect
/// (throttling, oversize bodies).
pub fn keystone_body(status: u16, message: &str) -> Value {
    let title = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    };
    json!({"error": {"code": status, "title": title, "message": message}})
}

/// Glance's (webob's) plain-text error body: `"<status> <reason>\n\n<message>\n\n   "`.
pub fn glance_text(status: u16, reason: &str, message: &str) -> String {
    format!("{status} {reason}\n\n{message}\n\n   ")
}

/// Domain error → Nova fault. `server` is the UUID the request named (domain errors carry
/// the canonical record's Tencent ID, which a Nova client has never seen).
pub fn map(e: DomainError, server: Option<Uuid>) -> Fault {
    let sid = |id: &str| {
        server
            .map(|u| u.to_string())
            .unwrap_or_else(|| id.to_string())
    };
    match e {
        DomainError::MissingParameter(name) => {
            Fault::bad_request(format!("'{name}' is a required property"))
        }
        DomainError::UnknownParameter(name) => Fault::bad_request(format!(
            "Additional properties are not allowed ('{name}' was unexpected)"
        )),
        DomainError::InvalidValue { name, reason } => Fault::bad_request(format!(
            "Invalid input for field/attribute {name}. {reason}"
        )),
        DomainError::InvalidParameter(m) => Fault::bad_request(m),
        e @ (DomainError::TooMany { .. } | DomainError::TooLong { .. }) => {
            Fault::bad_request(e.to_string())
        }
        DomainError::Malformed { kind, id } => match kind {
            ResourceKind::Instance => Fault::server_not_found(&sid(&id)),
            _ => Fault::bad_request(format!("Invalid {kind} ID {id}")),
        },
        DomainError::NotFound { kind, id } => match kind {
            ResourceKind::Instance => Fault::server_not_found(&sid(&id)),
            ResourceKind::KeyPair => Fault::bad_request("Invalid key_name provided."),
            ResourceKind::Image => Fault::bad_request("Can not find requested image"),
            ResourceKind::InstanceType => {
                Fault::bad_request(format!("Flavor {id} could not be found."))
            }
            ResourceKind::Zone => {
                Fault::bad_request("The requested availability zone is not available")
            }
            ResourceKind::PlacementGroup => {
                Fault::not_found(format!("Instance group {id} could not be found."))
            }
        },
        DomainError::InvalidPassword(reason) => {
            Fault::bad_request(format!("Invalid adminPass: {reason}"))
        }
        DomainError::DuplicateKeyName(name) => {
            Fault::conflict(format!("Key pair '{name}' already exists."))
        }
        DomainError::KeyPairNotSupported(name) => Fault::bad_request(format!(
            "Keypair data is invalid: key pair {name} is not supported"
        )),
        DomainError::KeyPairInUse(name) => Fault::conflict(format!(
            "Key pair {name} is still used by a server and cannot be deleted."
        )),
        DomainError::StateConflict { id, state, action } => {
            state_conflict(&sid(&id), state, action_name(action))
        }
        DomainError::OperationInProgress { id, running, .. } => Fault::conflict(format!(
            "Cannot perform this action on instance {} while it is in task_state {}",
            sid(&id),
            task_of(running)
        )),
        DomainError::Restricted { id, .. } => {
            Fault::conflict(format!("Instance {} is locked", sid(&id)))
        }
        DomainError::Unsupported { id, why } => match why {
            Unsupported::StoppedModeStopCharging => Fault::conflict(format!(
                "Instance {} has released its resources while stopped",
                sid(&id)
            )),
            Unsupported::WindowsOs => {
                Fault::bad_request("Key pairs are not supported by Windows images.")
            }
            // nova.exception.UnshelveInstanceInvalidState (a zone or host for a server that
            // is shelved but not offloaded).
            Unsupported::UnshelveZoneNotOffloaded => Fault::conflict(format!(
                "Specifying an availability zone when unshelving server {} with status \"shelved\" is not supported. The server status must be SHELVED_OFFLOADED.",
                sid(&id)
            )),
            other => Fault::bad_request(format!(
                "Instance {} cannot do this: {}",
                sid(&id),
                match other {
                    Unsupported::ArmArchitecture => "ARM flavors are not supported",
                    Unsupported::EdgeZone => "edge zones are not supported",
                    Unsupported::SpecialInstanceType => "special-purpose flavor",
                    Unsupported::ReinstallFailed => "the last rebuild failed",
                    Unsupported::ApplicationRole => "the server has an application role",
                    _ => "unsupported kind of server",
                }
            )),
        },
        DomainError::Locked { id } => Fault::conflict(format!("Instance {} is locked", sid(&id))),
        DomainError::DiskError { id } => Fault::conflict(format!(
            "Instance {} has a disk in an error state",
            sid(&id)
        )),
        DomainError::KmsKey { id, key, state } => {
            let m = format!("The encryption key {key} of instance {} ", sid(&id));
            match state {
                KmsState::Disabled => Fault::conflict(m + "is disabled"),
                KmsState::Unauthorized | KmsState::KmsUnauthorized => {
                    Fault::new(403, m + "may not be used")
                }
                KmsState::Deleted | KmsState::Enabled => Fault::bad_request(m + "does not exist"),
            }
        }
        DomainError::RateLimited { .. } => Fault::new(429, "This request was rate-limited."),
        DomainError::DryRunOk => Fault::bad_request("Dry runs are not supported"),
        // nova/api/openstack/compute/{servers,keypairs}.py: OverQuota → 403 forbidden.
        DomainError::QuotaExceeded(overs) => {
            if overs
                .iter()
                .any(|o| o.resource == nubis_core::QuotaResource::KeyPairs)
            {
                Fault::new(403, "Quota exceeded, too many key pairs.")
            } else {
                Fault::new(403, nubis_core::error::quota_message(&overs))
            }
        }
        // nova/api/openstack/compute/servers.py `_resize`: CannotResizeToSameFlavor and a
        // flavor the server cannot take are 400s.
        DomainError::SameInstanceType { .. } => {
            Fault::bad_request("When resizing, instances must change flavor!")
        }
        DomainError::InstanceTypeNotAllowed { instance_type, .. } => Fault::bad_request(format!(
            "Unable to resize to flavor {instance_type}: it is not available for this server."
        )),
        DomainError::PolicyDenied(m) => Fault::new(403, m),
        DomainError::UnsupportedRegion(r) => {
            Fault::bad_request(format!("Region {r} is not served"))
        }
        DomainError::InvalidZone(_) => {
            Fault::bad_request("The requested availability zone is not available")
        }
        // Only a create refuses for want of room, and Nova's create does not refuse: its
        // server goes to ERROR with `NO_VALID_HOST` (compute/create.rs).
        DomainError::SoldOut { .. } => Fault::new(500, NO_VALID_HOST),
        // nova/api/openstack/compute/server_groups.py and compute/api.py's member check.
        DomainError::GroupQuota { .. } => {
            Fault::new(403, "Quota exceeded, too many server groups.")
        }
        DomainError::GroupFull { .. } => {
            Fault::new(403, "Quota exceeded, too many servers in group")
        }
        DomainError::GroupNotEmpty(id) => {
            Fault::conflict(format!("Instance group {id} still has members."))
        }
        // Images through Nova's proxy (createImage, /images): Glance's answers.
        DomainError::ImageQuota { .. } => Fault::new(413, "Image quota exceeded"),
        DomainError::ImageInUse(id) => Fault::conflict(format!("Image {id} is in use.")),
        // compute/api.py `_validate_flavor_image_nostatus` (FlavorMemoryTooSmall).
        DomainError::ImageNeedsMemory { .. } => {
            Fault::bad_request("Flavor's memory is too small for requested image.")
        }
        DomainError::ImageNameInUse(name) => {
            Fault::conflict(format!("Image name {name} is already in use."))
        }
        DomainError::ImageState { id, status } => Fault::conflict(format!(
            "Image {id} is not active (status {}).",
            status.glance()
        )),
        DomainError::ImageProtected(id) => Fault::new(
            403,
            format!("Image {id} is protected and cannot be deleted."),
        ),
        DomainError::ImageNotOwned(id) => {
            Fault::new(403, format!("You are not permitted to modify image {id}."))
        }
        DomainError::ImageLimit { what, limit } => {
            Fault::new(413, format!("Maximum {what} per image exceeded ({limit})."))
        }
        DomainError::Conflict(m) => Fault::conflict(m),
        DomainError::Unavailable(_) => Fault::new(503, "The service is unavailable."),
        DomainError::Internal(_) => Fault::new(
            500,
            "Unexpected API Error. Please report this at the nubis issue tracker and attach the request ID.",
        ),
    }
}

/// Nova's 409 for an action (named as Nova names it) the server's state refuses.
pub(crate) fn state_conflict(id: &str, state: nubis_core::InstanceState, action: &str) -> Fault {
    let n = nova_state(state, Extra::default());
    let (attr, value) = match n.task_state {
        Some(t) => ("task_state", t),
        None => ("vm_state", n.vm_state),
    };
    Fault::conflict(format!(
        "Cannot '{action}' instance {id} while it is in {attr} {value}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::{Action, InstanceState, Restriction};

    fn id() -> String {
        "ins-aaaaaaaa".into()
    }

    #[test]
    fn names_by_status() {
        for (s, n) in [
            (400, "badRequest"),
            (401, "unauthorized"),
            (403, "forbidden"),
            (404, "itemNotFound"),
            (405, "badMethod"),
            (406, "computeFault"),
            (409, "conflictingRequest"),
            (413, "overLimit"),
            (429, "overLimit"),
            (500, "computeFault"),
            (501, "notImplemented"),
            (503, "serviceUnavailable"),
        ] {
            assert_eq!(fault_name(s), n);
        }
        let f = Fault::conflict("x");
        assert_eq!(
            f.body(),
            json!({"conflictingRequest": {"code": 409, "message": "x"}})
        );
    }

    #[test]
    fn domain_errors() {
        let u = Uuid::nil();
        let f = map(
            DomainError::StateConflict {
                id: id(),
                state: InstanceState::Rescue,
                action: Action::Reboot,
            },
            Some(u),
        );
        assert_eq!(f.status, 409);
        assert_eq!(
            f.message,
            format!("Cannot 'reboot' instance {u} while it is in vm_state rescued")
        );
        let f = map(
            DomainError::StateConflict {
                id: id(),
                state: InstanceState::Rebooting,
                action: Action::Stop,
            },
            Some(u),
        );
        assert_eq!(
            f.message,
            format!("Cannot 'stop' instance {u} while it is in task_state rebooting")
        );
        let f = map(
            DomainError::NotFound {
                kind: ResourceKind::Instance,
                id: "x".into(),
            },
            Some(u),
        );
        assert_eq!(
            (f.status, f.name(), f.message.as_str()),
            (
                404,
                "itemNotFound",
                format!("Instance {u} could not be found.").as_str()
            )
        );
        let cases = [
            (
                DomainError::OperationInProgress {
                    id: id(),
                    running: Action::Reboot,
                    same_action: true,
                },
                409,
            ),
            (
                DomainError::Restricted {
                    id: id(),
                    restriction: Restriction::Frozen,
                },
                409,
            ),
            (DomainError::DuplicateKeyName("k".into()), 409),
            (DomainError::InvalidPassword("short".into()), 400),
            (
                DomainError::NotFound {
                    kind: ResourceKind::InstanceType,
                    id: "f".into(),
                },
                400,
            ),
            (
                DomainError::NotFound {
                    kind: ResourceKind::Image,
                    id: "i".into(),
                },
                400,
            ),
            (
                DomainError::Unsupported {
                    id: id(),
                    why: Unsupported::ArmArchitecture,
                },
                400,
            ),
            (DomainError::PolicyDenied("no".into()), 403),
            (DomainError::RateLimited { retry_after_ms: 1 }, 429),
            (DomainError::Unavailable("db".into()), 503),
            (DomainError::Internal("bug".into()), 500),
            (
                DomainError::QuotaExceeded(vec![nubis_core::QuotaOver {
                    resource: nubis_core::QuotaResource::Instances,
                    requested: 1,
                    used: 2,
                    limit: 2,
                }]),
                403,
            ),
            (
                DomainError::QuotaExceeded(vec![nubis_core::QuotaOver {
                    resource: nubis_core::QuotaResource::KeyPairs,
                    requested: 1,
                    used: 2,
                    limit: 2,
                }]),
                403,
            ),
        ];
        for (e, status) in cases {
            let dbg = format!("{e:?}");
            let f = map(e, Some(u));
            assert_eq!(f.status, status, "{dbg}");
            // The Tencent ID never leaks into a Nova message.
            assert!(!f.message.contains("ins-"), "{dbg}: {}", f.message);
        }
    }

    #[test]
    fn quota_messages_are_novas() {
        let o = |resource, requested, used, limit| nubis_core::QuotaOver {
            resource,
            requested,
            used,
            limit,
        };
        let f = map(
            DomainError::QuotaExceeded(vec![o(nubis_core::QuotaResource::Instances, 1, 10, 10)]),
            None,
        );
        assert_eq!(
            (f.status, f.message.as_str()),
            (
                403,
                "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"
            )
        );
        let f = map(
            DomainError::QuotaExceeded(vec![
                o(nubis_core::QuotaResource::Cores, 4, 18, 20),
                o(nubis_core::QuotaResource::Ram, 8192, 40960, 51200),
            ]),
            None,
        );
        assert_eq!(
            f.message,
            "Quota exceeded for cores, ram: Requested 4, 8192, but already used 18, 40960 of 20, 51200 cores, ram"
        );
        let f = map(
            DomainError::QuotaExceeded(vec![o(nubis_core::QuotaResource::KeyPairs, 1, 100, 100)]),
            None,
        );
        assert_eq!(f.message, "Quota exceeded, too many key pairs.");
    }
}

#[cfg(test)]
mod resize_tests {
    use super::*;
    use nubis_core::{Action, InstanceState};
    use uuid::Uuid;

    #[test]
    fn resize_faults_are_novas() {
        let u = Uuid::nil();
        let id = || u.to_string();
        let f = map(
            DomainError::SameInstanceType {
                id: id(),
                instance_type: "S5.MEDIUM4".into(),
            },
            Some(u),
        );
        assert_eq!(
            (f.status, f.message.as_str()),
            (400, "When resizing, instances must change flavor!")
        );
        let f = map(
            DomainError::InstanceTypeNotAllowed {
                id: id(),
                instance_type: "BMS5.LARGE8".into(),
            },
            Some(u),
        );
        assert_eq!(f.status, 400);
        for (state, action, tail) in [
            (
                InstanceState::Running,
                Action::ConfirmResize,
                "'confirmResize' instance {u} while it is in vm_state active",
            ),
            (
                InstanceState::VerifyResize,
                Action::Resize,
                "'resize' instance {u} while it is in vm_state resized",
            ),
            (
                InstanceState::Resizing,
                Action::RevertResize,
                "'revertResize' instance {u} while it is in task_state resize_migrating",
            ),
        ] {
            let f = map(
                DomainError::StateConflict {
                    id: id(),
                    state,
                    action,
                },
                Some(u),
            );
            assert_eq!(f.status, 409);
            assert_eq!(
                f.message,
                format!("Cannot {}", tail.replace("{u}", &u.to_string()))
            );
        }
    }
}
