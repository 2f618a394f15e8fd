//! Tencent CAM policy syntax 2.0: `version` "2.0", `statement` [{`effect` allow|deny,
//! `action`, `resource`, `condition`}], lower-case snake-case operators with the `_if_exist`
//! suffix and the `for_any_value:` / `for_all_value:` qualifiers. Sources: CAM "Condition
//! Keys and Condition Operators" and "Scenarios" (docs/identity.md).

use super::json::{self, Spec};
use super::limits::CAM_MAX_CHARS;
use super::{CompiledPolicy, ConditionOp, ContextKey, Grammar, PolicyError, SetQualifier};

const SPEC: Spec = Spec {
    grammar: Grammar::Cam,
    max_size: CAM_MAX_CHARS,
    size_in_chars: true,
    version_key: "version",
    version: "2.0",
    statement_key: "statement",
    effect_key: "effect",
    action_key: "action",
    not_action_key: None,
    resource_key: "resource",
    condition_key: "condition",
    unsupported: &["principal", "not_action", "not_resource"],
    allow: "allow",
    deny: "deny",
    operator,
    key,
    action,
    resource,
};

/// Compiles a CAM policy document named `name`.
pub fn compile(name: &str, document: &str) -> Result<CompiledPolicy, PolicyError> {
    json::compile(&SPEC, name, document)
}

fn operator(name: &str) -> Option<(ConditionOp, bool, SetQualifier)> {
    use ConditionOp::*;
    let (set, rest) = if let Some(r) = name.strip_prefix("for_any_value:") {
        (SetQualifier::ForAnyValue, r)
    } else if let Some(r) = name.strip_prefix("for_all_value:") {
        (SetQualifier::ForAllValues, r)
    } else {
        (SetQualifier::Single, name)
    };
    let (base, if_exists) = match rest.strip_suffix("_if_exist") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let op = match base {
        "string_equal" | "binary_equal" => StringEquals,
        "string_not_equal" => StringNotEquals,
        "string_equal_ignore_case" => StringEqualsIgnoreCase,
        "string_not_equal_ignore_case" => StringNotEqualsIgnoreCase,
        "string_like" => StringLike,
        "string_not_like" => StringNotLike,
        "numeric_equal" => NumericEquals,
        "numeric_not_equal" => NumericNotEquals,
        "numeric_less_than" => NumericLessThan,
        "numeric_less_than_equal" => NumericLessThanEquals,
        "numeric_greater_than" => NumericGreaterThan,
        "numeric_greater_than_equal" => NumericGreaterThanEquals,
        "date_equal" => DateEquals,
        "date_not_equal" => DateNotEquals,
        "date_less_than" => DateLessThan,
        "date_less_than_equal" => DateLessThanEquals,
        "date_greater_than" => DateGreaterThan,
        "date_greater_than_equal" => DateGreaterThanEquals,
        "bool_equal" => Bool,
        "ip_equal" => IpAddress,
        "ip_not_equal" => NotIpAddress,
        // CAM: every operator but null_equal takes `_if_exist`.
        "null_equal" if !if_exists => Null,
        _ => return None,
    };
    Some((op, if_exists, set))
}

/// CAM's general keys are case-sensitive (CAM docs).
fn key(name: &str) -> Option<ContextKey> {
    Some(match name {
        "qcs:ip" => ContextKey::SourceIp,
        "qcs:current_time" => ContextKey::CurrentTime,
        // CAM's operator table spells it `qcs:mfa` and writes the example key as `mfa`.
        // `qcs:mfaPresent`: the key Tencent's guide "使用 MFA 保护 API 请求" uses.
        "qcs:mfa" | "mfa" | "qcs:mfaPresent" => ContextKey::MfaPresent,
        "qcs:resource_tag" => ContextKey::ResourceTag(None),
        "qcs:request_tag" => ContextKey::RequestTag(None),
        _ => match name.strip_prefix("qcs:tag/") {
            Some(tag) if !tag.is_empty() => ContextKey::ResourceTag(Some(tag.to_string())),
            // CAM's own examples use bare product keys (`cvm_system_disk_size`).
            _ => return json::other_key(name).or_else(|| bare_key(name)),
        },
    })
}

fn bare_key(name: &str) -> Option<ContextKey> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
    ok.then(|| ContextKey::Other(name.to_string()))
}

/// `cvm:RebootInstances`, or the older `name/cvm:RebootInstances`.
fn action(a: &str) -> Option<String> {
    json::service_action(a.strip_prefix("name/").unwrap_or(a))
}

/// `qcs:<project>:<service>:<region>:<account>:<resource>`, the account empty, `*`,
/// `uin/<n>` or `uid/<n>`.
fn resource(r: &str) -> bool {
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    let [qcs, _project, service, _region, account, res] = parts.as_slice() else {
        return false;
    };
    *qcs == "qcs"
        && !service.is_empty()
        && !res.is_empty()
        && (account.is_empty()
            || *account == "*"
            || account.starts_with("uin/")
            || account.starts_with("uid/"))
}
