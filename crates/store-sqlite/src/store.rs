//! `Store` for SQLite: opens the file, applies pragmas and migrations, and routes
//! each operation to the writer or the read pool.

use std::path::Path;
use std::sync::Arc;

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
use rusqlite::{Connection, OpenFlags};

use crate::pool::ReadPool;
use crate::writer::Writer;
use crate::{
    db_err, deletion, embeddings, messages, migrate, peers, queue, sessions, verify,
    workspace_deletion, workspaces,
};

const READERS: usize = 4;
/// SQLite's memory in this process, page caches included: past it, caches recycle
/// their pages instead of growing, so memory stops rising once the caches are warm
/// rather than as each of the five connections' 16 MB caches fills in turn.
const HEAP_LIMIT_BYTES: i64 = 32 * 1024 * 1024;
/// A context of at most this many tokens reads at most about this many messages (every
/// message costs a token but the rare empty one an import may bring), few enough to read
/// without a blocking thread.
const BOUNDED_CONTEXT_TOKENS: i64 = 4096;

pub struct SqliteStore {
    pub(crate) writer: Writer,
    pub(crate) readers: Arc<ReadPool>,
    /// Notified by the writer when a commit queued jobs. One process owns the file, so
    /// this is every wake-up a worker needs; the wait's timeout covers retry backoffs.
    jobs_ready: Arc<tokio::sync::Notify>,
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    // FULL makes each commit durable on its own; group commit keeps it cheap.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON; PRAGMA cache_size = -16000;",
    )
    .map_err(db_err)?;
    crate::pocketpaw::register_functions(&conn).map_err(db_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        embeddings::register_vec();
        writable(path.parent().unwrap_or(Path::new(".")))?;
        let writer_conn = open(path, OpenFlags::default())?;
        // SQLite opens a file it may not write read-only without a word; every write
        // would then fail, so say it once, at startup.
        if writer_conn.is_readonly(rusqlite::MAIN_DB).map_err(db_err)? {
            return Err(Error::Storage {
                full: false,
                detail: format!("{} is read-only", path.display()),
            });
        }
        writer_conn
            .execute_batch(&format!("PRAGMA soft_heap_limit = {HEAP_LIMIT_BYTES}"))
            .map_err(db_err)?;
        migrate::run(&writer_conn)?;
        // Purges tokenize the messages they delete in a temp table (see fts_keys): that
        // text must never reach a temp file. Set after migrating, whose index rebuilds
        // may sort more than fits in memory.
        writer_conn
            .execute_batch("PRAGMA temp_store = MEMORY")
            .map_err(db_err)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = open(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.execute_batch("PRAGMA query_only = ON").map_err(db_err)?;
                Ok(c)
            })
            .collect::<Result<Vec<_>>>()?;
        let jobs_ready = Arc::new(tokio::sync::Notify::new());
        Ok(SqliteStore {
            writer: Writer::spawn(writer_conn, jobs_ready.clone()),
            readers: ReadPool::new(readers),
            jobs_ready,
        })
    }
}

/// WAL mode keeps its log and index beside the database, so the directory must be
/// writable too, not only the file; a read-only one stops startup with its cause.
fn writable(dir: &Path) -> Result<()> {
    let probe = dir.join(".engram-write-check");
    std::fs::write(&probe, b"")
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| Error::Storage {
            full: false,
            detail: format!("{} is not writable: {e}", dir.display()),
        })
}

fn owned(s: &str) -> String {
    s.to_string()
}

impl Store for SqliteStore {}

#[async_trait]
impl WorkspaceStore for SqliteStore {
    async fn get_or_create_workspace(&self, new: NewWorkspace) -> Result<(Workspace, bool)> {
        self.writer
            .write(move |c| workspaces::get_or_create(c, new))
            .await
    }

    async fn update_workspace(&self, name: &str, changes: Changes) -> Result<Workspace> {
        let name = owned(name);
        self.writer
            .write(move |c| workspaces::update(c, &name, changes))
            .await
    }

    async fn list_workspaces(&self, query: ListQuery) -> Result<Page<Workspace>> {
        self.readers
            .read(move |c| workspaces::list(c, &query))
            .await
    }

    async fn delete_workspace(&self, workspace: &str) -> Result<()> {
        let ws = owned(workspace);
        self.writer
            .write(move |c| workspace_deletion::delete_workspace(c, &ws))
            .await
    }
}

#[async_trait]
impl PeerStore for SqliteStore {
    async fn get_or_create_peer(&self, workspace: &str, new: NewPeer) -> Result<(Peer, bool)> {
        let ws = owned(workspace);
        self.writer
            .write(move |c| peers::get_or_create(c, &ws, new))
            .await
    }

    async fn list_peers(&self, workspace: &str, query: ListQuery) -> Result<Page<Peer>> {
        let ws = owned(workspace);
        self.readers
            .read(move |c| peers::list(c, &ws, &query))
            .await
    }

    async fn list_peer_sessions(
        &self,
        workspace: &str,
        peer: &str,
        query: ListQuery,
    ) -> Result<Page<Session>> {
        let (ws, peer) = (owned(workspace), owned(peer));
        self.readers
            .read(move |c| sessions::list_for_peer(c, &ws, &peer, &query))
            .await
    }

    async fn get_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
    ) -> Result<Option<Vec<String>>> {
        let (ws, observer, observed) = (owned(workspace), owned(observer), owned(observed));
        self.readers
            .read(move |c| peers::get_card(c, &ws, &observer, &observed))
            .await
    }

    async fn set_peer_card(
        &self,
        workspace: &str,
        observer: &str,
        observed: &str,
        card: Vec<String>,
    ) -> Result<()> {
        let (ws, observer, observed) = (owned(workspace), owned(observer), owned(observed));
        self.writer
            .write(move |c| peers::set_card(c, &ws, &observer, &observed, card))
            .await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn get_or_create_session(
        &self,
        workspace: &str,
        new: NewSession,
    ) -> Result<(Session, bool)> {
        let ws = owned(workspace);
        self.writer
            .write(move |c| sessions::get_or_create(c, &ws, new))
            .await
    }

    async fn list_sessions(&self, workspace: &str, query: ListQuery) -> Result<Page<Session>> {
        let ws = owned(workspace);
        self.readers
            .read(move |c| sessions::list(c, &ws, &query))
            .await
    }

    async fn clone_session(
        &self,
        workspace: &str,
        session: &str,
        cutoff: Option<&str>,
    ) -> Result<Session> {
        let (ws, s, cutoff) = (owned(workspace), owned(session), cutoff.map(owned));
        self.writer
            .write(move |c| sessions::clone(c, &ws, &s, cutoff.as_deref()))
            .await
    }

    async fn set_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<(String, SessionPeerConfig)>,
        mode: MembershipMode,
    ) -> Result<Session> {
        let (ws, s) = (owned(workspace), owned(session));
        self.writer
            .write(move |c| sessions::set_members(c, &ws, &s, peers, mode))
            .await
    }

    async fn remove_session_peers(
        &self,
        workspace: &str,
        session: &str,
        peers: Vec<String>,
    ) -> Result<Session> {
        let (ws, s) = (owned(workspace), owned(session));
        self.writer
            .write(move |c| sessions::remove_members(c, &ws, &s, peers))
            .await
    }

    async fn list_session_peers(
        &self,
        workspace: &str,
        session: &str,
        page: PageRequest,
    ) -> Result<Page<Peer>> {
        let (ws, s) = (owned(workspace), owned(session));
        self.readers
            .read(move |c| sessions::list_members(c, &ws, &s, page))
            .await
    }

    async fn get_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
    ) -> Result<SessionPeerConfig> {
        let (ws, s, p) = (owned(workspace), owned(session), owned(peer));
        self.readers
            .read(move |c| sessions::get_member_config(c, &ws, &s, &p))
            .await
    }

    async fn set_session_peer_config(
        &self,
        workspace: &str,
        session: &str,
        peer: &str,
        config: SessionPeerConfig,
    ) -> Result<()> {
        let (ws, s, p) = (owned(workspace), owned(session), owned(peer));
        self.writer
            .write(move |c| sessions::set_member_config(c, &ws, &s, &p, config))
            .await
    }

    async fn delete_session(&self, workspace: &str, session: &str) -> Result<()> {
        let (ws, s) = (owned(workspace), owned(session));
        self.writer
            .write(move |c| deletion::delete_session(c, &ws, &s))
            .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn create_messages(
        &self,
        workspace: &str,
        session: &str,
        batch: Vec<NewMessage>,
    ) -> Result<Vec<Message>> {
        if batch.is_empty() {
            return Err(Error::internal("empty message batch"));
        }
        let (ws, s) = (owned(workspace), owned(session));
        self.writer
            .write(move |c| messages::create(c, &ws, &s, batch))
            .await
    }

    async fn list_messages(
        &self,
        workspace: &str,
        session: &str,
        query: ListQuery,
    ) -> Result<Page<Message>> {
        if query.filter.is_none() {
            return self
                .readers
                .read_bounded(|c| messages::list(c, workspace, session, &query))
                .await;
        }
        let (ws, s) = (owned(workspace), owned(session));
        self.readers
            .read(move |c| messages::list(c, &ws, &s, &query))
            .await
    }

    async fn get_message(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
    ) -> Result<Option<Message>> {
        self.readers
            .read_bounded(|c| messages::get(c, workspace, session, id))
            .await
    }

    async fn update_message_metadata(
        &self,
        workspace: &str,
        session: &str,
        id: &str,
        metadata: Json,
    ) -> Result<Option<Message>> {
        let (ws, s, id) = (owned(workspace), owned(session), owned(id));
        self.writer
            .write(move |c| messages::update_metadata(c, &ws, &s, &id, metadata))
            .await
    }

    async fn recent_messages(
        &self,
        workspace: &str,
        session: &str,
        budget: i64,
    ) -> Result<Vec<Message>> {
        if budget <= BOUNDED_CONTEXT_TOKENS {
            return self
                .readers
                .read_bounded(|c| messages::recent(c, workspace, session, budget))
                .await;
        }
        let (ws, s) = (owned(workspace), owned(session));
        self.readers
            .read(move |c| messages::recent(c, &ws, &s, budget))
            .await
    }
}

#[async_trait]
impl QueueStore for SqliteStore {
    async fn claim_job(&self, lease_until: Micros) -> Result<Option<Job>> {
        self.writer
            .write(move |c| queue::claim(c, lease_until))
            .await
    }

    async fn complete_job(&self, job: &Job) -> Result<()> {
        let (id, attempt) = (job.id, job.attempts);
        self.writer
            .write(move |c| queue::complete(c, id, attempt))
            .await
    }

    async fn fail_job(&self, job: &Job, error: &str, retry_at: Option<Micros>) -> Result<()> {
        let (id, attempt, error) = (job.id, job.attempts, owned(error));
        self.writer
            .write(move |c| queue::fail(c, id, attempt, &error, retry_at))
            .await
    }

    async fn defer_job(&self, job: &Job, error: &str, run_at: Micros) -> Result<()> {
        let (id, attempt, error) = (job.id, job.attempts, owned(error));
        self.writer
            .write(move |c| queue::defer(c, id, attempt, &error, run_at))
            .await
    }

    async fn wait_for_jobs(&self, max: std::time::Duration) {
        let _ = tokio::time::timeout(max, self.jobs_ready.notified()).await;
    }

    async fn list_jobs(&self, state: Option<&str>, limit: i64) -> Result<Vec<JobInfo>> {
        let state = state.map(owned);
        self.readers
            .read(move |c| queue::list(c, state.as_deref(), limit))
            .await
    }

    async fn retry_job(&self, id: i64) -> Result<bool> {
        self.writer.write(move |c| queue::retry(c, id)).await
    }

    async fn queue_depth(&self) -> Result<Vec<QueueDepth>> {
        self.readers.read(queue::depth).await
    }

    async fn prune_done_jobs(&self, finished_before: Micros, limit: i64) -> Result<u64> {
        self.writer
            .write(move |c| queue::prune_done(c, finished_before, limit))
            .await
    }

    async fn work_status(
        &self,
        workspace: &str,
        filter: &engram_core::queue_status::StatusFilter,
    ) -> Result<engram_core::queue_status::WorkStatus> {
        let (ws, filter) = (owned(workspace), filter.clone());
        self.readers
            .read(move |c| crate::queue_status::work_status(c, &ws, &filter))
            .await
    }
}

#[async_trait]
impl DeletionStore for SqliteStore {
    async fn purge_session_step(
        &self,
        job: &Job,
        purge: PurgeSession,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool> {
        let (id, attempt) = (job.id, job.attempts);
        let done = self
            .writer
            .write(move |c| deletion::purge_step(c, (id, attempt), purge, batch, lease_until))
            .await?;
        if done {
            // secure_delete zeroes freed content in the database file; the old log
            // frames still hold it until the log is checkpointed and truncated.
            self.writer.checkpoint().await?;
        }
        Ok(done)
    }

    async fn purge_workspace_step(
        &self,
        job: &Job,
        purge: PurgeWorkspace,
        batch: i64,
        lease_until: Micros,
    ) -> Result<bool> {
        let (id, attempt) = (job.id, job.attempts);
        let done = self
            .writer
            .write(move |c| {
                workspace_deletion::purge_step(c, (id, attempt), purge, batch, lease_until)
            })
            .await?;
        if done {
            self.writer.checkpoint().await?;
        }
        Ok(done)
    }

    async fn deletion_receipts(&self, workspace: &str) -> Result<Vec<Receipt>> {
        let ws = owned(workspace);
        self.readers.read(move |c| deletion::receipts(c, &ws)).await
    }

    async fn deletion_counts(&self, workspace: &str) -> Result<DeletionCounts> {
        let ws = owned(workspace);
        self.readers.read(move |c| deletion::counts(c, &ws)).await
    }

    async fn verify(&self) -> Result<Vec<i64>> {
        self.readers.read(verify::verify).await
    }
}
