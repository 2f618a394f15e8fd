-- Cluster-wide state (docs/postgres.md, "Cluster-wide state"): what each `nubis serve` kept in
-- its own memory, shared by every node of one database. SQLite (one process) has the tables
-- too, but keeps its fast in-memory paths; only a shared store (PostgreSQL) reads them.

-- Spent signature nonces: (dialect, access key, nonce) until `expires_at` (unix seconds).
-- Spending one is an insert; a row that is still live means a replay.
CREATE TABLE signature_nonces (
    scope TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, access_key_id, nonce)
);
CREATE INDEX signature_nonces_expiry ON signature_nonces (expires_at);

-- Requests counted per (account, action, one-second window): the per-action rate limits.
CREATE TABLE rate_windows (
    account TEXT NOT NULL,
    action TEXT NOT NULL,
    window_s INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (account, action, window_s)
);
CREATE INDEX rate_windows_window ON rate_windows (window_s);

-- ClientToken claims: the create that inserted the row (its `claim`) makes the instances; its
-- commit records their UUIDs (a JSON array) in `instances`, NULL until then.
CREATE TABLE client_tokens (
    account TEXT NOT NULL,
    token TEXT NOT NULL,
    claim TEXT NOT NULL,
    claimed_ms INTEGER NOT NULL,
    instances TEXT,
    PRIMARY KEY (account, token)
);
CREATE INDEX client_tokens_claimed ON client_tokens (claimed_ms);

-- Keystone tokens by the hex SHA-256 of the token ID (the ID itself is never stored); `data`
-- is what the token says (user, scope, roles, expiry), as JSON.
CREATE TABLE keystone_tokens (
    digest TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    issued_ms INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX keystone_tokens_user ON keystone_tokens (user_name, issued_ms);
CREATE INDEX keystone_tokens_expiry ON keystone_tokens (expires_at);
