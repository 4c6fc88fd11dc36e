//! The integrity checks `engram verify` runs, each counting rows that should not
//! exist. Checks that read only the shared schema are SQL written here once (valid on
//! both engines) and built from the job registry and the unit keys, so they follow a
//! renamed kind or key; checks of engine-specific structures (vector and full-text
//! indexes) name what they check and each engine answers with its own SQL.

use crate::jobs::{self, JobKind};
use crate::queue::{PURGE_SESSION_UNIT, PURGE_WORKSPACE_UNIT};

/// A check that only an engine can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineCheck {
    /// Message vectors whose message is gone.
    OrphanVectors,
    /// Full-text index entries whose message is gone.
    OrphanFullText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `SELECT` of one count, valid SQL on both engines.
    Shared(String),
    Engine(EngineCheck),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What the counted rows are, as `engram verify` prints it.
    pub name: &'static str,
    pub query: Query,
}

/// The checks, in the order `Store::verify` answers them.
pub fn checks() -> Vec<Check> {
    let shared = |name, sql: String| Check {
        name,
        query: Query::Shared(sql),
    };
    let deletions = jobs::sql_names(JobKind::is_deletion);
    vec![
        shared(
            "messages whose session row is gone",
            "SELECT COUNT(*) FROM messages m WHERE NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.workspace_id = m.workspace_id AND s.id = m.session_id)"
                .into(),
        ),
        shared(
            "memberships whose session row is gone",
            "SELECT COUNT(*) FROM session_peers sp WHERE NOT EXISTS \
             (SELECT 1 FROM sessions s WHERE s.workspace_id = sp.workspace_id AND s.id = sp.session_id)"
                .into(),
        ),
        shared(
            "deleted sessions with no purge queued or running",
            format!(
                "SELECT COUNT(*) FROM sessions s WHERE s.deleted_at IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM jobs j WHERE j.unit_key = '{PURGE_SESSION_UNIT}:' || s.workspace_id || ':' || s.id \
                 AND j.state IN ('pending', 'running'))"
            ),
        ),
        shared(
            "purge jobs dead-lettered",
            format!("SELECT COUNT(*) FROM jobs WHERE kind IN ({deletions}) AND state = 'failed'"),
        ),
        shared(
            "deleted workspaces with no purge queued or running",
            format!(
                "SELECT COUNT(*) FROM workspaces w WHERE w.deleted_at IS NOT NULL AND NOT EXISTS \
                 (SELECT 1 FROM jobs j WHERE j.unit_key = '{PURGE_WORKSPACE_UNIT}:' || w.id \
                 AND j.state IN ('pending', 'running'))"
            ),
        ),
        shared(
            "peers and sessions whose workspace row is gone",
            "SELECT (SELECT COUNT(*) FROM peers p WHERE NOT EXISTS \
             (SELECT 1 FROM workspaces w WHERE w.id = p.workspace_id)) \
             + (SELECT COUNT(*) FROM sessions s WHERE NOT EXISTS \
             (SELECT 1 FROM workspaces w WHERE w.id = s.workspace_id))"
                .into(),
        ),
        Check {
            name: "message vectors whose message is gone",
            query: Query::Engine(EngineCheck::OrphanVectors),
        },
        Check {
            name: "full-text index entries whose message is gone",
            query: Query::Engine(EngineCheck::OrphanFullText),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_checks_follow_the_registry_and_unit_keys() {
        let all = checks();
        let sql = |name: &str| match &all.iter().find(|c| c.name == name).unwrap().query {
            Query::Shared(sql) => sql.clone(),
            Query::Engine(_) => panic!("{name} is an engine check"),
        };
        assert!(
            sql("purge jobs dead-lettered")
                .contains("kind IN ('purge_session', 'purge_workspace')")
        );
        assert!(sql("deleted sessions with no purge queued or running").contains("'purge:'"));
        assert!(
            sql("deleted workspaces with no purge queued or running")
                .contains("'purge-workspace:'")
        );
    }
}
