//! The JSON statement grammar CAM and RAM share (version, statements of effect / action /
//! resource / condition), parameterised by each cloud's spelling.

use super::Cidr;
use super::limits::{MAX_CONDITIONS, MAX_STATEMENTS, MAX_VALUES};
use super::pattern::Pattern;
use super::{
    ActionMatch, CompiledPolicy, Condition, ConditionOp, ContextKey, Effect, Grammar, PolicyError,
    Predicate, SetQualifier, Statement, Value, ValueKind,
};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One cloud's spelling of the grammar.
pub(crate) struct Spec {
    pub grammar: Grammar,
    /// The document's size bound and whether it counts characters (CAM) or bytes (RAM).
    pub max_size: usize,
    pub size_in_chars: bool,
    pub version_key: &'static str,
    pub version: &'static str,
    pub statement_key: &'static str,
    pub effect_key: &'static str,
    pub action_key: &'static str,
    /// `NotAction`, where the grammar has it.
    pub not_action_key: Option<&'static str>,
    pub resource_key: &'static str,
    pub condition_key: &'static str,
    /// Fields the cloud knows but nubis refuses (`Principal` of trust policies,
    /// `NotResource`), reported as `Unsupported` rather than `UnknownField`.
    pub unsupported: &'static [&'static str],
    pub allow: &'static str,
    pub deny: &'static str,
    pub operator: fn(&str) -> Option<(ConditionOp, bool, SetQualifier)>,
    pub key: fn(&str) -> Option<ContextKey>,
    /// Validates and normalizes one action string (`*` is handled before).
    pub action: fn(&str) -> Option<String>,
    /// Validates one resource string (`*` is handled before).
    pub resource: fn(&str) -> bool,
}

pub(crate) fn compile(spec: &Spec, name: &str, doc: &str) -> Result<CompiledPolicy, PolicyError> {
    let size = if spec.size_in_chars {
        doc.chars().count()
    } else {
        doc.len()
    };
    if size > spec.max_size {
        return Err(PolicyError::TooLarge {
            size,
            limit: spec.max_size,
        });
    }
    let root: Json = serde_json::from_str(doc).map_err(|e| PolicyError::Syntax(e.to_string()))?;
    let obj = root.as_object().ok_or(PolicyError::NotAnObject)?;
    check_fields(spec, obj, &[spec.version_key, spec.statement_key])?;
    match obj.get(spec.version_key) {
        None => return Err(PolicyError::MissingField(spec.version_key.into())),
        Some(Json::String(v)) if v == spec.version => {}
        Some(other) => return Err(PolicyError::InvalidVersion(display(other))),
    }
    let statements = match obj.get(spec.statement_key) {
        None => return Err(PolicyError::MissingField(spec.statement_key.into())),
        Some(Json::Array(list)) => list,
        Some(_) => {
            return Err(PolicyError::WrongType {
                field: spec.statement_key.into(),
                expected: "a list of statements",
            });
        }
    };
    if statements.is_empty() {
        return Err(PolicyError::Empty(spec.statement_key.into()));
    }
    if statements.len() > MAX_STATEMENTS {
        return Err(PolicyError::TooMany {
            what: "statements",
            limit: MAX_STATEMENTS,
        });
    }
    let statements = statements
        .iter()
        .map(|s| statement(spec, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CompiledPolicy {
        name: name.to_string(),
        grammar: spec.grammar,
        statements,
        enforce_scope: false,
    })
}

fn check_fields(spec: &Spec, obj: &Map<String, Json>, known: &[&str]) -> Result<(), PolicyError> {
    for k in obj.keys() {
        if known.contains(&k.as_str()) {
            continue;
        }
        if spec.unsupported.contains(&k.as_str()) {
            return Err(PolicyError::Unsupported(k.clone()));
        }
        return Err(PolicyError::UnknownField(k.clone()));
    }
    Ok(())
}

fn display(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn statement(spec: &Spec, v: &Json) -> Result<Statement, PolicyError> {
    let obj = v.as_object().ok_or_else(|| PolicyError::WrongType {
        field: spec.statement_key.into(),
        expected: "a list of objects",
    })?;
    let mut known = vec![
        spec.effect_key,
        spec.action_key,
        spec.resource_key,
        spec.condition_key,
    ];
    known.extend(spec.not_action_key);
    check_fields(spec, obj, &known)?;

    let effect = match obj.get(spec.effect_key) {
        None => return Err(PolicyError::MissingField(spec.effect_key.into())),
        Some(Json::String(e)) if e.eq_ignore_ascii_case(spec.allow) => Effect::Allow,
        Some(Json::String(e)) if e.eq_ignore_ascii_case(spec.deny) => Effect::Deny,
        Some(other) => return Err(PolicyError::InvalidEffect(display(other))),
    };

    let not_action = spec.not_action_key.and_then(|k| obj.get(k).map(|v| (k, v)));
    let actions = match (obj.get(spec.action_key), not_action) {
        (Some(_), Some((k, _))) => {
            return Err(PolicyError::Unsupported(format!(
                "{} together with {k}",
                spec.action_key
            )));
        }
        (Some(v), None) => ActionMatch::Any(actions(spec, spec.action_key, v)?),
        (None, Some((k, v))) => ActionMatch::AllBut(actions(spec, k, v)?),
        (None, None) => return Err(PolicyError::MissingField(spec.action_key.into())),
    };

    let resources = match obj.get(spec.resource_key) {
        None => return Err(PolicyError::MissingField(spec.resource_key.into())),
        Some(v) => strings(spec.resource_key, v)?
            .into_iter()
            .map(|r| {
                if r == "*" || (spec.resource)(r) {
                    Ok(Pattern::new(r))
                } else {
                    Err(PolicyError::InvalidResource(r.to_string()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?,
    };

    let when = match obj.get(spec.condition_key) {
        None => Predicate::True,
        Some(v) => conditions(spec, v)?,
    };
    Ok(Statement {
        effect,
        actions,
        resources,
        when,
        scope_types: Vec::new(),
    })
}

fn actions(spec: &Spec, field: &str, v: &Json) -> Result<Vec<Pattern>, PolicyError> {
    strings(field, v)?
        .into_iter()
        .map(|a| {
            if a == "*" {
                return Ok(Pattern::new(a));
            }
            (spec.action)(a)
                .map(|a| Pattern::new(&a))
                .ok_or_else(|| PolicyError::InvalidAction(a.to_string()))
        })
        .collect()
}

/// A string or a non-empty list of strings.
fn strings<'a>(field: &str, v: &'a Json) -> Result<Vec<&'a str>, PolicyError> {
    let wrong = || PolicyError::WrongType {
        field: field.into(),
        expected: "a string or a list of strings",
    };
    match v {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(list) => {
            if list.is_empty() {
                return Err(PolicyError::Empty(field.into()));
            }
            if list.len() > MAX_VALUES {
                return Err(PolicyError::TooMany {
                    what: "values in a list",
                    limit: MAX_VALUES,
                });
            }
            list.iter().map(|x| x.as_str().ok_or_else(wrong)).collect()
        }
        _ => Err(wrong()),
    }
}

fn conditions(spec: &Spec, v: &Json) -> Result<Predicate, PolicyError> {
    let field = spec.condition_key;
    let ops = v.as_object().ok_or_else(|| PolicyError::WrongType {
        field: field.into(),
        expected: "an object of operators",
    })?;
    let mut all = Vec::new();
    for (op_name, keys) in ops {
        let (op, if_exists, set) = (spec.operator)(op_name)
            .ok_or_else(|| PolicyError::UnknownConditionOperator(op_name.clone()))?;
        let keys = keys.as_object().ok_or_else(|| PolicyError::WrongType {
            field: op_name.clone(),
            expected: "an object of condition keys",
        })?;
        if keys.is_empty() {
            return Err(PolicyError::Empty(op_name.clone()));
        }
        for (key_name, values) in keys {
            if all.len() >= MAX_CONDITIONS {
                return Err(PolicyError::TooMany {
                    what: "conditions in a statement",
                    limit: MAX_CONDITIONS,
                });
            }
            let key = (spec.key)(key_name)
                .ok_or_else(|| PolicyError::InvalidConditionKey(key_name.clone()))?;
            let values = condition_values(op_name, key_name, op, values)?;
            all.push(Predicate::Condition(Condition {
                op,
                key,
                values,
                if_exists,
                set,
            }));
        }
    }
    Ok(match all.len() {
        0 => Predicate::True,
        _ => Predicate::All(all),
    })
}

fn condition_values(
    op_name: &str,
    key_name: &str,
    op: ConditionOp,
    v: &Json,
) -> Result<Vec<Value>, PolicyError> {
    let raw: Vec<&Json> = match v {
        Json::Array(list) => list.iter().collect(),
        other => vec![other],
    };
    if raw.is_empty() {
        return Err(PolicyError::Empty(key_name.into()));
    }
    if raw.len() > MAX_VALUES {
        return Err(PolicyError::TooMany {
            what: "values of a condition key",
            limit: MAX_VALUES,
        });
    }
    raw.into_iter()
        .map(|x| {
            condition_value(op, x).ok_or_else(|| PolicyError::InvalidConditionValue {
                operator: op_name.into(),
                key: key_name.into(),
                value: display(x),
            })
        })
        .collect()
}

fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn condition_value(op: ConditionOp, v: &Json) -> Option<Value> {
    let s = scalar(v)?;
    match op.value_kind() {
        ValueKind::String if matches!(op, ConditionOp::StringLike | ConditionOp::StringNotLike) => {
            Some(Value::Pattern(Pattern::new(&s)))
        }
        ValueKind::String => Some(Value::String(s)),
        ValueKind::Number => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .map(Value::Number),
        ValueKind::Date => OffsetDateTime::parse(s.trim(), &Rfc3339)
            .ok()
            .map(Value::Date),
        ValueKind::Bool => match s.to_ascii_lowercase().as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        ValueKind::Cidr => Cidr::parse(&s).map(Value::Cidr),
    }
}

/// `service:Name` with a lower-case service and a name of letters, digits, `_`, `-` and
/// wildcards; returns it unchanged.
pub(crate) fn service_action(a: &str) -> Option<String> {
    let (service, name) = a.split_once(':')?;
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'*');
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'*' | b'?'));
    (service_ok && name_ok).then(|| a.to_string())
}

/// A service-specific condition key `service:name` (no spaces or control characters).
pub(crate) fn other_key(k: &str) -> Option<ContextKey> {
    let (service, name) = k.split_once(':')?;
    let ok = !service.is_empty()
        && !name.is_empty()
        && k.chars().all(|c| !c.is_whitespace() && !c.is_control());
    ok.then(|| ContextKey::Other(k.to_string()))
}
