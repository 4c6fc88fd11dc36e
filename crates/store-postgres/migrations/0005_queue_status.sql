-- Queue status reads one workspace's unfinished and recently finished jobs.
CREATE INDEX jobs_by_workspace ON jobs (workspace_id, state, finished_at);
