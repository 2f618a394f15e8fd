//! The checks every authenticated request passes in the same order, whatever its service:
//! version, action, region, rate limit, authorization.

use crate::registry::{ActionSpec, RegionUse, Registry};
use nubis_auth::ratelimit::RateLimiter;
use nubis_core::{Principal, ResourceGuard};

/// Why the gate refused a request; each service renders it with its own code and envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request names a version the service does not serve.
    #[error("the API version `{0}` does not exist")]
    UnknownVersion(String),
    /// The request names an action the registry does not declare.
    #[error("the action `{0}` does not exist")]
    UnknownAction(String),
    /// The action needs a region and the request names none.
    #[error("the region is required")]
    MissingRegion,
    /// The request names a region this server does not serve.
    #[error("the region `{0}` is not supported")]
    UnknownRegion(String),
    /// The account is over the action's per-second quota.
    #[error("the request rate of {0} exceeds the limit")]
    Throttled(&'static str),
    /// A policy refused the action.
    #[error("{0}")]
    Denied(Denied),
}

/// A refusal by the [`Authorizer`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{principal} is not allowed to perform {policy_action}")]
pub struct Denied {
    pub principal: String,
    pub policy_action: &'static str,
    /// What the dialects need to explain the refusal (Alibaba's `AccessDeniedDetail`).
    pub detail: DenyDetail,
}

/// Why and to whom a refusal happened, in the cloud's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyDetail {
    /// A `Deny` statement matched (otherwise nothing allowed the action: implicit deny).
    pub explicit: bool,
    /// The principal's account as the cloud numbers it (Alibaba account ID, Tencent owner
    /// UIN); empty when unknown.
    pub owner_id: String,
    /// `SubUser`, `AssumedRoleUser` or empty (Alibaba's `AuthPrincipalType`).
    pub principal_type: &'static str,
    /// The resource the decision was about (the service-level name at the gate).
    pub resource: String,
    /// The refusal is about MFA (Tencent `UnauthorizedOperation.MFANotFound` /
    /// `.MFAExpired`), not a policy.
    pub mfa: MfaDenial,
}

/// Whether a refusal asks for MFA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MfaDenial {
    /// A policy refusal.
    #[default]
    None,
    /// MFA is needed and the credential has none.
    NotFound,
    /// The credential's MFA authentication is older than allowed.
    Expired,
}

/// The one authorization point of the pipeline. Identity and policies (CAM, RAM, Keystone)
/// plug in here; until then every authenticated principal is allowed ([`AllowAll`]).
pub trait Authorizer: Send + Sync {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        region: Option<&str>,
    ) -> Result<(), Denied>;

    /// [`Authorizer::authorize`] for an action that may be decided per resource:
    /// `per_resource` says the action checks every instance it touches against the
    /// principal's [`ResourceGuard`] (its registry entry's `per_resource`). An authorizer
    /// whose policies name particular instances returns the guard that decides them; the
    /// gate hands it to the action with the principal. By default the action-level decision
    /// covers every resource.
    fn authorize_scoped(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        region: Option<&str>,
        per_resource: bool,
    ) -> Result<Option<ResourceGuard>, Denied> {
        let _ = per_resource;
        self.authorize(principal, policy_action, region)
            .map(|()| None)
    }
}

/// Allows everything an authenticated principal asks for.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &Principal, _: &'static str, _: Option<&str>) -> Result<(), Denied> {
        Ok(())
    }
}

/// Denies everything and records the policy actions it was asked about (clones share the
/// record, so a test keeps one while the gate owns another). For tests (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
#[derive(Clone, Default)]
pub struct DenyAll(std::sync::Arc<std::sync::Mutex<Vec<&'static str>>>);

#[cfg(any(test, feature = "fixtures"))]
impl DenyAll {
    /// The policy action asked about last, taken off the record.
    pub fn pop(&self) -> Option<&'static str> {
        self.asked().pop()
    }

    /// Whether no policy action is left on the record.
    pub fn is_empty(&self) -> bool {
        self.asked().is_empty()
    }

    fn asked(&self) -> std::sync::MutexGuard<'_, Vec<&'static str>> {
        // A test that panicked while holding the lock has failed already; the record stays
        // readable for the assertions that follow.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(any(test, feature = "fixtures"))]
impl Authorizer for DenyAll {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        _: Option<&str>,
    ) -> Result<(), Denied> {
        self.asked().push(policy_action);
        Err(Denied {
            principal: principal.user.clone(),
            policy_action,
            detail: DenyDetail::default(),
        })
    }
}

/// What passed the gate: the action's declaration, the canonical region and the guard of
/// policies that decide per instance ([`Authorizer::authorize_scoped`]).
#[derive(Debug)]
pub struct Admitted<H: 'static> {
    pub spec: &'static ActionSpec<H>,
    pub region: Option<String>,
    pub guard: Option<ResourceGuard>,
}

/// The per-service state the checks need: the rate limiter and the authorizer; and where
/// the audit trail goes, if anywhere.
pub struct Gate {
    limiter: RateLimiter,
    authorizer: Box<dyn Authorizer>,
    auditor: Option<std::sync::Arc<dyn crate::Auditor>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate; `rate_limits: false` turns quotas off (benchmarks, `NUBIS_RATE_LIMITS=off`).
    pub fn new(rate_limits: bool) -> Self {
        Self {
            limiter: RateLimiter::new(rate_limits),
            authorizer: Box::new(AllowAll),
            auditor: None,
        }
    }

    /// Count rate limits in the cluster's windows (a shared store, docs/postgres.md).
    pub fn with_shared_limits(
        mut self,
        shared: std::sync::Arc<dyn nubis_auth::ratelimit::SharedWindows>,
    ) -> Self {
        self.limiter = self.limiter.with_shared(shared);
        self
    }

    /// Record every authenticated request with `auditor` (docs/audit.md).
    pub fn with_auditor(mut self, auditor: std::sync::Arc<dyn crate::Auditor>) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// The audit trail's recorder, if one is installed.
    pub fn auditor(&self) -> Option<&dyn crate::Auditor> {
        self.auditor.as_deref()
    }

    /// Use `authorizer` instead of [`AllowAll`].
    pub fn with_authorizer(mut self, authorizer: impl Authorizer + 'static) -> Self {
        self.authorizer = Box::new(authorizer);
        self
    }

    /// The checks, in order: the version (`want_version` is what the request named), the
    /// action, the region (`resolve` maps the service's region name to the canonical ID), the
    /// rate limit, the authorization. Nothing is spent on a refused request except the rate
    /// budget of a request refused by authorization (as the clouds count it).
    pub async fn admit<H>(
        &self,
        registry: &'static Registry<H>,
        principal: &Principal,
        version: &str,
        action: &str,
        region: Option<&str>,
        resolve: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Admitted<H>, Refusal> {
        self.admit_with(
            registry,
            principal,
            version,
            action,
            region,
            resolve,
            &*self.authorizer,
        )
        .await
    }

    /// [`Gate::admit`] with `authorizer` instead of the gate's own, for a service whose
    /// credentials come with the request (Keystone: the token's roles).
    #[allow(clippy::too_many_arguments)] // admit's arguments plus the authorizer
    pub async fn admit_with<H>(
        &self,
        registry: &'static Registry<H>,
        principal: &Principal,
        version: &str,
        action: &str,
        region: Option<&str>,
        resolve: impl FnOnce(&str) -> Option<String>,
        authorizer: &dyn Authorizer,
    ) -> Result<Admitted<H>, Refusal> {
        if !registry.version.is_empty() && version != registry.version {
            return Err(Refusal::UnknownVersion(version.to_string()));
        }
        let spec = registry
            .get(action)
            .ok_or_else(|| Refusal::UnknownAction(action.to_string()))?;
        let region = match region.filter(|r| !r.is_empty()) {
            None if spec.region == RegionUse::Required => return Err(Refusal::MissingRegion),
            None => None,
            Some(r) => Some(resolve(r).ok_or_else(|| Refusal::UnknownRegion(r.to_string()))?),
        };
        self.limiter
            .admit(&principal.account, spec.name, spec.rate_limit)
            .await
            .map_err(|_| Refusal::Throttled(spec.name))?;
        let guard = authorizer
            .authorize_scoped(principal, spec.policy, region.as_deref(), spec.per_resource)
            .map_err(Refusal::Denied)?;
        Ok(Admitted {
            spec,
            region,
            guard,
        })
    }

    /// The rate limit alone, for services whose operations are not all in a registry yet.
    pub async fn throttle(
        &self,
        account: &str,
        action: &'static str,
        per_second: u32,
    ) -> Result<(), Refusal> {
        self.limiter
            .admit(account, action, per_second)
            .await
            .map_err(|_| Refusal::Throttled(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn spec(name: &'static str, region: RegionUse) -> ActionSpec<()> {
        ActionSpec {
            name,
            rate_limit: 2,
            mutates: false,
            dry_run: false,
            policy: "svc:Act",
            per_resource: false,
            params: "()",
            region,
            handler: (),
        }
    }

    static REG: Registry<()> = Registry {
        cloud: "test",
        service: "svc",
        version: "v1",
        actions: &[
            spec("Req", RegionUse::Required),
            spec("Opt", RegionUse::Optional),
            spec("Late", RegionUse::RequiredByAction),
        ],
    };

    fn alice() -> Principal {
        Principal {
            account: "alice".into(),
            user: "alice".into(),
            is_admin: false,
            sub_user: None,
            ..Default::default()
        }
    }

    fn resolve(r: &str) -> Option<String> {
        (r == "here").then(|| "canonical".to_string())
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn checks_run_in_order() {
        let gate = Gate::new(true);
        let p = alice();
        let admit = |v: &str, a: &str, r: Option<&str>| {
            block_on(gate.admit(&REG, &p, v, a, r, resolve)).map(|a| a.region)
        };
        assert_eq!(
            admit("v2", "Nope", None),
            Err(Refusal::UnknownVersion("v2".into()))
        );
        assert_eq!(
            admit("v1", "Nope", None),
            Err(Refusal::UnknownAction("Nope".into()))
        );
        assert_eq!(admit("v1", "Req", None), Err(Refusal::MissingRegion));
        assert_eq!(admit("v1", "Req", Some("")), Err(Refusal::MissingRegion));
        assert_eq!(
            admit("v1", "Opt", Some("there")),
            Err(Refusal::UnknownRegion("there".into()))
        );
        assert_eq!(admit("v1", "Opt", None), Ok(None));
        // The action refuses a missing region itself, after the rate limit.
        assert_eq!(admit("v1", "Late", None), Ok(None));
        assert_eq!(
            admit("v1", "Late", Some("there")),
            Err(Refusal::UnknownRegion("there".into()))
        );
        assert_eq!(
            admit("v1", "Req", Some("here")),
            Ok(Some("canonical".into()))
        );
        // Quota 2/s per (account, action): the third admitted call in the same instant is
        // throttled (the refusals above spent nothing).
        assert_eq!(
            admit("v1", "Req", Some("here")),
            Ok(Some("canonical".into()))
        );
        assert_eq!(
            admit("v1", "Req", Some("here")),
            Err(Refusal::Throttled("Req"))
        );
        assert_eq!(admit("v1", "Opt", None), Ok(None));
        assert_eq!(admit("v1", "Opt", None), Err(Refusal::Throttled("Opt")));
    }

    #[test]
    fn the_authorizer_is_asked_with_the_policy_action() {
        let asked = DenyAll::default();
        let gate = Gate::new(false).with_authorizer(asked.clone());
        let e = block_on(gate.admit(&REG, &alice(), "v1", "Opt", None, resolve)).unwrap_err();
        assert_eq!(
            e,
            Refusal::Denied(Denied {
                principal: "alice".into(),
                policy_action: "svc:Act",
                detail: DenyDetail::default(),
            })
        );
        assert_eq!(e.to_string(), "alice is not allowed to perform svc:Act");
        assert_eq!(asked.pop(), Some("svc:Act"));
        assert!(asked.is_empty());
        // A per-request authorizer replaces the gate's own.
        let admitted =
            block_on(gate.admit_with(&REG, &alice(), "v1", "Opt", None, resolve, &AllowAll));
        assert!(admitted.is_ok());
    }
}
