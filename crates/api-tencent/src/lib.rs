//! Tencent Cloud CVM API 3.0 (2017-03-12): parse, verify, translate. No rule about states,
//! locks or passwords lives here; the engine and core decide, this crate renders.

mod actions;
pub use actions::ACTIONS;
pub mod errors;
pub mod render;
pub mod wire;

use errors::ApiError;
use nubis_auth::bounds::{self, ShapeError};
use nubis_auth::nonce::{self, NonceCache};
use nubis_auth::ratelimit::RateLimiter;
use nubis_auth::tencent::{self as sig, AuthError, HttpRequestParts, TencentAuth};
use nubis_core::{Principal, catalog, ids};
use nubis_engine::Engine;
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

/// Documented per-second limits per account (docs/tencent-errors.md lists them).
pub fn rate_limit(action: &str) -> u32 {
    match action {
        "EnterRescueMode" | "ExitRescueMode" | "DescribeRegions" | "DescribeZones" => 20,
        "ResetInstancesPassword"
        | "AssociateInstancesKeyPairs"
        | "DisassociateInstancesKeyPairs"
        | "RunInstances"
        | "StartInstances"
        | "StopInstances"
        | "RebootInstances"
        | "TerminateInstances"
        | "CreateKeyPair"
        | "ImportKeyPair"
        | "DeleteKeyPairs" => 10,
        _ => 40,
    }
}

/// A raw HTTP request as the listener hands it over.
pub struct RawRequest<'a> {
    pub method: &'a str,
    /// The Host header exactly as received (tccli sends `http://host:port`).
    pub host: &'a str,
    pub path: &'a str,
    pub raw_query: &'a str,
    /// Lower-case names.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub now: i64,
}

/// What the listener sends back and logs.
pub struct Reply {
    pub request_id: String,
    pub action: String,
    pub error: Option<String>,
    pub body: Vec<u8>,
}

pub struct TencentApi {
    engine: Engine,
    limiter: RateLimiter,
    /// Accepted legacy requests (by MAC: [`sig::legacy_replay_key`]), remembered for the
    /// 300 s timestamp window.
    nonces: NonceCache,
}

/// Request context handed to each action.
pub(crate) struct Ctx {
    pub principal: Principal,
    pub request_id: String,
    /// Canonical region ID.
    pub region: Option<String>,
    pub action: String,
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

/// Is this request Tencent's? (`X-TC-Action`, or `Action` + `Version=2017-03-12`.)
pub fn claims(headers: &[(String, String)], params: &[(String, String)]) -> bool {
    header(headers, "x-tc-action").is_some()
        || (params.iter().any(|(k, _)| k == "Action")
            && params.iter().any(|(k, v)| k == "Version" && v == VERSION))
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
        let all = if req.method == "GET" {
            &query
        } else {
            &form_body
        };
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

impl TencentApi {
    pub fn new(engine: Engine, rate_limits: bool) -> Self {
        Self {
            engine,
            limiter: RateLimiter::new(rate_limits),
            nonces: NonceCache::with_limits(sig::MAX_CLOCK_SKEW_SECS, nonce::DEFAULT_MAX_PER_KEY),
        }
    }

    pub async fn handle(&self, req: RawRequest<'_>) -> Reply {
        let request_id = ids::new_request_id();
        let mut action = String::new();
        let result = self.handle_inner(&req, &request_id, &mut action).await;
        let (body, error) = match result {
            Ok(actions::Payload::Map(mut map)) => {
                map.insert("RequestId".into(), Value::String(request_id.clone()));
                (
                    serde_json::to_vec(&serde_json::json!({ "Response": map })).expect("json"),
                    None,
                )
            }
            Ok(actions::Payload::Json(object)) => {
                // `{…}` → `{"Response":{…,"RequestId":"…"}}` without re-parsing the page.
                let inner = object.strip_suffix('}').unwrap_or(&object);
                let sep = if inner.len() > 1 { "," } else { "" };
                (
                    format!(r#"{{"Response":{inner}{sep}"RequestId":"{request_id}"}}}}"#)
                        .into_bytes(),
                    None,
                )
            }
            Err(e) => (errors::envelope(&e, &request_id), Some(e.code)),
        };
        Reply {
            request_id,
            action,
            error,
            body,
        }
    }

    async fn handle_inner(
        &self,
        req: &RawRequest<'_>,
        request_id: &str,
        action_out: &mut String,
    ) -> Result<actions::Payload, ApiError> {
        // Named before anything is checked so even a refused request is logged with its action.
        *action_out = named_action(req);
        let Parsed {
            auth,
            action,
            version,
            region,
            params,
            query,
            form_body,
        } = parse_request(req)?;
        *action_out = action.clone();

        // Authentication: key exists, timestamp fresh, signature right.
        let (principal, secret) = self.engine.access_key(auth.secret_id()).ok_or_else(|| {
            if sig::validate_secret_id(auth.secret_id()).is_err() {
                auth_err(AuthError::InvalidSecretId)
            } else {
                auth_err(AuthError::SecretIdNotFound)
            }
        })?;
        sig::check_timestamp(auth.timestamp(), req.now).map_err(auth_err)?;
        match &auth {
            TencentAuth::Tc3 { .. } => {
                let parts = HttpRequestParts {
                    method: req.method,
                    host: req.host,
                    path: req.path,
                    raw_query: req.raw_query,
                    headers: req.headers,
                    body: req.body,
                };
                sig::verify_tc3(&parts, &auth, &secret).map_err(auth_err)?;
            }
            TencentAuth::Legacy { .. } => {
                let all = if req.method == "GET" {
                    &query
                } else {
                    &form_body
                };
                sig::verify_legacy(req.method, req.host, req.path, all, &auth, &secret)
                    .map_err(auth_err)?;
            }
        }
        // A legacy request may be accepted once within the window (docs/hostile-input.md): it
        // is remembered by its MAC, which covers its Timestamp and Nonce. A replay is refused
        // here, before it costs any rate budget, and the request is remembered only once it
        // also passed the rate limiter (below).
        let replay_key = match &auth {
            TencentAuth::Legacy { .. } => {
                let key =
                    sig::legacy_replay_key(&auth).ok_or(auth_err(AuthError::SignatureFailure))?;
                self.nonces
                    .is_used(auth.secret_id(), &key, req.now)
                    .map_err(|e| auth_err(e.into()))?;
                Some(key)
            }
            TencentAuth::Tc3 { .. } => None,
        };

        if version != VERSION {
            return Err(ApiError::new(
                "NoSuchVersion",
                format!("the API version `{version}` does not exist"),
            ));
        }
        if !actions::ACTIONS.contains(&action.as_str()) {
            return Err(ApiError::new(
                "InvalidAction",
                format!("the action `{action}` does not exist"),
            ));
        }
        let region = match region {
            None if action == "DescribeRegions" => None,
            None => {
                return Err(ApiError::new(
                    "MissingParameter",
                    "the parameter `Region` is required",
                ));
            }
            Some(r) => match catalog::region_by_tencent(&r) {
                Some(reg) => Some(reg.id.to_string()),
                None => {
                    return Err(ApiError::new(
                        "UnsupportedRegion",
                        format!("the region `{r}` is not supported"),
                    ));
                }
            },
        };
        // Counted before any work is done.
        if self
            .limiter
            .check(&principal.account, &action, rate_limit(&action))
            .is_err()
        {
            return Err(ApiError::new(
                "RequestLimitExceeded",
                format!("the request rate of {action} exceeds the limit"),
            ));
        }
        if let Some(key) = &replay_key {
            self.nonces
                .check_and_insert(auth.secret_id(), key, req.now, auth.timestamp())
                .map_err(|e| auth_err(e.into()))?;
        }
        let ctx = Ctx {
            principal,
            request_id: request_id.to_string(),
            region,
            action: action.clone(),
        };
        actions::dispatch(&self.engine, &ctx, params).await
    }
}

fn auth_err(e: AuthError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}
