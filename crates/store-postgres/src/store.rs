//! `Store` for PostgreSQL: a connection pool, embedded migrations, and one transaction
//! per operation with bounded retries when a concurrent transaction wins a race.

use std::time::Duration;

use async_trait::async_trait;
use engram_core::model::{
    Changes, Json, ListQuery, Message, NewMessage, NewPeer, NewSession, NewWorkspace, Page,
    PageRequest, Peer, Session, SessionPeerConfig, Workspace,
};
use engram_core::queue::{
    DeletionCounts, Job, JobInfo, PurgeSession, PurgeWorkspace, QueueDepth, Receipt,
};
use engram_core::store::{
    DeletionStore, MembershipMode, MessageStore, PeerStore, QueueStore, SessionStore, Store,
    WorkspaceStore,
};
use engram_core::time::Micros;
use engram_core::{Error, Result};
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::{
    clone, deletion, messages, peers, queue, sessions, verify, workspace_deletion, workspaces,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

const POOL_SIZE: u32 = 16;
/// How long a request waits for a connection: every pooled one busy (overload), or the
/// server down, when sqlx keeps reconnecting until this deadline. Either way the
/// request then fails with a 503 the client may retry, so it must be short.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// Reads see one snapshot (a count and its page agree) and never block writers.
pub(crate) const READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

pub struct PgStore {
    pub(crate) pool: PgPool,
    /// Connected on first use; dropped on error so the next wait reconnects.
    listener: tokio::sync::Mutex<Option<sqlx::postgres::PgListener>>,
    /// Notified when a write of this process queued jobs (`writing!`).
    pub(crate) jobs_ready: tokio::sync::Notify,
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(5 << attempt.min(6))
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("postgres: {e}"))
}

impl PgStore {
    /// Connects a pool and applies pending migrations.
    pub async fn connect(url: &str) -> Result<PgStore> {
        let store = PgStore::connect_only(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects a pool without touching the schema.
    pub async fn connect_only(url: &str) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await
            .map_err(db_err)?;
        Ok(PgStore {
            pool,
            listener: tokio::sync::Mutex::new(None),
            jobs_ready: tokio::sync::Notify::new(),
        })
    }

    /// Applies pending migrations; concurrent callers serialize on sqlx's advisory lock.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await.map_err(db_err)
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        // The listener holds a pool connection for as long as it lives; the pool's close
        // waits for every connection to come back.
        self.listener.lock().await.take();
        self.pool.close().await;
    }
}

impl Store for PgStore {}

#[async_trait]
impl WorkspaceStore for PgStore {
    async fn get_or_create_workspace(&self, new: NewWorkspace) -> Result<(Workspace, bool)> {
        writing!(self, |c| workspaces::get_or_create(c, &new).await)
    }

    async fn update_workspace(&self, name: &str, changes: Changes) -> Result<Workspace> {
        writing!(self, |c| workspaces::update(c, name, &changes).await)
    }

    async fn list_workspaces(&self, query: ListQuery) -> Result<Page<Workspace>> {
        reading!(self, |c| workspaces::list(c, &query).await)
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        writing!(self, |c| workspace_deletion::delete_workspace(c, workspace)
            .await)
    }
}

#[async_trait]
impl PeerStore for PgStore {
    async fn get_or_create_peer(&self, workspace: &str, new: NewPeer) -> Result<(Peer, bool)> {
        writing!(self, |c| peers::get_or_create(c, workspace, &new).await)
    }

    async fn list_peers(&self, workspace: &str, query: ListQuery) -> Result<Page<Peer>> {
        reading!(self, |c| peers::list(c, workspace, &query).await)
    }

    async fn list_peer_sessions(
        &self,
        workspace: &str,
        peer: &str,
        query: ListQuery,
    ) -> Result<Page<Session>> {
        reading!(self, |c| sessions::list_for_peer(
            c, workspace, peer, &query
        )
        .await)
    }

    async fn get_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
    ) -> Result<Option<Vec<String>>> {
        reading!(self, |c| peers::get_card(c, workspace, observer, observed)
            .await)
    }

    async fn set_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
        card: Vec<String>,
    ) -> Result<()> {
        writing!(self, |c| peers::set_card(
            c, workspace, observer, observed, &card
        )
        .await)
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn get_or_create_session(
        &self,
        workspace: &str,
        new: NewSession,
    ) -> Result<(Session, bool)> {
        writing!(self, |c| sessions::get_or_create(c, workspace, &new).await)
    }

    async fn list_sessions(&self, workspace: &str, query: ListQuery) -> Result<Page<Session>> {
        reading!(self, |c| sessions::list(c, workspace, &query).await)
    }

    async fn clone_session(
        &self,
        workspace: &str,
        session: &str,
        cutoff: Option<&str>,
    ) -> Result<Session> {
        writing!(self, |c| clone::clone(c, workspace, session, cutoff).await)
    }

    async fn set_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<(String, SessionPeerConfig)>,
        mode: MembershipMode,
    ) -> Result<Session> {
        writing!(self, |c| sessions::set_members(
            c, workspace, session, &peers, mode
        )
        .await)
    }

    async fn remove_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<String>,
    ) -> Result<Session> {
        writing!(self, |c| sessions::remove_members(
            c, workspace, session, &peers
        )
        .await)
    }

    async fn list_session_peers(
        &self,
        workspace: &str,
        session: &str,
        page: PageRequest,
    ) -> Result<Page<Peer>> {
        reading!(self, |c| sessions::list_members(
            c, workspace, session, page
        )
        .await)
    }

    async fn get_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
    ) -> Result<SessionPeerConfig> {
        reading!(self, |c| sessions::get_member_config(
            c, workspace, session, peer
        )
        .await)
    }

    async fn set_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
        config: SessionPeerConfig,
    ) -> Result<()> {
        writing!(self, |c| sessions::set_member_config(
            c, workspace, session, peer, config
        )
        .await)
    }

    async fn delete_session(&self, workspace: &str, session: &str) -> Result<()> {
        writing!(self, |c| deletion::delete_session(c, workspace, session)
            .await)
    }
}

#[async_trait]
impl MessageStore for PgStore {
    async fn create_messages(
        &self,
        workspace: &str,
        session: &str,
        batch: Vec<NewMessage>,
    ) -> Result<Vec<Message>> {
        messages::check_batch(&batch)?;
        writing!(self, |c| messages::create(c, workspace, session, &batch)
            .await)
    }

    async fn list_messages(
        &self,
        workspace: &str,
        session: &str,
        query: ListQuery,
    ) -> Result<Page<Message>> {
        reading!(self, |c| messages::list(c, workspace, session, &query)
            .await)
    }

    async fn get_message(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
    ) -> Result<Option<Message>> {
        reading!(self, |c| messages::get(c, workspace, session, id).await)
    }

    async fn update_message_metadata(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
        metadata: Json,
    ) -> Result<Option<Message>> {
        writing!(self, |c| messages::update_metadata(
            c, workspace, session, id, &metadata
        )
        .await)
    }

    async fn recent_messages(
        &self,
        workspace: &str,
        session: &str,
        budget: i64,
    ) -> Result<Vec<Message>> {
        reading!(self, |c| messages::recent(c, workspace, session, budget)
            .await)
    }
}

#[async_trait]
impl QueueStore for PgStore {
    async fn claim_job(&self, lease_until: Micros) -> Result<Option<Job>> {
        writing!(self, |c| queue::claim(c, lease_until).await)
    }

    async fn complete_job(&self, job: &Job) -> Result<()> {
        writing!(self, |c| queue::complete(c, job.id, job.attempts).await)
    }

    async fn fail_job(&self, job: &Job, error: &str, retry_at: Option<Micros>) -> Result<()> {
        writing!(self, |c| queue::fail(
            c,
            job.id,
            job.attempts,
            error,
            retry_at
        )
        .await)
    }

    async fn defer_job(&self, job: &Job, error: &str, run_at: Micros) -> Result<()> {
        writing!(self, |c| queue::defer(
            c,
            job.id,
            job.attempts,
            error,
            run_at
        )
        .await)
    }

    async fn wait_for_jobs(&self, max: Duration) {
        let mut guard = self.listener.lock().await;
        if guard.is_none()
            && let Ok(mut l) = sqlx::postgres::PgListener::connect_with(&self.pool).await
            && l.listen("engram_jobs").await.is_ok()
        {
            *guard = Some(l);
        }
        let Some(listener) = guard.as_mut() else {
            drop(guard);
            let _ = tokio::time::timeout(max, self.jobs_ready.notified()).await;
            return;
        };
        let heard = tokio::select! {
            heard = tokio::time::timeout(max, listener.recv()) => heard,
            () = self.jobs_ready.notified() => return,
        };
        match heard {
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "lost the job notification channel; polling meanwhile");
                *guard = None;
            }
        }
    }

    async fn list_jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobInfo>> {
        reading!(self, |c| queue::list(c, state, limit).await)
    }

    async fn retry_job(&self, id: i64) -> Result<bool> {
        writing!(self, |c| queue::retry(c, id).await)
    }

    async fn queue_depth(&self) -> Result<Vec<QueueDepth>> {
        reading!(self, |c| queue::depth(c).await)
    }

    async fn prune_done_jobs(&self, finished_before: Micros, limit: i64) -> Result<u64> {
        writing!(self, |c| queue::prune_done(c, finished_before, limit).await)
    }

    async fn work_status(
        &self,
        workspace: &str,
        filter: &engram_core::queue_status::StatusFilter,
    ) -> Result<engram_core::queue_status::WorkStatus> {
        reading!(self, |c| crate::queue_status::work_status(
            c, workspace, filter
        )
        .await)
    }
}

#[async_trait]
impl DeletionStore for PgStore {
    async fn purge_session_step(
        &self,
        job: &Job,
        purge: PurgeSession,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool> {
        writing!(self, |c| deletion::purge_step(
            c,
            (job.id, job.attempts),
            purge,
            batch,
            lease_until
        )
        .await)
    }

    async fn purge_workspace_step(
        &self,
        job: &Job,
        purge: PurgeWorkspace,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool> {
        writing!(self, |c| workspace_deletion::purge_step(
            c,
            (job.id, job.attempts),
            purge,
            batch,
            lease_until
        )
        .await)
    }

    async fn deletion_receipts(&self, workspace: &str) -> Result<Vec<Receipt>> {
        reading!(self, |c| deletion::receipts(c, workspace).await)
    }

    async fn deletion_counts(&self, workspace: &str) -> Result<DeletionCounts> {
        reading!(self, |c| deletion::counts(c, workspace).await)
    }

    async fn verify(&self) -> Result<Vec<i64>> {
        reading!(self, |c| verify::verify(c).await)
    }
}
