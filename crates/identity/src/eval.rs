//! The one evaluation: every request of every service, against the compiled policies that
//! apply to its principal, answers Allow or Deny with a reason the dialect renders.
//!
//! Order: tenancy (a resource of another account is refused) → the account root is allowed
//! in its own account; anyone else needs an `Allow` statement and no matching `Deny`
//! (explicit deny wins) → Tencent operation protection (a sensitive action needs a recent
//! MFA authentication).

use crate::model::{KeystoneScope, Principal, PrincipalKind};
use crate::policy::pattern::Pattern;
use crate::policy::{
    ActionMatch, CompiledPolicy, Condition, ConditionOp, ContextKey, Effect, Predicate,
    SetQualifier, Template, TemplatePart, Value,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The facts about a request that conditions read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub now: OffsetDateTime,
    pub source_ip: Option<IpAddr>,
    /// When the credential's MFA authentication happened (STS GetSessionToken with a TOTP
    /// code, a console login); `None` = no MFA.
    pub mfa_authenticated_at: Option<OffsetDateTime>,
    pub secure_transport: Option<bool>,
    /// The resource's tags (key, value).
    pub resource_tags: Vec<(String, String)>,
    /// The tags the request sets.
    pub request_tags: Vec<(String, String)>,
    /// Service-specific condition keys (`cvm:region`, ...) and their values.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn at(now: OffsetDateTime) -> Self {
        Self {
            now,
            source_ip: None,
            mfa_authenticated_at: None,
            secure_transport: None,
            resource_tags: Vec::new(),
            request_tags: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// Tencent operation protection: the actions that need an MFA authentication no older than
/// `validity` when the principal has the flag (`SetMfaFlag` ActionFlag).
#[derive(Debug, Clone, PartialEq)]
pub struct OperationProtection {
    pub sensitive: Vec<Pattern>,
    pub validity: Duration,
}

/// The CVM actions operation protection guards: the seeds' actions that change a guest's
/// credentials or boot it into rescue (issue 13), and the served actions whose documented
/// errors list `UnauthorizedOperation.MFANotFound` (docs/identity-wire.md §4, D8: reboot,
/// stop, terminate). The union, so that neither a seed scenario nor a client written against
/// the cloud's error lists misses its MFA code.
pub const TENCENT_SENSITIVE_ACTIONS: &[&str] = &[
    "cvm:ResetInstancesPassword",
    "cvm:AssociateInstancesKeyPairs",
    "cvm:DisassociateInstancesKeyPairs",
    "cvm:EnterRescueMode",
    "cvm:ExitRescueMode",
    "cvm:RebootInstances",
    "cvm:StopInstances",
    "cvm:TerminateInstances",
];

/// How long an MFA authentication covers sensitive actions (nubis's default; configurable).
pub const DEFAULT_MFA_VALIDITY: Duration = Duration::minutes(30);

impl OperationProtection {
    pub fn tencent() -> Self {
        Self {
            sensitive: TENCENT_SENSITIVE_ACTIONS
                .iter()
                .map(|a| Pattern::new(a))
                .collect(),
            validity: DEFAULT_MFA_VALIDITY,
        }
    }

    pub fn covers(&self, action: &str) -> bool {
        self.sensitive.iter().any(|p| p.matches_ignore_case(action))
    }
}

/// One authorization question.
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    pub principal: &'a Principal,
    /// The canonical action, as the registry's `policy` names it: `cvm:RebootInstances`,
    /// `ecs:RebootInstance`, `os_compute_api:servers:reboot`.
    pub action: &'a str,
    /// The resource name the policy grammar matches (`qcs::cvm:...`, `acs:ecs:...`);
    /// `*`-only statements match any, including the empty name of account-less actions.
    pub resource: &'a str,
    /// The account that owns the resource (`None`: the action names no resource).
    pub resource_account: Option<&'a str>,
    /// oslo.policy's target (`project_id`, `user_id` of the resource's owner).
    pub target: BTreeMap<String, String>,
    pub context: RequestContext,
    /// The service's operation protection, if it has one (Tencent).
    pub protection: Option<&'a OperationProtection>,
}

/// A statement of a policy: the policy's name and the statement's index (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    pub policy: String,
    pub statement: usize,
}

/// What asked for MFA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MfaSource {
    /// A policy condition on the MFA key (`acs:MFAPresent`, `qcs:mfa`).
    Statement(StatementRef),
    /// Tencent operation protection of a sensitive action.
    OperationProtection,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(Allowed),
    Deny(Denied),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The account root, in its own account.
    AccountRoot,
    Statement(StatementRef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The resource belongs to another account (dialects answer not-found where the cloud
    /// hides existence).
    OtherAccount,
    /// A `Deny` statement matched.
    ExplicitDeny(StatementRef),
    /// No statement allowed the action (sub-users are denied by default).
    NoStatementAllowed,
    /// MFA is needed and the request has none (Tencent `UnauthorizedOperation.MFANotFound`).
    MfaNotFound(MfaSource),
    /// MFA is needed and the request's is older than allowed (`...MFAExpired`).
    MfaExpired {
        source: MfaSource,
        authenticated_at: OffsetDateTime,
        max_age: Duration,
    },
    /// oslo.policy `enforce_scope`: the rule does not accept the token's scope type.
    ScopeNotAllowed(StatementRef),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow(_))
    }

    /// A stable name of the outcome for dialects, logs and the audit trail.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Allow(Allowed::AccountRoot) => "AllowedAsRoot",
            Self::Allow(Allowed::Statement(_)) => "AllowedByStatement",
            Self::Deny(Denied::OtherAccount) => "OtherAccount",
            Self::Deny(Denied::ExplicitDeny(_)) => "ExplicitDeny",
            Self::Deny(Denied::NoStatementAllowed) => "NoStatementAllowed",
            Self::Deny(Denied::MfaNotFound(_)) => "MfaNotFound",
            Self::Deny(Denied::MfaExpired { .. }) => "MfaExpired",
            Self::Deny(Denied::ScopeNotAllowed(_)) => "ScopeNotAllowed",
        }
    }
}

/// Evaluates `req` against `policies` (those attached to the principal, or the service's
/// oslo policy for a Keystone principal).
pub fn evaluate(policies: &[&CompiledPolicy], req: &AuthzRequest<'_>) -> Decision {
    let keystone = matches!(req.principal.kind, PrincipalKind::Keystone(_));
    // Keystone principals are scoped by their project: the oslo rules compare the target's
    // project with the token's, so account ownership is theirs to check.
    if !keystone
        && req
            .resource_account
            .is_some_and(|a| a != req.principal.account)
    {
        return Decision::Deny(Denied::OtherAccount);
    }
    let verdict = if req.principal.is_root() {
        Decision::Allow(Allowed::AccountRoot)
    } else {
        by_statements(policies, req)
    };
    if !verdict.is_allowed() {
        return verdict;
    }
    match req.protection {
        Some(p) if req.principal.operation_protection && p.covers(req.action) => {
            match req.context.mfa_authenticated_at {
                None => Decision::Deny(Denied::MfaNotFound(MfaSource::OperationProtection)),
                Some(at) if req.context.now - at > p.validity => {
                    Decision::Deny(Denied::MfaExpired {
                        source: MfaSource::OperationProtection,
                        authenticated_at: at,
                        max_age: p.validity,
                    })
                }
                Some(_) => verdict,
            }
        }
        _ => verdict,
    }
}

/// Could `policies` decide `action` differently for different resources of the service?
/// True when a statement covering the action names resources that `service_resource` (the
/// name of every resource of the service in the account and region, ending in `*`) does not
/// match, e.g. `acs:ecs:*:*:instance/i-1`: such a statement applies only once a particular
/// resource is named, so the decision about `service_resource` alone is not final.
pub fn names_resources(policies: &[&CompiledPolicy], action: &str, service_resource: &str) -> bool {
    policies.iter().flat_map(|p| &p.statements).any(|st| {
        st.actions.matches(action) && st.resources.iter().any(|r| !r.matches(service_resource))
    })
}

fn by_statements(policies: &[&CompiledPolicy], req: &AuthzRequest<'_>) -> Decision {
    let mut hard_deny = None;
    let mut mfa_deny = None;
    let mut allow = None;
    let mut mfa_allow = None;
    let mut scope = None;
    // MFA is present while its authentication is within the service's MFA validity (D6);
    // without operation protection any MFA authentication counts.
    let has_mfa = req.context.mfa_authenticated_at.is_some_and(|at| {
        req.protection
            .is_none_or(|p| req.context.now - at <= p.validity)
    });
    for policy in policies {
        let mut env = Env {
            req,
            mfa_present: has_mfa,
            is_admin: false,
        };
        env.is_admin = is_admin(policy, &env);
        for (i, st) in policy.statements.iter().enumerate() {
            if !st.actions.matches(req.action)
                || !(st.resources.is_empty()
                    || st.resources.iter().any(|r| r.matches(req.resource)))
            {
                continue;
            }
            let at = || StatementRef {
                policy: policy.name.clone(),
                statement: i,
            };
            if policy.enforce_scope && !st.scope_types.is_empty() {
                if let PrincipalKind::Keystone(k) = &req.principal.kind {
                    if !st.scope_types.iter().any(|s| s == k.scope.type_name()) {
                        scope.get_or_insert_with(at);
                        continue;
                    }
                }
            }
            let holds = env.eval(&st.when);
            // Would the statement hold if the request had MFA now? Tells "needs MFA" apart.
            let holds_with_mfa = || {
                if has_mfa {
                    holds
                } else {
                    Env {
                        mfa_present: true,
                        ..env
                    }
                    .eval(&st.when)
                }
            };
            match (st.effect, holds) {
                (Effect::Deny, true) if !holds_with_mfa() => {
                    mfa_deny.get_or_insert_with(at);
                }
                (Effect::Deny, true) => {
                    hard_deny.get_or_insert_with(at);
                }
                (Effect::Allow, true) => {
                    allow.get_or_insert_with(at);
                }
                (Effect::Allow, false) if holds_with_mfa() => {
                    mfa_allow.get_or_insert_with(at);
                }
                _ => {}
            }
        }
    }
    if let Some(s) = hard_deny {
        Decision::Deny(Denied::ExplicitDeny(s))
    } else if let Some(s) = mfa_deny {
        Decision::Deny(Denied::MfaNotFound(MfaSource::Statement(s)))
    } else if let Some(s) = allow {
        Decision::Allow(Allowed::Statement(s))
    } else if let Some(s) = mfa_allow {
        Decision::Deny(Denied::MfaNotFound(MfaSource::Statement(s)))
    } else if let Some(s) = scope {
        Decision::Deny(Denied::ScopeNotAllowed(s))
    } else {
        Decision::Deny(Denied::NoStatementAllowed)
    }
}

/// Nova's `is_admin`: the policy's `context_is_admin` rule (with `is_admin` itself false),
/// or the admin role when the policy has no such rule.
fn is_admin(policy: &CompiledPolicy, env: &Env<'_>) -> bool {
    let PrincipalKind::Keystone(k) = &env.req.principal.kind else {
        return false;
    };
    policy
        .statements
        .iter()
        .find(|s| matches!(&s.actions, ActionMatch::Exact(n) if n == "context_is_admin"))
        .map(|s| env.eval(&s.when))
        .unwrap_or_else(|| k.roles.contains("admin"))
}

#[derive(Clone, Copy)]
struct Env<'a> {
    req: &'a AuthzRequest<'a>,
    mfa_present: bool,
    is_admin: bool,
}

/// A request value a condition compares.
enum Ctx {
    Str(String),
    Ip(IpAddr),
    Date(OffsetDateTime),
    Bool(bool),
}

impl Env<'_> {
    fn eval(&self, p: &Predicate) -> bool {
        match p {
            Predicate::True => true,
            Predicate::False => false,
            Predicate::All(ps) => ps.iter().all(|p| self.eval(p)),
            Predicate::Any(ps) => ps.iter().any(|p| self.eval(p)),
            Predicate::Not(p) => !self.eval(p),
            Predicate::Condition(c) => self.condition(c),
            Predicate::Role(role) => match &self.req.principal.kind {
                PrincipalKind::Keystone(k) => k.roles.iter().any(|r| r.eq_ignore_ascii_case(role)),
                _ => false,
            },
            Predicate::IsAdmin(want) => self.is_admin == *want,
            Predicate::Credential { key, value } => match self.render(value) {
                Some(v) => self.credential(key, &v),
                None => false,
            },
        }
    }

    /// The template with the target substituted; `None` if the target lacks a name
    /// (oslo: a missing key fails the check).
    fn render(&self, t: &Template) -> Option<String> {
        let mut out = String::new();
        for part in &t.0 {
            match part {
                TemplatePart::Text(s) => out.push_str(s),
                TemplatePart::Target(k) => out.push_str(self.req.target.get(k)?),
            }
        }
        Some(out)
    }

    /// oslo's generic check against the token's credentials.
    fn credential(&self, key: &str, want: &str) -> bool {
        let PrincipalKind::Keystone(k) = &self.req.principal.kind else {
            return false;
        };
        let scope_project = match &k.scope {
            KeystoneScope::Project { id, domain_id } => Some((id.as_str(), domain_id.as_str())),
            _ => None,
        };
        let have: Option<&str> = match key {
            "user_id" => Some(&k.user_id),
            "user_domain_id" => Some(&k.user_domain_id),
            "project_id" => scope_project.map(|(p, _)| p),
            "project_domain_id" => scope_project.map(|(_, d)| d),
            "domain_id" => match &k.scope {
                KeystoneScope::Domain { id } => Some(id),
                _ => None,
            },
            "system_scope" => matches!(k.scope, KeystoneScope::System).then_some("all"),
            "is_admin" => Some(if self.is_admin { "True" } else { "False" }),
            "roles" => return k.roles.iter().any(|r| r == want),
            _ => None,
        };
        have == Some(want)
    }

    fn values(&self, key: &ContextKey) -> Option<Vec<Ctx>> {
        let c = &self.req.context;
        let tags = |tags: &[(String, String)], name: &Option<String>| {
            let v: Vec<Ctx> = tags
                .iter()
                .filter_map(|(k, v)| match name {
                    Some(n) => (k == n).then(|| Ctx::Str(v.clone())),
                    None => Some(Ctx::Str(format!("{k}&{v}"))),
                })
                .collect();
            (!v.is_empty()).then_some(v)
        };
        match key {
            ContextKey::SourceIp => c.source_ip.map(|ip| vec![Ctx::Ip(ip)]),
            ContextKey::CurrentTime => Some(vec![Ctx::Date(c.now)]),
            ContextKey::MfaPresent => Some(vec![Ctx::Bool(self.mfa_present)]),
            ContextKey::SecureTransport => c.secure_transport.map(|b| vec![Ctx::Bool(b)]),
            ContextKey::ResourceTag(name) => tags(&c.resource_tags, name),
            ContextKey::RequestTag(name) => tags(&c.request_tags, name),
            ContextKey::Other(k) => c
                .extra
                .get(k)
                .filter(|v| !v.is_empty())
                .map(|v| v.iter().cloned().map(Ctx::Str).collect()),
        }
    }

    fn condition(&self, c: &Condition) -> bool {
        let Some(have) = self.values(&c.key) else {
            return match c.op {
                ConditionOp::Null => c.values.contains(&Value::Bool(true)),
                // "Every value matches" holds vacuously for a key with no values.
                _ => c.if_exists || c.set == SetQualifier::ForAllValues,
            };
        };
        if c.op == ConditionOp::Null {
            return c.values.contains(&Value::Bool(false));
        }
        let test = |v: &Ctx| {
            let any = c.values.iter().any(|want| matches_one(c.op, v, want));
            if negated(c.op) { !any } else { any }
        };
        match c.set {
            SetQualifier::Single | SetQualifier::ForAnyValue => have.iter().any(test),
            SetQualifier::ForAllValues => have.iter().all(test),
        }
    }
}

/// The "not" operators hold when the value matches none of the policy's values.
fn negated(op: ConditionOp) -> bool {
    use ConditionOp::*;
    matches!(
        op,
        StringNotEquals
            | StringNotEqualsIgnoreCase
            | StringNotLike
            | NumericNotEquals
            | DateNotEquals
            | NotIpAddress
    )
}

fn as_str(v: &Ctx) -> String {
    match v {
        Ctx::Str(s) => s.clone(),
        Ctx::Ip(ip) => ip.to_string(),
        Ctx::Bool(b) => b.to_string(),
        Ctx::Date(d) => d.format(&Rfc3339).unwrap_or_default(),
    }
}

fn as_num(v: &Ctx) -> Option<f64> {
    match v {
        Ctx::Str(s) => s.trim().parse().ok(),
        Ctx::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    }
}

fn as_date(v: &Ctx) -> Option<OffsetDateTime> {
    match v {
        Ctx::Date(d) => Some(*d),
        Ctx::Str(s) => OffsetDateTime::parse(s.trim(), &Rfc3339).ok(),
        _ => None,
    }
}

fn as_bool(v: &Ctx) -> Option<bool> {
    match v {
        Ctx::Bool(b) => Some(*b),
        Ctx::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Ctx::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_ip(v: &Ctx) -> Option<IpAddr> {
    match v {
        Ctx::Ip(ip) => Some(*ip),
        Ctx::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Does the request value match one policy value (before negation)?
fn matches_one(op: ConditionOp, have: &Ctx, want: &Value) -> bool {
    use ConditionOp::*;
    match (op, want) {
        (StringEquals | StringNotEquals, Value::String(w)) => as_str(have) == *w,
        (StringEqualsIgnoreCase | StringNotEqualsIgnoreCase, Value::String(w)) => {
            as_str(have).to_lowercase() == w.to_lowercase()
        }
        (StringLike | StringNotLike, Value::Pattern(p)) => p.matches(&as_str(have)),
        (_, Value::Number(w)) => as_num(have).is_some_and(|h| match op {
            NumericEquals | NumericNotEquals => h == *w,
            NumericLessThan => h < *w,
            NumericLessThanEquals => h <= *w,
            NumericGreaterThan => h > *w,
            NumericGreaterThanEquals => h >= *w,
            _ => false,
        }),
        (_, Value::Date(w)) => as_date(have).is_some_and(|h| match op {
            DateEquals | DateNotEquals => h == *w,
            DateLessThan => h < *w,
            DateLessThanEquals => h <= *w,
            DateGreaterThan => h > *w,
            DateGreaterThanEquals => h >= *w,
            _ => false,
        }),
        (Bool, Value::Bool(w)) => as_bool(have) == Some(*w),
        (IpAddress | NotIpAddress, Value::Cidr(net)) => {
            as_ip(have).is_some_and(|ip| net.contains(ip))
        }
        _ => false,
    }
}
