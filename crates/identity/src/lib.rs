//! nubis's identity model, its pure core: accounts, principals, credentials and MFA devices
//! (`model`), policies in each cloud's grammar compiled to one form (`policy`), the one
//! evaluation (`eval`) and TOTP (`totp`). No I/O, no async, no store: the store, the
//! pipeline's `Authorizer` and the CAM/RAM/STS/Keystone APIs build on it (docs/identity.md).

pub mod eval;
pub mod model;
pub mod policy;
pub mod resource;
pub mod secret;
pub mod totp;

pub use eval::{
    Allowed, AuthzRequest, Decision, Denied, MfaSource, OperationProtection, RequestContext,
    StatementRef, evaluate, names_resources,
};
pub use model::{
    Account, Credential, KeystoneIdentity, KeystoneScope, MfaDevice, Principal, PrincipalKind,
};
pub use policy::{CompiledPolicy, Effect, Grammar, PolicyError};
pub use secret::Secret;
