-- The operations still running are the only ones read by state (at start-up, and by a
-- cluster's lease sweep): a partial index holds just those, so finishing an operation no longer
-- rewrites an entry in an index of every operation ever run (a random page per operation on a
-- large fleet; docs/fleet-index.md).
DROP INDEX operations_state;
CREATE INDEX operations_running ON operations (created_at_ms) WHERE state = 'OPERATING';
