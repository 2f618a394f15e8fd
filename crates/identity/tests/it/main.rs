//! The crate's integration tests as modules of one test binary: one link instead of 3.

mod eval;
mod grammars;
mod props;
