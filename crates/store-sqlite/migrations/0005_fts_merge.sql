-- Each running purge's full-text plan: decided once (merge the index first or not), and
-- whether that merge is still under way, so a resumed purge neither recounts nor re-merges.
CREATE TABLE fts_purge_plans (unit_key TEXT PRIMARY KEY, merging INTEGER NOT NULL);
