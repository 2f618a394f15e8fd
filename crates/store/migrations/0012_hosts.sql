-- Compute hosts (docs/agents.md): one row per `nubis agent`. The operator creates the row (ID,
-- zone, sealed credential); the agent's reports keep `address`, `driver`, the capacity columns
-- and `last_seen_ms` (unix ms, the receiving node's clock) current. Not journalled: every node
-- reads the table again each second.
CREATE TABLE hosts (
    id TEXT PRIMARY KEY,
    zone TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    address TEXT NOT NULL,
    driver TEXT NOT NULL,
    vcpus INTEGER NOT NULL,
    memory_mib INTEGER NOT NULL,
    disk_gib INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    -- The signed time of the last report (the agent's clock): a report not newer is a replay.
    report_ms INTEGER NOT NULL
);
