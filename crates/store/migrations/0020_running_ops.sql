-- The operations still running are the only ones read by their state (the operations to
-- resume at start-up): a partial index holds just those, so finishing an operation no longer
-- moves an entry in an index of every operation ever run (a random page per operation on a
-- large fleet; bench/RESULTS.md, "Durable mutations at 1,000,000").
DROP INDEX operations_state;
CREATE INDEX operations_running ON operations (created_at_ms) WHERE state = 'OPERATING';
