-- Same logical schema as the SQLite engine, so ordering, filters and timestamps behave
-- identically. Every table carries the workspace's internal id and every key leads with
-- it, so the tables can be distributed by workspace (Citus) and per-workspace scans,
-- exports and deletes stay cheap. Timestamps are microseconds since the Unix epoch.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE workspaces (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT '{}',
    configuration JSONB NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    -- Tombstone: the name is free at once, the rows go with the purge.
    deleted_at    BIGINT
);
CREATE UNIQUE INDEX workspaces_live_name ON workspaces (name) WHERE deleted_at IS NULL;
CREATE INDEX workspaces_by_created ON workspaces (created_at, id);

CREATE TABLE peers (
    workspace_id      BIGINT NOT NULL REFERENCES workspaces (id),
    id                BIGINT GENERATED ALWAYS AS IDENTITY,
    name              TEXT NOT NULL,
    metadata          JSONB NOT NULL DEFAULT '{}',
    configuration     JSONB NOT NULL DEFAULT '{}',
    internal_metadata JSONB NOT NULL DEFAULT '{}',
    created_at        BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name)
);
CREATE INDEX peers_by_created ON peers (workspace_id, created_at, id);

-- A deleted session keeps its row (tombstone, deleted_at set) until it is purged;
-- its name is free at once because uniqueness covers live sessions only.
CREATE TABLE sessions (
    workspace_id  BIGINT NOT NULL REFERENCES workspaces (id),
    id            BIGINT GENERATED ALWAYS AS IDENTITY,
    name          TEXT NOT NULL,
    metadata      JSONB NOT NULL DEFAULT '{}',
    configuration JSONB NOT NULL DEFAULT '{}',
    created_at    BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    deleted_at    BIGINT,
    PRIMARY KEY (workspace_id, id)
);
CREATE UNIQUE INDEX sessions_live_name ON sessions (workspace_id, name) WHERE deleted_at IS NULL;
CREATE INDEX sessions_by_created ON sessions (workspace_id, created_at, id);

CREATE TABLE session_peers (
    workspace_id  BIGINT NOT NULL,
    session_id    BIGINT NOT NULL,
    peer_id       BIGINT NOT NULL,
    configuration JSONB NOT NULL DEFAULT '{}',
    joined_at     BIGINT NOT NULL,
    left_at       BIGINT,
    PRIMARY KEY (workspace_id, session_id, peer_id),
    FOREIGN KEY (workspace_id, session_id) REFERENCES sessions (workspace_id, id),
    FOREIGN KEY (workspace_id, peer_id) REFERENCES peers (workspace_id, id)
);
CREATE INDEX session_peers_by_peer ON session_peers (workspace_id, peer_id);

-- Session and peer names are immutable, so messages carry them to answer
-- lists and filters without joins.
CREATE TABLE messages (
    workspace_id   BIGINT NOT NULL,
    id             BIGINT GENERATED ALWAYS AS IDENTITY,
    session_id     BIGINT NOT NULL,
    public_id      TEXT NOT NULL,
    session_name   TEXT NOT NULL,
    peer_name      TEXT NOT NULL,
    content        TEXT NOT NULL,
    metadata       JSONB NOT NULL DEFAULT '{}',
    token_count    BIGINT NOT NULL,
    seq_in_session BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, public_id),
    UNIQUE (workspace_id, session_id, seq_in_session),
    FOREIGN KEY (workspace_id, session_id) REFERENCES sessions (workspace_id, id)
);
