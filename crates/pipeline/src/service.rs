//! What a service supplies, and the one function that runs a request through the pipeline.

use crate::gate::{Gate, Refusal};
use crate::registry::Services;
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

    /// The cloud's services on this signature scheme; the request's version picks one.
    fn services(&self) -> &'static Services<Self::Handler>;
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
    let mut named = Named {
        action: svc.named_action(raw),
        version: None,
    };
    let result = run(svc, raw, &request_id, &mut named).await;
    let Rendered {
        code,
        status,
        content_type,
        headers,
        body,
    } = svc.render(raw, &request_id, &named.action, result);
    let services = svc.services();
    Reply {
        cloud: services.cloud,
        label: services
            .label(named.version.as_deref(), &named.action)
            .unwrap_or(OTHER),
        request_id,
        action: named.action,
        code,
        status,
        content_type,
        headers,
        body,
    }
}

/// What the request names, as far as it was read: for the log line and the metrics label.
struct Named {
    action: String,
    version: Option<String>,
}

async fn run<S: Service>(
    svc: &S,
    raw: &S::Raw<'_>,
    request_id: &str,
    named: &mut Named,
) -> Result<S::Output, S::Error> {
    let a = svc.authenticate(raw)?;
    named.action.clone_from(&a.action);
    named.version = Some(a.version.clone());
    let registry = svc
        .services()
        .by_version(&a.version)
        .ok_or_else(|| svc.refuse(Refusal::UnknownVersion(a.version.clone())))?;
    let admitted = svc
        .gate()
        .admit(
            registry,
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
        principal: Principal {
            guard: admitted.guard,
            ..a.principal
        },
        request_id: request_id.to_string(),
        region: admitted.region,
        action: admitted.spec.name,
    };
    svc.call(&admitted.spec.handler, &ctx, a.params).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ActionSpec, RegionUse, Registry};

    const fn spec(name: &'static str, handler: &'static str) -> ActionSpec<&'static str> {
        ActionSpec {
            name,
            rate_limit: 0,
            mutates: false,
            dry_run: false,
            policy: "t:A",
            per_resource: false,
            params: "()",
            region: RegionUse::Optional,
            handler,
        }
    }

    static COMPUTE: Registry<&'static str> = Registry {
        cloud: "t",
        service: "compute",
        version: "2017-03-12",
        actions: &[spec("Describe", "compute.describe")],
    };
    static IDENTITY: Registry<&'static str> = Registry {
        cloud: "t",
        service: "identity",
        version: "2019-01-16",
        actions: &[
            spec("Describe", "identity.describe"),
            spec("AddUser", "identity.add"),
        ],
    };
    static SERVICES: Services<&'static str> = Services {
        cloud: "t",
        registries: &[&COMPUTE, &IDENTITY],
    };

    /// A service whose raw request is (version, action) and whose handlers return their tag.
    struct Fake(Gate);

    #[async_trait::async_trait]
    impl Service for Fake {
        type Raw<'a> = (&'a str, &'a str);
        type Params = ();
        type Replay = ();
        type Handler = &'static str;
        type Output = String;
        type Error = String;

        fn services(&self) -> &'static Services<&'static str> {
            &SERVICES
        }
        fn gate(&self) -> &Gate {
            &self.0
        }
        fn request_id(&self) -> String {
            "rid".into()
        }
        fn named_action(&self, raw: &(&str, &str)) -> String {
            raw.1.into()
        }
        fn authenticate(&self, raw: &(&str, &str)) -> Result<Authenticated<(), ()>, String> {
            Ok(Authenticated {
                principal: Principal {
                    account: "a".into(),
                    user: "u".into(),
                    is_admin: false,
                    sub_user: None,
                    ..Default::default()
                },
                version: raw.0.into(),
                action: raw.1.into(),
                region: None,
                params: (),
                replay: None,
            })
        }
        fn resolve_region(&self, _: &str) -> Option<String> {
            None
        }
        fn refuse(&self, refusal: Refusal) -> String {
            refusal.to_string()
        }
        fn spend(&self, _: &(&str, &str), _: ()) -> Result<(), String> {
            Ok(())
        }
        async fn call(
            &self,
            handler: &'static &'static str,
            _: &Ctx,
            _: (),
        ) -> Result<String, String> {
            Ok((*handler).to_string())
        }
        fn render(
            &self,
            _: &(&str, &str),
            _: &str,
            _: &str,
            result: Result<String, String>,
        ) -> Rendered {
            let (status, body) = match result {
                Ok(b) => (200, b),
                Err(e) => (400, e),
            };
            Rendered {
                code: None,
                status,
                content_type: "text/plain",
                headers: Vec::new(),
                body: body.into_bytes(),
            }
        }
    }

    async fn ask(version: &str, action: &str) -> (u16, String, &'static str) {
        let r = handle(&Fake(Gate::new(false)), &(version, action)).await;
        assert_eq!(r.cloud, "t");
        (r.status, String::from_utf8(r.body).unwrap(), r.label)
    }

    #[tokio::test]
    async fn the_version_picks_the_service() {
        assert_eq!(
            ask("2017-03-12", "Describe").await,
            (200, "compute.describe".into(), "Describe")
        );
        assert_eq!(
            ask("2019-01-16", "Describe").await,
            (200, "identity.describe".into(), "Describe")
        );
        assert_eq!(
            ask("2019-01-16", "AddUser").await,
            (200, "identity.add".into(), "AddUser")
        );
        // An action of another service of the cloud is unknown under this version, and is
        // not a label of it.
        assert_eq!(
            ask("2017-03-12", "AddUser").await,
            (400, "the action `AddUser` does not exist".into(), OTHER)
        );
        // An unknown version is refused before the action is looked at; the label falls
        // back to any service that declares the name.
        assert_eq!(
            ask("2099-01-01", "AddUser").await,
            (
                400,
                "the API version `2099-01-01` does not exist".into(),
                "AddUser"
            )
        );
        assert_eq!(
            ask("2099-01-01", "Nope").await,
            (
                400,
                "the API version `2099-01-01` does not exist".into(),
                OTHER
            )
        );
    }

    #[test]
    fn services_know_their_versions() {
        assert!(SERVICES.serves("2019-01-16"));
        assert!(!SERVICES.serves(""));
        assert_eq!(
            SERVICES.versions().collect::<Vec<_>>(),
            ["2017-03-12", "2019-01-16"]
        );
        assert_eq!(SERVICES.label(Some("2017-03-12"), "AddUser"), None);
        assert_eq!(SERVICES.label(None, "AddUser"), Some("AddUser"));
    }
}
