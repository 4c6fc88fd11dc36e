//! PocketPaw's session model over engram's store.
//!
//! A PocketPaw session is an ordinary engram session in one configurable workspace,
//! named by PocketPaw's safe key, so the Honcho API sees the same data. A message's
//! role is the name of the peer that wrote it (`user`, `assistant`, `system`). The
//! title (plus `user_title` once renamed) and the channel live in the session's
//! metadata; the message count, the last activity and the preview are read from the
//! messages themselves, so writes through the Honcho API keep them right.

use async_trait::async_trait;
use serde_json::Value;

use crate::Result;
use crate::model::{Json, Message, NewMessage};
use crate::time::Micros;

/// The workspace PocketPaw sessions live in unless configured otherwise.
pub const DEFAULT_WORKSPACE: &str = "pocketpaw";
/// Characters of the first user message that make an automatic title.
pub const TITLE_CHARS: usize = 80;
/// Characters of the last message shown as the preview.
pub const PREVIEW_CHARS: usize = 120;
/// Characters of the matching message returned by search.
pub const MATCH_CHARS: usize = 200;
/// The role of a message whose author is unknown.
pub const DEFAULT_ROLE: &str = "user";
/// Metadata keys engram keeps for PocketPaw on the session.
pub const TITLE_KEY: &str = "title";
pub const USER_TITLE_KEY: &str = "user_title";
pub const CHANNEL_KEY: &str = "channel";

/// PocketPaw's file-name rule: `:` and `/` become `_`. Idempotent, so raw keys and
/// safe keys name the same session.
pub fn safe_key(id: &str) -> String {
    id.replace([':', '/'], "_")
}

/// The first `n` characters (not bytes) of `text`.
pub fn truncate(text: &str, n: usize) -> String {
    text.chars().take(n).collect()
}

/// PocketPaw's automatic title: the first non-blank user message, trimmed, cut to 80
/// characters; "New Chat" when there is none.
pub fn auto_title(first_user_text: Option<&str>) -> String {
    match first_user_text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => truncate(t, TITLE_CHARS),
        None => "New Chat".to_string(),
    }
}

/// The channel PocketPaw derives from a safe key when it rebuilds its index: the part
/// before the first `_`.
pub fn channel_of(safe_key: &str) -> String {
    safe_key.split('_').next().unwrap_or_default().to_string()
}

fn text(metadata: &Json, key: &str) -> Option<String> {
    match metadata.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// One live session as the store reads it for PocketPaw's list and search.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub name: String,
    pub metadata: Json,
    pub created_at: Micros,
    /// The newest message's time, or the session's creation time when it has none.
    pub last_activity: Micros,
    pub message_count: i64,
    /// The first `PREVIEW_CHARS` characters of the newest message ("" if none).
    pub preview: String,
    /// The first non-blank message of peer `user`, read only when the metadata has no
    /// title.
    pub first_user_text: Option<String>,
}

impl SessionRow {
    pub fn title(&self) -> String {
        text(&self.metadata, TITLE_KEY)
            .unwrap_or_else(|| auto_title(self.first_user_text.as_deref()))
    }

    pub fn channel(&self) -> String {
        text(&self.metadata, CHANNEL_KEY).unwrap_or_else(|| "unknown".to_string())
    }

    pub fn user_title(&self) -> Option<String> {
        text(&self.metadata, USER_TITLE_KEY)
    }
}

/// A search result: the session and its first message containing the query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub session: SessionRow,
    /// The first `MATCH_CHARS` characters of the matching message.
    pub matched: String,
    /// The matching message's peer.
    pub role: String,
}

/// A session written with its original times, by an import.
#[derive(Debug, Clone)]
pub struct ImportedSession {
    pub name: String,
    pub metadata: Json,
    pub configuration: Json,
    pub created_at: Micros,
    /// In order; each carries its original `created_at`.
    pub messages: Vec<NewMessage>,
}

/// What importing one session changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The session did not exist and was created.
    pub created: bool,
    /// Messages appended (those beyond the count the live session already had).
    pub added: usize,
}

/// Store operations behind the PocketPaw API and the import/export commands. Each
/// method is one transaction, like every `Store` method.
#[async_trait]
pub trait PocketPawStore: Send + Sync {
    /// Live sessions of `workspace`, newest activity first (ties: newest session
    /// first), at most `limit`, and the number of live sessions.
    async fn pp_list(&self, workspace: &str, limit: i64) -> Result<(Vec<SessionRow>, i64)>;
    /// Live sessions having a message that contains `needle` (already lower-cased),
    /// compared case-insensitively; one hit per session (its first such message),
    /// newest activity first, at most `limit`.
    async fn pp_search(&self, workspace: &str, needle: &str, limit: i64) -> Result<Vec<SearchHit>>;
    /// Sets `title` and `user_title` in a live session's metadata; false when there
    /// is no such session.
    async fn pp_set_title(&self, workspace: &str, session: &str, title: &str) -> Result<bool>;
    /// Every message of a live session in order; `None` when there is no such session.
    async fn session_messages(
        &self,
        workspace: &str,
        session: &str,
    ) -> Result<Option<Vec<Message>>>;
    /// Creates the session with the given metadata, configuration and creation time
    /// when no live one has its name, then appends the messages beyond the count the
    /// live session already holds, so running the same import again adds nothing.
    async fn import_session(
        &self,
        workspace: &str,
        session: ImportedSession,
    ) -> Result<ImportOutcome>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_keys_are_idempotent() {
        assert_eq!(safe_key("telegram:123:topic:42"), "telegram_123_topic_42");
        assert_eq!(safe_key("a/b:c"), "a_b_c");
        assert_eq!(safe_key(&safe_key("websocket:x")), "websocket_x");
    }

    #[test]
    fn titles_and_channels() {
        assert_eq!(auto_title(Some("  hello  ")), "hello");
        assert_eq!(auto_title(Some(" \n ")), "New Chat");
        assert_eq!(auto_title(None), "New Chat");
        assert_eq!(auto_title(Some(&"é".repeat(100))).chars().count(), 80);
        assert_eq!(channel_of("google_chat_space"), "google");
        assert_eq!(channel_of("websocket_abc"), "websocket");
        assert_eq!(channel_of("plain"), "plain");
    }
}
