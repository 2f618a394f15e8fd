//! The crate's integration tests as modules of one test binary: one link instead of 7.

mod catalogue;
mod coverage;
mod hostile;
mod keystone_admin;
mod metadefs;
mod nova_operator;
mod param_limits;
mod wire;
