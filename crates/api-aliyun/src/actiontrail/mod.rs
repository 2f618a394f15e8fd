//! Alibaba ActionTrail 2020-07-06 (docs/identity-wire.md §7, D12, D13; docs/audit.md):
//! `LookupEvents` over the caller's account's audit trail — its Alibaba API calls.

use crate::Ctx;
use crate::actions::{Handler, Out, action};
use crate::errors::ApiError;
use crate::params::Params;
use nubis_core::audit::{AuditCursor, AuditEvent, AuditFilter, AuditQuery};
use nubis_engine::Engine;
use nubis_pipeline::{ActionSpec, Registry, shapes};
use serde_json::{Map, Value, json};

pub const VERSION: &str = "2020-07-06";

/// The most events one page holds.
pub const MAX_RESULTS: i64 = 50;
/// Events per page for `MaxResults` absent or 0 (nubis's choice, D13).
pub const DEFAULT_RESULTS: i64 = 20;
/// The window when `StartTime` is absent: the last 7 days.
const DEFAULT_WINDOW_MS: i64 = 7 * 86_400_000;

/// The attribute keys `LookupAttribute.N.Key` documents.
pub const ATTRIBUTE_KEYS: &[&str] = &[
    "ServiceName",
    "EventName",
    "User",
    "EventId",
    "ResourceType",
    "ResourceName",
    "EventRW",
    "EventAccessKeyId",
];

/// 20 requests/s per account.
const SPECS: &[ActionSpec<Handler>] = &[ActionSpec {
    rate_limit: 20,
    ..action!(actiontrail read "LookupEvents", lookup_events)
}];

/// ActionTrail's registry, served beside ECS by its version.
pub static REGISTRY: Registry<Handler> = Registry::new("aliyun", "actiontrail", VERSION, SPECS);

fn invalid(message: String) -> ApiError {
    ApiError::new(400, "InvalidParameter", message)
}

/// `YYYY-MM-DDThh:mm:ssZ` as ms since the epoch.
fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    shapes::parse_iso_seconds(v).ok_or_else(|| {
        invalid(format!(
            "The parameter {name} must be a time like 2020-07-06T00:00:00Z."
        ))
    })
}

async fn lookup_events(engine: &Engine, ctx: &Ctx, p: &Params) -> Out {
    let now = nubis_now_ms();
    let until = match p.str("EndTime").filter(|s| !s.is_empty()) {
        Some(v) => parse_time("EndTime", v)?.saturating_add(999),
        None => now,
    };
    let since = match p.str("StartTime").filter(|s| !s.is_empty()) {
        Some(v) => parse_time("StartTime", v)?,
        None => until.saturating_sub(DEFAULT_WINDOW_MS),
    };
    if since > until {
        return Err(invalid("StartTime must not be after EndTime.".into()));
    }
    let max = match p.str("MaxResults").filter(|s| !s.is_empty()) {
        None => DEFAULT_RESULTS,
        Some(v) => match v.trim().parse::<i64>() {
            Ok(0) => DEFAULT_RESULTS,
            Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
            _ => {
                return Err(invalid(format!(
                    "MaxResults must be an integer from 0 to {MAX_RESULTS}."
                )));
            }
        },
    };
    let oldest_first = match p.str("Direction").unwrap_or("BACKWARD") {
        "BACKWARD" | "" => false,
        "FORWARD" => true,
        other => {
            return Err(invalid(format!(
                "Direction `{other}` is not FORWARD or BACKWARD."
            )));
        }
    };
    if p.max_index("LookupAttribute") > 1 {
        return Err(invalid(
            "Only one query condition (LookupAttribute) is allowed for each query.".into(),
        ));
    }
    let mut filters = vec![AuditFilter::Cloud("aliyun".into())];
    let mut bind = format!(
        "{}|{}|{max}|{oldest_first}",
        p.str("StartTime").unwrap_or(""),
        p.str("EndTime").unwrap_or("")
    );
    let mut matches_nothing = false;
    if let Some(attr) = p.groups("LookupAttribute").into_iter().next() {
        let key = attr.get("Key").cloned().unwrap_or_default();
        let value = attr.get("Value").cloned().unwrap_or_default();
        bind.push_str(&format!("|{key}={value}"));
        match key.as_str() {
            "ServiceName" => filters.push(AuditFilter::Service(value.to_ascii_lowercase())),
            "EventName" => filters.push(AuditFilter::Action(value)),
            "User" if value == "root" => filters.push(AuditFilter::Principal("root".into())),
            "User" => filters.push(AuditFilter::User(value)),
            "EventId" => filters.push(AuditFilter::EventId(value)),
            "ResourceName" => filters.push(AuditFilter::Resource(value)),
            "EventRW" => match value.to_ascii_lowercase().as_str() {
                "read" => filters.push(AuditFilter::ReadOnly(true)),
                "write" => filters.push(AuditFilter::ReadOnly(false)),
                _ => matches_nothing = true,
            },
            "EventAccessKeyId" => filters.push(AuditFilter::Credential(value)),
            // nubis records resource IDs without their types.
            "ResourceType" => matches_nothing = true,
            other => {
                return Err(invalid(format!(
                    "LookupAttribute key `{other}` is not one of {}.",
                    ATTRIBUTE_KEYS.join(", ")
                )));
            }
        }
    }
    let after = match p.str("NextToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            AuditCursor::parse(t, &bind)
                .ok_or_else(|| invalid("NextToken is not a token of this query.".into()))?,
        ),
    };
    let mut events = if matches_nothing {
        Vec::new()
    } else {
        engine
            .audit_events(
                &ctx.principal,
                AuditQuery {
                    account: None,
                    since_ms: since,
                    until_ms: until,
                    filters,
                    after,
                    limit: max as usize,
                    oldest_first,
                },
            )
            .await
            .map_err(|e| ApiError::new(500, "InternalError", e.to_string()))?
    };
    let more = events.len() > max as usize;
    events.truncate(max as usize);
    let account_id = engine
        .account(&ctx.principal.account)
        .map(|a| a.aliyun_account_id)
        .unwrap_or_default();
    let mut out = Map::new();
    if let Some(last) = events.last().filter(|_| more) {
        out.insert(
            "NextToken".into(),
            json!(
                AuditCursor {
                    time_ms: last.time_ms,
                    id: last.id.clone()
                }
                .token(&bind)
            ),
        );
    }
    out.insert(
        "Events".into(),
        Value::Array(events.iter().map(|e| event(e, &account_id)).collect()),
    );
    out.insert("StartTime".into(), json!(shapes::iso_seconds(since)));
    out.insert("EndTime".into(), json!(shapes::iso_seconds(until)));
    Ok(out)
}

fn nubis_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `ecs` → `Ecs`: ActionTrail's `serviceName`.
fn service_name(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// One event as ActionTrail's event reference names its fields (camelCase keys; the SDKs
/// type events as free maps).
pub(crate) fn event(e: &AuditEvent, account_id: &str) -> Value {
    let (kind, principal_id, user_name) = match (&e.role, e.sub_user) {
        // A role session: `<roleId>:<session>` and `<roleName>:<session>`.
        (Some(r), _) => (
            "assumed-role",
            format!("{}:{}", r.id, r.session),
            format!("{}:{}", r.name, r.session),
        ),
        (None, Some(id)) => ("ram-user", id.to_string(), e.user.clone()),
        (None, None) => ("root-account", account_id.to_string(), "root".to_string()),
    };
    let parameters: Value = serde_json::from_str(&e.parameters).unwrap_or_else(|_| json!({}));
    json!({
        "eventId": e.id,
        "eventVersion": "1",
        "eventSource": if e.service.is_empty() { String::new() } else { format!("{}.aliyuncs.com", e.service) },
        "eventName": e.action,
        "eventTime": shapes::iso_seconds(e.time_ms),
        "eventType": "ApiCall",
        "eventRW": match e.read_only { Some(true) => "Read", Some(false) => "Write", None => "" },
        "acsRegion": e.region.clone().unwrap_or_default(),
        "requestId": e.request_id,
        "sourceIpAddress": e.source_ip,
        "userAgent": e.user_agent,
        "serviceName": service_name(&e.service),
        "apiVersion": e.version,
        "errorCode": e.error_code.clone().unwrap_or_default(),
        "errorMessage": e.error_message.clone().unwrap_or_default(),
        "httpStatusCode": e.status,
        "requestParameters": parameters,
        "resourceName": e.resources.join(";"),
        "resourceType": if e.resources.first().is_some_and(|r| r.starts_with("i-")) { "ACS::ECS::Instance" } else { "" },
        "userIdentity": {
            "type": kind,
            "principalId": principal_id,
            "accountId": account_id,
            "accessKeyId": e.credential,
            "userName": user_name,
        },
    })
}
