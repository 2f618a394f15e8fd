//! The audit hook of the pipeline (docs/audit.md): every request that passed authentication
//! is recorded once its reply is rendered, allowed or refused, before the reply leaves (the
//! auditor may commit a read's event right after it: docs/audit.md). A
//! request whose credential or signature fails is not authenticated and is not recorded (its
//! caller is unknown: the trail would be an attacker's to fill).

use nubis_core::Principal;
use nubis_core::audit::{AuditEvent, AuditRole, MAX_FIELD, MAX_RESOURCES, cut};
use serde_json::{Map, Value};
use std::net::IpAddr;

/// Where the trail goes: the engine's store in the server, a list in tests.
#[async_trait::async_trait]
pub trait Auditor: Send + Sync {
    /// Records `event` durably; returns once it is committed (a read's, `read_only`, may be
    /// committed after: the engine's auditor makes its trail queries wait for it). A failure
    /// is the auditor's to log and count: the reply, already decided, is sent anyway.
    async fn record(&self, event: AuditEvent);
}

/// Where a request came from, as the listener saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    pub peer: Option<IpAddr>,
    pub user_agent: String,
}

impl Source {
    /// The peer address and the `User-Agent` header of a request.
    pub fn of(peer: Option<IpAddr>, headers: &[(String, String)]) -> Self {
        Self {
            peer,
            user_agent: nubis_auth::header(headers, "user-agent")
                .map(|u| cut(u, MAX_FIELD))
                .unwrap_or_default(),
        }
    }
}

/// Parameter names whose values are secrets (compared case-insensitively), besides every
/// name that contains `password`, `secret` or `privatekey` (D12).
const SECRET_NAMES: &[&str] = &[
    "token",
    "securitytoken",
    "x-auth-token",
    "signature",
    "tokencode",
    "authenticationcode1",
    "authenticationcode2",
    "adminpass",
];

/// Whether a parameter of this name holds a secret.
pub fn is_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.contains("password")
        || lower.contains("secret")
        || lower.contains("privatekey")
        || lower.contains("private_key")
        || SECRET_NAMES.contains(&lower.as_str())
}

/// Longest parameter value kept (UserData and the like are cut).
const MAX_VALUE: usize = 1024;
/// Longest parameters text kept; a longer one is replaced by a marker.
const MAX_PARAMETERS: usize = 16 * 1024;

/// Removes every secret (by name, at any depth) and cuts long strings.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !is_secret(k));
            m.values_mut().for_each(redact);
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        Value::String(s) if s.len() > MAX_VALUE => *s = format!("{}…", cut(s, MAX_VALUE)),
        _ => {}
    }
}

/// The parameters as the trail keeps them: redacted JSON text, bounded.
pub fn parameters_text(mut v: Value) -> String {
    if v.is_null() {
        return "{}".into();
    }
    redact(&mut v);
    let text = v.to_string();
    if text.len() > MAX_PARAMETERS {
        return r#"{"nubis:truncated":true}"#.into();
    }
    text
}

/// Whether a parameter of this name names resources the trail indexes (instances, key pairs,
/// images).
fn names_resource(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["instanceid", "keyid", "keypairname", "imageid", "server_id"]
        .iter()
        .any(|n| lower.contains(n))
}

/// Resource IDs in `v`: the string values (or lists of strings, or JSON-array strings as
/// Alibaba sends `InstanceIds`) of parameters that name resources, at any depth; at most
/// [`MAX_RESOURCES`] in all, without repeats.
pub fn collect_resources(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => collect_in_map(m, out),
        Value::Array(a) => a.iter().for_each(|x| collect_resources(x, out)),
        _ => {}
    }
}

/// [`collect_resources`] over an object's entries.
pub fn collect_in_map(m: &Map<String, Value>, out: &mut Vec<String>) {
    for (k, v) in m {
        if names_resource(k) {
            push_ids(v, out);
        } else {
            collect_resources(v, out);
        }
    }
}

fn push_ids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with('[') => {
            if let Ok(Value::Array(a)) = serde_json::from_str::<Value>(s) {
                a.iter().for_each(|x| push_ids(x, out));
            }
        }
        Value::String(s)
            if !s.is_empty() && out.len() < MAX_RESOURCES && !out.iter().any(|o| o == s) =>
        {
            out.push(cut(s, MAX_FIELD));
        }
        Value::Array(a) => a.iter().for_each(|x| push_ids(x, out)),
        Value::Object(m) => collect_in_map(m, out),
        _ => {}
    }
}

/// What the pipeline knows of a request once it is authenticated.
#[derive(Debug)]
pub(crate) struct Draft {
    pub time_ms: i64,
    pub principal: Principal,
    pub service: String,
    pub version: String,
    pub action: String,
    pub read_only: Option<bool>,
    pub region: Option<String>,
    pub resources: Vec<String>,
    pub source: Source,
    pub parameters: String,
}

impl Draft {
    pub(crate) fn finish(
        self,
        cloud: &str,
        request_id: &str,
        code: Option<String>,
        status: u16,
    ) -> AuditEvent {
        let role = self
            .principal
            .session
            .as_ref()
            .and_then(|s| s.role.as_ref())
            .map(|r| AuditRole {
                id: r.role_id,
                name: r.role_name.clone(),
                session: r.session_name.clone(),
            });
        AuditEvent {
            id: AuditEvent::new_id(),
            time_ms: self.time_ms,
            account: self.principal.account,
            user: self.principal.user,
            sub_user: self.principal.sub_user,
            is_admin: self.principal.is_admin,
            role,
            credential: self.principal.credential,
            cloud: cloud.to_string(),
            service: self.service,
            version: cut(&self.version, MAX_FIELD),
            action: cut(&self.action, MAX_FIELD),
            read_only: self.read_only,
            region: self.region.map(|r| cut(&r, MAX_FIELD)),
            resources: self.resources,
            source_ip: self.source.peer.map(|p| p.to_string()).unwrap_or_default(),
            user_agent: self.source.user_agent,
            request_id: request_id.to_string(),
            error_code: code,
            error_message: None,
            status,
            parameters: self.parameters,
        }
    }
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_never_survive() {
        let v = json!({
            "InstanceIds": ["ins-1"],
            "Password": "p", "LoginSettings": {"Password": "q", "KeyIds": ["skey-1"]},
            "Token": "t", "SecurityToken": "st", "Signature": "s", "SecretKey": "k",
            "AccessKeySecret": "a", "TmpSecretKey": "b", "adminPass": "c",
            "TokenCode": "123456", "AuthenticationCode1": "1", "AuthenticationCode2": "2",
            "PolicyDocument": "{\"version\":\"2.0\"}", "ClientToken": "ct",
            "server": {"adminPass": "x", "name": "n"},
            "UserData": "A".repeat(5000),
        });
        let text = parameters_text(v);
        for secret in [
            "\"p\"",
            "\"q\"",
            "\"t\"",
            "\"st\"",
            "\"s\"",
            "\"k\"",
            "\"a\"",
            "\"b\"",
            "\"c\"",
            "\"x\"",
            "123456",
            "Password",
            "Signature",
            "Secret",
            "adminPass",
            "AuthenticationCode",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        // Not secrets: kept.
        for kept in [
            "PolicyDocument",
            "ClientToken",
            "ins-1",
            "skey-1",
            "\"name\":\"n\"",
        ] {
            assert!(text.contains(kept), "{kept} missing from {text}");
        }
        assert!(text.len() < 2000, "UserData is cut: {}", text.len());
        assert_eq!(parameters_text(Value::Null), "{}");
        let huge = json!({"Tags": (0..2000).map(|i| format!("tag-{i}-{}", "x".repeat(20))).collect::<Vec<_>>()});
        assert_eq!(parameters_text(huge), r#"{"nubis:truncated":true}"#);
    }

    #[test]
    fn resources_are_found_in_every_style() {
        let mut out = Vec::new();
        collect_resources(
            &json!({
                "InstanceIds": ["ins-1", "ins-2", "ins-1"],
                "InstanceId": "i-3",
                "Alibaba": {"InstanceIds": "[\"i-4\",\"i-5\"]"},
                "KeyIds": ["skey-1"],
                "InstanceIdSet": ["ins-6"],
                "Name": "not-a-resource",
            }),
            &mut out,
        );
        out.sort();
        assert_eq!(
            out,
            ["i-3", "i-4", "i-5", "ins-1", "ins-2", "ins-6", "skey-1"]
        );
        let mut many = Vec::new();
        collect_resources(
            &json!({"InstanceIds": (0..500).map(|i| format!("ins-{i}")).collect::<Vec<_>>()}),
            &mut many,
        );
        assert_eq!(many.len(), MAX_RESOURCES);
    }
}
