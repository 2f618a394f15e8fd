-- The audit trail (issue 13 item 6, docs/audit.md): one row per authenticated call, allowed
-- or refused. The JSON document holds the whole event (never a secret); the columns are what
-- lookups go by: an account's events in a time window (CloudAudit, ActionTrail), by action
-- (EventName) or request ID, and every account's by time (the admin API, the retention sweep).
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX audit_events_account_time ON audit_events (account, time_ms, id);
CREATE INDEX audit_events_account_action ON audit_events (account, action, time_ms);
CREATE INDEX audit_events_request ON audit_events (request_id);
CREATE INDEX audit_events_time ON audit_events (time_ms, id);
