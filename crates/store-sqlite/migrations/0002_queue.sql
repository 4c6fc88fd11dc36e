-- The job queue lives beside the data so a job is written in the same transaction
-- as the change that causes it. Lower priority runs first (deletions are 0).
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER,
    kind         TEXT NOT NULL,
    unit_key     TEXT NOT NULL,
    priority     INTEGER NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX jobs_ready ON jobs (state, priority, run_at, id);
CREATE INDEX jobs_by_unit ON jobs (unit_key, state);

-- What a completed (or running) purge removed; never any content.
CREATE TABLE deletion_receipts (
    id               INTEGER PRIMARY KEY,
    workspace_id     INTEGER NOT NULL,
    workspace_name   TEXT NOT NULL,
    session_id       INTEGER NOT NULL,
    session_name     TEXT NOT NULL,
    messages_deleted INTEGER NOT NULL DEFAULT 0,
    members_deleted  INTEGER NOT NULL DEFAULT 0,
    requested_at     INTEGER NOT NULL,
    finished_at      INTEGER,
    UNIQUE (workspace_id, session_id)
);
