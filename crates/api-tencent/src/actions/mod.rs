//! One function per action: parse strictly, call the engine, render. Split by resource:
//! [`catalogue`] (regions, zones, images, instance types), [`launch`] (RunInstances),
//! [`instances`] (describe and operate), [`keypairs`]; [`limits`] holds the documented
//! parameter limits and [`params`] the parsing helpers they share.

mod account;
mod catalogue;
mod groups;
mod images;
mod instances;
mod keypairs;
mod launch;
mod limits;
pub(crate) mod params;
mod reinstall;

use crate::Ctx;
use crate::errors::{ApiError, Codes};
use account::*;
use catalogue::*;
use groups::*;
use images::*;
use instances::*;
use keypairs::*;
use launch::*;
use nubis_engine::Engine;
use nubis_pipeline::{ActionSpec, RegionUse, Registry, Services, spec_names};
use reinstall::*;
use serde_json::{Map, Value};
use std::future::Future;
use std::pin::Pin;

/// How an action runs: parse its parameters, call the engine, render its answer.
pub type Run = for<'a> fn(
    &'a Engine,
    &'a Ctx,
    Map<String, Value>,
) -> Pin<Box<dyn Future<Output = Result<Payload, ApiError>> + Send + 'a>>;

/// What the registry holds for each action besides its declaration: how it runs and the error
/// codes its documented list spells its own way.
#[derive(Debug)]
pub struct Handler {
    pub(crate) run: Run,
    pub codes: Codes,
}

/// The declaration every action starts from: policy `cvm:<Action>` (or `<service>:<Action>`
/// with `action!(service: …)`), 40 requests/s, read-only, no DryRun, region required,
/// [`Codes::DEFAULT`]. The parameters are parsed strictly into `$params` ([`params::parse`])
/// and handed to `$run`; `$run[args]` passes `args` after them (one handler serving sibling
/// actions).
macro_rules! action {
    ($service:ident: $name:literal, $params:ty, $run:path $([$($arg:expr),+])?, $codes:expr) => {{
        ::nubis_pipeline::ActionSpec {
            name: $name,
            rate_limit: 40,
            mutates: false,
            dry_run: false,
            policy: concat!(stringify!($service), ":", $name),
            per_resource: false,
            params: stringify!($params),
            region: ::nubis_pipeline::RegionUse::Required,
            handler: $crate::actions::Handler {
                run: |engine, ctx, params| {
                    Box::pin(async move {
                        let req: $params = $crate::actions::params::parse(params)?;
                        $run(engine, ctx, req $($(, $arg)+)?)
                            .await
                            .map($crate::actions::Payload::from)
                    })
                },
                codes: $codes,
            },
        }
    }};
    ($service:ident: $name:literal, $params:ty, $run:path $([$($arg:expr),+])?) => {
        action!($service: $name, $params, $run $([$($arg),+])?, $crate::errors::Codes::DEFAULT)
    };
    ($name:literal, $params:ty, $run:path $([$($arg:expr),+])?) => {
        action!(cvm: $name, $params, $run $([$($arg),+])?)
    };
    ($name:literal, $params:ty, $run:path $([$($arg:expr),+])?, $codes:expr) => {
        action!(cvm: $name, $params, $run $([$($arg),+])?, $codes)
    };
}
pub(crate) use action;

/// An action of a global service (CAM, STS: docs/identity-wire.md): 20 requests/s per
/// account, any region accepted and ignored (D3).
pub(crate) const fn global(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        rate_limit: 20,
        region: RegionUse::Optional,
        ..spec
    }
}

/// A [`global`] action that changes something.
pub(crate) const fn global_write(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        mutates: true,
        ..global(spec)
    }
}

/// Actions that change something: 10 requests/s (EnterRescueMode and ExitRescueMode: 20).
const fn mutating(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        rate_limit: 10,
        mutates: true,
        ..spec
    }
}

/// An action on instances the request names or lists: policies naming particular instances
/// decide it per instance (the engine asks the principal's guard).
const fn per_instance(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    ActionSpec {
        per_resource: true,
        ..spec
    }
}

/// A mutating action on instances ([`mutating`], [`per_instance`]).
const fn on_instances(spec: ActionSpec<Handler>) -> ActionSpec<Handler> {
    per_instance(mutating(spec))
}

const PASSWORD_CODES: Codes = Codes {
    invalid_password: "InvalidPassword",
    ..Codes::DEFAULT
};
const INTERNAL_SERVER_ERROR: Codes = Codes {
    internal: "InternalServerError",
    ..Codes::DEFAULT
};

/// Every action of the dialect, once; rate limits are the documented per-account quotas
/// (docs/tencent-errors.md).
const SPECS: &[ActionSpec<Handler>] = &[
    ActionSpec {
        rate_limit: 20,
        region: RegionUse::Optional,
        ..action!("DescribeRegions", DescribeRegionsReq, describe_regions)
    },
    ActionSpec {
        rate_limit: 20,
        ..action!("DescribeZones", DescribeRegionsReq, describe_zones)
    },
    action!("DescribeImages", DescribeImagesReq, describe_images),
    ActionSpec {
        dry_run: true,
        ..per_instance(mutating(action!(
            "CreateImage",
            CreateImageReq,
            create_image
        )))
    },
    ActionSpec {
        dry_run: true,
        ..mutating(action!("DeleteImages", DeleteImagesReq, delete_images))
    },
    mutating(action!(
        "ModifyImageAttribute",
        ModifyImageAttributeReq,
        modify_image_attribute
    )),
    action!(
        "DescribeAccountQuota",
        DescribeAccountQuotaReq,
        describe_account_quota
    ),
    action!(
        "DescribeInstanceTypeConfigs",
        FiltersOnly,
        describe_instance_type_configs
    ),
    action!(
        "DescribeZoneInstanceConfigInfos",
        FiltersOnly,
        describe_zone_instance_config_infos
    ),
    ActionSpec {
        dry_run: true,
        ..mutating(action!(
            "RunInstances",
            RunInstancesReq,
            run_instances,
            Codes {
                windows_os: "UnsupportedOperation.KeyPairUnsupportedWindows",
                ..PASSWORD_CODES
            }
        ))
    },
    per_instance(action!(
        "DescribeInstances",
        DescribeInstancesReq,
        describe_instances
    )),
    ActionSpec {
        rate_limit: 10,
        region: RegionUse::Optional,
        ..per_instance(action!(
            "DescribeInstancesOperationLimit",
            OperationLimitReq,
            describe_operation_limit
        ))
    },
    per_instance(action!(
        "DescribeInstancesStatus",
        DescribeStatusReq,
        describe_instances_status
    )),
    on_instances(action!("StartInstances", PowerReq, power[Power::Start])),
    on_instances(action!("StopInstances", PowerReq, power[Power::Stop])),
    on_instances(action!("RebootInstances", PowerReq, power[Power::Reboot])),
    on_instances(action!(
        "TerminateInstances",
        PowerReq,
        power[Power::Terminate]
    )),
    on_instances(action!(
        "ResetInstancesPassword",
        ResetPasswordReq,
        reset_password,
        INTERNAL_SERVER_ERROR
    )),
    on_instances(action!(
        "ResetInstancesType",
        ResetTypeReq,
        reset_instances_type
    )),
    ActionSpec {
        rate_limit: 20,
        ..on_instances(action!(
            "EnterRescueMode",
            EnterRescueReq,
            enter_rescue,
            PASSWORD_CODES
        ))
    },
    ActionSpec {
        rate_limit: 20,
        ..on_instances(action!("ExitRescueMode", ExitRescueReq, exit_rescue))
    },
    on_instances(action!(
        "ResetInstance",
        ResetInstanceReq,
        reset_instance,
        Codes {
            windows_os: "UnsupportedOperation.KeyPairUnsupportedWindows",
            ..PASSWORD_CODES
        }
    )),
    mutating(action!(
        "CreateKeyPair",
        CreateKeyPairReq,
        create_or_import[false]
    )),
    mutating(action!(
        "ImportKeyPair",
        CreateKeyPairReq,
        create_or_import[true]
    )),
    action!("DescribeKeyPairs", DescribeKeyPairsReq, describe_key_pairs),
    mutating(action!(
        "DeleteKeyPairs",
        DeleteKeyPairsReq,
        delete_key_pairs
    )),
    on_instances(action!(
        "AssociateInstancesKeyPairs",
        AssociateReq,
        associate[true],
        INTERNAL_SERVER_ERROR
    )),
    on_instances(action!(
        "DisassociateInstancesKeyPairs",
        AssociateReq,
        associate[false]
    )),
    mutating(action!(
        "CreateDisasterRecoverGroup",
        CreateGroupReq,
        create_group
    )),
    ActionSpec {
        rate_limit: 20,
        ..action!(
            "DescribeDisasterRecoverGroups",
            DescribeGroupsReq,
            describe_groups
        )
    },
    mutating(action!(
        "DeleteDisasterRecoverGroups",
        DeleteGroupsReq,
        delete_groups
    )),
    mutating(action!(
        "ModifyDisasterRecoverGroupAttribute",
        ModifyGroupReq,
        modify_group
    )),
    ActionSpec {
        rate_limit: 20,
        ..action!(
            "DescribeDisasterRecoverGroupQuota",
            GroupQuotaReq,
            describe_group_quota
        )
    },
];

/// The dialect's action registry: dispatch, rate limits, metrics labels and
/// docs/catalogue/tencent-cvm.md all come from it.
pub static REGISTRY: Registry<Handler> = Registry::new("tencent", "cvm", crate::VERSION, SPECS);

/// The Tencent Cloud API services on this listener (TC3 and the legacy signatures), told
/// apart by version: CVM, CloudAudit (CAM and STS join them).
pub static SERVICES: Services<Handler> = Services {
    cloud: "tencent",
    registries: &[
        &REGISTRY,
        &crate::cam::REGISTRY,
        &crate::sts::REGISTRY,
        &crate::cloudaudit::REGISTRY,
    ],
};

/// The names of the served actions, in declaration order.
pub const ACTIONS: &[&str] = &spec_names::<_, { SPECS.len() }>(SPECS);

/// The documented per-second limit of `action` per account (0 for an action that is not
/// served: it is refused before any limit applies).
pub fn rate_limit(action: &str) -> u32 {
    REGISTRY.get(action).map_or(0, |a| a.rate_limit)
}

pub(super) type Out = Result<Map<String, Value>, ApiError>;

/// An action's answer: fields to put next to RequestId, or (for large pages) a JSON object
/// already serialized.
pub enum Payload {
    Map(Map<String, Value>),
    Json(String),
}

impl From<Map<String, Value>> for Payload {
    fn from(m: Map<String, Value>) -> Self {
        Self::Map(m)
    }
}

pub(crate) fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
