-- Webhook endpoints a workspace registered. Deliveries are jobs carrying a copy of
-- the URL, so they outlive an endpoint deleted with its workspace.
CREATE TABLE webhook_endpoints (
    id           INTEGER PRIMARY KEY,
    workspace_id INTEGER NOT NULL REFERENCES workspaces (id),
    public_id    TEXT NOT NULL,
    url          TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (workspace_id, public_id),
    UNIQUE (workspace_id, url)
);
