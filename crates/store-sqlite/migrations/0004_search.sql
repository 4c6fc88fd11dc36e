-- Full-text index over message content, kept in step by triggers in the same
-- transaction as the write, so a message is searchable the moment its write returns.
-- secure-delete removes a deleted message's terms from the index at once instead of
-- leaving them behind delete markers until a merge.
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content = 'messages', content_rowid = 'id', tokenize = 'porter unicode61'
);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
END;

-- Substring matches and recent-first search results walk this index.
CREATE INDEX messages_by_workspace_created ON messages (workspace_id, created_at);

-- The one embedding model this database's vectors come from.
CREATE TABLE embedding_model (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    model      TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- One row per embedded chunk, carrying its provenance; the vector itself lives in the
-- vec0 table `message_vectors` (same rowid), created when embeddings are turned on
-- because its dimension comes from the model.
CREATE TABLE message_embeddings (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL,
    session_id   INTEGER NOT NULL,
    message_id   INTEGER NOT NULL,
    chunk        INTEGER NOT NULL,
    UNIQUE (message_id, chunk)
);
CREATE INDEX message_embeddings_by_session ON message_embeddings (workspace_id, session_id);
