-- Runs after every id table was rebuilt with AUTOINCREMENT (`src/monotonic_ids.rs`).
-- AUTOINCREMENT only remembers ids of rows still present or inserted since; a purged
-- session or workspace may still be named by a receipt, a job, an embedding row or the
-- full-text index, so each sequence starts above every id anything still holds.
INSERT INTO sqlite_sequence (name, seq)
SELECT column1, 0 FROM (VALUES ('workspaces'), ('sessions'), ('messages'))
WHERE column1 NOT IN (SELECT name FROM sqlite_sequence);

UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(id) FROM (
    SELECT max(workspace_id) AS id FROM deletion_receipts
    UNION ALL SELECT max(workspace_id) FROM jobs
    UNION ALL SELECT max(json_extract(payload, '$.workspace_id')) FROM jobs
    UNION ALL SELECT max(workspace_id) FROM messages
    UNION ALL SELECT max(workspace_id) FROM session_peers
    UNION ALL SELECT max(workspace_id) FROM message_embeddings
)), 0))
WHERE name = 'workspaces';

UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(id) FROM (
    SELECT max(session_id) AS id FROM deletion_receipts
    UNION ALL SELECT max(json_extract(payload, '$.session_id')) FROM jobs
    UNION ALL SELECT max(session_id) FROM message_embeddings
)), 0))
WHERE name = 'sessions';

UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(id) FROM (
    SELECT max(message_id) AS id FROM message_embeddings
    UNION ALL SELECT max(id) FROM messages_fts_docsize
    UNION ALL SELECT max(ids.value) FROM jobs, json_each(jobs.payload, '$.message_ids') AS ids
)), 0))
WHERE name = 'messages';
