//! The job registry: every kind of background work, with everything the queue needs
//! to know about it in one place.
//!
//! A job is stored as two columns, `kind` (the kind's name) and `payload` (its task's
//! fields as JSON), which is exactly serde's adjacently tagged form of [`Task`]. Adding
//! a kind means a variant in [`JobKind`] and one in [`Task`]; the compiler then points
//! at every `match` that must say how the kind is queued, retried, counted and run (here,
//! and the worker's dispatch). Nothing else names a kind: the metrics labels, the kinds
//! queue status counts, the verify checks and the purges' job cleanup are all derived
//! from this file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::queue::{PurgeSession, PurgeWorkspace, purge_unit_key, purge_workspace_unit_key};
use crate::search::{EmbedMessages, embed_unit_key};
use crate::webhooks::Delivery;
use crate::{Error, Result};

/// Every kind of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::VariantArray)]
pub enum JobKind {
    PurgeSession,
    PurgeWorkspace,
    WebhookDelivery,
    EmbedMessages,
    EmbedBackfill,
}

/// Attempts before a job is dead-lettered, unless its kind says otherwise.
pub const MAX_ATTEMPTS: i64 = 10;

impl JobKind {
    /// Every variant, in declaration order (derived, so a new kind cannot be left out).
    pub const ALL: &'static [JobKind] = <JobKind as strum::VariantArray>::VARIANTS;

    /// The name stored in `jobs.kind` and used as the metrics label; never renamed, as
    /// queued jobs and dashboards hold it.
    pub const fn name(self) -> &'static str {
        match self {
            JobKind::PurgeSession => "purge_session",
            JobKind::PurgeWorkspace => "purge_workspace",
            JobKind::WebhookDelivery => "webhook_delivery",
            JobKind::EmbedMessages => "embed_messages",
            JobKind::EmbedBackfill => "embed_backfill",
        }
    }

    pub fn from_name(name: &str) -> Option<JobKind> {
        JobKind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Claim order, lowest first: deletions are never held up by other work, and
    /// deliveries (someone is waiting for them) go before derivation work.
    pub const fn priority(self) -> i64 {
        match self {
            JobKind::PurgeSession | JobKind::PurgeWorkspace => 0,
            JobKind::WebhookDelivery => 5,
            JobKind::EmbedMessages | JobKind::EmbedBackfill => 10,
        }
    }

    /// Attempts before the job is dead-lettered. With the queue's backoff (1 s
    /// doubling, capped at 10 min) a delivery's eight attempts span about four minutes,
    /// as a webhook receiver expects; other work keeps trying for about half an hour.
    pub const fn max_attempts(self) -> i64 {
        match self {
            JobKind::WebhookDelivery => 8,
            JobKind::PurgeSession
            | JobKind::PurgeWorkspace
            | JobKind::EmbedMessages
            | JobKind::EmbedBackfill => MAX_ATTEMPTS,
        }
    }

    /// Purges: reported apart in queue status (`deletions`) and by `engram verify`.
    pub const fn is_deletion(self) -> bool {
        matches!(self, JobKind::PurgeSession | JobKind::PurgeWorkspace)
    }

    /// Whether queue status counts the kind as work a client may wait for. Purges
    /// are reported apart and deliveries are the client's own traffic, as the reference
    /// leaves out its deletion and webhook tasks.
    pub const fn is_client_work(self) -> bool {
        match self {
            JobKind::PurgeSession | JobKind::PurgeWorkspace | JobKind::WebhookDelivery => false,
            JobKind::EmbedMessages | JobKind::EmbedBackfill => true,
        }
    }

    /// Whether a pending job of the kind is dropped when the data it would read is
    /// purged: derivation work has nothing left to derive from, while purges and
    /// deliveries (which announce the purge) must still run.
    pub const fn is_derivation(self) -> bool {
        match self {
            JobKind::PurgeSession | JobKind::PurgeWorkspace | JobKind::WebhookDelivery => false,
            JobKind::EmbedMessages | JobKind::EmbedBackfill => true,
        }
    }

    /// The unit key of the kind's work on one session, for derivation kinds whose work
    /// is per session: the session's purge drops their pending jobs by these keys.
    pub fn session_unit_key(self, workspace_id: i64, session_id: i64) -> Option<String> {
        match self {
            JobKind::EmbedMessages => Some(embed_unit_key(workspace_id, session_id)),
            JobKind::PurgeSession
            | JobKind::PurgeWorkspace
            | JobKind::WebhookDelivery
            | JobKind::EmbedBackfill => None,
        }
    }

    /// Whether workers in other processes are woken at once when the kind is queued.
    /// On PostgreSQL that is a `NOTIFY`, whose commit takes a database-wide lock, so
    /// the kinds queued by every message write leave other processes to their poll
    /// (the writing process's own workers are woken either way).
    pub const fn is_urgent(self) -> bool {
        match self {
            JobKind::PurgeSession | JobKind::PurgeWorkspace | JobKind::WebhookDelivery => true,
            JobKind::EmbedMessages | JobKind::EmbedBackfill => false,
        }
    }
}

/// The kinds that have a property (`JobKind::is_derivation`, ...) as an SQL list of
/// string literals (`'a', 'b'`), for the queries that select jobs by kind. Names are
/// constants without quotes, so nothing is escaped.
pub fn sql_names(has: fn(JobKind) -> bool) -> String {
    JobKind::ALL
        .iter()
        .filter(|&&k| has(k))
        .map(|k| format!("'{}'", k.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The unit keys of every kind's per-session derivation work on one session.
pub fn session_unit_keys(workspace_id: i64, session_id: i64) -> Vec<String> {
    JobKind::ALL
        .iter()
        .filter_map(|k| k.session_unit_key(workspace_id, session_id))
        .collect()
}

/// The backfill job carries nothing: it walks every message without vectors.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmbedBackfill {}

/// A job's work, typed: the kind with its payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Task {
    PurgeSession(PurgeSession),
    PurgeWorkspace(PurgeWorkspace),
    WebhookDelivery(Delivery),
    EmbedMessages(EmbedMessages),
    EmbedBackfill(EmbedBackfill),
}

/// How a task is stored: the row `jobs` gets for it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    /// The workspace whose purge removes the job; `None` for a job that outlives it.
    pub workspace_id: Option<i64>,
    pub kind: JobKind,
    pub unit_key: String,
    pub payload: Value,
}

impl Task {
    pub const fn kind(&self) -> JobKind {
        match self {
            Task::PurgeSession(_) => JobKind::PurgeSession,
            Task::PurgeWorkspace(_) => JobKind::PurgeWorkspace,
            Task::WebhookDelivery(_) => JobKind::WebhookDelivery,
            Task::EmbedMessages(_) => JobKind::EmbedMessages,
            Task::EmbedBackfill(_) => JobKind::EmbedBackfill,
        }
    }

    /// Jobs of one work unit run one at a time, in order.
    pub fn unit_key(&self) -> String {
        match self {
            Task::PurgeSession(p) => purge_unit_key(*p),
            Task::PurgeWorkspace(p) => purge_workspace_unit_key(*p),
            // Each delivery is its own unit: a failing endpoint retries without holding
            // back other endpoints or events.
            Task::WebhookDelivery(d) => d.unit_key(&crate::ids::new_public_id()),
            Task::EmbedMessages(e) => embed_unit_key(e.workspace_id, e.session_id),
            Task::EmbedBackfill(_) => "embed-backfill".into(),
        }
    }

    pub fn workspace_id(&self) -> Option<i64> {
        match self {
            Task::PurgeSession(p) => Some(p.workspace_id),
            Task::PurgeWorkspace(p) => Some(p.workspace_id),
            // A delivery must survive the purge of its workspace (it announces it).
            Task::WebhookDelivery(_) => None,
            Task::EmbedMessages(e) => Some(e.workspace_id),
            Task::EmbedBackfill(_) => None,
        }
    }

    /// The row to insert for this task.
    pub fn to_job(&self) -> Result<QueuedJob> {
        let mut tagged = serde_json::to_value(self).map_err(Error::internal)?;
        let payload = tagged
            .get_mut("payload")
            .map(Value::take)
            .ok_or_else(|| Error::Internal("a task serialized without a payload".into()))?;
        Ok(QueuedJob {
            workspace_id: self.workspace_id(),
            kind: self.kind(),
            unit_key: self.unit_key(),
            payload,
        })
    }

    /// Reads a stored job back; an unknown kind or a payload that does not fit its
    /// kind is an error, so the job fails visibly instead of running as something else.
    pub fn from_stored(kind: &str, payload: &Value) -> Result<Task> {
        if JobKind::from_name(kind).is_none() {
            return Err(Error::Internal(format!("unknown job kind {kind:?}")));
        }
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
            .map_err(|e| Error::Internal(format!("bad {kind} payload: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Task> {
        vec![
            Task::PurgeSession(PurgeSession {
                workspace_id: 1,
                session_id: 2,
            }),
            Task::PurgeWorkspace(PurgeWorkspace { workspace_id: 1 }),
            Task::WebhookDelivery(Delivery {
                endpoint_id: "e".into(),
                url: "http://127.0.0.1:1/".into(),
                event: "test.event".into(),
                body: "{}".into(),
            }),
            Task::EmbedMessages(EmbedMessages {
                workspace_id: 1,
                session_id: 2,
                message_ids: vec![3, 4],
            }),
            Task::EmbedBackfill(EmbedBackfill {}),
        ]
    }

    /// Every kind has a sample, so the round trip below covers the whole registry.
    #[test]
    fn every_kind_has_a_sample() {
        let kinds: Vec<JobKind> = samples().iter().map(Task::kind).collect();
        assert_eq!(kinds, JobKind::ALL);
    }

    /// The stored kind is serde's tag, and a stored job reads back as the same task.
    #[test]
    fn stored_jobs_round_trip() {
        for task in samples() {
            let job = task.to_job().unwrap();
            assert_eq!(
                serde_json::to_value(&task).unwrap()["kind"],
                job.kind.name()
            );
            assert_eq!(
                Task::from_stored(job.kind.name(), &job.payload).unwrap(),
                task
            );
        }
    }

    /// Jobs queued before the registry existed were stored in exactly these shapes.
    #[test]
    fn payloads_keep_their_stored_shape() {
        let purge = Task::PurgeSession(PurgeSession {
            workspace_id: 7,
            session_id: 9,
        })
        .to_job()
        .unwrap();
        assert_eq!(
            purge.payload,
            serde_json::json!({"workspace_id": 7, "session_id": 9})
        );
        assert_eq!(purge.unit_key, "purge:7:9");
        let backfill = Task::EmbedBackfill(EmbedBackfill {}).to_job().unwrap();
        assert_eq!(backfill.payload, serde_json::json!({}));
        assert_eq!(backfill.workspace_id, None);
    }

    #[test]
    fn unknown_kinds_and_misfit_payloads_are_refused() {
        let unknown = Task::from_stored("summarize", &serde_json::json!({})).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown job kind"),
            "{unknown}"
        );
        let misfit = Task::from_stored("purge_session", &serde_json::json!({"x": 1})).unwrap_err();
        assert!(
            misfit.to_string().contains("bad purge_session payload"),
            "{misfit}"
        );
    }

    /// The session purge drops pending embedding jobs by the key they are queued under.
    #[test]
    fn session_unit_keys_are_the_keys_jobs_are_queued_under() {
        let embed = Task::EmbedMessages(EmbedMessages {
            workspace_id: 4,
            session_id: 5,
            message_ids: vec![1],
        });
        assert_eq!(session_unit_keys(4, 5), vec![embed.unit_key()]);
    }

    #[test]
    fn names_are_unique_and_parse_back() {
        for &kind in JobKind::ALL {
            assert_eq!(JobKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(
            sql_names(JobKind::is_deletion),
            "'purge_session', 'purge_workspace'"
        );
    }
}
