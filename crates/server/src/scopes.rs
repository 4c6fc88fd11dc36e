//! The one place every route declares who may call it. The authentication layer looks
//! routes up here; a route missing from this table is admin-only, and the route matrix
//! test fails for any route of the API description that is not listed.

use engram_core::auth::Access::{self, *};

const W: &str = "/v3/workspaces/{workspace_id}";

/// `(method, path template as routed, rule)`. Templates not starting with `/` are
/// relative to `W`.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/health", Public),
    ("GET", "/openapi.json", Public),
    ("GET", "/docs", Public),
    // Operators' view of every workspace's queue.
    ("GET", "/metrics", Admin),
    ("POST", "/v3/keys", Admin),
    ("POST", "/v3/workspaces", SelfAuthorizing),
    ("POST", "/v3/workspaces/list", Admin),
    ("PUT", "", Workspace),
    ("DELETE", "", Workspace),
    ("GET", "queue/status", Workspace),
    ("POST", "search", Workspace),
    ("POST", "peers", SelfAuthorizing),
    ("POST", "peers/list", Workspace),
    ("PUT", "peers/{peer_id}", Peer),
    ("GET", "peers/{peer_id}/card", Peer),
    ("PUT", "peers/{peer_id}/card", Peer),
    ("POST", "peers/{peer_id}/sessions", Peer),
    ("POST", "peers/{peer_id}/search", Peer),
    ("POST", "sessions", SelfAuthorizing),
    ("POST", "sessions/list", Workspace),
    ("PUT", "sessions/{session_id}", Session),
    ("DELETE", "sessions/{session_id}", Session),
    ("POST", "sessions/{session_id}/clone", Session),
    ("GET", "sessions/{session_id}/context", SessionMemberRead),
    ("POST", "sessions/{session_id}/search", SessionMemberRead),
    ("POST", "sessions/{session_id}/messages", Session),
    ("POST", "sessions/{session_id}/messages/", Session),
    (
        "POST",
        "sessions/{session_id}/messages/list",
        SessionMemberRead,
    ),
    (
        "GET",
        "sessions/{session_id}/messages/{message_id}",
        SessionMemberRead,
    ),
    (
        "PUT",
        "sessions/{session_id}/messages/{message_id}",
        Session,
    ),
    ("POST", "sessions/{session_id}/peers", Session),
    ("PUT", "sessions/{session_id}/peers", Session),
    ("DELETE", "sessions/{session_id}/peers", Session),
    ("GET", "sessions/{session_id}/peers", SessionMemberRead),
    // Peer keys may read only their own configuration (checked in the handler).
    (
        "GET",
        "sessions/{session_id}/peers/{peer_id}/config",
        SessionMemberRead,
    ),
    (
        "PUT",
        "sessions/{session_id}/peers/{peer_id}/config",
        Session,
    ),
    ("POST", "webhooks", Workspace),
    ("GET", "webhooks", Workspace),
    ("DELETE", "webhooks/{endpoint_id}", Workspace),
    ("GET", "webhooks/test", Workspace),
    ("GET", "/api/v1/sessions", PocketPaw),
    ("GET", "/api/sessions", PocketPaw),
    ("GET", "/api/memory/sessions", PocketPaw),
    ("GET", "/api/v1/sessions/search", PocketPaw),
    ("GET", "/api/sessions/search", PocketPaw),
    ("GET", "/api/v1/sessions/{id}/history", PocketPaw),
    ("GET", "/api/memory/session", PocketPaw),
    ("POST", "/api/v1/sessions/{id}/title", PocketPaw),
    ("PUT", "/api/v1/sessions/{id}/title", PocketPaw),
    ("POST", "/api/sessions/{id}/title", PocketPaw),
    ("PUT", "/api/sessions/{id}/title", PocketPaw),
    ("DELETE", "/api/v1/sessions/{id}", PocketPaw),
    ("DELETE", "/api/sessions/{id}", PocketPaw),
    ("GET", "/api/v1/sessions/{id}/export", PocketPaw),
    ("GET", "/api/memory/session/export", PocketPaw),
];

/// The declared rule of a routed path template, if any.
pub fn declared(method: &str, template: &str) -> Option<Access> {
    ROUTES.iter().find_map(|(m, path, access)| {
        let matches = if path.starts_with('/') {
            *path == template
        } else {
            template
                .strip_prefix(W)
                .and_then(|rest| match *path {
                    "" => Some(rest.is_empty()),
                    p => rest.strip_prefix('/').map(|r| r == p),
                })
                .unwrap_or(false)
        };
        (matches && m.eq_ignore_ascii_case(method)).then_some(*access)
    })
}

/// Undeclared routes fail closed.
pub fn access(method: &str, template: &str) -> Access {
    declared(method, template).unwrap_or_else(|| {
        tracing::error!(%method, %template, "route has no declared access; admin only");
        Admin
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_templates() {
        assert_eq!(declared("GET", "/health"), Some(Public));
        assert_eq!(declared("PUT", W), Some(Workspace));
        assert_eq!(
            declared("post", "/v3/workspaces/{workspace_id}/peers/list"),
            Some(Workspace)
        );
        assert_eq!(declared("GET", "/v3/workspaces/{workspace_id}/peers"), None);
        assert_eq!(access("PATCH", "/v3/workspaces"), Admin);
    }
}
