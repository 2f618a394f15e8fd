//! The admin API (docs/admin-api.md): inspection and fault switches for operators and tests.

use crate::http::AppState;
use crate::peer::Peer;
use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use base64::Engine as _;
use nubis_core::{DomainError, Restriction};
use nubis_engine::admin::AdminAttributes;
use nubis_engine::{CredentialError, KeyInfo, KeyLookup};
use serde::Deserialize;
use serde_json::json;

/// Bodies of the tenancy routes: a policy document is at most 6,144 characters (up to 4
/// bytes each in UTF-8, more when JSON-escaped); everything else is a few names.
const TENANCY_BODY_LIMIT: usize = 64 * 1024;

/// Accounts, sub-users, policies and attachments (issue 13).
fn tenancy_routes() -> Router<AppState> {
    Router::new()
        .route("/accounts", get(list_accounts).post(create_account))
        .route(
            "/accounts/{account}",
            get(show_account).delete(delete_account),
        )
        .route(
            "/accounts/{account}/quotas",
            get(show_quota).put(put_quota).delete(reset_quota),
        )
        .route(
            "/accounts/{account}/users",
            get(list_users).post(create_user),
        )
        .route(
            "/accounts/{account}/users/{user}",
            get(show_user).delete(delete_user),
        )
        .route(
            "/accounts/{account}/users/{user}/policies",
            get(list_attached),
        )
        .route(
            "/accounts/{account}/users/{user}/mfa-device",
            post(bind_soft_token),
        )
        .route(
            "/accounts/{account}/users/{user}/policies/{policy}",
            put(attach).delete(detach),
        )
        .route(
            "/accounts/{account}/policies",
            get(list_policies).post(create_policy),
        )
        .route(
            "/accounts/{account}/policies/{policy}",
            get(show_policy).delete(delete_policy),
        )
        .layer(DefaultBodyLimit::max(TENANCY_BODY_LIMIT))
}

/// Every admin route, behind [`authenticate`] (which runs before any extractor).
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(tenancy_routes())
        .route("/instances/{id}", get(instance))
        .route("/instances/{id}/guest", get(guest))
        .route("/instances/{id}/check-password", post(check_password))
        .route("/instances/{id}/restrict", post(restrict))
        .route("/instances/{id}/faults", post(faults))
        .route("/instances/{id}/attributes", post(attributes))
        .route("/instances/{id}/live-migrate", post(live_migrate))
        .route("/faults", post(global_faults))
        .route("/kms-keys/{key}", post(kms_key))
        .route("/hosts", get(list_hosts).post(create_host))
        .route("/hosts/{id}", axum::routing::delete(delete_host))
        .route(
            "/keystone-users",
            get(list_keystone_users).post(create_keystone_user),
        )
        .route(
            "/keystone-users/{name}",
            patch(update_keystone_user).delete(delete_keystone_user),
        )
        .route(
            "/access-keys",
            get(list_access_keys).post(create_access_key),
        )
        .route(
            "/access-keys/{id}",
            get(show_access_key)
                .patch(update_access_key)
                .delete(delete_access_key),
        )
        .route("/operations", get(operations))
        .route("/audit-events", get(audit_events))
        .route("/operations/by-request/{rid}", get(by_request))
        .route_layer(middleware::from_fn_with_state(state, authenticate))
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.to_string()}})),
    )
        .into_response()
}

fn domain(e: DomainError) -> Response {
    match e {
        DomainError::NotFound { .. } => error(StatusCode::NOT_FOUND, "NotFound", e),
        DomainError::InvalidValue { .. } | DomainError::InvalidZone(_) => {
            error(StatusCode::BAD_REQUEST, "InvalidValue", e)
        }
        DomainError::Unavailable(_) => error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", e),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e),
    }
}

// ------------------------------------------------------------------------------------------
// Authentication: one layer over every route, before any body or path is looked at.

const UNAUTHORIZED: &str = "admin credentials required (HTTP Basic with an admin access key)";

/// `Authorization: Basic base64(id:secret)` → (id, secret).
fn basic_credentials(headers: &axum::http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// HTTP Basic with an enabled key of an admin account; the secret compared in constant time.
/// Failed attempts are throttled per key ID and per source address (the same
/// `nubis_auth::login` rule as Keystone passwords): 429 with `Retry-After` while blocked.
async fn authenticate(State(s): State<AppState>, peer: Peer, req: Request, next: Next) -> Response {
    let unauthorized = || {
        let mut r = error(StatusCode::UNAUTHORIZED, "Unauthorized", UNAUTHORIZED);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"nubis admin\""),
        );
        r
    };
    let Some((id, secret)) = basic_credentials(req.headers()) else {
        return unauthorized();
    };
    // check + fail (not `attempt`): nothing awaits between the check and the verdict, so
    // parallel requests cannot slip past the count, and parallel good requests never count.
    if let Err(wait) = s.admin_logins.check(&id, peer.0) {
        let secs = wait.0.as_secs().max(1);
        let mut r = error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            format!("too many failed authentication attempts; retry after {secs} seconds"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return r;
    }
    crate::http::catch_up(&s.engine).await;
    let principal = match s.engine.lookup_access_key(&id) {
        KeyLookup::Active(p, real)
            if nubis_auth::ct_eq(real.as_bytes(), secret.as_bytes()) && p.is_admin =>
        {
            Some(*p)
        }
        _ => None,
    };
    let Some(principal) = principal else {
        s.admin_logins.fail(&id, peer.0);
        let shown: String = id.chars().take(64).collect();
        tracing::info!(access_key_id = %shown, peer = ?peer.0, "admin API authentication failed");
        return unauthorized();
    };
    s.admin_logins.clear_user(&id);
    // The audit trail (docs/audit.md): the call, its path and query (never its body: keys and
    // passwords travel there), once answered.
    let time_ms = now_ms();
    let request_id = nubis_core::ids::new_request_id();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let query: serde_json::Map<String, serde_json::Value> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .take(64)
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let mut resp = next.run(req).await;
    let status = resp.status().as_u16();
    let params = json!({"path": path, "query": query});
    let event = nubis_core::audit::AuditEvent {
        id: nubis_core::audit::AuditEvent::new_id(),
        time_ms,
        account: principal.account,
        user: principal.user,
        sub_user: principal.sub_user,
        is_admin: principal.is_admin,
        role: None,
        credential: principal.credential,
        cloud: "admin".into(),
        service: "admin".into(),
        version: "v1".into(),
        action: nubis_core::audit::cut(&format!("{method} {route}"), nubis_core::audit::MAX_FIELD),
        read_only: Some(method == "GET"),
        region: None,
        resources: Vec::new(),
        source_ip: peer.0.map(|p| p.to_string()).unwrap_or_default(),
        user_agent: nubis_core::audit::cut(&user_agent, nubis_core::audit::MAX_FIELD),
        request_id: request_id.clone(),
        error_code: (status >= 400).then(|| status.to_string()),
        error_message: None,
        status,
        parameters: nubis_pipeline::audit::parameters_text(params),
    };
    nubis_pipeline::Auditor::record(&crate::audit::EngineAuditor(s.engine.clone()), event).await;
    if let Ok(v) = header::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-nubis-request-id", v);
    }
    resp
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

// ------------------------------------------------------------------------------------------
// Extractors whose rejections answer the admin API's JSON error shape.

/// `Json<T>`, rejected as `{"error": {"code": "InvalidBody", ...}}` with axum's status
/// (400 malformed, 415 wrong content type, 422 wrong fields).
pub struct AdminJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for AdminJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(e) => Err(error(e.status(), "InvalidBody", e.body_text())),
        }
    }
}

pub struct AdminQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for AdminQuery<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(e) => Err(error(e.status(), "InvalidQuery", e.body_text())),
        }
    }
}

pub struct AdminPath<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for AdminPath<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(Self(v)),
            Err(e) => Err(error(e.status(), "InvalidPath", e.body_text())),
        }
    }
}

fn credential(e: CredentialError) -> Response {
    match e {
        CredentialError::NotFound(_) => error(StatusCode::NOT_FOUND, "NotFound", e),
        CredentialError::Conflict(_) => error(StatusCode::CONFLICT, "Conflict", e),
        CredentialError::Invalid { .. } => error(StatusCode::BAD_REQUEST, "InvalidValue", e),
        CredentialError::Domain(d) => domain(d),
    }
}

/// An engine error as the admin API answers it.
trait AdminError {
    fn response(self) -> Response;
}

impl AdminError for DomainError {
    fn response(self) -> Response {
        domain(self)
    }
}

impl AdminError for CredentialError {
    fn response(self) -> Response {
        credential(self)
    }
}

/// 204 when the engine did it, its error's answer otherwise.
fn no_content<T, E: AdminError>(r: Result<T, E>) -> Response {
    match r {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.response(),
    }
}

/// 200 with `body` of what the engine answered, its error's answer otherwise.
fn json_ok<T, E: AdminError>(
    r: Result<T, E>,
    body: impl FnOnce(T) -> serde_json::Value,
) -> Response {
    match r {
        Ok(v) => Json(body(v)).into_response(),
        Err(e) => e.response(),
    }
}

async fn instance(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    json_ok(s.engine.admin_instance(&id).await, |v| v)
}

async fn guest(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    json_ok(s.engine.admin_guest(&id).await, |v| v)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordCheck {
    user: String,
    password: String,
}

async fn check_password(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<PasswordCheck>,
) -> Response {
    json_ok(
        s.engine
            .admin_check_password(&id, &b.user, &b.password)
            .await,
        |ok| json!({"accepted": ok}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictBody {
    restriction: String,
}

async fn restrict(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<RestrictBody>,
) -> Response {
    let Some(r) = Restriction::parse(&b.restriction) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "restriction: none, expired, isolating, frozen, banned or security",
        );
    };
    no_content(s.engine.admin_restrict(&id, r).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    soft_stop_fails: Option<bool>,
    disk_error: Option<bool>,
}

async fn faults(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<FaultBody>,
) -> Response {
    no_content(
        s.engine
            .admin_fault(&id, b.soft_stop_fails, b.disk_error)
            .await,
    )
}

async fn attributes(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<AdminAttributes>,
) -> Response {
    no_content(s.engine.admin_attributes(&id, b).await)
}

async fn live_migrate(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    match s.engine.admin_live_migrate(&id).await {
        Ok(rid) => Json(json!({"request_id": rid})).into_response(),
        Err(
            e @ (DomainError::StateConflict { .. }
            | DomainError::OperationInProgress { .. }
            | DomainError::Restricted { .. }),
        ) => error(StatusCode::CONFLICT, "Conflict", e),
        Err(e) => domain(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalFaults {
    store_unavailable: bool,
}

async fn global_faults(
    State(s): State<AppState>,
    AdminJson(b): AdminJson<GlobalFaults>,
) -> Response {
    s.engine.admin_store_down(b.store_unavailable);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KmsBody {
    state: nubis_core::KmsState,
}

async fn kms_key(
    State(s): State<AppState>,
    AdminPath(key): AdminPath<String>,
    AdminJson(b): AdminJson<KmsBody>,
) -> Response {
    no_content(s.engine.admin_kms_key(&key, b.state).await)
}

// ------------------------------------------------------------------------------------------
// Agent hosts (docs/agents.md)

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostBody {
    id: String,
    zone: String,
}

/// Register a host: its credential is in this answer only (`nubis agent --host-secret`).
async fn create_host(State(s): State<AppState>, AdminJson(b): AdminJson<HostBody>) -> Response {
    match s.engine.create_host(&b.id, &b.zone).await {
        Ok((host, secret)) => (
            StatusCode::CREATED,
            Json(json!({"host": host, "secret": secret})),
        )
            .into_response(),
        Err(e) => domain(e),
    }
}

async fn list_hosts(State(s): State<AppState>) -> Response {
    Json(json!({"hosts": s.engine.hosts()})).into_response()
}

async fn delete_host(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    if !s.engine.hosts().iter().any(|h| h.id == id) {
        return error(StatusCode::NOT_FOUND, "NotFound", format!("no host {id}"));
    }
    match s.engine.delete_host(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(DomainError::InvalidParameter(m)) => error(StatusCode::CONFLICT, "Conflict", m),
        Err(e) => domain(e),
    }
}

// ------------------------------------------------------------------------------------------
// Keystone users

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoneUserBody {
    name: String,
    password: String,
    roles: Vec<String>,
}

async fn create_keystone_user(
    State(s): State<AppState>,
    AdminJson(b): AdminJson<KeystoneUserBody>,
) -> Response {
    no_content(
        s.engine
            .add_keystone_user(&b.name, &b.password, b.roles)
            .await,
    )
}

async fn list_keystone_users(State(s): State<AppState>) -> Response {
    let users: Vec<_> = s
        .engine
        .keystone_users()
        .into_iter()
        .map(|u| json!({"name": u.name, "roles": u.roles}))
        .collect();
    Json(json!({"keystone_users": users})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoneUserPatch {
    password: Option<String>,
    roles: Option<Vec<String>>,
}

async fn update_keystone_user(
    State(s): State<AppState>,
    AdminPath(name): AdminPath<String>,
    AdminJson(b): AdminJson<KeystoneUserPatch>,
) -> Response {
    no_content(
        s.engine
            .update_keystone_user(&name, b.password.as_deref(), b.roles)
            .await,
    )
}

async fn delete_keystone_user(
    State(s): State<AppState>,
    AdminPath(name): AdminPath<String>,
) -> Response {
    no_content(s.engine.delete_keystone_user(&name).await)
}

// ------------------------------------------------------------------------------------------
// Access keys

fn key_json(k: &KeyInfo) -> serde_json::Value {
    json!({
        "id": k.id,
        "account": k.account,
        "user_id": k.user,
        "enabled": k.enabled,
        "origin": match k.origin {
            nubis_core::KeyOrigin::Bootstrap => "bootstrap",
            nubis_core::KeyOrigin::AdminApi => "admin_api",
        },
        "created_at": k.created_at_ms,
    })
}

async fn list_access_keys(State(s): State<AppState>) -> Response {
    let keys: Vec<_> = s.engine.access_keys().iter().map(key_json).collect();
    Json(json!({"access_keys": keys})).into_response()
}

async fn show_access_key(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    match s.engine.access_keys().iter().find(|k| k.id == id) {
        Some(k) => Json(json!({"access_key": key_json(k)})).into_response(),
        None => credential(CredentialError::NotFound(format!("access key {id}"))),
    }
}

/// The body is optional (`{}` or none at all): a key of the admin account's root. `account`
/// names another account (its root's key), `user` one of its sub-users.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewKey {
    account: Option<String>,
    user: Option<String>,
}

async fn create_access_key(State(s): State<AppState>, body: axum::body::Bytes) -> Response {
    let mut new = NewKey::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<NewKey>(&body) {
            Ok(b) => new = b,
            Err(e) => return error(StatusCode::BAD_REQUEST, "InvalidBody", e),
        }
    }
    match s
        .engine
        .create_access_key_for(new.account.as_deref(), new.user.as_deref())
        .await
    {
        Ok((k, secret)) => {
            let mut v = key_json(&k);
            v["secret"] = json!(secret);
            (StatusCode::CREATED, Json(json!({"access_key": v}))).into_response()
        }
        Err(e) => credential(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyPatch {
    enabled: bool,
}

async fn update_access_key(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<KeyPatch>,
) -> Response {
    json_ok(
        s.engine.set_access_key_enabled(&id, b.enabled).await,
        |k| json!({"access_key": key_json(&k)}),
    )
}

async fn delete_access_key(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
) -> Response {
    no_content(s.engine.delete_access_key(&id).await)
}

// ------------------------------------------------------------------------------------------
// Accounts, sub-users, policies (docs/admin-api.md "Accounts and policies")

fn account_json(a: &nubis_core::Account) -> serde_json::Value {
    json!({
        "id": a.id,
        "name": a.name,
        "admin": a.is_admin,
        "tencent_owner_uin": a.tencent_owner_uin,
        "tencent_app_id": a.tencent_app_id,
        "aliyun_account_id": a.aliyun_account_id,
        "created_at": a.created_at_ms,
    })
}

fn user_json(u: &nubis_core::SubUser) -> serde_json::Value {
    json!({"id": u.id, "account": u.account, "name": u.name, "created_at": u.created_at_ms})
}

fn policy_json(p: &nubis_core::PolicyRecord) -> serde_json::Value {
    json!({
        "id": p.id,
        "account": p.account,
        "name": p.name,
        "grammar": p.grammar.as_str(),
        "document": p.document,
        "created_at": p.created_at_ms,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccountBody {
    name: String,
    tencent_owner_uin: Option<u64>,
    tencent_app_id: Option<u64>,
    aliyun_account_id: Option<String>,
}

async fn create_account(
    State(s): State<AppState>,
    AdminJson(b): AdminJson<NewAccountBody>,
) -> Response {
    let new = nubis_engine::NewAccount {
        name: b.name,
        tencent_owner_uin: b.tencent_owner_uin,
        tencent_app_id: b.tencent_app_id,
        aliyun_account_id: b.aliyun_account_id,
    };
    match s.engine.create_account(new).await {
        Ok(a) => (
            StatusCode::CREATED,
            Json(json!({"account": account_json(&a)})),
        )
            .into_response(),
        Err(e) => credential(e),
    }
}

async fn list_accounts(State(s): State<AppState>) -> Response {
    let v: Vec<_> = s.engine.accounts().iter().map(account_json).collect();
    Json(json!({"accounts": v})).into_response()
}

async fn show_account(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    match s.engine.account(&id) {
        Some(a) => Json(json!({"account": account_json(&a)})).into_response(),
        None => credential(CredentialError::NotFound(format!("account {id}"))),
    }
}

async fn delete_account(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    no_content(s.engine.delete_account(&id).await)
}

/// An account's quotas: what applies, the defaults it falls back to, what was set for it
/// and what it holds (docs/quotas.md).
fn quota_json(v: &nubis_engine::QuotaView) -> serde_json::Value {
    let limits = |l: &nubis_core::QuotaLimits| json!({"instances": l.instances, "cores": l.cores, "ram_mib": l.ram_mib, "key_pairs": l.key_pairs, "items": l.items});
    let u = &v.usage;
    json!({"quota": {
        "account": v.account,
        "limits": limits(&v.limits),
        "defaults": limits(&v.defaults),
        "overrides": v.overrides,
        "usage": {"instances": u.instances, "cores": u.cores, "ram_mib": u.ram_mib, "key_pairs": u.key_pairs, "server_groups": u.server_groups},
    }})
}

async fn show_quota(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    json_ok(s.engine.quota(&id), |v| quota_json(&v))
}

async fn put_quota(
    State(s): State<AppState>,
    AdminPath(id): AdminPath<String>,
    AdminJson(b): AdminJson<nubis_core::QuotaOverrides>,
) -> Response {
    json_ok(s.engine.set_quota(&id, &b).await, |v| quota_json(&v))
}

async fn reset_quota(State(s): State<AppState>, AdminPath(id): AdminPath<String>) -> Response {
    json_ok(s.engine.reset_quota(&id).await, |v| quota_json(&v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
}

async fn create_user(
    State(s): State<AppState>,
    AdminPath(account): AdminPath<String>,
    AdminJson(b): AdminJson<NameBody>,
) -> Response {
    match s.engine.create_sub_user(&account, &b.name).await {
        Ok(u) => (StatusCode::CREATED, Json(json!({"user": user_json(&u)}))).into_response(),
        Err(e) => credential(e),
    }
}

/// Bind a Tencent soft token (virtual MFA, TOTP) to a sub-user (D7: CAM has no API for
/// it). The Base32 seed is shown only here.
async fn bind_soft_token(
    State(s): State<AppState>,
    AdminPath((account, user)): AdminPath<(String, String)>,
) -> Response {
    match s.engine.bind_soft_token(&account, &user).await {
        Ok((serial, seed)) => (
            StatusCode::CREATED,
            Json(json!({"mfa_device": {
                "serial_number": serial,
                "base32_seed": seed,
                "algorithm": "SHA1",
                "digits": 6,
                "period": 30,
            }})),
        )
            .into_response(),
        Err(e) => credential(e),
    }
}

async fn list_users(State(s): State<AppState>, AdminPath(account): AdminPath<String>) -> Response {
    json_ok(
        s.engine.sub_users(&account),
        |v| json!({"users": v.iter().map(user_json).collect::<Vec<_>>()}),
    )
}

async fn show_user(
    State(s): State<AppState>,
    AdminPath((account, user)): AdminPath<(String, String)>,
) -> Response {
    json_ok(
        s.engine.sub_user(&account, &user),
        |u| json!({"user": user_json(&u)}),
    )
}

async fn delete_user(
    State(s): State<AppState>,
    AdminPath((account, user)): AdminPath<(String, String)>,
) -> Response {
    no_content(s.engine.delete_sub_user(&account, &user).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPolicyBody {
    name: String,
    grammar: nubis_core::PolicyGrammar,
    /// The document as text, exactly as the cloud's CreatePolicy takes it.
    document: String,
}

async fn create_policy(
    State(s): State<AppState>,
    AdminPath(account): AdminPath<String>,
    AdminJson(b): AdminJson<NewPolicyBody>,
) -> Response {
    match s
        .engine
        .create_policy(&account, &b.name, b.grammar, &b.document)
        .await
    {
        Ok(p) => (
            StatusCode::CREATED,
            Json(json!({"policy": policy_json(&p)})),
        )
            .into_response(),
        Err(e) => credential(e),
    }
}

async fn list_policies(
    State(s): State<AppState>,
    AdminPath(account): AdminPath<String>,
) -> Response {
    json_ok(
        s.engine.policies(&account),
        |v| json!({"policies": v.iter().map(policy_json).collect::<Vec<_>>()}),
    )
}

async fn show_policy(
    State(s): State<AppState>,
    AdminPath((account, name)): AdminPath<(String, String)>,
) -> Response {
    match s.engine.policy(&account, &name) {
        Ok(p) => {
            let mut v = policy_json(&p);
            v["users"] = json!(s.engine.policy_users(&p));
            Json(json!({"policy": v})).into_response()
        }
        Err(e) => credential(e),
    }
}

async fn delete_policy(
    State(s): State<AppState>,
    AdminPath((account, name)): AdminPath<(String, String)>,
) -> Response {
    no_content(s.engine.delete_policy(&account, &name).await)
}

async fn list_attached(
    State(s): State<AppState>,
    AdminPath((account, user)): AdminPath<(String, String)>,
) -> Response {
    json_ok(
        s.engine.attached_policies(&account, &user),
        |v| json!({"policies": v.iter().map(policy_json).collect::<Vec<_>>()}),
    )
}

async fn attach(
    State(s): State<AppState>,
    AdminPath((account, user, policy)): AdminPath<(String, String, String)>,
) -> Response {
    no_content(s.engine.set_attached(&account, &user, &policy, true).await)
}

async fn detach(
    State(s): State<AppState>,
    AdminPath((account, user, policy)): AdminPath<(String, String, String)>,
) -> Response {
    no_content(s.engine.set_attached(&account, &user, &policy, false).await)
}

fn op_json(o: &nubis_core::Operation) -> serde_json::Value {
    json!({
        "id": o.id,
        "request_id": o.request_id,
        "instance": o.instance,
        "action": o.action.as_str(),
        "state": o.state.as_str(),
        "attempts": o.attempts,
        "steps": o.steps.len(),
        "steps_done": o.steps_done,
        "error": o.error,
        "created_at": o.created_at_ms,
        "finished_at": o.finished_at_ms,
    })
}

fn ops_json(ops: Vec<nubis_core::Operation>) -> serde_json::Value {
    ops.iter().map(op_json).collect()
}

#[derive(Deserialize)]
struct OpsQuery {
    instance: String,
}

async fn operations(State(s): State<AppState>, AdminQuery(q): AdminQuery<OpsQuery>) -> Response {
    json_ok(s.engine.admin_operations(&q.instance).await, ops_json)
}

async fn by_request(State(s): State<AppState>, AdminPath(rid): AdminPath<String>) -> Response {
    json_ok(s.engine.admin_operations_by_request(&rid).await, ops_json)
}

// ------------------------------------------------------------------------------------------
// The audit trail (docs/audit.md, docs/admin-api.md)

/// Most events one page of `/audit-events` holds.
const AUDIT_MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditEventsQuery {
    account: Option<String>,
    cloud: Option<String>,
    action: Option<String>,
    request_id: Option<String>,
    credential: Option<String>,
    resource: Option<String>,
    /// Unix seconds, inclusive.
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<usize>,
    next: Option<String>,
}

/// Every account's events (or one account's), newest first, filters AND-ed; `next` pages.
async fn audit_events(
    State(s): State<AppState>,
    AdminQuery(q): AdminQuery<AuditEventsQuery>,
) -> Response {
    use nubis_core::audit::{AuditCursor, AuditFilter, AuditQuery};
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > AUDIT_MAX_LIMIT {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            format!("limit must be 1 to {AUDIT_MAX_LIMIT}"),
        );
    }
    let since_ms = q.since.unwrap_or(0).saturating_mul(1000);
    let until_ms = q
        .until
        .map_or(i64::MAX, |u| u.saturating_mul(1000).saturating_add(999));
    if since_ms > until_ms {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "since is after until",
        );
    }
    let bind = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{since_ms}|{until_ms}|{limit}",
        q.account, q.cloud, q.action, q.request_id, q.credential, q.resource
    );
    let after = match q.next.as_deref() {
        None | Some("") => None,
        Some(t) => match AuditCursor::parse(t, &bind) {
            Some(c) => Some(c),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidValue",
                    "next is not a token of this query",
                );
            }
        },
    };
    let mut filters = Vec::new();
    filters.extend(q.cloud.map(AuditFilter::Cloud));
    filters.extend(q.action.map(AuditFilter::Action));
    filters.extend(q.request_id.map(AuditFilter::RequestId));
    filters.extend(q.credential.map(AuditFilter::Credential));
    filters.extend(q.resource.map(AuditFilter::Resource));
    let query = AuditQuery {
        account: q.account,
        since_ms,
        until_ms,
        filters,
        after,
        limit,
        oldest_first: false,
    };
    match s.engine.admin_audit_events(query).await {
        Ok(mut events) => {
            let more = events.len() > limit;
            events.truncate(limit);
            let next = events.last().filter(|_| more).map(|e| {
                AuditCursor {
                    time_ms: e.time_ms,
                    id: e.id.clone(),
                }
                .token(&bind)
            });
            Json(json!({"events": events, "next": next})).into_response()
        }
        Err(e) => domain(e),
    }
}

#[cfg(test)]
mod tests {
    //! The admin API in process (`tower::ServiceExt::oneshot`) over a temporary SQLite store.

    use super::*;
    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use nubis_api_aliyun::AliyunApi;
    use nubis_api_openstack::OpenStackApi;
    use nubis_api_tencent::TencentApi;
    use nubis_engine::Engine;
    use nubis_testkit::{KEY_ID as ID, SECRET};
    use std::sync::Arc;
    use tower::ServiceExt;

    async fn app() -> (Router, Engine, tempfile::TempDir) {
        let (engine, dir) = nubis_testkit::engine().await;
        let state = AppState {
            tencent: Arc::new(TencentApi::new(engine.clone(), false)),
            aliyun: Arc::new(AliyunApi::new(engine.clone(), false)),
            openstack: Arc::new(OpenStackApi::new(engine.clone(), false)),
            engine: engine.clone(),
            prometheus: metrics_exporter_prometheus::PrometheusBuilder::new()
                .build_recorder()
                .handle(),
            admin_logins: Default::default(),
        };
        let router = Router::new()
            .nest("/admin/v1", routes(state.clone()))
            .with_state(state);
        (router, engine, dir)
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    struct Resp {
        status: StatusCode,
        headers: axum::http::HeaderMap,
        body: serde_json::Value,
    }

    async fn send(
        app: &Router,
        method: &str,
        path: &str,
        auth: Option<(&str, &str)>,
        body: &str,
        peer: Option<&str>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/admin/v1{path}"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some((id, secret)) = auth {
            req = req.header(header::AUTHORIZATION, basic(id, secret));
        }
        let mut req = req.body(Body::from(body.to_string())).unwrap();
        if let Some(p) = peer {
            req.extensions_mut()
                .insert(ConnectInfo::<std::net::SocketAddr>(p.parse().unwrap()));
        }
        let r = app.clone().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {bytes:?}"))
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    const ADMIN: Option<(&str, &str)> = Some((ID, SECRET));

    /// A request with the admin key's credentials, from no particular address.
    async fn as_admin(app: &Router, method: &str, path: &str, body: &str) -> Resp {
        send(app, method, path, ADMIN, body, None).await
    }

    /// PATCH /access-keys/{id} {"enabled": …} with `auth`.
    async fn set_enabled(app: &Router, auth: Option<(&str, &str)>, id: &str, on: bool) -> Resp {
        let body = json!({ "enabled": on }).to_string();
        send(
            app,
            "PATCH",
            &format!("/access-keys/{id}"),
            auth,
            &body,
            None,
        )
        .await
    }

    /// GET /access-keys with `auth` from address `peer`.
    async fn list_keys_from(app: &Router, auth: Option<(&str, &str)>, peer: &str) -> Resp {
        send(app, "GET", "/access-keys", auth, "", Some(peer)).await
    }

    /// POST /keystone-users: a reader named `name` with this password.
    async fn add_reader(app: &Router, name: &str, password: &str) -> Resp {
        let body = json!({"name": name, "password": password, "roles": ["reader"]}).to_string();
        as_admin(app, "POST", "/keystone-users", &body).await
    }

    /// Admin calls are in the trail (never their bodies), and the trail pages.
    #[tokio::test]
    async fn audit_events_are_listed_filtered_and_paged() {
        let (app, _engine, _dir) = app().await;
        let made = as_admin(&app, "POST", "/access-keys", "").await;
        assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
        let new_secret = made.body["access_key"]["secret"]
            .as_str()
            .unwrap_or("no-secret")
            .to_string();
        let listed = send(
            &app,
            "GET",
            "/access-keys?x=1",
            Some((ID, SECRET)),
            "",
            Some("192.0.2.9:1"),
        )
        .await;
        assert_eq!(listed.status, StatusCode::OK);
        // An unauthenticated call is not in the trail.
        assert_eq!(
            send(&app, "GET", "/access-keys", None, "", None)
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
        let all = as_admin(&app, "GET", "/audit-events", "").await;
        assert_eq!(all.status, StatusCode::OK, "{:?}", all.body);
        let events = all.body["events"].as_array().unwrap();
        assert_eq!(events.len(), 2, "{:?}", all.body);
        let text = all.body.to_string();
        assert!(
            !text.contains(SECRET) && !text.contains(&new_secret),
            "{text}"
        );
        let e = &events[0];
        assert_eq!(e["action"], "GET /admin/v1/access-keys");
        assert_eq!(e["source_ip"], "192.0.2.9");
        assert_eq!(e["credential"], ID);
        assert_eq!(e["status"], 200);
        let rid = listed.headers["x-nubis-request-id"].to_str().unwrap();
        assert_eq!(e["request_id"], rid);
        let by_rid = as_admin(&app, "GET", &format!("/audit-events?request_id={rid}"), "").await;
        assert_eq!(by_rid.body["events"].as_array().unwrap().len(), 1);
        assert_eq!(
            as_admin(&app, "GET", "/audit-events?account=nobody", "")
                .await
                .body["events"],
            json!([])
        );
        // Pages of one, newest first; a token is bound to its query.
        let first = as_admin(&app, "GET", "/audit-events?limit=1&until=9999999999", "").await;
        let next = first.body["next"].as_str().unwrap().to_string();
        let second = as_admin(
            &app,
            "GET",
            &format!("/audit-events?limit=1&until=9999999999&next={next}"),
            "",
        )
        .await;
        assert_eq!(second.status, StatusCode::OK);
        assert_ne!(
            first.body["events"][0]["id"],
            second.body["events"][0]["id"]
        );
        for bad in [
            format!("/audit-events?limit=2&next={next}"),
            "/audit-events?limit=0".to_string(),
            "/audit-events?limit=1001".to_string(),
            "/audit-events?since=10&until=5".to_string(),
            "/audit-events?bogus=1".to_string(),
        ] {
            let r = as_admin(&app, "GET", &bad, "").await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        }
    }

    /// Authentication runs before any extractor: garbage without credentials is 401, and
    /// extractor rejections answer the admin API's JSON shape.
    #[tokio::test]
    async fn authentication_comes_before_bodies_and_rejections_are_json() {
        let (app, _e, _d) = app().await;
        let cases = [
            ("POST", "/faults", "{not json"),
            ("POST", "/keystone-users", "[]"),
            ("POST", "/instances/x/restrict", "{\"restriction\": 5}"),
            ("GET", "/operations", ""),
            ("PATCH", "/access-keys/x", "nope"),
            ("POST", "/access-keys", "{\"x\":1}"),
            ("DELETE", "/keystone-users/x", ""),
        ];
        for (n, (method, path, body)) in cases.into_iter().enumerate() {
            // A wrong secret for the real key only 4 times: the fifth would start throttling.
            let wrong = if n < 4 {
                (ID, "wrong")
            } else {
                ("AKIDother", "wrong")
            };
            let nobody = format!("AKIDnobody{n}");
            for auth in [None, Some(wrong), Some((nobody.as_str(), SECRET))] {
                let r = send(&app, method, path, auth, body, None).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} {auth:?}"
                );
                assert_eq!(r.body["error"]["code"], "Unauthorized");
                assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
            }
        }
        for (method, path, body, status, code) in [
            ("POST", "/faults", "{not json", 400, "InvalidBody"),
            ("POST", "/faults", "{\"bogus\": true}", 422, "InvalidBody"),
            ("POST", "/keystone-users", "[]", 422, "InvalidBody"),
            ("GET", "/operations", "", 400, "InvalidQuery"),
            ("PATCH", "/access-keys/x", "nope", 400, "InvalidBody"),
            ("POST", "/access-keys", "{\"x\":1}", 400, "InvalidBody"),
        ] {
            let r = as_admin(&app, method, path, body).await;
            assert_eq!(r.status.as_u16(), status, "{method} {path}: {}", r.body);
            assert_eq!(r.body["error"]["code"], code, "{method} {path}");
            assert!(r.body["error"]["message"].is_string());
        }
    }

    #[tokio::test]
    async fn access_keys_list_create_disable_delete() {
        let (app, engine, _d) = app().await;
        let r = as_admin(&app, "GET", "/access-keys", "").await;
        assert_eq!(r.status, StatusCode::OK);
        let keys = r.body["access_keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0]["id"], ID);
        assert_eq!(keys[0]["origin"], "bootstrap");
        assert!(
            !r.body.to_string().contains(SECRET),
            "secrets are never listed"
        );
        // The only key: neither disabled nor deleted.
        let r = set_enabled(&app, ADMIN, ID, false).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("last enabled key")
        );
        let r = as_admin(&app, "DELETE", &format!("/access-keys/{ID}"), "").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        // Create: the secret once.
        let r = as_admin(&app, "POST", "/access-keys", "").await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["access_key"]["id"].as_str().unwrap().to_string();
        let secret = r.body["access_key"]["secret"].as_str().unwrap().to_string();
        assert_eq!(r.body["access_key"]["origin"], "admin_api");
        assert!(engine.access_key(&id).is_some());
        let r = as_admin(&app, "GET", "/access-keys", "").await;
        assert_eq!(r.body["access_keys"].as_array().unwrap().len(), 2);
        assert!(!r.body.to_string().contains(&secret));
        let r = as_admin(&app, "GET", &format!("/access-keys/{id}"), "").await;
        assert_eq!(r.body["access_key"]["enabled"], true);
        assert!(r.body["access_key"].get("secret").is_none());
        // The new key authenticates; disable the bootstrap key with it.
        let new = Some((id.as_str(), secret.as_str()));
        let r = set_enabled(&app, new, ID, false).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["access_key"]["enabled"], false);
        let r = as_admin(&app, "GET", "/access-keys", "").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "a disabled key is refused"
        );
        // Now the new key is the last one.
        let r = send(&app, "DELETE", &format!("/access-keys/{id}"), new, "", None).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = set_enabled(&app, new, ID, true).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = as_admin(&app, "DELETE", &format!("/access-keys/{id}"), "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = send(&app, "GET", "/access-keys", new, "", None).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "a deleted key is refused"
        );
        let r = as_admin(&app, "DELETE", &format!("/access-keys/{id}"), "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn keystone_users_are_checked_and_conflicts_are_409() {
        let (app, _e, _d) = app().await;
        let long = "x".repeat(256);
        for (name, pw) in [
            ("auditor", ""),
            ("auditor", "short"),
            ("a:b", "Auditor@2026pw"),
            ("line\nbreak", "Auditor@2026pw"),
            ("", "Auditor@2026pw"),
            (long.as_str(), "Auditor@2026pw"),
        ] {
            let r = add_reader(&app, name, pw).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name:?} {pw:?}");
            assert_eq!(r.body["error"]["code"], "InvalidValue");
        }
        let r = add_reader(&app, "auditor", "Auditor@2026pw").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = add_reader(&app, "auditor", "Other@2026pw").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.body["error"]["code"], "Conflict");
        let r = add_reader(&app, "admin", "Other@2026pw").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = as_admin(
            &app,
            "PATCH",
            "/keystone-users/auditor",
            r#"{"roles":["member"]}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = as_admin(&app, "GET", "/keystone-users", "").await;
        assert_eq!(
            r.body,
            json!({"keystone_users": [{"name": "auditor", "roles": ["member"]}]})
        );
        let r = as_admin(
            &app,
            "PATCH",
            "/keystone-users/auditor",
            r#"{"password":""}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = as_admin(&app, "DELETE", "/keystone-users/auditor", "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = as_admin(&app, "DELETE", "/keystone-users/auditor", "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }

    /// Accounts, sub-users, policies, attachments and their keys, every bad input with its
    /// answer; a sub-user's key never opens the admin API.
    #[tokio::test]
    async fn tenancy_endpoints_validate_and_conflict() {
        let (app, engine, _d) = app().await;
        let ro = r#"{"version":"2.0","statement":[{"effect":"allow","action":"cvm:Describe*","resource":"*"}]}"#;
        let post = |path: &'static str, body: serde_json::Value| {
            let app = app.clone();
            async move { as_admin(&app, "POST", path, &body.to_string()).await }
        };
        // Accounts.
        let r = post(
            "/accounts",
            json!({"name": "team-a", "tencent_owner_uin": 100000000007u64}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["account"]["tencent_owner_uin"], 100000000007u64);
        assert!(
            r.body["account"]["aliyun_account_id"]
                .as_str()
                .unwrap()
                .len()
                == 16
        );
        let big = "x".repeat(TENANCY_BODY_LIMIT + 1);
        for (body, status, code) in [
            (json!({"name": "Team A"}), 400, "InvalidValue"),
            (json!({"name": ""}), 400, "InvalidValue"),
            (
                json!({"name": "t", "tencent_owner_uin": 0}),
                400,
                "InvalidValue",
            ),
            (
                json!({"name": "t", "tencent_owner_uin": -1}),
                422,
                "InvalidBody",
            ),
            (
                json!({"name": "t", "aliyun_account_id": "12ab"}),
                400,
                "InvalidValue",
            ),
            (json!({"name": "t", "bogus": 1}), 422, "InvalidBody"),
            (json!({"name": "team-a"}), 409, "Conflict"),
            (
                json!({"name": "t", "tencent_owner_uin": 100000000007u64}),
                409,
                "Conflict",
            ),
            (json!({"name": big}), 413, ""),
        ] {
            let r = post("/accounts", body.clone()).await;
            assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
            if !code.is_empty() {
                assert_eq!(r.body["error"]["code"], code, "{body}");
            }
        }
        let r = as_admin(&app, "GET", "/accounts", "").await;
        assert_eq!(r.body["accounts"].as_array().unwrap().len(), 2);
        let r = as_admin(&app, "GET", "/accounts/team-a", "").await;
        assert_eq!(r.body["account"]["admin"], false);
        assert_eq!(
            as_admin(&app, "GET", "/accounts/nope", "").await.status,
            StatusCode::NOT_FOUND
        );

        // Sub-users.
        let r = post("/accounts/team-a/users", json!({"name": "dev"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let uid = r.body["user"]["id"].as_u64().unwrap();
        for (path, body, status) in [
            ("/accounts/team-a/users", json!({"name": "a b"}), 400),
            ("/accounts/team-a/users", json!({"name": "dev"}), 409),
            ("/accounts/team-a/users", json!({"nom": "x"}), 422),
            ("/accounts/nope/users", json!({"name": "dev"}), 404),
        ] {
            let r = post(path, body.clone()).await;
            assert_eq!(r.status.as_u16(), status, "{path} {body}: {}", r.body);
        }
        let r = as_admin(&app, "GET", "/accounts/team-a/users", "").await;
        assert_eq!(r.body["users"][0]["name"], "dev");
        let r = as_admin(&app, "GET", "/accounts/team-a/users/dev", "").await;
        assert_eq!(r.body["user"]["id"], uid);

        // Policies: the parser's error comes back.
        let r = post(
            "/accounts/team-a/policies",
            json!({"name": "ro", "grammar": "cam", "document": ro}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["policy"]["document"], ro);
        for (body, status) in [
            (
                json!({"name": "bad", "grammar": "cam", "document": "{\"version\":\"2.0\"}"}),
                400,
            ),
            (
                json!({"name": "bad", "grammar": "cam", "document": "not json"}),
                400,
            ),
            (
                json!({"name": "bad", "grammar": "ram", "document": ro}),
                400,
            ),
            (
                json!({"name": "bad", "grammar": "oslo", "document": ro}),
                422,
            ),
            (
                json!({"name": "a b", "grammar": "cam", "document": ro}),
                400,
            ),
            (json!({"name": "ro", "grammar": "cam", "document": ro}), 409),
            (
                json!({"name": "x", "grammar": "cam", "document": "x".repeat(7000)}),
                400,
            ),
        ] {
            let r = post("/accounts/team-a/policies", body.clone()).await;
            assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        }
        let r = post(
            "/accounts/team-a/policies",
            json!({"name": "bad", "grammar": "cam", "document": "{\"version\":\"2.0\"}"}),
        )
        .await;
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("statement")
        );

        // Attach / detach.
        let path = "/accounts/team-a/users/dev/policies/ro";
        assert_eq!(
            as_admin(&app, "PUT", path, "").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            as_admin(&app, "PUT", path, "").await.status,
            StatusCode::CONFLICT
        );
        for missing in [
            "/accounts/team-a/users/nobody/policies/ro",
            "/accounts/team-a/users/dev/policies/nothing",
            "/accounts/nope/users/dev/policies/ro",
        ] {
            assert_eq!(
                as_admin(&app, "PUT", missing, "").await.status,
                StatusCode::NOT_FOUND,
                "{missing}"
            );
        }
        let r = as_admin(&app, "GET", "/accounts/team-a/users/dev/policies", "").await;
        assert_eq!(r.body["policies"][0]["name"], "ro");
        let r = as_admin(&app, "GET", "/accounts/team-a/policies/ro", "").await;
        assert_eq!(r.body["policy"]["users"], json!(["dev"]));
        let r = as_admin(&app, "DELETE", "/accounts/team-a/policies/ro", "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "attached");

        // Keys of a root and of a sub-user; neither opens the admin API.
        for (body, status) in [
            (json!({"account": "nope"}), 404),
            (json!({"account": "team-a", "user": "nobody"}), 404),
            (json!({"account": "team-a", "user": 5}), 400),
        ] {
            let r = post("/access-keys", body.clone()).await;
            assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        }
        let mut keys = Vec::new();
        for body in [
            json!({"account": "team-a"}),
            json!({"account": "team-a", "user": "dev"}),
        ] {
            let r = post("/access-keys", body).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["access_key"]["account"], "team-a");
            let k = &r.body["access_key"];
            keys.push((
                k["id"].as_str().unwrap().to_string(),
                k["secret"].as_str().unwrap().to_string(),
                k["user_id"].clone(),
            ));
        }
        assert_eq!(keys[0].2, serde_json::Value::Null);
        assert_eq!(keys[1].2, uid);
        for (id, secret, _) in &keys {
            let r = send(&app, "GET", "/accounts", Some((id, secret)), "", None).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(engine.access_key(&keys[1].0).unwrap().0.sub_user, Some(uid));

        // Deletions in dependency order.
        let r = as_admin(&app, "DELETE", "/accounts/team-a", "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "owns keys");
        let r = as_admin(&app, "DELETE", "/accounts/team-a/users/dev", "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "has a key");
        assert_eq!(
            as_admin(&app, "DELETE", "/accounts/admin", "").await.status,
            StatusCode::CONFLICT
        );
        for (id, _, _) in &keys {
            let r = as_admin(&app, "DELETE", &format!("/access-keys/{id}"), "").await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
        }
        assert_eq!(
            as_admin(&app, "DELETE", path, "").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            as_admin(&app, "DELETE", path, "").await.status,
            StatusCode::NOT_FOUND
        );
        for p in [
            "/accounts/team-a/users/dev",
            "/accounts/team-a/policies/ro",
            "/accounts/team-a",
        ] {
            assert_eq!(
                as_admin(&app, "DELETE", p, "").await.status,
                StatusCode::NO_CONTENT,
                "{p}"
            );
            assert_eq!(
                as_admin(&app, "DELETE", p, "").await.status,
                StatusCode::NOT_FOUND,
                "{p}"
            );
        }
        // Unauthenticated: 401 before anything.
        let r = send(&app, "POST", "/accounts", None, "{}", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    /// 5 failures per key ID or 20 per source address in 60 s: then 429 with Retry-After, even
    /// with the right secret.
    #[tokio::test]
    async fn failed_basic_auth_is_throttled_per_key_and_per_source() {
        let (app, _e, _d) = app().await;
        let limit = nubis_auth::login::USER_FAILURES;
        for _ in 0..limit {
            let r = list_keys_from(&app, Some((ID, "wrong")), "10.0.0.1:1").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = list_keys_from(&app, ADMIN, "10.0.0.2:1").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.body["error"]["code"], "TooManyRequests");
        let wait: u64 = r.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait));
        // Per source: many key IDs from one address.
        for n in 0..nubis_auth::login::SOURCE_FAILURES {
            let r = list_keys_from(&app, Some((&format!("AKIDx{n}"), "x")), "192.0.2.9:5").await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = list_keys_from(&app, Some(("AKIDfresh", "x")), "192.0.2.9:6").await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        let r = list_keys_from(&app, Some(("AKIDfresh", "x")), "192.0.2.10:6").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn quotas_are_shown_set_validated_and_reset() {
        let (app, _e, _d) = app().await;
        let r = as_admin(&app, "POST", "/accounts", r#"{"name": "team-q"}"#).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let r = as_admin(&app, "GET", "/accounts/team-q/quotas", "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(
            r.body["quota"]["limits"],
            json!({"instances": 10, "cores": 20, "ram_mib": 51200, "key_pairs": 100,
                "items": {"fixed_ips": -1, "floating_ips": 10, "injected_file_content_bytes": 10240,
                    "injected_file_path_bytes": 255, "injected_files": 5, "metadata_items": 128,
                    "security_group_rules": 20, "security_groups": 10,
                    "server_group_members": 10, "server_groups": 10}})
        );
        assert_eq!(r.body["quota"]["usage"]["instances"], 0);
        let r = as_admin(
            &app,
            "PUT",
            "/accounts/team-q/quotas",
            r#"{"instances": 3, "key_pairs": -1}"#,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["quota"]["limits"]["instances"], 3);
        assert_eq!(r.body["quota"]["limits"]["key_pairs"], -1);
        assert_eq!(
            r.body["quota"]["overrides"],
            json!({"instances": 3, "key_pairs": -1})
        );
        for (path, body, status, code) in [
            (
                "/accounts/team-q/quotas",
                r#"{"instances": -2}"#,
                400,
                "InvalidValue",
            ),
            (
                "/accounts/team-q/quotas",
                r#"{"cores": 2147483648}"#,
                400,
                "InvalidValue",
            ),
            (
                "/accounts/team-q/quotas",
                r#"{"vcpus": 1}"#,
                422,
                "InvalidBody",
            ),
            (
                "/accounts/team-q/quotas",
                r#"{"cores": 1.5}"#,
                422,
                "InvalidBody",
            ),
            ("/accounts/team-q/quotas", "not json", 400, "InvalidBody"),
            ("/accounts/nope/quotas", r#"{"cores": 1}"#, 404, "NotFound"),
        ] {
            let r = as_admin(&app, "PUT", path, body).await;
            assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
            assert_eq!(r.body["error"]["code"], code, "{body}");
        }
        let r = as_admin(&app, "DELETE", "/accounts/team-q/quotas", "").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["quota"]["limits"]["instances"], 10);
        assert_eq!(r.body["quota"]["overrides"], json!({}));
        let r = as_admin(&app, "GET", "/accounts/admin/quotas", "").await;
        assert_eq!(r.body["quota"]["limits"]["instances"], -1);
    }
}
