-- Full-text index over message content: a generated column, so it is written in the
-- same transaction as the message and a message is searchable once its write returns.
ALTER TABLE messages
    ADD COLUMN content_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
CREATE INDEX messages_content_tsv ON messages USING gin (content_tsv);

-- Substring matches and recent-first search results walk this index.
CREATE INDEX messages_by_workspace_created ON messages (workspace_id, created_at);

-- The one embedding model this database's vectors come from.
CREATE TABLE embedding_model (
    id         INT PRIMARY KEY CHECK (id = 1),
    model      TEXT NOT NULL,
    dimension  INT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per embedded chunk, carrying its provenance. The column has no fixed
-- dimension here because it comes from the model; the HNSW index is built on a cast to
-- that dimension when embeddings are turned on.
CREATE TABLE message_embeddings (
    workspace_id BIGINT NOT NULL,
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    session_id   BIGINT NOT NULL,
    message_id   BIGINT NOT NULL,
    chunk        INT NOT NULL,
    embedding    vector NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, message_id, chunk)
);
CREATE INDEX message_embeddings_by_session ON message_embeddings (workspace_id, session_id);
