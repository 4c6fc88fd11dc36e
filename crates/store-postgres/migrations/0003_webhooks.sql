-- Webhook endpoints a workspace registered. Deliveries are jobs carrying a copy of
-- the URL, so they outlive an endpoint deleted with its workspace.
CREATE TABLE webhook_endpoints (
    workspace_id BIGINT NOT NULL REFERENCES workspaces (id),
    id           BIGINT GENERATED ALWAYS AS IDENTITY,
    public_id    TEXT NOT NULL,
    url          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, public_id),
    UNIQUE (workspace_id, url)
);
