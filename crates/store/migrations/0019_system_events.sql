-- System events (ECS's DescribeInstanceHistoryEvents, docs/system-events.md): one JSON document
-- per event, rewritten only over its previous generation (a cancel races the event's own
-- time). Events are read on demand, never kept in memory, so every API node sees the same
-- ones without the change journal. `not_before_ms` bounds the reads: an event is listed
-- while it is pending or for 30 days after it ended, and it always ends before its
-- NotBefore or at it.
CREATE TABLE system_events (
    id TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    instance TEXT NOT NULL,
    generation INTEGER NOT NULL,
    published_at_ms INTEGER NOT NULL,
    not_before_ms INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX system_events_account ON system_events (account, not_before_ms);
