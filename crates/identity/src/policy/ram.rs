//! Alibaba Cloud RAM policy language, version 1: `Version` "1", `Statement` [{`Effect`
//! Allow|Deny, `Action` | `NotAction`, `Resource`, `Condition`}], operators such as
//! `StringEquals`, `IpAddress`, `DateLessThan`, `Bool`. Sources: RAM "Policy structure and
//! syntax" and "Conditional operators" (docs/identity.md).

use super::json::{self, Spec};
use super::limits::RAM_MAX_BYTES;
use super::{CompiledPolicy, ConditionOp, ContextKey, Grammar, PolicyError, SetQualifier};

const SPEC: Spec = Spec {
    grammar: Grammar::Ram,
    max_size: RAM_MAX_BYTES,
    size_in_chars: false,
    version_key: "Version",
    version: "1",
    statement_key: "Statement",
    effect_key: "Effect",
    action_key: "Action",
    not_action_key: Some("NotAction"),
    resource_key: "Resource",
    condition_key: "Condition",
    // `Principal` belongs to role trust policies; `NotResource` is not in RAM's grammar.
    unsupported: &["Principal", "NotResource"],
    allow: "Allow",
    deny: "Deny",
    operator,
    key,
    action: json::service_action,
    resource,
};

/// Compiles a RAM policy document named `name`.
pub fn compile(name: &str, document: &str) -> Result<CompiledPolicy, PolicyError> {
    json::compile(&SPEC, name, document)
}

fn operator(name: &str) -> Option<(ConditionOp, bool, SetQualifier)> {
    use ConditionOp::*;
    let op = match name {
        "StringEquals" => StringEquals,
        "StringNotEquals" => StringNotEquals,
        "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
        "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
        "StringLike" => StringLike,
        "StringNotLike" => StringNotLike,
        "NumericEquals" => NumericEquals,
        "NumericNotEquals" => NumericNotEquals,
        "NumericLessThan" => NumericLessThan,
        "NumericLessThanEquals" => NumericLessThanEquals,
        "NumericGreaterThan" => NumericGreaterThan,
        "NumericGreaterThanEquals" => NumericGreaterThanEquals,
        "DateEquals" => DateEquals,
        "DateNotEquals" => DateNotEquals,
        "DateLessThan" => DateLessThan,
        "DateLessThanEquals" => DateLessThanEquals,
        "DateGreaterThan" => DateGreaterThan,
        "DateGreaterThanEquals" => DateGreaterThanEquals,
        "Bool" => Bool,
        "IpAddress" => IpAddress,
        "NotIpAddress" => NotIpAddress,
        _ => return None,
    };
    Some((op, false, SetQualifier::Single))
}

/// The `acs:` global keys match case-insensitively; tag keys keep their case.
fn key(name: &str) -> Option<ContextKey> {
    let lower = name.to_ascii_lowercase();
    let tag = |prefix: &str| {
        lower
            .starts_with(prefix)
            .then(|| name.get(prefix.len()..))
            .flatten()
            .filter(|t| !t.is_empty())
            .map(str::to_string)
    };
    Some(match lower.as_str() {
        "acs:sourceip" => ContextKey::SourceIp,
        "acs:currenttime" => ContextKey::CurrentTime,
        "acs:mfapresent" => ContextKey::MfaPresent,
        "acs:securetransport" => ContextKey::SecureTransport,
        _ => {
            if let Some(t) = tag("acs:resourcetag/").or_else(|| tag("ecs:tag/")) {
                ContextKey::ResourceTag(Some(t))
            } else if let Some(t) = tag("acs:requesttag/") {
                ContextKey::RequestTag(Some(t))
            } else {
                return json::other_key(name);
            }
        }
    })
}

/// `acs:<service>:<region>:<account>:<relative id>`.
fn resource(r: &str) -> bool {
    let parts: Vec<&str> = r.splitn(5, ':').collect();
    let [acs, service, _region, _account, res] = parts.as_slice() else {
        return false;
    };
    *acs == "acs" && !service.is_empty() && !res.is_empty()
}
