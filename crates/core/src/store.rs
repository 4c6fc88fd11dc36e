//! The storage interface. Each method is one transaction: it either happens
//! completely or not at all, and a successful return means it is durable.

use async_trait::async_trait;

use crate::Result;
use crate::model::Json;
use crate::model::{
    Changes, ListQuery, Message, NewMessage, NewPeer, NewSession, NewWorkspace, Page, PageRequest,
    Peer, Session, SessionPeerConfig, Workspace,
};
use crate::queue::{
    DeletionCounts, Job, JobInfo, PurgeSession, PurgeWorkspace, QueueDepth, Receipt,
};
use crate::search::SearchStore;
use crate::time::Micros;

/// How a membership map is applied to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipMode {
    /// Upsert the given members, leave the others.
    Add,
    /// Every current member not listed leaves; the given ones are upserted.
    Replace,
}

/// Workspaces: create, update, list, delete.
#[async_trait]
pub trait WorkspaceStore {
    /// Returns the workspace and whether it was created by this call.
    async fn get_or_create_workspace(&self, new: NewWorkspace) -> Result<(Workspace, bool)>;

    /// Creates the workspace if missing; metadata replaced, configuration merged.
    async fn update_workspace(&self, name: &str, changes: Changes) -> Result<Workspace>;

    async fn list_workspaces(&self, query: ListQuery) -> Result<Page<Workspace>>;

    /// Tombstones a workspace that has no live session (Conflict otherwise) and queues
    /// the purge of everything in it; its name is free at once.
    async fn delete_workspace(&self, workspace: &str) -> Result<()>;
}

/// Peers and the cards peers keep about each other.
#[async_trait]
pub trait PeerStore {
    /// Creates workspace and peer as needed; an existing peer gets the given
    /// metadata and configuration (each replaced when provided).
    async fn get_or_create_peer(&self, workspace: &str, new: NewPeer) -> Result<(Peer, bool)>;

    async fn list_peers(&self, workspace: &str, query: ListQuery) -> Result<Page<Peer>>;

    /// Live sessions the peer has a membership row in.
    async fn list_peer_sessions(
        &self,
        workspace: &str,
        peer: &str,
        query: ListQuery,
    ) -> Result<Page<Session>>;

    /// The card `observer` keeps about `observed`; NotFound when the observer is missing.
    async fn get_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
    ) -> Result<Option<Vec<String>>>;

    /// Stores a card, creating the observer peer (and workspace) if needed.
    async fn set_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
        card: Vec<String>,
    ) -> Result<()>;
}

/// Sessions and their memberships.
#[async_trait]
pub trait SessionStore {
    /// Creates workspace, session and listed peers as needed; an existing
    /// session gets its metadata replaced, configuration merged and listed
    /// peers upserted. Enforces the observer limit.
    async fn get_or_create_session(
        &self,
        workspace: &str,
        new: NewSession,
    ) -> Result<(Session, bool)>;

    async fn list_sessions(&self, workspace: &str, query: ListQuery) -> Result<Page<Session>>;

    /// Copies a live session (metadata, configuration, memberships, messages up to
    /// and including `cutoff`) into a new session with a fresh id.
    async fn clone_session(
        &self,
        workspace: &str,
        session: &str,
        cutoff: Option<&str>,
    ) -> Result<Session>;

    async fn set_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<(String, SessionPeerConfig)>,
        mode: MembershipMode,
    ) -> Result<Session>;

    async fn remove_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<String>,
    ) -> Result<Session>;

    async fn list_session_peers(
        &self,
        workspace: &str,
        session: &str,
        page: PageRequest,
    ) -> Result<Page<Peer>>;

    async fn get_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
    ) -> Result<SessionPeerConfig>;

    async fn set_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
        config: SessionPeerConfig,
    ) -> Result<()>;

    /// Tombstones a live session and queues its purge in the same transaction. From
    /// the return on, no read sees it and its name is free.
    async fn delete_session(&self, workspace: &str, session: &str) -> Result<()>;
}

/// Messages of a session.
#[async_trait]
pub trait MessageStore {
    /// Appends messages in order, creating workspace, session and authors as
    /// needed and joining authors to the session. `seq_in_session` continues
    /// gap-free from the session's last message.
    async fn create_messages(
        &self,
        workspace: &str,
        session: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<Message>>;

    async fn list_messages(
        &self,
        workspace: &str,
        session: &str,
        query: ListQuery,
    ) -> Result<Page<Message>>;

    async fn get_message(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
    ) -> Result<Option<Message>>;

    async fn update_message_metadata(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
        metadata: Json,
    ) -> Result<Option<Message>>;

    /// The newest messages whose token counts sum to at most `budget`, oldest first.
    async fn recent_messages(
        &self,
        workspace: &str,
        session: &str,
        budget: i64,
    ) -> Result<Vec<Message>>;
}

/// The job queue: claims, outcomes, waiting, and what operators see.
#[async_trait]
pub trait QueueStore {
    /// Claims the next runnable job (deletions first; one job per work unit at a
    /// time; expired leases are taken over) until `lease_until`.
    async fn claim_job(&self, lease_until: Micros) -> Result<Option<Job>>;

    /// Marks a claimed job done; fails if another worker has taken it over since.
    async fn complete_job(&self, job: &Job) -> Result<()>;

    /// Records a failed attempt of a claimed job: retried at `retry_at`, or
    /// dead-lettered when `None`; fails if another worker has taken it over since.
    async fn fail_job(&self, job: &Job, error: &str, retry_at: Option<Micros>) -> Result<()>;

    /// Hands a claimed job back for `run_at` without using up its attempt, because the
    /// database, not the job, failed (`Error::Busy`: an outage or overload); fails if
    /// another worker has taken it over since.
    async fn defer_job(&self, job: &Job, error: &str, run_at: Micros) -> Result<()>;

    /// Returns when new jobs may be runnable or after `max`, whichever comes first.
    /// PostgreSQL listens for `NOTIFY engram_jobs` from any process; SQLite, with one
    /// process per file, relies on the in-process wake-up and this timeout.
    async fn wait_for_jobs(&self, max: std::time::Duration);

    /// Jobs in `state` (all states when `None`), oldest first, at most `limit`.
    async fn list_jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobInfo>>;

    /// Puts a dead-lettered job back in line with a fresh attempt budget; false when
    /// no dead-lettered job has that id.
    async fn retry_job(&self, id: i64) -> Result<bool>;

    /// Jobs per kind and state of `queue::DEPTH_STATES`, in one grouped query; kinds
    /// and states without jobs are left out.
    async fn queue_depth(&self) -> Result<Vec<QueueDepth>>;

    /// Removes up to `limit` jobs that finished (`done`) before `finished_before`;
    /// dead-lettered jobs stay for operators. Returns how many went.
    async fn prune_done_jobs(&self, finished_before: Micros, limit: i64) -> Result<u64>;

    /// The workspace's background work for queue status (`queue_status` says what
    /// counts); zeros for an unknown workspace or session.
    async fn work_status(
        &self,
        workspace: &str,
        filter: &crate::queue_status::StatusFilter,
    ) -> Result<crate::queue_status::WorkStatus>;
}

/// Purges of deleted sessions and workspaces, their receipts, and the integrity checks.
#[async_trait]
pub trait DeletionStore {
    /// Removes up to `batch` rows of the purged session and renews the job's lease;
    /// returns true once nothing is left and the receipt is final.
    async fn purge_session_step(
        &self,
        job: &Job,
        purge: PurgeSession,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool>;

    /// Removes up to `batch` rows of a deleted workspace and renews the job's lease;
    /// returns true once the workspace row itself is gone.
    async fn purge_workspace_step(
        &self,
        job: &Job,
        purge: PurgeWorkspace,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool>;

    /// Purge receipts of a workspace, oldest request first.
    async fn deletion_receipts(&self, workspace: &str) -> Result<Vec<Receipt>>;

    /// Deletion jobs of a workspace by state (zeros for an unknown workspace).
    async fn deletion_counts(&self, workspace: &str) -> Result<DeletionCounts>;

    /// Counts, per check of `verify::checks()` and in that order, the rows that
    /// break the store's integrity; all zero on a healthy store.
    async fn verify(&self) -> Result<Vec<i64>>;
}

/// Everything an engine provides: one trait per area, so a reader sees what each area
/// needs from an engine; an engine declares `impl Store for X {}` once it has them all.
pub trait Store:
    WorkspaceStore
    + PeerStore
    + SessionStore
    + MessageStore
    + QueueStore
    + DeletionStore
    + SearchStore
    + crate::auth::MembershipStore
    + crate::webhooks::WebhookStore
    + crate::pocketpaw::PocketPawStore
    + Send
    + Sync
    + 'static
{
}
