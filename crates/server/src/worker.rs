//! The queue worker: claims jobs (deletions first), runs them, and records the outcome
//! with retries and backoff. Wakes on an in-process notify when this process queued
//! work, and polls so jobs queued by other processes are picked up too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engram_core::queue::{
    self, Job, LEASE_MICROS, PURGE_SESSION, PURGE_WORKSPACE, PurgeSession, PurgeWorkspace,
};
use engram_core::search::{EMBED_BACKFILL, EMBED_MESSAGES};
use engram_core::time::now_micros;
use engram_core::webhooks::{DELIVERY, Delivery};
use engram_core::{Embedder, Error, Store};
use tokio::sync::{Notify, Semaphore, watch};
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

/// Runs until `stop` turns true; a job in progress is finished or handed back.
/// `purge_batch` is the number of rows one purge transaction removes.
/// `embedder` runs the embedding jobs; a worker without one fails them (they are
/// retried, so a worker that has the model picks them up). `webhooks` signs and
/// sends webhook deliveries. `metrics` counts what the jobs did.
pub async fn run(
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
    purge_batch: i64,
    embedder: Option<Arc<dyn Embedder>>,
    webhooks: WebhookConfig,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(MAX_DELIVERIES));
    let mut deliveries = JoinSet::new();
    while !*stop.borrow() {
        while deliveries.try_join_next().is_some() {}
        match store.claim_job(now_micros() + LEASE_MICROS).await {
            Ok(Some(job)) => {
                let claimed = Instant::now();
                metrics.job_claimed(&job, now_micros());
                if job.kind == DELIVERY {
                    // Deliveries wait on other servers; beside the loop, a slow endpoint
                    // never holds back purges.
                    let Ok(slot) = slots.clone().acquire_owned().await else {
                        break;
                    };
                    let (store, stop, webhooks, metrics) = (
                        store.clone(),
                        stop.clone(),
                        webhooks.clone(),
                        metrics.clone(),
                    );
                    deliveries.spawn(async move {
                        let context = Context {
                            store: &store,
                            stop: &stop,
                            purge_batch,
                            embedder: None,
                            webhooks: &webhooks,
                            metrics: &metrics,
                        };
                        run_job(&context, job, claimed).await;
                        drop(slot);
                    });
                } else {
                    let context = Context {
                        store: &store,
                        stop: &stop,
                        purge_batch,
                        embedder: embedder.as_ref(),
                        webhooks: &webhooks,
                        metrics: &metrics,
                    };
                    run_job(&context, job, claimed).await;
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "claiming a job failed"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = store.wait_for_jobs(POLL) => {}
            _ = stop.changed() => {}
        }
    }
    // In-flight deliveries end within their timeout.
    while deliveries.join_next().await.is_some() {}
}

enum Outcome {
    Done,
    Failed(Error),
    /// Shutdown interrupted the job; it runs again at once elsewhere or after restart.
    Released,
}

/// What running a job may use.
struct Context<'a> {
    store: &'a Arc<dyn Store>,
    stop: &'a watch::Receiver<bool>,
    purge_batch: i64,
    embedder: Option<&'a Arc<dyn Embedder>>,
    webhooks: &'a WebhookConfig,
    metrics: &'a Metrics,
}

/// Runs a job claimed at `claimed` and records how it ended.
async fn run_job(cx: &Context<'_>, job: Job, claimed: Instant) {
    let (store, stop, purge_batch) = (cx.store, cx.stop, cx.purge_batch);
    let outcome = match job.kind.as_str() {
        PURGE_SESSION => purge_session(store, &job, stop, purge_batch).await,
        PURGE_WORKSPACE => purge_workspace(store, &job, stop, purge_batch).await,
        DELIVERY => deliver(&job, cx.webhooks).await,
        EMBED_MESSAGES => match embedding_jobs::embed_messages(store, cx.embedder, &job).await {
            Ok(()) => Outcome::Done,
            Err(e) => Outcome::Failed(e),
        },
        EMBED_BACKFILL => match embedding_jobs::backfill(store, cx.embedder, &job, stop).await {
            Ok(true) => Outcome::Done,
            Ok(false) => Outcome::Released,
            Err(e) => Outcome::Failed(e),
        },
        other => Outcome::Failed(Error::Internal(format!("unknown job kind {other:?}"))),
    };
    let (recorded, finished) = match outcome {
        Outcome::Failed(Error::Busy(e)) => {
            tracing::warn!(job = job.id, error = %e, "database unavailable; job deferred");
            let run_at = now_micros() + OUTAGE_RETRY.as_micros() as i64;
            let recorded = record(cx, || store.defer_job(&job, &e, run_at)).await;
            (recorded, Finished::Retried)
        }
        Outcome::Done => {
            tracing::info!(job = job.id, kind = %job.kind, ms = claimed.elapsed().as_millis() as u64, "job done");
            (
                record(cx, || store.complete_job(&job)).await,
                Finished::Completed,
            )
        }
        Outcome::Released => (
            record(cx, || {
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
            let recorded = record(cx, || store.fail_job(&job, &error, retry)).await;
            (recorded, finished)
        }
    };
    match recorded {
        Ok(()) => cx
            .metrics
            .job_finished(&job.kind, finished, claimed.elapsed()),
        // The lease expires and another claim retries the job.
        Err(e) => tracing::warn!(job = job.id, error = %e, "recording a job outcome failed"),
    }
}

/// Records a job's outcome however long the database stays away: were the lease left
/// to expire instead, the job would run again on a new attempt, and one on its last
/// attempt would be dead-lettered by the next claim. Gives up only at shutdown.
async fn record<F, Fut>(cx: &Context<'_>, mut write: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    loop {
        match write().await {
            Err(Error::Busy(_)) if !*cx.stop.borrow() => tokio::time::sleep(OUTAGE_RETRY).await,
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

fn payload<T: serde::de::DeserializeOwned>(job: &Job) -> Result<T, Outcome> {
    serde_json::from_value(job.payload.clone())
        .map_err(|e| Outcome::Failed(Error::Internal(format!("bad {} payload: {e}", job.kind))))
}

async fn purge_session(
    store: &Arc<dyn Store>,
    job: &Job,
    stop: &watch::Receiver<bool>,
    batch: i64,
) -> Outcome {
    let purge: PurgeSession = match payload(job) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    run_steps(stop, || {
        store.purge_session_step(job, purge, batch, now_micros() + LEASE_MICROS)
    })
    .await
}

async fn purge_workspace(
    store: &Arc<dyn Store>,
    job: &Job,
    stop: &watch::Receiver<bool>,
    batch: i64,
) -> Outcome {
    let purge: PurgeWorkspace = match payload(job) {
        Ok(p) => p,
        Err(outcome) => return outcome,
    };
    run_steps(stop, || {
        store.purge_workspace_step(job, purge, batch, now_micros() + LEASE_MICROS)
    })
    .await
}

/// One POST to one endpoint; a failure (non-2xx, timeout, refused address) is
/// retried by the queue's backoff and dead-lettered after the last attempt.
async fn deliver(job: &Job, config: &WebhookConfig) -> Outcome {
    let delivery: Delivery = match payload(job) {
        Ok(d) => d,
        Err(outcome) => return outcome,
    };
    match crate::webhooks::deliver(config, &delivery).await {
        Ok(()) => Outcome::Done,
        Err(e) => Outcome::Failed(e),
    }
}
