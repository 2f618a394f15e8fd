-- Glance's metadata definitions (docs/images.md, "Metadata definitions"): one JSON document
-- per namespace (its objects, properties, tags and resource-type associations inside), keyed
-- by a UUID so a rename keeps the row. The name is unique (two nodes creating the same
-- namespace: one gets the constraint violation) and every write is conditional on the
-- generation it read, so two API nodes on one PostgreSQL cannot lose each other's changes.
CREATE TABLE metadef_namespaces (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    generation INTEGER NOT NULL,
    data TEXT NOT NULL
);
