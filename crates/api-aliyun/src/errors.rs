//! The one mapping from domain errors to Alibaba codes and HTTP statuses
//! (docs/aliyun-errors.md lists it).

use nubis_core::{DomainError, KmsState, ResourceKind, Restriction, Unsupported};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// `AccessDeniedDetail` of a refusal by policy (docs/identity-wire.md D11): an object the
    /// Tea SDK copies into `exception.access_denied_detail`.
    pub access_denied: Option<Box<serde_json::Value>>,
}

impl ApiError {
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            access_denied: None,
        }
    }

    pub fn missing(name: &str) -> Self {
        Self::new(
            400,
            "MissingParameter",
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    pub fn invalid(name: &str, value: impl std::fmt::Display) -> Self {
        Self::new(
            400,
            "InvalidParameter",
            format!("The specified parameter \"{name}\" is not valid: {value}"),
        )
    }
}

/// An Alibaba RequestId: an upper-case UUID (time-ordered, as `ids::new_request_id`).
pub fn new_request_id() -> String {
    nubis_core::ids::new_request_id().to_uppercase()
}

/// The error body, `{"RequestId","HostId","Code","Message","Recommend"}`, as JSON or (with
/// `Format=XML`) as `<Error>…</Error>`: (content type, bytes). The listener uses it too, for
/// refusals made before a request reaches [`crate::AliyunApi`] (throttling, oversize bodies).
pub fn render(e: &ApiError, request_id: &str, xml: bool) -> (&'static str, Vec<u8>) {
    let recommend = format!(
        "https://api.aliyun.com/troubleshoot?q={}&product=Ecs",
        e.code
    );
    let mut v = serde_json::json!({"RequestId": request_id, "HostId": crate::HOST_ID, "Code": e.code, "Message": e.message, "Recommend": recommend});
    if let Some(detail) = &e.access_denied {
        v["AccessDeniedDetail"] = (**detail).clone();
    }
    if xml {
        (
            "text/xml;charset=utf-8",
            crate::render::xml("Error", &v).into_bytes(),
        )
    } else {
        (
            "application/json;charset=utf-8",
            serde_json::to_vec(&v).expect("a JSON object of strings serializes"),
        )
    }
}

pub fn map(e: DomainError) -> ApiError {
    let msg = match &e {
        // ECS's own wording, with what holds the instance in Alibaba's names.
        DomainError::OperationInProgress { id, running, .. } => format!(
            "Request was denied due to conflict with a previous request: {} is in progress on instance {id}.",
            crate::render::action(*running)
        ),
        DomainError::Unsupported { id, .. } => {
            format!("The specified instance {id} does not support this operation.")
        }
        DomainError::KeyPairInUse(name) => {
            format!("The specified key pair {name} is still attached to instances.")
        }
        DomainError::Locked { id } => format!("The instance {id} is locked by its owner."),
        e => e.to_string(),
    };
    let (status, code): (u16, &str) = match &e {
        DomainError::MissingParameter(_) => (400, "MissingParameter"),
        DomainError::UnknownParameter(_)
        | DomainError::InvalidValue { .. }
        | DomainError::InvalidParameter(_) => (400, "InvalidParameter"),
        DomainError::TooMany { .. } | DomainError::TooLong { .. } => (400, "InvalidParameter"),
        DomainError::Malformed { kind, .. } => match kind {
            ResourceKind::Instance => (400, "InvalidInstanceId.MalFormed"),
            ResourceKind::KeyPair => (400, "InvalidKeyPairName.Malformed"),
            _ => (400, "InvalidParameter"),
        },
        DomainError::NotFound { kind, .. } => match kind {
            ResourceKind::Instance => (404, "InvalidInstanceId.NotFound"),
            ResourceKind::KeyPair => (404, "InvalidKeyPairName.NotFound"),
            ResourceKind::Image => (404, "InvalidImageId.NotFound"),
            ResourceKind::InstanceType => (404, "InvalidInstanceType.NotFound"),
            ResourceKind::Zone => (404, "InvalidZoneId.NotFound"),
            ResourceKind::PlacementGroup => (404, "InvalidDeploymentSetId.NotFound"),
        },
        DomainError::InvalidPassword(_) => (400, "InvalidPassword.Malformed"),
        DomainError::DuplicateKeyName(_) => (400, "KeyPair.AlreadyExist"),
        DomainError::KeyPairNotSupported(_) => (400, "InvalidKeyPair.NotSupported"),
        DomainError::KeyPairInUse(_) => (403, "DependencyViolation.KeyPair"),
        DomainError::StateConflict { .. } => (403, "IncorrectInstanceStatus"),
        DomainError::Restricted { restriction, .. } => match restriction {
            Restriction::Expired | Restriction::Isolating => (403, "InstanceExpiredOrInArrears"),
            Restriction::Security
            | Restriction::Frozen
            | Restriction::Banned
            | Restriction::None => (403, "InstanceLockedForSecurity"),
        },
        DomainError::Unsupported { why, .. } => match why {
            Unsupported::WindowsOs => (403, "OperationDenied.WindowsNotSupportKeyPair"),
            Unsupported::StoppedModeStopCharging => (403, "IncorrectInstanceStatus"),
            _ => (403, "OperationDenied"),
        },
        DomainError::DiskError { .. } => (403, "DiskError"),
        DomainError::Locked { .. } => (403, "OperationDenied.InstanceLocked"),
        DomainError::KmsKey { state, .. } => match state {
            KmsState::Disabled => (403, "InvalidParameter.KMSKeyId.CMKNotEnabled"),
            KmsState::Unauthorized => (403, "InvalidParameter.KMSKeyId.CMKUnauthorized"),
            KmsState::KmsUnauthorized => (403, "InvalidParameter.KMSKeyId.KMSUnauthorized"),
            KmsState::Deleted | KmsState::Enabled => (404, "InvalidParameter.KMSKeyId.NotFound"),
        },
        DomainError::OperationInProgress { .. } => (403, "OperationConflict"),
        DomainError::RateLimited { .. } => (400, "Throttling"),
        DomainError::DryRunOk => {
            return ApiError::new(
                400,
                "DryRunOperation",
                "Request validation has been passed with DryRun flag set.",
            );
        }
        DomainError::QuotaExceeded(overs) => {
            if overs
                .iter()
                .any(|o| o.resource == nubis_core::QuotaResource::KeyPairs)
            {
                (403, "QuotaExceed.KeyPair")
            } else {
                (403, "QuotaExceed.ElasticQuota")
            }
        }
        DomainError::PolicyDenied(_) => (403, "Forbidden.RAM"),
        DomainError::UnsupportedRegion(_) => (404, "InvalidRegionId.NotFound"),
        DomainError::InvalidZone(_) => (404, "InvalidZoneId.NotFound"),
        DomainError::SoldOut { .. } => (403, "OperationDenied.NoStock"),
        // Deployment sets (docs/placement-groups.md): RunInstances' and DeleteDeploymentSet's
        // error tables; the account's quota of sets has no documented code.
        DomainError::GroupQuota { .. } => (403, "QuotaExceed.DeploymentSet"),
        DomainError::GroupFull { .. } => (403, "QuotaExceed.DeploymentSetInstanceQuotaFull"),
        DomainError::GroupNotEmpty(_) => (403, "DependencyViolation.NotEmpty"),
        // Images (docs/images.md): CreateImage's, DeleteImage's and ModifyImageAttribute's
        // error tables.
        DomainError::ImageQuota { .. } => (403, "QuotaExceed.Image"),
        DomainError::ImageInUse(_) => (403, "ImageUsingByInstance"),
        DomainError::ImageNameInUse(_) => (400, "InvalidImageName.Duplicated"),
        // An image whose min_ram the type lacks (a Glance-made image through ECS).
        DomainError::ImageNeedsMemory { .. } => (400, "InvalidParameter.Mismatch"),
        DomainError::ImageState { .. } | DomainError::ImageProtected(_) => {
            (403, "IncorrectImageStatus")
        }
        DomainError::ImageNotOwned(_) => (404, "InvalidImageId.NotFound"),
        DomainError::ImageLimit { .. } => (400, "InvalidParameter"),
        DomainError::Conflict(_) => (409, "OperationConflict"),
        DomainError::Unavailable(_) => (503, "ServiceUnavailable"),
        DomainError::Internal(_) => (500, "InternalError"),
        // ModifyInstanceSpec: "The specified InstanceType does not exist or beyond the
        // permitted range."
        DomainError::SameInstanceType { .. } | DomainError::InstanceTypeNotAllowed { .. } => {
            (400, "InvalidInstanceType.ValueNotSupported")
        }
    };
    let message = match code {
        "IncorrectInstanceStatus" => "The current status of the resource does not support this operation.".to_string(),
        "InstanceLockedForSecurity" => "The specified operation is denied as your instance is locked for security reasons.".to_string(),
        "InstanceExpiredOrInArrears" => {
            "The specified operation is denied as your prepay instance is expired (prepay mode) or in arrears (afterpay mode).".to_string()
        }
        "DiskError" => "IncorrectDiskStatus.".to_string(),
        // The documented messages (CreateKeyPair, RunInstances error tables), then nubis's
        // detail.
        "QuotaExceed.KeyPair" => format!("The key pair quota exceeds. {msg}"),
        "QuotaExceed.ElasticQuota" => {
            format!("No additional quota is available for the specified ECS instance type. {msg}")
        }
        "InvalidInstanceId.NotFound" => "The specified InstanceId does not exist.".to_string(),
        // DeleteImage's error table.
        "ImageUsingByInstance" => "The specified image has been used to create instances. You can use the DescribeInstances API to query these instances, or you can use the force parameter to proceed.".to_string(),
        "InvalidDeploymentSetId.NotFound" => {
            "The specified DeploymentSetId does not exist.".to_string()
        }
        "QuotaExceed.DeploymentSetInstanceQuotaFull" => {
            format!("The instance quota in one deployment set exceeded. {msg}")
        }
        "DependencyViolation.NotEmpty" => {
            "There are still instance(s) in the specified DeploymentSetId.".to_string()
        }
        "OperationDenied.NoStock" => "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.".to_string(),
        "InternalError" => "The request processing has failed due to some unknown error.".to_string(),
        _ => msg,
    };
    ApiError {
        status,
        code: code.to_string(),
        message,
        access_denied: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubis_core::{Action, InstanceState, QuotaOver, QuotaResource};

    /// A request for one more `resource` than its limit of 2 allows.
    fn over(resource: QuotaResource) -> DomainError {
        let over = QuotaOver {
            resource,
            requested: 1,
            used: 2,
            limit: 2,
        };
        DomainError::QuotaExceeded(vec![over])
    }

    #[test]
    fn seed_codes_and_statuses() {
        let id = || "i-aaaaaaaaaaaaaaaaaaaa".to_string();
        let cases = [
            (
                DomainError::StateConflict {
                    id: id(),
                    state: InstanceState::Stopped,
                    action: Action::Reboot,
                },
                403,
                "IncorrectInstanceStatus",
            ),
            (
                DomainError::Restricted {
                    id: id(),
                    restriction: Restriction::Security,
                },
                403,
                "InstanceLockedForSecurity",
            ),
            (
                DomainError::Restricted {
                    id: id(),
                    restriction: Restriction::Expired,
                },
                403,
                "InstanceExpiredOrInArrears",
            ),
            (DomainError::DiskError { id: id() }, 403, "DiskError"),
            (
                DomainError::KmsKey {
                    id: id(),
                    key: "k".into(),
                    state: KmsState::Disabled,
                },
                403,
                "InvalidParameter.KMSKeyId.CMKNotEnabled",
            ),
            (
                DomainError::KmsKey {
                    id: id(),
                    key: "k".into(),
                    state: KmsState::Unauthorized,
                },
                403,
                "InvalidParameter.KMSKeyId.CMKUnauthorized",
            ),
            (
                DomainError::KmsKey {
                    id: id(),
                    key: "k".into(),
                    state: KmsState::KmsUnauthorized,
                },
                403,
                "InvalidParameter.KMSKeyId.KMSUnauthorized",
            ),
            (
                DomainError::KmsKey {
                    id: id(),
                    key: "k".into(),
                    state: KmsState::Deleted,
                },
                404,
                "InvalidParameter.KMSKeyId.NotFound",
            ),
            (
                DomainError::NotFound {
                    kind: ResourceKind::Instance,
                    id: id(),
                },
                404,
                "InvalidInstanceId.NotFound",
            ),
            (DomainError::DryRunOk, 400, "DryRunOperation"),
            (
                DomainError::OperationInProgress {
                    id: id(),
                    running: Action::ResetPassword,
                    same_action: false,
                },
                403,
                "OperationConflict",
            ),
            (DomainError::Internal("x".into()), 500, "InternalError"),
            (
                over(QuotaResource::Instances),
                403,
                "QuotaExceed.ElasticQuota",
            ),
            (over(QuotaResource::KeyPairs), 403, "QuotaExceed.KeyPair"),
        ];
        for (e, status, code) in cases {
            let m = map(e);
            assert_eq!((m.status, m.code.as_str()), (status, code));
        }
    }

    /// Alibaba's names for the test's resources.
    struct AlibabaNames;

    impl nubis_core::Names for AlibabaNames {
        fn instance(&self, canonical: &str) -> Option<String> {
            (canonical == "00000000-0000-0000-0000-00000000000a")
                .then(|| "i-aaaaaaaaaaaaaaaaaaaa".to_string())
        }
        fn key_pair(&self, _id: &str) -> Option<String> {
            Some("mine".into())
        }
    }

    /// Regression (issue 11): messages named instances by their Tencent ID. Errors carry the
    /// canonical ID; rendered with Alibaba's names they name the `i-` ID and the key's name.
    #[test]
    fn messages_name_resources_the_alibaba_way() {
        let e = DomainError::OperationInProgress {
            id: "00000000-0000-0000-0000-00000000000a".into(),
            running: Action::ResetPassword,
            same_action: false,
        }
        .render(&AlibabaNames);
        let m = map(e);
        assert!(
            m.message.contains(
                "ModifyInstanceAttribute is in progress on instance i-aaaaaaaaaaaaaaaaaaaa"
            ),
            "{}",
            m.message
        );
        let m = map(DomainError::KeyPairInUse("skey-1".into()).render(&AlibabaNames));
        assert_eq!(
            m.message,
            "The specified key pair mine is still attached to instances."
        );
    }
}

#[cfg(test)]
mod resize_tests {
    use super::*;

    #[test]
    fn resize_codes() {
        for e in [
            DomainError::SameInstanceType {
                id: "i-1".into(),
                instance_type: "S5.SMALL2".into(),
            },
            DomainError::InstanceTypeNotAllowed {
                id: "i-1".into(),
                instance_type: "BMS5.LARGE8".into(),
            },
        ] {
            let got = map(e);
            assert_eq!(
                (got.status, got.code.as_str()),
                (400, "InvalidInstanceType.ValueNotSupported")
            );
        }
    }
}
