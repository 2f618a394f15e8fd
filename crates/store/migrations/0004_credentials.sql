-- Temporary credentials, roles and MFA (issue 13: STS, operation protection). JSON documents
-- next to the columns they are looked up by; secrets inside are sealed, session tokens are
-- kept only as SHA-256.
CREATE TABLE roles (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account, name)
);
-- `id`: the Alibaba serial, or the Tencent serial (one per owner UIN) and the sub-user.
CREATE TABLE mfa_devices (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    -- The bound sub-user (NULL: not bound); one device per sub-user.
    user_id INTEGER UNIQUE,
    data TEXT NOT NULL
);
CREATE TABLE mfa_flags (
    user_id INTEGER PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE temp_credentials (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX temp_credentials_expiry ON temp_credentials (expires_at_ms);
