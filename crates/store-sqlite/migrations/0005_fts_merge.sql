-- Purges that have merged the full-text index down before deleting from it, so a
-- resumed purge does not merge again.
CREATE TABLE fts_merged_purges (unit_key TEXT PRIMARY KEY);
