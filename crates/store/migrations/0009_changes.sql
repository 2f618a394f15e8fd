-- The change journal (issue 14 item 2, docs/postgres.md "Several nodes, one fleet"): every
-- batch committed on PostgreSQL adds one row per record it wrote, numbered by the one-row
-- counter it bumps in the same transaction. The counter row's lock orders committers across
-- nodes, so seq order is commit order and a reader never sees a larger seq before a smaller
-- one. Each node replays the rows past its cursor into its cache. `pruned` is the largest seq
-- deleted by the retention sweep: a node whose cursor is below it reloads everything. SQLite
-- (one process) has the tables but never writes them.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    node TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX changes_at ON changes (at_ms);
CREATE TABLE change_counter (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, pruned INTEGER NOT NULL);
INSERT INTO change_counter (id, seq, pruned) VALUES (1, 0, 0);
