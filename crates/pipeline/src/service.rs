//! What a service supplies, and the one function that runs a request through the pipeline.

use crate::audit::{Draft, Source, collect_resources, now_ms, parameters_text};
use crate::gate::{Gate, Refusal};
use crate::registry::Services;
use nubis_core::Principal;
use serde_json::Value;

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
    /// Who made a request [`Service::authenticate`] refused with `error`, when the refusal is
    /// nonetheless attributable (docs/audit.md): a temporary credential that is identified —
    /// its token binds it, the signature under its secret checks out — but expired. The
    /// trail records such a refusal under that principal; every other refusal (an unknown
    /// key, a bad signature or token) is not authenticated and is not recorded (`None`, the
    /// default).
    fn attributable(
        &self,
        _raw: &Self::Raw<'_>,
        _error: &Self::Error,
    ) -> Option<Authenticated<Self::Params, Self::Replay>> {
        None
    }
    /// The canonical region ID of the service's region name, if this server serves it.
    fn resolve_region(&self, name: &str) -> Option<String>;
    /// The gate's refusal in the service's words.
    fn refuse(&self, refusal: Refusal) -> Self::Error;
    /// Spends the replay token (atomically: of two concurrent copies, on any nodes of a
    /// cluster, one is refused).
    async fn spend(&self, raw: &Self::Raw<'_>, token: Self::Replay) -> Result<(), Self::Error>;
    /// Runs the admitted action.
    async fn call(
        &self,
        handler: &'static Self::Handler,
        ctx: &Ctx,
        params: Self::Params,
    ) -> Result<Self::Output, Self::Error>;
    /// Where the request came from (peer address, user agent), for the audit trail.
    fn source(&self, _raw: &Self::Raw<'_>) -> Source {
        Source::default()
    }
    /// The request's own parameters as JSON, for the audit trail (the pipeline removes the
    /// secrets and finds resource IDs in it).
    fn audit_params(&self, _params: &Self::Params) -> Value {
        Value::Null
    }
    /// IDs of what a mutating action made (RunInstances' instances), added to its event's
    /// resources.
    fn audit_output(&self, _output: &Self::Output, _into: &mut Vec<String>) {}
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
        audit: None,
    };
    let result = run(svc, raw, &request_id, &mut named).await;
    if let (Some(draft), Ok(out)) = (named.audit.as_mut(), &result)
        && draft.read_only == Some(false)
    {
        svc.audit_output(out, &mut draft.resources);
    }
    let Rendered {
        code,
        status,
        content_type,
        headers,
        body,
    } = svc.render(raw, &request_id, &named.action, result);
    let services = svc.services();
    if let (Some(auditor), Some(draft)) = (svc.gate().auditor(), named.audit.take()) {
        auditor
            .record(draft.finish(services.cloud, &request_id, code.clone(), status))
            .await;
    }
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
    /// The audit event's makings, once the request is authenticated (and a trail is kept).
    audit: Option<Draft>,
}

impl Named {
    /// What an authenticated (or attributable) request names, and its audit event's makings
    /// when a trail is kept.
    fn note<S: Service>(
        &mut self,
        svc: &S,
        a: &Authenticated<S::Params, S::Replay>,
        source: Source,
    ) {
        self.action.clone_from(&a.action);
        self.version = Some(a.version.clone());
        if svc.gate().auditor().is_none() {
            return;
        }
        let service = svc.services().by_version(&a.version);
        let params = svc.audit_params(&a.params);
        let mut resources = Vec::new();
        collect_resources(&params, &mut resources);
        self.audit = Some(Draft {
            time_ms: now_ms(),
            principal: a.principal.clone(),
            service: service.map(|r| r.service.to_string()).unwrap_or_default(),
            version: a.version.clone(),
            action: a.action.clone(),
            read_only: service.and_then(|r| r.get(&a.action)).map(|s| !s.mutates),
            region: a.region.clone(),
            resources,
            source,
            parameters: parameters_text(params),
        });
    }
}

async fn run<S: Service>(
    svc: &S,
    raw: &S::Raw<'_>,
    request_id: &str,
    named: &mut Named,
) -> Result<S::Output, S::Error> {
    let mut a = match svc.authenticate(raw) {
        Ok(a) => a,
        Err(e) => {
            if svc.gate().auditor().is_some()
                && let Some(a) = svc.attributable(raw, &e)
            {
                named.note(svc, &a, svc.source(raw));
            }
            return Err(e);
        }
    };
    // Policy conditions on the source address (`qcs:ip`, `acs:SourceIp`) see the peer.
    let source = svc.source(raw);
    a.principal.source_ip = source.peer;
    named.note(svc, &a, source);
    let service = svc.services().by_version(&a.version);
    let registry = service.ok_or_else(|| svc.refuse(Refusal::UnknownVersion(a.version.clone())))?;
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
        .await
        .map_err(|r| svc.refuse(r))?;
    if let Some(token) = a.replay {
        svc.spend(raw, token).await?;
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

    /// The fake's request (version, action) authenticated as `principal`.
    fn as_who(raw: &(&str, &str), principal: Principal) -> Authenticated<(), ()> {
        Authenticated {
            principal,
            version: raw.0.into(),
            action: raw.1.into(),
            region: None,
            params: (),
            replay: None,
        }
    }

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
            match raw.1 {
                "BadSignature" => return Err("SignatureFailure".into()),
                "Expired" => return Err("TokenExpired".into()),
                _ => {}
            }
            Ok(as_who(
                raw,
                Principal {
                    account: "a".into(),
                    user: "u".into(),
                    is_admin: false,
                    sub_user: None,
                    ..Default::default()
                },
            ))
        }
        fn attributable(
            &self,
            raw: &(&str, &str),
            error: &String,
        ) -> Option<Authenticated<(), ()>> {
            (error == "TokenExpired").then(|| {
                as_who(
                    raw,
                    Principal {
                        account: "a".into(),
                        user: "role/session".into(),
                        credential: "tmp-1".into(),
                        ..Default::default()
                    },
                )
            })
        }
        fn resolve_region(&self, _: &str) -> Option<String> {
            None
        }
        fn refuse(&self, refusal: Refusal) -> String {
            refusal.to_string()
        }
        fn source(&self, _: &(&str, &str)) -> Source {
            Source {
                peer: Some(std::net::IpAddr::from([10, 0, 0, 1])),
                user_agent: "ua/1".into(),
            }
        }
        fn audit_params(&self, _: &()) -> Value {
            serde_json::json!({"InstanceIds": ["ins-1"], "Password": "hunter2"})
        }
        fn audit_output(&self, out: &String, into: &mut Vec<String>) {
            into.push(format!("made-by-{out}"));
        }
        async fn spend(&self, _: &Self::Raw<'_>, _: ()) -> Result<(), String> {
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
            let (status, body, code) = match result {
                Ok(b) => (200, b, None),
                Err(e) => (400, e.clone(), Some(e)),
            };
            Rendered {
                code,
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

    /// Keeps what it is given.
    #[derive(Default)]
    struct Trail(std::sync::Mutex<Vec<nubis_core::audit::AuditEvent>>);

    #[async_trait::async_trait]
    impl crate::Auditor for std::sync::Arc<Trail> {
        async fn record(&self, e: nubis_core::audit::AuditEvent) {
            self.0.lock().unwrap().push(e);
        }
    }

    #[tokio::test]
    async fn authenticated_requests_are_recorded_allowed_or_refused() {
        let trail = std::sync::Arc::new(Trail::default());
        let fake = Fake(Gate::new(false).with_auditor(std::sync::Arc::new(trail.clone())));
        let ok = handle(&fake, &("2019-01-16", "AddUser")).await;
        let refused = handle(&fake, &("2019-01-16", "Nope")).await;
        let unknown_version = handle(&fake, &("2099-01-01", "AddUser")).await;
        let _ = handle(&fake, &("2019-01-16", "BadSignature")).await;
        let events = std::mem::take(&mut *trail.0.lock().unwrap());
        assert_eq!(
            events.len(),
            3,
            "a request that fails authentication is not recorded"
        );
        let e = &events[0];
        assert_eq!(e.request_id, ok.request_id);
        assert_eq!(
            (e.cloud.as_str(), e.service.as_str(), e.action.as_str()),
            ("t", "identity", "AddUser")
        );
        assert_eq!(
            (e.error_code.as_deref(), e.status, e.read_only),
            (None, 200, Some(true))
        );
        assert_eq!((e.account.as_str(), e.user.as_str()), ("a", "u"));
        assert_eq!(
            (e.source_ip.as_str(), e.user_agent.as_str()),
            ("10.0.0.1", "ua/1")
        );
        assert_eq!(
            e.resources,
            ["ins-1"],
            "a read-only action's output is not searched"
        );
        assert!(!e.parameters.contains("hunter2") && !e.parameters.contains("Password"));
        assert!(e.parameters.contains("ins-1"));
        let r = &events[1];
        assert_eq!(r.request_id, refused.request_id);
        assert_eq!(
            r.error_code.as_deref(),
            Some("the action `Nope` does not exist")
        );
        assert_eq!((r.status, r.read_only), (400, None));
        let v = &events[2];
        assert_eq!(v.request_id, unknown_version.request_id);
        assert_eq!((v.service.as_str(), v.version.as_str()), ("", "2099-01-01"));
    }

    #[tokio::test]
    async fn an_identified_but_expired_credential_is_recorded_under_its_principal() {
        let trail = std::sync::Arc::new(Trail::default());
        let fake = Fake(Gate::new(false).with_auditor(std::sync::Arc::new(trail.clone())));
        let expired = handle(&fake, &("2019-01-16", "Expired")).await;
        let _ = handle(&fake, &("2019-01-16", "BadSignature")).await;
        assert_eq!(expired.code.as_deref(), Some("TokenExpired"));
        let events = std::mem::take(&mut *trail.0.lock().unwrap());
        assert_eq!(events.len(), 1, "only the attributable refusal: {events:?}");
        let e = &events[0];
        assert_eq!(e.request_id, expired.request_id);
        assert_eq!(
            (e.user.as_str(), e.credential.as_str(), e.action.as_str()),
            ("role/session", "tmp-1", "Expired")
        );
        assert_eq!(
            (e.error_code.as_deref(), e.status),
            (Some("TokenExpired"), 400)
        );
        assert_eq!(e.source_ip, "10.0.0.1");
        // Without a trail nothing is asked.
        let plain = handle(&Fake(Gate::new(false)), &("2019-01-16", "Expired")).await;
        assert_eq!(plain.code.as_deref(), Some("TokenExpired"));
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
