#![recursion_limit = "256"]
//! Alibaba Cloud ECS RPC API (2014-05-26): parse, verify, translate. No rule about states,
//! locks or passwords lives here; the engine and core decide, this crate renders.

mod actions;
pub mod actiontrail;
pub mod errors;
pub mod params;
pub mod ram;
pub mod render;
pub mod sts;

pub use actions::{ACTIONS, Handler, REGISTRY, SERVICES};
use errors::ApiError;
use nubis_auth::aliyun::{self as sig, AliyunAuth, NonceCache};
use nubis_auth::bounds::{self, PairLimits};
use nubis_core::{Principal, catalog};
use nubis_engine::Engine;
pub use nubis_pipeline::Reply;
use nubis_pipeline::{Authenticated, Authorizer, Gate, Refusal, Rendered, Service};
use serde_json::{Map, Value};

pub const VERSION: &str = "2014-05-26";
pub const HOST_ID: &str = "ecs.nubis.local";

/// Regions the API knows; only configured ones are served.
pub const KNOWN_REGIONS: &[(&str, &str)] = &[
    ("cn-hangzhou", "华东1（杭州）"),
    ("cn-shanghai", "华东2（上海）"),
    ("cn-beijing", "华北2（北京）"),
    ("cn-shenzhen", "华南1（深圳）"),
    ("cn-hongkong", "中国香港"),
    ("ap-southeast-1", "新加坡"),
];

/// An action's per-account limit (requests per second) as [`REGISTRY`] declares it; 0 for
/// an undeclared name.
pub fn rate_limit(action: &str) -> u32 {
    REGISTRY.get(action).map_or(0, |a| a.rate_limit)
}

/// Shape limits on query/form parameters, checked before authentication (docs/hostile-input.md).
/// The largest legitimate request (RunInstances with 16 data disks, 20 tags, network
/// interfaces) has a few hundred parameters, names under 64 bytes with at most 4 parts, and
/// values up to 32 KB (base64 UserData); every limit is at least twice that.
pub const PAIR_LIMITS: PairLimits = PairLimits {
    max_pairs: 1000,
    max_name_bytes: 256,
    max_value_bytes: 64 * 1024,
    max_segments: 8,
};

/// Parameters every RPC request may carry besides the action's own.
const COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "Signature",
    "SecurityToken",
];

/// A request as the listener hands it over: its parts (method, path, lower-case headers,
/// body, the peer address; the Host header and raw query are informational: the parameters
/// are the decoded `query` and `form`), and the time it arrived.
pub struct RawRequest<'a> {
    pub http: nubis_auth::HttpRequestParts<'a>,
    /// Decoded query parameters, in order.
    pub query: &'a [(String, String)],
    /// Decoded form-body parameters, in order (empty unless form-encoded).
    pub form: &'a [(String, String)],
    pub now: i64,
}

/// The request's parts are read as `req.method`, `req.headers`, ….
impl<'a> std::ops::Deref for RawRequest<'a> {
    type Target = nubis_auth::HttpRequestParts<'a>;
    fn deref(&self) -> &nubis_auth::HttpRequestParts<'a> {
        &self.http
    }
}

/// A request on its way through the pipeline: the listener's parts and all its parameters
/// (the query, then the form body).
pub struct Incoming<'a> {
    req: RawRequest<'a>,
    all: Vec<(String, String)>,
}

/// The SignatureNonce a request spends once it is admitted.
pub struct Nonce {
    access_key_id: String,
    nonce: String,
    timestamp: i64,
}

pub(crate) struct Ctx {
    pub principal: Principal,
    pub request_id: String,
    pub region: Option<String>,
    /// This server's public base URL (`--public-url`), for URLs that point back at it; never
    /// the request's Host header.
    pub public_url: String,
}

use nubis_auth::header;

/// Is this request Alibaba's? (`x-acs-action`, or `Action` and a `Version` one of [`SERVICES`] serves.)
pub fn claims(headers: &[(String, String)], params: &[(String, String)]) -> bool {
    header(headers, "x-acs-action").is_some()
        || (params.iter().any(|(k, _)| k == "Action")
            && params
                .iter()
                .any(|(k, v)| k == "Version" && SERVICES.serves(v)))
}

/// What [`parse_request`] reads off a request before any key is looked up.
#[derive(Debug)]
pub struct Parsed {
    pub auth: AliyunAuth,
    pub action: String,
    pub version: String,
}

/// RAM's denial detail (docs/identity-wire.md §6, D11). `EncodedDiagnosticMessage` is
/// opaque to clients: nubis puts base64 of its own reason there.
fn access_denied_detail(d: &nubis_pipeline::Denied) -> Value {
    use base64::Engine as _;
    let reason = serde_json::json!({
        "action": d.policy_action,
        "resource": d.detail.resource,
        "explicit": d.detail.explicit,
    });
    serde_json::json!({
        "PolicyType": "AccountLevelIdentityBasedPolicy",
        "AuthPrincipalOwnerId": d.detail.owner_id,
        "EncodedDiagnosticMessage": base64::engine::general_purpose::STANDARD.encode(reason.to_string()),
        "AuthPrincipalType": d.detail.principal_type,
        "AuthPrincipalDisplayName": d.principal,
        "NoPermissionType": if d.detail.explicit { "ExplicitDeny" } else { "ImplicitDeny" },
        "AuthAction": d.policy_action,
    })
}

fn shape_err(e: bounds::ShapeError) -> ApiError {
    ApiError::new(400, "InvalidParameter", e.to_string())
}

/// The action and version a request names: `x-acs-action`/`x-acs-version` for ACS3, the
/// `Action`/`Version` parameters otherwise.
pub fn action_and_version(
    headers: &[(String, String)],
    all: &[(String, String)],
) -> (String, String) {
    let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if header(headers, "authorization").is_some_and(|a| a.starts_with("ACS3-")) {
        (
            header(headers, "x-acs-action")
                .unwrap_or_default()
                .to_string(),
            header(headers, "x-acs-version")
                .unwrap_or_default()
                .to_string(),
        )
    } else {
        (
            get("Action").unwrap_or_default(),
            get("Version").unwrap_or_default(),
        )
    }
}

/// Everything done to a request before its AccessKeyId is looked up, callable without an
/// engine (fuzz entry point): the shape limits ([`PAIR_LIMITS`]) on the query and the form
/// body, then the signature parameters/headers ([`sig::parse`], nonce shape included), the
/// action and the version. `all` is the query followed by the form parameters.
pub fn parse_request(req: &RawRequest<'_>, all: &[(String, String)]) -> Result<Parsed, ApiError> {
    if req.method != "GET" && req.method != "POST" {
        return Err(ApiError::new(
            400,
            "UnsupportedHTTPMethod",
            format!("HTTP method {} is not supported", req.method),
        ));
    }
    bounds::check_pairs(req.query, &PAIR_LIMITS).map_err(shape_err)?;
    bounds::check_pairs(req.form, &PAIR_LIMITS).map_err(shape_err)?;
    if req.query.len() + req.form.len() > PAIR_LIMITS.max_pairs {
        return Err(shape_err(bounds::ShapeError::TooManyParameters {
            max: PAIR_LIMITS.max_pairs,
        }));
    }
    let (action, version) = action_and_version(req.headers, all);
    let auth = sig::parse(all, req.headers).map_err(auth_err)?;
    Ok(Parsed {
        auth,
        action,
        version,
    })
}

pub struct AliyunApi {
    engine: Engine,
    gate: Gate,
    nonces: NonceCache,
    public_url: String,
}

/// The base of URLs handed out when no `--public-url` is given.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// An STS credential's refusal (D5).
fn temp_err(e: nubis_engine::TempRefusal) -> ApiError {
    use nubis_engine::TempRefusal as T;
    match e {
        T::Unknown => ApiError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ),
        T::MissingToken => ApiError::new(
            400,
            "MissingSecurityToken",
            "SecurityToken is mandatory for this action.",
        ),
        T::Malformed => ApiError::new(
            400,
            "InvalidSecurityToken.Malformed",
            "Specified SecurityToken is malformed.",
        ),
        T::Mismatch => ApiError::new(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        ),
        T::Expired => ApiError::new(
            403,
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ),
    }
}

fn auth_err(e: sig::AuthError) -> ApiError {
    ApiError::new(e.http_status(), e.code(), e.message())
}

impl AliyunApi {
    /// [`Service::authenticate`]; with `expired_ok`, an expired STS credential whose token
    /// binds it is checked on (for the trail's attribution only: the `bool` says so) instead
    /// of refused.
    fn authenticate_as(
        &self,
        raw: &Incoming<'_>,
        expired_ok: bool,
    ) -> Result<(Authenticated<params::Params, Nonce>, bool), ApiError> {
        let mut expired = false;
        let (req, all) = (&raw.req, raw.all.as_slice());
        let Parsed {
            auth,
            action,
            version,
        } = parse_request(req, all)?;
        let (principal, secret) = match self.engine.lookup_access_key(auth.access_key_id()) {
            nubis_engine::KeyLookup::Active(p, s) => (*p, s),
            nubis_engine::KeyLookup::Disabled => {
                return Err(ApiError::new(
                    400,
                    "InvalidAccessKeyId.Inactive",
                    "Specified access key is disabled.",
                ));
            }
            nubis_engine::KeyLookup::Unknown
                if self.engine.is_temp_credential(auth.access_key_id()) =>
            {
                // An STS credential's token: `SecurityToken` (RPC v1, signed) or
                // `x-acs-security-token` (ACS3, signed), D5.
                let token = match &auth {
                    AliyunAuth::V1 { .. } => all
                        .iter()
                        .find(|(k, _)| k == "SecurityToken")
                        .map(|(_, v)| v.as_str()),
                    AliyunAuth::V3 { .. } => {
                        if header(req.headers, "x-acs-accesskey-id")
                            .is_some_and(|k| k != auth.access_key_id())
                        {
                            return Err(temp_err(nubis_engine::TempRefusal::Mismatch));
                        }
                        header(req.headers, "x-acs-security-token")
                    }
                };
                let id = auth.access_key_id();
                match self
                    .engine
                    .temp_credential(id, token, req.now.saturating_mul(1000))
                {
                    Ok(found) => found,
                    Err(nubis_engine::TempRefusal::Expired) if expired_ok => {
                        expired = true;
                        self.engine
                            .expired_temp_credential(id, token)
                            .ok_or(temp_err(nubis_engine::TempRefusal::Expired))?
                    }
                    Err(e) => return Err(temp_err(e)),
                }
            }
            nubis_engine::KeyLookup::Unknown => {
                return Err(ApiError::new(
                    404,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                ));
            }
        };
        let ts = sig::parse_timestamp(auth.timestamp()).map_err(auth_err)?;
        sig::check_timestamp(ts, req.now).map_err(auth_err)?;
        match &auth {
            AliyunAuth::V1 { .. } => {
                sig::verify_v1(req.method, all, &auth, &secret).map_err(auth_err)?
            }
            AliyunAuth::V3 { .. } => sig::verify_v3(
                req.method,
                req.path,
                req.query,
                req.headers,
                req.body,
                &auth,
                &secret,
            )
            .map_err(auth_err)?,
        }
        self.nonces
            .is_used(auth.access_key_id(), auth.nonce(), req.now)
            .map_err(|e| auth_err(e.into()))?;
        // RAM is global (D3): a RegionId the request names is accepted and ignored.
        let region = all
            .iter()
            .find(|(k, _)| k == "RegionId")
            .map(|(_, v)| v.clone())
            .filter(|_| version != ram::VERSION);
        let params = params::Params::new(
            all.iter()
                .filter(|(k, _)| !COMMON.contains(&k.as_str()))
                .cloned()
                .collect(),
        );
        Ok((
            Authenticated {
                principal,
                version,
                action,
                region,
                params,
                replay: Some(Nonce {
                    access_key_id: auth.access_key_id().to_string(),
                    nonce: auth.nonce().to_string(),
                    timestamp: ts,
                }),
            },
            expired,
        ))
    }

    pub fn new(engine: Engine, rate_limits: bool) -> Self {
        let mut gate = Gate::new(rate_limits);
        let mut nonces = NonceCache::new();
        // On a shared store, replays and rate limits are the cluster's (docs/postgres.md).
        if let Some(cluster) = engine.cluster() {
            gate = gate.with_shared_limits(std::sync::Arc::new(cluster.clone()));
            nonces = nonces.with_shared(std::sync::Arc::new(cluster), "aliyun");
        }
        Self {
            engine,
            gate,
            nonces,
            public_url: DEFAULT_PUBLIC_URL.to_string(),
        }
    }

    /// Hand out URLs under this base (the server's `--public-url`).
    pub fn with_public_url(mut self, public_url: String) -> Self {
        self.public_url = public_url;
        self
    }

    /// Ask `authorizer` (RAM policies) instead of allowing every authenticated key.
    pub fn with_authorizer(self, authorizer: impl Authorizer + 'static) -> Self {
        Self {
            gate: self.gate.with_authorizer(authorizer),
            ..self
        }
    }

    /// Record every authenticated request in the audit trail (docs/audit.md).
    pub fn with_auditor(self, auditor: std::sync::Arc<dyn nubis_pipeline::Auditor>) -> Self {
        Self {
            gate: self.gate.with_auditor(auditor),
            ..self
        }
    }

    pub async fn handle(&self, req: RawRequest<'_>) -> Reply {
        let all = req.query.iter().chain(req.form).cloned().collect();
        nubis_pipeline::handle(self, &Incoming { req, all }).await
    }
}

#[async_trait::async_trait]
impl Service for AliyunApi {
    type Raw<'a> = Incoming<'a>;
    type Params = params::Params;
    type Replay = Nonce;
    type Handler = Handler;
    type Output = Map<String, Value>;
    type Error = ApiError;

    fn services(&self) -> &'static nubis_pipeline::Services<Handler> {
        &SERVICES
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn request_id(&self) -> String {
        errors::new_request_id()
    }

    fn named_action(&self, raw: &Incoming<'_>) -> String {
        action_and_version(raw.req.headers, &raw.all).0
    }

    /// Shapes, the key (disabled or unknown), the clock window, the v1 or ACS3 signature,
    /// then the nonce: a replay is refused before it costs the key's owner any rate budget
    /// (the nonce is spent only once the request passed the gate).
    fn authenticate(
        &self,
        raw: &Incoming<'_>,
    ) -> Result<Authenticated<params::Params, Nonce>, ApiError> {
        self.authenticate_as(raw, false).map(|(a, _)| a)
    }

    /// An expired STS credential is attributable when its token binds it and the signature
    /// checks out (docs/audit.md): the trail records the refusal under it.
    fn attributable(
        &self,
        raw: &Incoming<'_>,
        error: &ApiError,
    ) -> Option<Authenticated<params::Params, Nonce>> {
        if error.code != "InvalidSecurityToken.Expired" {
            return None;
        }
        match self.authenticate_as(raw, true) {
            Ok((a, true)) => Some(a),
            _ => None,
        }
    }

    fn resolve_region(&self, name: &str) -> Option<String> {
        catalog::region_by_aliyun(name).map(|r| r.id.to_string())
    }

    fn refuse(&self, refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::UnknownVersion(version) => ApiError::new(
                400,
                "InvalidVersion",
                format!("Specified parameter Version `{version}` is not valid."),
            ),
            Refusal::UnknownAction(action) => ApiError::new(
                404,
                "InvalidAction.NotFound",
                format!("Specified api `{action}` is not found"),
            ),
            Refusal::MissingRegion => ApiError::new(
                400,
                "MissingRegionId",
                "RegionId is mandatory for this action.",
            ),
            Refusal::UnknownRegion(r) => ApiError::new(
                404,
                "InvalidRegionId.NotFound",
                format!("The specified RegionId `{r}` does not exist."),
            ),
            Refusal::Throttled(_) => ApiError::new(
                400,
                "Throttling",
                "Request was denied due to request throttling.",
            ),
            // RAM's own refusal of a RAM call (D11).
            Refusal::Denied(d) if d.policy_action.starts_with("ram:") => {
                let mut e = ApiError::new(
                    403,
                    "NoPermission",
                    format!(
                        "You are not authorized to do this action. You should be authorized by RAM: {}.",
                        d.policy_action
                    ),
                );
                e.access_denied = Some(Box::new(access_denied_detail(&d)));
                e
            }
            // ECS's answer to a call RAM policies do not allow.
            Refusal::Denied(d) => {
                let mut e = if d.policy_action.starts_with("ecs:") {
                    ApiError::new(
                        403,
                        "Forbidden.RAM",
                        "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
                    )
                } else {
                    ApiError::new(
                        403,
                        "NoPermission",
                        format!(
                            "You are not authorized to do this action. You should be authorized by RAM. Action: {}",
                            d.policy_action
                        ),
                    )
                };
                e.access_denied = Some(Box::new(access_denied_detail(&d)));
                e
            }
        }
    }

    fn source(&self, raw: &Incoming<'_>) -> nubis_pipeline::Source {
        nubis_pipeline::Source::of(raw.req.peer, raw.req.headers)
    }

    fn audit_params(&self, params: &params::Params) -> Value {
        params.to_json()
    }

    fn audit_output(&self, output: &Map<String, Value>, into: &mut Vec<String>) {
        nubis_pipeline::audit::collect_in_map(output, into);
    }

    /// Atomic: of two concurrent copies of one request, one is refused here.
    async fn spend(&self, raw: &Incoming<'_>, token: Nonce) -> Result<(), ApiError> {
        self.nonces
            .spend(
                &token.access_key_id,
                &token.nonce,
                raw.req.now,
                token.timestamp,
            )
            .await
            .map_err(|e| auth_err(e.into()))
    }

    async fn call(
        &self,
        handler: &'static Handler,
        ctx: &nubis_pipeline::Ctx,
        params: params::Params,
    ) -> Result<Map<String, Value>, ApiError> {
        let ctx = Ctx {
            principal: ctx.principal.clone(),
            request_id: ctx.request_id.clone(),
            region: ctx.region.clone(),
            public_url: self.public_url.clone(),
        };
        handler.run(&self.engine, &ctx, &params).await
    }

    /// JSON, or XML with `Format=XML`; a throttled request gets the headers the SDKs read
    /// to back off.
    fn render(
        &self,
        raw: &Incoming<'_>,
        request_id: &str,
        action: &str,
        result: Result<Map<String, Value>, ApiError>,
    ) -> Rendered {
        let xml = raw
            .all
            .iter()
            .any(|(k, v)| k == "Format" && v.eq_ignore_ascii_case("XML"));
        let (status, content_type, body, code) = match result {
            Ok(mut map) => {
                map.insert("RequestId".into(), Value::String(request_id.to_string()));
                let value = Value::Object(map);
                let (content_type, body) = if xml {
                    (
                        "text/xml;charset=utf-8",
                        render::xml(&format!("{action}Response"), &value).into_bytes(),
                    )
                } else {
                    (
                        "application/json;charset=utf-8",
                        serde_json::to_vec(&value).expect("json"),
                    )
                };
                (200, content_type, body, None)
            }
            Err(e) => {
                let (content_type, body) = errors::render(&e, request_id, xml);
                (e.status, content_type, body, Some(e.code))
            }
        };
        let headers = if code.as_deref() == Some("Throttling") {
            // `x-acs-retry-after` (ms) is what the Tea SDK reads to raise ThrottlingException.
            vec![
                ("retry-after", "1".to_string()),
                ("x-acs-retry-after", "1000".to_string()),
            ]
        } else {
            Vec::new()
        };
        Rendered {
            code,
            status,
            content_type,
            headers,
            body,
        }
    }
}
