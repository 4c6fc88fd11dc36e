//! The job queue on SQLite. The single writer makes claims race-free without locks.

use std::cell::Cell;

use engram_core::jobs::Task;
use engram_core::queue::{Job, JobInfo, QueueDepth};
use engram_core::time::{Micros, now_micros};
use engram_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use crate::db_err;

thread_local! {
    /// Set by `enqueue` on the writer thread, taken after the batch commits: the queued
    /// work becomes claimable then, and the writer wakes this process's workers.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the batch the writer just ran queued a job; clears the mark.
pub(crate) fn take_queued() -> bool {
    QUEUED.replace(false)
}

/// Adds a job inside the caller's transaction, as the registry says (`jobs::Task`).
pub fn enqueue(conn: &Connection, task: &Task) -> Result<()> {
    let job = task.to_job()?;
    conn.prepare_cached(
        "INSERT INTO jobs (workspace_id, kind, unit_key, priority, payload, max_attempts, run_at, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    )
    .map_err(db_err)?
    .execute(params![
        job.workspace_id,
        job.kind.name(),
        job.unit_key,
        job.kind.priority(),
        job.payload.to_string(),
        job.kind.max_attempts(),
        now_micros()
    ])
    .map_err(db_err)?;
    QUEUED.set(true);
    Ok(())
}

/// The first runnable job whose work unit has nothing earlier unfinished and nothing
/// running under a live lease; its lease runs until `lease_until`.
pub fn claim(conn: &Connection, lease_until: Micros) -> Result<Option<Job>> {
    let now = now_micros();
    // A job whose worker died on its final attempt is dead-lettered, not retried forever.
    conn.prepare_cached(
        "UPDATE jobs SET state = 'failed', lease_until = NULL, finished_at = ?1, \
         last_error = COALESCE(last_error, 'worker lost') || ' (lease expired on the final attempt)' \
         WHERE state = 'running' AND lease_until < ?1 AND attempts >= max_attempts",
    )
    .map_err(db_err)?
    .execute([now])
    .map_err(db_err)?;
    let found = conn
        .prepare_cached(
            "SELECT j.id, j.kind, j.payload, j.attempts, j.max_attempts, j.run_at FROM jobs j \
             WHERE ((j.state = 'pending' AND j.run_at <= ?1) OR (j.state = 'running' AND j.lease_until < ?1)) \
             AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.unit_key = j.unit_key AND o.id <> j.id \
                             AND ((o.id < j.id AND o.state IN ('pending', 'running')) \
                                  OR (o.state = 'running' AND o.lease_until >= ?1))) \
             ORDER BY j.priority, j.run_at, j.id LIMIT 1",
        )
        .map_err(db_err)?
        .query_row([now], |r| {
            Ok(Job {
                id: r.get(0)?,
                kind: r.get(1)?,
                payload: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or(Value::Null),
                attempts: r.get::<_, i64>(3)? + 1,
                max_attempts: r.get(4)?,
                run_at: r.get(5)?,
            })
        })
        .optional()
        .map_err(db_err)?;
    if let Some(job) = &found {
        conn.prepare_cached(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = ?2 WHERE id = ?1",
        )
        .map_err(db_err)?
        .execute(params![job.id, lease_until])
        .map_err(db_err)?;
    }
    Ok(found)
}

fn lost(id: i64) -> Error {
    Error::Internal(format!("job {id} is no longer held by this worker"))
}

/// Updates are guarded by the claim's attempt number: a worker whose lease was taken
/// over can no longer change the job.
pub fn complete(conn: &Connection, id: i64, attempt: i64) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = ?2 \
             WHERE id = ?1 AND attempts = ?3 AND state = 'running'",
        )
        .map_err(db_err)?
        .execute(params![id, now_micros(), attempt])
        .map_err(db_err)?;
    if changed == 0 {
        return Err(lost(id));
    }
    Ok(())
}

pub fn fail(
    conn: &Connection,
    id: i64,
    attempt: i64,
    error: &str,
    retry_at: Option<Micros>,
) -> Result<()> {
    let changed = match retry_at {
        Some(at) => conn
            .prepare_cached(
                "UPDATE jobs SET state = 'pending', run_at = ?2, lease_until = NULL, last_error = ?3 \
                 WHERE id = ?1 AND attempts = ?4 AND state = 'running'",
            )
            .map_err(db_err)?
            .execute(params![id, at, error, attempt]),
        None => conn
            .prepare_cached(
                "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?3, finished_at = ?2 \
                 WHERE id = ?1 AND attempts = ?4 AND state = 'running'",
            )
            .map_err(db_err)?
            .execute(params![id, now_micros(), error, attempt]),
    }
    .map_err(db_err)?;
    if changed == 0 {
        return Err(lost(id));
    }
    Ok(())
}

/// See `Store::defer_job`; the attempt number goes back, so the next claim reuses it.
pub fn defer(conn: &Connection, id: i64, attempt: i64, error: &str, run_at: Micros) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'pending', attempts = attempts - 1, run_at = ?2, \
             lease_until = NULL, last_error = ?3 WHERE id = ?1 AND attempts = ?4 AND state = 'running'",
        )
        .map_err(db_err)?
        .execute(params![id, run_at, error, attempt])
        .map_err(db_err)?;
    if changed == 0 {
        return Err(lost(id));
    }
    Ok(())
}

/// Extends a running job's lease; fails when the lease was taken over, so the caller
/// stops before touching anything.
pub fn renew(conn: &Connection, id: i64, attempt: i64, lease_until: Micros) -> Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?2 WHERE id = ?1 AND attempts = ?3 AND state = 'running'",
        )
        .map_err(db_err)?
        .execute(params![id, lease_until, attempt])
        .map_err(db_err)?;
    if changed != 1 {
        return Err(Error::Internal(format!("job {id} lost its lease")));
    }
    Ok(())
}

pub fn list(conn: &Connection, state: Option<&str>, limit: i64) -> Result<Vec<JobInfo>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, kind, state, attempts, max_attempts, run_at, last_error FROM jobs \
             WHERE ?1 IS NULL OR state = ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(db_err)?;
    stmt.query_map(params![state, limit], |r| {
        Ok(JobInfo {
            id: r.get(0)?,
            kind: r.get(1)?,
            state: r.get(2)?,
            attempts: r.get(3)?,
            max_attempts: r.get(4)?,
            run_at: r.get(5)?,
            last_error: r.get(6)?,
        })
    })
    .map_err(db_err)?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(db_err)
}

/// Up to `limit` jobs done before `finished_before`, found through `jobs_ready` (it leads
/// with the state).
pub fn prune_done(conn: &Connection, finished_before: Micros, limit: i64) -> Result<u64> {
    let removed = conn
        .prepare_cached(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE state = 'done' AND finished_at < ?1 LIMIT ?2)",
        )
        .map_err(db_err)?
        .execute(params![finished_before, limit])
        .map_err(db_err)?;
    Ok(removed as u64)
}

pub fn retry(conn: &Connection, id: i64) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'pending', attempts = 0, run_at = ?2, finished_at = NULL \
             WHERE id = ?1 AND state = 'failed'",
        )
        .map_err(db_err)?
        .execute(params![id, now_micros()])
        .map_err(db_err)?;
    Ok(changed == 1)
}

pub fn depth(conn: &Connection) -> Result<Vec<QueueDepth>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT kind, state, COUNT(*) FROM jobs \
             WHERE state IN ('pending', 'running', 'failed') GROUP BY kind, state ORDER BY kind, state",
        )
        .map_err(db_err)?;
    stmt.query_map([], |r| {
        Ok(QueueDepth {
            kind: r.get(0)?,
            state: r.get(1)?,
            jobs: r.get(2)?,
        })
    })
    .map_err(db_err)?
    .collect::<rusqlite::Result<Vec<_>>>()
    .map_err(db_err)
}
