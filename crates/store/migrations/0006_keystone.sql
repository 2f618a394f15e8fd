-- Keystone v3 directory (issue 13 item 5): domains, projects, users, groups, group
-- memberships, roles, role assignments and application credentials, one row each. `kind`
-- names the object type, `name_key` its name in its namespace (a domain's name; a
-- project's or user's `<domain_id>/<name>`; …): the unique index is the truth for name
-- clashes when several API nodes share one database. Objects without a name (memberships,
-- assignments) use their ID as `name_key`.
CREATE TABLE keystone_objects (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    name_key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE UNIQUE INDEX keystone_objects_name ON keystone_objects (kind, name_key);
