//! Queue status counts background work (here embedding jobs) per session, and a job
//! the database failed is handed back without using up its attempt.

use std::sync::Arc;

use engram_core::Store;
use engram_core::queue_status::{StatusFilter, WorkUnits};
use engram_core::time::now_micros;

use crate::common::*;

fn units(total: i64, completed: i64, in_progress: i64, pending: i64) -> WorkUnits {
    WorkUnits {
        total_work_units: total,
        completed_work_units: completed,
        in_progress_work_units: in_progress,
        pending_work_units: pending,
        failed_work_units: 0,
    }
}

fn of_session(name: &str) -> StatusFilter {
    StatusFilter {
        session: Some(name.into()),
        ..StatusFilter::default()
    }
}

pub async fn check_work_status(store: Arc<dyn Store>) {
    let all = StatusFilter::default();
    store.enable_embeddings("tiny", 3).await.unwrap();
    store
        .create_messages("w", "a", vec![msg("alice", "one", 1)])
        .await
        .unwrap();
    store
        .create_messages("w", "a", vec![msg("bob", "two", 1)])
        .await
        .unwrap();
    store
        .create_messages("w", "b", vec![msg("bob", "three", 1)])
        .await
        .unwrap();
    let waiting = store.work_status("w", &all).await.unwrap();
    assert_eq!(waiting.totals, units(3, 0, 0, 3));
    let sessions = waiting.sessions.expect("per session");
    assert_eq!(sessions["a"].units, units(2, 0, 0, 2));
    assert_eq!(sessions["a"].session_id.as_deref(), Some("a"));
    assert_eq!(sessions["b"].units, units(1, 0, 0, 1));

    // Session a's first job runs: its unit is in progress, the job behind it too.
    let job = store
        .claim_job(now_micros() + 60_000_000)
        .await
        .unwrap()
        .unwrap();
    let running = store.work_status("w", &all).await.unwrap();
    assert_eq!(running.totals, units(3, 0, 2, 1));
    let one = store.work_status("w", &of_session("a")).await.unwrap();
    assert_eq!((one.totals, one.sessions), (units(2, 0, 2, 0), None));
    store.complete_job(&job).await.unwrap();
    let after = store.work_status("w", &all).await.unwrap();
    assert_eq!(after.totals, units(3, 1, 0, 2));

    // Filters that match nothing, and an unknown workspace.
    for filter in [
        of_session("nope"),
        StatusFilter {
            observer: Some("alice".into()),
            ..StatusFilter::default()
        },
        StatusFilter {
            sender: Some("bob".into()),
            ..StatusFilter::default()
        },
    ] {
        let none = store.work_status("w", &filter).await.unwrap();
        assert_eq!(none.totals, units(0, 0, 0, 0), "{filter:?}");
    }
    let elsewhere = store.work_status("nows", &all).await.unwrap();
    assert_eq!(
        (elsewhere.totals, elsewhere.sessions),
        (units(0, 0, 0, 0), None)
    );

    // A deleted session's work is gone from the status at once; purges are not work.
    store.delete_session("w", "a").await.unwrap();
    let deleted = store.work_status("w", &all).await.unwrap();
    assert_eq!(deleted.totals, units(1, 0, 0, 1));
    assert_eq!(deleted.sessions.unwrap().keys().collect::<Vec<_>>(), ["b"]);
}

pub async fn check_defer_keeps_the_attempt(store: Arc<dyn Store>) {
    store
        .create_messages("w", "s", vec![msg("alice", "hi", 1)])
        .await
        .unwrap();
    store.delete_session("w", "s").await.unwrap();
    let first = store
        .claim_job(now_micros() + 60_000_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.attempts, 1);
    store
        .defer_job(&first, "database unavailable", now_micros())
        .await
        .unwrap();
    let again = store
        .claim_job(now_micros() + 60_000_000)
        .await
        .unwrap()
        .expect("the deferred job runs again");
    assert_eq!((again.id, again.attempts), (first.id, 1));
    let info = store.list_jobs(None, 10).await.unwrap();
    assert_eq!(info[0].last_error.as_deref(), Some("database unavailable"));

    // A worker whose lease was taken over can no longer hand the job back.
    store
        .fail_job(&again, "boom", Some(now_micros()))
        .await
        .unwrap();
    let stale = store.claim_job(now_micros() - 1).await.unwrap().unwrap();
    let current = store
        .claim_job(now_micros() + 60_000_000)
        .await
        .unwrap()
        .expect("an expired lease is taken over");
    assert_eq!(
        (current.id, current.attempts),
        (stale.id, stale.attempts + 1)
    );
    assert!(store.defer_job(&stale, "late", now_micros()).await.is_err());
    store
        .defer_job(&current, "down", now_micros())
        .await
        .unwrap();
}
