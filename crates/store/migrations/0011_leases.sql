-- Operation leases (docs/cluster.md, "Leases and takeover"): the node that runs an unfinished
-- operation holds its row and renews it; once `expires_at_ms` (the database's clock, unix ms)
-- has passed, any node may take the operation over, which bumps `fence`. A runner's writes
-- carry the fence it holds, so a node that lost its lease cannot record another step. Only a
-- shared store (PostgreSQL) reads or writes this table: on SQLite one process runs everything.
CREATE TABLE operation_leases (
    operation_id TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    fence INTEGER NOT NULL
);
CREATE INDEX operation_leases_expiry ON operation_leases (expires_at_ms);
