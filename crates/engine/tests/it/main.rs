//! The crate's integration tests as modules of one test binary: one link instead of 12.

mod audit;
mod batch;
mod client_tokens;
mod cluster;
mod credentials;
mod deferred;
mod events;
mod generations;
mod groups;
mod hosts;
mod iam;
mod images;
mod key_pairs;
mod quotas;
mod recovery;
mod snapshots;
mod sts;
mod tenancy;
