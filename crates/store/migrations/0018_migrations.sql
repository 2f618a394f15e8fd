-- Nova's migration records (GET /os-migrations, docs/resize.md): one row per resize operation,
-- written in the same transaction as the operation's first commit and never rewritten, so its
-- number (SQLite's rowid; PostgreSQL's `seq`, added beside this migration) is Nova's integer
-- migration ID and orders the records as they were accepted. The record itself is the
-- operation (and the confirmation or revert that followed it); this table only numbers and
-- finds them. Resizes accepted before this migration are numbered in the order they were made.
CREATE TABLE migrations (
    operation TEXT PRIMARY KEY,
    instance TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX migrations_instance ON migrations (instance);
INSERT INTO migrations (operation, instance, created_at_ms)
    SELECT id, instance, created_at_ms FROM operations
    WHERE data LIKE '%"action":"resize"%' ORDER BY created_at_ms, id;
