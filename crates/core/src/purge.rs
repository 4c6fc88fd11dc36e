//! The purge as data: the ordered list of what a session purge and a workspace purge
//! remove, step by step. Each engine supplies the SQL of one step (`purge_steps.rs` in
//! each store, an exhaustive `match` over [`PurgeStep`], so a new step does not compile
//! until both engines run it) and walks [`SESSION`] or [`WORKSPACE`] in order.
//!
//! A purge job calls the engine's purge step until it reports done; each call is one
//! transaction. A call runs the steps in order: a *batched* step removes at most `batch`
//! rows and, if it did any work, ends the call ("not done", so no transaction holds the
//! writer for long); the steps after the last batched one run together in the final call.
//! Every step finds its rows by provenance (workspace id, session id, the ids of messages
//! and the unit keys derived from them), never by content, and is idempotent, so a retried
//! or resumed purge is safe.
//!
//! A new derived table joins the purge by one entry here (a new step, or a table of an
//! existing one) plus that step's SQL in each engine; the store suite's `purge_plan` test
//! fails while a table with a `session_id` or `workspace_id` column is in no step.

use crate::{Error, Result};

/// What a purge removes: one tombstoned session, or a tombstoned workspace (tombstoned
/// only once no live session remained). Internal ids, as the purge jobs carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Session { workspace_id: i64, session_id: i64 },
    Workspace { workspace_id: i64 },
}

impl Scope {
    /// The steps this purge runs, in order.
    pub fn plan(self) -> &'static [PurgeStep] {
        match self {
            Scope::Session { .. } => SESSION,
            Scope::Workspace { .. } => WORKSPACE,
        }
    }

    pub fn workspace_id(self) -> i64 {
        match self {
            Scope::Session { workspace_id, .. } | Scope::Workspace { workspace_id } => workspace_id,
        }
    }

    /// The session of a session purge; `None` for a workspace purge (every session).
    pub fn session_id(self) -> Option<i64> {
        match self {
            Scope::Session { session_id, .. } => Some(session_id),
            Scope::Workspace { .. } => None,
        }
    }

    /// `(workspace_id, session_id)` for a step only a session purge runs; an internal
    /// error if a plan ever put it in a workspace purge.
    pub fn session(self, step: PurgeStep) -> Result<(i64, i64)> {
        match self {
            Scope::Session {
                workspace_id,
                session_id,
            } => Ok((workspace_id, session_id)),
            Scope::Workspace { .. } => Err(Error::Internal(format!(
                "purge step {step:?} belongs to a session purge"
            ))),
        }
    }

    /// The workspace id for a step only a workspace purge runs.
    pub fn workspace(self, step: PurgeStep) -> Result<i64> {
        match self {
            Scope::Workspace { workspace_id } => Ok(workspace_id),
            Scope::Session { .. } => Err(Error::Internal(format!(
                "purge step {step:?} belongs to a workspace purge"
            ))),
        }
    }
}

/// One step of a purge. Where a step runs in both plans, the scope narrows its key: a
/// session purge's rows carry the session id as well as the workspace id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PurgeStep {
    /// Embedding rows of the scope's messages and their vectors (SQLite keeps them in the
    /// vec0 table `message_vectors` under the same rowid). Key: `workspace_id` (and
    /// `session_id`). Batched. First: while any remain, the messages they point at still
    /// exist, so no vector ever names a message that is gone.
    MessageVectors,
    /// The scope's messages and their full-text entries (SQLite: `messages_fts`, kept by
    /// trigger, and the purge's merge plan in `fts_purge_plans`, keyed by the purge's unit
    /// key; PostgreSQL: a generated column of the row). Key: `workspace_id` (and
    /// `session_id`). Batched; a session purge adds each batch to its receipt's
    /// `messages_deleted`.
    Messages,
    /// Jobs left with nothing to do. Session: the pending embedding jobs of the session
    /// (key: `embed_unit_key(workspace_id, session_id)`). Workspace: its finished (done or
    /// failed) jobs and pending embedding jobs (key: `workspace_id`); its running purge
    /// and webhook deliveries (which carry no workspace id) stay. After the messages, so
    /// no embedding job is queued for a message the purge has not removed yet.
    Jobs,
    /// Session memberships (`session_peers`). Key: `workspace_id` (and `session_id`).
    /// Before the session rows they reference.
    Memberships,
    /// Session rows. Session: the one tombstoned row (key: `workspace_id`, `id`, with
    /// `deleted_at` set); workspace: every session of the workspace.
    Sessions,
    /// Session purge only: finishes the receipt (key: `workspace_id`, `session_id`) with
    /// the memberships this call removed and `finished_at`, set once. After the session
    /// row, so a receipt is finished only when nothing of the session is left.
    Receipt,
    /// Queues the deletion event to the workspace's webhook endpoints. Session: the
    /// `session.deleted` event with the finished receipt, only when this call removed the
    /// session row (only the call that finishes the purge announces, so a re-run sends
    /// nothing twice); after the receipt, whose counts it carries. Workspace: the
    /// `workspace.deleted` event, before the endpoints are removed, so they hear of it.
    /// Removes nothing.
    Announce,
    /// Workspace purge only: the webhook endpoints (key: `workspace_id`). After the
    /// announcement; deliveries carry a copy of the URL, so they outlive the endpoint.
    WebhookEndpoints,
    /// Workspace purge only: the peers (key: `workspace_id`), after the memberships that
    /// reference them.
    Peers,
    /// Workspace purge only: the tombstoned workspace row itself (key: `id`, with
    /// `deleted_at` set). Last, so a resumed purge finds its tombstone until nothing else
    /// is left; a missing row means the purge is done.
    WorkspaceRow,
}

/// A session purge, in order (see each step for why it stands where it does).
pub const SESSION: &[PurgeStep] = &[
    PurgeStep::MessageVectors,
    PurgeStep::Messages,
    PurgeStep::Jobs,
    PurgeStep::Memberships,
    PurgeStep::Sessions,
    PurgeStep::Receipt,
    PurgeStep::Announce,
];

/// A workspace purge, in order. Its sessions were purged (or were being purged) one by
/// one first; this removes whatever the workspace still owns.
pub const WORKSPACE: &[PurgeStep] = &[
    PurgeStep::MessageVectors,
    PurgeStep::Messages,
    PurgeStep::Announce,
    PurgeStep::WebhookEndpoints,
    PurgeStep::Memberships,
    PurgeStep::Sessions,
    PurgeStep::Peers,
    PurgeStep::Jobs,
    PurgeStep::WorkspaceRow,
];

/// Tables with a `workspace_id` column that a workspace purge keeps on purpose.
/// `deletion_receipts`: what a session purge removed, never any content, kept as the
/// record of it; ids are never reused, so an old receipt never names a new workspace.
pub const KEPT: &[&str] = &["deletion_receipts"];

impl PurgeStep {
    /// Whether the step removes at most `batch` rows per call and ends the call while it
    /// removed anything.
    pub fn batched(self) -> bool {
        matches!(self, PurgeStep::MessageVectors | PurgeStep::Messages)
    }

    /// The physical tables the step writes in either engine (a table only one engine
    /// has is listed too): the rows it removes, and for [`PurgeStep::Receipt`] the
    /// receipt it finishes.
    pub fn tables(self) -> &'static [&'static str] {
        match self {
            PurgeStep::MessageVectors => &["message_embeddings", "message_vectors"],
            PurgeStep::Messages => &["messages", "messages_fts", "fts_purge_plans"],
            PurgeStep::Jobs => &["jobs"],
            PurgeStep::Memberships => &["session_peers"],
            PurgeStep::Sessions => &["sessions"],
            PurgeStep::Receipt => &["deletion_receipts"],
            PurgeStep::Announce => &[],
            PurgeStep::WebhookEndpoints => &["webhook_endpoints"],
            PurgeStep::Peers => &["peers"],
            PurgeStep::WorkspaceRow => &["workspaces"],
        }
    }

    /// Whether what the step did ends this purge call (see the module documentation).
    pub fn ends_call(self, ran: Ran) -> bool {
        self.batched() && ran != Ran::Rows(0)
    }
}

/// What one step did in one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// Removed (or, for the receipt and the announcement, wrote) this many rows; 0 when
    /// nothing of its kind was left.
    Rows(u64),
    /// Bounded work that removed nothing yet (SQLite merging its full-text index before
    /// deleting): ends the call like a batch that removed rows.
    Worked,
}

/// What the steps of one purge call did so far: the receipt counts the memberships this
/// call removed, and only the call that removed the session row announces it.
#[derive(Debug, Default)]
pub struct Tally(Vec<(PurgeStep, u64)>);

impl Tally {
    pub fn record(&mut self, step: PurgeStep, ran: Ran) {
        if let Ran::Rows(n) = ran {
            self.0.push((step, n));
        }
    }

    /// Rows `step` removed in this call (0 if it has not run).
    pub fn removed(&self, step: PurgeStep) -> u64 {
        self.0
            .iter()
            .filter(|(s, _)| *s == step)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(plan: &[PurgeStep], step: PurgeStep) -> usize {
        plan.iter()
            .position(|s| *s == step)
            .unwrap_or_else(|| panic!("{step:?} missing from the plan"))
    }

    #[test]
    fn vectors_go_before_messages_and_batched_steps_lead() {
        for plan in [SESSION, WORKSPACE] {
            assert_eq!(plan[0], PurgeStep::MessageVectors);
            assert!(at(plan, PurgeStep::MessageVectors) < at(plan, PurgeStep::Messages));
            // Batched steps come first: the rest run together in the last call.
            let batched = plan.iter().take_while(|s| s.batched()).count();
            assert!(plan[batched..].iter().all(|s| !s.batched()));
            assert!(at(plan, PurgeStep::Messages) < at(plan, PurgeStep::Jobs));
            assert!(at(plan, PurgeStep::Memberships) < at(plan, PurgeStep::Sessions));
        }
    }

    #[test]
    fn session_announces_after_finishing_the_receipt() {
        let receipt = at(SESSION, PurgeStep::Receipt);
        assert!(at(SESSION, PurgeStep::Sessions) < receipt);
        assert_eq!(at(SESSION, PurgeStep::Announce), receipt + 1);
        assert_eq!(SESSION.last(), Some(&PurgeStep::Announce));
    }

    #[test]
    fn workspace_announces_before_its_endpoints_go() {
        let announce = at(WORKSPACE, PurgeStep::Announce);
        assert!(at(WORKSPACE, PurgeStep::Messages) < announce);
        assert!(announce < at(WORKSPACE, PurgeStep::WebhookEndpoints));
        assert!(at(WORKSPACE, PurgeStep::Memberships) < at(WORKSPACE, PurgeStep::Peers));
        assert_eq!(WORKSPACE.last(), Some(&PurgeStep::WorkspaceRow));
        assert!(!WORKSPACE.contains(&PurgeStep::Receipt));
        for step in [
            PurgeStep::WebhookEndpoints,
            PurgeStep::Peers,
            PurgeStep::WorkspaceRow,
        ] {
            assert!(!SESSION.contains(&step), "{step:?} is workspace-only");
        }
    }

    #[test]
    fn only_batched_work_ends_a_call() {
        assert!(PurgeStep::Messages.ends_call(Ran::Worked));
        assert!(PurgeStep::Messages.ends_call(Ran::Rows(3)));
        assert!(!PurgeStep::Messages.ends_call(Ran::Rows(0)));
        assert!(!PurgeStep::Sessions.ends_call(Ran::Rows(1)));
        let mut tally = Tally::default();
        tally.record(PurgeStep::Memberships, Ran::Rows(2));
        assert_eq!(tally.removed(PurgeStep::Memberships), 2);
        assert_eq!(tally.removed(PurgeStep::Sessions), 0);
    }
}
