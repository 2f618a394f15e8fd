-- The files a server is to be given at its first boot (Nova personality, before 2.57): a JSON
-- list of {path, contents} (contents base64, as given; at most 5 files of 10240 characters).
-- Read only when the system disk is (re)provisioned, so beside the instance, as user_data is
-- (migration 0002), not in its document. Plain TEXT columns: the same DDL serves PostgreSQL.
CREATE TABLE injected_files (instance TEXT PRIMARY KEY, data TEXT NOT NULL);
