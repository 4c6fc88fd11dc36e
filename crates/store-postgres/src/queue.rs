//! The job queue on PostgreSQL, shared by any number of engram processes.
//!
//! A claim runs in one READ COMMITTED transaction:
//!
//! 1. Pick the first runnable candidate (pending and due, or running under an expired
//!    lease) whose unit has nothing earlier unfinished, with `FOR UPDATE SKIP LOCKED`:
//!    two claimers never take the same row, and neither waits for the other's pick.
//! 2. Take `pg_advisory_xact_lock(hashtext(unit_key))`. Every claim of a unit holds this
//!    lock from its check until its commit, so claims of one unit run one at a time
//!    (a hash collision only serializes two unrelated units, briefly).
//! 3. Re-check the unit in a new statement, hence a snapshot taken after the lock was
//!    granted: it sees every earlier claim of the unit as committed `running`. The
//!    candidate is refused if an earlier job of its unit is unfinished or another job of
//!    its unit runs under a live lease. The step 1 filter alone is not enough: its
//!    snapshot predates concurrent claims, and a job id can commit after a larger one.
//! 4. Mark the candidate running. A refused candidate is passed over and the next one is
//!    tried, a few times at most; the caller polls again later.

use engram_core::Error;
use std::cell::Cell;

use engram_core::jobs::Task;
use engram_core::queue::{Job, JobInfo, QueueDepth};
use engram_core::time::{Micros, now_micros};
use sqlx::{PgConnection, Row};

use crate::R;

/// Candidates refused by the re-check before a claim gives up for this round.
const CLAIM_TRIES: usize = 8;

tokio::task_local! {
    /// Set by `enqueue` inside a write transaction (see `writing!`), read once it commits.
    static QUEUED: Cell<bool>;
}

/// Runs `write` and says whether it queued a job.
pub(crate) async fn tracking<T>(write: impl Future<Output = T>) -> (T, bool) {
    QUEUED
        .scope(Cell::new(false), async {
            let out = write.await;
            (out, QUEUED.with(Cell::get))
        })
        .await
}

/// Adds a job inside the caller's transaction, as the registry says (`jobs::Task`).
/// This process's workers are woken when the transaction commits (`writing!`); an
/// urgent kind also wakes every other process's, by `NOTIFY` at commit.
pub async fn enqueue(c: &mut PgConnection, task: &Task) -> R<()> {
    let job = task.to_job()?;
    sqlx::query(
        "INSERT INTO jobs (workspace_id, kind, unit_key, priority, payload, max_attempts, run_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(job.workspace_id)
    .bind(job.kind.name())
    .bind(&job.unit_key)
    .bind(job.kind.priority())
    .bind(&job.payload)
    .bind(job.kind.max_attempts())
    .bind(now_micros())
    .execute(&mut *c)
    .await?;
    if job.kind.is_urgent() {
        notify(c).await?;
    }
    let _ = QUEUED.try_with(|q| q.set(true));
    Ok(())
}

/// Wakes workers listening on `engram_jobs`; delivered when the transaction commits.
async fn notify(c: &mut PgConnection) -> R<()> {
    sqlx::query("NOTIFY engram_jobs").execute(c).await?;
    Ok(())
}

/// Claims the first runnable job (see the module comment) until `lease_until`.
pub async fn claim(c: &mut PgConnection, lease_until: Micros) -> R<Option<Job>> {
    let now = now_micros();
    // A job whose worker died on its final attempt is dead-lettered, not retried forever.
    sqlx::query(
        "UPDATE jobs SET state = 'failed', lease_until = NULL, finished_at = $1, \
         last_error = COALESCE(last_error, 'worker lost') || ' (lease expired on the final attempt)' \
         WHERE state = 'running' AND lease_until < $1 AND attempts >= max_attempts",
    )
    .bind(now)
    .execute(&mut *c)
    .await?;
    let mut refused: Vec<i64> = Vec::new();
    for _ in 0..CLAIM_TRIES {
        let candidate = sqlx::query(
            "SELECT j.id, j.unit_key FROM jobs j \
             WHERE ((j.state = 'pending' AND j.run_at <= $1) OR (j.state = 'running' AND j.lease_until < $1)) \
             AND NOT (j.id = ANY($2)) \
             AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.unit_key = j.unit_key AND o.id <> j.id \
                             AND ((o.id < j.id AND o.state IN ('pending', 'running')) \
                                  OR (o.state = 'running' AND o.lease_until >= $1))) \
             ORDER BY j.priority, j.run_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED",
        )
        .bind(now)
        .bind(&refused)
        .fetch_optional(&mut *c)
        .await?;
        let Some(row) = candidate else {
            return Ok(None);
        };
        let id: i64 = row.try_get(0)?;
        let unit_key: String = row.try_get(1)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&unit_key)
            .execute(&mut *c)
            .await?;
        let free: bool = sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM jobs o WHERE o.unit_key = $1 AND o.id <> $2 \
             AND ((o.id < $2 AND o.state IN ('pending', 'running')) \
                  OR (o.state = 'running' AND o.lease_until >= $3)))",
        )
        .bind(&unit_key)
        .bind(id)
        .bind(now)
        .fetch_one(&mut *c)
        .await?;
        if !free {
            refused.push(id);
            continue;
        }
        let row = sqlx::query(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $2 \
             WHERE id = $1 RETURNING id, kind, payload, attempts, max_attempts, run_at",
        )
        .bind(id)
        .bind(lease_until)
        .fetch_one(&mut *c)
        .await?;
        return Ok(Some(Job {
            id: row.try_get(0)?,
            kind: row.try_get(1)?,
            payload: row.try_get(2)?,
            attempts: row.try_get(3)?,
            max_attempts: row.try_get(4)?,
            run_at: row.try_get(5)?,
        }));
    }
    Ok(None)
}

fn lost(id: i64) -> Error {
    Error::Internal(format!("job {id} is no longer held by this worker"))
}

/// Updates are guarded by the claim's attempt number: a worker whose lease was taken
/// over can no longer change the job.
pub async fn complete(c: &mut PgConnection, id: i64, attempt: i64) -> R<()> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $2 \
         WHERE id = $1 AND attempts = $3 AND state = 'running'",
    )
    .bind(id)
    .bind(now_micros())
    .bind(attempt)
    .execute(c)
    .await?;
    if done.rows_affected() == 0 {
        return Err(lost(id).into());
    }
    Ok(())
}

pub async fn fail(
    c: &mut PgConnection,
    id: i64,
    attempt: i64,
    error: &str,
    retry_at: Option<Micros>,
) -> R<()> {
    let done = match retry_at {
        Some(at) => sqlx::query(
            "UPDATE jobs SET state = 'pending', run_at = $2, lease_until = NULL, last_error = $3 \
             WHERE id = $1 AND attempts = $4 AND state = 'running'",
        )
        .bind(id)
        .bind(at)
        .bind(error)
        .bind(attempt)
        .execute(c)
        .await?,
        None => sqlx::query(
            "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = $3, finished_at = $2 \
             WHERE id = $1 AND attempts = $4 AND state = 'running'",
        )
        .bind(id)
        .bind(now_micros())
        .bind(error)
        .bind(attempt)
        .execute(c)
        .await?,
    };
    if done.rows_affected() == 0 {
        return Err(lost(id).into());
    }
    Ok(())
}

/// See `Store::defer_job`; the attempt number goes back, so the next claim reuses it.
pub async fn defer(
    c: &mut PgConnection,
    id: i64,
    attempt: i64,
    error: &str,
    run_at: Micros,
) -> R<()> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = $2, \
         lease_until = NULL, last_error = $3 WHERE id = $1 AND attempts = $4 AND state = 'running'",
    )
    .bind(id)
    .bind(run_at)
    .bind(error)
    .bind(attempt)
    .execute(c)
    .await?;
    if done.rows_affected() == 0 {
        return Err(lost(id).into());
    }
    Ok(())
}

/// Extends a running job's lease; fails when the lease was taken over, so the caller
/// stops before touching anything.
pub async fn renew(c: &mut PgConnection, id: i64, attempt: i64, lease_until: Micros) -> R<()> {
    let done = sqlx::query(
        "UPDATE jobs SET lease_until = $2 WHERE id = $1 AND attempts = $3 AND state = 'running'",
    )
    .bind(id)
    .bind(lease_until)
    .bind(attempt)
    .execute(c)
    .await?;
    if done.rows_affected() != 1 {
        return Err(Error::Internal(format!("job {id} lost its lease")).into());
    }
    Ok(())
}

pub async fn list(c: &mut PgConnection, state: Option<&str>, limit: i64) -> R<Vec<JobInfo>> {
    let rows = sqlx::query(
        "SELECT id, kind, state, attempts, max_attempts, run_at, last_error FROM jobs \
         WHERE $1::text IS NULL OR state = $1 ORDER BY id LIMIT $2",
    )
    .bind(state)
    .bind(limit)
    .fetch_all(c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(JobInfo {
            id: r.try_get(0)?,
            kind: r.try_get(1)?,
            state: r.try_get(2)?,
            attempts: r.try_get(3)?,
            max_attempts: r.try_get(4)?,
            run_at: r.try_get(5)?,
            last_error: r.try_get(6)?,
        });
    }
    Ok(out)
}

/// Up to `limit` jobs done before `finished_before`, found through `jobs_ready` (it leads
/// with the state).
pub async fn prune_done(c: &mut PgConnection, finished_before: Micros, limit: i64) -> R<u64> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
         WHERE state = 'done' AND finished_at < $1 LIMIT $2)",
    )
    .bind(finished_before)
    .bind(limit)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

pub async fn retry(c: &mut PgConnection, id: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE jobs SET state = 'pending', attempts = 0, run_at = $2, finished_at = NULL \
         WHERE id = $1 AND state = 'failed'",
    )
    .bind(id)
    .bind(now_micros())
    .execute(&mut *c)
    .await?;
    // The operator's retry runs as soon as a worker of any process is free.
    notify(c).await?;
    Ok(done.rows_affected() == 1)
}

pub async fn depth(c: &mut PgConnection) -> R<Vec<QueueDepth>> {
    let rows = sqlx::query(
        "SELECT kind, state, COUNT(*) FROM jobs \
         WHERE state IN ('pending', 'running', 'failed') GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        out.push(QueueDepth {
            kind: r.try_get(0)?,
            state: r.try_get(1)?,
            jobs: r.try_get(2)?,
        });
    }
    Ok(out)
}
