-- User data given at create (base64, up to 32 KiB decoded), read only by DescribeUserData:
-- kept out of the instance document so the fleet in memory and every step's instance write
-- stay small. Plain TEXT columns: the same DDL serves PostgreSQL.
CREATE TABLE user_data (instance TEXT PRIMARY KEY, data TEXT NOT NULL);
