//! The control plane's side of host agents (docs/agents.md), on the one listener:
//! `/agent/v1/report` and `/agent/v1/guests`, signed by the agent with its host's credential
//! (the agent process itself is `host.rs`). Every request is checked before its body is
//! parsed: bounded signature headers, the time window, the MAC in constant time.

use crate::http::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nubis_auth::agent;
use nubis_driver::wire::{self, ErrorReply};
use nubis_engine::HostCallError;

/// A failed call as both ends answer it.
pub(crate) fn refusal(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = ErrorReply {
        error: None,
        message: message.to_string(),
    };
    (status, axum::Json(body)).into_response()
}

pub(crate) fn header_of<'a>(headers: &'a HeaderMap) -> impl Fn(&str) -> Option<&'a str> {
    |name| headers.get(name).and_then(|v| v.to_str().ok())
}

// ------------------------------------------------------------------------------------------
// The control plane's side

/// `/agent/v1/*` on the one listener.
pub fn control_routes() -> Router<AppState> {
    Router::new()
        .route(wire::REPORT, post(report))
        .route(wire::GUESTS, post(guests))
        .layer(DefaultBodyLimit::max(wire::MAX_BODY))
}

fn host_refusal(e: HostCallError) -> Response {
    match e {
        // Unknown host and bad signature answer alike: nothing tells which IDs exist.
        HostCallError::Auth(_) | HostCallError::UnknownHost => refusal(
            StatusCode::UNAUTHORIZED,
            "the request is not signed by a registered host",
        ),
        HostCallError::Invalid(m) => refusal(StatusCode::BAD_REQUEST, m),
        HostCallError::Domain(nubis_core::DomainError::Unavailable(m)) => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, m)
        }
        HostCallError::Domain(e) => refusal(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

/// An agent call whose signature headers do not parse.
fn unsigned(e: agent::AgentAuthError) -> Response {
    tracing::info!(error = %e, "agent call refused");
    refusal(StatusCode::UNAUTHORIZED, e)
}

async fn report(State(s): State<AppState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let sig = match agent::parse(header_of(&headers)) {
        Ok(sig) => sig,
        Err(e) => return unsigned(e),
    };
    let host = sig.host.to_string();
    match s.engine.host_report(&sig, uri.path(), &body).await {
        Ok(every) => {
            tracing::debug!(%host, "host report");
            axum::Json(serde_json::json!({"report_every_ms": every.as_millis()})).into_response()
        }
        Err(e) => {
            tracing::info!(%host, error = %e, "host report refused");
            host_refusal(e)
        }
    }
}

async fn guests(State(s): State<AppState>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let sig = match agent::parse(header_of(&headers)) {
        Ok(sig) => sig,
        Err(e) => return unsigned(e),
    };
    match s.engine.host_guests(&sig, uri.path(), &body).await {
        Ok(g) => {
            tracing::info!(host = %sig.host, guests = g.guests.len(), "host restores its guests");
            axum::Json(g).into_response()
        }
        Err(e) => host_refusal(e),
    }
}
