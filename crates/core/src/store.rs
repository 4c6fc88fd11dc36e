//! The storage interface. Each method is one transaction: it either happens
//! completely or not at all, and a successful return means it is durable.

use async_trait::async_trait;

use crate::Result;
use crate::model::Json;
use crate::model::{
    Changes, ListQuery, Message, NewMessage, NewPeer, NewSession, NewWorkspace, Page, PageRequest,
    Peer, Session, SessionPeerConfig, Workspace,
};

/// How a membership map is applied to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipMode {
    /// Upsert the given members, leave the others.
    Add,
    /// Every current member not listed leaves; the given ones are upserted.
    Replace,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Returns the workspace and whether it was created by this call.
    async fn get_or_create_workspace(&self, new: NewWorkspace) -> Result<(Workspace, bool)>;
    /// Creates the workspace if missing; metadata replaced, configuration merged.
    async fn update_workspace(&self, name: &str, changes: Changes) -> Result<Workspace>;
    async fn list_workspaces(&self, query: ListQuery) -> Result<Page<Workspace>>;

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
