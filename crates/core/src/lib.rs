//! The nubis domain: one fleet, described once. No I/O lives here.
//!
//! Dialects ask this crate whether an action is allowed and what it will do (a [`Plan`]),
//! then translate its [`DomainError`]s into their own codes.

pub mod allowance;
pub mod catalog;
pub mod error;
pub mod ids;
pub mod limits;
pub mod model;
pub mod password;
pub mod rules;
pub mod state;

pub use error::{DomainError, ResourceKind, Unsupported};
pub use model::*;
pub use rules::{
    Accept, ActionRequest, KmsState, MetadataRefusal, MigratePhase, Plan, PlanContext, Step,
    StopMode, WhenRunning,
};
pub use state::{Action, InstanceState, OpState, Restriction};
