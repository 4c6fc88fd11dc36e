-- The job queue lives beside the data so a job is written in the same transaction
-- as the change that causes it. Lower priority runs first (deletions are 0).
-- `workspace_id` is nullable (a job need not belong to a workspace), so the key is
-- the job id alone; claims scan `jobs_ready` and check units through `jobs_by_unit`.
CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id BIGINT,
    kind         TEXT NOT NULL,
    unit_key     TEXT NOT NULL,
    priority     BIGINT NOT NULL,
    payload      JSONB NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    run_at       BIGINT NOT NULL,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX jobs_ready ON jobs (state, priority, run_at, id);
CREATE INDEX jobs_by_unit ON jobs (unit_key, state);

-- What a completed (or running) purge removed; never any content.
CREATE TABLE deletion_receipts (
    workspace_id     BIGINT NOT NULL,
    id               BIGINT GENERATED ALWAYS AS IDENTITY,
    workspace_name   TEXT NOT NULL,
    session_id       BIGINT NOT NULL,
    session_name     TEXT NOT NULL,
    messages_deleted BIGINT NOT NULL DEFAULT 0,
    members_deleted  BIGINT NOT NULL DEFAULT 0,
    requested_at     BIGINT NOT NULL,
    finished_at      BIGINT,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, session_id)
);
CREATE INDEX deletion_receipts_by_requested ON deletion_receipts (workspace_id, requested_at, id);
