-- Tenancy (issue 13): accounts beyond the bootstrap admin, sub-users, policies and their
-- attachments. JSON documents next to the columns they are looked up by; the unique
-- constraints are the truth when several API nodes share one database (the in-memory
-- checks only give the friendlier error first).
ALTER TABLE accounts ADD COLUMN tencent_owner_uin INTEGER;
ALTER TABLE accounts ADD COLUMN tencent_app_id INTEGER;
ALTER TABLE accounts ADD COLUMN aliyun_account_id TEXT;
-- NULL for the bootstrap admin (no cloud numbers): unique indexes accept several NULLs.
CREATE UNIQUE INDEX accounts_tencent_owner_uin ON accounts (tencent_owner_uin);
CREATE UNIQUE INDEX accounts_tencent_app_id ON accounts (tencent_app_id);
CREATE UNIQUE INDEX accounts_aliyun_account_id ON accounts (aliyun_account_id);
-- The sub-user a key belongs to (NULL: the account root).
ALTER TABLE access_keys ADD COLUMN user_id INTEGER;
CREATE TABLE sub_users (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account, name)
);
CREATE TABLE policies (
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (account, name)
);
CREATE TABLE policy_attachments (
    user_id INTEGER NOT NULL,
    policy_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, policy_id)
);
CREATE INDEX policy_attachments_policy ON policy_attachments (policy_id);
