//! Message vectors: the model a database is bound to, embedding work that is
//! idempotent, never writes for a deleted session, and is purged with its session.

use std::sync::Arc;

use engram_core::jobs::JobKind;
use engram_core::queue::Job;
use engram_core::search::{
    EmbedMessages, EmbedSelection, NewEmbedding, SearchRequest, SearchScope,
};
use engram_core::time::now_micros;
use engram_core::{Error, Store};

use crate::common::*;

fn lease() -> i64 {
    now_micros() + 3_600_000_000
}

fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; 3];
    v[i] = 1.0;
    v
}

async fn claim_embedding(store: &Arc<dyn Store>) -> (Job, EmbedMessages) {
    let job = store.claim_job(lease()).await.unwrap().expect("a job");
    assert_eq!(job.kind, JobKind::EmbedMessages.name());
    let task = serde_json::from_value(job.payload.clone()).expect("payload");
    (job, task)
}

async fn embed_all(store: &Arc<dyn Store>, job: &Job, task: &EmbedMessages) -> usize {
    let sources = store
        .messages_to_embed(EmbedSelection::Listed(task.message_ids.clone()))
        .await
        .unwrap();
    let rows = sources
        .iter()
        .enumerate()
        .map(|(i, s)| NewEmbedding {
            message_id: s.message_id,
            workspace_id: s.workspace_id,
            session_id: s.session_id,
            chunk: 0,
            vector: axis(i % 3),
        })
        .collect();
    store.store_embeddings(job, rows, lease()).await.unwrap()
}

pub async fn check_embeddings_bind_the_model(store: Arc<dyn Store>) {
    assert_eq!(store.embedding_model().await.unwrap(), None);
    store.enable_embeddings("tiny", 3).await.unwrap();
    store.enable_embeddings("tiny", 3).await.unwrap();
    assert_eq!(
        store.embedding_model().await.unwrap(),
        Some(("tiny".to_string(), 3))
    );
    match store.enable_embeddings("other", 384).await {
        Err(Error::Conflict(m)) => assert!(m.contains("tiny (3 dimensions)"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub async fn check_embedding_work_never_resurrects(store: Arc<dyn Store>) {
    store.enable_embeddings("tiny", 3).await.unwrap();
    store
        .create_messages(
            "w",
            "kept",
            vec![msg("alice", "cats", 1), msg("bob", "  ", 1)],
        )
        .await
        .unwrap();
    let (job, task) = claim_embedding(&store).await;
    assert_eq!(task.message_ids.len(), 2);
    // The blank message has nothing to embed.
    assert_eq!(embed_all(&store, &job, &task).await, 1);
    assert_eq!(embed_all(&store, &job, &task).await, 0, "idempotent");
    store.complete_job(&job).await.unwrap();
    let found = store
        .search_messages(
            "w",
            SearchRequest {
                scope: SearchScope::Workspace,
                query: "zzz".into(),
                filter: None,
                limit: 5,
                vector: Some(axis(0)),
            },
        )
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].content, "cats");

    // A job holding a session's text when the session is deleted writes nothing.
    store
        .create_messages("w", "doomed", vec![msg("alice", "secret words", 1)])
        .await
        .unwrap();
    let (job, task) = claim_embedding(&store).await;
    let sources = store
        .messages_to_embed(EmbedSelection::Listed(task.message_ids.clone()))
        .await
        .unwrap();
    assert_eq!(sources.len(), 1);
    store.delete_session("w", "doomed").await.unwrap();
    let late = vec![NewEmbedding {
        message_id: sources[0].message_id,
        workspace_id: sources[0].workspace_id,
        session_id: sources[0].session_id,
        chunk: 0,
        vector: axis(1),
    }];
    assert_eq!(
        store.store_embeddings(&job, late, lease()).await.unwrap(),
        0
    );
    assert!(
        store
            .messages_to_embed(EmbedSelection::Listed(task.message_ids))
            .await
            .unwrap()
            .is_empty()
    );
    // A backfill skips deleted sessions and what is already embedded.
    assert!(
        store
            .messages_to_embed(EmbedSelection::After(0))
            .await
            .unwrap()
            .is_empty()
    );
    store.complete_job(&job).await.unwrap();
}
