//! Keyword search over many matches: only the newest `RANK_WINDOW` matches are ranked,
//! yet an older match that alone passes the filter is still found.

use std::sync::Arc;

use engram_core::Store;
use engram_core::filter::{Resource, parse};
use engram_core::search::{RANK_WINDOW, SearchRequest, SearchScope};
use serde_json::json;

use crate::common::*;

fn request(query: &str, filters: serde_json::Value, limit: usize) -> SearchRequest {
    SearchRequest {
        scope: SearchScope::Workspace,
        query: query.into(),
        filter: parse(Resource::Message, &filters).unwrap(),
        limit,
        vector: None,
    }
}

pub async fn check_common_words_rank_the_newest(store: Arc<dyn Store>) {
    store
        .create_messages("w", "old", vec![msg("early", "common words here", 1)])
        .await
        .unwrap();
    let batches = RANK_WINDOW / 100 + 1;
    for b in 0..batches {
        let batch = (0..100)
            .map(|i| msg("bulk", &format!("common words number {}", b * 100 + i), 1))
            .collect();
        store.create_messages("w", "bulk", batch).await.unwrap();
    }
    let top = store
        .search_messages("w", request("common words", json!(null), 5))
        .await
        .unwrap();
    assert_eq!(top.len(), 5);
    assert!(top.iter().all(|m| m.peer_id == "bulk"));
    // Outside the ranked window, but the only match of its filter: still found.
    let early = store
        .search_messages("w", request("common words", json!({"peer_id": "early"}), 5))
        .await
        .unwrap();
    assert_eq!(early.len(), 1);
    assert_eq!(early[0].content, "common words here");
}
