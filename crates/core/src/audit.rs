//! The audit trail's record and its lookups (issue 13 item 6, docs/audit.md): one event per
//! authenticated call, allowed or refused, whatever the cloud. Dialect-neutral: CloudAudit,
//! ActionTrail, the admin API (and Nova's instance actions, from operations) render it.

use serde::{Deserialize, Serialize};

/// Most resource IDs one event keeps.
pub const MAX_RESOURCES: usize = 100;
/// Longest action name, user agent or source address kept (longer ones are cut).
pub const MAX_FIELD: usize = 256;

/// One authenticated call. Never holds a secret: parameters are redacted before they get here
/// (`nubis_pipeline::audit::redact`), the credential is the key's ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique, time-ordered (a UUID v7).
    pub id: String,
    /// When the request was authenticated (ms since the epoch).
    pub time_ms: i64,
    /// The caller's account: whose trail the event belongs to.
    pub account: String,
    /// The caller's display name (the account's name for its root, the sub-user's name).
    pub user: String,
    /// The calling sub-user (its ID); `None`: the account root, the bootstrap admin or a
    /// Keystone user (see `keystone_user`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_user: Option<u64>,
    /// The caller is the bootstrap admin.
    #[serde(default)]
    pub is_admin: bool,
    /// The role a role session (STS AssumeRole) acts as; `None`: the caller's own credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<AuditRole>,
    /// The ID of the credential the request was signed with (access key ID; empty for
    /// Keystone tokens, whose IDs are secrets).
    pub credential: String,
    /// `tencent`, `aliyun`, `openstack`, `admin`.
    pub cloud: String,
    /// `cvm`, `ecs`, `cloudaudit`, `compute`, …; empty for a version no service serves.
    pub service: String,
    pub version: String,
    /// The action as the request named it (cut to [`MAX_FIELD`]).
    pub action: String,
    /// Whether the action only reads (`None`: not a declared action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// The region as the request named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Resource IDs the request named, or the action created (best effort).
    #[serde(default)]
    pub resources: Vec<String>,
    /// The client's address; empty when unknown.
    pub source_ip: String,
    pub user_agent: String,
    pub request_id: String,
    /// The error code; `None`: success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub status: u16,
    /// The request's own parameters as JSON text, secrets removed.
    pub parameters: String,
}

/// The assumed role of a role session, as the trails name it (ActionTrail's `assumed-role`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRole {
    pub id: u64,
    pub name: String,
    pub session: String,
}

impl AuditEvent {
    /// A new event ID: a UUID v7, so IDs sort by time.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().to_string()
    }

    /// The principal's kind as the trails name it: `root`, `sub_user`, `admin`.
    pub fn principal_type(&self) -> &'static str {
        if self.sub_user.is_some() {
            "sub_user"
        } else if self.is_admin {
            "admin"
        } else {
            "root"
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// One condition on events besides the account and the time window; several are AND-ed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFilter {
    /// The cloud whose API was called (`tencent`, `aliyun`, `openstack`, `admin`).
    Cloud(String),
    Action(String),
    /// The action is one of these (at most [`MAX_RESOURCES`] names).
    ActionIn(Vec<String>),
    /// The action is none of these (at most [`MAX_RESOURCES`] names).
    ActionNotIn(Vec<String>),
    RequestId(String),
    EventId(String),
    /// The credential (access key ID).
    Credential(String),
    /// The caller's display name.
    User(String),
    /// The sub-user's ID, or the account itself for the root (`root`).
    Principal(String),
    /// One of the event's resource IDs.
    Resource(String),
    /// The error code; `""` selects successful calls.
    ErrorCode(String),
    SourceIp(String),
    Service(String),
    ReadOnly(bool),
}

/// Where a page ends: the last event returned (time, ID); the next page starts after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    pub time_ms: i64,
    pub id: String,
}

impl AuditCursor {
    /// The opaque page token of this cursor for the query described by `bind` (the query's
    /// parameters, canonically written by the caller): a token is good only for the query
    /// that made it.
    pub fn token(&self, bind: &str) -> String {
        format!("{:x}.{}.{:016x}", self.time_ms, self.id, fnv1a(bind))
    }

    /// The cursor of a token [`AuditCursor::token`] made for the same `bind`; `None` for
    /// anything else.
    pub fn parse(token: &str, bind: &str) -> Option<Self> {
        if token.len() > MAX_FIELD {
            return None;
        }
        let mut parts = token.split('.');
        let (t, id, h) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || h != format!("{:016x}", fnv1a(bind)) {
            return None;
        }
        let valid_id = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        Some(Self {
            time_ms: i64::from_str_radix(t, 16).ok().filter(|t| *t >= 0)?,
            id: valid_id.then(|| id.to_string())?,
        })
    }
}

/// FNV-1a, 64 bits: binds a page token to its query (not a secret: a client that forges a
/// token only pages its own trail differently).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A lookup: the account (`None`: every account, for the bootstrap admin), a time window
/// (inclusive, ms), filters, a cursor, a page size, the direction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditQuery {
    pub account: Option<String>,
    pub since_ms: i64,
    pub until_ms: i64,
    pub filters: Vec<AuditFilter>,
    pub after: Option<AuditCursor>,
    /// Page size; the store returns up to `limit + 1` so the caller knows whether more follow.
    pub limit: usize,
    /// Oldest first (ActionTrail `FORWARD`); default newest first.
    pub oldest_first: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_are_bound_to_their_query() {
        let c = AuditCursor {
            time_ms: 1_700_000_000_123,
            id: AuditEvent::new_id(),
        };
        let t = c.token("q1");
        assert_eq!(AuditCursor::parse(&t, "q1"), Some(c.clone()));
        assert_eq!(AuditCursor::parse(&t, "q2"), None);
        for bad in [
            "",
            "x",
            "1.2",
            "zz.abc.0",
            &format!("{t}.x"),
            &"a".repeat(300),
        ] {
            assert_eq!(AuditCursor::parse(bad, "q1"), None, "{bad}");
        }
        let forged = format!("-1.{}.{:016x}", c.id, fnv1a("q1"));
        assert_eq!(AuditCursor::parse(&forged, "q1"), None);
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("abcdef", 3), "abc");
        assert_eq!(cut("aé", 2), "a");
    }
}
