-- Every table carries the workspace's internal id and every unique constraint
-- leads with it, so per-workspace scans, exports and deletes stay cheap.
-- A deleted workspace keeps its row (tombstone) until its purge; the name is free at
-- once because uniqueness covers live workspaces only.
CREATE TABLE workspaces (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    configuration TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    deleted_at    INTEGER
);
CREATE UNIQUE INDEX workspaces_live_name ON workspaces (name) WHERE deleted_at IS NULL;
CREATE INDEX workspaces_by_created ON workspaces (created_at, id);

CREATE TABLE peers (
    id                INTEGER PRIMARY KEY,
    workspace_id      INTEGER NOT NULL REFERENCES workspaces (id),
    name              TEXT NOT NULL,
    metadata          TEXT NOT NULL DEFAULT '{}',
    configuration     TEXT NOT NULL DEFAULT '{}',
    internal_metadata TEXT NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX peers_by_created ON peers (workspace_id, created_at, id);

-- A deleted session keeps its row (tombstone, deleted_at set) until it is purged;
-- its name is free at once because uniqueness covers live sessions only.
CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
    workspace_id  INTEGER NOT NULL REFERENCES workspaces (id),
    name          TEXT NOT NULL,
    metadata      TEXT NOT NULL DEFAULT '{}',
    configuration TEXT NOT NULL DEFAULT '{}',
    created_at    INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL DEFAULT 0,
    deleted_at    INTEGER
);
CREATE UNIQUE INDEX sessions_live_name ON sessions (workspace_id, name) WHERE deleted_at IS NULL;
CREATE INDEX sessions_by_created ON sessions (workspace_id, created_at, id);

CREATE TABLE session_peers (
    workspace_id  INTEGER NOT NULL,
    session_id    INTEGER NOT NULL REFERENCES sessions (id),
    peer_id       INTEGER NOT NULL REFERENCES peers (id),
    configuration TEXT NOT NULL DEFAULT '{}',
    joined_at     INTEGER NOT NULL,
    left_at       INTEGER,
    PRIMARY KEY (workspace_id, session_id, peer_id)
) WITHOUT ROWID;
CREATE INDEX session_peers_by_peer ON session_peers (workspace_id, peer_id);

-- Session and peer names are immutable, so messages carry them to answer
-- lists and filters without joins.
CREATE TABLE messages (
    id             INTEGER PRIMARY KEY,
    workspace_id   INTEGER NOT NULL,
    session_id     INTEGER NOT NULL REFERENCES sessions (id),
    public_id      TEXT NOT NULL,
    session_name   TEXT NOT NULL,
    peer_name      TEXT NOT NULL,
    content        TEXT NOT NULL,
    metadata       TEXT NOT NULL DEFAULT '{}',
    token_count    INTEGER NOT NULL,
    seq_in_session INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (workspace_id, public_id),
    UNIQUE (workspace_id, session_id, seq_in_session)
);
