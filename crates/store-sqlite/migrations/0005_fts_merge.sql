-- Purges that have decided whether to merge the full-text index before deleting from it
-- (and finished that merge), so a resumed purge neither counts nor merges again.
CREATE TABLE fts_purge_plans (unit_key TEXT PRIMARY KEY, merged INTEGER NOT NULL);
