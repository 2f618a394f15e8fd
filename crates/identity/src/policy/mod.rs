//! Policies in each cloud's grammar (CAM, RAM, oslo.policy), compiled to one internal form:
//! a list of statements, each an effect over action and resource patterns guarded by a
//! predicate. The evaluation (`crate::eval`) only knows this form.

pub mod cam;
mod json;
pub mod oslo;
pub mod pattern;
pub mod ram;

use pattern::Pattern;
use std::net::IpAddr;
use time::OffsetDateTime;

/// The grammar a policy was written in (for reasons and error rendering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grammar {
    Cam,
    Ram,
    Oslo,
}

/// A policy in the internal form.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledPolicy {
    /// The policy's name (CAM/RAM policy name, or the oslo policy file's label).
    pub name: String,
    pub grammar: Grammar,
    pub statements: Vec<Statement>,
    /// oslo.policy `enforce_scope`: refuse a token whose scope type a rule does not list.
    pub enforce_scope: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub effect: Effect,
    pub actions: ActionMatch,
    /// Empty = every resource (oslo rules, whose target is checked by the predicate).
    pub resources: Vec<Pattern>,
    pub when: Predicate,
    /// oslo `scope_types` (empty: any scope).
    pub scope_types: Vec<String>,
}

/// Which actions a statement covers.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionMatch {
    /// Any of these (CAM/RAM `Action`, case-insensitive wildcards).
    Any(Vec<Pattern>),
    /// Every action but these (RAM `NotAction`).
    AllBut(Vec<Pattern>),
    /// Exactly this name (an oslo rule name; case-sensitive).
    Exact(String),
}

impl ActionMatch {
    pub fn matches(&self, action: &str) -> bool {
        match self {
            Self::Any(ps) => ps.iter().any(|p| p.matches_ignore_case(action)),
            Self::AllBut(ps) => !ps.iter().any(|p| p.matches_ignore_case(action)),
            Self::Exact(name) => name == action,
        }
    }
}

/// A guard over the request context and the caller's credentials.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    True,
    False,
    All(Vec<Predicate>),
    Any(Vec<Predicate>),
    Not(Box<Predicate>),
    /// A CAM/RAM condition.
    Condition(Condition),
    /// oslo `role:<name>` (compared case-insensitively).
    Role(String),
    /// oslo `is_admin:True|False`.
    IsAdmin(bool),
    /// oslo generic check `<credential>:<template>`: the credential (`user_id`,
    /// `project_id`, `domain_id`, ...) equals the template with the target substituted.
    Credential {
        key: String,
        value: Template,
    },
}

/// A string with `%(name)s` holes filled from the request's target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<TemplatePart>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    Text(String),
    Target(String),
}

/// One CAM/RAM condition: `operator: { key: [values] }`, values OR-ed.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: ConditionOp,
    pub key: ContextKey,
    pub values: Vec<Value>,
    /// `*_if_exist` (CAM): met when the request has no value for the key.
    pub if_exists: bool,
    pub set: SetQualifier,
}

/// CAM's `for_any_value:` / `for_all_value:` qualifiers for multi-valued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// No qualifier: a multi-valued key matches when any of its values does.
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionOp {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    /// CAM `null_equal`: `true` = the key is absent.
    Null,
}

impl ConditionOp {
    /// The kind of value the operator compares (decides how values are parsed).
    pub(crate) fn value_kind(self) -> ValueKind {
        use ConditionOp::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => ValueKind::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => ValueKind::Number,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => ValueKind::Date,
            Bool | Null => ValueKind::Bool,
            IpAddress | NotIpAddress => ValueKind::Cidr,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    String,
    Number,
    Date,
    Bool,
    Cidr,
}

/// A condition value, parsed at compile time for its operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    /// Also the wildcard pattern form for `StringLike`.
    Pattern(Pattern),
    Number(f64),
    Date(OffsetDateTime),
    Bool(bool),
    Cidr(Cidr),
}

/// An IP network (`10.0.0.0/8`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|n| *n <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4-mapped IPv6 address is its IPv4 address (dual-stack listeners).
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)) << 96,
                u128::from(u32::from(ip)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let mask = u128::MAX << (128 - u32::from(prefix.min(128)));
    a & mask == b & mask
}

/// The request attributes a condition can name, normalized across clouds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextKey {
    /// `qcs:ip`, `acs:SourceIp`.
    SourceIp,
    /// `qcs:current_time`, `acs:CurrentTime`.
    CurrentTime,
    /// `acs:MFAPresent` (bool), `qcs:mfa` (numeric 1/0 in CAM's operator table).
    MfaPresent,
    /// `acs:SecureTransport`.
    SecureTransport,
    /// A resource tag: `acs:ResourceTag/<key>`, `ecs:tag/<key>` (its value), or CAM
    /// `qcs:resource_tag` (every tag as `key&value`, `None`).
    ResourceTag(Option<String>),
    /// A request tag, likewise (`acs:RequestTag/<key>`, `qcs:request_tag`).
    RequestTag(Option<String>),
    /// Any other service key (`cvm:region`, `ecs:...`), looked up in the request's extras.
    Other(String),
}

/// Bounds applied before any work (hostile input).
pub mod limits {
    /// CAM custom policy: 6,144 characters (Tencent docs, "custom policy ... 6,144").
    pub const CAM_MAX_CHARS: usize = 6144;
    /// RAM custom policy: 6,144 bytes (Alibaba RAM limits).
    pub const RAM_MAX_BYTES: usize = 6144;
    /// Statements in one CAM/RAM document (nubis's bound; the size limit allows ~130 tiny ones).
    pub const MAX_STATEMENTS: usize = 100;
    /// Values in one `Action`/`Resource` list or one condition key (nubis's bound).
    pub const MAX_VALUES: usize = 256;
    /// Condition operators × keys in one statement (nubis's bound).
    pub const MAX_CONDITIONS: usize = 64;
    /// An oslo policy file (nubis's bound; Nova's full default file is ~100 KB).
    pub const OSLO_MAX_FILE_BYTES: usize = 256 * 1024;
    /// Rules in one oslo policy file.
    pub const OSLO_MAX_RULES: usize = 2048;
    /// One oslo rule string.
    pub const OSLO_MAX_RULE_CHARS: usize = 4096;
    /// Nesting of parentheses and `not` in one oslo rule.
    pub const OSLO_MAX_DEPTH: usize = 32;
    /// Predicate nodes of one rule after `rule:` references are expanded.
    pub const OSLO_MAX_EXPANDED_NODES: usize = 4096;
    /// Predicate nodes of a whole oslo policy after expansion (bounds its memory).
    pub const OSLO_MAX_TOTAL_NODES: usize = 65_536;
}

/// Why a policy document was refused. `kind()` is stable; the message names the part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy document is {size} long, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("the policy document is not valid JSON: {0}")]
    Syntax(String),
    #[error("the policy document must be a JSON object")]
    NotAnObject,
    #[error("the field `{0}` is required")]
    MissingField(String),
    #[error("the field `{0}` is not part of the policy grammar")]
    UnknownField(String),
    #[error("the field `{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("the field `{0}` must not be empty")]
    Empty(String),
    #[error("`{0}` is not a supported policy version")]
    InvalidVersion(String),
    #[error("`{0}` is not a valid effect")]
    InvalidEffect(String),
    #[error("`{0}` is not a valid action")]
    InvalidAction(String),
    #[error("`{0}` is not a valid resource")]
    InvalidResource(String),
    #[error("`{0}` is not a supported condition operator")]
    UnknownConditionOperator(String),
    #[error("`{0}` is not a valid condition key")]
    InvalidConditionKey(String),
    #[error("`{value}` is not a valid value for `{operator}` on `{key}`")]
    InvalidConditionValue {
        operator: String,
        key: String,
        value: String,
    },
    #[error("too many {what} (at most {limit})")]
    TooMany { what: &'static str, limit: usize },
    #[error("`{0}` is not supported by nubis")]
    Unsupported(String),
    #[error("the rule `{name}` cannot be parsed: {reason}")]
    RuleSyntax { name: String, reason: String },
    #[error("the rule `{0}` refers to a rule that does not exist")]
    UnknownRule(String),
    #[error("the rule `{0}` refers to itself")]
    RuleCycle(String),
    #[error("the rule `{0}` nests too deeply")]
    TooDeep(String),
}

impl PolicyError {
    /// A stable kind for dialects (CAM renders `InvalidParameter.PolicyDocument*`, RAM
    /// `MalformedPolicyDocument`, Keystone a 400) and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "TooLarge",
            Self::Syntax(_) => "Syntax",
            Self::NotAnObject => "NotAnObject",
            Self::MissingField(_) => "MissingField",
            Self::UnknownField(_) => "UnknownField",
            Self::WrongType { .. } => "WrongType",
            Self::Empty(_) => "Empty",
            Self::InvalidVersion(_) => "InvalidVersion",
            Self::InvalidEffect(_) => "InvalidEffect",
            Self::InvalidAction(_) => "InvalidAction",
            Self::InvalidResource(_) => "InvalidResource",
            Self::UnknownConditionOperator(_) => "UnknownConditionOperator",
            Self::InvalidConditionKey(_) => "InvalidConditionKey",
            Self::InvalidConditionValue { .. } => "InvalidConditionValue",
            Self::TooMany { .. } => "TooMany",
            Self::Unsupported(_) => "Unsupported",
            Self::RuleSyntax { .. } => "RuleSyntax",
            Self::UnknownRule(_) => "UnknownRule",
            Self::RuleCycle(_) => "RuleCycle",
            Self::TooDeep(_) => "TooDeep",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_contains() {
        let net = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.1.2".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.1.1".parse().unwrap()));
        let host = Cidr::parse("192.168.1.1").unwrap();
        assert_eq!(host.prefix, 32);
        assert!(host.contains("192.168.1.1".parse().unwrap()));
        assert!(!host.contains("192.168.1.2".parse().unwrap()));
        // CAM's own example writes a host address with a prefix.
        assert!(
            Cidr::parse("10.121.2.10/24")
                .unwrap()
                .contains("10.121.2.99".parse().unwrap())
        );
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "10.0.0.0/+8",
            "::/129",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
