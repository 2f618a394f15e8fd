//! The one request pipeline every API service plugs into (docs/architecture.md, "The
//! pipeline").
//!
//! A service (Tencent CVM, Alibaba ECS, Nova, …) declares its actions once in a
//! [`Registry`]; the services of one cloud that share its signature scheme are one
//! [`Services`] set, told apart by the version a request names; dispatch, rate limits, metrics labels, the policy action each needs and the
//! committed catalogue (docs/catalogue/) are derived from it. A request then takes the same
//! steps in every service ([`handle`]): identify and authenticate (the service's scheme:
//! [`Service::authenticate`]), check the version and the action against the registry,
//! resolve the region, apply the per-account per-action rate limit, authorize (the one
//! point policies plug into: [`Authorizer`]), spend the replay token, run the action's
//! handler, render. A service supplies only what differs: its envelope, its error codes, its
//! parameter style.

pub mod audit;
mod gate;
pub mod page;
mod registry;
mod service;
pub mod shapes;

pub use audit::{Auditor, Source};
#[cfg(feature = "fixtures")]
pub use gate::DenyAll;
pub use gate::{Admitted, AllowAll, Authorizer, Denied, DenyDetail, Gate, MfaDenial, Refusal};
pub use registry::{ActionSpec, Column, RegionUse, Registry, Services, spec_names};
pub use service::{Authenticated, Ctx, OTHER, Rendered, Reply, Service, handle};
