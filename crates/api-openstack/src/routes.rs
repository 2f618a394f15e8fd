//! One declaration per OpenStack operation: a `nubis_pipeline::Registry` per service (Keystone,
//! Nova, Glance) whose entries carry, besides the pipeline's fields, the method and path
//! pattern the operation answers and the roles its default policy asks for. Routing, the
//! metrics labels, the rate limits, the authorization point and the committed catalogues
//! (docs/catalogue/openstack-*.md) all derive from these tables.

use crate::tokens::Token;
use nubis_core::Principal;
use nubis_identity::CompiledPolicy;
use nubis_identity::policy::ActionMatch;
use nubis_pipeline::{ActionSpec, Authorizer, Column, Denied, Gate, Refusal, RegionUse, Registry};
use std::collections::BTreeMap;

/// Requests per second per account for every operation that changes something (as before the
/// registry: Nova itself has no rate limit; this is nubis's guard against runaway clients).
pub const WRITE_LIMIT_PER_SECOND: u32 = 20;

/// Which token an operation needs: its default oslo.policy rule, reduced to what nubis's roles
/// (admin, member, reader) can tell apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// No token (version documents, Keystone's token issue).
    Public,
    /// Any live token (reads; Keystone's own token checks are the handler's: subject or admin).
    Token,
    /// A token with the `admin` or `member` role (Nova's `PROJECT_MEMBER_OR_ADMIN`).
    Member,
    /// A token with the `admin` role (Glance's `metadef_admin`).
    Admin,
}

/// How an operation is reached, and the service's handler.
#[derive(Debug)]
pub struct Route<H> {
    /// `GET` (which answers `HEAD` too), `POST`, `PUT` or `DELETE`.
    pub method: &'static str,
    /// Below the service's prefix; `{name}` matches any one segment.
    pub path: &'static str,
    /// Nova's `POST /servers/{id}/action`: the body's one key that names the action.
    pub action: Option<&'static str>,
    /// The last Nova microversion (2.x) that has the route (the image proxy ends at 2.35).
    pub until: Option<u16>,
    pub need: Need,
    pub handler: H,
}

/// A registry entry: the pipeline's declaration with the route as its handler.
pub type Spec<H> = ActionSpec<Route<H>>;

/// The rate limit and mutation flag follow from the method: reads are free, writes limited.
pub const fn op<H>(
    name: &'static str,
    method: &'static str,
    path: &'static str,
    need: Need,
    policy: &'static str,
    body: &'static str,
    handler: H,
) -> Spec<H> {
    let reads = matches!(method.as_bytes(), b"GET");
    ActionSpec {
        name,
        rate_limit: if reads || matches!(need, Need::Public) {
            0
        } else {
            WRITE_LIMIT_PER_SECOND
        },
        mutates: !reads,
        dry_run: false,
        policy,
        // Keystone tokens are scoped by project through the oslo rules' target.
        per_resource: false,
        params: body,
        region: RegionUse::Optional,
        handler: Route {
            method,
            path,
            action: None,
            until: None,
            need,
            handler,
        },
    }
}

/// A Nova server action: `POST /v2.1/servers/{id}/action` with `{"<action>": …}`.
pub const fn server_action<H>(
    name: &'static str,
    action: &'static str,
    policy: &'static str,
    body: &'static str,
    handler: H,
) -> Spec<H> {
    let mut s = op(
        name,
        "POST",
        ACTION_PATH,
        Need::Member,
        policy,
        body,
        handler,
    );
    s.handler.action = Some(action);
    s
}

/// An action of another resource than servers: `POST <path>` with `{"<action>": …}`
/// (Nova's aggregates).
pub const fn resource_action<H>(
    name: &'static str,
    path: &'static str,
    action: &'static str,
    policy: &'static str,
    body: &'static str,
    handler: H,
) -> Spec<H> {
    let mut s = op(name, "POST", path, Need::Member, policy, body, handler);
    s.handler.action = Some(action);
    s
}

/// `spec` without a rate limit (Keystone's token operations have none).
pub const fn no_limit<H>(mut spec: Spec<H>) -> Spec<H> {
    spec.rate_limit = 0;
    spec
}

/// The path of every server action.
pub const ACTION_PATH: &str = "/compute/v2.1/servers/{id}/action";

/// `spec`, existing only up to microversion 2.`minor`.
pub const fn until<H>(mut spec: Spec<H>, minor: u16) -> Spec<H> {
    spec.handler.until = Some(minor);
    spec
}

/// What a request's method and path found.
pub enum Found<'r, H: 'static> {
    /// The operation, and the path's `{…}` segments in order.
    Op(&'static Spec<H>, Vec<&'r str>),
    /// The path exists, not with this method (405); the label of the path's operations.
    WrongMethod(&'static str),
    /// No route has the path (404).
    Nothing,
}

fn matches<'r>(pattern: &str, segs: &[&'r str]) -> Option<Vec<&'r str>> {
    let pattern = pattern.trim_start_matches('/');
    let mut params = Vec::new();
    let mut want = pattern.split('/');
    for seg in segs {
        let w = want.next()?;
        if w.starts_with('{') {
            params.push(*seg);
        } else if w != *seg {
            return None;
        }
    }
    want.next().is_none().then_some(params)
}

/// How specific a pattern is: literal segments before `{…}` ones, position by position, so
/// `/servers/detail` wins over `/servers/{id}`.
fn rank(pattern: &str) -> Vec<bool> {
    pattern.split('/').map(|s| !s.starts_with('{')).collect()
}

/// Which operations a lookup considers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Those that need no token (before authentication).
    Public,
    /// Those that need one (after authentication).
    Authenticated,
}

/// `path` (from the service's prefix on, trailing `/` dropped) as segments after the service's
/// name, split exactly (`//v3` keeps its empty segment); `None` past [`crate::MAX_PATH_SEGMENTS`].
pub fn full_segments<'r>(service: &'static str, path: &'r str) -> Option<Vec<&'r str>> {
    let rest = path.strip_prefix('/');
    let segs: Vec<&str> = std::iter::once(service)
        .chain(rest.into_iter().flat_map(|r| r.split('/')))
        .take(crate::MAX_PATH_SEGMENTS + 2)
        .collect();
    (segs.len() <= crate::MAX_PATH_SEGMENTS + 1).then_some(segs)
}

/// The operation `method` and the path segments `segs` (the service's name, then the path as
/// [`crate::path_segments`] splits it) name at microversion 2.`minor`, among `scope`.
pub fn find<'r, H>(
    registry: &'static Registry<Route<H>>,
    method: &str,
    segs: &[&'r str],
    minor: u16,
    scope: Scope,
) -> Found<'r, H> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut best: Option<(&'static Spec<H>, Vec<&'r str>)> = None;
    let mut path_only: Option<&'static Spec<H>> = None;
    for spec in registry.actions {
        let r = &spec.handler;
        let public = r.need == Need::Public;
        let in_scope = match scope {
            Scope::All => true,
            Scope::Public => public,
            Scope::Authenticated => !public,
        };
        if !in_scope || r.until.is_some_and(|u| minor > u) {
            continue;
        }
        let Some(params) = matches(r.path, segs) else {
            continue;
        };
        let slot = if r.method == method {
            best.as_ref().map(|(s, _)| s)
        } else {
            path_only.as_ref()
        };
        if slot.is_some_and(|s| rank(s.handler.path) >= rank(r.path)) {
            continue;
        }
        if r.method == method {
            best = Some((spec, params));
        } else {
            path_only = Some(spec);
        }
    }
    match (best, path_only) {
        (Some((spec, params)), _) => Found::Op(spec, params),
        (None, Some(spec)) => Found::WrongMethod(family(spec.name)),
        (None, None) => Found::Nothing,
    }
}

/// The label of a path's operations as a group (`server` for `server.show`, `server.delete`,
/// …): what a wrong method on the path is counted under.
pub fn family(name: &'static str) -> &'static str {
    name.rfind('.').map_or(name, |i| &name[..i])
}

/// The label of everything no route matches.
pub const UNKNOWN: &str = "unknown";

/// The catalogue's own columns for an OpenStack service.
pub fn columns<H>() -> [Column<Route<H>>; 3] {
    [
        ("method and path", |a| {
            let r = &a.handler;
            match r.action {
                Some(act) => format!("{} {} `{act}`", r.method, r.path),
                None => format!("{} {}", r.method, r.path),
            }
        }),
        ("microversions", |a| match a.handler.until {
            Some(u) => format!("2.1–2.{u}"),
            None => "all".into(),
        }),
        ("token", |a| {
            match a.handler.need {
                Need::Public => "none",
                Need::Token => "any",
                Need::Member => "admin or member",
                Need::Admin => "admin",
            }
            .into()
        }),
    ]
}

/// The gate's checks for an OpenStack operation, which names no version and no region: the
/// rate limit of the token's account, then the operation's oslo.policy rule (its `policy`
/// name) evaluated by nubis-identity on the token against `target`; an operation whose rule
/// the policy does not hold falls back to its [`Need`].
pub async fn admit<H>(
    gate: &Gate,
    registry: &'static Registry<Route<H>>,
    token: &Token,
    spec: &Spec<H>,
    policy: &CompiledPolicy,
    target: BTreeMap<String, String>,
) -> Result<(), Refusal> {
    let oslo = Oslo {
        token,
        need: spec.handler.need,
        policy,
        target,
    };
    let who = principal_of(token);
    gate.admit_with(registry, &who, "", spec.name, None, |_| None, &oslo)
        .await
        .map(drop)
}

/// The gate's principal for a token: its account (the rate limits' key, as before) and user.
fn principal_of(token: &Token) -> Principal {
    Principal {
        account: token.account.clone(),
        user: token.user_name.clone(),
        is_admin: token.is_admin(),
        sub_user: None,
        ..Default::default()
    }
}

/// Does `policy` hold a rule named `action`?
pub fn has_rule(policy: &CompiledPolicy, action: &str) -> bool {
    policy
        .statements
        .iter()
        .any(|s| matches!(&s.actions, ActionMatch::Exact(n) if n == action))
}

/// Is `action` allowed for `token` on `target` by `policy`?
pub fn allowed(
    policy: &CompiledPolicy,
    token: &Token,
    action: &str,
    target: BTreeMap<String, String>,
) -> bool {
    let principal = nubis_identity::Principal {
        account: token.account.clone(),
        kind: nubis_identity::PrincipalKind::Keystone(token.identity()),
        operation_protection: false,
    };
    nubis_identity::evaluate(
        &[policy],
        &nubis_identity::AuthzRequest {
            principal: &principal,
            action,
            resource: "",
            resource_account: None,
            target,
            context: nubis_identity::RequestContext::at(time::OffsetDateTime::now_utc()),
            protection: None,
        },
    )
    .is_allowed()
}

/// The authorization point for a Keystone token: the operation's oslo rule, or its [`Need`]
/// against the roles the token carries when the policy has no such rule.
struct Oslo<'t> {
    token: &'t Token,
    need: Need,
    policy: &'t CompiledPolicy,
    target: BTreeMap<String, String>,
}

impl Authorizer for Oslo<'_> {
    fn authorize(
        &self,
        principal: &Principal,
        policy_action: &'static str,
        _region: Option<&str>,
    ) -> Result<(), Denied> {
        let ok = match self.need {
            Need::Public => true,
            _ if has_rule(self.policy, policy_action) => {
                allowed(self.policy, self.token, policy_action, self.target.clone())
            }
            Need::Token => true,
            Need::Member => self.token.can_write(),
            Need::Admin => self.token.is_admin(),
        };
        if ok {
            Ok(())
        } else {
            Err(Denied {
                principal: principal.user.clone(),
                policy_action,
                detail: Default::default(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REG: Registry<Route<u8>> = Registry {
        cloud: "openstack",
        service: "test",
        version: "",
        actions: &[
            op(
                "thing.list",
                "GET",
                "/t/v1/things",
                Need::Token,
                "p:list",
                "—",
                0,
            ),
            op(
                "thing.create",
                "POST",
                "/t/v1/things",
                Need::Member,
                "p:create",
                "{\"thing\"}",
                1,
            ),
            op(
                "thing.show",
                "GET",
                "/t/v1/things/{id}",
                Need::Token,
                "p:show",
                "—",
                2,
            ),
            op(
                "thing.detail",
                "GET",
                "/t/v1/things/detail",
                Need::Token,
                "p:detail",
                "—",
                3,
            ),
            until(
                op("old.show", "GET", "/t/v1/old", Need::Token, "p:old", "—", 4),
                35,
            ),
            op("doc", "GET", "/t", Need::Public, "(none)", "—", 5),
        ],
    };

    fn found(method: &str, path: &str, minor: u16) -> String {
        let segs = full_segments("t", path.trim_end_matches('/')).unwrap();
        match find(&REG, method, &segs, minor, Scope::All) {
            Found::Op(s, p) => format!("{} {p:?}", s.name),
            Found::WrongMethod(l) => format!("405 {l}"),
            Found::Nothing => "404".into(),
        }
    }

    #[test]
    fn routes_by_method_and_most_specific_path() {
        assert_eq!(found("GET", "/v1/things", 1), "thing.list []");
        assert_eq!(found("HEAD", "/v1/things/", 1), "thing.list []");
        assert_eq!(found("POST", "/v1/things", 1), "thing.create []");
        assert_eq!(found("DELETE", "/v1/things", 1), "405 thing");
        assert_eq!(found("GET", "/v1/things/x", 1), "thing.show [\"x\"]");
        assert_eq!(found("GET", "/v1/things/detail", 1), "thing.detail []");
        assert_eq!(found("PUT", "/v1/things/detail", 1), "405 thing");
        assert_eq!(found("GET", "/v1/things/x/y", 1), "404");
        assert_eq!(found("GET", "/v1", 1), "404");
        assert_eq!(found("GET", "/v1/old", 35), "old.show []");
        assert_eq!(found("GET", "/v1/old", 36), "404");
        assert_eq!(found("POST", "/v1/old", 36), "404");
        assert_eq!(found("GET", "", 1), "doc []");
        assert_eq!(found("GET", "//v1/things", 1), "404");
        let segs = full_segments("t", "").unwrap();
        assert!(matches!(
            find(&REG, "GET", &segs, 1, Scope::Authenticated),
            Found::Nothing
        ));
        assert!(matches!(
            find(&REG, "GET", &segs, 1, Scope::Public),
            Found::Op(..)
        ));
        let deep = "/a".repeat(100);
        assert!(full_segments("t", &deep).is_none());
    }

    #[test]
    fn limits_and_labels_follow_the_declaration() {
        let get = |n| REG.get(n).unwrap();
        assert_eq!(get("thing.list").rate_limit, 0);
        assert!(!get("thing.list").mutates);
        assert_eq!(get("thing.create").rate_limit, WRITE_LIMIT_PER_SECOND);
        assert!(get("thing.create").mutates);
        assert_eq!(family("server.action.reboot"), "server.action");
        assert_eq!(family("limits"), "limits");
        assert!(REG.validate().is_ok());
        let c = REG.catalogue_with(&columns());
        assert!(c.contains("| thing.create | POST /t/v1/things | all | admin or member | {\"thing\"} | 20 | yes |"), "{c}");
        assert!(
            c.contains("| old.show | GET /t/v1/old | 2.1–2.35 | any |"),
            "{c}"
        );
        assert_eq!(
            no_limit(op("x", "DELETE", "/x", Need::Token, "p", "—", 0)).rate_limit,
            0
        );
    }
}
