//! The physical floor for ingest: the same rows written straight into the same schema
//! (engram's own migration SQL, so the same tables, indexes and constraints) with the
//! same commit size (one transaction per 100-message batch) and the same durability,
//! but without HTTP, JSON, validation or token counting. HTTP throughput divided by this
//! is the share of the machine's storage capacity engram delivers.
//!
//! Deliberately left out: the session's `last_seq` counter update and peer upserts that
//! engram does per batch. Sequence numbers are assigned client-side here, so the floor is
//! the cheapest possible way to make these rows durable, not a re-implementation of engram.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rusqlite::{Connection, params};

use crate::ingest::{BATCH, content};
use crate::report::{Row, Samples};

const SQLITE_SCHEMA: &str = include_str!("../../store-sqlite/migrations/0001_core.sql");
const PG_SCHEMA: &str = include_str!("../../store-postgres/migrations/0001_core.sql");

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Roughly what o200k gives English prose; only stored, never compared.
fn token_estimate(s: &str) -> i64 {
    (s.len() / 4) as i64
}

pub enum Floor {
    Sqlite(PathBuf),
    Postgres(sqlx::PgPool),
}

impl Floor {
    /// A fresh SQLite file with engram's pragmas and schema.
    pub fn sqlite(path: PathBuf) -> Result<Floor> {
        let conn = open_sqlite(&path)?;
        conn.execute_batch(SQLITE_SCHEMA)
            .context("apply SQLite schema")?;
        Ok(Floor::Sqlite(path))
    }

    /// A fresh PostgreSQL database (already created, empty) with engram's schema; the
    /// pool is sized for the largest client count so each client has its own connection.
    pub async fn postgres(url: &str, max_clients: usize) -> Result<Floor> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(max_clients as u32)
            .connect(url)
            .await
            .context("connect floor database")?;
        sqlx::raw_sql(PG_SCHEMA)
            .execute(&pool)
            .await
            .context("apply PostgreSQL schema")?;
        Ok(Floor::Postgres(pool))
    }

    /// Writes `batches` batches for `clients` sessions in workspace `ws`.
    pub async fn run(&self, ws: &str, clients: usize, batches: u64) -> Result<Row> {
        match self {
            Floor::Sqlite(path) => {
                let (path, ws) = (path.clone(), ws.to_string());
                tokio::task::spawn_blocking(move || sqlite_run(&path, &ws, clients, batches))
                    .await?
            }
            Floor::Postgres(pool) => pg_run(pool, ws, clients, batches).await,
        }
    }
}

fn open_sqlite(path: &std::path::Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // The pragmas engram's store sets on its writer connection.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA secure_delete = ON; PRAGMA cache_size = -16000;",
    )?;
    Ok(conn)
}

/// One thread, because SQLite has one writer: what concurrent HTTP clients would get at
/// best is this single writer never waiting. Batches go round-robin over the sessions
/// so the unique index sees the same interleaving concurrent clients produce.
fn sqlite_run(path: &std::path::Path, ws: &str, clients: usize, batches: u64) -> Result<Row> {
    let mut conn = open_sqlite(path)?;
    let now = now_micros();
    conn.execute(
        "INSERT INTO workspaces (name, created_at) VALUES (?1, ?2)",
        params![ws, now],
    )?;
    let ws_id = conn.last_insert_rowid();
    let mut sessions = vec![];
    for c in 0..clients {
        conn.execute(
            "INSERT INTO sessions (workspace_id, name, created_at) VALUES (?1, ?2, ?3)",
            params![ws_id, format!("s{c}"), now],
        )?;
        sessions.push((conn.last_insert_rowid(), format!("s{c}"), 0i64));
    }
    let mut samples = Samples::default();
    let started = Instant::now();
    for b in 0..batches {
        let t = Instant::now();
        let (session_id, name, seq) = &mut sessions[(b % clients as u64) as usize];
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO messages (workspace_id, session_id, public_id, session_name, peer_name, content, metadata, token_count, seq_in_session, created_at) \
                 VALUES (?1, ?2, ?3, ?4, 'p', ?5, '{}', ?6, ?7, ?8)",
            )?;
            for i in 0..BATCH as u64 {
                let text = content(b * BATCH as u64 + i);
                *seq += 1;
                insert.execute(params![
                    ws_id,
                    *session_id,
                    nanoid::nanoid!(),
                    name.as_str(),
                    text,
                    token_estimate(&text),
                    *seq,
                    now_micros()
                ])?;
            }
        }
        tx.commit()?;
        samples.latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    Ok(samples.row(
        "ingest floor (sqlite direct)",
        1,
        batches * BATCH as u64,
        "msg/s",
        wall,
    ))
}

/// One connection per client, each appending to its own session with one transaction
/// per batch and one multi-row `INSERT ... SELECT FROM UNNEST` (the shape engram uses).
async fn pg_run(pool: &sqlx::PgPool, ws: &str, clients: usize, batches: u64) -> Result<Row> {
    let now = now_micros();
    let ws_id: i64 = sqlx::query_scalar(
        "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) RETURNING id",
    )
    .bind(ws)
    .bind(now)
    .fetch_one(pool)
    .await?;
    let mut session_ids = vec![];
    for c in 0..clients {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO sessions (workspace_id, name, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(ws_id)
        .bind(format!("s{c}"))
        .bind(now)
        .fetch_one(pool)
        .await?;
        session_ids.push(id);
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = session_ids
        .into_iter()
        .enumerate()
        .map(|(c, session_id)| {
            let (pool, next) = (pool.clone(), next.clone());
            tokio::spawn(async move {
                let mut conn = pool.acquire().await?;
                let mut samples = Samples::default();
                let mut seq = 0i64;
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let t = Instant::now();
                    let texts: Vec<String> = (0..BATCH as u64)
                        .map(|i| content(b * BATCH as u64 + i))
                        .collect();
                    let ids: Vec<String> = (0..BATCH).map(|_| nanoid::nanoid!()).collect();
                    let tokens: Vec<i64> = texts.iter().map(|t| token_estimate(t)).collect();
                    let seqs: Vec<i64> = (seq + 1..=seq + BATCH as i64).collect();
                    seq += BATCH as i64;
                    let created = vec![now_micros(); BATCH];
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    sqlx::query(
                        "INSERT INTO messages (workspace_id, session_id, session_name, public_id, peer_name, content, metadata, token_count, seq_in_session, created_at) \
                         SELECT $1, $2, $3, u.public_id, 'p', u.content, '{}'::jsonb, u.token_count, u.seq, u.created_at \
                         FROM UNNEST($4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[]) \
                           AS u (public_id, content, token_count, seq, created_at)",
                    )
                    .bind(ws_id)
                    .bind(session_id)
                    .bind(format!("s{c}"))
                    .bind(&ids)
                    .bind(&texts)
                    .bind(&tokens)
                    .bind(&seqs)
                    .bind(&created)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    samples.latencies.push(t.elapsed());
                }
                anyhow::Ok(samples)
            })
        })
        .collect();
    let mut all = Samples::default();
    for t in tasks {
        all.merge(t.await??);
    }
    let wall = started.elapsed();
    Ok(all.row(
        "ingest floor (pg direct)",
        clients,
        batches * BATCH as u64,
        "msg/s",
        wall,
    ))
}
