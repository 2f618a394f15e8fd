//! The admin API (docs/admin-api.md): inspection and fault switches for operators and tests.

use crate::http::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use nubis_core::{DomainError, Restriction};
use nubis_engine::admin::AdminAttributes;
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/instances/{id}", get(instance))
        .route("/instances/{id}/guest", get(guest))
        .route("/instances/{id}/check-password", post(check_password))
        .route("/instances/{id}/restrict", post(restrict))
        .route("/instances/{id}/faults", post(faults))
        .route("/instances/{id}/attributes", post(attributes))
        .route("/instances/{id}/live-migrate", post(live_migrate))
        .route("/faults", post(global_faults))
        .route("/kms-keys/{key}", post(kms_key))
        .route("/keystone-users", post(keystone_user))
        .route("/operations", get(operations))
        .route("/operations/by-request/{rid}", get(by_request))
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message.to_string()}})),
    )
        .into_response()
}

fn domain(e: DomainError) -> Response {
    match e {
        DomainError::NotFound { .. } => error(StatusCode::NOT_FOUND, "NotFound", e),
        DomainError::InvalidValue { .. } => error(StatusCode::BAD_REQUEST, "InvalidValue", e),
        DomainError::Unavailable(_) => error(StatusCode::SERVICE_UNAVAILABLE, "Unavailable", e),
        e => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal", e),
    }
}

/// HTTP Basic with an admin account's access key.
fn authorized(s: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(b64) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(raw) else {
        return false;
    };
    let Some((id, secret)) = text.split_once(':') else {
        return false;
    };
    s.engine
        .access_key(id)
        .is_some_and(|(p, real)| p.is_admin && real == secret)
}

macro_rules! guard {
    ($s:expr, $h:expr) => {
        if !authorized(&$s, &$h) {
            return error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "admin credentials required (HTTP Basic with an admin access key)",
            );
        }
    };
}

async fn instance(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_instance(&id)
        .map(|v| Json(v).into_response())
        .unwrap_or_else(domain)
}

async fn guest(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_guest(&id)
        .map(|v| Json(v).into_response())
        .unwrap_or_else(domain)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordCheck {
    user: String,
    password: String,
}

async fn check_password(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<PasswordCheck>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_check_password(&id, &b.user, &b.password)
        .map(|ok| Json(json!({"accepted": ok})).into_response())
        .unwrap_or_else(domain)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RestrictBody {
    restriction: String,
}

async fn restrict(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<RestrictBody>,
) -> Response {
    guard!(s, headers);
    let Some(r) = Restriction::parse(&b.restriction) else {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "restriction: none, expired, isolating, frozen, banned or security",
        );
    };
    s.engine
        .admin_restrict(&id, r)
        .await
        .map(|_| StatusCode::NO_CONTENT.into_response())
        .unwrap_or_else(domain)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultBody {
    soft_stop_fails: Option<bool>,
    disk_error: Option<bool>,
}

async fn faults(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<FaultBody>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_fault(&id, b.soft_stop_fails, b.disk_error)
        .await
        .map(|_| StatusCode::NO_CONTENT.into_response())
        .unwrap_or_else(domain)
}

async fn attributes(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Json(b): Json<AdminAttributes>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_attributes(&id, b)
        .await
        .map(|_| StatusCode::NO_CONTENT.into_response())
        .unwrap_or_else(domain)
}

async fn live_migrate(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
) -> Response {
    guard!(s, headers);
    match s.engine.admin_live_migrate(&id).await {
        Ok(rid) => Json(json!({"request_id": rid})).into_response(),
        Err(
            e @ (DomainError::StateConflict { .. }
            | DomainError::OperationInProgress { .. }
            | DomainError::Restricted { .. }),
        ) => error(StatusCode::CONFLICT, "Conflict", e),
        Err(e) => domain(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GlobalFaults {
    store_unavailable: bool,
}

async fn global_faults(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(b): Json<GlobalFaults>,
) -> Response {
    guard!(s, headers);
    s.engine.admin_store_down(b.store_unavailable);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KmsBody {
    state: nubis_core::KmsState,
}

async fn kms_key(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(key): Path<String>,
    Json(b): Json<KmsBody>,
) -> Response {
    guard!(s, headers);
    s.engine
        .admin_kms_key(&key, b.state)
        .await
        .map(|_| StatusCode::NO_CONTENT.into_response())
        .unwrap_or_else(domain)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeystoneUserBody {
    name: String,
    password: String,
    roles: Vec<String>,
}

async fn keystone_user(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Json(b): Json<KeystoneUserBody>,
) -> Response {
    guard!(s, headers);
    if b.roles.is_empty()
        || b.roles
            .iter()
            .any(|r| !["admin", "member", "reader"].contains(&r.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "roles: one or more of admin, member, reader",
        );
    }
    s.engine
        .add_keystone_user(&b.name, &b.password, b.roles)
        .await
        .map(|_| StatusCode::NO_CONTENT.into_response())
        .unwrap_or_else(domain)
}

fn op_json(o: &nubis_core::Operation) -> serde_json::Value {
    json!({
        "id": o.id,
        "request_id": o.request_id,
        "instance": o.instance,
        "action": o.action.as_str(),
        "state": o.state.as_str(),
        "attempts": o.attempts,
        "steps": o.steps.len(),
        "steps_done": o.steps_done,
        "error": o.error,
        "created_at": o.created_at_ms,
        "finished_at": o.finished_at_ms,
    })
}

#[derive(Deserialize)]
struct OpsQuery {
    instance: String,
}

async fn operations(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Query(q): Query<OpsQuery>,
) -> Response {
    guard!(s, headers);
    match s.engine.admin_operations(&q.instance).await {
        Ok(ops) => Json(ops.iter().map(op_json).collect::<Vec<_>>()).into_response(),
        Err(e) => domain(e),
    }
}

async fn by_request(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(rid): Path<String>,
) -> Response {
    guard!(s, headers);
    match s.engine.admin_operations_by_request(&rid).await {
        Ok(ops) => Json(ops.iter().map(op_json).collect::<Vec<_>>()).into_response(),
        Err(e) => domain(e),
    }
}
