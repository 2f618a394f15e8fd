//! Tencent CloudAudit 2019-03-19 (docs/identity-wire.md §5, D12, D13; docs/audit.md):
//! `LookUpEvents` over the caller's account's audit trail — its Tencent API calls.

use crate::Ctx;
use crate::actions::{Handler, Payload, action, global};
use crate::errors::ApiError;
use nubis_core::audit::{AuditCursor, AuditEvent, AuditFilter, AuditQuery};
use nubis_engine::Engine;
use nubis_pipeline::{ActionSpec, Registry, shapes};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub const VERSION: &str = "2019-03-19";

/// The longest window one lookup may cover: 7 days (`LimitExceeded.OverTime`).
pub const MAX_WINDOW_SECS: i64 = 7 * 86_400;
/// The most events one page holds (`InvalidParameterValue.MaxResult` above it).
pub const MAX_RESULTS: i64 = 50;
/// Events per page when `MaxResults` is absent (nubis's choice: the reference gives none).
pub const DEFAULT_RESULTS: i64 = 20;
/// Most lookup attributes one request may carry (one per documented key is 12).
const MAX_ATTRIBUTES: usize = 20;

/// The attribute keys `LookupAttributes` documents.
pub const ATTRIBUTE_KEYS: &[&str] = &[
    "RequestId",
    "EventName",
    "ActionType",
    "PrincipalId",
    "ResourceId",
    "ResourceName",
    "AccessKeyId",
    "SensitiveAction",
    "ApiErrorCode",
    "CamErrorCode",
    "SourceIPAddress",
    "Tags",
];

const SPECS: &[ActionSpec<Handler>] = &[global(
    action!(cloudaudit: "LookUpEvents", LookUpEventsReq, look_up_events),
)];

/// CloudAudit's registry, served beside CVM by its version.
pub static REGISTRY: Registry<Handler> = Registry::new("tencent", "cloudaudit", VERSION, SPECS);

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct LookUpEventsReq {
    start_time: Option<Value>,
    end_time: Option<Value>,
    lookup_attributes: Option<Vec<Attribute>>,
    next_token: Option<String>,
    max_results: Option<Value>,
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Attribute {
    attribute_key: Option<String>,
    attribute_value: Option<String>,
}

/// An integer parameter as JSON (TC3) or text (legacy); `None` when absent.
fn integer(v: &Option<Value>) -> Result<Option<i64>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| ()),
        Some(_) => Err(()),
    }
}

fn time_error() -> ApiError {
    ApiError::new(
        "InvalidParameter.Time",
        "StartTime and EndTime are required and must be integers (unix seconds).",
    )
}

/// The filters of one attribute; `None`: the attribute matches no event nubis records.
fn filter(key: &str, value: String, owner_uin: u64) -> Result<Option<Vec<AuditFilter>>, ApiError> {
    let truthy = |v: &str| matches!(v.to_ascii_lowercase().as_str(), "true" | "1");
    let sensitive = || {
        nubis_identity::eval::TENCENT_SENSITIVE_ACTIONS
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
    };
    Ok(Some(vec![match key {
        "RequestId" => AuditFilter::RequestId(value),
        "EventName" => AuditFilter::Action(value),
        "ActionType" => match value.to_ascii_lowercase().as_str() {
            "read" => AuditFilter::ReadOnly(true),
            "write" => AuditFilter::ReadOnly(false),
            _ => return Ok(None),
        },
        // The root's principal ID is the owner UIN; a sub-user's its own UIN.
        "PrincipalId" if value == owner_uin.to_string() => AuditFilter::Principal("root".into()),
        "PrincipalId" => AuditFilter::Principal(value),
        "ResourceId" | "ResourceName" => AuditFilter::Resource(value),
        "AccessKeyId" => AuditFilter::Credential(value),
        "SensitiveAction" if truthy(&value) => AuditFilter::ActionIn(sensitive()),
        "SensitiveAction" => AuditFilter::ActionNotIn(sensitive()),
        "ApiErrorCode" | "CamErrorCode" => AuditFilter::ErrorCode(value),
        "SourceIPAddress" => AuditFilter::SourceIp(value),
        // nubis does not tag events.
        "Tags" => return Ok(None),
        other => {
            return Err(ApiError::new(
                "InvalidParameterValue.attributeKey",
                format!("The AttributeKey `{other}` is not supported."),
            ));
        }
    }]))
}

async fn look_up_events(
    engine: &Engine,
    ctx: &Ctx,
    r: LookUpEventsReq,
) -> Result<Payload, ApiError> {
    let start = integer(&r.start_time).map_err(|()| time_error())?;
    let end = integer(&r.end_time).map_err(|()| time_error())?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(time_error());
    };
    if start < 0 || end < 0 || start > end {
        return Err(ApiError::new(
            "InvalidParameterValue.Time",
            "StartTime must not be after EndTime.",
        ));
    }
    if end - start > MAX_WINDOW_SECS {
        return Err(ApiError::new(
            "LimitExceeded.OverTime",
            "检索支持的有效时间范围是7天 (the time range of one lookup is at most 7 days).",
        ));
    }
    let max = integer(&r.max_results)
        .ok()
        .flatten()
        .or(r.max_results.is_none().then_some(DEFAULT_RESULTS))
        .filter(|m| (1..=MAX_RESULTS).contains(m))
        .ok_or_else(|| {
            ApiError::new(
                "InvalidParameterValue.MaxResult",
                format!("MaxResults must be an integer from 1 to {MAX_RESULTS}."),
            )
        })?;
    if let Some(mode) = &r.mode
        && mode != "standard"
        && mode != "quick"
    {
        return Err(ApiError::new(
            "InvalidParameterValue",
            "Mode must be `standard` or `quick`.",
        ));
    }
    let attributes = r.lookup_attributes.unwrap_or_default();
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("At most {MAX_ATTRIBUTES} LookupAttributes are allowed."),
        ));
    }
    let account = engine.account(&ctx.principal.account);
    let owner_uin = account.as_ref().map_or(0, |a| a.tencent_owner_uin);
    let mut filters = vec![AuditFilter::Cloud("tencent".into())];
    let mut bind = format!("{start}|{end}|{max}");
    let mut matches_nothing = false;
    for a in attributes {
        let key = a.attribute_key.unwrap_or_default();
        let value = a.attribute_value.ok_or_else(|| {
            ApiError::new(
                "MissingParameter",
                "The parameter `LookupAttributes.AttributeValue` is required",
            )
        })?;
        bind.push_str(&format!("|{key}={value}"));
        match filter(&key, value, owner_uin)? {
            Some(f) => filters.extend(f),
            None => matches_nothing = true,
        }
    }
    let after = match r.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(AuditCursor::parse(t, &bind).ok_or_else(|| {
            ApiError::new(
                "InvalidParameterValue",
                "NextToken is not a token of this query.",
            )
        })?),
    };
    let query = AuditQuery {
        account: None,
        since_ms: start.saturating_mul(1000),
        until_ms: end.saturating_mul(1000).saturating_add(999),
        filters,
        after,
        limit: max as usize,
        oldest_first: false,
    };
    let search_err =
        |e: nubis_core::DomainError| ApiError::new("InternalError.SearchError", e.to_string());
    let (mut events, total) = if matches_nothing {
        (Vec::new(), 0)
    } else {
        let total = engine
            .count_audit_events(&ctx.principal, query.clone())
            .await
            .map_err(search_err)?;
        let events = engine
            .audit_events(&ctx.principal, query)
            .await
            .map_err(search_err)?;
        (events, total)
    };
    let more = events.len() > max as usize;
    events.truncate(max as usize);
    let next = more.then(|| events.last()).flatten().map(|e| {
        AuditCursor {
            time_ms: e.time_ms,
            id: e.id.clone(),
        }
        .token(&bind)
    });
    let rendered: Vec<Value> = events.iter().map(|e| event(e, owner_uin)).collect();
    let mut out = Map::new();
    out.insert("ListOver".into(), json!(!more));
    out.insert("TotalCount".into(), json!(total));
    out.insert("Events".into(), Value::Array(rendered));
    if let Some(next) = next {
        out.insert("NextToken".into(), json!(next));
    }
    Ok(Payload::Map(out))
}

/// One event as the SDK models it (`Event`): `EventTime` a string of unix seconds,
/// `CloudAuditEvent` a JSON document serialised into a string (D12).
pub(crate) fn event(e: &AuditEvent, owner_uin: u64) -> Value {
    let (user_type, principal_id, username) = match (&e.role, e.sub_user) {
        // A role session: CloudAudit names the role as the operator (STS GetCallerIdentity's
        // `CAMRole`, `<roleId>:<session>`).
        (Some(r), _) => ("CAMRole", format!("{}:{}", r.id, r.session), r.name.clone()),
        (None, Some(uin)) => ("CAMUser", uin.to_string(), e.user.clone()),
        (None, None) => ("root", owner_uin.to_string(), "root".to_string()),
    };
    let source = if e.service.is_empty() {
        String::new()
    } else {
        format!("{}.tencentcloudapi.com", e.service)
    };
    let action_type = match e.read_only {
        Some(true) => "Read",
        Some(false) => "Write",
        None => "",
    };
    let resource = e.resources.first().cloned().unwrap_or_default();
    let resource_type = if e.service.is_empty() { "" } else { &e.service };
    let region = e.region.clone().unwrap_or_default();
    let inner = json!({
        "actionType": action_type,
        "apiErrorCode": e.error_code.clone().unwrap_or_default(),
        "apiErrorMessage": e.error_message.clone().unwrap_or_default(),
        "apiVersion": e.version,
        "errorCode": i64::from(e.error_code.is_some()),
        "errorMessage": e.error_code.clone().unwrap_or_default(),
        "eventID": e.id,
        "eventName": e.action,
        "eventRegion": region,
        "eventSource": source,
        "eventTime": shapes::datetime(e.time_ms),
        "eventType": "ApiCall",
        "eventVersion": 2,
        "httpCode": e.status,
        "requestID": e.request_id,
        "requestParameters": e.parameters,
        "resourceName": e.resources.join(";"),
        "resourceType": resource_type,
        "sourceIPAddress": e.source_ip,
        "userAgent": e.user_agent,
        "userIdentity": {
            "type": user_type,
            "principalId": principal_id,
            "accountId": owner_uin.to_string(),
            "userName": username,
            "secretId": e.credential,
        },
    });
    json!({
        "EventId": e.id,
        "Username": username,
        "EventTime": (e.time_ms / 1000).to_string(),
        "CloudAuditEvent": inner.to_string(),
        "ResourceTypeCn": resource_type,
        "ErrorCode": i64::from(e.error_code.is_some()),
        "EventName": e.action,
        "SecretId": e.credential,
        "EventSource": source,
        "RequestID": e.request_id,
        "ResourceRegion": region,
        "AccountID": owner_uin,
        "SourceIPAddress": e.source_ip,
        "EventNameCn": e.action,
        "Resources": {"ResourceType": resource_type, "ResourceName": resource},
        "EventRegion": region,
        "Location": "",
    })
}
