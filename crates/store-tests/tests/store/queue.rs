//! Session deletion and the job queue: tombstones, claims, retries and the purge.

use std::sync::Arc;
use std::time::Duration;

use engram_core::filter::Resource;
use engram_core::jobs::JobKind;
use engram_core::queue::{Job, PurgeSession, QueueDepth};
use engram_core::time::now_micros;
use engram_core::{Error, Store};
use serde_json::Value;

use crate::common::*;

/// A lease far enough ahead to stay live for the whole check.
fn live_lease() -> i64 {
    now_micros() + 3_600_000_000
}

fn purge_of(job: &Job) -> PurgeSession {
    assert_eq!(job.kind, JobKind::PurgeSession.name());
    serde_json::from_value(job.payload.clone()).expect("purge payload")
}

async fn claim(store: &Arc<dyn Store>, lease_until: i64) -> Option<Job> {
    store.claim_job(lease_until).await.unwrap()
}

async fn message_count(store: &Arc<dyn Store>, session: &str) -> i64 {
    store
        .list_messages("w", session, all(Resource::Message, Value::Null))
        .await
        .unwrap()
        .total
}

pub async fn check_delete_session(store: Arc<dyn Store>) {
    let kept = store
        .create_messages("w", "gone", vec![msg("alice", "a", 1), msg("bob", "b", 1)])
        .await
        .unwrap();
    store
        .create_messages(
            "w",
            "stays",
            vec![msg("alice", "c", 1), msg("carol", "d", 1)],
        )
        .await
        .unwrap();

    assert_not_found(
        store.delete_session("w", "nope").await,
        "Session nope not found in workspace w",
    );
    assert_not_found(
        store.delete_session("nows", "gone").await,
        "Session gone not found in workspace nows",
    );
    store.delete_session("w", "gone").await.unwrap();
    assert_not_found(
        store.delete_session("w", "gone").await,
        "Session gone not found in workspace w",
    );

    // Invisible at once, everywhere.
    let sessions = store
        .list_sessions("w", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&sessions.items), ["stays"]);
    let of_alice = store
        .list_peer_sessions("w", "alice", all(Resource::Session, Value::Null))
        .await
        .unwrap();
    assert_eq!(session_names(&of_alice.items), ["stays"]);
    let listed = store
        .list_messages("w", "gone", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!((listed.items.len(), listed.total), (0, 0));
    assert_eq!(
        store.get_message("w", "gone", &kept[0].id).await.unwrap(),
        None
    );
    assert!(
        store
            .recent_messages("w", "gone", 1000)
            .await
            .unwrap()
            .is_empty()
    );

    // The name is free: a new, empty session.
    let (fresh, created) = store
        .get_or_create_session("w", session("gone"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(fresh.id, "gone");
    assert_eq!(message_count(&store, "gone").await, 0);
    let members = store
        .list_session_peers("w", "gone", page(1, 50))
        .await
        .unwrap();
    assert!(members.items.is_empty());
    assert_eq!(
        store.get_message("w", "gone", &kept[1].id).await.unwrap(),
        None
    );

    // The other session is untouched.
    let stays = store
        .list_messages("w", "stays", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&stays.items), ["c", "d"]);
    let members = store
        .list_session_peers("w", "stays", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["alice", "carol"]);

    // The deletion left an unfinished receipt.
    let receipts = store.deletion_receipts("w").await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(
        (
            receipts[0].workspace_id.as_str(),
            receipts[0].session_id.as_str()
        ),
        ("w", "gone")
    );
    assert_eq!(
        (
            receipts[0].messages_deleted,
            receipts[0].members_deleted,
            receipts[0].finished_at
        ),
        (0, 0, None)
    );
    assert!(store.deletion_receipts("nows").await.unwrap().is_empty());
}

pub async fn check_claim_order_and_leases(store: Arc<dyn Store>) {
    assert_eq!(claim(&store, live_lease()).await, None);
    for name in ["s1", "s2"] {
        store
            .create_messages("w", name, vec![msg("alice", "x", 1)])
            .await
            .unwrap();
        store.delete_session("w", name).await.unwrap();
    }

    // First job, claimed under a lease that is already over.
    let first = claim(&store, now_micros() - 1).await.expect("first job");
    assert_eq!((first.attempts, first.max_attempts), (1, 10));
    // Its lease expired: taken over, attempts incremented.
    let again = claim(&store, live_lease()).await.expect("first job again");
    assert_eq!((again.id, again.attempts), (first.id, 2));
    assert_eq!(purge_of(&again), purge_of(&first));
    // Now under a live lease: the next job, in id order.
    let second = claim(&store, live_lease()).await.expect("second job");
    assert!(second.id > first.id);
    assert_eq!(second.attempts, 1);
    assert_ne!(purge_of(&second), purge_of(&first));
    // Both held under live leases: nothing to claim.
    assert_eq!(claim(&store, live_lease()).await, None);

    // The worker whose lease was taken over can no longer finish the job.
    assert!(matches!(
        store.complete_job(&first).await,
        Err(Error::Internal(_))
    ));
    store.complete_job(&again).await.unwrap();
    store.complete_job(&second).await.unwrap();
    assert_eq!(claim(&store, now_micros() - 1).await, None);
}

pub async fn check_fail_and_retry(store: Arc<dyn Store>) {
    store
        .create_messages("w", "s", vec![msg("alice", "x", 1)])
        .await
        .unwrap();
    store.delete_session("w", "s").await.unwrap();
    let job = claim(&store, live_lease()).await.expect("job");

    // Retried later: not claimable before its time, claimable after it.
    store
        .fail_job(&job, "boom", Some(now_micros() + 500_000))
        .await
        .unwrap();
    assert_eq!(claim(&store, live_lease()).await, None);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let retried = claim(&store, live_lease()).await.expect("retried job");
    assert_eq!((retried.id, retried.attempts), (job.id, 2));

    // Dead-lettered: never claimed again, even once its lease would have expired.
    assert!(matches!(
        store.fail_job(&job, "stale", None).await,
        Err(Error::Internal(_))
    ));
    store.fail_job(&retried, "dead", None).await.unwrap();
    assert_eq!(claim(&store, live_lease()).await, None);
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(claim(&store, live_lease()).await, None);

    let ghost = engram_core::queue::Job {
        id: i64::MAX,
        kind: "x".into(),
        payload: serde_json::Value::Null,
        attempts: 1,
        max_attempts: 1,
        run_at: 0,
    };
    match store.fail_job(&ghost, "x", None).await {
        Err(Error::Internal(_)) => {}
        other => panic!("expected Internal for an unknown job, got {other:?}"),
    }
}

pub async fn check_purge_session(store: Arc<dyn Store>) {
    let authors = ["alice", "bob", "carol"];
    for chunk in 0..25 {
        let batch = (0..100)
            .map(|i| msg(authors[i % 3], &format!("m{chunk}-{i}"), 1))
            .collect();
        store.create_messages("w", "big", batch).await.unwrap();
    }
    store
        .create_messages("w", "other", vec![msg("alice", "keep", 1)])
        .await
        .unwrap();
    assert_eq!(message_count(&store, "big").await, 2500);

    store.delete_session("w", "big").await.unwrap();
    // A new session under the same name, written before the purge runs.
    store
        .create_messages("w", "big", vec![msg("dave", "new", 1)])
        .await
        .unwrap();

    let job = claim(&store, live_lease()).await.expect("purge job");
    let purge = purge_of(&job);
    // Steps are bounded: none removes more than the batch it is given. (SQLite takes
    // smaller steps still, see store-sqlite's fts_purge.)
    let mut calls = 0;
    let mut deleted = 0;
    loop {
        calls += 1;
        assert!(calls <= 100, "purge does not finish");
        let done = store
            .purge_session_step(&job, purge, 1000, live_lease())
            .await
            .unwrap();
        let now = store.deletion_receipts("w").await.unwrap()[0].messages_deleted;
        assert!(now - deleted <= 1000, "one step removed {}", now - deleted);
        deleted = now;
        if done {
            break;
        }
    }
    assert!(
        calls >= 4,
        "2500 messages take at least three batches and the final step"
    );
    store.complete_job(&job).await.unwrap();

    let receipts = store.deletion_receipts("w").await.unwrap();
    assert_eq!(receipts.len(), 1);
    let r = &receipts[0];
    assert_eq!(
        (r.workspace_id.as_str(), r.session_id.as_str()),
        ("w", "big")
    );
    assert_eq!((r.messages_deleted, r.members_deleted), (2500, 3));
    let finished = r.finished_at.expect("finished receipt");
    assert!(finished >= r.requested_at);

    // The new session of the same name and the other session are untouched.
    let fresh = store
        .list_messages("w", "big", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&fresh.items), ["new"]);
    let members = store
        .list_session_peers("w", "big", page(1, 50))
        .await
        .unwrap();
    assert_eq!(peer_names(&members.items), ["dave"]);
    let other = store
        .list_messages("w", "other", all(Resource::Message, Value::Null))
        .await
        .unwrap();
    assert_eq!(contents(&other.items), ["keep"]);

    // A step of a completed job is refused (its lease cannot be renewed), cleanly, and
    // changes nothing.
    match store
        .purge_session_step(&job, purge, 1000, live_lease())
        .await
    {
        Err(Error::Internal(m)) => assert!(m.contains("lost its lease"), "{m}"),
        other => panic!("expected a lost lease, got {other:?}"),
    }
    assert_eq!(store.deletion_receipts("w").await.unwrap(), receipts);
    assert_eq!(claim(&store, now_micros() - 1).await, None);
}

/// A worker that dies mid-purge loses its lease; the next claim resumes where it
/// stopped, and the receipt counts every row once.
pub async fn check_purge_resumes(store: Arc<dyn Store>) {
    let batch = (0..30).map(|i| msg("alice", &format!("m{i}"), 1)).collect();
    store.create_messages("w", "s", batch).await.unwrap();
    store.delete_session("w", "s").await.unwrap();

    let dying = claim(&store, live_lease()).await.expect("job");
    let purge = purge_of(&dying);
    // Two batches, the last renewal already expired: the worker "dies" here.
    assert!(
        !store
            .purge_session_step(&dying, purge, 10, live_lease())
            .await
            .unwrap()
    );
    assert!(
        !store
            .purge_session_step(&dying, purge, 10, now_micros() - 1)
            .await
            .unwrap()
    );

    let resumed = claim(&store, live_lease()).await.expect("taken over");
    assert_eq!((resumed.id, resumed.attempts), (dying.id, 2));
    let mut steps = 0;
    while !store
        .purge_session_step(&resumed, purge, 10, live_lease())
        .await
        .unwrap()
    {
        steps += 1;
    }
    assert_eq!(steps, 1);
    store.complete_job(&resumed).await.unwrap();
    let receipts = store.deletion_receipts("w").await.unwrap();
    assert_eq!(
        (receipts[0].messages_deleted, receipts[0].members_deleted),
        (30, 1)
    );
}

/// A purge never touches a live session. Internal ids are not exposed, so this relies
/// on both engines numbering sessions consecutively: the session created right after
/// the deleted one has the next id (checked: its data survives the refused step).
pub async fn check_purge_refuses_live_session(store: Arc<dyn Store>) {
    store
        .create_messages("w", "a", vec![msg("alice", "a", 1)])
        .await
        .unwrap();
    store
        .create_messages("w", "b", vec![msg("alice", "b", 1)])
        .await
        .unwrap();
    store.delete_session("w", "a").await.unwrap();
    let job = claim(&store, live_lease()).await.expect("job");
    let deleted = purge_of(&job);
    let live = PurgeSession {
        session_id: deleted.session_id + 1,
        ..deleted
    };
    match store
        .purge_session_step(&job, live, 1000, live_lease())
        .await
    {
        Err(Error::Internal(m)) => assert!(m.contains("refusing to purge live session"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(message_count(&store, "b").await, 1);
}

pub async fn check_dead_letter_rerun(store: Arc<dyn Store>) {
    store
        .create_messages("w", "s", vec![msg("alice", "x", 1)])
        .await
        .unwrap();
    store.delete_session("w", "s").await.unwrap();
    let job = claim(&store, live_lease()).await.expect("job");
    store.fail_job(&job, "gave up", None).await.unwrap();
    let failed = store.list_jobs(Some("failed"), 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].id, failed[0].attempts), (job.id, 1));
    assert_eq!(failed[0].last_error.as_deref(), Some("gave up"));
    assert_eq!(
        store.verify().await.unwrap()[3],
        1,
        "verify counts the dead letter"
    );
    assert!(
        store
            .list_jobs(Some("pending"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.retry_job(job.id + 1000).await.unwrap());
    assert!(store.retry_job(job.id).await.unwrap());
    assert!(
        !store.retry_job(job.id).await.unwrap(),
        "only dead letters can be re-run"
    );
    let again = claim(&store, live_lease()).await.expect("re-run job");
    assert_eq!((again.id, again.attempts), (job.id, 1));
    assert_eq!(store.list_jobs(None, 10).await.unwrap().len(), 1);
}

fn depth(state: &str, jobs: i64) -> QueueDepth {
    QueueDepth {
        kind: JobKind::PurgeSession.name().into(),
        state: state.into(),
        jobs,
    }
}

/// Queue depth counts unfinished and dead-lettered jobs by kind and state; finished
/// jobs are not depth.
pub async fn check_queue_depth(store: Arc<dyn Store>) {
    assert_eq!(store.queue_depth().await.unwrap(), []);
    let started = now_micros();
    for name in ["a", "b", "c"] {
        store
            .create_messages("w", name, vec![msg("alice", "x", 1)])
            .await
            .unwrap();
        store.delete_session("w", name).await.unwrap();
    }
    assert_eq!(store.queue_depth().await.unwrap(), [depth("pending", 3)]);

    let running = claim(&store, live_lease()).await.expect("job");
    assert!(running.run_at >= started && running.run_at <= now_micros());
    let dead = claim(&store, live_lease()).await.expect("job");
    store.fail_job(&dead, "gave up", None).await.unwrap();
    assert_eq!(
        store.queue_depth().await.unwrap(),
        [depth("failed", 1), depth("pending", 1), depth("running", 1)]
    );

    store.complete_job(&running).await.unwrap();
    let last = claim(&store, live_lease()).await.expect("job");
    store.complete_job(&last).await.unwrap();
    assert_eq!(store.queue_depth().await.unwrap(), [depth("failed", 1)]);
}

/// How long `wait_for_jobs` waits here when nothing wakes it: far past any wake-up.
const UNWOKEN: Duration = Duration::from_secs(10);

/// Whether `wait_for_jobs` returned well before its timeout, i.e. was woken.
async fn woken(store: &Arc<dyn Store>) -> bool {
    let started = std::time::Instant::now();
    store.wait_for_jobs(UNWOKEN).await;
    started.elapsed() < UNWOKEN / 2
}

/// A write that queues a job wakes this process's workers when it commits, whatever
/// the kind: no caller has to remember to, and nothing waits for the poll.
pub async fn check_writes_that_queue_jobs_wake_the_workers(store: Arc<dyn Store>) {
    store.enable_embeddings("tiny", 3).await.unwrap();
    store
        .create_messages("w", "s", vec![msg("alice", "embed me", 1)])
        .await
        .unwrap();
    assert!(
        woken(&store).await,
        "a message write did not wake the workers"
    );
    store.delete_session("w", "s").await.unwrap();
    assert!(woken(&store).await, "a deletion did not wake the workers");
    let job = claim(&store, live_lease()).await.expect("the purge");
    store.complete_job(&job).await.unwrap();
    // PostgreSQL's listener may still hold the deletion's NOTIFY (a spare wake-up costs
    // one empty claim); once it is taken, nothing queued means the wait runs out.
    store.wait_for_jobs(Duration::from_millis(200)).await;
    let quiet = tokio::time::timeout(Duration::from_millis(300), store.wait_for_jobs(UNWOKEN));
    assert!(quiet.await.is_err(), "woken with nothing queued");
}

/// Done jobs past the cut-off go, a bounded batch at a time; dead letters and unfinished
/// jobs stay, whatever their age.
pub async fn check_prune_done_jobs(store: Arc<dyn Store>) {
    for s in ["a", "b", "c", "d"] {
        store
            .create_messages("w", s, vec![msg("alice", "x", 1)])
            .await
            .unwrap();
        store.delete_session("w", s).await.unwrap();
    }
    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.push(claim(&store, live_lease()).await.expect("a purge"));
    }
    store.complete_job(&claimed[0]).await.unwrap();
    store.complete_job(&claimed[1]).await.unwrap();
    store.fail_job(&claimed[2], "gave up", None).await.unwrap();
    assert_eq!(
        store.prune_done_jobs(0, 10).await.unwrap(),
        0,
        "nothing is that old"
    );
    let later = now_micros() + 1_000_000;
    assert_eq!(
        store.prune_done_jobs(later, 1).await.unwrap(),
        1,
        "one per call"
    );
    assert_eq!(store.prune_done_jobs(later, 10).await.unwrap(), 1);
    assert_eq!(store.prune_done_jobs(later, 10).await.unwrap(), 0);
    let mut left: Vec<(i64, String)> = store
        .list_jobs(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j.state))
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert_eq!(left[0], (claimed[2].id, "failed".to_string()));
    assert_eq!(left[1].1, "pending");
}
