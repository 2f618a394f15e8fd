//! The crate's integration tests as modules of one test binary: one link instead of 10.

mod cam;
mod catalogue;
mod cloudaudit;
mod coverage;
mod every_action;
mod hostile;
mod legacy;
mod operation_limit;
mod param_limits;
mod revoked_keys;
mod sts_catalogue;
