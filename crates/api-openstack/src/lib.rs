//! OpenStack dialect: Keystone v3 (password tokens), Nova v2.1 (microversions 2.1–2.100) and a
//! minimal Glance v2, under the path prefixes `/identity`, `/compute` and `/image` of the one
//! listener. Thin like the other dialects: parse, call the engine, render, and one function
//! (`errors::map`) that turns domain errors into Nova faults. No rule about states lives here.
//!
//! Tokens are opaque random strings kept in memory for one hour: they do not survive a restart
//! (clients simply authenticate again on the 401).

mod compute;
pub mod errors;
mod identity;
mod identity_admin;
pub mod image;
pub mod microversion;
pub mod render;
mod routes;
pub mod state;
mod tokens;

use nubis_auth::HttpRequestParts;
use nubis_core::Principal;
use nubis_engine::Engine;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;

pub use tokens::{MAX_PER_USER as MAX_TOKENS_PER_USER, TOKEN_TTL_SECS, Token};

/// Where URLs point when no public URL is configured (nubis' default listen address).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// Paths this dialect serves (each with everything under it).
pub const PREFIXES: &[&str] = &["/identity", "/compute", "/image"];

pub use compute::REGISTRY as COMPUTE;
pub use identity::REGISTRY as IDENTITY;
pub use image::REGISTRY as IMAGE;
pub use routes::{Need, Route, WRITE_LIMIT_PER_SECOND, columns as catalogue_columns};

/// `name` as a metrics label (what [`Reply::operation`] carries): a declared operation, the
/// group of a path's operations (a wrong method on it: `server`, `keypair`, …), or `unknown`
/// (no route); `None` for anything else (a name a client made up).
pub fn label(name: &str) -> Option<&'static str> {
    let names = COMPUTE.names().chain(IDENTITY.names()).chain(IMAGE.names());
    names
        .flat_map(|n| [n, routes::family(n)])
        .chain([routes::UNKNOWN])
        .find(|n| *n == name)
}

/// Is this request OpenStack's? (A path under one of [`PREFIXES`].)
pub fn claims(path: &str) -> bool {
    route(path).is_some()
}

/// The service a path belongs to (`identity`, `compute` or `image`) and the rest of the path
/// after its prefix; `None` for paths outside [`PREFIXES`] (`/identityx` included). Pure and
/// linear: the routing entry point fuzzing drives without an engine.
pub fn route(path: &str) -> Option<(&'static str, &str)> {
    [
        ("/identity", "identity"),
        ("/compute", "compute"),
        ("/image", "image"),
    ]
    .into_iter()
    .find_map(|(prefix, service)| {
        path.strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| (service, rest))
    })
}

/// Path segments after a service prefix, as the routers match them: trailing `/` dropped,
/// split on `/`. At most [`MAX_PATH_SEGMENTS`] are returned; a longer path cannot name any
/// route, and `None` says so without building the whole list.
pub fn path_segments(rest: &str) -> Option<Vec<&str>> {
    let rest = rest.trim_end_matches('/').trim_start_matches('/');
    let segs: Vec<&str> = rest.split('/').take(MAX_PATH_SEGMENTS + 1).collect();
    (segs.len() <= MAX_PATH_SEGMENTS).then_some(segs)
}

/// The deepest route (`/v2.1/{project}/servers/{id}/os-volume_attachments/{id}`) has 6
/// segments; anything past this is not found.
pub const MAX_PATH_SEGMENTS: usize = 16;

/// A raw HTTP request as the listener hands it over. Its Host header is informational only:
/// URLs in replies are built from the configured public URL, never from it.
/// The client's address (`http.peer`: failed logins are throttled per source) is among the
/// request's parts.
pub struct RawRequest<'a> {
    pub http: HttpRequestParts<'a>,
}

/// The request's parts are read as `req.method`, `req.path`, `req.peer`, ….
impl<'a> std::ops::Deref for RawRequest<'a> {
    type Target = HttpRequestParts<'a>;
    fn deref(&self) -> &HttpRequestParts<'a> {
        &self.http
    }
}

impl RawRequest<'_> {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        nubis_auth::header(self.headers, name)
    }

    pub(crate) fn query(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.raw_query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }
}

/// Why a public base URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("public URL {url:?}: {reason}")]
pub struct PublicUrlError {
    pub url: String,
    pub reason: &'static str,
}

/// Check an operator-given public base URL: `http://` or `https://`, a host (and optional
/// port), and nothing after it but an optional path prefix of plain segments (no query, no
/// fragment, no user info). Returns it without a trailing `/`.
pub fn check_public_url(url: &str) -> Result<String, PublicUrlError> {
    let err = |reason| PublicUrlError {
        url: url.to_string(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| err("the scheme must be http:// or https://"))?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.is_empty() {
        return Err(err("no host"));
    }
    let host_ok = |c: char| c.is_ascii_alphanumeric() || "-._:[]".contains(c);
    if !authority.chars().all(host_ok) {
        return Err(err(
            "the host may hold only letters, digits, `-`, `.`, `:` and brackets",
        ));
    }
    if let Some((_, port)) = authority
        .rsplit_once(':')
        .filter(|_| !authority.ends_with(']'))
        && !port.parse::<u16>().is_ok_and(|p| p > 0)
    {
        return Err(err("the port must be a number from 1 to 65535"));
    }
    let seg_ok = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
    let path = path.trim_end_matches('/');
    if !path.split('/').all(|seg| {
        path.is_empty() || (!seg.is_empty() && seg != "." && seg != ".." && seg.chars().all(seg_ok))
    }) {
        return Err(err(
            "the path may only be a prefix of plain segments (no query, fragment or `..`)",
        ));
    }
    let base = format!("{}{authority}", &url[..url.len() - rest.len()]);
    Ok(if path.is_empty() {
        base
    } else {
        format!("{base}/{path}")
    })
}

pub struct Reply {
    pub status: u16,
    /// Besides Content-Type.
    pub headers: Vec<(String, String)>,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// `identity`, `compute` or `image` (for logs and metrics).
    pub service: &'static str,
    /// The operation's label (for logs and metrics), e.g. `server.action.reboot`: see [`label`].
    pub operation: &'static str,
    pub request_id: String,
    /// A login that proved the user's password (or credential) but was refused on the scope
    /// it asked for: the user it proved, for the audit trail (no token was issued).
    pub(crate) refused_login: Option<Box<Token>>,
    /// Image data the listener streams as the body (Glance download): its path and size.
    pub file: Option<(std::path::PathBuf, u64)>,
}

impl Reply {
    pub(crate) fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: serde_json::to_vec(v).expect("json"),
            service: "",
            operation: "",
            request_id: String::new(),
            refused_login: None,
            file: None,
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self {
            body: Vec::new(),
            ..Self::json(status, &Value::Null)
        }
    }

    pub(crate) fn text(status: u16, text: &str) -> Self {
        Self {
            content_type: "text/plain; charset=UTF-8",
            body: text.as_bytes().to_vec(),
            ..Self::empty(status)
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub(crate) fn op(mut self, operation: &'static str) -> Self {
        self.operation = operation;
        self
    }
}

pub struct OpenStackApi {
    pub(crate) engine: Engine,
    /// Rate limits and the authorization point of every registered operation.
    pub(crate) gate: nubis_pipeline::Gate,
    pub(crate) tokens: tokens::Tokens,
    /// Failed password logins, per user and per source address.
    pub(crate) logins: nubis_auth::login::LoginThrottle,
    /// Base of every URL in replies (catalog, links), e.g. `http://127.0.0.1:8080`.
    pub(crate) public_url: String,
    /// Request ID of a reboot → it is a hard one (operations never change their mode).
    pub(crate) reboot_modes: Mutex<HashMap<String, bool>>,
    /// Nova's oslo.policy: upstream defaults, overridden by the operator's policy file.
    pub(crate) nova_policy: nubis_identity::CompiledPolicy,
    /// Keystone's rules (docs/identity.md, "Keystone admin API").
    pub(crate) keystone_policy: nubis_identity::CompiledPolicy,
    /// Nova's operator views: the write lock of their records, deleted services.
    pub(crate) operator: compute::Operator,
    /// A shelved server is offloaded at once (Nova's `shelved_offload_time = 0`, the default);
    /// false: it stays SHELVED until shelveOffload (`-1`).
    pub(crate) shelved_offload: bool,
    /// A delete soft-deletes (Nova's `reclaim_instance_interval` > 0; the engine reclaims).
    pub(crate) deferred_delete: bool,
    /// Largest image upload, bytes (Glance's `image_size_cap`; default 1 TiB).
    pub(crate) image_size_cap: u64,
}

impl OpenStackApi {
    pub fn new(engine: Engine, rate_limits: bool) -> Self {
        // On a shared store, tokens and rate limits are the cluster's (docs/postgres.md).
        let cluster = engine.cluster();
        let mut gate = nubis_pipeline::Gate::new(rate_limits);
        if let Some(c) = &cluster {
            gate = gate.with_shared_limits(std::sync::Arc::new(c.clone()));
        }
        Self {
            engine,
            gate,
            tokens: cluster.map(tokens::Tokens::shared).unwrap_or_default(),
            logins: Default::default(),
            public_url: DEFAULT_PUBLIC_URL.to_string(),
            reboot_modes: Mutex::new(HashMap::new()),
            nova_policy: nubis_identity::policy::oslo::nova(None)
                .expect("Nova's default rules compile"),
            keystone_policy: identity_admin::policy(),
            operator: Default::default(),
            shelved_offload: true,
            deferred_delete: false,
            image_size_cap: image::upload::DEFAULT_SIZE_CAP,
        }
    }

    /// Use Nova policy rules from an oslo.policy file (JSON or YAML text) over the defaults;
    /// refused with the parser's error (a typo never silently locks everyone out).
    pub fn with_nova_policy(
        mut self,
        policy_file: &str,
    ) -> Result<Self, nubis_identity::PolicyError> {
        self.nova_policy = nubis_identity::policy::oslo::nova(Some(policy_file))?;
        Ok(self)
    }

    /// Serve URLs under `public_url` (checked by [`check_public_url`]) instead of the default.
    pub fn with_public_url(mut self, public_url: String) -> Self {
        self.public_url = public_url;
        self
    }

    /// Offload shelved servers at once (true, Nova's default) or keep them SHELVED.
    /// Nova's `reclaim_instance_interval` > 0: a delete soft-deletes
    /// (docs/deferred-delete.md).
    pub fn with_deferred_delete(mut self, on: bool) -> Self {
        self.deferred_delete = on;
        self
    }

    pub fn with_shelved_offload(mut self, offload: bool) -> Self {
        self.shelved_offload = offload;
        self
    }

    /// Refuse image uploads larger than `cap` bytes (Glance's `image_size_cap`).
    pub fn with_image_size_cap(mut self, cap: u64) -> Self {
        self.image_size_cap = cap;
        self
    }

    /// The largest image upload (bytes).
    pub fn image_size_cap(&self) -> u64 {
        self.image_size_cap
    }

    /// Is this a Glance image data upload (`PUT /image/v2/images/{id}/file`, or `/stage` for
    /// an import)? The listener streams its body to [`Self::handle_upload`] instead of
    /// reading it whole.
    pub fn is_upload(method: &str, path: &str) -> bool {
        let Some(rest) = path.strip_prefix("/image/v2/images/") else {
            return false;
        };
        method == "PUT"
            && rest
                .strip_suffix("/file")
                .or_else(|| rest.strip_suffix("/stage"))
                .is_some_and(|id| !id.is_empty() && !id.contains('/'))
    }

    /// [`Self::handle`] for an upload whose body the listener streams ([`Self::is_upload`]):
    /// the caller is authenticated and the image checked before the first chunk is read.
    pub async fn handle_upload<C: image::upload::Chunks>(
        &self,
        req: RawRequest<'_>,
        body: &mut C,
    ) -> Reply {
        self.handle_with(req, Some(body)).await
    }

    /// Use this login throttle (tests use small windows).
    pub fn with_login_throttle(mut self, t: nubis_auth::login::LoginThrottle) -> Self {
        self.logins = t;
        self
    }

    /// Record every request that carries a live token in the audit trail (docs/audit.md).
    pub fn with_auditor(mut self, auditor: std::sync::Arc<dyn nubis_pipeline::Auditor>) -> Self {
        self.gate = self.gate.with_auditor(auditor);
        self
    }

    /// Live Keystone tokens of `user` (at most [`MAX_TOKENS_PER_USER`]).
    pub async fn live_tokens_of(&self, user: &str) -> usize {
        self.tokens.count_of(user).await
    }

    pub(crate) fn base_url(&self) -> String {
        self.public_url.clone()
    }

    /// A live token whose user still holds the credential it was issued under.
    pub(crate) async fn token(&self, id: &str) -> Option<Token> {
        self.token_digest(&tokens::digest(id)).await
    }

    /// The live token of a request to `service` (its type: compute, image, identity) at
    /// `rest` (the path below the service's mount), if its application credential's access
    /// rules, when it has any, allow the request (keystonemiddleware's
    /// `validate_allowed_request`: one rule of the service whose method is the request's
    /// and whose template matches the path — below the mount, as a service on its own port
    /// sees it, or the whole path). Validating a token is always allowed. `None`: 401.
    pub(crate) async fn request_token(
        &self,
        req: &RawRequest<'_>,
        service: &str,
        rest: &str,
    ) -> Option<Token> {
        let t = self
            .token(req.header("x-auth-token").unwrap_or_default())
            .await?;
        let Some(ac) = &t.app_cred else {
            return Some(t);
        };
        let rules = self.engine.ks_app_cred_rules(ac);
        if rules.is_empty()
            || (service == "identity" && req.method == "GET" && rest.ends_with("/v3/auth/tokens"))
            || rules.iter().any(|r| {
                r.allows(service, req.method, rest) || r.allows(service, req.method, req.path)
            })
        {
            return Some(t);
        }
        None
    }

    pub(crate) async fn token_digest(&self, key: &tokens::Digest32) -> Option<Token> {
        let t = self.tokens.get_digest(key).await?;
        if self.engine.ks_stamp(&t.user_id).as_deref() != Some(t.stamp.as_str())
            || t.app_cred
                .as_ref()
                .is_some_and(|a| !self.engine.ks_app_cred_live(a))
            || t.trust
                .as_ref()
                .is_some_and(|x| !self.engine.ks_trust_valid(x))
            || !self.roles_still_held(&t)
        {
            self.tokens.revoke_digest(key).await;
            return None;
        }
        Some(t)
    }

    /// Does the token's user still hold every role the token carries on its scope? Keystone
    /// revokes a user's tokens on a project (or domain) when a role assignment there is
    /// deleted; a token whose role was taken away dies here the same way.
    fn roles_still_held(&self, t: &Token) -> bool {
        use nubis_engine::keystone::Target;
        let target = match (&t.scope, &t.project, &t.domain) {
            (tokens::Scope::Project, Some(p), _) => Target::Project(p.id.clone()),
            (tokens::Scope::Domain, _, Some((id, _))) => Target::Domain(id.clone()),
            (tokens::Scope::System, _, _) => Target::System,
            _ => return true,
        };
        // A trust token's roles are the trustor's.
        let holder = match &t.trust {
            Some(id) => match self
                .engine
                .ks_get::<nubis_engine::keystone::trusts::Trust>(id)
            {
                Ok(tr) => tr.trustor_user_id,
                Err(_) => return false,
            },
            None => t.user_id.clone(),
        };
        let held = self.engine.ks_roles_on(&holder, &target);
        t.roles.iter().all(|r| held.contains(&r.to_lowercase()))
    }

    /// A live token and the engine's principal for it (the web console's Keystone session:
    /// the same checks as a request's token).
    pub async fn session(&self, id: &str) -> Option<(Principal, Token)> {
        let t = self.token(id).await?;
        Some((self.principal(&t), t))
    }

    /// The engine's principal for a token: its account; an admin (Nova's `context_is_admin`,
    /// role `admin`) sees every account, anyone else only its project's instances.
    pub(crate) fn principal(&self, token: &Token) -> Principal {
        Principal {
            account: token.account.clone(),
            user: token.user_name.clone(),
            is_admin: token.is_admin(),
            sub_user: None,
            keystone_user: Some(token.user_id.clone()),
            project: token.project.as_ref().map(|p| nubis_core::ProjectScope {
                id: p.id.clone(),
                is_default: p.id == ids::project_id(&token.account),
            }),
            ..Default::default()
        }
    }

    pub async fn handle(&self, req: RawRequest<'_>) -> Reply {
        self.handle_with::<image::upload::Buffered<'_>>(req, None)
            .await
    }

    async fn handle_with<C: image::upload::Chunks>(
        &self,
        req: RawRequest<'_>,
        upload: Option<&mut C>,
    ) -> Reply {
        // The caller, when the request carries a live token: read before the request runs
        // (it may revoke its own token), only when a trail is kept.
        let caller = match (self.gate.auditor(), req.header("x-auth-token")) {
            (Some(_), Some(id)) => self.token(id).await.map(|t| (t, audit_now_ms())),
            _ => None,
        };
        let started = audit_now_ms();
        let reply = self.route(&req, upload).await;
        // A login (password, application credential, token) that issued a token is recorded
        // under the token it issued: its caller is now authenticated (docs/audit.md).
        // A login refused on its scope after the user proved who it is, under that user.
        let caller = match caller {
            Some(c) => Some(c),
            None => self.login_caller(&reply, started).await,
        };
        if let (Some(auditor), Some((token, time_ms))) = (self.gate.auditor(), caller) {
            auditor
                .record(self.audit_event(&req, &reply, &token, time_ms))
                .await;
        }
        reply
    }

    /// Who a login is recorded under, when a trail is kept: the user it refused on its scope
    /// after the user proved who it is, or the token it issued.
    async fn login_caller(&self, reply: &Reply, started: i64) -> Option<(Token, i64)> {
        self.gate.auditor()?;
        if reply.operation != "identity.token.issue" {
            return None;
        }
        if let Some(user) = &reply.refused_login {
            return Some(((**user).clone(), started));
        }
        if reply.status != 201 {
            return None;
        }
        let (_, issued) = reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("x-subject-token"))?;
        self.token(issued).await.map(|t| (t, started))
    }

    /// The trail's event of a request a token authenticated. The token's ID is a secret: the
    /// credential is its `audit_id` (Keystone's own non-secret token identifier).
    fn audit_event(
        &self,
        req: &RawRequest<'_>,
        reply: &Reply,
        token: &tokens::Token,
        time_ms: i64,
    ) -> nubis_core::audit::AuditEvent {
        use nubis_core::audit::{AuditEvent, MAX_FIELD, cut};
        let mut params = serde_json::from_slice::<Value>(req.body).unwrap_or(Value::Null);
        let mut resources: Vec<String> = req
            .path
            .split('/')
            .filter(|s| uuid::Uuid::parse_str(s).is_ok())
            .map(str::to_string)
            .collect();
        nubis_pipeline::audit::collect_resources(&params, &mut resources);
        if let Value::Object(m) = &mut params {
            m.insert("nubis:path".into(), Value::String(cut(req.path, MAX_FIELD)));
        }
        let is_admin = self
            .engine
            .admin_principal()
            .is_some_and(|a| a.account == token.account);
        let source = nubis_pipeline::Source::of(req.peer, req.headers);
        let failed = reply.status >= 400;
        AuditEvent {
            id: AuditEvent::new_id(),
            time_ms,
            account: token.account.clone(),
            user: token.user_name.clone(),
            sub_user: None,
            is_admin,
            role: None,
            credential: token.audit_id.clone(),
            cloud: "openstack".into(),
            service: reply.service.to_string(),
            version: String::new(),
            action: reply.operation.to_string(),
            read_only: Some(matches!(req.method, "GET" | "HEAD")),
            region: None,
            resources,
            source_ip: source.peer.map(|p| p.to_string()).unwrap_or_default(),
            user_agent: source.user_agent,
            request_id: reply.request_id.clone(),
            error_code: failed.then(|| reply.status.to_string()),
            error_message: None,
            status: reply.status,
            parameters: nubis_pipeline::audit::parameters_text(params),
        }
    }

    async fn route<C: image::upload::Chunks>(
        &self,
        req: &RawRequest<'_>,
        upload: Option<&mut C>,
    ) -> Reply {
        let request_id = nubis_core::ids::new_openstack_request_id();
        let (service, mut reply) = match route(req.path) {
            Some(("identity", rest)) => ("identity", identity::handle(self, req, rest).await),
            Some(("compute", rest)) => (
                "compute",
                compute::handle(self, req, rest, &request_id).await,
            ),
            Some(("image", rest)) => (
                "image",
                image::handle(self, req, rest, upload, &request_id).await,
            ),
            _ => ("", Reply::text(404, "Not Found")),
        };
        reply.service = service;
        reply
            .headers
            .push(("x-openstack-request-id".into(), request_id.clone()));
        if service == "compute" {
            reply
                .headers
                .push(("x-compute-request-id".into(), request_id.clone()));
        }
        if req.method == "HEAD" {
            reply.body.clear();
            reply.file = None;
        }
        reply.request_id = request_id;
        reply
    }
}

fn audit_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Stable OpenStack identifiers derived from nubis records.
pub mod ids {
    use uuid::Uuid;

    pub const ADMIN_ACCOUNT: &str = "admin";
    pub const DEFAULT_DOMAIN_ID: &str = "default";
    pub const DEFAULT_DOMAIN_NAME: &str = "Default";
    /// Roles every token of the admin user carries.
    pub const ROLES: &[&str] = &["admin", "member", "reader"];
    /// The built-in network every server is attached to (there is no Neutron).
    pub const NETWORK_NAME: &str = "private";

    const NS: Uuid = Uuid::from_u128(0x6e75_6269_735f_4f53_8a00_0000_0000_0001);

    fn derived(kind: &str, name: &str) -> Uuid {
        Uuid::new_v5(&NS, format!("{kind}:{name}").as_bytes())
    }

    /// Keystone user ID of an account's user (32 hex digits, Keystone's form).
    pub fn user_id(account: &str) -> String {
        derived("user", account).simple().to_string()
    }
    /// Keystone project ID of an account.
    pub fn project_id(account: &str) -> String {
        derived("project", account).simple().to_string()
    }
    pub fn role_id(role: &str) -> String {
        derived("role", role).simple().to_string()
    }
    pub fn service_id(service: &str) -> String {
        derived("service", service).simple().to_string()
    }
    pub fn endpoint_id(service: &str, interface: &str) -> String {
        derived("endpoint", &format!("{service}/{interface}"))
            .simple()
            .to_string()
    }
    /// Glance ID of a catalogue image.
    pub fn image_uuid(image_id: &str) -> Uuid {
        derived("image", image_id)
    }
    pub fn network_uuid() -> Uuid {
        derived("network", NETWORK_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_prefixes_only() {
        for p in [
            "/identity",
            "/identity/v3/auth/tokens",
            "/compute/",
            "/compute/v2.1/servers",
            "/image",
            "/image/v2/images",
        ] {
            assert!(claims(p), "{p}");
        }
        for p in [
            "/",
            "/identityx",
            "/computer",
            "/images",
            "/admin/v1/x",
            "/healthz",
        ] {
            assert!(!claims(p), "{p}");
        }
    }

    #[test]
    fn labels_are_declared_names_their_groups_and_unknown() {
        for name in [
            "server.action.reboot",
            "server.action",
            "server",
            "keypair.delete",
            "identity.token.issue",
            "image.show",
            "instance_action.list",
            "unknown",
        ] {
            assert_eq!(label(name), Some(name), "{name}");
        }
        for name in ["server.action.evil", "", "other", "server.list\n"] {
            assert_eq!(label(name), None, "{name:?}");
        }
    }

    #[test]
    fn route_splits_service_and_rest() {
        assert_eq!(route("/identity"), Some(("identity", "")));
        assert_eq!(
            route("/compute/v2.1/servers"),
            Some(("compute", "/v2.1/servers"))
        );
        assert_eq!(route("/image/v2/images"), Some(("image", "/v2/images")));
        assert_eq!(route("/imagex"), None);
        assert_eq!(route(""), None);
    }

    #[test]
    fn path_segments_are_bounded() {
        assert_eq!(
            path_segments("/v2.1/servers/x/"),
            Some(vec!["v2.1", "servers", "x"])
        );
        assert_eq!(path_segments(""), Some(vec![""]));
        let deep = "/a".repeat(100_000);
        assert_eq!(path_segments(&deep), None);
        let at_limit = "/a".repeat(MAX_PATH_SEGMENTS);
        assert_eq!(path_segments(&at_limit).map(|s| s.len()), Some(16));
    }

    #[test]
    fn public_urls() {
        for (given, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("https://cloud.example.com/", "https://cloud.example.com"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://edge.example/nubis/", "https://edge.example/nubis"),
        ] {
            assert_eq!(check_public_url(given).unwrap(), want);
        }
        for bad in [
            "",
            "ftp://x",
            "cloud.example.com",
            "http://",
            "http:///x",
            "http://x:0",
            "http://x:99999",
            "http://x:port",
            "http://user@x",
            "http://x/?q=1",
            "http://x/#f",
            "http://x/a/../b",
            "http://x/a b",
            "http://x\r\nSet-Cookie:1",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn derived_ids_are_stable() {
        assert_eq!(ids::user_id("admin"), ids::user_id("admin"));
        assert_ne!(ids::user_id("admin"), ids::project_id("admin"));
        assert_eq!(ids::user_id("admin").len(), 32);
    }
}
