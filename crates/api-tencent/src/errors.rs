//! The one mapping from domain errors to Tencent codes. docs/tencent-errors.md lists it.

use nubis_core::{DomainError, InstanceState, ResourceKind, Restriction, Unsupported};

/// A Tencent error: `{"Error": {"Code", "Message"}}` in an HTTP 200 envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// The whole error envelope, `{"Response":{"Error":{"Code","Message"},"RequestId"}}` (sent
/// with HTTP 200). The listener uses it too, for refusals made before a request reaches
/// [`crate::TencentApi`] (throttling, oversize bodies).
pub fn envelope(e: &ApiError, request_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"Response": {"Error": {"Code": e.code, "Message": e.message}, "RequestId": request_id}}))
        .expect("a JSON object of strings serializes")
}

/// `UnsupportedOperation.InstanceState<…>` suffix for a state.
pub fn state_suffix(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "Pending",
        InstanceState::LaunchFailed => "LaunchFailed",
        InstanceState::Running => "Running",
        InstanceState::Starting => "Starting",
        InstanceState::Stopping => "Stopping",
        InstanceState::Stopped => "Stopped",
        InstanceState::Rebooting => "Rebooting",
        InstanceState::EnteringRescue => "EnterRescueMode",
        InstanceState::Rescue => "RescueMode",
        InstanceState::ExitingRescue => "ExitRescueMode",
        InstanceState::Terminating => "Terminating",
        InstanceState::EnteringLiveMigrate => "EnterServiceLiveMigrate",
        InstanceState::LiveMigrating => "ServiceLiveMigrate",
        InstanceState::ExitingLiveMigrate => "ExitServiceLiveMigrate",
        InstanceState::Terminated => "Terminating",
        // As DescribeInstances shows them (render::state).
        InstanceState::Resizing
        | InstanceState::RevertingResize
        | InstanceState::VerifyResizeStopped => "Stopped",
        InstanceState::VerifyResize => "Running",
        // Held by Nova's pause, suspend or shelve: no Tencent state or code spells them, so
        // the code names the real state (docs/pause-suspend-shelve.md).
        InstanceState::Pausing => "Pausing",
        InstanceState::Paused => "Paused",
        InstanceState::Unpausing => "Unpausing",
        InstanceState::Suspending => "Suspending",
        InstanceState::Suspended => "Suspended",
        InstanceState::Resuming => "Resuming",
        InstanceState::Shelving => "Shelving",
        InstanceState::Shelved => "Shelved",
        InstanceState::ShelvingOffloading => "ShelvingOffloading",
        InstanceState::ShelvedOffloaded => "ShelvedOffloaded",
        InstanceState::Unshelving => "Unshelving",
        // As DescribeInstances shows them (render::state).
        InstanceState::SoftDeleted => "Shutdown",
        InstanceState::Error => "Running",
        InstanceState::SoftDeleting => "SoftDeleting",
        InstanceState::Restoring => "Restoring",
    }
}

/// The codes an action's documented error list spells its own way. Each action declares its
/// set in the registry ([`crate::REGISTRY`]); most use [`Codes::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codes {
    /// The password breaks the rules.
    pub invalid_password: &'static str,
    /// The action does not apply to a Windows instance or image.
    pub windows_os: &'static str,
    /// The store or the driver failed.
    pub internal: &'static str,
}

impl Codes {
    pub const DEFAULT: Self = Self {
        invalid_password: "InvalidParameterValue.InvalidPassword",
        windows_os: "UnsupportedOperation.InstanceOsWindows",
        internal: "InternalError",
    };
}

/// Map a domain error with an action's [`Codes`] (the codes that differ between actions, such
/// as password errors, come from each action's documented list).
pub fn map(codes: &Codes, e: DomainError) -> ApiError {
    let msg = e.to_string();
    let code: String = match &e {
        DomainError::MissingParameter(_) => "MissingParameter".into(),
        DomainError::UnknownParameter(_) => "UnknownParameter".into(),
        DomainError::InvalidValue { .. } => "InvalidParameterValue".into(),
        DomainError::InvalidParameter(_) => "InvalidParameter".into(),
        DomainError::TooMany { .. } => "InvalidParameterValue.LimitExceeded".into(),
        DomainError::TooLong { .. } => "InvalidParameterValue.TooLong".into(),
        DomainError::Malformed { kind, id } => match kind {
            ResourceKind::Instance if id.starts_with("ins-") => {
                "InvalidInstanceId.Malformed".into()
            }
            ResourceKind::Instance => "InvalidParameterValue.InstanceIdMalformed".into(),
            ResourceKind::KeyPair => "InvalidKeyPairId.Malformed".into(),
            ResourceKind::Image => "InvalidImageId.Malformed".into(),
            ResourceKind::InstanceType => "InvalidParameterValue".into(),
            ResourceKind::Zone => "InvalidZone.MismatchRegion".into(),
            ResourceKind::PlacementGroup => {
                "InvalidParameterValue.DisasterRecoverGroupIdMalformed".into()
            }
        },
        DomainError::NotFound { kind, .. } => match kind {
            ResourceKind::Instance => "InvalidInstanceId.NotFound".into(),
            ResourceKind::KeyPair => "InvalidKeyPairId.NotFound".into(),
            ResourceKind::Image => "InvalidImageId.NotFound".into(),
            ResourceKind::InstanceType => "InvalidInstanceType.Malformed".into(),
            ResourceKind::Zone => "InvalidZone.MismatchRegion".into(),
            ResourceKind::PlacementGroup => "ResourceNotFound.InvalidPlacementSet".into(),
        },
        DomainError::InvalidPassword(_) => codes.invalid_password.into(),
        DomainError::DuplicateKeyName(_) => "InvalidKeyPairName.Duplicate".into(),
        DomainError::KeyPairNotSupported(_) => "InvalidParameterValue.KeyPairNotSupported".into(),
        DomainError::KeyPairInUse(_) => "ResourceInUse".into(),
        // The type is changing: an operation holds the instance (CVM shows no state of its
        // own for it).
        DomainError::StateConflict {
            state: InstanceState::Resizing | InstanceState::RevertingResize,
            ..
        } => "OperationDenied.InstanceOperationInProgress".into(),
        DomainError::StateConflict { state, .. } => {
            format!("UnsupportedOperation.InstanceState{}", state_suffix(*state))
        }
        DomainError::Restricted { restriction, .. } => match restriction {
            Restriction::Expired => "UnsupportedOperation.InstanceStateShutdown".into(),
            Restriction::Isolating => "UnsupportedOperation.InstanceStateIsolating".into(),
            Restriction::Frozen => "UnsupportedOperation.InstanceStateFreezing".into(),
            Restriction::Banned => "UnsupportedOperation.InstanceStateBanning".into(),
            Restriction::Security | Restriction::None => "OperationDenied".into(),
        },
        DomainError::Unsupported { why, .. } => match why {
            Unsupported::ArmArchitecture => "UnsupportedOperation.ArmArchitecture".into(),
            Unsupported::EdgeZone => "UnsupportedOperation.EdgeZoneNotSupportCloudDisk".into(),
            Unsupported::SpecialInstanceType => "UnsupportedOperation.SpecialInstanceType".into(),
            Unsupported::InstanceKind => "InvalidInstance.NotSupported".into(),
            Unsupported::WindowsOs => codes.windows_os.into(),
            Unsupported::StoppedModeStopCharging => {
                "UnsupportedOperation.StoppedModeStopCharging".into()
            }
            Unsupported::ReinstallFailed => "UnsupportedOperation.InstanceReinstallFailed".into(),
            Unsupported::ApplicationRole => "FailedOperation.InvalidInstanceApplicationRole".into(),
            // Nova's unshelve only.
            Unsupported::UnshelveZoneNotOffloaded => "UnsupportedOperation".into(),
        },
        DomainError::DiskError { .. } => "UnsupportedOperation.InvalidDisk".into(),
        DomainError::Locked { .. } => "OperationDenied.InstanceLocked".into(),
        DomainError::KmsKey { state, .. } => match state {
            nubis_core::KmsState::Deleted => "ResourceNotFound.KmsKeyNotFound".into(),
            _ => "UnauthorizedOperation.KmsKey".into(),
        },
        DomainError::OperationInProgress {
            same_action: true, ..
        } => "MutexOperation.TaskRunning".into(),
        DomainError::OperationInProgress {
            same_action: false, ..
        } => "OperationDenied.InstanceOperationInProgress".into(),
        DomainError::RateLimited { .. } => "RequestLimitExceeded".into(),
        DomainError::DryRunOk => "DryRunOperation".into(),
        DomainError::QuotaExceeded(overs) => {
            if overs
                .iter()
                .any(|o| o.resource == nubis_core::QuotaResource::KeyPairs)
            {
                "InvalidKeyPair.LimitExceeded".into()
            } else {
                "LimitExceeded.InstanceQuota".into()
            }
        }
        // A policy naming the instance refused it: the same code as a refusal at the gate
        // (docs/identity-wire.md D10).
        DomainError::PolicyDenied(_) => "AuthFailure.UnauthorizedOperation".into(),
        DomainError::UnsupportedRegion(_) => "UnsupportedRegion".into(),
        DomainError::InvalidZone(_) => "InvalidZone.MismatchRegion".into(),
        // No host of the zone has room (docs/agents.md): the RunInstances error table's
        // "指定的实例类型库存不足".
        DomainError::SoldOut { .. } => "ResourceInsufficient.SpecifiedInstanceType".into(),
        // Placement groups (docs/placement-groups.md): the CVM error table's "指定置放群组配额
        // 不足", "实例个数超过容灾组的配额" and "指定的置放群组非空".
        DomainError::GroupQuota { .. } => "LimitExceeded.DisasterRecoverGroup".into(),
        DomainError::GroupFull { .. } => "ResourceInsufficient.DisasterRecoverGroupCvmQuota".into(),
        DomainError::GroupNotEmpty(_) => "FailedOperation.PlacementSetNotEmpty".into(),
        // Images (docs/images.md): the CVM error table (CreateImage, DeleteImages,
        // ModifyImageAttribute). An image instances run shows as USING and cannot be deleted.
        DomainError::ImageQuota { .. } => "ImageQuotaLimitExceeded".into(),
        DomainError::ImageNameInUse(_) => "InvalidImageName.Duplicate".into(),
        // An image whose min_ram the type lacks (a Glance-made image through CVM).
        DomainError::ImageNeedsMemory { .. } => "InvalidParameterCombination".into(),
        DomainError::ImageInUse(_)
        | DomainError::ImageState { .. }
        | DomainError::ImageProtected(_) => "InvalidImageId.IncorrectState".into(),
        DomainError::ImageNotOwned(_) => "UnauthorizedOperation.ImageNotBelongToAccount".into(),
        DomainError::ImageLimit { .. } => "InvalidParameterValue.LimitExceeded".into(),
        DomainError::Conflict(_) => "ResourceInUse".into(),
        DomainError::Unavailable(_) | DomainError::Internal(_) => codes.internal.into(),
        DomainError::SameInstanceType { .. } => "InvalidParameterValue".into(),
        DomainError::InstanceTypeNotAllowed { .. } => {
            "InvalidParameter.InstanceTypeNotSupport".into()
        }
    };
    ApiError { code, message: msg }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::Action;

    /// The code `action` (as the registry declares it) answers `e` with.
    fn code(action: &str, e: DomainError) -> String {
        let codes = crate::REGISTRY
            .get(action)
            .map_or(Codes::DEFAULT, |a| a.handler.codes);
        map(&codes, e).code
    }

    #[test]
    fn one_code_per_variant() {
        let id = || "ins-aaaaaaaa".to_string();
        let cases = [
            (
                "X",
                DomainError::StateConflict {
                    id: id(),
                    state: InstanceState::Rebooting,
                    action: Action::Stop,
                },
                "UnsupportedOperation.InstanceStateRebooting",
            ),
            (
                "X",
                DomainError::StateConflict {
                    id: id(),
                    state: InstanceState::EnteringRescue,
                    action: Action::Stop,
                },
                "UnsupportedOperation.InstanceStateEnterRescueMode",
            ),
            (
                "X",
                DomainError::OperationInProgress {
                    id: id(),
                    running: Action::ResetPassword,
                    same_action: true,
                },
                "MutexOperation.TaskRunning",
            ),
            (
                "X",
                DomainError::OperationInProgress {
                    id: id(),
                    running: Action::ResetPassword,
                    same_action: false,
                },
                "OperationDenied.InstanceOperationInProgress",
            ),
            (
                "X",
                DomainError::Malformed {
                    kind: ResourceKind::Instance,
                    id: "ins-1122".into(),
                },
                "InvalidInstanceId.Malformed",
            ),
            (
                "X",
                DomainError::Malformed {
                    kind: ResourceKind::Instance,
                    id: "abc".into(),
                },
                "InvalidParameterValue.InstanceIdMalformed",
            ),
            (
                "ResetInstancesPassword",
                DomainError::InvalidPassword("x".into()),
                "InvalidParameterValue.InvalidPassword",
            ),
            (
                "EnterRescueMode",
                DomainError::InvalidPassword("x".into()),
                "InvalidPassword",
            ),
            (
                "X",
                DomainError::Restricted {
                    id: id(),
                    restriction: Restriction::Expired,
                },
                "UnsupportedOperation.InstanceStateShutdown",
            ),
            (
                "X",
                DomainError::TooMany {
                    name: "InstanceIds".into(),
                    max: 100,
                    got: 101,
                },
                "InvalidParameterValue.LimitExceeded",
            ),
            (
                "X",
                DomainError::RateLimited { retry_after_ms: 1 },
                "RequestLimitExceeded",
            ),
            (
                "RunInstances",
                DomainError::QuotaExceeded(vec![nubis_core::QuotaOver {
                    resource: nubis_core::QuotaResource::Cores,
                    requested: 1,
                    used: 2,
                    limit: 2,
                }]),
                "LimitExceeded.InstanceQuota",
            ),
            (
                "CreateKeyPair",
                DomainError::QuotaExceeded(vec![nubis_core::QuotaOver {
                    resource: nubis_core::QuotaResource::KeyPairs,
                    requested: 1,
                    used: 2,
                    limit: 2,
                }]),
                "InvalidKeyPair.LimitExceeded",
            ),
        ];
        for (action, e, want) in cases {
            let shown = format!("{e:?}");
            assert_eq!(code(action, e), want, "{action}: {shown}");
        }
    }

    #[test]
    fn per_action_codes_come_from_the_registry() {
        let windows = || DomainError::Unsupported {
            id: "ins-aaaaaaaa".into(),
            why: Unsupported::WindowsOs,
        };
        assert_eq!(
            code("RunInstances", DomainError::InvalidPassword("x".into())),
            "InvalidPassword"
        );
        assert_eq!(
            code("RunInstances", windows()),
            "UnsupportedOperation.KeyPairUnsupportedWindows"
        );
        assert_eq!(
            code("AssociateInstancesKeyPairs", windows()),
            "UnsupportedOperation.InstanceOsWindows"
        );
        for (action, want) in [
            ("ResetInstancesPassword", "InternalServerError"),
            ("AssociateInstancesKeyPairs", "InternalServerError"),
            ("DisassociateInstancesKeyPairs", "InternalError"),
            ("StopInstances", "InternalError"),
        ] {
            assert_eq!(
                code(action, DomainError::Internal("x".into())),
                want,
                "{action}"
            );
        }
    }

    #[test]
    fn every_state_has_a_suffix() {
        for s in InstanceState::ALL {
            assert!(!state_suffix(s).is_empty());
        }
    }
}

#[cfg(test)]
mod resize_tests {
    use super::*;
    use nubis_core::Action;

    fn code(e: DomainError) -> String {
        map(&Codes::DEFAULT, e).code
    }

    #[test]
    fn resize_codes() {
        let id = || "ins-aaaaaaaa".to_string();
        let ty = || "S5.SMALL2".to_string();
        assert_eq!(
            code(DomainError::SameInstanceType {
                id: id(),
                instance_type: ty()
            }),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(DomainError::InstanceTypeNotAllowed {
                id: id(),
                instance_type: ty()
            }),
            "InvalidParameter.InstanceTypeNotSupport"
        );
        for (state, want) in [
            (
                InstanceState::Resizing,
                "OperationDenied.InstanceOperationInProgress",
            ),
            (
                InstanceState::RevertingResize,
                "OperationDenied.InstanceOperationInProgress",
            ),
            (
                InstanceState::VerifyResize,
                "UnsupportedOperation.InstanceStateRunning",
            ),
            (
                InstanceState::VerifyResizeStopped,
                "UnsupportedOperation.InstanceStateStopped",
            ),
        ] {
            let e = DomainError::StateConflict {
                id: id(),
                state,
                action: Action::Stop,
            };
            assert_eq!(code(e), want, "{state:?}");
        }
    }
}
