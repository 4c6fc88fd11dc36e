//! What `GET /v3/workspaces/{w}/queue/status` counts, decided once for both engines.
//!
//! Every job of the workspace whose kind `jobs::JobKind::is_client_work` (embedding now,
//! derivation and summaries when they exist) counts; purges are reported apart
//! (`deletions`) and webhook deliveries are the client's own traffic, as the reference
//! leaves out its deletion and webhook tasks.
//!
//! Like the reference, the counters count queue items (jobs), and an item is in
//! progress when its work unit is being worked on: a job waiting behind a running job
//! of its unit is in progress, not pending. Finished jobs count as completed while they
//! are recent (`COMPLETED_WINDOW`), as the reference's processed rows do until its
//! cleanup removes them; a dead-lettered job is completed too (it will not progress by
//! itself, so a client waiting for the queue to drain does not wait forever) and is also
//! counted in `failed_work_units`.
//!
//! A job belongs to a session when its payload names the session's internal id as
//! `session_id` (`search::EmbedMessages` does). Sessions are keyed by their public id,
//! and the work of a deleted session is not shown at all.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::time::Micros;

/// How long a finished job still counts as completed: the reference's cleanup interval.
pub const COMPLETED_WINDOW: Micros = 12 * 3600 * 1_000_000;

/// The query's filters; empty strings were already dropped (the reference treats them
/// as absent). Observer and sender match the payload's `observer` and `observed`; when
/// both are given a job matching either counts, as in the reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusFilter {
    pub observer: Option<String>,
    pub sender: Option<String>,
    pub session: Option<String>,
}

/// One grouped row of the engines' status query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The public id of the job's session, if it has one.
    pub session: Option<String>,
    /// The job's state (`pending`, `running`, `done`, `failed`).
    pub state: String,
    /// Whether another job of the same work unit is running.
    pub unit_running: bool,
    pub jobs: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct WorkUnits {
    pub total_work_units: i64,
    pub completed_work_units: i64,
    pub in_progress_work_units: i64,
    pub pending_work_units: i64,
    /// Of the completed, how many were dead-lettered (an engram addition).
    pub failed_work_units: i64,
}

impl WorkUnits {
    fn add(&mut self, row: &StatusRow) {
        let n = row.jobs;
        self.total_work_units += n;
        match row.state.as_str() {
            "pending" if !row.unit_running => self.pending_work_units += n,
            "pending" | "running" => self.in_progress_work_units += n,
            "failed" => {
                self.completed_work_units += n;
                self.failed_work_units += n;
            }
            _ => self.completed_work_units += n,
        }
    }
}

/// One session's counters, as the reference's `SessionQueueStatus`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct SessionWork {
    pub session_id: Option<String>,
    #[serde(flatten)]
    pub units: WorkUnits,
}

/// The reference's `QueueStatus` without engram's deletion counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkStatus {
    pub totals: WorkUnits,
    /// Per session, unless the status was asked for one session; `None` when no
    /// counted job has a session.
    pub sessions: Option<BTreeMap<String, SessionWork>>,
}

/// Folds the status query's rows into the counters.
pub fn fold(rows: &[StatusRow], filter: &StatusFilter) -> WorkStatus {
    let mut totals = WorkUnits::default();
    let mut sessions: BTreeMap<String, SessionWork> = BTreeMap::new();
    for row in rows {
        totals.add(row);
        if let Some(name) = &row.session {
            let entry = sessions.entry(name.clone()).or_insert_with(|| SessionWork {
                session_id: Some(name.clone()),
                units: WorkUnits::default(),
            });
            entry.units.add(row);
        }
    }
    let by_session = filter.session.is_none() && !sessions.is_empty();
    WorkStatus {
        totals,
        sessions: by_session.then_some(sessions),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(session: Option<&str>, state: &str, unit_running: bool, jobs: i64) -> StatusRow {
        StatusRow {
            session: session.map(str::to_string),
            state: state.into(),
            unit_running,
            jobs,
        }
    }

    #[test]
    fn a_unit_being_worked_on_is_in_progress_and_dead_letters_are_completed() {
        let rows = [
            row(Some("a"), "running", true, 1),
            row(Some("a"), "pending", true, 2),
            row(Some("b"), "pending", false, 3),
            row(Some("b"), "done", false, 4),
            row(None, "failed", false, 1),
        ];
        let status = fold(&rows, &StatusFilter::default());
        assert_eq!(
            status.totals,
            WorkUnits {
                total_work_units: 11,
                completed_work_units: 5,
                in_progress_work_units: 3,
                pending_work_units: 3,
                failed_work_units: 1,
            }
        );
        let sessions = status.sessions.unwrap();
        assert_eq!(sessions["a"].units.in_progress_work_units, 3);
        assert_eq!(sessions["b"].units.pending_work_units, 3);
        assert_eq!(sessions["b"].units.completed_work_units, 4);
        assert_eq!(sessions["b"].session_id.as_deref(), Some("b"));
    }

    #[test]
    fn sessions_are_null_for_one_session_or_when_no_job_has_one() {
        let one = StatusFilter {
            session: Some("a".into()),
            ..StatusFilter::default()
        };
        assert_eq!(
            fold(&[row(Some("a"), "pending", false, 1)], &one).sessions,
            None
        );
        let none = fold(&[row(None, "pending", false, 1)], &StatusFilter::default());
        assert_eq!((none.sessions, none.totals.pending_work_units), (None, 1));
    }
}
