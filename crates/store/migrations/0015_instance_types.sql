-- Instance types created by an operator (docs/flavors.md): Nova flavors made with POST /flavors,
-- beside the built-in catalogue (which is not stored). One JSON document per type, keyed by its
-- Nova flavor ID, which is also its Tencent and Alibaba type name; the access list of a private
-- flavor and its extra specs are in the document.
CREATE TABLE instance_types (id TEXT PRIMARY KEY, data TEXT NOT NULL);
