//! The job queue's shared rules: claimed jobs, purge payloads, receipts and the retry
//! schedule. The kinds of job and their policies are in `jobs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::time::Micros;

/// How long a claim lasts without renewal; a crashed worker's job is retried after it.
/// Purges renew it with every batch (a batch takes milliseconds), so it can be short
/// and a job of a crashed worker resumes soon after.
pub const LEASE_MICROS: Micros = 15_000_000;
/// Rows removed per purge transaction, small enough to never hold the writer long.
pub const PURGE_BATCH: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub attempts: i64,
    pub max_attempts: i64,
    /// When this attempt became due: when the job was queued (or re-queued by an
    /// operator) for a first attempt, the end of the backoff for a retry.
    pub run_at: Micros,
}

impl Job {
    /// The job's typed work; an error for a kind or payload this build does not know.
    pub fn task(&self) -> crate::Result<crate::jobs::Task> {
        crate::jobs::Task::from_stored(&self.kind, &self.payload)
    }
}

/// Identifies the session a purge removes, by internal ids: the name may already
/// belong to a new session.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurgeSession {
    pub workspace_id: i64,
    pub session_id: i64,
}

/// A session purge's unit key is `{PURGE_SESSION_UNIT}:{workspace_id}:{session_id}`.
pub const PURGE_SESSION_UNIT: &str = "purge";

pub fn purge_unit_key(p: PurgeSession) -> String {
    format!("{PURGE_SESSION_UNIT}:{}:{}", p.workspace_id, p.session_id)
}

/// A deleted workspace's purge, by internal id: the name may already be reused.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurgeWorkspace {
    pub workspace_id: i64,
}

/// A workspace purge's unit key is `{PURGE_WORKSPACE_UNIT}:{workspace_id}`.
pub const PURGE_WORKSPACE_UNIT: &str = "purge-workspace";

pub fn purge_workspace_unit_key(p: PurgeWorkspace) -> String {
    format!("{PURGE_WORKSPACE_UNIT}:{}", p.workspace_id)
}

pub fn active_sessions_remain(workspace: &str) -> crate::Error {
    crate::Error::Conflict(format!(
        "Cannot delete workspace '{workspace}': active session(s) remain. Delete all sessions first."
    ))
}

/// When a job that failed its `attempts`-th try runs again: exponential from one
/// second, capped at ten minutes, with up to 25% jitter so retries do not align.
/// `None` once the attempt limit is reached: the job is dead-lettered.
pub fn retry_at(now: Micros, attempts: i64, max_attempts: i64) -> Option<Micros> {
    if attempts >= max_attempts {
        return None;
    }
    let base = 1_000_000i64
        .saturating_mul(1 << attempts.clamp(0, 20))
        .min(600_000_000);
    let jitter = (now.rem_euclid(1000) * base / 4) / 1000;
    Some(now + base + jitter)
}

/// A job as operators see it (`engram queue list`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobInfo {
    pub id: i64,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_at: Micros,
    pub last_error: Option<String>,
}

/// What a purge removed; never any content.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Receipt {
    pub workspace_id: String,
    pub session_id: String,
    pub messages_deleted: i64,
    pub members_deleted: i64,
    pub requested_at: Micros,
    pub finished_at: Option<Micros>,
}

/// The job states that make up queue depth; `done` jobs are history, not depth.
pub const DEPTH_STATES: [&str; 3] = ["pending", "running", "failed"];

/// How many jobs of one kind are in one state (`DEPTH_STATES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueDepth {
    pub kind: String,
    pub state: String,
    pub jobs: i64,
}

/// Deletion jobs of one workspace by state, for queue status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeletionCounts {
    pub pending: i64,
    pub in_progress: i64,
    pub completed: i64,
    pub failed: i64,
}

/// Folds `(state, count)` rows of the jobs table into counts.
pub fn deletion_counts(rows: impl IntoIterator<Item = (String, i64)>) -> DeletionCounts {
    let mut c = DeletionCounts::default();
    for (state, n) in rows {
        match state.as_str() {
            "pending" => c.pending += n,
            "running" => c.in_progress += n,
            "done" => c.completed += n,
            _ => c.failed += n,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stops_at_the_limit() {
        let a = retry_at(0, 1, 10).unwrap();
        let b = retry_at(0, 2, 10).unwrap();
        assert_eq!((a, b), (2_000_000, 4_000_000));
        assert!(retry_at(999, 3, 10).unwrap() <= 999 + 8_000_000 + 2_000_000);
        assert_eq!(retry_at(0, 30, 40).unwrap(), 600_000_000);
        assert_eq!(retry_at(0, 10, 10), None);
    }
}
