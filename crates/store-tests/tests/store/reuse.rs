//! A name deleted, purged and used again gets new internal ids: the new session or
//! workspace can be deleted and purged in turn, with a receipt of its own, however often
//! the name comes back. Internal ids are seen through the purge jobs, which carry them.

use std::sync::Arc;

use engram_core::Store;
use engram_core::jobs::Task;
use engram_core::model::NewWorkspace;
use engram_core::queue::{Job, PurgeSession, PurgeWorkspace};
use engram_core::time::now_micros;

use crate::common::*;

/// Claims the next job, a purge, and runs it to completion as the worker does.
async fn run_purge(store: &Arc<dyn Store>) -> Job {
    let lease = now_micros() + 3_600_000_000;
    let job = store.claim_job(lease).await.unwrap().expect("a purge job");
    loop {
        let done = match job.task().unwrap() {
            Task::PurgeSession(purge) => store.purge_session_step(&job, purge, 1000, lease).await,
            Task::PurgeWorkspace(purge) => {
                store.purge_workspace_step(&job, purge, 1000, lease).await
            }
            other => panic!("expected a purge, got {other:?}"),
        };
        if done.expect("purge step") {
            break;
        }
    }
    store.complete_job(&job).await.unwrap();
    job
}

fn session_of(job: &Job) -> PurgeSession {
    serde_json::from_value(job.payload.clone()).unwrap()
}

pub async fn check_session_ids_never_reused(store: Arc<dyn Store>) {
    // The reused name is the newest session, whose id a reusing engine hands out again.
    store
        .create_messages("w", "older", vec![msg("alice", "stays", 1)])
        .await
        .unwrap();
    let mut purges: Vec<Job> = Vec::new();
    for round in 1..=3 {
        let batch = (0..round)
            .map(|i| msg("alice", &format!("m{i}"), 1))
            .collect();
        store.create_messages("w", "s", batch).await.unwrap();
        store
            .delete_session("w", "s")
            .await
            .unwrap_or_else(|e| panic!("delete number {round} of the name: {e:?}"));
        let job = run_purge(&store).await;
        let purge = session_of(&job);
        for earlier in &purges {
            assert!(job.id > earlier.id, "job ids only grow");
            assert!(
                purge.session_id > session_of(earlier).session_id,
                "round {round} gave session id {} again",
                purge.session_id
            );
            assert_eq!(purge.workspace_id, session_of(earlier).workspace_id);
        }
        purges.push(job);
    }

    let receipts = store.deletion_receipts("w").await.unwrap();
    assert_eq!(receipts.len(), 3, "one receipt per deletion: {receipts:?}");
    for (round, r) in receipts.iter().enumerate() {
        assert_eq!(r.session_id, "s");
        assert_eq!(r.messages_deleted, round as i64 + 1);
        assert_eq!(r.members_deleted, 1);
        assert!(r.finished_at.is_some());
    }
    assert!(store.verify().await.unwrap().iter().all(|c| *c == 0));
    let older = store
        .list_messages(
            "w",
            "older",
            all(
                engram_core::filter::Resource::Message,
                serde_json::Value::Null,
            ),
        )
        .await
        .unwrap();
    assert_eq!(contents(&older.items), ["stays"]);
}

pub async fn check_workspace_ids_never_reused(store: Arc<dyn Store>) {
    store
        .get_or_create_workspace(NewWorkspace {
            name: "older".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut workspaces: Vec<PurgeWorkspace> = Vec::new();
    let mut sessions: Vec<PurgeSession> = Vec::new();
    for round in 1..=2 {
        store
            .create_messages("w", "s", vec![msg("alice", "doomed", 1)])
            .await
            .unwrap();
        assert!(
            store.deletion_receipts("w").await.unwrap().is_empty(),
            "round {round}: a new workspace has no deletion history"
        );
        store
            .delete_session("w", "s")
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let session = session_of(&run_purge(&store).await);
        assert_eq!(store.deletion_receipts("w").await.unwrap().len(), 1);
        store.delete_workspace("w").await.unwrap();
        let job = run_purge(&store).await;
        let workspace: PurgeWorkspace = serde_json::from_value(job.payload).unwrap();
        for earlier in &workspaces {
            assert!(workspace.workspace_id > earlier.workspace_id);
        }
        for earlier in &sessions {
            assert!(session.session_id > earlier.session_id);
        }
        assert_eq!(session.workspace_id, workspace.workspace_id);
        workspaces.push(workspace);
        sessions.push(session);
    }
    assert!(store.verify().await.unwrap().iter().all(|c| *c == 0));
}
