//! What a service supplies, and the one function that runs a request through the pipeline.

use crate::gate::{Gate, Refusal};
use crate::registry::Registry;
use nubis_core::Principal;

/// The context every action handler gets.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub principal: Principal,
    pub request_id: String,
    /// The canonical region ID, when the request named one.
    pub region: Option<String>,
    /// The declared action name.
    pub action: &'static str,
}

/// What a service's authentication step yields: who asks, what for, with which parameters.
#[derive(Debug)]
pub struct Authenticated<P, T> {
    pub principal: Principal,
    /// The version and action as the request names them (checked by the gate).
    pub version: String,
    pub action: String,
    /// The region as the request spells it (resolved by the gate).
    pub region: Option<String>,
    pub params: P,
    /// A replay token (nonce, MAC) spent only once the request passed the gate, so that a
    /// throttled or refused request does not burn it.
    pub replay: Option<T>,
}

/// What the listener sends back, logs and counts: the same for every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub request_id: String,
    /// The cloud, the `dialect` label of the request metrics.
    pub cloud: &'static str,
    /// The action as the request named it (logs only: attacker-chosen).
    pub action: String,
    /// The action as a metrics label: a declared name, or `other`.
    pub label: &'static str,
    /// The error code, if the request failed.
    pub code: Option<String>,
    pub status: u16,
    pub content_type: &'static str,
    /// Extra response headers (`X-TC-RequestId`, `Retry-After`, …).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What a service's rendering decides; the pipeline adds the RequestId, the cloud and the
/// action to make the [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The error code, if the request failed.
    pub code: Option<String>,
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// The label for an action that is not declared.
pub const OTHER: &str = "other";

/// One API service on the pipeline: only what differs between services.
#[async_trait::async_trait]
pub trait Service: Send + Sync + 'static {
    /// The request as the listener hands it over.
    type Raw<'a>: Sync
    where
        Self: 'a;
    /// The action's parameters in the service's style (unflattened JSON, a flat map, a body).
    type Params: Send;
    /// The replay token [`Service::spend`] consumes.
    type Replay: Send;
    /// How an action is run (a function pointer in the registry).
    type Handler: Send + Sync + 'static;
    type Output: Send;
    /// The service's error: its code, status and envelope.
    type Error: Send;

    fn registry(&self) -> &'static Registry<Self::Handler>;
    fn gate(&self) -> &Gate;
    /// A new RequestId in the service's format.
    fn request_id(&self) -> String;
    /// The action a request names, read without any check (so even a refused request is
    /// logged with it).
    fn named_action(&self, raw: &Self::Raw<'_>) -> String;
    /// Bounds, credentials, clock window, signature, replay check (not yet spent), parameters.
    fn authenticate(
        &self,
        raw: &Self::Raw<'_>,
    ) -> Result<Authenticated<Self::Params, Self::Replay>, Self::Error>;
    /// The canonical region ID of the service's region name, if this server serves it.
    fn resolve_region(&self, name: &str) -> Option<String>;
    /// The gate's refusal in the service's words.
    fn refuse(&self, refusal: Refusal) -> Self::Error;
    /// Spends the replay token (atomically: of two concurrent copies one is refused).
    fn spend(&self, raw: &Self::Raw<'_>, token: Self::Replay) -> Result<(), Self::Error>;
    /// Runs the admitted action.
    async fn call(
        &self,
        handler: &'static Self::Handler,
        ctx: &Ctx,
        params: Self::Params,
    ) -> Result<Self::Output, Self::Error>;
    /// The envelope: the output or the error, with the RequestId.
    fn render(
        &self,
        raw: &Self::Raw<'_>,
        request_id: &str,
        action: &str,
        result: Result<Self::Output, Self::Error>,
    ) -> Rendered;
}

/// Runs one request through the pipeline: authenticate, admit (version, action, region,
/// rate limit, authorization), spend the replay token, run, render.
pub async fn handle<S: Service>(svc: &S, raw: &S::Raw<'_>) -> Reply {
    let request_id = svc.request_id();
    let mut action = svc.named_action(raw);
    let result = run(svc, raw, &request_id, &mut action).await;
    let Rendered {
        code,
        status,
        content_type,
        headers,
        body,
    } = svc.render(raw, &request_id, &action, result);
    Reply {
        cloud: svc.registry().cloud,
        label: svc.registry().label(&action).unwrap_or(OTHER),
        request_id,
        action,
        code,
        status,
        content_type,
        headers,
        body,
    }
}

async fn run<S: Service>(
    svc: &S,
    raw: &S::Raw<'_>,
    request_id: &str,
    action_out: &mut String,
) -> Result<S::Output, S::Error> {
    let a = svc.authenticate(raw)?;
    action_out.clone_from(&a.action);
    let admitted = svc
        .gate()
        .admit(
            svc.registry(),
            &a.principal,
            &a.version,
            &a.action,
            a.region.as_deref(),
            |r| svc.resolve_region(r),
        )
        .map_err(|r| svc.refuse(r))?;
    if let Some(token) = a.replay {
        svc.spend(raw, token)?;
    }
    let ctx = Ctx {
        principal: a.principal,
        request_id: request_id.to_string(),
        region: admitted.region,
        action: admitted.spec.name,
    };
    svc.call(&admitted.spec.handler, &ctx, a.params).await
}
