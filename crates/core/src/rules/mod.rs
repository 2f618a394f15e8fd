//! Every decision on a request, and the only place these rules live.
//!
//! - [`table`]: which action is allowed in which state, what a delete does, which catalogue
//!   facts forbid an action — exhaustive matches.
//! - [`check`]: a raw request's parameters against its targets (passwords, user names,
//!   images), before anything is hashed.
//! - [`action`]: [`plan`] refuses a request on one instance with the domain error a dialect
//!   translates, or returns the [`Plan`]: the steps an operation runs, what accepting it
//!   changes on the record, how the instance settles when it ends.
//! - [`create`]: [`plan_create`], the same for a create.
//! - [`metadata`]: when an instance's metadata may change.
//! - [`quota`]: whether a create fits the account's quotas.
//! - [`reset`]: the operator's state reset and the reclaim of soft-deleted instances.

pub mod action;
pub mod check;
pub mod create;
pub mod metadata;
pub mod quota;
pub mod reset;
pub mod table;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixture;

pub use action::{Effect, Plan, PlanContext, default_user, plan};
pub use check::check_request;
pub use create::{CreatePlan, plan_create};
pub use metadata::{MetadataRefusal, metadata_change, server_tags_change};
pub use reset::{ResetTo, reclaim_due, reset_state};
pub use table::{Deletion, allowed, deletion};
