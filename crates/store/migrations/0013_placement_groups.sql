-- Placement groups (docs/placement-groups.md): Nova server groups, Tencent disaster-recover
-- groups and Alibaba deployment sets are one record, kept as a JSON document like key pairs.
-- Members are not stored here: an instance names its group (`placement_group` in its record).
CREATE TABLE placement_groups (id TEXT PRIMARY KEY, account TEXT NOT NULL, data TEXT NOT NULL);
