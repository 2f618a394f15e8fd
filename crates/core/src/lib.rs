//! The nubis domain: one fleet, described once. No I/O lives here.
//!
//! Dialects parse a request into a [`Command`]; the engine prepares it and asks [`rules`]
//! whether it is allowed and what it will do (a [`Plan`]), then the dialects translate its
//! [`DomainError`]s into their own codes.
//!
//! Layers, each depending only on those above it: `state` → `op` (the vocabulary of
//! operations) → `model`, `error` → `password`, `catalog`, `keys`, `request` → `rules`.

pub mod allowance;
pub mod audit;
pub mod catalog;
pub mod credentials;
pub mod error;
pub mod events;
pub mod flavors;
pub mod groups;
pub mod hosts;
pub mod ids;
pub mod images;
pub mod inject;
pub mod keys;
pub mod limits;
pub mod metadefs;
pub mod migration;
pub mod model;
pub mod op;
pub mod password;
pub mod request;
pub mod rules;
pub mod select;
pub mod state;

pub use credentials::*;
pub use error::{DomainError, Names, ResourceKind, Unsupported};
pub use inject::{FileRefusal, GuestData, InjectedFile};
pub use model::*;
pub use op::{
    Accept, KmsState, MigratePhase, Outcome, ResizeEnd, Settle, Step, StopMode, WhenRunning,
};
pub use request::{
    ActionRequest, Command, CreateSpec, PasswordHash, Prepared, PublicKey, Raw, Request, Stage,
};
pub use rules::quota::{
    AccountQuota, ItemLimits, ItemQuota, QuotaLimits, QuotaOver, QuotaOverrides, QuotaResource,
    QuotaUsage,
};
pub use rules::{CreatePlan, Effect, MetadataRefusal, Plan, PlanContext};
pub use state::{Action, InstanceState, OpState, Restriction};
