//! The queue worker: claims jobs (deletions first), runs them, and records the outcome
//! with retries and backoff. The store wakes it when a job is queued (at once in this
//! process, and from other processes on PostgreSQL for urgent kinds); it also polls, so
//! retries coming due and jobs of other processes are picked up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engram_core::jobs::Task;
use engram_core::queue::{self, Job, LEASE_MICROS};
use engram_core::queue_status::COMPLETED_WINDOW;
use engram_core::time::now_micros;
use engram_core::{Embedder, Error, Store};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::embedding_jobs;
use crate::metrics::{Finished, Metrics};
use crate::webhooks::WebhookConfig;

const POLL: Duration = Duration::from_secs(1);
/// When a job the database failed runs again, and how often its hand-back is retried
/// while the database is away.
const OUTAGE_RETRY: Duration = Duration::from_secs(1);
/// Webhook deliveries one worker runs at a time.
const MAX_DELIVERIES: usize = 16;
/// How often an idle worker removes done jobs past queue status's window, and how many
/// one transaction removes: every message write queues a job, so the history would
/// otherwise grow with the data.
const PRUNE_EVERY: Duration = Duration::from_secs(600);
const PRUNE_BATCH: i64 = 1000;

/// What a worker runs jobs with.
#[derive(Clone)]
pub struct Worker {
    pub store: Arc<dyn Store>,
    /// Rows one purge transaction removes.
    pub purge_batch: i64,
    /// Runs the embedding jobs; a worker without one fails them (they are retried, so
    /// a worker that has the model picks them up).
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Signs and sends webhook deliveries.
    pub webhooks: WebhookConfig,
    /// Counts what the jobs did.
    pub metrics: Arc<Metrics>,
}

/// Runs until `stop` turns true; a job in progress is finished or handed back.
pub async fn run(worker: Worker, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_DELIVERIES));
    let mut deliveries = JoinSet::new();
    let mut pruned: Option<Instant> = None;
    while !*stop.borrow() {
        while deliveries.try_join_next().is_some() {}
        match worker.store.claim_job(now_micros() + LEASE_MICROS).await {
            Ok(Some(job)) => {
                let claimed = Instant::now();
                worker.metrics.job_claimed(&job, now_micros());
                match job.task() {
                    // Deliveries wait on other servers; beside the loop, a slow endpoint
                    // never holds back purges.
                    Ok(task @ Task::WebhookDelivery(_)) => {
                        let Ok(slot) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let (worker, stop) = (worker.clone(), stop.clone());
                        deliveries.spawn(async move {
                            run_job(&worker, &stop, job, Ok(task), claimed).await;
                            drop(slot);
                        });
                    }
                    task => run_job(&worker, &stop, job, task, claimed).await,
                }
                continue;
            }
            Ok(None) => {
                if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    prune_history(&worker.store, &stop).await;
                    pruned = Some(Instant::now());
                }
            }
            Err(e) => tracing::warn!(error = %e, "claiming a job failed"),
        }
        tokio::select! {
            () = worker.store.wait_for_jobs(POLL) => {}
            _ = stop.changed() => {}
        }
    }
    // In-flight deliveries end within their timeout.
    while deliveries.join_next().await.is_some() {}
}

/// Removes done jobs older than queue status's window (it no longer counts them), a
/// batch per transaction so the writer is never held long; dead-lettered jobs stay.
async fn prune_history(store: &Arc<dyn Store>, stop: &watch::Receiver<bool>) {
    let before = now_micros() - COMPLETED_WINDOW;
    let mut removed = 0;
    while !*stop.borrow() {
        match store.prune_done_jobs(before, PRUNE_BATCH).await {
            Ok(n) => {
                removed += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "removing finished jobs failed; trying again later");
                break;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed finished jobs past the status window");
    }
}

enum Outcome {
    Done,
    Failed(Error),
    /// Shutdown interrupted the job; it runs again at once elsewhere or after restart.
    Released,
}

/// Runs what `job` says (`task`, already read from it), claimed at `claimed`, and
/// records how it ended.
async fn run_job(
    worker: &Worker,
    stop: &watch::Receiver<bool>,
    job: Job,
    task: engram_core::Result<Task>,
    claimed: Instant,
) {
    let store = &worker.store;
    let lease = || now_micros() + LEASE_MICROS;
    let outcome = match task {
        Err(e) => Outcome::Failed(e),
        Ok(Task::PurgeSession(purge)) => {
            run_steps(stop, || {
                store.purge_session_step(&job, purge, worker.purge_batch, lease())
            })
            .await
        }
        Ok(Task::PurgeWorkspace(purge)) => {
            run_steps(stop, || {
                store.purge_workspace_step(&job, purge, worker.purge_batch, lease())
            })
            .await
        }
        Ok(Task::WebhookDelivery(delivery)) => {
            match crate::webhooks::deliver(&worker.webhooks, &delivery).await {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e),
            }
        }
        Ok(Task::EmbedMessages(task)) => {
            match embedding_jobs::embed_messages(store, worker.embedder.as_ref(), &job, task).await
            {
                Ok(()) => Outcome::Done,
                Err(e) => Outcome::Failed(e),
            }
        }
        Ok(Task::EmbedBackfill(_)) => {
            match embedding_jobs::backfill(store, worker.embedder.as_ref(), &job, stop).await {
                Ok(true) => Outcome::Done,
                Ok(false) => Outcome::Released,
                Err(e) => Outcome::Failed(e),
            }
        }
    };
    let (recorded, finished) = match outcome {
        Outcome::Failed(Error::Busy(e)) => {
            tracing::warn!(job = job.id, error = %e, "database unavailable; job deferred");
            let run_at = now_micros() + OUTAGE_RETRY.as_micros() as i64;
            let recorded = record(stop, || store.defer_job(&job, &e, run_at)).await;
            (recorded, Finished::Retried)
        }
        Outcome::Done => {
            tracing::info!(job = job.id, kind = %job.kind, ms = claimed.elapsed().as_millis() as u64, "job done");
            (
                record(stop, || store.complete_job(&job)).await,
                Finished::Completed,
            )
        }
        Outcome::Released => (
            record(stop, || {
                store.fail_job(&job, "released at shutdown", Some(now_micros()))
            })
            .await,
            Finished::Released,
        ),
        Outcome::Failed(e) => {
            let retry = queue::retry_at(now_micros(), job.attempts, job.max_attempts);
            let finished = match retry {
                Some(_) => {
                    tracing::warn!(job = job.id, attempt = job.attempts, error = %e, "job failed; will retry");
                    Finished::Retried
                }
                None => {
                    tracing::error!(job = job.id, attempt = job.attempts, error = %e, "job dead-lettered");
                    Finished::DeadLettered
                }
            };
            let error = e.to_string();
            let recorded = record(stop, || store.fail_job(&job, &error, retry)).await;
            (recorded, finished)
        }
    };
    match recorded {
        Ok(()) => worker
            .metrics
            .job_finished(&job.kind, finished, claimed.elapsed()),
        // The lease expires and another claim retries the job.
        Err(e) => tracing::warn!(job = job.id, error = %e, "recording a job outcome failed"),
    }
}

/// Records a job's outcome however long the database stays away: were the lease left
/// to expire instead, the job would run again on a new attempt, and one on its last
/// attempt would be dead-lettered by the next claim. Gives up only at shutdown.
async fn record<F, Fut>(stop: &watch::Receiver<bool>, mut write: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    loop {
        match write().await {
            Err(Error::Busy(_)) if !*stop.borrow() => tokio::time::sleep(OUTAGE_RETRY).await,
            recorded => return recorded,
        }
    }
}

/// Runs a job's steps until one reports completion, handing the job back when the
/// process is stopping.
async fn run_steps<F, Fut>(stop: &watch::Receiver<bool>, mut step: F) -> Outcome
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, Error>>,
{
    loop {
        if *stop.borrow() {
            return Outcome::Released;
        }
        match step().await {
            Ok(true) => return Outcome::Done,
            Ok(false) => {}
            Err(e) => return Outcome::Failed(e),
        }
    }
}
