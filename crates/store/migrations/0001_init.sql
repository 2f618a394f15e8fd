-- Records are stored as JSON documents next to the columns we look them up by.
CREATE TABLE accounts (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE access_keys (id TEXT PRIMARY KEY, account TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE instances (
    uuid TEXT PRIMARY KEY,
    account TEXT NOT NULL,
    tencent_id TEXT NOT NULL UNIQUE,
    aliyun_id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE operations (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    instance TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX operations_request ON operations (request_id);
CREATE INDEX operations_instance ON operations (instance, created_at_ms);
CREATE INDEX operations_state ON operations (state);
CREATE TABLE key_pairs (id TEXT PRIMARY KEY, account TEXT NOT NULL, data TEXT NOT NULL);
-- Driver-owned state of each VM (the sim guest model, QEMU paths), written with each step.
CREATE TABLE guests (instance TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
