//! oslo.policy rule strings (`role:reader and project_id:%(project_id)s`, `rule:<name>`,
//! `is_admin:True`, `@`, `!`, `and`, `or`, `not`, parentheses) and the upstream Nova
//! defaults for the actions nubis serves, overridable by a policy file.
//!
//! Differences from oslo.policy, on purpose: a rule oslo would log and treat as "deny"
//! (unparsable, unknown check kind, a `rule:` naming nothing, a cycle) is refused when the
//! policy is loaded, as `oslopolicy-checker`/`Enforcer.check_rules` reports it, so an
//! operator's typo never silently locks everyone out.

use super::limits::{
    OSLO_MAX_DEPTH, OSLO_MAX_EXPANDED_NODES, OSLO_MAX_FILE_BYTES, OSLO_MAX_RULE_CHARS,
    OSLO_MAX_RULES, OSLO_MAX_TOTAL_NODES,
};
use super::{
    ActionMatch, CompiledPolicy, Effect, Grammar, PolicyError, Predicate, Statement, Template,
    TemplatePart,
};
use std::collections::BTreeMap;

/// Depth of a rule after `rule:` references are expanded (bounds the evaluation's recursion).
pub const MAX_EXPANDED_DEPTH: usize = 2 * OSLO_MAX_DEPTH;

/// A parsed rule before `rule:` references are expanded.
#[derive(Debug, Clone, PartialEq)]
enum Rule {
    True,
    False,
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Role(String),
    IsAdmin(bool),
    Generic { key: String, value: Template },
    Ref(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Not,
    Check(Rule),
}

fn syntax(name: &str, reason: impl Into<String>) -> PolicyError {
    PolicyError::RuleSyntax {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// oslo's tokenizer: whitespace-separated tokens, parentheses peeled off their ends.
fn tokenize(name: &str, rule: &str) -> Result<Vec<Token>, PolicyError> {
    let mut out = Vec::new();
    for tok in rule.split_whitespace() {
        let clean = tok.trim_start_matches('(');
        out.extend(std::iter::repeat_n(Token::Open, tok.len() - clean.len()));
        if clean.is_empty() {
            continue;
        }
        let body = clean.trim_end_matches(')');
        let trailing = clean.len() - body.len();
        if !body.is_empty() {
            out.push(match body.to_ascii_lowercase().as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "not" => Token::Not,
                _ => Token::Check(check(name, body)?),
            });
        }
        out.extend(std::iter::repeat_n(Token::Close, trailing));
    }
    Ok(out)
}

/// One check: `@`, `!`, `rule:x`, `role:x`, `is_admin:True`, or `<credential>:<template>`.
fn check(name: &str, tok: &str) -> Result<Rule, PolicyError> {
    match tok {
        "@" => return Ok(Rule::True),
        "!" => return Ok(Rule::False),
        _ => {}
    }
    if tok.starts_with('"') || tok.starts_with('\'') {
        return Err(PolicyError::Unsupported(format!("quoted check `{tok}`")));
    }
    let (kind, m) = tok
        .split_once(':')
        .ok_or_else(|| syntax(name, format!("`{tok}` is not a check (kind:match)")))?;
    if m.is_empty() {
        return Err(syntax(name, format!("`{tok}` has nothing to match")));
    }
    Ok(match kind {
        "rule" => Rule::Ref(m.to_string()),
        "role" if !m.contains('%') => Rule::Role(m.to_lowercase()),
        "is_admin" => Rule::IsAdmin(m.eq_ignore_ascii_case("true")),
        "role" | "http" | "https" => {
            return Err(PolicyError::Unsupported(format!("the check `{tok}`")));
        }
        _ if kind.is_empty()
            || !kind
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
        {
            return Err(syntax(name, format!("`{kind}` is not a credential name")));
        }
        _ if kind.starts_with(|c: char| c.is_ascii_digit())
            || kind == "True"
            || kind == "False" =>
        {
            return Err(PolicyError::Unsupported(format!(
                "the literal check `{tok}`"
            )));
        }
        _ => Rule::Generic {
            key: kind.to_string(),
            value: template(name, m)?,
        },
    })
}

/// `text%(name)stext`; `%%` is a literal `%`.
fn template(name: &str, s: &str) -> Result<Template, PolicyError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        text.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('%') {
            text.push('%');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(') {
            let (var, r) = r
                .split_once(")s")
                .ok_or_else(|| syntax(name, format!("bad substitution in `{s}`")))?;
            if var.is_empty() || var.contains(['(', ')', '%']) {
                return Err(syntax(name, format!("bad substitution in `{s}`")));
            }
            if !text.is_empty() {
                parts.push(TemplatePart::Text(std::mem::take(&mut text)));
            }
            parts.push(TemplatePart::Target(var.to_string()));
            rest = r;
        } else {
            return Err(syntax(name, format!("bad substitution in `{s}`")));
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(TemplatePart::Text(text));
    }
    Ok(Template(parts))
}

/// Recursive descent over oslo's grammar (`not` binds to the next check, `and` before `or`).
struct Parser<'a> {
    name: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        let mut alts = vec![self.and(depth)?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            alts.push(self.and(depth)?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Rule::Or(alts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        let mut all = vec![self.unary(depth)?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            all.push(self.unary(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Rule::And(all)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Rule, PolicyError> {
        if depth >= OSLO_MAX_DEPTH {
            return Err(PolicyError::TooDeep(self.name.to_string()));
        }
        match self.next() {
            Some(Token::Not) => Ok(Rule::Not(Box::new(self.unary(depth + 1)?))),
            Some(Token::Open) => {
                let inner = self.or(depth + 1)?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(syntax(self.name, "unbalanced parentheses")),
                }
            }
            Some(Token::Check(c)) => Ok(c),
            Some(t) => Err(syntax(self.name, format!("unexpected {t:?}"))),
            None => Err(syntax(self.name, "the rule ends too early")),
        }
    }
}

/// Parses one rule string; an empty rule allows everyone (oslo's `TrueCheck`).
fn parse_rule(name: &str, rule: &str) -> Result<Rule, PolicyError> {
    if rule.chars().count() > OSLO_MAX_RULE_CHARS {
        return Err(PolicyError::TooLarge {
            size: rule.chars().count(),
            limit: OSLO_MAX_RULE_CHARS,
        });
    }
    let tokens = tokenize(name, rule)?;
    if tokens.is_empty() {
        return Ok(Rule::True);
    }
    let mut p = Parser {
        name,
        tokens,
        pos: 0,
    };
    let r = p.or(0)?;
    if p.pos < p.tokens.len() {
        return Err(syntax(name, "unexpected tokens after the rule"));
    }
    Ok(r)
}

/// One rule of a policy: its name, its check string and the scope types it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleDefault {
    pub name: String,
    pub check: String,
    pub scope_types: Vec<String>,
}

/// Expands `rule:` references with a budget of nodes and depth.
struct Expander<'a> {
    rules: &'a BTreeMap<String, Rule>,
    nodes: usize,
}

impl Expander<'_> {
    fn expand(
        &mut self,
        owner: &str,
        r: &Rule,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Result<Predicate, PolicyError> {
        self.nodes += 1;
        if self.nodes > OSLO_MAX_EXPANDED_NODES || depth > MAX_EXPANDED_DEPTH {
            return Err(PolicyError::TooDeep(owner.to_string()));
        }
        let mut many = |rs: &[Rule], stack: &mut Vec<String>| {
            rs.iter()
                .map(|x| self.expand(owner, x, stack, depth + 1))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match r {
            Rule::True => Predicate::True,
            Rule::False => Predicate::False,
            Rule::And(rs) => Predicate::All(many(rs, stack)?),
            Rule::Or(rs) => Predicate::Any(many(rs, stack)?),
            Rule::Not(x) => Predicate::Not(Box::new(self.expand(owner, x, stack, depth + 1)?)),
            Rule::Role(role) => Predicate::Role(role.clone()),
            Rule::IsAdmin(b) => Predicate::IsAdmin(*b),
            Rule::Generic { key, value } => Predicate::Credential {
                key: key.clone(),
                value: value.clone(),
            },
            Rule::Ref(target) => {
                if stack.iter().any(|s| s == target) {
                    return Err(PolicyError::RuleCycle(target.clone()));
                }
                let body = self
                    .rules
                    .get(target)
                    .ok_or_else(|| PolicyError::UnknownRule(owner.to_string()))?;
                stack.push(target.clone());
                let p = self.expand(owner, body, stack, depth + 1);
                stack.pop();
                p?
            }
        })
    }
}

/// Compiles a set of rules: every rule becomes an `Allow` statement for the action of its
/// name, guarded by its check with every `rule:` reference expanded.
pub fn compile(
    name: &str,
    rules: &[RuleDefault],
    enforce_scope: bool,
) -> Result<CompiledPolicy, PolicyError> {
    if rules.len() > OSLO_MAX_RULES {
        return Err(PolicyError::TooMany {
            what: "rules",
            limit: OSLO_MAX_RULES,
        });
    }
    let parsed = rules
        .iter()
        .map(|r| Ok((r.name.clone(), parse_rule(&r.name, &r.check)?)))
        .collect::<Result<BTreeMap<_, _>, PolicyError>>()?;
    let mut statements = Vec::with_capacity(rules.len());
    let mut total = 0usize;
    for r in rules {
        let Some(body) = parsed.get(&r.name) else {
            continue;
        };
        let mut ex = Expander {
            rules: &parsed,
            nodes: 0,
        };
        let when = ex.expand(&r.name, body, &mut vec![r.name.clone()], 0)?;
        total += ex.nodes;
        if total > OSLO_MAX_TOTAL_NODES {
            return Err(PolicyError::TooMany {
                what: "expanded rule nodes",
                limit: OSLO_MAX_TOTAL_NODES,
            });
        }
        statements.push(Statement {
            effect: Effect::Allow,
            actions: ActionMatch::Exact(r.name.clone()),
            resources: Vec::new(),
            when,
            scope_types: r.scope_types.clone(),
        });
    }
    Ok(CompiledPolicy {
        name: name.to_string(),
        grammar: Grammar::Oslo,
        statements,
        enforce_scope,
    })
}

/// Parses a policy file: a map of rule names to rule strings, in JSON (`policy.json`) or
/// YAML (`policy.yaml`, oslo's default format; a file of comments only is an empty map).
pub fn parse_policy_file(text: &str) -> Result<Vec<(String, String)>, PolicyError> {
    if text.len() > OSLO_MAX_FILE_BYTES {
        return Err(PolicyError::TooLarge {
            size: text.len(),
            limit: OSLO_MAX_FILE_BYTES,
        });
    }
    let rules = if text.trim_start().starts_with('{') {
        // JSON first (exact errors); a YAML flow mapping is the fallback.
        parse_json(text).or_else(|json_err| parse_yaml(text).map_err(|_| json_err))?
    } else {
        parse_yaml(text)?
    };
    if rules.len() > OSLO_MAX_RULES {
        return Err(PolicyError::TooMany {
            what: "rules",
            limit: OSLO_MAX_RULES,
        });
    }
    Ok(rules)
}

fn parse_json(text: &str) -> Result<Vec<(String, String)>, PolicyError> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
    let obj = v.as_object().ok_or(PolicyError::NotAnObject)?;
    obj.iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(not_a_rule(k)),
        })
        .collect()
}

fn not_a_rule(key: &str) -> PolicyError {
    PolicyError::WrongType {
        field: key.to_string(),
        expected: "a rule string (the list-of-lists syntax is not supported)",
    }
}

/// A flat YAML map, read from the parser's events: anything nested, tagged or aliased is
/// refused as soon as it appears, so no tree of attacker-chosen depth is ever built.
fn parse_yaml(text: &str) -> Result<Vec<(String, String)>, PolicyError> {
    use yaml_rust2::parser::{Event, Parser};
    let mut parser = Parser::new_from_str(text);
    let mut out = Vec::new();
    let (mut documents, mut in_map, mut map_done) = (0usize, false, false);
    let mut key: Option<String> = None;
    loop {
        let (event, _) = parser
            .next_token()
            .map_err(|e| PolicyError::Syntax(e.to_string()))?;
        match event {
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(PolicyError::Unsupported("several YAML documents".into()));
                }
            }
            Event::MappingStart(_, None) if !in_map && !map_done => in_map = true,
            Event::MappingEnd if in_map => {
                in_map = false;
                map_done = true;
            }
            Event::Scalar(s, _, _, None) if in_map => match key.take() {
                None => key = Some(s),
                Some(k) => {
                    if out.len() >= OSLO_MAX_RULES {
                        return Err(PolicyError::TooMany {
                            what: "rules",
                            limit: OSLO_MAX_RULES,
                        });
                    }
                    out.push((k, s));
                }
            },
            Event::Alias(_) => return Err(PolicyError::Unsupported("YAML aliases".into())),
            _ if in_map => return Err(not_a_rule(key.as_deref().unwrap_or("a key"))),
            _ => return Err(PolicyError::NotAnObject),
        }
    }
    Ok(out)
}

/// The upstream Nova defaults (nova/policies/base.py and the files of the actions nubis
/// serves, 2023.2+ "new defaults": project reader for reads, project member for writes,
/// admin for admin APIs, `scope_types=['project']`).
pub const NOVA_BASE: &[(&str, &str)] = &[
    ("context_is_admin", "role:admin"),
    (
        "admin_or_owner",
        "is_admin:True or project_id:%(project_id)s",
    ),
    ("admin_api", "is_admin:True"),
    (
        "project_manager_api",
        "role:manager and project_id:%(project_id)s",
    ),
    (
        "project_member_api",
        "role:member and project_id:%(project_id)s",
    ),
    (
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
    ),
    ("service_api", "role:service"),
    (
        "project_manager_or_admin",
        "rule:project_manager_api or rule:context_is_admin",
    ),
    (
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
    ),
    (
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
    ),
    (
        "service_or_admin",
        "rule:service_api or rule:context_is_admin",
    ),
];

const ADMIN: &str = "rule:context_is_admin";
const READER: &str = "rule:project_reader_or_admin";
const MEMBER: &str = "rule:project_member_or_admin";
const KEYPAIR_OWNER: &str = "(rule:context_is_admin) or user_id:%(user_id)s";

/// The action rules (name, default) of the Nova APIs nubis serves.
pub const NOVA_ACTIONS: &[(&str, &str)] = &[
    ("os_compute_api:servers:index", READER),
    ("os_compute_api:servers:detail", READER),
    ("os_compute_api:servers:index:get_all_tenants", ADMIN),
    ("os_compute_api:servers:detail:get_all_tenants", ADMIN),
    ("os_compute_api:servers:allow_all_filters", ADMIN),
    ("os_compute_api:servers:show", READER),
    ("os_compute_api:servers:show:host_status", ADMIN),
    ("os_compute_api:servers:create", MEMBER),
    ("os_compute_api:servers:create:forced_host", ADMIN),
    ("os_compute_api:servers:delete", MEMBER),
    ("os_compute_api:servers:update", MEMBER),
    ("os_compute_api:servers:reboot", MEMBER),
    ("os_compute_api:servers:rebuild", MEMBER),
    ("os_compute_api:servers:create_image", MEMBER),
    ("os_compute_api:servers:resize", MEMBER),
    ("os_compute_api:servers:confirm_resize", MEMBER),
    ("os_compute_api:servers:revert_resize", MEMBER),
    ("os_compute_api:servers:start", MEMBER),
    ("os_compute_api:servers:stop", MEMBER),
    ("os_compute_api:os-admin-password", MEMBER),
    ("os_compute_api:os-rescue", MEMBER),
    ("os_compute_api:os-unrescue", MEMBER),
    ("os_compute_api:os-pause-server:pause", MEMBER),
    ("os_compute_api:os-pause-server:unpause", MEMBER),
    ("os_compute_api:os-suspend-server:suspend", MEMBER),
    ("os_compute_api:os-suspend-server:resume", MEMBER),
    ("os_compute_api:os-shelve:shelve", MEMBER),
    ("os_compute_api:os-shelve:shelve_offload", ADMIN),
    ("os_compute_api:os-shelve:unshelve", MEMBER),
    ("os_compute_api:os-shelve:unshelve_to_host", ADMIN),
    ("os_compute_api:os-console-output", MEMBER),
    ("os_compute_api:os-admin-actions:inject_network_info", ADMIN),
    ("os_compute_api:os-admin-actions:reset_state", ADMIN),
    ("os_compute_api:os-deferred-delete:restore", MEMBER),
    ("os_compute_api:os-deferred-delete:force", MEMBER),
    ("os_compute_api:servers:migrations:index", ADMIN),
    ("os_compute_api:os-migrations:index", ADMIN),
    ("os_compute_api:os-lock-server:lock", MEMBER),
    ("os_compute_api:os-lock-server:unlock", MEMBER),
    (
        "os_compute_api:os-lock-server:unlock:unlock_override",
        ADMIN,
    ),
    ("os_compute_api:server-metadata:index", READER),
    ("os_compute_api:server-metadata:show", READER),
    ("os_compute_api:server-metadata:create", MEMBER),
    ("os_compute_api:server-metadata:update_all", MEMBER),
    ("os_compute_api:server-metadata:update", MEMBER),
    ("os_compute_api:server-metadata:delete", MEMBER),
    ("os_compute_api:os-instance-actions:list", READER),
    ("os_compute_api:os-instance-actions:show", READER),
    ("os_compute_api:os-instance-actions:events", ADMIN),
    ("os_compute_api:os-flavor-extra-specs:index", READER),
    ("os_compute_api:os-flavor-extra-specs:show", READER),
    // nova/policies/{flavor_manage,flavor_access,flavor_extra_specs}.py: admins change them.
    ("os_compute_api:os-flavor-extra-specs:create", ADMIN),
    ("os_compute_api:os-flavor-extra-specs:update", ADMIN),
    ("os_compute_api:os-flavor-extra-specs:delete", ADMIN),
    ("os_compute_api:os-flavor-manage:create", ADMIN),
    ("os_compute_api:os-flavor-manage:update", ADMIN),
    ("os_compute_api:os-flavor-manage:delete", ADMIN),
    ("os_compute_api:os-flavor-access", ADMIN),
    ("os_compute_api:os-flavor-access:add_tenant_access", ADMIN),
    (
        "os_compute_api:os-flavor-access:remove_tenant_access",
        ADMIN,
    ),
    ("os_compute_api:os-keypairs:index", KEYPAIR_OWNER),
    ("os_compute_api:os-keypairs:create", KEYPAIR_OWNER),
    ("os_compute_api:os-keypairs:show", KEYPAIR_OWNER),
    ("os_compute_api:os-keypairs:delete", KEYPAIR_OWNER),
    ("os_compute_api:limits", "@"),
    ("os_compute_api:limits:other_project", ADMIN),
    ("os_compute_api:os-availability-zone:list", "@"),
    ("os_compute_api:os-availability-zone:detail", ADMIN),
    // The operator views (nova/policies/{hypervisors,services,aggregates,
    // simple_tenant_usage}.py): admins only, but a project's reader sees its own usage.
    ("os_compute_api:os-hypervisors:list", ADMIN),
    ("os_compute_api:os-hypervisors:list-detail", ADMIN),
    ("os_compute_api:os-hypervisors:statistics", ADMIN),
    ("os_compute_api:os-hypervisors:show", ADMIN),
    ("os_compute_api:os-hypervisors:uptime", ADMIN),
    ("os_compute_api:os-hypervisors:search", ADMIN),
    ("os_compute_api:os-hypervisors:servers", ADMIN),
    ("os_compute_api:os-services:list", ADMIN),
    ("os_compute_api:os-services:update", ADMIN),
    ("os_compute_api:os-services:delete", ADMIN),
    ("os_compute_api:os-aggregates:index", ADMIN),
    ("os_compute_api:os-aggregates:create", ADMIN),
    ("os_compute_api:os-aggregates:show", ADMIN),
    ("os_compute_api:os-aggregates:update", ADMIN),
    ("os_compute_api:os-aggregates:delete", ADMIN),
    ("os_compute_api:os-aggregates:add_host", ADMIN),
    ("os_compute_api:os-aggregates:remove_host", ADMIN),
    ("os_compute_api:os-aggregates:set_metadata", ADMIN),
    ("os_compute_api:os-simple-tenant-usage:list", ADMIN),
    ("os_compute_api:os-simple-tenant-usage:show", READER),
    ("os_compute_api:os-hosts:list", ADMIN),
    ("os_compute_api:os-hosts:show", ADMIN),
    ("os_compute_api:os-hosts:update", ADMIN),
    ("os_compute_api:os-hosts:start", ADMIN),
    ("os_compute_api:os-hosts:shutdown", ADMIN),
    ("os_compute_api:os-hosts:reboot", ADMIN),
    ("os_compute_api:os-instance-usage-audit-log:list", ADMIN),
    ("os_compute_api:os-instance-usage-audit-log:show", ADMIN),
    // nova/policies/{ips,server_password,server_diagnostics,extensions}.py
    ("os_compute_api:ips:index", READER),
    ("os_compute_api:ips:show", READER),
    ("os_compute_api:os-server-password:show", READER),
    ("os_compute_api:os-server-password:clear", MEMBER),
    ("os_compute_api:os-server-diagnostics", ADMIN),
    ("os_compute_api:extensions", "@"),
    // nova/policies/server_shares.py (2.97): no admin override upstream.
    (
        "os_compute_api:os-server-shares:index",
        "rule:project_reader_api",
    ),
    (
        "os_compute_api:os-server-shares:create",
        "rule:project_member_api",
    ),
    (
        "os_compute_api:os-server-shares:show",
        "rule:project_reader_api",
    ),
    (
        "os_compute_api:os-server-shares:delete",
        "rule:project_member_api",
    ),
];

/// Nova's defaults as rules (every one `scope_types=['project']`, as upstream registers
/// them), with `overrides` (a policy file's rules) replacing or adding by name.
pub fn nova_rules(overrides: &[(String, String)]) -> Vec<RuleDefault> {
    let mut rules: Vec<RuleDefault> = NOVA_BASE
        .iter()
        .chain(NOVA_ACTIONS)
        .map(|(name, check)| RuleDefault {
            name: (*name).to_string(),
            check: (*check).to_string(),
            scope_types: vec!["project".to_string()],
        })
        .collect();
    for (name, check) in overrides {
        match rules.iter_mut().find(|r| &r.name == name) {
            Some(r) => r.check = check.clone(),
            None => rules.push(RuleDefault {
                name: name.clone(),
                check: check.clone(),
                scope_types: Vec::new(),
            }),
        }
    }
    rules
}

/// Nova's policy: the defaults, overridden by `policy_file` (JSON or YAML) if given; scope is
/// enforced (Nova's default since 2023.2).
pub fn nova(policy_file: Option<&str>) -> Result<CompiledPolicy, PolicyError> {
    let overrides = match policy_file {
        Some(text) => parse_policy_file(text)?,
        None => Vec::new(),
    };
    compile("nova", &nova_rules(&overrides), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(rule: &str) -> Result<Rule, PolicyError> {
        parse_rule("t", rule)
    }

    fn role(r: &str) -> Rule {
        Rule::Role(r.to_string())
    }

    #[test]
    fn precedence_and_parentheses() {
        assert_eq!(p("").unwrap(), Rule::True);
        assert_eq!(p("   ").unwrap(), Rule::True);
        assert_eq!(p("@").unwrap(), Rule::True);
        assert_eq!(p("!").unwrap(), Rule::False);
        assert_eq!(
            p("role:a or role:b and role:c").unwrap(),
            Rule::Or(vec![role("a"), Rule::And(vec![role("b"), role("c")])])
        );
        assert_eq!(
            p("(role:a or role:b) and role:c").unwrap(),
            Rule::And(vec![Rule::Or(vec![role("a"), role("b")]), role("c")])
        );
        assert_eq!(
            p("not role:a and role:b").unwrap(),
            Rule::And(vec![Rule::Not(Box::new(role("a"))), role("b")])
        );
        assert_eq!(p("((role:Admin))").unwrap(), role("admin"));
        assert_eq!(
            p("role:x AND role:y").unwrap(),
            Rule::And(vec![role("x"), role("y")])
        );
        assert_eq!(p("is_admin:True").unwrap(), Rule::IsAdmin(true));
        assert_eq!(p("is_admin:false").unwrap(), Rule::IsAdmin(false));
        assert_eq!(
            p("project_id:%(project_id)s").unwrap(),
            Rule::Generic {
                key: "project_id".into(),
                value: Template(vec![TemplatePart::Target("project_id".into())]),
            }
        );
        assert_eq!(
            p("user_id:u-%(user_id)s%%").unwrap(),
            Rule::Generic {
                key: "user_id".into(),
                value: Template(vec![
                    TemplatePart::Text("u-".into()),
                    TemplatePart::Target("user_id".into()),
                    TemplatePart::Text("%".into()),
                ]),
            }
        );
    }

    #[test]
    fn malformed_rules_have_kinds() {
        let cases: &[(&str, &str)] = &[
            ("role:a and", "RuleSyntax"),
            ("or role:a", "RuleSyntax"),
            ("(role:a", "RuleSyntax"),
            ("role:a)", "RuleSyntax"),
            ("role:a role:b", "RuleSyntax"),
            ("nonsense", "RuleSyntax"),
            ("role:", "RuleSyntax"),
            ("project_id:%(project_id", "RuleSyntax"),
            ("project_id:%s", "RuleSyntax"),
            ("project_id:%()s", "RuleSyntax"),
            ("'quoted'", "Unsupported"),
            ("http://example/check", "Unsupported"),
            ("role:%(x)s", "Unsupported"),
            ("True:%(user.enabled)s", "Unsupported"),
            ("a-b:c", "RuleSyntax"),
            ("not", "RuleSyntax"),
            ("()", "RuleSyntax"),
        ];
        for (rule, kind) in cases {
            assert_eq!(p(rule).map_err(|e| e.kind()), Err(*kind), "{rule}");
        }
        let deep = format!("{}role:a{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(p(&deep).unwrap_err().kind(), "TooDeep");
        let nots = format!("{}role:a", "not ".repeat(40));
        assert_eq!(p(&nots).unwrap_err().kind(), "TooDeep");
        let long = "role:a or ".repeat(500) + "role:a";
        assert_eq!(p(&long).unwrap_err().kind(), "TooLarge");
    }

    fn rd(name: &str, check: &str) -> RuleDefault {
        RuleDefault {
            name: name.into(),
            check: check.into(),
            scope_types: Vec::new(),
        }
    }

    #[test]
    fn references_expand_and_are_checked() {
        let ok = compile(
            "t",
            &[rd("a", "rule:b or role:x"), rd("b", "role:y")],
            false,
        )
        .unwrap();
        assert_eq!(
            ok.statements[0].when,
            Predicate::Any(vec![
                Predicate::Role("y".into()),
                Predicate::Role("x".into())
            ])
        );
        let unknown = compile("t", &[rd("a", "rule:missing")], false).unwrap_err();
        assert_eq!(unknown, PolicyError::UnknownRule("a".into()));
        let self_ref = compile("t", &[rd("a", "rule:a")], false).unwrap_err();
        assert_eq!(self_ref.kind(), "RuleCycle");
        let cycle = compile("t", &[rd("a", "rule:b"), rd("b", "rule:a")], false).unwrap_err();
        assert_eq!(cycle.kind(), "RuleCycle");
        // A diamond of references doubles at each level: the node budget stops it.
        let mut rules = vec![rd("r0", "@")];
        for i in 1..30 {
            rules.push(rd(
                &format!("r{i}"),
                &format!("rule:r{} or rule:r{}", i - 1, i - 1),
            ));
        }
        assert_eq!(compile("t", &rules, false).unwrap_err().kind(), "TooDeep");
        // Each rule within its budget, the policy over the total.
        let mut rules = vec![rd("r0", "@")];
        for i in 1..11 {
            rules.push(rd(
                &format!("r{i}"),
                &format!("rule:r{} or rule:r{}", i - 1, i - 1),
            ));
        }
        for i in 0..40 {
            rules.push(rd(&format!("big{i}"), "rule:r10"));
        }
        assert_eq!(compile("t", &rules, false).unwrap_err().kind(), "TooMany");
    }

    #[test]
    fn yaml_and_json_policy_files() {
        // The shape `oslopolicy-sample-generator` writes: comments, quoted names and rules.
        let yaml = "# Reboot a server\n#\"os_compute_api:servers:reboot\": \"rule:project_member_or_admin\"\n\
                    \"os_compute_api:servers:reboot\": \"role:admin\"\n\
                    \"custom\": \"@\"\nplain: role:x and not role:y\nempty: \"\"\n";
        let rules = parse_policy_file(yaml).unwrap();
        assert_eq!(
            rules,
            [
                ("os_compute_api:servers:reboot", "role:admin"),
                ("custom", "@"),
                ("plain", "role:x and not role:y"),
                ("empty", ""),
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
        assert_eq!(parse_policy_file("# only comments\n").unwrap(), []);
        assert_eq!(parse_policy_file("").unwrap(), []);
        assert_eq!(
            parse_policy_file("{a: 'role:x'}").unwrap(),
            [("a".into(), "role:x".into())]
        );
        let json = r#"{"a": "role:x", "b": "@"}"#;
        assert_eq!(parse_policy_file(json).unwrap().len(), 2);
        let many: String = (0..=OSLO_MAX_RULES)
            .map(|i| format!("r{i}: '@'\n"))
            .collect();
        assert_eq!(parse_policy_file(&many).unwrap_err().kind(), "TooMany");
    }

    #[test]
    fn nova_defaults_compile_and_files_override() {
        let nova = nova(None).unwrap();
        assert!(nova.enforce_scope);
        assert_eq!(nova.statements.len(), NOVA_BASE.len() + NOVA_ACTIONS.len());
        let file = r#"{"os_compute_api:servers:reboot": "role:admin", "custom": "@"}"#;
        let over = super::nova(Some(file)).unwrap();
        let reboot = over
            .statements
            .iter()
            .find(|s| s.actions == ActionMatch::Exact("os_compute_api:servers:reboot".into()))
            .unwrap();
        assert_eq!(reboot.when, Predicate::Role("admin".into()));
        assert_eq!(reboot.scope_types, vec!["project".to_string()]);
        assert!(
            over.statements
                .iter()
                .any(|s| s.actions == ActionMatch::Exact("custom".into()))
        );
        for (bad, kind) in [
            ("[]", "NotAnObject"),
            ("{", "Syntax"),
            (r#"{"a": ["role:x"]}"#, "WrongType"),
            (r#"{"a": "rule:nope"}"#, "UnknownRule"),
            ("- role:x\n", "NotAnObject"),
            ("just text", "NotAnObject"),
            ("a: [role:x]\n", "WrongType"),
            ("a:\n  b: role:x\n", "WrongType"),
            ("a: &x role:x\nb: *x\n", "Unsupported"),
            ("a: !tag role:x\n", "WrongType"),
            ("a: role:x\n---\nb: role:y\n", "Unsupported"),
            ("a: 'unterminated\n", "Syntax"),
            ("a: role:x\n\tb: c\n", "Syntax"),
        ] {
            assert_eq!(super::nova(Some(bad)).unwrap_err().kind(), kind, "{bad}");
        }
        let deep = "[".repeat(100_000);
        // Refused (by the scanner or at the first event) without building a deep tree.
        assert!(super::nova(Some(&deep)).is_err());
        assert!(super::nova(Some(&format!("a: {deep}"))).is_err());
        let big = " ".repeat(OSLO_MAX_FILE_BYTES + 1);
        assert_eq!(super::nova(Some(&big)).unwrap_err().kind(), "TooLarge");
    }
}
