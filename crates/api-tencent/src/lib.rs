//! Tencent Cloud CVM API 3.0 (2017-03-12): parse, verify, translate. No rule about states,
//! locks or passwords lives here; the engine and core decide, this crate renders.
//!
//! The dialect is a [`nubis_pipeline::Service`]: it supplies its authentication (TC3 and the
//! legacy HmacSHA1/256 signature), its envelope and its codes; the pipeline runs the checks
//! every service shares, against the action registry [`REGISTRY`].

mod actions;
pub mod cam;
pub mod cloudaudit;
pub mod sts;
pub use actions::{ACTIONS, Handler, Payload, REGISTRY, SERVICES, rate_limit};
pub use nubis_pipeline::Reply;
pub mod errors;
pub mod render;
pub mod wire;

use errors::{ApiError, Codes};
use nubis_auth::bounds::{self, ShapeError};
use nubis_auth::nonce::{self, NonceCache};
use nubis_auth::tencent::{self as sig, AuthError, HttpRequestParts, TencentAuth};
use nubis_core::{DomainError, Principal, catalog, ids};
use nubis_engine::{Engine, IdKind, KeyNaming, TempRefusal};
use nubis_pipeline::{Authenticated, Authorizer, Gate, MfaDenial, Refusal, Rendered, Service};
use serde_json::{Map, Value};

pub const VERSION: &str = "2017-03-12";

/// Regions the API documents (the seeds' list). Only configured ones are served.
pub const DOCUMENTED_REGIONS: &[(&str, &str)] = &[
    ("ap-bangkok", "Asia Pacific (Bangkok)"),
    ("ap-beijing", "North China (Beijing)"),
    ("ap-chengdu", "Southwest China (Chengdu)"),
    ("ap-chongqing", "Southwest China (Chongqing)"),
    ("ap-guangzhou", "South China (Guangzhou)"),
    (
        "ap-hongkong",
        "Hong Kong, Macau and Taiwan (China) (Hong Kong, China)",
    ),
    ("ap-jakarta", "Asia Pacific (Jakarta)"),
    ("ap-nanjing", "East China (Nanjing)"),
    ("ap-seoul", "Asia Pacific (Seoul)"),
    ("ap-shanghai", "East China (Shanghai)"),
    ("ap-shanghai-fsi", "East China (Shanghai Finance)"),
    ("ap-shenzhen-fsi", "South China (Shenzhen Finance)"),
    ("ap-singapore", "Asia Pacific (Singapore)"),
    ("ap-tokyo", "Asia Pacific (Tokyo)"),
    ("eu-frankfurt", "Europe (Frankfurt)"),
    ("na-ashburn", "US East (Virginia)"),
    ("na-siliconvalley", "US West (Silicon Valley)"),
    ("sa-saopaulo", "South America (São Paulo)"),
];

/// A raw HTTP request as the listener hands it over (the Host header exactly as received:
/// tccli sends `http://host:port`), and the time it arrived.
pub struct RawRequest<'a> {
    pub http: HttpRequestParts<'a>,
    pub now: i64,
}

/// The request's parts are read as `req.method`, `req.host`, …: the dialect only adds `now`.
impl<'a> std::ops::Deref for RawRequest<'a> {
    type Target = HttpRequestParts<'a>;
    fn deref(&self) -> &HttpRequestParts<'a> {
        &self.http
    }
}

pub struct TencentApi {
    engine: Engine,
    /// Rate limits and authorization (the pipeline's checks).
    gate: Gate,
    /// Accepted legacy requests (by MAC: [`sig::legacy_replay_key`]), remembered for the
    /// 300 s timestamp window.
    nonces: NonceCache,
}

/// Request context handed to each action.
pub struct Ctx {
    pub principal: Principal,
    pub request_id: String,
    /// Canonical region ID.
    pub region: Option<String>,
    /// The declared action name.
    pub action: &'static str,
    /// The action's own spellings of some codes.
    pub codes: Codes,
}

impl Ctx {
    /// A domain error in this action's codes.
    pub(crate) fn err(&self, e: DomainError) -> ApiError {
        errors::map(&self.codes, e)
    }

    /// An engine's domain error as Tencent names things: instances by their `ins-` ID, key
    /// pairs by ID (the engine names instances by canonical ID).
    pub(crate) fn domain(&self, engine: &Engine, e: DomainError) -> ApiError {
        self.err(e.render(&engine.names(&self.principal, IdKind::Tencent, KeyNaming::Id)))
    }
}

/// A legacy request's replay token: spent once the request passed the gate.
#[derive(Debug)]
pub struct LegacyReplay {
    secret_id: String,
    key: String,
    timestamp: i64,
}

use nubis_auth::header;

const COMMON_LEGACY: &[&str] = &[
    "Action",
    "Version",
    "Region",
    "Timestamp",
    "Nonce",
    "SecretId",
    "SignatureMethod",
    "Signature",
    "Token",
    "Language",
    "RequestClient",
];

/// Is this request Tencent's? (`X-TC-Action`, or `Action` and a `Version` one of [`SERVICES`] serves.)
pub fn claims(headers: &[(String, String)], params: &[(String, String)]) -> bool {
    header(headers, "x-tc-action").is_some()
        || (params.iter().any(|(k, _)| k == "Action")
            && params
                .iter()
                .any(|(k, v)| k == "Version" && SERVICES.serves(v)))
}

fn is_form(headers: &[(String, String)]) -> bool {
    header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
}

pub fn decode_pairs(s: &[u8]) -> Vec<(String, String)> {
    decode_at_most(s, usize::MAX)
}

/// The first `max` pairs of `s`; the rest is not decoded (a request with more than
/// [`wire::PAIR_LIMITS`] allows is refused anyway).
fn decode_at_most(s: &[u8], max: usize) -> Vec<(String, String)> {
    form_urlencoded::parse(s)
        .take(max)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The action a request names (`X-TC-Action`, else the `Action` parameter), read without any
/// check, for logs.
fn named_action(req: &RawRequest<'_>) -> String {
    if let Some(a) = header(req.headers, "x-tc-action") {
        return a.to_string();
    }
    let find = |bytes: &[u8]| {
        form_urlencoded::parse(bytes)
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.into_owned())
    };
    find(req.raw_query.as_bytes())
        .or_else(|| {
            (req.method == "POST" && is_form(req.headers))
                .then(|| find(req.body))
                .flatten()
        })
        .unwrap_or_default()
}

/// What [`parse_request`] reads off a request before any key is looked up.
#[derive(Debug)]
pub struct Parsed {
    pub auth: TencentAuth,
    pub action: String,
    pub version: String,
    pub region: Option<String>,
    /// The action's own parameters, unflattened (or the JSON body's object).
    pub params: Map<String, Value>,
    /// Decoded query and form-body pairs (the legacy signature is verified over them).
    pub query: Vec<(String, String)>,
    pub form_body: Vec<(String, String)>,
}

impl Parsed {
    /// The pairs a legacy signature covers: the query of a GET, the form body of a POST.
    pub fn legacy_pairs(&self, method: &str) -> &[(String, String)] {
        legacy_pairs(method, &self.query, &self.form_body)
    }
}

fn legacy_pairs<'a>(
    method: &str,
    query: &'a [(String, String)],
    form_body: &'a [(String, String)],
) -> &'a [(String, String)] {
    if method == "GET" { query } else { form_body }
}

fn shape_err(e: ShapeError) -> ApiError {
    let code = match e {
        ShapeError::NameTooLong { .. } | ShapeError::TooManySegments { .. } => "UnknownParameter",
        ShapeError::ValueTooLong { .. } => "InvalidParameterValue",
        ShapeError::TooManyParameters { .. } | ShapeError::TooDeep { .. } => "InvalidParameter",
    };
    ApiError::new(code, e.to_string())
}

/// Everything done to a request before its SecretId is looked up, callable without an engine
/// (fuzz entry point). Cheap checks come first: the documented request sizes
/// ([`wire::MAX_GET_QUERY_BYTES`], [`wire::MAX_LEGACY_POST_BYTES`]), [`wire::PAIR_LIMITS`] on the query and
/// the form body, [`wire::MAX_JSON_DEPTH`] on a JSON body), then the credentials
/// ([`sig::parse_tc3`] / [`sig::parse_legacy`]), then the parameters are unflattened or
/// parsed. None of it depends on whether a key exists.
pub fn parse_request(req: &RawRequest<'_>) -> Result<Parsed, ApiError> {
    if req.method != "GET" && req.method != "POST" {
        return Err(ApiError::new(
            "UnsupportedProtocol",
            format!("HTTP method {} is not supported", req.method),
        ));
    }
    let tc3 = header(req.headers, "authorization").is_some();
    let too_large = if req.method == "GET" {
        (req.raw_query.len() > wire::MAX_GET_QUERY_BYTES).then_some("a GET request's 32 KB")
    } else {
        (!tc3 && req.body.len() > wire::MAX_LEGACY_POST_BYTES)
            .then_some("a legacy-signed POST request's 1 MB")
    };
    if let Some(limit) = too_large {
        return Err(ApiError::new(
            "RequestSizeLimitExceeded",
            format!("The request exceeds {limit} size limit."),
        ));
    }
    // One pair past the limit is enough to refuse; the rest is never decoded.
    let at_most = wire::PAIR_LIMITS.max_pairs.saturating_add(1);
    let query = decode_at_most(req.raw_query.as_bytes(), at_most);
    bounds::check_pairs(&query, &wire::PAIR_LIMITS).map_err(shape_err)?;
    let form = req.method == "POST" && is_form(req.headers);
    let form_body = if form {
        decode_at_most(req.body, at_most)
    } else {
        Vec::new()
    };
    bounds::check_pairs(&form_body, &wire::PAIR_LIMITS).map_err(shape_err)?;
    let json_body = req.method == "POST" && !form;
    if json_body {
        bounds::check_json_depth(req.body, wire::MAX_JSON_DEPTH).map_err(shape_err)?;
    }
    let invalid = |m: String| ApiError::new("InvalidParameter", m);
    // Legacy requests carry everything as parameters; TC3 requests carry the common ones as headers.
    if tc3 {
        let auth = sig::parse_tc3(req.headers).map_err(auth_err)?;
        let action = header(req.headers, "x-tc-action")
            .unwrap_or_default()
            .to_string();
        let version = header(req.headers, "x-tc-version")
            .unwrap_or_default()
            .to_string();
        let region = header(req.headers, "x-tc-region")
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let params = if req.method == "GET" {
            wire::unflatten(&query).map_err(invalid)?
        } else if form {
            wire::unflatten(&form_body).map_err(invalid)?
        } else {
            let body = if req.body.is_empty() {
                b"{}".as_slice()
            } else {
                req.body
            };
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(m)) => m,
                _ => {
                    return Err(ApiError::new(
                        "InvalidParameter",
                        "the request body is not a JSON object",
                    ));
                }
            }
        };
        Ok(Parsed {
            auth,
            action,
            version,
            region,
            params,
            query,
            form_body,
        })
    } else {
        let all = legacy_pairs(req.method, &query, &form_body);
        let auth = sig::parse_legacy(all).map_err(auth_err)?;
        let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let rest: Vec<(String, String)> = all
            .iter()
            .filter(|(k, _)| !COMMON_LEGACY.contains(&k.as_str()))
            .cloned()
            .collect();
        let params = wire::unflatten(&rest).map_err(invalid)?;
        Ok(Parsed {
            auth,
            action: get("Action").unwrap_or_default(),
            version: get("Version").unwrap_or_default(),
            region: get("Region").filter(|r| !r.is_empty()),
            params,
            query,
            form_body,
        })
    }
}

/// What Tencent's authentication yields.
type TencentAuthenticated = Authenticated<Map<String, Value>, LegacyReplay>;

impl TencentApi {
    /// Shape and credentials ([`parse_request`]), then the key, the timestamp, the signature
    /// and, for a legacy request, whether its MAC was already accepted within the window.
    /// With `expired_ok`, an expired temporary credential whose token binds it is checked on
    /// (for the trail's attribution only: the `bool` says so) instead of refused.
    fn authenticate_as(
        &self,
        req: &RawRequest<'_>,
        expired_ok: bool,
    ) -> Result<(TencentAuthenticated, bool), ApiError> {
        let mut expired = false;
        let parsed = parse_request(req)?;
        let auth = &parsed.auth;
        // A temporary SecretId's token: `X-TC-Token` (TC3, unsigned) or the signed `Token`
        // parameter (legacy) (docs/identity-wire.md §2).
        let token = match auth {
            TencentAuth::Tc3 { .. } => header(req.headers, "x-tc-token").map(str::to_string),
            TencentAuth::Legacy { .. } => parsed
                .legacy_pairs(req.method)
                .iter()
                .find(|(k, _)| k == "Token")
                .map(|(_, v)| v.clone()),
        };
        let (principal, secret) = match self.engine.access_key(auth.secret_id()) {
            Some(found) => found,
            None if self.engine.is_temp_credential(auth.secret_id()) => {
                let id = auth.secret_id();
                match self.engine.temp_credential(
                    id,
                    token.as_deref(),
                    req.now.saturating_mul(1000),
                ) {
                    Ok(found) => found,
                    Err(TempRefusal::Expired) if expired_ok => {
                        expired = true;
                        self.engine
                            .expired_temp_credential(id, token.as_deref())
                            .ok_or(temp_err(TempRefusal::Expired))?
                    }
                    Err(e) => return Err(temp_err(e)),
                }
            }
            None if sig::validate_secret_id(auth.secret_id()).is_err() => {
                return Err(auth_err(AuthError::InvalidSecretId));
            }
            None => return Err(auth_err(AuthError::SecretIdNotFound)),
        };
        sig::check_timestamp(auth.timestamp(), req.now).map_err(auth_err)?;
        let replay = match auth {
            TencentAuth::Tc3 { .. } => {
                // The credential scope names the service of the version called (`cvm`,
                // `cam`, …); an unknown version is checked as CVM and refused by the gate.
                let service = SERVICES
                    .by_version(&parsed.version)
                    .map_or(sig::SERVICE, |r| r.service);
                sig::verify_tc3_for(&req.http, auth, &secret, service).map_err(auth_err)?;
                None
            }
            TencentAuth::Legacy { .. } => {
                let all = parsed.legacy_pairs(req.method);
                sig::verify_legacy(req.method, req.host, req.path, all, auth, &secret)
                    .map_err(auth_err)?;
                let key =
                    sig::legacy_replay_key(auth).ok_or(auth_err(AuthError::SignatureFailure))?;
                self.nonces
                    .is_used(auth.secret_id(), &key, req.now)
                    .map_err(|e| auth_err(e.into()))?;
                Some(LegacyReplay {
                    secret_id: auth.secret_id().to_string(),
                    key,
                    timestamp: auth.timestamp(),
                })
            }
        };
        // CAM is region-less (D3): a region the request names is accepted and ignored.
        let region = parsed.region.filter(|_| parsed.version != cam::VERSION);
        Ok((
            Authenticated {
                principal,
                version: parsed.version,
                action: parsed.action,
                region,
                params: parsed.params,
                replay,
            },
            expired,
        ))
    }

    pub fn new(engine: Engine, rate_limits: bool) -> Self {
        let mut gate = Gate::new(rate_limits);
        let mut nonces =
            NonceCache::with_limits(sig::MAX_CLOCK_SKEW_SECS, nonce::DEFAULT_MAX_PER_KEY);
        // On a shared store, replays and rate limits are the cluster's (docs/postgres.md).
        if let Some(cluster) = engine.cluster() {
            gate = gate.with_shared_limits(std::sync::Arc::new(cluster.clone()));
            nonces = nonces.with_shared(std::sync::Arc::new(cluster), "tencent");
        }
        Self {
            engine,
            gate,
            nonces,
        }
    }

    /// Authorize with `authorizer` (CAM policies) instead of allowing every authenticated key.
    pub fn with_authorizer(mut self, authorizer: impl Authorizer + 'static) -> Self {
        self.gate = self.gate.with_authorizer(authorizer);
        self
    }

    /// Record every authenticated request in the audit trail (docs/audit.md).
    pub fn with_auditor(mut self, auditor: std::sync::Arc<dyn nubis_pipeline::Auditor>) -> Self {
        self.gate = self.gate.with_auditor(auditor);
        self
    }

    /// Runs one request through the pipeline ([`nubis_pipeline::handle`]).
    pub async fn handle(&self, req: RawRequest<'_>) -> Reply {
        nubis_pipeline::handle(self, &req).await
    }
}

#[async_trait::async_trait]
impl Service for TencentApi {
    type Raw<'a> = RawRequest<'a>;
    type Params = Map<String, Value>;
    type Replay = LegacyReplay;
    type Handler = Handler;
    type Output = Payload;
    type Error = ApiError;

    fn services(&self) -> &'static nubis_pipeline::Services<Handler> {
        &SERVICES
    }

    fn gate(&self) -> &Gate {
        &self.gate
    }

    fn request_id(&self) -> String {
        ids::new_request_id()
    }

    fn named_action(&self, req: &RawRequest<'_>) -> String {
        named_action(req)
    }

    /// Shape and credentials ([`parse_request`]), then the key, the timestamp, the signature
    /// and, for a legacy request, whether its MAC was already accepted within the window
    /// (docs/hostile-input.md). A replay is refused here, before it costs any rate budget; the
    /// MAC is remembered only once the request also passed the gate ([`Service::spend`]).
    fn authenticate(
        &self,
        req: &RawRequest<'_>,
    ) -> Result<Authenticated<Map<String, Value>, LegacyReplay>, ApiError> {
        self.authenticate_as(req, false).map(|(a, _)| a)
    }

    /// An expired temporary credential is attributable when its token binds it and the
    /// signature checks out (docs/audit.md): the trail records the refusal under it.
    fn attributable(
        &self,
        req: &RawRequest<'_>,
        error: &ApiError,
    ) -> Option<Authenticated<Map<String, Value>, LegacyReplay>> {
        if error.code != "AuthFailure.TokenFailure" {
            return None;
        }
        match self.authenticate_as(req, true) {
            Ok((a, true)) => Some(a),
            _ => None,
        }
    }

    fn resolve_region(&self, name: &str) -> Option<String> {
        catalog::region_by_tencent(name).map(|r| r.id.to_string())
    }

    fn refuse(&self, refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::UnknownVersion(v) => ApiError::new(
                "NoSuchVersion",
                format!("the API version `{v}` does not exist"),
            ),
            Refusal::UnknownAction(a) => {
                ApiError::new("InvalidAction", format!("the action `{a}` does not exist"))
            }
            Refusal::MissingRegion => {
                ApiError::new("MissingParameter", "the parameter `Region` is required")
            }
            Refusal::UnknownRegion(r) => ApiError::new(
                "UnsupportedRegion",
                format!("the region `{r}` is not supported"),
            ),
            Refusal::Throttled(a) => ApiError::new(
                "RequestLimitExceeded",
                format!("the request rate of {a} exceeds the limit"),
            ),
            // Operation protection (D6): the seeds' codes and messages.
            Refusal::Denied(d) if d.detail.mfa == MfaDenial::NotFound => ApiError::new(
                "UnauthorizedOperation.MFANotFound",
                "Unauthorized operation. Make sure Multi-Factor Authentication (MFA) exists.",
            ),
            Refusal::Denied(d) if d.detail.mfa == MfaDenial::Expired => ApiError::new(
                "UnauthorizedOperation.MFAExpired",
                "Unauthorized operation. Make sure Multi-Factor Authentication (MFA) is valid.",
            ),
            // CAM's refusal, worded as CAM words it.
            Refusal::Denied(d) => ApiError::new(
                "AuthFailure.UnauthorizedOperation",
                format!(
                    "You are not authorized to perform this operation. Check your CAM policies, \
                     and ensure that you are using the correct access keys. You are not \
                     authorized to perform operation ({}) resource ({}) has no permission",
                    d.policy_action,
                    if d.detail.resource.is_empty() {
                        "*"
                    } else {
                        &d.detail.resource
                    }
                ),
            ),
        }
    }

    fn source(&self, req: &RawRequest<'_>) -> nubis_pipeline::Source {
        nubis_pipeline::Source::of(req.peer, req.headers)
    }

    fn audit_params(&self, params: &Map<String, Value>) -> Value {
        Value::Object(params.clone())
    }

    fn audit_output(&self, output: &Payload, into: &mut Vec<String>) {
        if let Payload::Map(m) = output {
            nubis_pipeline::audit::collect_in_map(m, into);
        }
    }

    async fn spend(&self, req: &RawRequest<'_>, token: LegacyReplay) -> Result<(), ApiError> {
        self.nonces
            .spend(&token.secret_id, &token.key, req.now, token.timestamp)
            .await
            .map_err(|e| auth_err(e.into()))
    }

    async fn call(
        &self,
        handler: &'static Handler,
        ctx: &nubis_pipeline::Ctx,
        params: Map<String, Value>,
    ) -> Result<Payload, ApiError> {
        let ctx = Ctx {
            principal: ctx.principal.clone(),
            request_id: ctx.request_id.clone(),
            region: ctx.region.clone(),
            action: ctx.action,
            codes: handler.codes,
        };
        (handler.run)(&self.engine, &ctx, params).await
    }

    /// `{"Response": {…, "RequestId"}}` or the error envelope, always HTTP 200 with exactly
    /// `application/json` (the Python SDK ignores errors under any other spelling).
    fn render(
        &self,
        _: &RawRequest<'_>,
        request_id: &str,
        _: &str,
        result: Result<Payload, ApiError>,
    ) -> Rendered {
        let (body, code) = match result {
            Ok(Payload::Map(mut map)) => {
                map.insert("RequestId".into(), Value::String(request_id.to_string()));
                (
                    serde_json::to_vec(&serde_json::json!({ "Response": map })).expect("json"),
                    None,
                )
            }
            Ok(Payload::Json(object)) => {
                // `{…}` → `{"Response":{…,"RequestId":"…"}}` without re-parsing the page.
                let inner = object.strip_suffix('}').unwrap_or(&object);
                let sep = if inner.len() > 1 { "," } else { "" };
                // Sized once: a page is ~150 KB, and growing by doubling copies it again.
                let mut body = String::with_capacity(inner.len() + request_id.len() + 32);
                body.push_str(r#"{"Response":"#);
                body.push_str(inner);
                body.push_str(sep);
                body.push_str(r#""RequestId":""#);
                body.push_str(request_id);
                body.push_str(r#""}}"#);
                (body.into_bytes(), None)
            }
            Err(e) => (errors::envelope(&e, request_id), Some(e.code)),
        };
        Rendered {
            code,
            status: 200,
            content_type: "application/json",
            headers: vec![("X-TC-RequestId", request_id.to_string())],
            body,
        }
    }
}

fn auth_err(e: AuthError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}

/// A temporary credential's refusal (D4): an unknown SecretId is `SecretIdNotFound`, every
/// token case `AuthFailure.TokenFailure` with a message naming it.
fn temp_err(e: TempRefusal) -> ApiError {
    let why = match e {
        TempRefusal::Unknown => return auth_err(AuthError::SecretIdNotFound),
        TempRefusal::MissingToken => "token missing: a temporary SecretId needs its Token",
        TempRefusal::Malformed => "token malformed",
        TempRefusal::Mismatch => "token does not belong to this SecretId",
        TempRefusal::Expired => "token expired",
    };
    ApiError::new("AuthFailure.TokenFailure", format!("token 错误: {why}"))
}
