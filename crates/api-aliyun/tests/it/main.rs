//! The crate's integration tests as modules of one test binary: one link instead of 9.

mod actiontrail;
mod catalogue;
mod coverage;
mod every_action;
mod hostile;
mod param_limits;
mod ram;
mod revoked_keys;
mod sts_catalogue;
