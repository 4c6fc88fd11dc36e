//! Message search shared by both engines: what a search asks for, how keyword and
//! vector candidates are fused, and the embedding work the queue does for search.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::filter::Filter;
use crate::model::Message;
use crate::queue::Job;

/// Reciprocal rank fusion constant, as the reference.
pub const RRF_K: f64 = 60.0;
/// Largest `limit` a search accepts.
pub const MAX_LIMIT: usize = 100;
/// Queries longer than this (in tokens) are refused, as the reference.
pub const MAX_QUERY_TOKENS: usize = 8192;
/// Messages one backfill step embeds.
pub const BACKFILL_BATCH: i64 = 64;

/// Which messages a search may return, besides its filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    Workspace,
    /// Messages written by this peer.
    Peer(String),
    Session(String),
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub scope: SearchScope,
    pub query: String,
    pub filter: Option<Filter>,
    pub limit: usize,
    /// The query's embedding, when semantic search is on.
    pub vector: Option<Vec<f32>>,
}

impl SearchRequest {
    /// Each ranked list contributes this many candidates, as the reference.
    pub fn candidates(&self) -> usize {
        self.limit * 2
    }
}

/// How the keyword half of a search matches, decided as the reference does: a query
/// with punctuation is matched as a literal substring only; otherwise its words are
/// matched through the full-text index, with a substring match as the fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeywordMatch {
    Substring,
    /// The FTS5 expression (quoted words, all required) and the query for substrings.
    Words(String),
}

const SPECIAL: &str = "~`!@#$%^&*()_+=[]{};':\"\\|,.<>/?-";

pub fn keyword_match(query: &str) -> KeywordMatch {
    if query.chars().any(|c| SPECIAL.contains(c)) {
        return KeywordMatch::Substring;
    }
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    if words.is_empty() {
        KeywordMatch::Substring
    } else {
        KeywordMatch::Words(words.join(" "))
    }
}

/// When more messages than this contain every word of a query, only the newest this
/// many of them are ranked: a query of common words would otherwise rank the whole
/// workspace, and for such words the ranking says little beyond recency anyway.
pub const RANK_WINDOW: i64 = 20_000;

/// Substring matches the full-text index cannot narrow look only at this many of the
/// workspace's newest messages, so a query never scans a whole large workspace.
pub const SUBSTRING_WINDOW: i64 = 20_000;

/// The words a message must contain whole for it to contain `query` as a substring:
/// every word of the query except a first or last one that may be cut off. `None`
/// when there is none, and the substring match cannot use the index.
pub fn substring_words(query: &str) -> Option<Vec<String>> {
    let chars: Vec<char> = query.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_alphanumeric() {
            i += 1;
        }
        if start > 0 && i < chars.len() {
            words.push(chars[start..i].iter().collect::<String>());
        }
    }
    (!words.is_empty()).then_some(words)
}

/// Fuses ranked candidate lists by reciprocal rank (1-based ranks, k = 60). Ties keep
/// the order in which items were first seen, earlier lists first, as the reference.
pub fn fuse(lists: &[Vec<i64>], limit: usize) -> Vec<i64> {
    let mut scores: Vec<(i64, f64)> = Vec::new();
    let mut position = std::collections::HashMap::new();
    for list in lists {
        for (rank, id) in list.iter().enumerate() {
            let add = 1.0 / (RRF_K + (rank + 1) as f64);
            let at = *position.entry(*id).or_insert_with(|| {
                scores.push((*id, 0.0));
                scores.len() - 1
            });
            scores[at].1 += add;
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1));
    scores.into_iter().take(limit).map(|(id, _)| id).collect()
}

/// Keeps the first occurrence of each id (vector candidates hold one row per chunk).
pub fn dedupe(ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter().filter(|id| seen.insert(*id)).collect()
}

/// Messages to embed, by internal id; all from one session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EmbedMessages {
    pub workspace_id: i64,
    pub session_id: i64,
    pub message_ids: Vec<i64>,
}

pub fn embed_unit_key(workspace_id: i64, session_id: i64) -> String {
    format!("embed:{workspace_id}:{session_id}")
}

/// Which messages an embedding step reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedSelection {
    /// The messages of one write.
    Listed(Vec<i64>),
    /// A backfill's next batch: up to `BACKFILL_BATCH` messages with a larger id.
    After(i64),
}

/// A message's text as the embedding job reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedSource {
    pub message_id: i64,
    pub workspace_id: i64,
    pub session_id: i64,
    pub content: String,
}

/// One chunk's vector, carrying its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmbedding {
    pub message_id: i64,
    pub workspace_id: i64,
    pub session_id: i64,
    pub chunk: i64,
    pub vector: Vec<f32>,
}

/// Search and the storage side of message embeddings.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Live messages of a live workspace, ranked; never anything from a deleted session.
    async fn search_messages(
        &self,
        workspace: &str,
        request: SearchRequest,
    ) -> Result<Vec<Message>>;
    /// The model and dimension this database's vectors use, if embeddings are on.
    async fn embedding_model(&self) -> Result<Option<(String, usize)>>;
    /// Turns embeddings on for `model` (creating the vector index) or checks that the
    /// database already uses it; a different model or dimension is an error. The
    /// first time, queues a backfill of the messages already stored.
    async fn enable_embeddings(&self, model: &str, dimension: usize) -> Result<()>;
    /// Non-empty messages still lacking vectors in live sessions, in id order.
    async fn messages_to_embed(&self, which: EmbedSelection) -> Result<Vec<EmbedSource>>;
    /// Writes vectors for messages whose session is still live, checked in the same
    /// transaction (work started before a deletion never writes after it); the
    /// others are dropped. Returns the rows written. Renews the job's lease.
    async fn store_embeddings(
        &self,
        job: &Job,
        rows: Vec<NewEmbedding>,
        lease_until: crate::time::Micros,
    ) -> Result<usize>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_sums_reciprocal_ranks_and_keeps_first_seen_order_on_ties() {
        let semantic = vec![1, 2, 3];
        let keyword = vec![3, 4];
        // 3: 1/63 + 1/61 beats 1: 1/61; 2 (1/62) and 4 (1/62) tie: 2 was seen first.
        assert_eq!(fuse(&[semantic, keyword], 10), vec![3, 1, 2, 4]);
        assert_eq!(fuse(&[vec![5, 6, 7]], 2), vec![5, 6]);
        assert!(fuse(&[], 3).is_empty());
    }

    #[test]
    fn punctuation_means_substring_and_words_are_quoted() {
        assert_eq!(keyword_match("user@example.com"), KeywordMatch::Substring);
        assert_eq!(keyword_match(""), KeywordMatch::Substring);
        assert_eq!(keyword_match("   "), KeywordMatch::Substring);
        assert_eq!(
            keyword_match("cats  AND dogs"),
            KeywordMatch::Words("\"cats\" \"AND\" \"dogs\"".into())
        );
    }

    #[test]
    fn substring_words_are_the_uncut_ones() {
        assert_eq!(substring_words("pizza"), None);
        assert_eq!(substring_words("asi"), None);
        assert_eq!(
            substring_words("mail user@example.com now"),
            Some(vec!["user".into(), "example".into(), "com".into()])
        );
        assert_eq!(
            substring_words("ser@example.co"),
            Some(vec!["example".into()])
        );
        assert_eq!(substring_words("@home!"), Some(vec!["home".into()]));
        assert_eq!(substring_words(""), None);
    }

    #[test]
    fn dedupe_keeps_first_occurrence() {
        assert_eq!(dedupe([4, 2, 4, 1, 2]), vec![4, 2, 1]);
    }
}
